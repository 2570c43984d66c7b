/*
 * prometheus.scrape: configuration, lifecycle, the scrape thread and
 * clustering.
 *
 * One thread per instance drives one HTTP client for all its targets. Every
 * target scrapes at t = k * interval + (key mod interval) in wall-clock ms,
 * the same slots on every node; the targets are kept sorted by that phase so
 * the thread finds the next due target with a cursor instead of a scan. With
 * clustering, ownership is asked of the cluster service at each slot: a node
 * that gained a target scrapes it from its next slot, a node that lost it
 * stops at once, and nobody sends staleness markers for a moved target.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/labels.h>
#include <starling/scrape_pool.h>
#include <starling/target_set.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "scrape_component.h"

struct scrape_inst {
	const struct starling_host_api *api;
	starling_component *self;
	struct scrape_config *cfg;

	/* Guards targets/retired (the arrays, not the caches) and the status
	 * fields of each target. */
	pthread_mutex_t lock;
	struct scrape_target **targets; /* sorted by phase */
	size_t n_targets;
	size_t cursor;
	struct scrape_target **retired;
	size_t n_retired;
	/* Inline targets and the latest set of each discovery source
	 * (callbacks only: create, update, receive_targets). */
	struct starling_target_list *tl;

	struct starling_http_client *http;
	struct scrape_scratch scratch;
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	size_t owned; /* targets owned at their last slot */

	struct starling_scrape_metrics m;
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
    {NULL},
};

