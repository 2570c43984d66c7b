/*
 * prometheus.operator.podmonitors / .servicemonitors: configuration, the
 * Kubernetes list+watch loop and the scrape loop.
 *
 * Two threads per instance. The discovery thread keeps a local copy of the
 * monitors, pods (and endpoints, services) with the SDK Kubernetes client
 * (starling/k8s.h: paged LIST, WATCH from the list's resourceVersion with
 * bookmarks, 410 Gone re-lists, other failures back off 1s..30s).
 * After a change (debounced 200 ms, and only once every collection was
 * listed, so a half-synced cache never retires targets) it regenerates the
 * targets and hands the set to the scrape thread, which keeps unchanged
 * targets (same job, same labels) with their series cache and schedule,
 * starts new ones at their slot and retires vanished ones with staleness
 * markers. The scrape thread is prometheus.scrape's machinery: slots at
 * hash(key) mod interval, ownership asked of the cluster service per slot.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/http.h>
#include <starling/scrape_pool.h>

#include "operator.h"

#define OP_DEBOUNCE_MS 200

struct op_inst;

struct op_target {
	struct scrape_target *t;
	struct op_job *job;
	struct op_inst *in;
	uint64_t match; /* job fingerprint and label identity, for diffs */
};

struct op_ref {
	char *key; /* "s/<ns>/<name>" or "c/<ns>/<name>" */
	int watch;
	bool used;    /* referenced by a selected monitor in this rebuild */
	bool stopped; /* its watch is stopped */
};

struct op_skip {
	uint64_t fp;
	char msg[320];
};

struct op_inst {
	const struct starling_host_api *api;
	starling_component *self;
	enum op_kind kind;
	struct op_defaults defaults;
	struct starling_relabel_rules *rules;
	struct op_selector selector;
	char **namespaces;
	size_t n_namespaces;
	struct starling_k8s_conn conn;

	/* Discovery thread only. */
	struct op_cluster cluster;
	struct starling_k8s_client *k8s;
	struct starling_k8s_stats seen; /* counted into the metrics so far */
	size_t n_core_watches;		/* those of watches_init() */
	char health_msg[512];		/* last set_health() message */
	bool nodes_watched;
	/* Secrets / ConfigMaps referenced by monitor endpoints: each watched
	 * by name ("s/<ns>/<name>" or "c/<ns>/<name>"). */
	struct op_secrets secrets;
	struct op_ref *refs;
	size_t n_refs;
	bool refs_added; /* a watch was added during this rebuild */
	/* Endpoints left out for bad HTTP settings, by monitor fingerprint. */
	struct op_skip *skips, *next_skips;
	size_t n_skips, n_next_skips;
	uint64_t cur_fp;
	struct op_job **jobs;
	size_t n_jobs;
	bool dirty;
	int64_t dirty_ms;
	bool healthy_set, healthy;
	int64_t sync_timeout_ms; /* informer_sync_timeout */
	int64_t started_ms;
	bool sync_late; /* reported as not synced in time */
	struct op_gen_scratch gen;
	struct op_target **next; /* targets being generated */
	size_t n_next, next_cap;
	pthread_t disc_thread;

	/* Scrape side. The lock guards targets/retired and target status. */
	pthread_mutex_t lock;
	struct op_target **targets;
	size_t n_targets;
	struct op_target **retired;
	size_t n_retired;
	size_t owned;
	uint64_t seen_epoch; /* cluster view the catch-up last looked at */
	struct starling_http_client *http;
	struct scrape_scratch scratch;
	pthread_t scrape_thread;
	bool running;
	atomic_bool stopping;

	struct starling_scrape_metrics m;
	starling_metric *m_api_errors, *m_events, *m_relists, *m_monitors, *m_skipped;
};

/* ------------------------------------------------------------------------ */
/* Schema.                                                                   */

static const struct starling_config_key clustering_keys[] = {
    {"enabled", STARLING_CFG_BOOL, false, "false",
     "Distribute the targets among the cluster's nodes"},
    {"replicas", STARLING_CFG_INT, false, "1",
     "Nodes that scrape each target (its first N owners; every node when fewer)"},
    {NULL},
};

static const struct starling_config_key client_keys[] = {
    STARLING_K8S_CONN_KEYS,
    {NULL},
};

static const struct starling_config_key match_expression_keys[] = {
    {"key", STARLING_CFG_STRING, true, NULL, "Label name"},
    {"operator", STARLING_CFG_STRING, true, NULL, "In, NotIn, Exists or DoesNotExist"},
    {"values", STARLING_CFG_STRING_LIST, false, NULL, "Values for In / NotIn"},
    {NULL},
};

static const struct starling_config_key selector_keys[] = {
    {"match_labels", STARLING_CFG_MAP, false, NULL, "Monitor labels that must all match"},
    {"match_expression", STARLING_CFG_GROUP_LIST, false, NULL,
     "Label expressions on monitors (ANDed)", match_expression_keys},
    {NULL},
};

static const struct starling_config_key scrape_keys[] = {
    {"default_scrape_interval", STARLING_CFG_DURATION, false, "1m",
     "Interval of endpoints that set none"},
    {"default_scrape_timeout", STARLING_CFG_DURATION, false, "10s",
     "Timeout of endpoints that set none"},
    {"default_sample_limit", STARLING_CFG_INT, false, "0",
     "Sample limit of monitors that set none; 0 = none"},
    {NULL},
};

