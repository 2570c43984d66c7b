/*
 * Targets of pyroscope.scrape: profile types, labels, URL, key and phase.
 *
 * The rules are Alloy's (internal/component/pyroscope/scrape/target.go):
 * one scrape per input target and enabled profile type; the URL is
 * scheme://address + __profile_path_prefix__ + __profile_path__, and a delta
 * profile (CPU) is asked for with ?seconds=N. All input targets of one
 * address share one ownership key, so all their profile types land on the
 * same node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/labels.h>

#include "pyro_scrape.h"

const struct pyro_builtin pyro_builtins[] = {
    {"process_cpu", "/debug/pprof/profile", true, true},
    {"memory", "/debug/pprof/allocs", true, false},
    {"goroutine", "/debug/pprof/goroutine", true, false},
    {"mutex", "/debug/pprof/mutex", true, false},
    {"block", "/debug/pprof/block", true, false},
    {"fgprof", "/debug/fgprof", false, true},
    {"godeltaprof_memory", "/debug/pprof/delta_heap", false, false},
    {"godeltaprof_mutex", "/debug/pprof/delta_mutex", false, false},
    {"godeltaprof_block", "/debug/pprof/delta_block", false, false},
};
const size_t pyro_n_builtins = sizeof(pyro_builtins) / sizeof(pyro_builtins[0]);

const char *pyro_label(const struct starling_label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0)
			return l[i].value;
	return NULL;
}

static bool nonempty(const char *s)
{
	return s && *s;
}

const char *pyro_service_name(const struct starling_label *in, size_t n, char **alloc)
{
	const char *v, *ns, *ct;

	*alloc = NULL;
	v = pyro_label(in, n, "__meta_kubernetes_pod_annotation_pyroscope_io_service_name");
	if (nonempty(v))
		return v;
	ns = pyro_label(in, n, "__meta_kubernetes_namespace");
	ct = pyro_label(in, n, "__meta_kubernetes_pod_container_name");
	if (nonempty(ns) && nonempty(ct)) {
		size_t l = strlen(ns) + strlen(ct) + 2;

		*alloc = malloc(l);
		if (!*alloc)
			return "unspecified";
		snprintf(*alloc, l, "%s/%s", ns, ct);
		return *alloc;
	}
	v = pyro_label(in, n, "__meta_docker_container_name");
	if (nonempty(v))
		return v;
	v = pyro_label(in, n, "__meta_dockerswarm_container_label_service_name");
	if (nonempty(v))
		return v;
	v = pyro_label(in, n, "__meta_dockerswarm_service_name");
	if (nonempty(v))
		return v;
	return "unspecified";
}

/* A growable byte buffer for the URL. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Go url.QueryEscape. */
static void buf_query(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			buf_add(b, (const char *)&c, 1);
		} else if (c == ' ') {
			buf_add(b, "+", 1);
		} else {
			e[0] = '%';
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			buf_add(b, e, 3);
		}
	}
}

/* The working label set while a target is assembled: strings point into
 * the input, the config or literals, and are copied at the end. */
struct lvec {
	struct starling_label v[256];
	size_t n;
};

static int lvec_set(struct lvec *lv, const char *name, const char *value, bool replace)
{
	for (size_t i = 0; i < lv->n; i++) {
		if (strcmp(lv->v[i].name, name) == 0) {
			if (replace)
				lv->v[i].value = value;
			return 0;
		}
	}
	if (lv->n == sizeof(lv->v) / sizeof(lv->v[0]))
		return -E2BIG;
	lv->v[lv->n].name = name;
	lv->v[lv->n].value = value;
	lv->n++;
	return 0;
}

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_scrape_param *)a)->name,
		      ((const struct starling_scrape_param *)b)->name);
}

/* Query string: the component's params, which override the target's
 * __param_<name> labels of the same name (Alloy's populateLabels sets
 * __param_<name> from the component's params over the target's), the
 * target's other __param_ labels, and seconds=N for delta profiles. */
static void build_query(const struct pyro_config *cfg, const struct pyro_profile_type *pt,
			const struct starling_label *in, size_t n, struct buf *b)
{
	struct starling_scrape_param q[64];
	size_t nq = 0;
	char secs[24];
	bool first = true;

	for (size_t i = 0; i < cfg->n_params && nq < 64; i++)
		q[nq++] = cfg->params[i];
	for (size_t i = 0; i < n && nq < 64; i++) {
		bool dup = false;

		if (strncmp(in[i].name, "__param_", 8) != 0 || !in[i].name[8])
			continue;
		for (size_t j = 0; j < cfg->n_params && !dup; j++)
			dup = strcmp(cfg->params[j].name, in[i].name + 8) == 0;
		if (!dup)
			q[nq++] = (struct starling_scrape_param){(char *)in[i].name + 8,
								 (char *)in[i].value};
	}
	if (pt->delta) {
		snprintf(secs, sizeof(secs), "%lld", (long long)cfg->delta_seconds);
		for (size_t j = 0; j < nq; j++)
			if (strcmp(q[j].name, "seconds") == 0)
				q[j] = q[--nq];
		if (nq < 64)
			q[nq++] = (struct starling_scrape_param){"seconds", secs};
	}
	qsort(q, nq, sizeof(q[0]), param_cmp);
	for (size_t i = 0; i < nq; i++) {
		buf_add(b, first ? "?" : "&", 1);
		first = false;
		buf_query(b, q[i].name);
		buf_add(b, "=", 1);
		buf_query(b, q[i].value);
	}
}

