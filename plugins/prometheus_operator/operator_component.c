/*
 * prometheus.operator.podmonitors / .servicemonitors: configuration, the
 * Kubernetes list+watch loop and the scrape loop.
 *
 * Two threads per instance. The discovery thread keeps a local copy of the
 * monitors, pods (and endpoints, services) with one libcurl multi handle:
 * each collection is LISTed (paged), then WATCHed from the list's
 * resourceVersion as a stream of newline-separated JSON events; a 410 Gone
 * (status or in-stream ERROR) re-lists, other failures back off 1s..30s.
 * After a change (debounced 200 ms, and only once every collection was
 * listed, so a half-synced cache never retires targets) it regenerates the
 * targets and hands the set to the scrape thread, which keeps unchanged
 * targets (same job, same labels) with their series cache and schedule,
 * starts new ones at their slot and retires vanished ones with staleness
 * markers. The scrape thread is prometheus.scrape's machinery: slots at
 * hash(key) mod interval, ownership asked of the cluster service per slot.
 *
 * The watch stream needs a streaming body, which the SDK HTTP client does
 * not offer (it hands bodies over whole), hence libcurl directly here; the
 * scrapes use the SDK client.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <starling/http.h>
#include <starling/scrape_pool.h>

#include "operator.h"

#define OP_LIST_LIMIT	   500
#define OP_WATCH_TIMEOUT_S 300
#define OP_BODY_LIMIT	   ((size_t)256 << 20)
#define OP_BACKOFF_MIN_MS  1000
#define OP_BACKOFF_MAX_MS  30000
#define OP_DEBOUNCE_MS	   200
#define OP_MAX_WATCHES	   64
#define SA_DIR		   "/var/run/secrets/kubernetes.io/serviceaccount"

struct op_inst;

struct op_target {
	struct scrape_target *t;
	struct op_job *job;
	struct op_inst *in;
	uint64_t match; /* job fingerprint and label identity, for diffs */
};

enum watch_state { W_LIST, W_WATCH };

/* One collection the discovery thread keeps in sync. */
struct op_watch {
	struct op_inst *in;
	int idx;	  /* tag of its objects in the store */
	const char *what; /* for logs: "pods" */
	struct op_store *store;
	char *path; /* "/api/v1/pods" */
	enum watch_state state;
	bool listed;	      /* listed at least once */
	bool failing;	      /* last attempt failed */
	bool relist;	      /* the stream said 410 / error: list again */
	bool garbage;	      /* the server sent something unparsable */
	char *rv;	      /* resourceVersion to watch from */
	char *cont;	      /* continue token of a paged list */
	struct op_store pend; /* pages of a list in progress */
	CURL *easy;	      /* in flight, or NULL */
	struct curl_slist *hdrs;
	char *buf;
	size_t len, cap;
	long status;
	int64_t next_ms;    /* earliest start of the next request */
	int64_t started_ms; /* when the current request started */
	int64_t backoff_ms;
	char err[256];
};

struct op_client {
	char *api_server;
	char *bearer_token;
	char *bearer_token_file;
	char *ca_file, *cert_file, *key_file, *server_name;
	bool insecure;
	char *username, *password, *password_file;
	char *proxy_url;
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
	struct op_client client;

	/* Discovery thread only. */
	struct op_cluster cluster;
	struct op_watch watches[OP_MAX_WATCHES];
	size_t n_watches;
	CURLM *multi;
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
	struct starling_http_client *http;
	struct scrape_scratch scratch;
	pthread_t scrape_thread;
	bool running;
	atomic_bool stopping;

	struct starling_scrape_metrics m;
	starling_metric *m_api_errors, *m_events, *m_relists, *m_monitors;
};

/* ------------------------------------------------------------------------ */
/* Schema.                                                                   */

static const struct starling_config_key clustering_keys[] = {
    {"enabled", STARLING_CFG_BOOL, false, "false",
     "Distribute the targets among the cluster's nodes"},
    {NULL},
};

static const struct starling_config_key client_keys[] = {
    {"api_server", STARLING_CFG_STRING, false, NULL,
     "URL of the Kubernetes API server (default: in-cluster service account)"},
    {"kubeconfig_file", STARLING_CFG_STRING, false, NULL,
     "kubeconfig file (server, certificate-authority, token of the current context)"},
    STARLING_HTTP_CONFIG_KEYS,
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
     "Accepted for compatibility; monitor file references are not used"},
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* Configuration.                                                            */