/* clang-format off */
#define OP_COMMON_KEYS                                                                   \
	{ "forward_to", STARLING_CFG_REF_LIST, true, NULL, "Receivers of the scraped series", \
	  NULL, STARLING_ACCEPTS_SERIES },                                                  \
	{ "namespaces", STARLING_CFG_STRING_LIST, false, NULL,                            \
	  "Namespaces to look for monitors in (default: all)" },                            \
	{ "informer_sync_timeout", STARLING_CFG_DURATION, false, "1m",                    \
	  "How long the first list may take before the component is reported unhealthy" }, \
	{ "client", STARLING_CFG_GROUP, false, NULL, "Kubernetes API client", client_keys }, \
	{ "selector", STARLING_CFG_GROUP, false, NULL, "Which monitors to use",           \
	  selector_keys },                                                                  \
	{ "scrape", STARLING_CFG_GROUP, false, NULL, "Scrape defaults", scrape_keys },     \
	{ "clustering", STARLING_CFG_GROUP, false, NULL, "Target distribution",           \
	  clustering_keys },                                                                \
	{ "rule", STARLING_CFG_GROUP_LIST, false, NULL,                                   \
	  "Relabel rules applied to every target before the generated ones",               \
	  starling_relabel_schema }
/* clang-format on */

static const struct starling_config_key podmonitors_schema[] = {
    OP_COMMON_KEYS,
    {NULL},
};