static const struct starling_config_key scrape_schema[] = {
    {"targets", STARLING_CFG_TARGETS, true, NULL,
     "Targets: label maps with __address__ (and optional __scheme__, __metrics_path__, "
     "__param_<name>) and names of discovery components, side by side"},
    {"forward_to", STARLING_CFG_REF_LIST, true, NULL, "Receivers of the scraped series", NULL,
     STARLING_ACCEPTS_SERIES},
    {"job_name", STARLING_CFG_STRING, false, NULL,
     "Value of the job label (default: the component id)"},
    {"scrape_interval", STARLING_CFG_DURATION, false, "1m", "How often to scrape"},
    {"scrape_timeout", STARLING_CFG_DURATION, false, "10s",
     "Timeout of one scrape (at most scrape_interval)"},
    {"metrics_path", STARLING_CFG_STRING, false, "/metrics", "HTTP path to scrape"},
    {"scheme", STARLING_CFG_STRING, false, "http", "http or https"},
    {"params", STARLING_CFG_MAP, false, NULL, "URL query parameters"},
    {"honor_labels", STARLING_CFG_BOOL, false, "false",
     "On a clash keep the scraped label instead of renaming it exported_<name>"},
    {"honor_timestamps", STARLING_CFG_BOOL, false, "true", "Use the timestamps the target exposes"},
    {"track_timestamps_staleness", STARLING_CFG_BOOL, false, "false",
     "Staleness markers also for series with explicit timestamps"},
    {"enable_compression", STARLING_CFG_BOOL, false, "true", "Ask targets for gzip"},
    {"extra_metrics", STARLING_CFG_BOOL, false, "false",
     "Also send scrape_timeout_seconds, scrape_sample_limit and scrape_body_size_bytes"},
    {"body_size_limit", STARLING_CFG_BYTES, false, "0",
     "Largest uncompressed body accepted (0: no limit but a 256MiB safety cap)"},
    {"sample_limit", STARLING_CFG_INT, false, "0",
     "More samples (after metric relabelling) fail the scrape; 0 = none"},
    {"label_limit", STARLING_CFG_INT, false, "0", "Most labels per series; 0 = none"},
    {"label_name_length_limit", STARLING_CFG_INT, false, "0", "Longest label name; 0 = none"},
    {"label_value_length_limit", STARLING_CFG_INT, false, "0", "Longest label value; 0 = none"},
    {"scrape_protocols", STARLING_CFG_STRING_LIST, false, NULL,
     "Protocols to negotiate, preferred first: OpenMetricsText1.0.0, OpenMetricsText0.0.1, "
     "PrometheusText1.0.0, PrometheusText0.0.4"},
    {"scrape_fallback_protocol", STARLING_CFG_STRING, false, "PrometheusText0.0.4",
     "Protocol used when a target sends no or an unknown Content-Type"},
    {"metric_relabel_config", STARLING_CFG_GROUP_LIST, false, NULL,
     "Relabel rules applied to every scraped series (Prometheus metric_relabel_configs)",
     starling_relabel_schema},
    {"clustering", STARLING_CFG_GROUP, false, NULL, "Target distribution", clustering_keys},
    STARLING_HTTP_CONFIG_KEYS,
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* Configuration.                                                            */

static void config_free(struct scrape_config *c)
{
	scrape_config_release(c);
	free(c);
}

static void hash_str(XXH3_state_t *st, const char *s)
{
	XXH3_64bits_update(st, s ? s : "\x01", s ? strlen(s) + 1 : 1);
}

/* Fingerprint of the config below node along schema, skipping `targets`:
 * update() applies a change of targets alone in place. */
static void hash_config(const struct starling_host_api *api, const starling_config *node,
			const struct starling_config_key *schema, XXH3_state_t *st)
{
	for (const struct starling_config_key *k = schema; k->name; k++) {
		const starling_config *c;
		const char *s;
		int64_t v;
		double d;
		bool b;

		if (strcmp(k->name, "targets") == 0)
			continue;
		hash_str(st, k->name);
		c = api->config_lookup(node, k->name);
		switch (k->type) {
		case STARLING_CFG_STRING:
			hash_str(st, api->config_string(node, k->name, &s) ? NULL : s);
			break;
		case STARLING_CFG_INT:
		case STARLING_CFG_DURATION:
		case STARLING_CFG_BYTES:
			v = -1;
			if (k->type == STARLING_CFG_INT)
				api->config_int(node, k->name, &v);
			else if (k->type == STARLING_CFG_DURATION)
				api->config_duration_ms(node, k->name, &v);
			else
				api->config_bytes(node, k->name, &v);
			XXH3_64bits_update(st, &v, sizeof(v));
			break;
		case STARLING_CFG_FLOAT:
			d = 0;
			api->config_float(node, k->name, &d);
			XXH3_64bits_update(st, &d, sizeof(d));
			break;
		case STARLING_CFG_BOOL:
			b = false;
			api->config_bool(node, k->name, &b);
			XXH3_64bits_update(st, &b, sizeof(b));
			break;
		case STARLING_CFG_GROUP:
			if (c)
				hash_config(api, c, k->children, st);
			break;
		case STARLING_CFG_GROUP_LIST:
			for (size_t i = 0; c && i < api->config_count(c); i++)
				hash_config(api, api->config_child(c, i), k->children, st);
			break;
		default: /* lists and maps of strings */
			for (size_t i = 0; c && i < api->config_count(c); i++) {
				const starling_config *e = api->config_child(c, i);

				hash_str(st, api->config_name(e));
				hash_str(st, api->config_string(e, NULL, &s) ? NULL : s);
			}
			break;
		}
	}
}

static const struct {
	const char *name;
	const char *media;
	bool escaping;
	enum starling_expo_format fmt;
} protocols[] = {
    {"OpenMetricsText1.0.0", "application/openmetrics-text;version=1.0.0", true,
     STARLING_EXPO_OPENMETRICS},
    {"OpenMetricsText0.0.1", "application/openmetrics-text;version=0.0.1", false,
     STARLING_EXPO_OPENMETRICS},
    {"PrometheusText1.0.0", "text/plain;version=1.0.0", true, STARLING_EXPO_PROMETHEUS},
    {"PrometheusText0.0.4", "text/plain;version=0.0.4", false, STARLING_EXPO_PROMETHEUS},
};

static int find_protocol(const char *name)
{
	char norm[64];
	size_t i;

	/* Alloy accepts both "PrometheusText0.0.4" and "PrometheusText0_0_4". */
	for (i = 0; name[i] && i + 1 < sizeof(norm); i++)
		norm[i] = name[i] == '_' ? '.' : name[i];
	norm[i] = '\0';
	for (size_t p = 0; p < sizeof(protocols) / sizeof(protocols[0]); p++)
		if (strcmp(norm, protocols[p].name) == 0)
			return (int)p;
	return -1;
}

/* Accept header like Prometheus' acceptHeader(): weights from n+1 down. */
static int build_accept(const struct starling_host_api *api, const starling_config *cfg,
			struct scrape_config *c, char *err, size_t errlen)
{
	char **names;
	size_t n, len = 0, cap = 1024;
	int rc, w;

	rc = starling_scrape_string_list(api, cfg, "scrape_protocols", &names, &n, err, errlen);
	if (!rc && n == 0) {
		c->accept = strdup("Accept: " STARLING_EXPO_ACCEPT_HEADER);
		goto out;
	}
	c->accept = malloc(cap);
	if (rc || !c->accept) {
		rc = rc ? rc : -ENOMEM;
		goto out;
	}
	len = (size_t)snprintf(c->accept, cap, "Accept: ");
	w = (int)n + 1;
	for (size_t i = 0; i < n; i++, w--) {
		int p = find_protocol(names[i]);

		if (p < 0) {
			snprintf(err, errlen,
				 "%s: scrape_protocols: unsupported protocol \"%s\" (supported: "
				 "OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, "
				 "PrometheusText0.0.4)",
				 api->config_where(api->config_lookup(cfg, "scrape_protocols")),
				 names[i]);
			rc = -EINVAL;
			goto out;
		}
		len +=
		    (size_t)snprintf(c->accept + len, cap - len, "%s%s;q=0.%d,", protocols[p].media,
				     protocols[p].escaping ? ";escaping=underscores" : "", w);
		if (len >= cap - 64) {
			snprintf(err, errlen, "scrape_protocols: too many entries");
			rc = -EINVAL;
			goto out;
		}
	}
	snprintf(c->accept + len, cap - len, "*/*;q=0.%d", w > 0 ? w : 1);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!rc && !c->accept)
		rc = -ENOMEM;
	return rc;
}

