/*
 * discovery.kubernetes: Prometheus' kubernetes_sd (roles pod, service,
 * endpoints, endpointslice, node) as Alloy's component of the same name,
 * publishing its targets as a target set.
 *
 * One thread per instance drives the SDK Kubernetes client (LIST + WATCH of
 * the role's collections and of what its labels look up: services and pods
 * for endpoints/endpointslice, nodes and namespaces for attach_metadata).
 * After a change, and once every collection was listed (a half-synced cache
 * never retires targets), the whole set is rebuilt and published: at once
 * the first time, then at most every 5 s, as Alloy's discovery runner
 * (internal/component/discovery/discovery.go MaxUpdateFrequency) does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/k8s.h>
#include <starling/plugin.h>

#include "kubernetes.h"

#define UPDATE_INTERVAL_MS 5000

/* clang-format off */
static const struct starling_config_key namespaces_keys[] = {
    {"names", STARLING_CFG_STRING_LIST, false, NULL, "Namespaces to watch (default: all)"},
    {"own_namespace", STARLING_CFG_BOOL, false, "false",
     "Also watch the namespace Starling runs in (in-cluster only)"},
    {NULL},
};

static const struct starling_config_key selector_keys[] = {
    {"role", STARLING_CFG_STRING, true, NULL, "Role the selector applies to"},
    {"label", STARLING_CFG_STRING, false, NULL, "Label selector (Kubernetes syntax)"},
    {"field", STARLING_CFG_STRING, false, NULL, "Field selector (Kubernetes syntax)"},
    {NULL},
};

static const struct starling_config_key attach_keys[] = {
    {"node", STARLING_CFG_BOOL, false, "false", "Add the node's labels (pod, endpoints, endpointslice)"},
    {"namespace", STARLING_CFG_BOOL, false, "false", "Add the namespace's labels and annotations"},
    {NULL},
};

static const struct starling_config_key schema[] = {
    {"role", STARLING_CFG_STRING, true, NULL,
     "pod, service, endpoints, endpointslice or node"},
    STARLING_K8S_CONN_KEYS,
    {"namespaces", STARLING_CFG_GROUP, false, NULL, "Which namespaces to watch", namespaces_keys},
    {"selectors", STARLING_CFG_GROUP_LIST, false, NULL, "Label and field selectors per role",
     selector_keys},
    {"attach_metadata", STARLING_CFG_GROUP, false, NULL, "Metadata of related objects",
     attach_keys},
    {NULL},
};
/* clang-format on */

struct dk_inst {
	const struct starling_host_api *api;
	starling_component *self;
	struct dk_config cfg;
	struct starling_k8s_conn conn;

	/* discovery thread */
	struct starling_k8s_client *client;
	struct dk_cluster cl;
	struct starling_k8s_meta meta;
	struct dk_targets out;
	pthread_mutex_t lock; /* out, between publishing and list_targets */
	bool dirty, published_once;
	int64_t last_publish_ms;
	bool healthy_set, healthy;
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	uint64_t seen_errors, seen_events;

	starling_metric *m_targets, *m_failures, *m_events, *m_lists;
};

/* ------------------------------------------------------------------------ */
/* Config.                                                                   */

static int load_selectors(const struct starling_host_api *api, const starling_config *cfg,
			  struct dk_config *c, char *err, size_t errlen)
{
	const starling_config *l = api->config_lookup(cfg, "selectors");
	size_t n = l ? api->config_count(l) : 0;

	for (size_t i = 0; i < n; i++) {
		const starling_config *e = api->config_child(l, i);
		const char *role = NULL, *label = NULL, *field = NULL;
		enum starling_k8s_role r;

		api->config_string(e, "role", &role);
		api->config_string(e, "label", &label);
		api->config_string(e, "field", &field);
		if (starling_k8s_role_parse(role, &r)) {
			snprintf(err, errlen, "%s: selectors: unknown role \"%s\"",
				 api->config_where(e), role ? role : "");
			return -EINVAL;
		}
		if (c->sel[r].set) {
			snprintf(err, errlen, "%s: selectors: role \"%s\" appears twice",
				 api->config_where(e), role);
			return -EINVAL;
		}
		c->sel[r].set = true;
		c->sel[r].label = label && *label ? strdup(label) : NULL;
		c->sel[r].field = field && *field ? strdup(field) : NULL;
		if ((label && *label && !c->sel[r].label) || (field && *field && !c->sel[r].field))
			return -ENOMEM;
	}
	return dk_check_selectors(c, err, errlen);
}