static const struct starling_config_key servicemonitors_schema[] = {
    OP_COMMON_KEYS,
    {"kubernetes_role", STARLING_CFG_STRING, false, "endpoints",
     "How to find a service's targets: endpoints or endpointslice"},
    {"allow_arbitrary_file_access", STARLING_CFG_BOOL, false, "false",
     "Allow tlsConfig caFile/certFile/keyFile of ServiceMonitors (files on this host)"},
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* Configuration.                                                            */

static int string_list(const struct starling_host_api *api, const starling_config *cfg,
		       const char *path, char ***out, size_t *n_out)
{
	const starling_config *l = api->config_lookup(cfg, path);
	size_t n = l ? api->config_count(l) : 0;
	char **v = calloc(n + 1, sizeof(*v));

	*out = NULL;
	*n_out = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;

		api->config_string(api->config_child(l, i), NULL, &s);
		v[i] = strdup(s ? s : "");
		if (!v[i]) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int selector_load(const struct starling_host_api *api, const starling_config *cfg,
			 struct op_selector *s, char *err, size_t errlen)
{
	const starling_config *ml = api->config_lookup(cfg, "selector.match_labels");
	const starling_config *me = api->config_lookup(cfg, "selector.match_expression");
	size_t n = ml ? api->config_count(ml) : 0, ne = me ? api->config_count(me) : 0;

	s->match_labels = calloc(n + 1, sizeof(*s->match_labels));
	s->exprs = calloc(ne + 1, sizeof(*s->exprs));
	if (!s->match_labels || !s->exprs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const starling_config *e = api->config_child(ml, i);
		const char *v = NULL;

		api->config_string(e, NULL, &v);
		s->match_labels[i].name = strdup(api->config_name(e));
		s->match_labels[i].value = strdup(v ? v : "");
		s->n_match_labels++;
		if (!s->match_labels[i].name || !s->match_labels[i].value)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ne; i++) {
		const starling_config *e = api->config_child(me, i);
		struct op_sel_expr *x = &s->exprs[i];
		const char *k = NULL, *op = NULL;
		int rc;

		s->n_exprs++;
		api->config_string(e, "key", &k);
		api->config_string(e, "operator", &op);
		x->key = strdup(k ? k : "");
		if (!x->key)
			return -ENOMEM;
		if (!op || op_sel_op_parse(op, &x->op)) {
			snprintf(err, errlen,
				 "%s: match_expression operator \"%s\" (In, NotIn, Exists or "
				 "DoesNotExist)",
				 api->config_where(e), op ? op : "");
			return -EINVAL;
		}
		rc = string_list(api, e, "values", &x->values, &x->n_values);
		if (rc)
			return rc;
		if ((x->op == OP_SEL_IN || x->op == OP_SEL_NOT_IN) && !x->n_values) {
			snprintf(err, errlen, "%s: match_expression %s needs values",
				 api->config_where(e), op);
			return -EINVAL;
		}
	}
	return 0;
}

static int config_load(struct op_inst *in, const starling_config *cfg, char *err, size_t errlen)
{
	const struct starling_host_api *api = in->api;
	struct op_defaults *d = &in->defaults;
	const char *role;
	int64_t v = 0;
	int rc;

	d->kind = in->kind;
	api->config_duration_ms(cfg, "scrape.default_scrape_interval", &d->interval_ms);
	api->config_duration_ms(cfg, "scrape.default_scrape_timeout", &d->timeout_ms);
	if (d->interval_ms <= 0 || d->timeout_ms <= 0) {
		snprintf(err, errlen,
			 "scrape: default_scrape_interval and default_scrape_timeout "
			 "must be positive");
		return -EINVAL;
	}
	if (!api->config_int(cfg, "scrape.default_sample_limit", &v) && v > 0)
		d->sample_limit = (uint64_t)v;
	api->config_bool(cfg, "clustering.enabled", &d->clustering);
	if (starling_scrape_replicas(api, cfg, &d->replicas, err, errlen))
		return -EINVAL;
	in->sync_timeout_ms = 60000;
	api->config_duration_ms(cfg, "informer_sync_timeout", &in->sync_timeout_ms);
	if (in->kind == OP_SERVICE_MONITORS && !api->config_string(cfg, "kubernetes_role", &role) &&
	    role) {
		if (strcmp(role, "endpointslice") == 0) {
			d->endpointslice = true;
		} else if (strcmp(role, "endpoints") != 0) {
			snprintf(err, errlen,
				 "kubernetes_role \"%s\": \"endpoints\" or \"endpointslice\"",
				 role);
			return -EINVAL;
		}
	}
	if (in->kind == OP_SERVICE_MONITORS)
		api->config_bool(cfg, "allow_arbitrary_file_access", &in->secrets.allow_files);
	rc = starling_relabel_rules_from_config(api, api->config_lookup(cfg, "rule"), &in->rules,
						err, errlen);
	if (rc)
		return rc;
	d->rules = in->rules;
	rc = string_list(api, cfg, "namespaces", &in->namespaces, &in->n_namespaces);
	if (!rc)
		rc = selector_load(api, cfg, &in->selector, err, errlen);
	if (rc)
		return rc;
	/* No client block: in-cluster, as with an empty one. */
	if (api->config_lookup(cfg, "client"))
		return starling_k8s_conn_from_config(api, api->config_lookup(cfg, "client"),
						     &in->conn, err, errlen);
	return starling_k8s_conn_in_cluster(NULL, &in->conn, err, errlen);
}

/* ------------------------------------------------------------------------ */
/* Watches (the SDK Kubernetes client).                                      */

static int add_watch(struct op_inst *in, const char *what, struct starling_k8s_store *store,
		     const char *prefix, const char *ns, const char *resource)
{
	char path[512];
	int rc;

	if (ns)
		snprintf(path, sizeof(path), "%s/namespaces/%s/%s", prefix, ns, resource);
	else
		snprintf(path, sizeof(path), "%s/%s", prefix, resource);
	rc = starling_k8s_watch_add(in->k8s, what, path, NULL, NULL, store,
				    store == &in->cluster.pods ? STARLING_K8S_POD
							       : STARLING_K8S_OTHER);
	return rc < 0 ? rc : 0;
}

static int watches_init(struct op_inst *in)
{
	const char *mon = in->kind == OP_POD_MONITORS ? "podmonitors" : "servicemonitors";
	int rc = 0;

	if (!in->n_namespaces)
		rc = add_watch(in, mon, &in->cluster.monitors, "/apis/monitoring.coreos.com/v1",
			       NULL, mon);
	for (size_t i = 0; !rc && i < in->n_namespaces; i++)
		rc = add_watch(in, mon, &in->cluster.monitors, "/apis/monitoring.coreos.com/v1",
			       in->namespaces[i], mon);
	/* The monitors' namespaceSelector can name any namespace, so the
	 * objects they select are watched cluster-wide. */
	if (!rc)
		rc = add_watch(in, "pods", &in->cluster.pods, "/api/v1", NULL, "pods");
	if (!rc && in->kind == OP_SERVICE_MONITORS) {
		if (in->defaults.endpointslice)
			rc = add_watch(in, "endpointslices", &in->cluster.endpointslices,
				       "/apis/discovery.k8s.io/v1", NULL, "endpointslices");
		else
			rc = add_watch(in, "endpoints", &in->cluster.endpoints, "/api/v1", NULL,
				       "endpoints");
		if (!rc)
			rc = add_watch(in, "services", &in->cluster.services, "/api/v1", NULL,
				       "services");
	}
	return rc;
}

static void on_changed(void *arg, int watch)
{
	struct op_inst *in = arg;

	(void)watch;
	if (!in->dirty)
		in->dirty_ms = in->api->monotonic_ms();
	in->dirty = true;
}

static void on_k8s_log(void *arg, enum starling_log_level level, const char *msg)
{
	struct op_inst *in = arg;

	in->api->log(in->self, level, "%s", msg);
}

/* Healthy when every collection is listed and none is failing; a
 * collection that is merely not listed yet leaves the state as it is. */
static void update_health(struct op_inst *in)
{
	char why[512];
	bool ok = starling_k8s_healthy(in->k8s, why, sizeof(why));

	if (!ok && strstr(why, "not listed yet") && !in->sync_late)
		return;
	if (ok && in->n_skips) {
		/* the first skipped endpoint, and how many there are */
		snprintf(why, sizeof(why), "%zu endpoint(s) skipped; %s", in->n_skips,
			 in->skips[0].msg);
		ok = false;
	}
	if (ok)
		why[0] = 0;
	if (in->healthy_set && ok == in->healthy && strcmp(why, in->health_msg) == 0)
		return;
	in->healthy_set = true;
	in->healthy = ok;
	snprintf(in->health_msg, sizeof(in->health_msg), "%s", why);
	in->api->set_health(in->self, ok, ok ? NULL : why);
}

/* op_secrets.want (and the walk over selected monitors in rebuild()): watch
 * a referenced Secret / ConfigMap by name, resuming a stopped watch. */
static void want_ref(void *arg, bool secret, const char *ns, const char *name)
{
	struct op_inst *in = arg;
	char key[600], path[600], field[300];
	struct op_ref *v;
	int rc;

	snprintf(key, sizeof(key), "%c/%s/%s", secret ? 's' : 'c', ns, name);
	for (size_t i = 0; i < in->n_refs; i++) {
		if (strcmp(in->refs[i].key, key) != 0)
			continue;
		in->refs[i].used = true;
		if (in->refs[i].stopped) {
			starling_k8s_watch_enable(in->k8s, in->refs[i].watch, true);
			in->refs[i].stopped = false;
			in->refs_added = true; /* listed again before targets */
		}
		return;
	}
	v = realloc(in->refs, (in->n_refs + 1) * sizeof(*v));
	if (!v)
		return;
	in->refs = v;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/%s", ns,
		 secret ? "secrets" : "configmaps");
	snprintf(field, sizeof(field), "metadata.name=%s", name);
	rc = starling_k8s_watch_add(in->k8s, secret ? "secrets" : "configmaps", path, NULL, field,
				    secret ? &in->cluster.secrets : &in->cluster.configmaps,
				    STARLING_K8S_OTHER);
	if (rc < 0) {
		in->api->log(in->self, STARLING_LOG_ERROR, "cannot watch %s %s/%s: %s",
			     secret ? "secret" : "configmap", ns, name, strerror(-rc));
		return;
	}
	v[in->n_refs].key = strdup(key);
	if (!v[in->n_refs].key)
		return;
	v[in->n_refs].watch = rc;
	v[in->n_refs].used = true;
	v[in->n_refs].stopped = false;
	in->n_refs++;
	in->refs_added = true;
}

/* op_secrets.skipped: remembered with the monitor's fingerprint, logged
 * and counted once per change of the monitor or its references. */
static void endpoint_skipped(void *arg, const char *monitor, size_t endpoint, const char *msg)
{
	struct op_inst *in = arg;
	struct op_skip *v = realloc(in->next_skips, (in->n_next_skips + 1) * sizeof(*v));

	in->api->log(in->self, STARLING_LOG_WARN, "%s endpoint %zu skipped: %s", monitor, endpoint,
		     msg);
	in->api->metric_add(in->m_skipped, 1);
	if (!v)
		return;
	in->next_skips = v;
	v[in->n_next_skips].fp = in->cur_fp;
	snprintf(v[in->n_next_skips].msg, sizeof(v[0].msg), "%s endpoint %zu: %s", monitor,
		 endpoint, msg);
	in->n_next_skips++;
}

/* Client counters -> metrics. */
static void count_stats(struct op_inst *in)
{
	struct starling_k8s_stats st;

	starling_k8s_stats(in->k8s, &st);
	in->api->metric_add(in->m_api_errors, (double)(st.errors - in->seen.errors));
	in->api->metric_add(in->m_events, (double)(st.events - in->seen.events));
	in->api->metric_add(in->m_relists, (double)(st.lists - in->seen.lists));
	in->seen = st;
}

/* ------------------------------------------------------------------------ */
/* Target generation (discovery thread) and hand-over to the scrape thread.  */

static int collect(void *arg, struct op_job *job, const struct starling_lset *ls)
{
	struct op_inst *in = arg;
	struct scrape_target *t;
	struct op_target *ot;
	char err[256];
	int rc;

	rc = scrape_target_new(&job->cfg, ls->v, ls->n, &t, err, sizeof(err));
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		in->api->log(in->self, STARLING_LOG_DEBUG, "%s: target dropped: %s",
			     job->cfg.job_name, err);
		return 0;
	}
	if (in->n_next == in->next_cap) {
		size_t cap = in->next_cap ? in->next_cap * 2 : 64;
		struct op_target **v = realloc(in->next, cap * sizeof(*v));

		if (!v) {
			scrape_target_free(t);
			return -ENOMEM;
		}
		in->next = v;
		in->next_cap = cap;
	}
	ot = calloc(1, sizeof(*ot));
	if (!ot) {
		scrape_target_free(t);
		return -ENOMEM;
	}
	ot->t = t;
	ot->job = job;
	ot->in = in;
	ot->match = job->fingerprint * 0x9E3779B97F4A7C15ull ^ t->identity;
	t->owner = ot;
	op_job_get(job);
	in->next[in->n_next++] = ot;
	return 0;
}