static int config_load(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, struct scrape_config **out, char *err,
		       size_t errlen)
{
	struct scrape_config *c = calloc(1, sizeof(*c));
	const starling_config *node;
	const char *s;
	int64_t v;
	XXH3_state_t st;
	int rc = -ENOMEM, p;

	*out = NULL;
	if (!c)
		goto fail;
	if (api->config_string(cfg, "job_name", &s))
		s = api->component_id(self);
	c->job_name = strdup(s);
	if (api->config_duration_ms(cfg, "scrape_interval", &c->interval_ms))
		c->interval_ms = 60000;
	if (api->config_duration_ms(cfg, "scrape_timeout", &c->timeout_ms))
		c->timeout_ms = 10000;
	if (c->interval_ms <= 0) {
		snprintf(err, errlen, "%s: scrape_interval must be positive",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	if (c->timeout_ms <= 0 || c->timeout_ms > c->interval_ms)
		c->timeout_ms = c->interval_ms; /* Prometheus clamps too */
	c->metrics_path = strdup(api->config_string(cfg, "metrics_path", &s) ? "/metrics" : s);
	if (!c->job_name || !c->metrics_path)
		goto fail;
	rc = starling_scrape_scheme(api, cfg, &c->scheme, err, errlen);
	if (!rc)
		rc = starling_scrape_params(api, cfg, &c->params, &c->n_params, err, errlen);
	if (rc)
		goto fail;
	rc = -ENOMEM;
	api->config_bool(cfg, "honor_labels", &c->honor_labels);
	c->honor_timestamps = true;
	api->config_bool(cfg, "honor_timestamps", &c->honor_timestamps);
	api->config_bool(cfg, "track_timestamps_staleness", &c->track_timestamps_staleness);
	c->enable_compression = true;
	api->config_bool(cfg, "enable_compression", &c->enable_compression);
	api->config_bool(cfg, "extra_metrics", &c->extra_metrics);
	v = 0;
	api->config_bytes(cfg, "body_size_limit", &v);
	c->body_size_limit = v > 0 ? v : SCRAPE_SAFETY_BODY_LIMIT;
	{
		static const char *const lim[] = {"sample_limit", "label_limit",
						  "label_name_length_limit",
						  "label_value_length_limit"};
		uint64_t *dst[] = {&c->sample_limit, &c->label_limit, &c->label_name_length_limit,
				   &c->label_value_length_limit};

		for (int i = 0; i < 4; i++) {
			v = 0;
			api->config_int(cfg, lim[i], &v);
			if (v < 0) {
				snprintf(err, errlen, "%s: %s must not be negative",
					 api->config_where(cfg), lim[i]);
				rc = -EINVAL;
				goto fail;
			}
			*dst[i] = (uint64_t)v;
		}
	}
	c->fallback_format = STARLING_EXPO_PROMETHEUS;
	if (!api->config_string(cfg, "scrape_fallback_protocol", &s)) {
		p = find_protocol(s);
		if (p < 0) {
			snprintf(err, errlen, "%s: unsupported scrape_fallback_protocol \"%s\"",
				 api->config_where(cfg), s);
			rc = -EINVAL;
			goto fail;
		}
		c->fallback_format = protocols[p].fmt;
	}
	rc = build_accept(api, cfg, c, err, errlen);
	if (rc)
		goto fail;
	snprintf(c->timeout_header, sizeof(c->timeout_header),
		 "X-Prometheus-Scrape-Timeout-Seconds: %lld", (long long)(c->timeout_ms / 1000));
	if (c->timeout_ms % 1000) {
		char frac[8];
		size_t l;

		snprintf(frac, sizeof(frac), ".%03lld", (long long)(c->timeout_ms % 1000));
		for (l = strlen(frac); frac[l - 1] == '0'; l--)
			frac[l - 1] = '\0';
		l = strlen(c->timeout_header);
		snprintf(c->timeout_header + l, sizeof(c->timeout_header) - l, "%s", frac);
	}
	node = api->config_lookup(cfg, "metric_relabel_config");
	rc = starling_relabel_rules_from_config(api, node, &c->metric_relabel, err, errlen);
	if (rc)
		goto fail;
	if (c->metric_relabel && starling_relabel_rules_count(c->metric_relabel) == 0) {
		starling_relabel_rules_free(c->metric_relabel);
		c->metric_relabel = NULL;
	}
	rc = starling_http_auth_from_config(api, cfg, &c->auth, err, errlen);
	if (rc)
		goto fail;
	rc = starling_scrape_clustering(api, cfg, &c->clustering, &c->key_labels, &c->n_key_labels,
					&c->exclude_labels, &c->n_exclude_labels, err, errlen);
	if (rc)
		goto fail;
	XXH3_64bits_reset(&st);
	hash_config(api, cfg, scrape_schema, &st);
	c->fingerprint = XXH3_64bits_digest(&st);
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

static void targets_free(struct scrape_target **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		scrape_target_free(v[i]);
	free(v);
}

static int phase_cmp(const void *a, const void *b)
{
	const struct scrape_target *ta = *(struct scrape_target *const *)a;
	const struct scrape_target *tb = *(struct scrape_target *const *)b;

	if (ta->phase_ms != tb->phase_ms)
		return ta->phase_ms < tb->phase_ms ? -1 : 1;
	return (ta->key > tb->key) - (ta->key < tb->key);
}

static bool same_input(const struct scrape_target *a, const struct scrape_target *b)
{
	if (a->identity != b->identity || a->n_input != b->n_input)
		return false;
	for (size_t i = 0; i < a->n_input; i++)
		if (strcmp(a->input[i].name, b->input[i].name) ||
		    strcmp(a->input[i].value, b->input[i].value))
			return false;
	return true;
}

/* A list entry to match: its labels (sorted, as a target's input) and
 * their hash (the target's identity). */
struct probe {
	const struct starling_label *l;
	size_t n;
};

static bool same_labels(const struct scrape_target *t, const struct probe *p)
{
	if (t->n_input != p->n)
		return false;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(t->input[i].name, p->l[i].name) ||
		    strcmp(t->input[i].value, p->l[i].value))
			return false;
	return true;
}

static bool eq_target(const void *item, const void *arg)
{
	return same_labels(item, arg);
}

/* Items that are slots of an array of targets. */
static bool eq_slot(const void *item, const void *arg)
{
	return same_input(*(struct scrape_target *const *)item, arg);
}

static bool eq_slot_labels(const void *item, const void *arg)
{
	return same_labels(*(struct scrape_target *const *)item, arg);
}

struct built {
	struct scrape_target *t;
	bool reused;
};

static int built_cmp(const void *a, const void *b)
{
	const struct built *x = a, *y = b;

	return phase_cmp(&x->t, &y->t);
}

/* The scrape targets of the merged list tl, in phase order. Entries equal
 * to one of the current targets `cur` reuse it (its series cache, slot and
 * status go on): reused[i] says so for out[i] and cur_kept[j] for cur[j]
 * (cur is only read, so this runs without the lock). Identical entries are
 * scraped once, as Prometheus does. A bad inline target is a config error
 * (-EINVAL, "file:line: target N: why" in err); a bad discovered one (no
 * __address__, say) is dropped: *dropped counts them and err gets the first
 * reason. */
static int targets_build(const struct scrape_config *c, const struct starling_target_list *tl,
			 struct scrape_target *const *cur, size_t n_cur, bool *cur_kept,
			 struct scrape_target ***out, bool **reused_out, size_t *n_out,
			 size_t *dropped, char *err, size_t errlen)
{
	size_t n = starling_target_list_count(tl), k = 0, n_inline = 0;
	struct scrape_target **v = calloc(n ? n : 1, sizeof(*v));
	bool *reused = calloc(n ? n : 1, sizeof(*reused));
	struct starling_scrape_index seen = {0}, old = {0};
	char msg[256];
	int rc = 0;

	*dropped = 0;
	if (!v || !reused || starling_scrape_index_init(&seen, n) ||
	    starling_scrape_index_init(&old, n_cur)) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < n_cur; j++)
		starling_scrape_index_add(&old, cur[j]->identity, (void *)&cur[j]);
	for (size_t i = 0; i < n; i++) {
		const struct starling_target *in = starling_target_list_get(tl, i);
		struct probe p = {in->labels, in->n_labels};
		uint64_t id = starling_labels_hash(in->labels, in->n_labels);
		bool is_inline;
		const char *origin = starling_target_list_origin(tl, i, &is_inline);
		struct scrape_target *t, *const *slot;

		n_inline += is_inline;
		if (starling_scrape_index_find(&seen, id, eq_target, &p, false))
			continue;
		slot = starling_scrape_index_find(&old, id, eq_slot_labels, &p, true);
		if (slot) {
			cur_kept[slot - cur] = true;
			reused[k] = true;
			v[k++] = *slot;
			starling_scrape_index_add(&seen, id, *slot);
			continue;
		}
		rc = scrape_target_new(c, in->labels, in->n_labels, &t, msg, sizeof(msg));
		if (rc == -EINVAL && !is_inline) {
			if (!(*dropped)++)
				snprintf(err, errlen, "target from %s dropped: %s", origin, msg);
			rc = 0;
			continue;
		}
		if (rc) {
			snprintf(err, errlen, "%s: target %zu: %s", origin, n_inline,
				 rc == -EINVAL ? msg : strerror(-rc));
			break;
		}
		starling_scrape_index_add(&seen, id, t);
		v[k++] = t;
	}
out:
	starling_scrape_index_free(&seen);
	starling_scrape_index_free(&old);
	if (rc) {
		for (size_t i = 0; i < k; i++)
			if (!reused[i])
				scrape_target_free(v[i]);
		free(v);
		free(reused);
		return rc;
	}
	/* phase order, reused[] following its target */
	{
		struct built *b = malloc((k ? k : 1) * sizeof(*b));

		if (!b) {
			for (size_t i = 0; i < k; i++)
				if (!reused[i])
					scrape_target_free(v[i]);
			free(v);
			free(reused);
			return -ENOMEM;
		}
		for (size_t i = 0; i < k; i++)
			b[i] = (struct built){v[i], reused[i]};
		qsort(b, k, sizeof(*b), built_cmp);
		for (size_t i = 0; i < k; i++) {
			v[i] = b[i].t;
			reused[i] = b[i].reused;
		}
		free(b);
	}
	*out = v;
	*reused_out = reused;
	*n_out = k;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Scraping (scrape thread).                                                 */

static void on_done(void *arg, const struct starling_http_response *resp)
{
	struct scrape_target *t = arg;
	struct scrape_inst *in = t->owner;
	const struct starling_host_api *api = in->api;
	struct scrape_ctx ctx = {api, in->self, in->cfg, &in->scratch};

	starling_scrape_finish(&ctx, t, resp, &in->lock, &in->stopping, &in->m);
}

/* Whether this node scrapes t in the slot starting now. */
static bool owns(struct scrape_inst *in, const struct scrape_target *t)
{
	return starling_scrape_owns(in->api, in->self, in->cfg->clustering, t->key);
}

static void dispatch(struct scrape_inst *in, struct scrape_target *t)
{
	bool owned = owns(in, t);

	if (owned != t->owned)
		in->api->log(in->self, STARLING_LOG_DEBUG, "target %s %s at its slot %lld", t->url,
			     owned ? "owned here" : "no longer owned here",
			     (long long)(t->next_due_ms - in->cfg->interval_ms));
	starling_scrape_owned_changed(in->api, in->self, &in->m, &in->lock, &in->owned,
				      in->n_targets, &t->owned, owned);
	if (!owned) {
		scrape_forget(t); /* moved away: no staleness markers */
		return;
	}
	if (t->in_flight) {
		in->api->metric_add(in->m.missed, 1);
		return;
	}
	scrape_submit(in->http, in->cfg, t, in->api->now_ms(), on_done, t, NULL);
}

static void reset_cursor(struct scrape_inst *in);

/* Scrape every target whose slot has come; returns ms until the next one.
 * The scrape thread calls it with in->lock held. */
static int64_t schedule(void *arg, int64_t now)
{
	struct scrape_inst *in = arg;
	int64_t iv = in->cfg->interval_ms, wait = STARLING_SCRAPE_MAX_WAIT_MS, back;
	size_t n = in->n_targets;
	struct scrape_ctx ctx = {in->api, in->self, in->cfg, &in->scratch};

	/* The wall clock went back: re-place every target on its slots from
	 * the new time. */
	back = n ? starling_scrape_clock_back(in->targets[in->cursor]->next_due_ms, now, iv) : 0;
	if (back) {
		in->api->log(in->self, STARLING_LOG_WARN,
			     "wall clock went back by %lld ms: rescheduling the targets",
			     (long long)back);
		for (size_t i = 0; i < n; i++)
			in->targets[i]->next_due_ms =
			    starling_scrape_next_slot(now, iv, in->targets[i]->phase_ms);
		reset_cursor(in);
	}
	for (size_t done = 0; n && done < n; done++) {
		struct scrape_target *t = in->targets[in->cursor];

		if (t->next_due_ms > now)
			break;
		t->next_due_ms = starling_scrape_slot_done(t->next_due_ms, now, iv, t->phase_ms);
		dispatch(in, t);
		in->cursor = (in->cursor + 1) % n;
	}
	if (n)
		wait = in->targets[in->cursor]->next_due_ms - now;
	/* Targets that left the config: staleness markers at their first
	 * missed slot, once their last scrape is done. */
	for (size_t i = 0; i < in->n_retired;) {
		if (!starling_scrape_retire_step(&ctx, in->retired[i], now, &wait)) {
			i++;
			continue;
		}
		scrape_target_free(in->retired[i]);
		in->retired[i] = in->retired[--in->n_retired];
	}
	return wait;
}

static void *scrape_thread(void *arg)
{
	struct scrape_inst *in = arg;

	starling_scrape_loop(in->api, in->http, &in->stopping, &in->lock, schedule, in);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks.                                                                */

static size_t count_owned(struct scrape_inst *in)
{
	size_t owned = 0;

	for (size_t i = 0; i < in->n_targets; i++)
		owned += owns(in, in->targets[i]);
	return owned;
}

static void on_cluster_change(void *arg, uint64_t epoch)
{
	struct scrape_inst *in = arg;
	size_t owned, total;

	(void)epoch;
	pthread_mutex_lock(&in->lock);
	owned = count_owned(in);
	total = in->n_targets;
	pthread_mutex_unlock(&in->lock);
	starling_scrape_report(in->api, in->self, &in->m, owned, total);
}

static void inst_free(struct scrape_inst *in)
{
	if (!in)
		return;
	targets_free(in->targets, in->n_targets);
	targets_free(in->retired, in->n_retired);
	starling_target_list_free(in->tl);
	config_free(in->cfg);
	scrape_scratch_free(&in->scratch);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static int scrape_create(const struct starling_host_api *api, starling_component *self,
			 const starling_config *cfg, void **out)
{
	struct scrape_inst *in = calloc(1, sizeof(*in));
	char err[512] = "";
	size_t dropped;
	bool *reused = NULL;
	int rc;

	if (!in)
		return -ENOMEM;
	in->api = api;
	in->self = self;
	starling_scrape_lock_init(&in->lock);
	scrape_scratch_init(&in->scratch);
	rc = config_load(api, self, cfg, &in->cfg, err, sizeof(err));
	if (!rc)
		rc = starling_target_list_new(api, api->config_lookup(cfg, "targets"), &in->tl, err,
					      sizeof(err));
	if (!rc)
		rc = targets_build(in->cfg, in->tl, NULL, 0, NULL, &in->targets, &reused,
				   &in->n_targets, &dropped, err, sizeof(err));
	free(reused);
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		inst_free(in);
		return rc;
	}
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->owner = in;
	starling_scrape_metrics_register(api, self, STARLING_SCRAPE_PROMETHEUS, &in->m);
	api->metric_set(in->m.targets, (double)in->n_targets);
	*out = in;
	return 0;
}

static void reset_cursor(struct scrape_inst *in)
{
	in->cursor = 0;
	for (size_t i = 1; i < in->n_targets; i++)
		if (in->targets[i]->next_due_ms < in->targets[in->cursor]->next_due_ms)
			in->cursor = i;
}

static int scrape_start(void *inst)
{
	struct scrape_inst *in = inst;
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
	reset_cursor(in);
	pthread_mutex_unlock(&in->lock);
	if (in->cfg->clustering && STARLING_API_HAS(in->api, cluster_subscribe))
		in->api->cluster_subscribe(in->self, on_cluster_change, in);
	on_cluster_change(in, 0);
	rc = starling_scrape_thread_spawn(in->api, in->self, &in->http, &in->thread, scrape_thread,
					  in);
	if (rc)
		return rc;
	in->running = true;
	in->api->set_health(in->self, true, NULL);
	return 0;
}

static int scrape_stop(void *inst)
{
	struct scrape_inst *in = inst;

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

static void scrape_destroy(void *inst)
{
	inst_free(inst);
}

/* Follow a new list of targets in place, like Prometheus' scrapePool.sync
 * (scrape/scrape.go): targets are matched by their input labels; kept ones
 * (reused by targets_build) keep their series cache and slots, new ones
 * start at their next slot, vanished ones get staleness markers at their
 * next slot (end-of-run staleness) unless they come back before it. Takes
 * nt and reused. */
static int targets_sync(struct scrape_inst *in, struct scrape_target **nt, bool *reused, size_t nn,
			const bool *cur_kept)
{
	struct scrape_target **ret;
	struct starling_scrape_index gone = {0};
	size_t kept = 0, removed = 0, w = 0;
	int64_t now = in->api->now_ms();

	pthread_mutex_lock(&in->lock);
	ret = realloc(in->retired, (in->n_retired + in->n_targets + 1) * sizeof(*ret));
	if (ret)
		in->retired = ret;
	if (!ret || starling_scrape_index_init(&gone, in->n_retired)) {
		pthread_mutex_unlock(&in->lock);
		for (size_t i = 0; i < nn; i++)
			if (!reused[i])
				scrape_target_free(nt[i]);
		free(nt);
		free(reused);
		return -ENOMEM;
	}
	for (size_t j = 0; j < in->n_retired; j++)
		starling_scrape_index_add(&gone, in->retired[j]->identity, &in->retired[j]);
	for (size_t i = 0; i < nn; i++) {
		struct scrape_target **slot, *old;

		if (reused[i]) {
			kept++;
			continue;
		}
		nt[i]->owner = in;
		nt[i]->next_due_ms =
		    starling_scrape_next_slot(now, in->cfg->interval_ms, nt[i]->phase_ms);
		/* removed and given back before its staleness markers went
		 * out: it simply carries on */
		slot = starling_scrape_index_find(&gone, nt[i]->identity, eq_slot, nt[i], true);
		if (!slot)
			continue;
		old = *slot;
		scrape_target_free(nt[i]);
		old->state = TARGET_ACTIVE;
		old->next_due_ms = old->retire_ms;
		if (old->owned)
			in->owned++;
		nt[i] = old;
		*slot = NULL;
		kept++;
	}
	starling_scrape_index_free(&gone);
	for (size_t j = 0; j < in->n_retired; j++)
		if (in->retired[j])
			in->retired[w++] = in->retired[j];
	in->n_retired = w;
	for (size_t j = 0; j < in->n_targets; j++) {
		struct scrape_target *old = in->targets[j];

		if (cur_kept[j])
			continue;
		old->state = TARGET_RETIRED;
		old->retire_ms = old->next_due_ms;
		if (old->owned)
			in->owned--;
		in->retired[in->n_retired++] = old;
		removed++;
	}
	free(in->targets);
	in->targets = nt;
	in->n_targets = nn;
	reset_cursor(in);
	pthread_mutex_unlock(&in->lock);
	free(reused);
	in->api->metric_set(in->m.targets, (double)nn);
	in->api->log(in->self, STARLING_LOG_INFO,
		     "targets updated: %zu kept, %zu added, %zu removed", kept, nn - kept, removed);
	on_cluster_change(in, 0);
	if (in->http)
		starling_http_wakeup(in->http);
	return 0;
}

/* Rebuild the targets from in->tl and follow them. */
static int targets_refresh(struct scrape_inst *in)
{
	struct scrape_target **nt = NULL;
	bool *reused = NULL, *cur_kept = calloc(in->n_targets + 1, sizeof(*cur_kept));
	size_t nn = 0, dropped = 0;
	char err[512] = "";
	int rc = cur_kept ? 0 : -ENOMEM;

	if (!rc)
		rc = targets_build(in->cfg, in->tl, in->targets, in->n_targets, cur_kept, &nt,
				   &reused, &nn, &dropped, err, sizeof(err));
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		free(cur_kept);
		return rc;
	}
	starling_scrape_note_dropped(in->api, in->self, &in->m, dropped, err);
	rc = targets_sync(in, nt, reused, nn, cur_kept);
	free(cur_kept);
	return rc;
}

/* A change of `targets` alone is applied in place (targets_sync); the
 * latest sets of the discovery sources still named carry over. Anything
 * else: the host re-creates the instance. */
static int scrape_update(void *inst, const starling_config *cfg)
{
	struct scrape_inst *in = inst;
	struct scrape_config *nc = NULL;
	struct starling_target_list *tl = NULL;
	char err[512] = "";
	int rc;

	rc = config_load(in->api, in->self, cfg, &nc, err, sizeof(err));
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "%s", err);
		return rc;
	}
	if (nc->fingerprint != in->cfg->fingerprint) {
		config_free(nc);
		return -EOPNOTSUPP;
	}
	config_free(nc);
	rc = starling_target_list_new(in->api, in->api->config_lookup(cfg, "targets"), &tl, err,
				      sizeof(err));
	if (!rc)
		rc = starling_target_list_adopt(tl, in->tl);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		starling_target_list_free(tl);
		return rc;
	}
	starling_target_list_free(in->tl);
	in->tl = tl;
	return targets_refresh(in);
}

/* A discovery source's latest set (host thread, serialised with the other
 * callbacks). */
static int scrape_receive_targets(void *inst, const char *source,
				  const struct starling_target_set *set)
{
	struct scrape_inst *in = inst;
	int rc = starling_scrape_take_set(in->api, in->self, in->tl, source, set);

	return rc ? rc : targets_refresh(in);
}

static int scrape_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct scrape_inst *in = inst;

	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		scrape_emit_target(in->api, in->self, in->cfg->clustering, in->targets[i], emit,
				   ctx);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

const struct starling_component_type prometheus_scrape_type = {
    STARLING_TYPE_HEAD,
    .name = "prometheus.scrape",
    .help = "Scrape Prometheus and OpenMetrics targets and forward the samples",
    .flags = 0,
    .accepts = STARLING_ACCEPTS_TARGETS,
    .produces = STARLING_ACCEPTS_SERIES,
    .schema = scrape_schema,
    .create = scrape_create,
    .update = scrape_update,
    .start = scrape_start,
    .stop = scrape_stop,
    .destroy = scrape_destroy,
    .list_targets = scrape_list_targets,
    .receive_targets = scrape_receive_targets,
};