static int load_config(struct dk_inst *in, const starling_config *cfg, char *err, size_t errlen)
{
	const struct starling_host_api *api = in->api;
	struct dk_config *c = &in->cfg;
	const starling_config *names = api->config_lookup(cfg, "namespaces.names");
	const char *role = NULL, *server = NULL, *kc = NULL;
	bool own = false;
	int rc;

	api->config_string(cfg, "role", &role);
	if (starling_k8s_role_parse(role, &c->role)) {
		snprintf(err, errlen,
			 "%s: role \"%s\": expected pod, service, endpoints, "
			 "endpointslice or node",
			 api->config_where(cfg), role ? role : "");
		return -EINVAL;
	}
	api->config_bool(cfg, "attach_metadata.node", &c->attach_node);
	api->config_bool(cfg, "attach_metadata.namespace", &c->attach_namespace);
	api->config_bool(cfg, "namespaces.own_namespace", &own);
	rc = load_selectors(api, cfg, c, err, errlen);
	if (rc)
		return rc;
	api->config_string(cfg, "api_server", &server);
	api->config_string(cfg, "kubeconfig_file", &kc);
	if (own && ((server && *server) || (kc && *kc))) {
		/* Prometheus kubernetes.go: the own namespace is the service
		 * account's, known only in-cluster. */
		snprintf(err, errlen,
			 "%s: namespaces.own_namespace cannot be combined with api_server or "
			 "kubeconfig_file",
			 api->config_where(cfg));
		return -EINVAL;
	}
	rc = starling_k8s_conn_from_config(api, cfg, &in->conn, err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; names && i < api->config_count(names); i++) {
		const char *s = NULL;

		api->config_string(api->config_child(names, i), NULL, &s);
		if (s && *s && (rc = dk_config_add_namespace(c, s)))
			return rc;
	}
	if (own) {
		if (!in->conn.namespace) {
			snprintf(err, errlen,
				 "%s: namespaces.own_namespace: %s/namespace unreadable",
				 api->config_where(cfg), STARLING_K8S_SA_DIR);
			return -EINVAL;
		}
		rc = dk_config_add_namespace(c, in->conn.namespace);
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Discovery thread.                                                         */

static void on_changed(void *arg, int watch)
{
	struct dk_inst *in = arg;

	(void)watch;
	in->dirty = true;
}

static void on_log(void *arg, enum starling_log_level level, const char *msg)
{
	struct dk_inst *in = arg;

	in->api->log(in->self, level, "%s", msg);
}

static void update_health(struct dk_inst *in)
{
	char why[512];
	bool ok = starling_k8s_healthy(in->client, why, sizeof(why));

	/* Not listed yet but not failing: starting, leave it be. */
	if (!ok && !in->healthy_set && starling_k8s_synced(in->client) == false &&
	    strstr(why, "not listed yet"))
		return;
	if (in->healthy_set && ok == in->healthy)
		return;
	in->healthy_set = true;
	in->healthy = ok;
	in->api->set_health(in->self, ok, ok ? NULL : why);
}

static void publish(struct dk_inst *in)
{
	struct starling_target_set set;
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = dk_build(&in->cfg, &in->cl, &in->meta, &in->out);
	if (rc) {
		in->out.n = 0;
		pthread_mutex_unlock(&in->lock);
		in->api->log(in->self, STARLING_LOG_ERROR, "building targets failed: %s",
			     strerror(-rc));
		return;
	}
	dk_targets_set(&in->out, &set);
	rc = in->api->forward_targets(in->self, &set);
	if (!rc)
		in->published_once = true;
	pthread_mutex_unlock(&in->lock);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "forward_targets: %s", strerror(-rc));
		return;
	}
	in->api->metric_set(in->m_targets, (double)set.n_targets);
	in->api->report_targets(in->self, set.n_targets, set.n_targets);
	in->api->log(in->self, STARLING_LOG_DEBUG, "published %zu targets", set.n_targets);
	in->dirty = false;
	in->last_publish_ms = in->api->monotonic_ms();
}