static void target_free(struct op_target *ot)
{
	if (!ot)
		return;
	scrape_target_free(ot->t);
	op_job_put(ot->job);
	free(ot);
}

static int match_cmp(const void *a, const void *b)
{
	const struct op_target *x = *(struct op_target *const *)a;
	const struct op_target *y = *(struct op_target *const *)b;

	return (x->match > y->match) - (x->match < y->match);
}

static bool same_target(const struct op_target *a, const struct op_target *b)
{
	if (a->match != b->match || a->job->fingerprint != b->job->fingerprint ||
	    a->t->n_input != b->t->n_input)
		return false;
	for (size_t i = 0; i < a->t->n_input; i++)
		if (strcmp(a->t->input[i].name, b->t->input[i].name) ||
		    strcmp(a->t->input[i].value, b->t->input[i].value))
			return false;
	return true;
}

/* in->targets is a binary min-heap on next_due_ms: the scrape thread finds
 * the due targets without scanning them all. */
static void heap_down(struct op_target **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct op_target *tmp;

		if (l < n && h[l]->t->next_due_ms < h[m]->t->next_due_ms)
			m = l;
		if (l + 1 < n && h[l + 1]->t->next_due_ms < h[m]->t->next_due_ms)
			m = l + 1;
		if (m == i)
			return;
		tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

static void heapify(struct op_target **h, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		heap_down(h, n, i);
}

/* Install in->next as the target set (see the file comment). */
static int install_targets(struct op_inst *in)
{
	struct op_target **old, **ret;
	size_t n_old, kept = 0, removed = 0;
	int64_t now = in->api->now_ms();

	pthread_mutex_lock(&in->lock);
	old = in->targets;
	n_old = in->n_targets;
	ret = realloc(in->retired, (in->n_retired + n_old + 1) * sizeof(*ret));
	if (!ret) {
		pthread_mutex_unlock(&in->lock);
		return -ENOMEM;
	}
	in->retired = ret;
	if (n_old)
		qsort(old, n_old, sizeof(*old), match_cmp);
	for (size_t i = 0; i < in->n_next; i++) {
		struct op_target *nt = in->next[i], key = {.match = nt->match}, *kp = &key;
		struct op_target **hit =
		    n_old ? bsearch(&kp, old, n_old, sizeof(*old), match_cmp) : NULL;

		if (hit) {
			/* Back up to the first of equal keys, then scan them. */
			while (hit > old && hit[-1]->match == nt->match)
				hit--;
			for (; hit < old + n_old && (*hit)->match == nt->match; hit++) {
				if (*hit != NULL && (*hit)->t && same_target(*hit, nt) &&
				    (*hit)->t->state == TARGET_ACTIVE) {
					in->next[i] = *hit;
					(*hit)->t->state = TARGET_RETIRED; /* "taken" mark */
					target_free(nt);
					nt = NULL;
					kept++;
					break;
				}
			}
		}
		if (nt)
			nt->t->next_due_ms = starling_scrape_next_slot(
			    now, nt->job->cfg.interval_ms, nt->t->phase_ms);
	}
	for (size_t j = 0; j < n_old; j++) {
		struct op_target *o = old[j];

		if (o->t->state == TARGET_RETIRED) {
			o->t->state = TARGET_ACTIVE; /* kept */
			continue;
		}
		o->t->state = TARGET_RETIRED;
		o->t->retire_ms = o->t->next_due_ms;
		if (o->t->owned)
			in->owned--;
		in->retired[in->n_retired++] = o;
		removed++;
	}
	free(old);
	in->targets = in->next;
	in->n_targets = in->n_next;
	heapify(in->targets, in->n_targets);
	in->next = NULL;
	in->n_next = in->next_cap = 0;
	pthread_mutex_unlock(&in->lock);
	in->api->metric_set(in->m.targets, (double)in->n_targets);
	in->api->report_targets(in->self, in->owned, in->n_targets);
	in->api->log(in->self, STARLING_LOG_INFO,
		     "targets updated: %zu kept, %zu added, %zu removed", kept,
		     in->n_targets - kept, removed);
	if (in->http)
		starling_http_wakeup(in->http);
	return 0;
}

static void rebuild(struct op_inst *in)
{
	struct op_job **jobs = NULL;
	size_t n_jobs = 0, n_mon = 0;
	int rc = 0;

	for (size_t i = 0; i < in->n_refs; i++)
		in->refs[i].used = false;
	for (size_t m = 0; m < in->cluster.monitors.n && !rc; m++) {
		const cJSON *mon = in->cluster.monitors.v[m].obj;
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(mon, "metadata");
		uint64_t fp;
		struct op_job **mj = NULL;
		size_t nm = 0, reused = 0;
		char err[512];

		if (!op_selector_matches(&in->selector,
					 cJSON_GetObjectItemCaseSensitive(md, "labels")))
			continue;
		n_mon++;
		op_monitor_refs(mon, in->kind, want_ref, in);
		fp = op_monitor_job_fp(&in->defaults, mon);
		for (size_t j = 0; j < in->n_jobs; j++)
			reused += in->jobs[j]->monitor_fp == fp;
		for (size_t k = 0; k < in->n_skips; k++) {
			struct op_skip *v;

			if (in->skips[k].fp != fp)
				continue;
			/* unchanged monitor with skipped endpoints: keep the note */
			v = realloc(in->next_skips, (in->n_next_skips + 1) * sizeof(*v));
			if (v) {
				in->next_skips = v;
				v[in->n_next_skips++] = in->skips[k];
			}
			reused += !reused; /* also when all its endpoints were skipped */
		}
		in->cur_fp = fp;
		if (reused) {
			mj = calloc(reused + 1, sizeof(*mj));
			if (!mj) {
				rc = -ENOMEM;
				break;
			}
			for (size_t j = 0; j < in->n_jobs; j++) {
				if (in->jobs[j]->monitor_fp != fp)
					continue;
				op_job_get(in->jobs[j]);
				mj[nm++] = in->jobs[j];
			}
		} else {
			rc = op_jobs_from_monitor(&in->defaults, mon, &mj, &nm, err, sizeof(err));
			if (rc == -EINVAL) {
				in->api->log(in->self, STARLING_LOG_WARN, "monitor skipped: %s",
					     err);
				in->api->metric_add(in->m_api_errors, 1);
				rc = 0;
				continue;
			}
			if (rc)
				break;
		}
		{
			struct op_job **v = realloc(jobs, (n_jobs + nm + 1) * sizeof(*v));

			if (!v) {
				for (size_t j = 0; j < nm; j++)
					op_job_put(mj[j]);
				free(mj);
				rc = -ENOMEM;
				break;
			}
			jobs = v;
			memcpy(jobs + n_jobs, mj, nm * sizeof(*mj));
			n_jobs += nm;
			free(mj);
		}
	}
	/* Secrets / ConfigMaps no selected monitor references any more:
	 * their watches stop (and their objects go). */
	for (size_t i = 0; i < in->n_refs; i++)
		if (!in->refs[i].used && !in->refs[i].stopped) {
			starling_k8s_watch_enable(in->k8s, in->refs[i].watch, false);
			in->refs[i].stopped = true;
		}
	/* This rebuild's skipped endpoints replace the last one's. */
	free(in->skips);
	in->skips = in->next_skips;
	in->n_skips = in->n_next_skips;
	in->next_skips = NULL;
	in->n_next_skips = 0;
	/* A Secret or ConfigMap seen for the first time: its watch was just
	 * added; generate once it is listed (the endpoint may come back). */
	if (!rc && in->refs_added) {
		in->refs_added = false;
		for (size_t k = 0; k < n_jobs; k++)
			op_job_put(jobs[k]);
		free(jobs);
		return;
	}
	/* The first monitor with attachMetadata.node starts the nodes watch
	 * (only then does the component need RBAC for nodes); targets are
	 * generated once the nodes are listed. */
	for (size_t j = 0; !rc && !in->nodes_watched && j < n_jobs; j++) {
		if (!jobs[j]->attach_node)
			continue;
		rc = add_watch(in, "nodes", &in->cluster.nodes, "/api/v1", NULL, "nodes");
		in->nodes_watched = !rc;
		if (!rc) {
			for (size_t k = 0; k < n_jobs; k++)
				op_job_put(jobs[k]);
			free(jobs);
			return; /* still dirty: rebuilt after the nodes are listed */
		}
	}
	if (!rc)
		rc = op_targets(&in->defaults, jobs, n_jobs, &in->cluster, &in->gen, collect, in);
	if (!rc) {
		/* Identical targets of one job are scraped once. */
		size_t k = 0;

		if (in->n_next)
			qsort(in->next, in->n_next, sizeof(*in->next), match_cmp);
		for (size_t i = 0; i < in->n_next; i++) {
			bool dup = false;

			for (size_t j = k; j-- > 0 && in->next[j]->match == in->next[i]->match;)
				dup |= same_target(in->next[j], in->next[i]);
			if (dup)
				target_free(in->next[i]);
			else
				in->next[k++] = in->next[i];
		}
		in->n_next = k;
		/* targetLimit: a job with more targets fails every scrape with
		 * Prometheus' "target_limit exceeded" (scrape.go
		 * refreshTargetLimitErr), its targets kept. */
		for (size_t j = 0; j < n_jobs; j++)
			atomic_store(&jobs[j]->over_limit, 0);
		for (size_t i = 0; i < in->n_next; i++)
			atomic_fetch_add(&in->next[i]->job->over_limit, 1);
		for (size_t j = 0; j < n_jobs; j++) {
			struct op_job *jb = jobs[j];
			size_t n = atomic_load(&jb->over_limit);

			if (!jb->target_limit || n <= jb->target_limit) {
				atomic_store(&jb->over_limit, 0);
			} else if (n) {
				in->api->log(in->self, STARLING_LOG_WARN,
					     "%s: target_limit exceeded (number of targets: %zu, "
					     "limit: %llu)",
					     jb->cfg.job_name, n,
					     (unsigned long long)jb->target_limit);
			}
		}
		rc = install_targets(in);
	}
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "target generation failed: %s",
			     strerror(-rc));
		for (size_t i = 0; i < in->n_next; i++)
			target_free(in->next[i]);
		in->n_next = 0;
		for (size_t j = 0; j < n_jobs; j++)
			op_job_put(jobs[j]);
		free(jobs);
		return;
	}
	for (size_t j = 0; j < in->n_jobs; j++)
		op_job_put(in->jobs[j]);
	free(in->jobs);
	in->jobs = jobs;
	in->n_jobs = n_jobs;
	in->api->metric_set(in->m_monitors, (double)n_mon);
	in->dirty = false;
}