static int dup_opt(const struct starling_host_api *api, const starling_config *cfg,
		   const char *path, char **out)
{
	const char *s;

	if (api->config_string(cfg, path, &s) || !s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static void client_free(struct op_client *c)
{
	free(c->api_server);
	free(c->bearer_token);
	free(c->bearer_token_file);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->server_name);
	free(c->username);
	free(c->password);
	free(c->password_file);
	free(c->proxy_url);
	memset(c, 0, sizeof(*c));
}

/* The few kubeconfig keys that matter for a token or client-cert context:
 * the first cluster's server and certificate-authority, the first user's
 * token/tokenFile/client-certificate/client-key. Line-based, enough for
 * the files kubectl writes; embedded *-data keys are refused. */
static int kubeconfig_load(const char *path, struct op_client *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int rc = 0;

	if (!f) {
		snprintf(err, errlen, "kubeconfig_file %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		static const struct {
			const char *key;
			size_t off;
		} keys[] = {
		    {"server:", offsetof(struct op_client, api_server)},
		    {"certificate-authority:", offsetof(struct op_client, ca_file)},
		    {"token:", offsetof(struct op_client, bearer_token)},
		    {"tokenFile:", offsetof(struct op_client, bearer_token_file)},
		    {"client-certificate:", offsetof(struct op_client, cert_file)},
		    {"client-key:", offsetof(struct op_client, key_file)},
		};
		char *p = line, *e;

		while (*p == ' ' || *p == '\t' || *p == '-')
			p++;
		e = strchr(p, ':');
		if (e && e - p >= 5 && strncmp(e - 5, "-data", 5) == 0) {
			snprintf(err, errlen,
				 "kubeconfig_file %s: embedded *-data keys are not "
				 "supported, use file paths",
				 path);
			rc = -EINVAL;
			break;
		}
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			char **dst = (char **)((char *)c + keys[k].off);
			size_t l = strlen(keys[k].key);

			if (strncmp(p, keys[k].key, l) || *dst)
				continue;
			p += l;
			while (*p == ' ' || *p == '"' || *p == '\'')
				p++;
			e = p + strlen(p);
			while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
					 e[-1] == '"' || e[-1] == '\''))
				e--;
			*dst = strndup(p, (size_t)(e - p));
			if (!*dst)
				rc = -ENOMEM;
			break;
		}
	}
	fclose(f);
	if (!rc && !c->api_server) {
		snprintf(err, errlen, "kubeconfig_file %s: no cluster server found", path);
		rc = -EINVAL;
	}
	return rc;
}

static int client_load(const struct starling_host_api *api, const starling_config *cfg,
		       struct op_client *c, char *err, size_t errlen)
{
	const char *kc = NULL;
	int rc = 0;