/* The profile name receivers see: godeltaprof endpoints serve the standard
 * memory, mutex and block profiles (as deltas), and Alloy sends them under
 * those names (scrape/target.go NewTarget: "the fact that godeltaprof was
 * used scraping should not be user visible"). */
const char *pyro_public_name(const char *type_name)
{
	if (strcmp(type_name, "godeltaprof_memory") == 0)
		return "memory";
	if (strcmp(type_name, "godeltaprof_mutex") == 0)
		return "mutex";
	if (strcmp(type_name, "godeltaprof_block") == 0)
		return "block";
	return type_name;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_label *)a)->name,
		      ((const struct starling_label *)b)->name);
}

int pyro_target_new(const struct pyro_config *cfg, const struct pyro_profile_type *pt,
		    const struct starling_label *in, size_t n, struct pyro_target **out, char *err,
		    size_t errlen)
{
	struct lvec *lv = NULL;
	struct pyro_target *t = NULL;
	struct buf url = {0};
	const char *addr, *scheme, *prefix, *path, *svc, *v;
	char *addr_alloc = NULL, *svc_alloc = NULL, *p;
	size_t total = 0, k = 0;
	int rc = -ENOMEM;

	*out = NULL;
	addr = pyro_label(in, n, "__address__");
	if (!nonempty(addr)) {
		snprintf(err, errlen, "target has no __address__ label");
		return -EINVAL;
	}
	if (strchr(addr, '/') || strchr(addr, '?') || strchr(addr, '#')) {
		snprintf(err, errlen, "__address__ \"%s\" must be host:port, not a URL", addr);
		return -EINVAL;
	}
	scheme = pyro_label(in, n, "__scheme__");
	if (!nonempty(scheme))
		scheme = cfg->scheme;
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(err, errlen, "__scheme__ must be http or https, not \"%s\"", scheme);
		return -EINVAL;
	}
	prefix = pyro_label(in, n, "__profile_path_prefix__");
	if (!prefix)
		prefix = cfg->path_prefix ? cfg->path_prefix : "";
	/* A target's own __profile_path__ wins over the profile type's path
	 * (Alloy's LabelsByProfiles: setIfNotPresentAndNotEmpty). */
	path = pyro_label(in, n, "__profile_path__");
	if (!nonempty(path))
		path = pt->path;

	/* Missing port: Alloy adds the scheme's default port. A bracketed
	 * IPv6 address has a port only after the closing bracket. */
	{
		const char *rb = strrchr(addr, ']');
		const char *colon = strrchr(rb ? rb : addr, ':');
		bool bare_v6 = !rb && strchr(addr, ':') != strrchr(addr, ':');

		if (!colon || bare_v6) {
			size_t l = strlen(addr) + 10;

			addr_alloc = malloc(l);
			if (!addr_alloc)
				goto out;
			if (bare_v6)
				snprintf(addr_alloc, l, "[%s]:%s", addr,
					 strcmp(scheme, "https") ? "80" : "443");
			else
				snprintf(addr_alloc, l, "%s:%s", addr,
					 strcmp(scheme, "https") ? "80" : "443");
			addr = addr_alloc;
		}
	}

	lv = calloc(1, sizeof(*lv));
	if (!lv)
		goto out;
	for (size_t i = 0; i < n; i++) {
		rc = lvec_set(lv, in[i].name, in[i].value, true);
		if (rc) {
			snprintf(err, errlen, "target has too many labels");
			goto out;
		}
	}
	lvec_set(lv, "__address__", addr, true);
	lvec_set(lv, "job", cfg->job_name, false);
	lvec_set(lv, "instance", addr, false);
	lvec_set(lv, "__name__", pyro_public_name(pt->name), true);
	if (pt->client_delta)
		lvec_set(lv, "__delta__", "false", true);
	v = pyro_label(lv->v, lv->n, "service_name");
	if (!nonempty(v)) {
		svc = pyro_service_name(in, n, &svc_alloc);
		lvec_set(lv, "service_name", svc, true);
	}
	/* Instrumentation scope, filled in only when absent, as Alloy's
	 * AddScopeLabels (internal/component/pyroscope/scope.go) does: the
	 * same scope name as Alloy, so series stay continuous when a fleet
	 * moves over, and the version only with that default name. */
	v = pyro_label(lv->v, lv->n, "otel.scope.name");
	if (!nonempty(v)) {
		lvec_set(lv, "otel.scope.name", PYRO_SCOPE_NAME, true);
		v = PYRO_SCOPE_NAME;
	}
	if (strcmp(v, PYRO_SCOPE_NAME) == 0 &&
	    !nonempty(pyro_label(lv->v, lv->n, "otel.scope.version")))
		lvec_set(lv, "otel.scope.version", "v" STARLING_VERSION, true);
	rc = -ENOMEM;

	/* Keep what goes to the receivers: everything but "__" labels, and
	 * __name__; empty values mean "absent". */
	for (size_t i = 0; i < lv->n; i++) {
		const struct starling_label *l = &lv->v[i];

		if (!l->value[0] || (strncmp(l->name, "__", 2) == 0 &&
				     strcmp(l->name, "__name__") && strcmp(l->name, "__delta__")))
			continue;
		lv->v[k++] = *l;
		total += strlen(l->name) + strlen(l->value) + 2;
	}
	qsort(lv->v, k, sizeof(lv->v[0]), label_cmp);

	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->skipped_slot = STARLING_SCRAPE_NO_SLOT;
	t->labels = calloc(k ? k : 1, sizeof(*t->labels));
	t->strings = malloc(total ? total : 1);
	if (!t->labels || !t->strings)
		goto out;
	p = t->strings;
	for (size_t i = 0; i < k; i++) {
		size_t ln = strlen(lv->v[i].name) + 1, lvl = strlen(lv->v[i].value) + 1;

		memcpy(p, lv->v[i].name, ln);
		t->labels[i].name = p;
		p += ln;
		memcpy(p, lv->v[i].value, lvl);
		t->labels[i].value = p;
		p += lvl;
	}
	t->n_labels = k;

	buf_str(&url, scheme);
	buf_str(&url, "://");
	buf_str(&url, addr);
	buf_str(&url, prefix);
	buf_str(&url, path[0] == '/' ? "" : "/");
	buf_str(&url, path);
	build_query(cfg, pt, in, n, &url);
	if (url.oom)
		goto out;
	t->url = url.p;
	url.p = NULL;

	t->key =
	    starling_target_key(in, n, (const char *const *)cfg->key_labels, cfg->n_key_labels,
				(const char *const *)cfg->exclude_labels, cfg->n_exclude_labels);
	t->phase_ms = starling_scrape_phase(t->key, cfg->interval_ms);
	t->delta = pt->delta;
	t->client_delta = pt->client_delta;
	t->type_name = strdup(pt->name);
	if (!t->type_name)
		goto out;
	/* A delta profile takes `seconds` to record: Alloy lets such a scrape
	 * run for timeout + interval - 1s (newScrapeLoop). */
	t->timeout_ms = cfg->timeout_ms;
	if (pt->delta)
		t->timeout_ms += cfg->interval_ms - 1000;
	t->health = STARLING_TARGET_UNKNOWN;
	*out = t;
	t = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	pyro_target_free(t);
	free(url.p);
	free(lv);
	free(addr_alloc);
	free(svc_alloc);
	return rc;
}

