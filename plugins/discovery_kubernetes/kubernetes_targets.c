/*
 * discovery.kubernetes: which collections a role reads, and the whole
 * target set built from them (the labels themselves come from the SDK's
 * starling_k8s_targets(), Prometheus' role code). Pure: no I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubernetes.h"

static const char *const role_names[DK_ROLES] = {"pod", "service", "endpoints", "endpointslice",
						 "node"};

int dk_config_add_namespace(struct dk_config *c, const char *ns)
{
	char **v;

	for (size_t i = 0; i < c->n_namespaces; i++)
		if (strcmp(c->namespaces[i], ns) == 0)
			return 0;
	v = realloc(c->namespaces, (c->n_namespaces + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->namespaces = v;
	v[c->n_namespaces] = strdup(ns);
	if (!v[c->n_namespaces])
		return -ENOMEM;
	c->n_namespaces++;
	return 0;
}

void dk_config_free(struct dk_config *c)
{
	for (size_t i = 0; i < c->n_namespaces; i++)
		free(c->namespaces[i]);
	free(c->namespaces);
	for (int r = 0; r < DK_ROLES; r++) {
		free(c->sel[r].label);
		free(c->sel[r].field);
	}
	memset(c, 0, sizeof(*c));
}

/* Prometheus discovery/kubernetes/kubernetes.go allowedSelectors. */
int dk_check_selectors(const struct dk_config *c, char *err, size_t errlen)
{
	static const unsigned allowed[DK_ROLES] = {
	    [STARLING_K8S_ROLE_POD] = 1u << STARLING_K8S_ROLE_POD | 1u << STARLING_K8S_ROLE_NODE,
	    [STARLING_K8S_ROLE_SERVICE] = 1u << STARLING_K8S_ROLE_SERVICE,
	    [STARLING_K8S_ROLE_ENDPOINTS] = 1u << STARLING_K8S_ROLE_POD |
					    1u << STARLING_K8S_ROLE_SERVICE |
					    1u << STARLING_K8S_ROLE_ENDPOINTS,
	    [STARLING_K8S_ROLE_ENDPOINTSLICE] = 1u << STARLING_K8S_ROLE_POD |
						1u << STARLING_K8S_ROLE_SERVICE |
						1u << STARLING_K8S_ROLE_ENDPOINTSLICE,
	    [STARLING_K8S_ROLE_NODE] = 1u << STARLING_K8S_ROLE_NODE,
	};

	for (int r = 0; r < DK_ROLES; r++) {
		if (c->sel[r].set && !(allowed[c->role] & (1u << r))) {
			snprintf(err, errlen,
				 "selectors: role \"%s\" is not allowed with role \"%s\"",
				 role_names[r], role_names[c->role]);
			return -EINVAL;
		}
	}
	return 0;
}

void dk_cluster_free(struct dk_cluster *cl)
{
	starling_k8s_store_clear(&cl->main, -1);
	starling_k8s_store_clear(&cl->pods, -1);
	starling_k8s_store_clear(&cl->services, -1);
	starling_k8s_store_clear(&cl->nodes, -1);
	starling_k8s_store_clear(&cl->namespaces, -1);
}

/* One collection of a namespaced kind, per configured namespace. */
static int watch_kind(const struct dk_config *c, struct starling_k8s_client *client,
		      enum starling_k8s_role sel_role, const char *what, const char *prefix,
		      const char *resource, struct starling_k8s_store *store,
		      enum starling_k8s_kind kind)
{
	const struct dk_selector *s = &c->sel[sel_role];
	char path[512];
	int rc = 0;

	if (!c->n_namespaces) {
		snprintf(path, sizeof(path), "%s/%s", prefix, resource);
		rc = starling_k8s_watch_add(client, what, path, s->label, s->field, store, kind);
	}
	for (size_t i = 0; i < c->n_namespaces && rc >= 0; i++) {
		snprintf(path, sizeof(path), "%s/namespaces/%s/%s", prefix, c->namespaces[i],
			 resource);
		rc = starling_k8s_watch_add(client, what, path, s->label, s->field, store, kind);
	}
	return rc < 0 ? rc : 0;
}