	rc |= dup_opt(api, cfg, "client.api_server", &c->api_server);
	rc |= dup_opt(api, cfg, "client.bearer_token", &c->bearer_token);
	rc |= dup_opt(api, cfg, "client.bearer_token_file", &c->bearer_token_file);
	rc |= dup_opt(api, cfg, "client.tls_config.ca_file", &c->ca_file);
	rc |= dup_opt(api, cfg, "client.tls_config.cert_file", &c->cert_file);
	rc |= dup_opt(api, cfg, "client.tls_config.key_file", &c->key_file);
	rc |= dup_opt(api, cfg, "client.tls_config.server_name", &c->server_name);
	rc |= dup_opt(api, cfg, "client.basic_auth.username", &c->username);
	rc |= dup_opt(api, cfg, "client.basic_auth.password", &c->password);
	rc |= dup_opt(api, cfg, "client.basic_auth.password_file", &c->password_file);
	rc |= dup_opt(api, cfg, "client.proxy_url", &c->proxy_url);
	if (rc)
		return -ENOMEM;
	api->config_bool(cfg, "client.tls_config.insecure_skip_verify", &c->insecure);
	if (c->bearer_token && c->bearer_token_file) {
		snprintf(err, errlen, "client: at most one of bearer_token and bearer_token_file");
		return -EINVAL;
	}
	if ((c->bearer_token || c->bearer_token_file) && c->username) {
		snprintf(err, errlen, "client: at most one of basic_auth and bearer_token(_file)");
		return -EINVAL;
	}
	if (!api->config_string(cfg, "client.kubeconfig_file", &kc) && kc) {
		if (c->api_server) {
			snprintf(err, errlen,
				 "client: api_server and kubeconfig_file are exclusive");
			return -EINVAL;
		}
		return kubeconfig_load(kc, c, err, errlen);
	}
	if (c->api_server)
		return 0;
	/* In-cluster defaults, as client-go's InClusterConfig. */
	{
		const char *h = getenv("KUBERNETES_SERVICE_HOST");
		const char *p = getenv("KUBERNETES_SERVICE_PORT");

		if (!h || !p) {
			snprintf(err, errlen,
				 "client: no api_server or kubeconfig_file, and not "
				 "running in a cluster (KUBERNETES_SERVICE_HOST unset)");
			return -EINVAL;
		}
		if (asprintf(&c->api_server, strchr(h, ':') ? "https://[%s]:%s" : "https://%s:%s",
			     h, p) < 0) {
			c->api_server = NULL;
			return -ENOMEM;
		}
		if (!c->bearer_token && !c->bearer_token_file && !c->username)
			c->bearer_token_file = strdup(SA_DIR "/token");
		if (!c->ca_file)
			c->ca_file = strdup(SA_DIR "/ca.crt");
		if (!c->ca_file || (!c->bearer_token_file && !c->bearer_token && !c->username))
			return -ENOMEM;
	}
	return 0;
}

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
	rc = starling_relabel_rules_from_config(api, api->config_lookup(cfg, "rule"), &in->rules,
						err, errlen);
	if (rc)
		return rc;
	d->rules = in->rules;
	rc = string_list(api, cfg, "namespaces", &in->namespaces, &in->n_namespaces);
	if (!rc)
		rc = selector_load(api, cfg, &in->selector, err, errlen);
	if (!rc)
		rc = client_load(api, cfg, &in->client, err, errlen);
	if (!rc && in->n_namespaces + 4 > OP_MAX_WATCHES) {
		snprintf(err, errlen, "namespaces: at most %d", OP_MAX_WATCHES - 4);
		rc = -EINVAL;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Watches.                                                                  */

static int add_watch(struct op_inst *in, const char *what, struct op_store *store,
		     const char *prefix, const char *ns, const char *resource)
{
	struct op_watch *w = &in->watches[in->n_watches];
	int rc;

	memset(w, 0, sizeof(*w));
	w->in = in;
	w->idx = (int)in->n_watches;
	w->what = what;
	w->store = store;
	w->state = W_LIST;
	w->backoff_ms = OP_BACKOFF_MIN_MS;
	if (ns)
		rc = asprintf(&w->path, "%s/namespaces/%s/%s", prefix, ns, resource);
	else
		rc = asprintf(&w->path, "%s/%s", prefix, resource);
	if (rc < 0) {
		w->path = NULL;
		return -ENOMEM;
	}
	in->n_watches++;
	return 0;
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

static void watch_reset_transfer(struct op_watch *w)
{
	if (w->easy) {
		curl_multi_remove_handle(w->in->multi, w->easy);
		curl_easy_cleanup(w->easy);
		w->easy = NULL;
	}
	curl_slist_free_all(w->hdrs);
	w->hdrs = NULL;
	w->len = 0;
	w->status = 0;
	w->garbage = false;
}

static void watches_free(struct op_inst *in)
{
	for (size_t i = 0; i < in->n_watches; i++) {
		struct op_watch *w = &in->watches[i];

		watch_reset_transfer(w);
		free(w->path);
		free(w->rv);
		free(w->cont);
		free(w->buf);
		op_store_clear(&w->pend, -1);
	}
	in->n_watches = 0;
}

static void set_rv(struct op_watch *w, const char *rv)
{
	char *n;

	if (!rv || !*rv)
		return;
	n = strdup(rv);
	if (!n)
		return;
	free(w->rv);
	w->rv = n;
}

static void update_health(struct op_inst *in, const char *why)
{
	bool ok = true;

	for (size_t i = 0; i < in->n_watches; i++)
		ok &= in->watches[i].listed && !in->watches[i].failing;
	if (in->healthy_set && ok == in->healthy)
		return;
	/* Not yet listed but not failing either: starting, leave it be. */
	if (!ok && !why)
		return;
	in->healthy_set = true;
	in->healthy = ok;
	in->api->set_health(in->self, ok, ok ? NULL : why);
}

static void watch_failed(struct op_watch *w, bool relist, const char *fmt, ...)
    STARLING_PRINTF(3, 4);
static void watch_failed(struct op_watch *w, bool relist, const char *fmt, ...)
{
	struct op_inst *in = w->in;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	in->api->log(in->self, STARLING_LOG_WARN, "%s %s: %s (retrying in %llds)", w->what,
		     w->state == W_LIST ? "list" : "watch", w->err,
		     (long long)(w->backoff_ms / 1000));
	in->api->metric_add(in->m_api_errors, 1);
	w->failing = true;
	w->next_ms = in->api->monotonic_ms() + w->backoff_ms;
	w->backoff_ms =
	    w->backoff_ms * 2 > OP_BACKOFF_MAX_MS ? OP_BACKOFF_MAX_MS : w->backoff_ms * 2;
	if (relist || !w->rv) {
		w->state = W_LIST;
		free(w->cont);
		w->cont = NULL;
		op_store_clear(&w->pend, -1);
	}
	update_health(in, w->err);
}

static void mark_dirty(struct op_inst *in)
{
	if (!in->dirty)
		in->dirty_ms = in->api->monotonic_ms();
	in->dirty = true;
}

/* One watch event line. Returns 0, or -1 to end the stream. */
static int watch_event(struct op_watch *w, const char *line, size_t len)
{
	struct op_inst *in = w->in;
	cJSON *ev = cJSON_ParseWithLength(line, len), *obj;
	const char *type;

	if (!cJSON_IsObject(ev)) {
		cJSON_Delete(ev);
		w->garbage = true;
		snprintf(w->err, sizeof(w->err), "unparsable watch event (%zu bytes)", len);
		return -1;
	}
	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
	obj = cJSON_DetachItemFromObjectCaseSensitive(ev, "object");
	if (!type || !cJSON_IsObject(obj)) {
		w->garbage = true;
		snprintf(w->err, sizeof(w->err), "watch event without type or object");
		goto out_garbage;
	}
	in->api->metric_add(in->m_events, 1);
	if (strcmp(type, "ERROR") == 0) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		const char *msg =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "message"));

		w->relist = true;
		if (cJSON_IsNumber(code) && code->valueint == 410) {
			in->api->log(in->self, STARLING_LOG_INFO,
				     "%s watch expired (%s): re-listing", w->what,
				     msg ? msg : "410 Gone");
			free(w->rv);
			w->rv = NULL;
		} else {
			snprintf(w->err, sizeof(w->err), "watch error: %s", msg ? msg : "unknown");
			w->garbage = true;
		}
		cJSON_Delete(obj);
		cJSON_Delete(ev);
		return -1;
	}
	{
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");

		set_rv(w, cJSON_GetStringValue(
			      cJSON_GetObjectItemCaseSensitive(md, "resourceVersion")));
	}
	if (strcmp(type, "BOOKMARK") == 0) {
		cJSON_Delete(obj);
	} else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
		op_prune(obj, w->store == &in->cluster.pods);
		if (op_store_put(w->store, obj, w->idx)) {
			w->garbage = true;
			snprintf(w->err, sizeof(w->err), "%s event for an object without a name",
				 type);
			cJSON_Delete(ev);
			return -1;
		}
		mark_dirty(in);
	} else if (strcmp(type, "DELETED") == 0) {
		if (!op_store_del(w->store, obj))
			mark_dirty(in);
		cJSON_Delete(obj);
	} else {
		w->garbage = true;
		snprintf(w->err, sizeof(w->err), "unknown watch event type \"%.40s\"", type);
		goto out_garbage;
	}
	cJSON_Delete(ev);
	w->failing = false;
	w->backoff_ms = OP_BACKOFF_MIN_MS;
	return 0;