/* Targets are generated once the core collections (monitors, pods,
 * endpoints, services) are listed and every watch added later (nodes,
 * referenced Secrets / ConfigMaps) has had an answer: a Secret the
 * component may not read (403) skips the endpoints that need it instead
 * of holding up every monitor. */
static bool targets_ready(struct op_inst *in)
{
	size_t n = starling_k8s_watch_count(in->k8s);

	for (size_t i = 0; i < n; i++) {
		bool listed, failing;

		starling_k8s_watch_status(in->k8s, (int)i, &listed, &failing);
		if (!listed && (i < in->n_core_watches || !failing))
			return false;
	}
	return true;
}

static void *discovery_thread(void *arg)
{
	struct op_inst *in = arg;

	while (!atomic_load(&in->stopping)) {
		int64_t now, wait = 1000;
		bool synced;

		/* When a change is pending, wake up for its debounce. */
		if (in->dirty) {
			int64_t left = OP_DEBOUNCE_MS - (in->api->monotonic_ms() - in->dirty_ms);

			wait = left < 10 ? 10 : left;
		}
		starling_k8s_run(in->k8s, (int)wait);
		count_stats(in);
		now = in->api->monotonic_ms();
		synced = targets_ready(in);
		if (!synced && !in->sync_late && now - in->started_ms > in->sync_timeout_ms) {
			char why[160];

			snprintf(why, sizeof(why), "initial list not complete after %llds",
				 (long long)(in->sync_timeout_ms / 1000));
			in->api->log(in->self, STARLING_LOG_WARN, "%s", why);
			in->sync_late = true;
			in->healthy_set = true;
			in->healthy = false;
			in->api->set_health(in->self, false, why);
		}
		if (synced || !in->sync_late)
			update_health(in);
		if (synced && in->dirty && now - in->dirty_ms >= OP_DEBOUNCE_MS) {
			rebuild(in);
			in->api->log(in->self, STARLING_LOG_DEBUG, "targets regenerated in %lld ms",
				     (long long)(in->api->monotonic_ms() - now));
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Scraping (scrape thread), as prometheus.scrape.                           */

static void on_done(void *arg, const struct starling_http_response *resp)
{
	struct op_target *ot = arg;
	struct op_inst *in = ot->in;
	struct scrape_target *t = ot->t;
	const struct starling_host_api *api = in->api;
	struct scrape_ctx ctx = {api, in->self, &ot->job->cfg, &in->scratch};
	struct scrape_stats st;

	starling_scrape_finish(&ctx, t, resp, &in->lock, &in->stopping, &in->m, &st);
}

/* Whether this node scrapes t in the slot starting at `at`. */
static bool owns(struct op_inst *in, const struct scrape_target *t, int64_t at)
{
	return starling_scrape_owns_at(in->api, in->self, in->defaults.clustering,
				       in->defaults.replicas, t->key, at);
}

static void dispatch(struct op_inst *in, struct op_target *ot, int64_t slot)
{
	struct scrape_target *t = ot->t;
	bool owned = owns(in, t, slot);

	/* in->lock is held (schedule) */
	t->skipped_slot = owned ? STARLING_SCRAPE_NO_SLOT : slot;
	starling_scrape_owned_changed(in->api, in->self, &in->m, NULL, &in->owned, in->n_targets,
				      &t->owned, owned);
	if (!owned) {
		scrape_forget(t); /* moved away: no staleness markers */
		return;
	}
	if (t->in_flight) {
		in->api->metric_add(in->m.missed, 1);
		return;
	}
	if (atomic_load(&ot->job->over_limit)) {
		/* Prometheus' forced error: up = 0, nothing scraped. */
		struct starling_http_response r = {0};
		char msg[160];

		snprintf(
		    msg, sizeof(msg), "target_limit exceeded (number of targets: %zu, limit: %llu)",
		    atomic_load(&ot->job->over_limit), (unsigned long long)ot->job->target_limit);
		r.error = -E2BIG;
		r.error_msg = msg;
		r.retry_after_ms = -1;
		t->scrape_start_ms = in->api->now_ms();
		t->in_flight = true;
		on_done(ot, &r);
		return;
	}
	scrape_submit(in->http, &ot->job->cfg, t, in->api->now_ms(), on_done, ot,
		      "could not submit the request");
}

/* The scrape thread calls it with in->lock held. */
static int64_t schedule(void *arg, int64_t now)
{
	struct op_inst *in = arg;
	int64_t wait = STARLING_SCRAPE_MAX_WAIT_MS, back = 0;

	/* The wall clock went back: re-place every target on its slots from
	 * the new time. */
	if (in->n_targets)
		back = starling_scrape_clock_back(in->targets[0]->t->next_due_ms, now,
						  in->targets[0]->job->cfg.interval_ms);
	if (back) {
		in->api->log(in->self, STARLING_LOG_WARN,
			     "wall clock went back by %lld ms: rescheduling", (long long)back);
		for (size_t i = 0; i < in->n_targets; i++) {
			struct scrape_target *t = in->targets[i]->t;

			t->next_due_ms = starling_scrape_next_slot(
			    now, in->targets[i]->job->cfg.interval_ms, t->phase_ms);
		}
		heapify(in->targets, in->n_targets);
	}
	/* An owner declared dead: its targets' current slots that this node
	 * skipped and owns now are scraped at once (scrape_sched.h); the
	 * heap (by next_due_ms) is untouched. */
	if (starling_scrape_view_changed(in->api, in->self, in->defaults.clustering,
					 &in->seen_epoch))
		for (size_t i = 0; i < in->n_targets; i++) {
			struct scrape_target *t = in->targets[i]->t;
			int64_t slot = t->skipped_slot;

			if (starling_scrape_catch_up(in->api, in->self, true, in->defaults.replicas,
						     t->key, &t->skipped_slot,
						     in->targets[i]->job->cfg.interval_ms, now)) {
				in->api->metric_add(in->m.catch_up, 1);
				dispatch(in, in->targets[i], slot);
			}
		}
	while (in->n_targets && in->targets[0]->t->next_due_ms <= now) {
		struct op_target *ot = in->targets[0];
		struct scrape_target *t = ot->t;
		int64_t iv = ot->job->cfg.interval_ms, slot = t->next_due_ms;

		t->next_due_ms = starling_scrape_slot_done(t->next_due_ms, now, iv, t->phase_ms);
		heap_down(in->targets, in->n_targets, 0);
		dispatch(in, ot, slot);
	}
	if (in->n_targets)
		wait = in->targets[0]->t->next_due_ms - now;
	for (size_t i = 0; i < in->n_retired;) {
		struct op_target *ot = in->retired[i];
		struct scrape_ctx ctx = {in->api, in->self, &ot->job->cfg, &in->scratch};

		if (!starling_scrape_retire_step(&ctx, ot->t, now, &wait)) {
			i++;
			continue;
		}
		target_free(ot);
		in->retired[i] = in->retired[--in->n_retired];
	}
	return wait;
}

static void *scrape_thread(void *arg)
{
	struct op_inst *in = arg;

	starling_scrape_loop(in->api, in->http, &in->stopping, &in->lock, schedule, in);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks.                                                                */

static void on_cluster_change(void *arg, uint64_t epoch)
{
	struct op_inst *in = arg;
	size_t owned = 0, total;

	(void)epoch;
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		owned += owns(in, in->targets[i]->t, in->api->now_ms());
	total = in->n_targets;
	pthread_mutex_unlock(&in->lock);
	starling_scrape_report(in->api, in->self, &in->m, owned, total);
}

static void inst_free(struct op_inst *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_targets; i++)
		target_free(in->targets[i]);
	free(in->targets);
	for (size_t i = 0; i < in->n_retired; i++)
		target_free(in->retired[i]);
	free(in->retired);
	for (size_t i = 0; i < in->n_next; i++)
		target_free(in->next[i]);
	free(in->next);
	for (size_t j = 0; j < in->n_jobs; j++)
		op_job_put(in->jobs[j]);
	free(in->jobs);
	starling_k8s_client_free(in->k8s);
	op_cluster_free(&in->cluster);
	op_gen_scratch_free(&in->gen);
	scrape_scratch_free(&in->scratch);
	starling_relabel_rules_free(in->rules);
	op_selector_free(&in->selector);
	strv_free(in->namespaces, in->n_namespaces);
	starling_k8s_conn_free(&in->conn);
	for (size_t i = 0; i < in->n_refs; i++)
		free(in->refs[i].key);
	free(in->refs);
	free(in->skips);
	free(in->next_skips);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static int op_create(const struct starling_host_api *api, starling_component *self,
		     const starling_config *cfg, void **out, enum op_kind kind)
{
	struct op_inst *in = calloc(1, sizeof(*in));
	char err[512] = "";
	int rc;

	if (!in)
		return -ENOMEM;
	in->api = api;
	in->self = self;
	in->kind = kind;
	starling_scrape_lock_init(&in->lock);
	scrape_scratch_init(&in->scratch);
	op_gen_scratch_init(&in->gen);
	rc = config_load(in, cfg, err, sizeof(err));
	if (!rc) {
		struct starling_k8s_callbacks cb = {on_changed, on_k8s_log, in};

		rc = starling_k8s_client_new(&in->conn, &cb, &in->k8s);
	}
	if (!rc)
		rc = watches_init(in);
	if (!rc)
		in->n_core_watches = starling_k8s_watch_count(in->k8s);
	in->secrets.secrets = &in->cluster.secrets;
	in->secrets.configmaps = &in->cluster.configmaps;
	in->secrets.want = want_ref;
	in->secrets.skipped = endpoint_skipped;
	in->secrets.arg = in;
	in->defaults.secrets = &in->secrets;
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		inst_free(in);
		return rc;
	}
	starling_scrape_metrics_register(api, self, STARLING_SCRAPE_PROMETHEUS, &in->m);
	in->m_api_errors = api->metric_register(
	    self, STARLING_SELF_COUNTER, "starling_operator_api_errors_total",
	    "Failed or unparsable Kubernetes API responses and rejected monitors", NULL);
	in->m_events = api->metric_register(self, STARLING_SELF_COUNTER,
					    "starling_operator_watch_events_total",
					    "Kubernetes watch events received", NULL);
	in->m_relists =
	    api->metric_register(self, STARLING_SELF_COUNTER, "starling_operator_lists_total",
				 "Complete LISTs of a Kubernetes collection", NULL);
	in->m_skipped = api->metric_register(
	    self, STARLING_SELF_COUNTER, "starling_operator_endpoints_skipped_total",
	    "Monitor endpoints left out for bad HTTP settings (missing Secret, bad PEM, ...)",
	    NULL);
	in->m_monitors =
	    api->metric_register(self, STARLING_SELF_GAUGE, "starling_operator_monitors",
				 "Monitors selected by this component", NULL);
	*out = in;
	return 0;
}

static int podmonitors_create(const struct starling_host_api *api, starling_component *self,
			      const starling_config *cfg, void **out)
{
	return op_create(api, self, cfg, out, OP_POD_MONITORS);
}

static int servicemonitors_create(const struct starling_host_api *api, starling_component *self,
				  const starling_config *cfg, void **out)
{
	return op_create(api, self, cfg, out, OP_SERVICE_MONITORS);
}

static int op_stop(void *inst);

static int op_start(void *inst)
{
	struct op_inst *in = inst;
	int rc;

	atomic_store(&in->stopping, false);
	in->started_ms = in->api->monotonic_ms();
	in->sync_late = false;
	rc = starling_http_client_new(NULL, &in->http);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "HTTP client: %s",
			     strerror(rc ? -rc : ENOMEM));
		goto out_free;
	}
	if (in->defaults.clustering && STARLING_API_HAS(in->api, cluster_subscribe))
		in->api->cluster_subscribe(in->self, on_cluster_change, in);
	rc = pthread_create(&in->scrape_thread, NULL, scrape_thread, in);
	if (rc)
		goto out_thread;
	rc = pthread_create(&in->disc_thread, NULL, discovery_thread, in);
	if (rc) {
		atomic_store(&in->stopping, true);
		starling_http_wakeup(in->http);
		pthread_join(in->scrape_thread, NULL);
		goto out_thread;
	}
	in->running = true;
	return 0;
out_thread:
	in->api->log(in->self, STARLING_LOG_ERROR, "cannot start threads: %s", strerror(rc));
	rc = -rc;
out_free:
	starling_http_client_free(in->http);
	in->http = NULL;
	return rc ? rc : -ENOMEM;
}

static int op_stop(void *inst)
{
	struct op_inst *in = inst;

	if (in->defaults.clustering && STARLING_API_HAS(in->api, cluster_subscribe))
		in->api->cluster_subscribe(in->self, NULL, NULL);
	if (!in->running)
		return 0;
	atomic_store(&in->stopping, true);
	starling_k8s_wakeup(in->k8s);
	starling_http_wakeup(in->http);
	pthread_join(in->disc_thread, NULL);
	pthread_join(in->scrape_thread, NULL);
	in->running = false;
	/* A restart lists again from scratch. */
	starling_k8s_reset(in->k8s);
	starling_http_client_free(in->http);
	in->http = NULL;
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->t->in_flight = false;
	for (size_t i = 0; i < in->n_retired; i++)
		in->retired[i]->t->in_flight = false;
	return 0;
}

static void op_destroy(void *inst)
{
	inst_free(inst);
}

static int op_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct op_inst *in = inst;

	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		scrape_emit_target(in->api, in->self, in->defaults.clustering,
				   in->defaults.replicas, in->targets[i]->t, emit, ctx);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

const struct starling_component_type prometheus_operator_podmonitors_type = {
    STARLING_TYPE_HEAD,
    .name = "prometheus.operator.podmonitors",
    .help = "Discover PodMonitors on the Kubernetes API and scrape the pods they select",
    .schema = podmonitors_schema,
    .create = podmonitors_create,
    .start = op_start,
    .stop = op_stop,
    .destroy = op_destroy,
    .list_targets = op_list_targets,
};

const struct starling_component_type prometheus_operator_servicemonitors_type = {
    STARLING_TYPE_HEAD,
    .name = "prometheus.operator.servicemonitors",
    .help = "Discover ServiceMonitors on the Kubernetes API and scrape the endpoints they "
	    "select",
    .schema = servicemonitors_schema,
    .create = servicemonitors_create,
    .start = op_start,
    .stop = op_stop,
    .destroy = op_destroy,
    .list_targets = op_list_targets,
};
