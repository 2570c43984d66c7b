/*
 * pyroscope.scrape: configuration, lifecycle, the scrape thread and
 * clustering.
 *
 * One thread per instance drives one HTTP client for all its scrape units
 * (input target x enabled profile type). Each unit scrapes at
 * t = k * interval + (key mod interval), the same slots on every node, so a
 * target that moves to another node is picked up at the next slot without a
 * gap or a double scrape. A fetched profile is validated and forwarded as
 * raw pprof bytes; a failed scrape is counted and logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/scrape_pool.h>
#include <starling/target_set.h>

#include <xxhash.h>

#include "pyro_scrape.h"

struct pyro_inst {
	const struct starling_host_api *api;
	starling_component *self;
	struct pyro_config *cfg;

	/* Guards the targets and retired arrays, the targets' status fields
	 * and `owned`. Recursive: a submit that fails at once completes inside
	 * schedule(). */
	pthread_mutex_t lock;
	struct pyro_target **targets;
	size_t n_targets;
	/* Units whose input target left while a scrape was in flight: freed
	 * by the scrape thread once it is done. */
	struct pyro_target **retired;
	size_t n_retired;
	/* Inline targets and the latest set of each discovery source
	 * (callbacks only). */
	struct starling_target_list *tl;

	struct starling_http_client *http;
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	size_t owned;
	uint64_t seen_epoch; /* cluster view the catch-up last looked at */

	struct starling_scrape_metrics m;
	starling_metric *m_bytes, *m_fanout;
};

/* ------------------------------------------------------------------------ */
/* Schema.                                                                   */

static const struct starling_config_key clustering_keys[] = {
    {"enabled", STARLING_CFG_BOOL, false, "false",
     "Distribute the targets among the cluster's nodes"},
    {"key_labels", STARLING_CFG_STRING_LIST, false, NULL,
     "Only these target labels make up a target's ownership key"},
    {"exclude_labels", STARLING_CFG_STRING_LIST, false, NULL,
     "Target labels left out of the ownership key"},
    {"replicas", STARLING_CFG_INT, false, "1",
     "Nodes that scrape each target (its first N owners; every node when fewer)"},
    {NULL},
};

/* One schema per built-in profile type, so each gets Alloy's defaults. */
#define PROFILE_KEYS(var, en, path, delta)                                                         \
	static const struct starling_config_key var[] = {                                          \
	    {"enabled", STARLING_CFG_BOOL, false, en, "Scrape this profile type"},                 \
	    {"path", STARLING_CFG_STRING, false, path, "HTTP path of the profile"},                \
	    {"delta", STARLING_CFG_BOOL, false, delta,                                             \
	     "Ask for a delta profile with ?seconds=N (CPU-style endpoints)"},                     \
	    {NULL},                                                                                \
	}

PROFILE_KEYS(process_cpu_keys, "true", "/debug/pprof/profile", "true");
PROFILE_KEYS(memory_keys, "true", "/debug/pprof/allocs", "false");
PROFILE_KEYS(goroutine_keys, "true", "/debug/pprof/goroutine", "false");
PROFILE_KEYS(mutex_keys, "true", "/debug/pprof/mutex", "false");
PROFILE_KEYS(block_keys, "true", "/debug/pprof/block", "false");
PROFILE_KEYS(fgprof_keys, "false", "/debug/fgprof", "true");
PROFILE_KEYS(gd_memory_keys, "false", "/debug/pprof/delta_heap", "false");
PROFILE_KEYS(gd_mutex_keys, "false", "/debug/pprof/delta_mutex", "false");
PROFILE_KEYS(gd_block_keys, "false", "/debug/pprof/delta_block", "false");

static const struct starling_config_key custom_keys[] = {
    {"name", STARLING_CFG_STRING, true, NULL, "Profile type name (becomes __name__)"},
    {"enabled", STARLING_CFG_BOOL, true, NULL, "Scrape this profile type"},
    {"path", STARLING_CFG_STRING, true, NULL, "HTTP path of the profile"},
    {"delta", STARLING_CFG_BOOL, false, "false", "Ask for a delta profile with ?seconds=N"},
    {NULL},
};