static void *discovery_thread(void *arg)
{
	struct dk_inst *in = arg;

	while (!atomic_load(&in->stopping)) {
		struct starling_k8s_stats st;
		int64_t wait = 1000, now;

		starling_k8s_run(in->client, (int)wait);
		starling_k8s_stats(in->client, &st);
		in->api->metric_add(in->m_failures, (double)(st.errors - in->seen_errors));
		in->api->metric_add(in->m_events, (double)(st.events - in->seen_events));
		in->seen_errors = st.errors;
		in->seen_events = st.events;
		in->api->metric_set(in->m_lists, (double)st.lists);
		update_health(in);
		now = in->api->monotonic_ms();
		if (in->dirty && starling_k8s_synced(in->client) &&
		    (!in->published_once || now - in->last_publish_ms >= UPDATE_INTERVAL_MS))
			publish(in);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks.                                                                */

static void inst_free(struct dk_inst *in)
{
	if (!in)
		return;
	starling_k8s_client_free(in->client);
	starling_k8s_meta_free(&in->meta);
	dk_cluster_free(&in->cl);
	dk_targets_free(&in->out);
	dk_config_free(&in->cfg);
	starling_k8s_conn_free(&in->conn);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static int dk_create(const struct starling_host_api *api, starling_component *self,
		     const starling_config *cfg, void **out)
{
	struct dk_inst *in = calloc(1, sizeof(*in));
	struct starling_k8s_callbacks cb;
	char err[512] = "";
	int rc;

	if (!in)
		return -ENOMEM;
	in->api = api;
	in->self = self;
	pthread_mutex_init(&in->lock, NULL);
	starling_k8s_meta_init(&in->meta);
	if (!STARLING_API_HAS(api, forward_targets)) {
		api->log(self, STARLING_LOG_ERROR, "the host cannot take target sets");
		inst_free(in);
		return -EOPNOTSUPP;
	}
	rc = load_config(in, cfg, err, sizeof(err));
	cb.changed = on_changed;
	cb.log = on_log;
	cb.arg = in;
	if (!rc)
		rc = starling_k8s_client_new(&in->conn, &cb, &in->client);
	if (!rc)
		rc = dk_watches(&in->cfg, in->client, &in->cl, err, sizeof(err));
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		inst_free(in);
		return rc;
	}
	dk_meta_setup(&in->cfg, &in->cl, &in->meta);
	in->m_targets =
	    api->metric_register(self, STARLING_SELF_GAUGE, "starling_discovery_targets",
				 "Targets in the latest published set", NULL);
	in->m_failures = api->metric_register(
	    self, STARLING_SELF_COUNTER, "prometheus_sd_kubernetes_failures_total",
	    "Failed or unparsable Kubernetes API responses", NULL);
	in->m_events = api->metric_register(self, STARLING_SELF_COUNTER,
					    "prometheus_sd_kubernetes_events_total",
					    "Kubernetes watch events applied", NULL);
	in->m_lists =
	    api->metric_register(self, STARLING_SELF_GAUGE, "starling_sd_kubernetes_lists",
				 "Complete LISTs of a Kubernetes collection since start", NULL);
	*out = in;
	return 0;
}

static int dk_start(void *inst)
{
	struct dk_inst *in = inst;
	int rc;

	atomic_store(&in->stopping, false);
	in->published_once = false;
	rc = pthread_create(&in->thread, NULL, discovery_thread, in);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "cannot start thread: %s", strerror(rc));
		return -rc;
	}
	in->running = true;
	return 0;
}

static int dk_stop(void *inst)
{
	struct dk_inst *in = inst;

	if (!in->running)
		return 0;
	atomic_store(&in->stopping, true);
	starling_k8s_wakeup(in->client);
	pthread_join(in->thread, NULL);
	in->running = false;
	starling_k8s_reset(in->client);
	return 0;
}

static void dk_destroy(void *inst)
{
	inst_free(inst);
}

/* The latest published targets, for the targets API. */
static int dk_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct dk_inst *in = inst;
	struct starling_target_set set;

	pthread_mutex_lock(&in->lock);
	if (in->published_once) {
		dk_targets_set(&in->out, &set);
		for (size_t i = 0; i < set.n_targets; i++) {
			struct starling_target_info ti = {0};

			ti.labels = set.targets[i].labels;
			ti.n_labels = set.targets[i].n_labels;
			ti.owned_here = true;
			emit(ctx, &ti);
		}
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

const struct starling_component_type discovery_kubernetes_type = {
    STARLING_TYPE_HEAD,
    .name = "discovery.kubernetes",
    .help = "Discover Kubernetes pods, services, endpoints, endpoint slices or nodes",
    .schema = schema,
    .create = dk_create,
    .start = dk_start,
    .stop = dk_stop,
    .destroy = dk_destroy,
    .list_targets = dk_list_targets,
    .produces = STARLING_ACCEPTS_TARGETS,
};