void pyro_target_free(struct pyro_target *t)
{
	if (!t)
		return;
	free(t->labels);
	free(t->strings);
	free(t->url);
	free(t->type_name);
	pyro_delta_free(t->delta_state);
	free(t);
}

int pyro_validate(long status, const char *content_type, const uint8_t *body, size_t len, char *err,
		  size_t errlen)
{
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "server returned HTTP status %ld", status);
		return -EPROTO;
	}
	if (len == 0) {
		snprintf(err, errlen, "empty profile");
		return -EBADMSG;
	}
	if (!content_type || strncasecmp(content_type, "application/octet-stream", 24) != 0) {
		snprintf(err, errlen,
			 "unexpected Content-Type \"%s\" (want application/octet-stream)",
			 content_type ? content_type : "");
		return -EBADMSG;
	}
	if (len >= 2 && body[0] == 0x1f && body[1] == 0x8b)
		return 0;
	/* Uncompressed pprof: the first byte is a protobuf tag with a field
	 * number > 0 and a wire type below 6. HTML and JSON start with '<',
	 * '{' or '[' whose wire types (4, 3, 3) would pass, so name them. */
	if (body[0] == '<' || body[0] == '{' || body[0] == '[' || (body[0] & 7) >= 6 ||
	    (body[0] >> 3) == 0) {
		snprintf(err, errlen, "body is not a pprof profile (starts with 0x%02x)", body[0]);
		return -EBADMSG;
	}
	return 0;
}