static const struct starling_config_key profiling_keys[] = {
    {"path_prefix", STARLING_CFG_STRING, false, NULL, "Prefix of every profile path"},
    {"process_cpu", STARLING_CFG_GROUP, false, NULL, "Alloy profile.process_cpu", process_cpu_keys},
    {"memory", STARLING_CFG_GROUP, false, NULL, "Alloy profile.memory", memory_keys},
    {"goroutine", STARLING_CFG_GROUP, false, NULL, "Alloy profile.goroutine", goroutine_keys},
    {"mutex", STARLING_CFG_GROUP, false, NULL, "Alloy profile.mutex", mutex_keys},
    {"block", STARLING_CFG_GROUP, false, NULL, "Alloy profile.block", block_keys},
    {"fgprof", STARLING_CFG_GROUP, false, NULL, "Alloy profile.fgprof", fgprof_keys},
    {"godeltaprof_memory", STARLING_CFG_GROUP, false, NULL, "Alloy profile.godeltaprof_memory",
     gd_memory_keys},
    {"godeltaprof_mutex", STARLING_CFG_GROUP, false, NULL, "Alloy profile.godeltaprof_mutex",
     gd_mutex_keys},
    {"godeltaprof_block", STARLING_CFG_GROUP, false, NULL, "Alloy profile.godeltaprof_block",
     gd_block_keys},
    {"custom", STARLING_CFG_GROUP_LIST, false, NULL,
     "Alloy profile.custom \"<name>\" blocks: ( { name; enabled; path; delta; }, ... )",
     custom_keys},
    {NULL},
};