out_garbage:
	cJSON_Delete(obj);
	cJSON_Delete(ev);
	return -1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct op_watch *w = arg;
	size_t n = size * nmemb;

	if (atomic_load(&w->in->stopping))
		return 0;
	if (!w->status)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 65536;
		char *b;

		while (cap < w->len + n + 1)
			cap *= 2;
		if (cap > OP_BODY_LIMIT) {
			snprintf(w->err, sizeof(w->err), "response over %zu bytes", OP_BODY_LIMIT);
			w->garbage = true;
			return 0;
		}
		b = realloc(w->buf, cap);
		if (!b)
			return 0;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
	w->buf[w->len] = '\0';
	if (w->state != W_WATCH || w->status != 200)
		return n;
	/* Events are newline-separated JSON documents. */
	{
		size_t start = 0;

		for (size_t i = 0; i < w->len; i++) {
			if (w->buf[i] != '\n')
				continue;
			if (i > start && watch_event(w, w->buf + start, i - start))
				return 0;
			start = i + 1;
		}
		memmove(w->buf, w->buf + start, w->len - start);
		w->len -= start;
	}
	return n;
}

static int watch_start(struct op_watch *w)
{
	struct op_inst *in = w->in;
	const struct op_client *c = &in->client;
	char url[4096], hdr[8192];
	int n;

	watch_reset_transfer(w);
	w->relist = false;
	if (w->state == W_LIST) {
		char *esc = w->cont ? curl_easy_escape(NULL, w->cont, 0) : NULL;

		n = snprintf(url, sizeof(url), "%s%s?limit=%d%s%s", c->api_server, w->path,
			     OP_LIST_LIMIT, esc ? "&continue=" : "", esc ? esc : "");
		curl_free(esc);
	} else {
		n = snprintf(url, sizeof(url),
			     "%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d"
			     "&resourceVersion=%s",
			     c->api_server, w->path, OP_WATCH_TIMEOUT_S, w->rv ? w->rv : "");
	}
	if (n < 0 || (size_t)n >= sizeof(url))
		return -ENAMETOOLONG;
	w->easy = curl_easy_init();
	if (!w->easy)
		return -ENOMEM;
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(w->easy, CURLOPT_TIMEOUT_MS,
			 w->state == W_LIST ? 60000L : (OP_WATCH_TIMEOUT_S + 30) * 1000L);
	curl_easy_setopt(w->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(w->easy, CURLOPT_USERAGENT, "Starling/" STARLING_VERSION);
	w->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (c->bearer_token_file) {
		FILE *f = fopen(c->bearer_token_file, "r");
		char tok[4096] = "";

		if (f) {
			size_t l = fread(tok, 1, sizeof(tok) - 1, f);

			fclose(f);
			tok[l] = '\0';
			while (l && (tok[l - 1] == '\n' || tok[l - 1] == '\r' || tok[l - 1] == ' '))
				tok[--l] = '\0';
		} else {
			snprintf(w->err, sizeof(w->err), "bearer_token_file %s: %s",
				 c->bearer_token_file, strerror(errno));
			return -EACCES;
		}
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
		w->hdrs = curl_slist_append(w->hdrs, hdr);
	} else if (c->bearer_token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", c->bearer_token);
		w->hdrs = curl_slist_append(w->hdrs, hdr);
	} else if (c->username) {
		char pw[1024] = "";

		if (c->password_file) {
			FILE *f = fopen(c->password_file, "r");
			size_t l = 0;

			if (f) {
				l = fread(pw, 1, sizeof(pw) - 1, f);
				fclose(f);
			}
			pw[l] = '\0';
			while (l && (pw[l - 1] == '\n' || pw[l - 1] == '\r'))
				pw[--l] = '\0';
		} else if (c->password) {
			snprintf(pw, sizeof(pw), "%s", c->password);
		}
		curl_easy_setopt(w->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(w->easy, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(w->easy, CURLOPT_PASSWORD, pw);
	}
	if (!w->hdrs)
		return -ENOMEM;
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->hdrs);
	if (c->ca_file)
		curl_easy_setopt(w->easy, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		curl_easy_setopt(w->easy, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(w->easy, CURLOPT_SSLKEY, c->key_file);
	if (c->insecure) {
		curl_easy_setopt(w->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(w->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->proxy_url)
		curl_easy_setopt(w->easy, CURLOPT_PROXY, c->proxy_url);
	if (curl_multi_add_handle(in->multi, w->easy) != CURLM_OK)
		return -EIO;
	w->started_ms = in->api->monotonic_ms();
	return 0;
}

/* A complete LIST page in w->buf. */
static void list_done(struct op_watch *w)
{
	struct op_inst *in = w->in;
	cJSON *doc = cJSON_ParseWithLength(w->buf ? w->buf : "", w->len), *items, *it;
	const cJSON *md;
	const char *rv, *cont;

	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
	if (!cJSON_IsObject(doc) || !(cJSON_IsArray(items) || cJSON_IsNull(items)) || !rv) {
		cJSON_Delete(doc);
		watch_failed(w, true, "list response is not a Kubernetes list (%zu bytes)", w->len);
		return;
	}
	while (cJSON_IsArray(items) && (it = cJSON_DetachItemFromArray(items, 0))) {
		op_prune(it, w->store == &in->cluster.pods);
		if (op_store_put(&w->pend, it, w->idx)) {
			cJSON_Delete(doc);
			watch_failed(w, true, "list item without metadata.name");
			return;
		}
	}
	cont = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "continue"));
	free(w->cont);
	w->cont = cont && *cont ? strdup(cont) : NULL;
	if (w->cont) {
		cJSON_Delete(doc);
		w->next_ms = 0;
		return; /* next page */
	}
	set_rv(w, rv);
	cJSON_Delete(doc);
	/* The list replaces everything this watch had. */
	op_store_clear(w->store, w->idx);
	for (size_t i = 0; i < w->pend.n; i++)
		op_store_put(w->store, w->pend.v[i].obj, w->idx);
	/* The objects now belong to the store: drop pend's arrays only. */
	free(w->pend.v);
	free(w->pend.slots);
	memset(&w->pend, 0, sizeof(w->pend));
	w->listed = true;
	w->failing = false;
	w->backoff_ms = OP_BACKOFF_MIN_MS;
	w->state = W_WATCH;
	w->next_ms = 0;
	in->api->metric_add(in->m_relists, 1);
	mark_dirty(in);
	update_health(in, NULL);
}

static void transfer_done(struct op_watch *w, CURLcode res)
{
	struct op_inst *in = w->in;
	char *msg = NULL;

	if (!w->status)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->garbage) {
		watch_failed(w, true, "%s", w->err);
		goto out;
	}
	if (w->relist && w->status == 200) {
		/* In-stream ERROR 410 ended the transfer: not a failure. */
		w->state = W_LIST;
		w->next_ms = 0;
		goto out;
	}
	if (w->status == 410) {
		in->api->log(in->self, STARLING_LOG_INFO, "%s: 410 Gone, re-listing", w->what);
		free(w->rv);
		w->rv = NULL;
		w->state = W_LIST;
		w->next_ms = 0;
		goto out;
	}
	if (res != CURLE_OK && !(w->state == W_WATCH && res == CURLE_OPERATION_TIMEDOUT)) {
		watch_failed(w, false, "%s", curl_easy_strerror(res));
		goto out;
	}
	if (w->status != 200) {
		cJSON *st = cJSON_ParseWithLength(w->buf ? w->buf : "", w->len);

		msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "message"));
		watch_failed(w, w->state == W_LIST, "HTTP %ld%s%s", w->status, msg ? ": " : "",
			     msg ? msg : "");
		cJSON_Delete(st);
		goto out;
	}
	if (w->state == W_LIST) {
		list_done(w);
		goto out;
	}
	/* The watch ended (server timeout or an in-stream 410): go on. A
	 * server that keeps closing watches at once is not hammered. */
	if (w->relist)
		w->state = W_LIST;
	w->next_ms = 0;
	if (!w->relist && in->api->monotonic_ms() - w->started_ms < OP_BACKOFF_MIN_MS) {
		w->next_ms = in->api->monotonic_ms() + w->backoff_ms;
		w->backoff_ms =
		    w->backoff_ms * 2 > OP_BACKOFF_MAX_MS ? OP_BACKOFF_MAX_MS : w->backoff_ms * 2;
	}
out:
	watch_reset_transfer(w);
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
		fp = op_monitor_fingerprint(mon);
		for (size_t j = 0; j < in->n_jobs; j++)
			reused += in->jobs[j]->monitor_fp == fp;
		if (reused) {
			mj = calloc(reused, sizeof(*mj));
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

static void *discovery_thread(void *arg)
{
	struct op_inst *in = arg;

	while (!atomic_load(&in->stopping)) {
		int64_t now, wait = 1000;
		bool synced = true;
		CURLMsg *msg;
		int left, running;

		/* Transfers first, so that what they changed is acted on (and
		 * the poll timeout computed) in this same round. */
		curl_multi_perform(in->multi, &running);
		while ((msg = curl_multi_info_read(in->multi, &left))) {
			struct op_watch *w = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&w);
			if (w)
				transfer_done(w, msg->data.result);
		}
		now = in->api->monotonic_ms();

		for (size_t i = 0; i < in->n_watches; i++) {
			struct op_watch *w = &in->watches[i];
			int rc;

			synced &= w->listed;
			if (w->easy)
				continue;
			if (w->next_ms > now) {
				if (w->next_ms - now < wait)
					wait = w->next_ms - now;
				continue;
			}
			rc = watch_start(w);
			if (rc) {
				watch_reset_transfer(w);
				watch_failed(w, false, "cannot start request: %s",
					     w->err[0] ? w->err : strerror(-rc));
			}
		}
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
		if (synced && in->dirty) {
			if (now - in->dirty_ms >= OP_DEBOUNCE_MS) {
				rebuild(in);
				in->api->log(in->self, STARLING_LOG_DEBUG,
					     "targets regenerated in %lld ms",
					     (long long)(in->api->monotonic_ms() - now));
			} else if (OP_DEBOUNCE_MS - (now - in->dirty_ms) < wait)
				wait = OP_DEBOUNCE_MS - (now - in->dirty_ms);
		}
		if (wait < 10)
			wait = 10;
		curl_multi_poll(in->multi, NULL, 0, (int)wait, NULL);
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

	starling_scrape_finish(&ctx, t, resp, &in->lock, &in->stopping, &in->m);
}

static bool owns(struct op_inst *in, const struct scrape_target *t)
{
	return starling_scrape_owns(in->api, in->self, in->defaults.clustering, t->key);
}

static void dispatch(struct op_inst *in, struct op_target *ot)
{
	struct scrape_target *t = ot->t;
	bool owned = owns(in, t);

	/* in->lock is held (schedule) */
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
	/* job configs carry no auth (the operator has none per monitor) */
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
	while (in->n_targets && in->targets[0]->t->next_due_ms <= now) {
		struct op_target *ot = in->targets[0];
		struct scrape_target *t = ot->t;
		int64_t iv = ot->job->cfg.interval_ms;

		t->next_due_ms = starling_scrape_slot_done(t->next_due_ms, now, iv, t->phase_ms);
		heap_down(in->targets, in->n_targets, 0);
		dispatch(in, ot);
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
		owned += owns(in, in->targets[i]->t);
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
	watches_free(in);
	op_cluster_free(&in->cluster);
	op_gen_scratch_free(&in->gen);
	scrape_scratch_free(&in->scratch);
	starling_relabel_rules_free(in->rules);
	op_selector_free(&in->selector);
	strv_free(in->namespaces, in->n_namespaces);
	client_free(&in->client);
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
	if (!rc)
		rc = watches_init(in);
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
	in->multi = curl_multi_init();
	rc = starling_http_client_new(NULL, &in->http);
	if (rc || !in->multi) {
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
	if (in->multi)
		curl_multi_cleanup(in->multi);
	in->multi = NULL;
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
	curl_multi_wakeup(in->multi);
	starling_http_wakeup(in->http);
	pthread_join(in->disc_thread, NULL);
	pthread_join(in->scrape_thread, NULL);
	in->running = false;
	for (size_t i = 0; i < in->n_watches; i++) {
		watch_reset_transfer(&in->watches[i]);
		/* A restart lists again from scratch. */
		in->watches[i].state = W_LIST;
		in->watches[i].next_ms = 0;
	}
	curl_multi_cleanup(in->multi);
	in->multi = NULL;
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
		scrape_emit_target(in->api, in->self, in->defaults.clustering, in->targets[i]->t,
				   emit, ctx);
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