int dk_watches(const struct dk_config *c, struct starling_k8s_client *client, struct dk_cluster *cl,
	       char *err, size_t errlen)
{
	const struct dk_selector *ns = &c->sel[STARLING_K8S_ROLE_NODE];
	int rc = 0;

	switch (c->role) {
	case STARLING_K8S_ROLE_POD:
		rc = watch_kind(c, client, STARLING_K8S_ROLE_POD, "pods", "/api/v1", "pods",
				&cl->main, STARLING_K8S_POD);
		break;
	case STARLING_K8S_ROLE_SERVICE:
		rc = watch_kind(c, client, STARLING_K8S_ROLE_SERVICE, "services", "/api/v1",
				"services", &cl->main, STARLING_K8S_OTHER);
		break;
	case STARLING_K8S_ROLE_ENDPOINTS:
	case STARLING_K8S_ROLE_ENDPOINTSLICE:
		if (c->role == STARLING_K8S_ROLE_ENDPOINTS)
			rc = watch_kind(c, client, STARLING_K8S_ROLE_ENDPOINTS, "endpoints",
					"/api/v1", "endpoints", &cl->main, STARLING_K8S_OTHER);
		else
			rc = watch_kind(c, client, STARLING_K8S_ROLE_ENDPOINTSLICE,
					"endpointslices", "/apis/discovery.k8s.io/v1",
					"endpointslices", &cl->main, STARLING_K8S_OTHER);
		if (!rc)
			rc = watch_kind(c, client, STARLING_K8S_ROLE_SERVICE, "services", "/api/v1",
					"services", &cl->services, STARLING_K8S_OTHER);
		if (!rc)
			rc = watch_kind(c, client, STARLING_K8S_ROLE_POD, "pods", "/api/v1", "pods",
					&cl->pods, STARLING_K8S_POD);
		break;
	case STARLING_K8S_ROLE_NODE:
		rc = starling_k8s_watch_add(client, "nodes", "/api/v1/nodes", ns->label, ns->field,
					    &cl->main, STARLING_K8S_OTHER);
		rc = rc < 0 ? rc : 0;
		break;
	}
	if (!rc && c->attach_node && c->role != STARLING_K8S_ROLE_NODE &&
	    c->role != STARLING_K8S_ROLE_SERVICE) {
		rc = starling_k8s_watch_add(client, "nodes", "/api/v1/nodes", ns->label, ns->field,
					    &cl->nodes, STARLING_K8S_OTHER);
		rc = rc < 0 ? rc : 0;
	}
	if (!rc && c->attach_namespace && c->role != STARLING_K8S_ROLE_NODE) {
		/* not filtered by the namespaces setting, as in Prometheus */
		rc = starling_k8s_watch_add(client, "namespaces", "/api/v1/namespaces", NULL, NULL,
					    &cl->namespaces, STARLING_K8S_OTHER);
		rc = rc < 0 ? rc : 0;
	}
	if (rc)
		snprintf(err, errlen, "cannot set up the watches: %s", strerror(-rc));
	return rc;
}

void dk_meta_setup(const struct dk_config *c, const struct dk_cluster *cl,
		   struct starling_k8s_meta *m)
{
	m->pods = &cl->pods;
	m->services = &cl->services;
	m->nodes = &cl->nodes;
	m->namespaces = &cl->namespaces;
	m->attach_node = c->attach_node && c->role != STARLING_K8S_ROLE_NODE &&
			 c->role != STARLING_K8S_ROLE_SERVICE;
	m->attach_namespace = c->attach_namespace && c->role != STARLING_K8S_ROLE_NODE;
}

/* ------------------------------------------------------------------------ */
/* The target set.                                                           */

static int buf_add(struct dk_targets *t, const char *s, size_t *off)
{
	size_t n = strlen(s) + 1;

	if (t->len + n > t->buf_cap) {
		size_t cap = t->buf_cap ? t->buf_cap : 65536;
		char *b;

		while (cap < t->len + n)
			cap *= 2;
		b = realloc(t->buf, cap);
		if (!b)
			return -ENOMEM;
		t->buf = b;
		t->buf_cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	*off = t->len;
	t->len += n;
	return 0;
}

static int add_target(void *arg, const struct starling_lset *ls)
{
	struct dk_targets *t = arg;

	if (!starling_lset_get(ls, "__address__"))
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		size_t *v = realloc(t->first, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->first = v;
		t->cap = cap;
	}
	if (t->n_labels + ls->n > t->labels_cap) {
		size_t cap = t->labels_cap ? t->labels_cap : 4096;
		struct dk_label_off *v;

		while (cap < t->n_labels + ls->n)
			cap *= 2;
		v = realloc(t->labels, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->labels = v;
		t->labels_cap = cap;
	}
	t->first[t->n] = t->n_labels;
	for (size_t i = 0; i < ls->n; i++) {
		struct dk_label_off *l = &t->labels[t->n_labels + i];

		if (buf_add(t, ls->v[i].name, &l->name) || buf_add(t, ls->v[i].value, &l->value))
			return -ENOMEM;
	}
	t->n_labels += ls->n;
	t->n++;
	return 0;
}

int dk_build(const struct dk_config *c, const struct dk_cluster *cl, struct starling_k8s_meta *m,
	     struct dk_targets *out)
{
	int rc = 0;

	out->n = out->n_labels = out->len = 0;
	for (size_t i = 0; i < cl->main.n && !rc; i++)
		rc = starling_k8s_targets(m, c->role, cl->main.v[i].obj, add_target, out);
	if (rc)
		return rc;
	free(out->v);
	free(out->lv);
	out->v = calloc(out->n + 1, sizeof(*out->v));
	out->lv = calloc(out->n_labels + 1, sizeof(*out->lv));
	if (!out->v || !out->lv)
		return -ENOMEM;
	return 0;
}

void dk_targets_set(struct dk_targets *t, struct starling_target_set *set)
{
	for (size_t j = 0; j < t->n_labels; j++) {
		t->lv[j].name = t->buf + t->labels[j].name;
		t->lv[j].value = t->buf + t->labels[j].value;
	}
	for (size_t i = 0; i < t->n; i++) {
		size_t end = i + 1 < t->n ? t->first[i + 1] : t->n_labels;

		t->v[i].labels = t->lv + t->first[i];
		t->v[i].n_labels = end - t->first[i];
	}
	set->targets = t->v;
	set->n_targets = t->n;
}

void dk_targets_free(struct dk_targets *t)
{
	free(t->first);
	free(t->labels);
	free(t->buf);
	free(t->v);
	free(t->lv);
	memset(t, 0, sizeof(*t));
}