static const struct starling_config_key pyro_schema[] = {
    {"targets", STARLING_CFG_TARGETS, true, NULL,
     "Targets: label maps with __address__ (written *address__), optional service_name, and "
     "names of discovery components, side by side"},
    {"forward_to", STARLING_CFG_REF_LIST, true, NULL, "Receivers of the profiles", NULL,
     STARLING_ACCEPTS_PROFILE},
    {"job_name", STARLING_CFG_STRING, false, NULL,
     "Value of the job label (default: the component id)"},
    {"scrape_interval", STARLING_CFG_DURATION, false, "15s", "How often to scrape"},
    {"scrape_timeout", STARLING_CFG_DURATION, false, "10s",
     "Timeout of one scrape (delta profiles get scrape_interval - 1s more)"},
    {"delta_profiling_duration", STARLING_CFG_DURATION, false, NULL,
     "Length of a delta (CPU) profile; default scrape_interval - 1s"},
    {"scheme", STARLING_CFG_STRING, false, "http", "http or https"},
    {"params", STARLING_CFG_MAP, false, NULL, "URL query parameters"},
    {"profiling_config", STARLING_CFG_GROUP, false, NULL,
     "Profile types (Alloy profile.<type> blocks as <type> = { ... })", profiling_keys},
    {"clustering", STARLING_CFG_GROUP, false, NULL, "Target distribution", clustering_keys},
    STARLING_HTTP_CONFIG_KEYS,
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* Configuration.                                                            */

static void config_free(struct pyro_config *c)
{
	if (!c)
		return;
	free(c->job_name);
	free(c->scheme);
	free(c->path_prefix);
	starling_scrape_params_free(c->params, c->n_params);
	for (size_t i = 0; i < c->n_types; i++) {
		free(c->types[i].name);
		free(c->types[i].path);
	}
	free(c->types);
	starling_http_auth_free(c->auth);
	starling_scrape_strv_free(c->key_labels, c->n_key_labels);
	starling_scrape_strv_free(c->exclude_labels, c->n_exclude_labels);
	free(c);
}

static int add_type(struct pyro_config *c, const char *name, const char *path, bool delta)
{
	struct pyro_profile_type *pt = &c->types[c->n_types];

	for (size_t i = 0; i < c->n_types; i++)
		if (strcmp(c->types[i].name, name) == 0)
			return -EEXIST;
	pt->name = strdup(name);
	pt->path = strdup(path);
	pt->enabled = true;
	pt->delta = delta;
	c->n_types++;
	return pt->name && pt->path ? 0 : -ENOMEM;
}

static int load_types(const struct starling_host_api *api, const starling_config *cfg,
		      struct pyro_config *c, char *err, size_t errlen)
{
	const starling_config *custom = api->config_lookup(cfg, "profiling_config.custom");
	size_t n_custom = custom ? api->config_count(custom) : 0;
	char path[96];
	const char *s;
	bool any_delta = false;
	int rc;

	c->types = calloc(pyro_n_builtins + n_custom, sizeof(*c->types));
	if (!c->types)
		return -ENOMEM;
	for (size_t i = 0; i < pyro_n_builtins; i++) {
		const struct pyro_builtin *b = &pyro_builtins[i];
		const char *p = b->path;
		bool en = b->enabled, delta = b->delta;

		snprintf(path, sizeof(path), "profiling_config.%s.enabled", b->name);
		api->config_bool(cfg, path, &en);
		if (!en)
			continue;
		snprintf(path, sizeof(path), "profiling_config.%s.path", b->name);
		api->config_string(cfg, path, &p);
		snprintf(path, sizeof(path), "profiling_config.%s.delta", b->name);
		api->config_bool(cfg, path, &delta);
		rc = add_type(c, b->name, p, delta);
		if (rc)
			return rc;
		/* Alloy turns these cumulative Go profiles into deltas
		 * itself (godeltaprof_* endpoints serve deltas already). */
		c->types[c->n_types - 1].client_delta =
		    !delta && (!strcmp(b->name, "memory") || !strcmp(b->name, "mutex") ||
			       !strcmp(b->name, "block"));
		any_delta |= delta;
	}
	for (size_t i = 0; i < n_custom; i++) {
		const starling_config *e = api->config_child(custom, i);
		const char *name = NULL, *p = NULL;
		bool en = false, delta = false;

		api->config_string(e, "name", &name);
		api->config_string(e, "path", &p);
		api->config_bool(e, "enabled", &en);
		api->config_bool(e, "delta", &delta);
		if (!name || !*name || !p || !*p) {
			snprintf(err, errlen, "%s: custom profile needs a name and a path",
				 api->config_where(e));
			return -EINVAL;
		}
		if (!en)
			continue;
		rc = add_type(c, name, p, delta);
		if (rc == -EEXIST) {
			snprintf(err, errlen, "%s: profile type \"%s\" is defined twice",
				 api->config_where(e), name);
			return -EINVAL;
		}
		if (rc)
			return rc;
		any_delta |= delta;
	}
	if (!api->config_string(cfg, "profiling_config.path_prefix", &s)) {
		c->path_prefix = strdup(s);
		if (!c->path_prefix)
			return -ENOMEM;
	}

	/* Alloy: delta profiles need scrape_interval >= 2s, and the profile
	 * length must be in (1s, interval - 1s]. */
	if (any_delta && c->interval_ms < 2000) {
		snprintf(
		    err, errlen,
		    "%s: scrape_interval must be at least 2s when a delta profile (process_cpu) "
		    "is enabled",
		    api->config_where(cfg));
		return -EINVAL;
	}
	{
		int64_t d = c->interval_ms - 1000;

		if (!api->config_duration_ms(cfg, "delta_profiling_duration", &d) && any_delta &&
		    (d <= 1000 || d > c->interval_ms - 1000)) {
			snprintf(err, errlen,
				 "%s: delta_profiling_duration must be more than 1s and at most "
				 "scrape_interval - 1s",
				 api->config_where(cfg));
			return -EINVAL;
		}
		c->delta_seconds = d / 1000 > 0 ? d / 1000 : 1;
	}
	return 0;
}

static int config_load(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, struct pyro_config **out, char *err,
		       size_t errlen)
{
	struct pyro_config *c = calloc(1, sizeof(*c));
	const char *s;
	int rc = -ENOMEM;

	*out = NULL;
	if (!c)
		goto fail;
	if (api->config_string(cfg, "job_name", &s))
		s = api->component_id(self);
	c->job_name = strdup(s);
	if (api->config_duration_ms(cfg, "scrape_interval", &c->interval_ms))
		c->interval_ms = 15000;
	if (api->config_duration_ms(cfg, "scrape_timeout", &c->timeout_ms))
		c->timeout_ms = 10000;
	if (c->interval_ms <= 0 || c->timeout_ms <= 0) {
		snprintf(err, errlen, "%s: scrape_interval and scrape_timeout must be positive",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	if (!c->job_name)
		goto fail;
	rc = starling_scrape_scheme(api, cfg, &c->scheme, err, errlen);
	if (!rc)
		rc = starling_scrape_params(api, cfg, &c->params, &c->n_params, err, errlen);
	if (rc)
		goto fail;
	rc = load_types(api, cfg, c, err, errlen);
	if (rc)
		goto fail;
	rc = starling_http_auth_from_config(api, cfg, &c->auth, err, errlen);
	if (rc)
		goto fail;
	rc = starling_scrape_replicas(api, cfg, &c->replicas, err, errlen);
	if (rc)
		goto fail;
	rc = starling_scrape_clustering(api, cfg, &c->clustering, &c->key_labels, &c->n_key_labels,
					&c->exclude_labels, &c->n_exclude_labels, err, errlen);
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	config_free(c);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Targets.                                                                  */

static void targets_free(struct pyro_target **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pyro_target_free(v[i]);
	free(v);
}

/* The scrape units (input target x enabled profile type) of the merged
 * list tl. A bad inline target is a config error (-EINVAL, "file:line:
 * target N: why" in err); a bad discovered one is dropped: *dropped counts
 * them and err gets the first reason. */
static int targets_build(const struct pyro_config *c, const struct starling_target_list *tl,
			 struct pyro_target ***out, size_t *n_out, size_t *dropped, char *err,
			 size_t errlen)
{
	size_t n = starling_target_list_count(tl), k = 0, n_inline = 0;
	struct pyro_target **v = calloc(n * c->n_types + 1, sizeof(*v));
	char msg[256];
	int rc = 0;

	*dropped = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct starling_target *in = starling_target_list_get(tl, i);
		bool is_inline;
		const char *origin = starling_target_list_origin(tl, i, &is_inline);
		size_t first = k;

		n_inline += is_inline;
		for (size_t t = 0; t < c->n_types && !rc; t++) {
			rc = pyro_target_new(c, &c->types[t], in->labels, in->n_labels, &v[k], msg,
					     sizeof(msg));
			if (!rc)
				k++;
		}
		if (rc == -EINVAL && !is_inline) {
			while (k > first)
				pyro_target_free(v[--k]);
			if (!(*dropped)++)
				snprintf(err, errlen, "target from %s dropped: %s", origin, msg);
			rc = 0;
		} else if (rc) {
			snprintf(err, errlen, "%s: target %zu: %s", origin, n_inline,
				 rc == -EINVAL ? msg : strerror(-rc));
		}
	}
	if (rc) {
		targets_free(v, k);
		return rc;
	}
	*out = v;
	*n_out = k;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Scraping (scrape thread).                                                 */

static void on_done(void *arg, const struct starling_http_response *resp)
{
	struct pyro_target *t = arg;
	struct pyro_inst *in = t->owner;
	const struct starling_host_api *api = in->api;
	char err[200] = "";
	uint8_t *delta_buf = NULL;
	size_t delta_len = 0;
	int rc;

	if (atomic_load(&in->stopping)) {
		t->in_flight = false; /* stop(): nothing else runs */
		return;
	}
	api->metric_add(in->m.scrapes, 1);
	if (resp->error) {
		snprintf(err, sizeof(err), "%s",
			 resp->error_msg[0] ? resp->error_msg : strerror(-resp->error));
		rc = resp->error;
	} else {
		rc = pyro_validate(resp->status, resp->content_type, resp->body, resp->body_len,
				   err, sizeof(err));
	}
	if (!rc && t->client_delta) {
		rc = pyro_delta_apply(&t->delta_state, t->type_name, resp->body, resp->body_len,
				      &delta_buf, &delta_len, err, sizeof(err));
		if (rc == 1) { /* first scrape: the baseline, nothing to send */
			t->prev_scrape_ms = t->scrape_start_ms;
			rc = 0;
			goto status;
		}
	}
	if (!rc) {
		struct starling_profile p = {
		    .labels = t->labels,
		    .n_labels = t->n_labels,
		    .data = delta_buf ? delta_buf : resp->body,
		    .len = delta_buf ? delta_len : resp->body_len,
		    /* a delta covers the time since the previous scrape */
		    .start_ms = t->client_delta ? t->prev_scrape_ms : t->scrape_start_ms,
		    .end_ms = api->now_ms(),
		};
		int64_t t0 = api->monotonic_ms();
		int frc = api->forward_profile(in->self, &p);

		t->prev_scrape_ms = t->scrape_start_ms;

		api->metric_set(in->m_fanout, (double)(api->monotonic_ms() - t0) / 1000.0);
		api->metric_add(in->m.forwarded, 1);
		api->metric_add(in->m_bytes, (double)p.len);
		if (frc)
			api->log(in->self, STARLING_LOG_WARN,
				 "a receiver refused the %s profile of %s: %s",
				 pyro_label(t->labels, t->n_labels, "__name__"), t->url,
				 strerror(-frc));
	} else {
		api->metric_add(in->m.failures, 1);
		api->log(in->self, STARLING_LOG_WARN, "scrape of %s failed: %s", t->url, err);
	}
	free(delta_buf);
status:
	pthread_mutex_lock(&in->lock);
	t->last_scrape_ms = t->scrape_start_ms;
	t->last_duration_us = resp->duration_us;
	t->health = rc ? STARLING_TARGET_DOWN : STARLING_TARGET_UP;
	snprintf(t->last_error, sizeof(t->last_error), "%s", err);
	/* Last: a unit whose target left may be freed once it is not in
	 * flight (targets_sync, schedule). */
	t->in_flight = false;
	pthread_mutex_unlock(&in->lock);
}

static void submit(struct pyro_inst *in, struct pyro_target *t)
{
	struct starling_http_request req = {0};
	char tmo[64];
	const char *headers[1] = {tmo};
	int rc;

	/* Go's pprof handler ignores it, but it tells a proxy or a custom
	 * endpoint how long we wait, like Prometheus' scrape header. */
	snprintf(tmo, sizeof(tmo), "X-Prometheus-Scrape-Timeout-Seconds: %lld",
		 (long long)(t->timeout_ms / 1000));
	t->scrape_start_ms = in->api->now_ms();
	req.url = t->url;
	req.headers = headers;
	req.n_headers = 1;
	req.timeout_ms = t->timeout_ms;
	req.body_limit = PYRO_BODY_LIMIT;
	/* pprof bodies are gzip files served as octet-stream; transfer
	 * compression on top would only cost CPU on both ends. */
	req.accept_gzip = false;
	req.user_agent = "Starling/" STARLING_VERSION;
	req.auth = in->cfg->auth;
	req.done = on_done;
	req.arg = t;
	t->in_flight = true;
	rc = starling_http_submit(in->http, &req);
	if (rc) {
		struct starling_http_response resp = {0};

		resp.error = rc;
		resp.error_msg = "could not submit the request";
		on_done(t, &resp);
	}
}

/* Whether this node scrapes t in the slot starting at `at`. */
static bool owns(struct pyro_inst *in, const struct pyro_target *t, int64_t at)
{
	return starling_scrape_owns_at(in->api, in->self, in->cfg->clustering, in->cfg->replicas,
				       t->key, at);
}

static void dispatch(struct pyro_inst *in, struct pyro_target *t, int64_t slot)
{
	bool owned = owns(in, t, slot);

	/* in->lock is held (schedule) */
	t->skipped_slot = owned ? STARLING_SCRAPE_NO_SLOT : slot;
	starling_scrape_owned_changed(in->api, in->self, &in->m, NULL, &in->owned, in->n_targets,
				      &t->owned, owned);
	if (!owned)
		return;
	if (t->in_flight) {
		in->api->metric_add(in->m.missed, 1);
		return;
	}
	submit(in, t);
}

/* Scrape every unit whose slot has come; returns ms until the next one.
 * A linear pass: an instance has (targets x profile types) units, and the
 * thread wakes at most once per slot or per completion. */
static int64_t schedule(void *arg, int64_t now)
{
	struct pyro_inst *in = arg;
	int64_t iv = in->cfg->interval_ms, wait = STARLING_SCRAPE_MAX_WAIT_MS, back = 0;
	/* an owner declared dead: catch up the current slots (scrape_sched.h) */
	bool view_changed =
	    starling_scrape_view_changed(in->api, in->self, in->cfg->clustering, &in->seen_epoch);

	for (size_t i = 0; i < in->n_targets; i++) {
		struct pyro_target *t = in->targets[i];
		int64_t b = starling_scrape_clock_back(t->next_due_ms, now, iv);

		/* The wall clock went back: re-place the unit on its slots from
		 * the new time instead of waiting for the clock to catch up. */
		if (b) {
			t->next_due_ms = starling_scrape_next_slot(now, iv, t->phase_ms);
			if (b > back)
				back = b;
		}
		int64_t skipped = t->skipped_slot;

		if (view_changed &&
		    starling_scrape_catch_up(in->api, in->self, true, in->cfg->replicas, t->key,
					     &t->skipped_slot, iv, now)) {
			in->api->metric_add(in->m.catch_up, 1);
			dispatch(in, t, skipped);
		}
		if (t->next_due_ms <= now) {
			int64_t slot = t->next_due_ms;

			t->next_due_ms =
			    starling_scrape_slot_done(t->next_due_ms, now, iv, t->phase_ms);
			dispatch(in, t, slot);
		}
		if (t->next_due_ms - now < wait)
			wait = t->next_due_ms - now;
	}
	if (back)
		in->api->log(in->self, STARLING_LOG_WARN,
			     "wall clock went back by %lld ms: rescheduling the targets",
			     (long long)back);
	for (size_t i = 0; i < in->n_retired;) {
		if (in->retired[i]->in_flight) {
			i++;
			continue;
		}
		pyro_target_free(in->retired[i]);
		in->retired[i] = in->retired[--in->n_retired];
	}
	return wait;
}

static void *scrape_thread(void *arg)
{
	struct pyro_inst *in = arg;

	starling_scrape_loop(in->api, in->http, &in->stopping, &in->lock, schedule, in);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks.                                                                */

static void report(struct pyro_inst *in)
{
	size_t owned = 0;

	/* Every profile type of an input target has the same key. */
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		owned += owns(in, in->targets[i], in->api->now_ms());
	pthread_mutex_unlock(&in->lock);
	starling_scrape_report(in->api, in->self, &in->m, owned, in->n_targets);
}

static void on_cluster_change(void *arg, uint64_t epoch)
{
	(void)epoch;
	report(arg);
}

static void inst_free(struct pyro_inst *in)
{
	if (!in)
		return;
	targets_free(in->targets, in->n_targets);
	targets_free(in->retired, in->n_retired);
	starling_target_list_free(in->tl);
	config_free(in->cfg);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static int pyro_create(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, void **out)
{
	struct pyro_inst *in = calloc(1, sizeof(*in));
	char err[512] = "";
	size_t dropped;
	int rc;

	if (!in)
		return -ENOMEM;
	in->api = api;
	in->self = self;
	starling_scrape_lock_init(&in->lock);
	rc = config_load(api, self, cfg, &in->cfg, err, sizeof(err));
	if (!rc)
		rc = starling_target_list_new(api, api->config_lookup(cfg, "targets"), &in->tl, err,
					      sizeof(err));
	if (!rc)
		rc = targets_build(in->cfg, in->tl, &in->targets, &in->n_targets, &dropped, err,
				   sizeof(err));
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		inst_free(in);
		return rc;
	}
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->owner = in;
	starling_scrape_metrics_register(api, self, STARLING_SCRAPE_PYROSCOPE, &in->m);
	in->m_bytes = api->metric_register(self, STARLING_SELF_COUNTER,
					   "starling_pyroscope_forwarded_bytes_total",
					   "Bytes of pprof forwarded to forward_to", NULL);
	in->m_fanout = api->metric_register(self, STARLING_SELF_GAUGE, "pyroscope_fanout_latency",
					    "Seconds the last forward to the receivers took", NULL);
	api->metric_set(in->m.targets, (double)in->n_targets);
	*out = in;
	return 0;
}

static int pyro_start(void *inst)
{
	struct pyro_inst *in = inst;
	int64_t now = in->api->now_ms();
	int rc;

	rc = starling_scrape_http_new(in->api, in->self, &in->http);
	if (rc)
		return rc;
	atomic_store(&in->stopping, false);
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->next_due_ms =
		    starling_scrape_next_slot(now, in->cfg->interval_ms, in->targets[i]->phase_ms);
	pthread_mutex_unlock(&in->lock);
	if (in->cfg->clustering && STARLING_API_HAS(in->api, cluster_subscribe))
		in->api->cluster_subscribe(in->self, on_cluster_change, in);
	report(in);
	rc = starling_scrape_thread_spawn(in->api, in->self, &in->http, &in->thread, scrape_thread,
					  in);
	if (rc)
		return rc;
	in->running = true;
	in->api->set_health(in->self, true, NULL);
	return 0;
}

static int pyro_stop(void *inst)
{
	struct pyro_inst *in = inst;

	if (in->cfg->clustering && STARLING_API_HAS(in->api, cluster_subscribe))
		in->api->cluster_subscribe(in->self, NULL, NULL);
	if (!in->running)
		return 0;
	/* Cancels what is in flight; on_done() sees `stopping`. */
	starling_scrape_thread_join(&in->http, in->thread, &in->stopping);
	in->running = false;
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->in_flight = false;
	for (size_t i = 0; i < in->n_retired; i++)
		in->retired[i]->in_flight = false;
	return 0;
}

static void pyro_destroy(void *inst)
{
	inst_free(inst);
}

static bool same_unit(const struct pyro_target *a, const struct pyro_target *b)
{
	if (a->key != b->key || a->n_labels != b->n_labels || strcmp(a->url, b->url))
		return false;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].name, b->labels[i].name) ||
		    strcmp(a->labels[i].value, b->labels[i].value))
			return false;
	return true;
}

static bool eq_unit_slot(const void *item, const void *arg)
{
	return same_unit(*(struct pyro_target *const *)item, arg);
}

static uint64_t unit_hash(const struct pyro_target *t)
{
	return t->key ^ XXH3_64bits(t->url, strlen(t->url));
}

/* Follow a new list of units in place (as prometheus.scrape follows
 * Prometheus' scrapePool.sync): kept units keep their slot and client-side
 * delta state, new ones start at their next slot, vanished ones are dropped
 * (after the scrape in flight, if any). Takes nt. */
static int targets_sync(struct pyro_inst *in, struct pyro_target **nt, size_t nn)
{
	struct pyro_target **ret;
	struct starling_scrape_index cur;
	size_t kept = 0, removed = 0;
	int64_t now = in->api->now_ms();

	pthread_mutex_lock(&in->lock);
	ret = realloc(in->retired, (in->n_retired + in->n_targets + 1) * sizeof(*ret));
	if (ret)
		in->retired = ret;
	if (!ret || starling_scrape_index_init(&cur, in->n_targets)) {
		pthread_mutex_unlock(&in->lock);
		targets_free(nt, nn);
		return -ENOMEM;
	}
	for (size_t j = 0; j < in->n_targets; j++)
		starling_scrape_index_add(&cur, unit_hash(in->targets[j]), &in->targets[j]);
	for (size_t i = 0; i < nn; i++) {
		struct pyro_target **slot;

		nt[i]->next_due_ms =
		    starling_scrape_next_slot(now, in->cfg->interval_ms, nt[i]->phase_ms);
		slot =
		    starling_scrape_index_find(&cur, unit_hash(nt[i]), eq_unit_slot, nt[i], true);
		if (slot) {
			pyro_target_free(nt[i]);
			nt[i] = *slot;
			*slot = NULL;
			kept++;
		}
		nt[i]->owner = in;
	}
	starling_scrape_index_free(&cur);
	for (size_t j = 0; j < in->n_targets; j++) {
		struct pyro_target *old = in->targets[j];

		if (!old)
			continue;
		removed++;
		if (old->owned)
			in->owned--;
		if (old->in_flight)
			in->retired[in->n_retired++] = old;
		else
			pyro_target_free(old);
	}
	free(in->targets);
	in->targets = nt;
	in->n_targets = nn;
	pthread_mutex_unlock(&in->lock);
	in->api->metric_set(in->m.targets, (double)nn);
	in->api->log(in->self, STARLING_LOG_INFO,
		     "scrape units updated: %zu kept, %zu added, %zu removed", kept, nn - kept,
		     removed);
	report(in);
	if (in->http)
		starling_http_wakeup(in->http);
	return 0;
}

/* A discovery source's latest set (host thread, serialised with the other
 * callbacks). */
static int pyro_receive_targets(void *inst, const char *source,
				const struct starling_target_set *set)
{
	struct pyro_inst *in = inst;
	struct pyro_target **nt = NULL;
	size_t nn = 0, dropped = 0;
	char err[512] = "";
	int rc = starling_scrape_take_set(in->api, in->self, in->tl, source, set);

	if (rc)
		return rc;
	rc = targets_build(in->cfg, in->tl, &nt, &nn, &dropped, err, sizeof(err));
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		return rc;
	}
	starling_scrape_note_dropped(in->api, in->self, &in->m, dropped, err);
	return targets_sync(in, nt, nn);
}

static int pyro_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct pyro_inst *in = inst;

	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++) {
		struct pyro_target *t = in->targets[i];
		struct starling_target_info ti = {
		    .labels = t->labels,
		    .n_labels = t->n_labels,
		    .key = t->key,
		    .last_scrape_ms = t->last_scrape_ms,
		    .last_duration_us = t->last_duration_us,
		    .health = t->health,
		    .last_error = t->last_error,
		};

		starling_scrape_emit_target_n(in->api, in->self, in->cfg->clustering,
					      in->cfg->replicas, &ti, emit, ctx);
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

const struct starling_component_type pyroscope_scrape_type = {
    STARLING_TYPE_HEAD,
    .name = "pyroscope.scrape",
    .help = "Scrape Go pprof endpoints and forward the profiles",
    .flags = 0,
    .accepts = STARLING_ACCEPTS_TARGETS,
    .produces = STARLING_ACCEPTS_PROFILE,
    .schema = pyro_schema,
    .create = pyro_create,
    .update = NULL,
    .start = pyro_start,
    .stop = pyro_stop,
    .destroy = pyro_destroy,
    .list_targets = pyro_list_targets,
    .receive_targets = pyro_receive_targets,
};
