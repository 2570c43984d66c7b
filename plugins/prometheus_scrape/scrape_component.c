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
#include <time.h>

#include <starling/histogram.h>
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
	bool uniform; /* every target has the same interval: use the cursor */
	/* target_limit exceeded: every scrape fails with this (scrape thread
	 * reads it under the lock) */
	char limit_error[128];
	FILE *failure_log; /* scrape_failure_log_file, open while running */
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
	size_t owned;	     /* targets owned at their last slot */
	uint64_t seen_epoch; /* cluster view the catch-up last looked at */
	/* What the component's health last said: targets down / owned. */
	size_t down_reported, owned_reported;

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
    {"replicas", STARLING_CFG_INT, false, "1",
     "Nodes that scrape each target (its first N owners; every node when fewer)"},
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
    {"scrape_timeout", STARLING_CFG_DURATION, false, NULL,
     "Timeout of one scrape: at most scrape_interval (default 10s, or scrape_interval if "
     "shorter)"},
    {"metrics_path", STARLING_CFG_STRING, false, "/metrics", "HTTP path to scrape"},
    {"scheme", STARLING_CFG_STRING, false, "http", "http or https"},
    {"params", STARLING_CFG_MAP, false, NULL,
     "URL query parameters: a string or a list of strings per name",
     .flags = STARLING_CFG_F_MULTI_VALUE},
    {"honor_labels", STARLING_CFG_BOOL, false, "false",
     "On a clash keep the scraped label instead of renaming it exported_<name>"},
    {"honor_timestamps", STARLING_CFG_BOOL, false, "true", "Use the timestamps the target exposes"},
    {"track_timestamps_staleness", STARLING_CFG_BOOL, false, "false",
     "Staleness markers also for series with explicit timestamps"},
    {"enable_compression", STARLING_CFG_BOOL, false, "true", "Ask targets for gzip"},
    {"honor_metadata", STARLING_CFG_BOOL, false, "false",
     "Send a family's metadata downstream with the scrape where it is new or changed"},
    {"extra_metrics", STARLING_CFG_BOOL, false, "false",
     "Also send scrape_timeout_seconds, scrape_sample_limit and scrape_body_size_bytes"},
    {"body_size_limit", STARLING_CFG_BYTES, false, "0",
     "Largest uncompressed body accepted (0: no limit but a 256MiB safety cap)"},
    {"target_limit", STARLING_CFG_INT, false, "0",
     "More targets than this fail every target of the component (up 0); 0 = none"},
    {"scrape_failure_log_file", STARLING_CFG_STRING, false, NULL,
     "Append one JSON line per failed scrape to this file"},
    {"sample_limit", STARLING_CFG_INT, false, "0",
     "More samples (after metric relabelling) fail the scrape; 0 = none"},
    {"label_limit", STARLING_CFG_INT, false, "0", "Most labels per series; 0 = none"},
    {"label_name_length_limit", STARLING_CFG_INT, false, "0", "Longest label name; 0 = none"},
    {"label_value_length_limit", STARLING_CFG_INT, false, "0", "Longest label value; 0 = none"},
    {"scrape_protocols", STARLING_CFG_STRING_LIST, false, NULL,
     "Protocols to negotiate, preferred first: PrometheusProto, OpenMetricsText1.0.0, "
     "OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4"},
    {"enable_protobuf_negotiation", STARLING_CFG_BOOL, false, "false",
     "Deprecated: offer PrometheusProto first (as scrape_native_histograms does)"},
    {"metric_name_validation_scheme", STARLING_CFG_STRING, false, "legacy",
     "legacy, or utf8 to take quoted UTF-8 metric and label names"},
    {"metric_name_escaping_scheme", STARLING_CFG_STRING, false, NULL,
     "escaping= asked of targets: underscores (legacy default), dots, values, allow-utf-8 "
     "(utf8 default)"},
    {"scrape_native_histograms", STARLING_CFG_BOOL, false, "false",
     "Ingest native histograms (offers PrometheusProto first unless scrape_protocols is set)"},
    {"scrape_classic_histograms", STARLING_CFG_BOOL, false, "false",
     "Also ingest the classic buckets of histograms that have native buckets"},
    {"native_histogram_bucket_limit", STARLING_CFG_INT, false, "0",
     "Halve a native histogram's resolution until it has at most this many buckets "
     "(fails the scrape at schema -4); 0 = none"},
    {"native_histogram_min_bucket_factor", STARLING_CFG_FLOAT, false, "0",
     "Reduce native histograms to the highest resolution whose bucket growth factor is "
     "at least this; 0 = none"},
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
				/* a list value of a multi-valued map member */
				for (size_t j = 0; j < api->config_count(e); j++)
					hash_str(st, api->config_string(api->config_child(e, j),
									NULL, &s)
							 ? NULL
							 : s);
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
    {"PrometheusProto", STARLING_EXPO_PROTOBUF_MEDIA, false, STARLING_EXPO_PROTOBUF},
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
	if (!rc && n == 0 && c->proto_first) {
		/* Prometheus' DefaultProtoFirstScrapeProtocols */
		static const char *const proto_first[] = {
		    "PrometheusProto", "OpenMetricsText1.0.0", "OpenMetricsText0.0.1",
		    "PrometheusText1.0.0", "PrometheusText0.0.4"};

		n = sizeof(proto_first) / sizeof(proto_first[0]);
		names = calloc(n, sizeof(*names));
		for (size_t i = 0; names && i < n; i++)
			if (!(names[i] = strdup(proto_first[i])))
				rc = -ENOMEM;
		if (!names) {
			n = 0;
			rc = -ENOMEM;
		}
	}
	if (!rc && n == 0 && strcmp(c->escaping, "underscores") != 0) {
		/* Prometheus' DefaultScrapeProtocols, with this escaping */
		static const char *const dflt[] = {"OpenMetricsText1.0.0", "OpenMetricsText0.0.1",
						   "PrometheusText1.0.0", "PrometheusText0.0.4"};

		n = sizeof(dflt) / sizeof(dflt[0]);
		names = calloc(n, sizeof(*names));
		for (size_t i = 0; names && i < n; i++)
			if (!(names[i] = strdup(dflt[i])))
				rc = -ENOMEM;
		if (!names) {
			n = 0;
			rc = -ENOMEM;
		}
	}
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
				 "PrometheusProto, OpenMetricsText1.0.0, OpenMetricsText0.0.1, "
				 "PrometheusText1.0.0, PrometheusText0.0.4)",
				 api->config_where(api->config_lookup(cfg, "scrape_protocols")),
				 names[i]);
			rc = -EINVAL;
			goto out;
		}
		len +=
		    (size_t)snprintf(c->accept + len, cap - len, "%s%s%s;q=0.%d,",
				     protocols[p].media, protocols[p].escaping ? ";escaping=" : "",
				     protocols[p].escaping ? c->escaping : "", w);
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
	if (c->interval_ms <= 0) {
		snprintf(err, errlen, "%s: scrape_interval must be positive",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	/* As Prometheus (config/config.go, ScrapeConfig.Validate): a timeout
	 * that is set must not exceed the interval; the default one is
	 * clamped to it. */
	if (api->config_duration_ms(cfg, "scrape_timeout", &c->timeout_ms)) {
		c->timeout_ms = 10000 < c->interval_ms ? 10000 : c->interval_ms;
	} else if (c->timeout_ms <= 0 || c->timeout_ms > c->interval_ms) {
		snprintf(err, errlen,
			 "%s: scrape_timeout (%lldms) must be positive and not greater than "
			 "scrape_interval (%lldms)",
			 api->config_where(api->config_lookup(cfg, "scrape_timeout")),
			 (long long)c->timeout_ms, (long long)c->interval_ms);
		rc = -EINVAL;
		goto fail;
	}
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
	api->config_bool(cfg, "honor_metadata", &c->honor_metadata);
	v = 0;
	api->config_bytes(cfg, "body_size_limit", &v);
	c->body_size_limit = v > 0 ? v : SCRAPE_SAFETY_BODY_LIMIT;
	{
		static const char *const lim[] = {"sample_limit", "label_limit",
						  "label_name_length_limit",
						  "label_value_length_limit", "target_limit"};
		uint64_t *dst[] = {&c->sample_limit, &c->label_limit, &c->label_name_length_limit,
				   &c->label_value_length_limit, &c->target_limit};

		for (int i = 0; i < 5; i++) {
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
	if (!api->config_string(cfg, "scrape_failure_log_file", &s) && *s) {
		c->failure_log_file = strdup(s);
		if (!c->failure_log_file)
			goto fail;
	}
	/* metric_name_validation_scheme / metric_name_escaping_scheme (Alloy):
	 * legacy names by default; utf8 takes quoted UTF-8 names */
	if (!api->config_string(cfg, "metric_name_validation_scheme", &s) &&
	    strcmp(s, "legacy") != 0) {
		if (strcmp(s, "utf8") != 0) {
			snprintf(
			    err, errlen,
			    "%s: metric_name_validation_scheme must be legacy or utf8, not \"%s\"",
			    api->config_where(cfg), s);
			rc = -EINVAL;
			goto fail;
		}
		c->utf8_names = true;
	}
	snprintf(c->escaping, sizeof(c->escaping), "%s",
		 c->utf8_names ? "allow-utf-8" : "underscores");
	if (!api->config_string(cfg, "metric_name_escaping_scheme", &s)) {
		if (strcmp(s, "underscores") && strcmp(s, "dots") && strcmp(s, "values") &&
		    strcmp(s, "allow-utf-8")) {
			snprintf(
			    err, errlen,
			    "%s: metric_name_escaping_scheme must be underscores, dots, values or "
			    "allow-utf-8, not \"%s\"",
			    api->config_where(cfg), s);
			rc = -EINVAL;
			goto fail;
		}
		if (!c->utf8_names && !strcmp(s, "allow-utf-8")) {
			snprintf(err, errlen,
				 "%s: metric_name_escaping_scheme allow-utf-8 needs "
				 "metric_name_validation_scheme utf8",
				 api->config_where(cfg));
			rc = -EINVAL;
			goto fail;
		}
		snprintf(c->escaping, sizeof(c->escaping), "%s", s);
	}
	api->config_bool(cfg, "scrape_native_histograms", &c->native_histograms);
	api->config_bool(cfg, "scrape_classic_histograms", &c->classic_histograms);
	api->config_bool(cfg, "enable_protobuf_negotiation", &c->proto_first);
	c->proto_first |= c->native_histograms;
	v = 0;
	api->config_int(cfg, "native_histogram_bucket_limit", &v);
	if (v < 0) {
		snprintf(err, errlen, "%s: native_histogram_bucket_limit must not be negative",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	c->nh_bucket_limit = (uint64_t)v;
	{
		double f = 0;

		api->config_float(cfg, "native_histogram_min_bucket_factor", &f);
		if (!(f >= 0)) {
			snprintf(err, errlen,
				 "%s: native_histogram_min_bucket_factor must not be negative",
				 api->config_where(cfg));
			rc = -EINVAL;
			goto fail;
		}
		c->nh_max_schema =
		    f > 0 ? starling_histogram_schema_for_factor(f) : STARLING_HISTOGRAM_SCHEMA_MAX;
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
	scrape_timeout_header(c->timeout_ms, c->timeout_header, sizeof(c->timeout_header));
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
	rc = starling_scrape_replicas(api, cfg, &c->replicas, err, errlen);
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

/* Free the targets of v that no instance owns yet (built for a new list;
 * the others are current targets reused as they are), and v. */
static void targets_free_new(struct scrape_target **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i]->owner)
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

/* Open-addressing index of a target array by identity, so that matching a
 * new list against the old one (and finding repeats) is linear, not
 * quadratic: 100,000 discovered targets must not take minutes. Slots hold
 * array index + 1 (0: empty); entries of the array may become NULL (taken)
 * and are skipped. */
struct tindex {
	size_t *slot;
	size_t mask;
};

static int tindex_init(struct tindex *x, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n + 2)
		cap *= 2;
	x->slot = calloc(cap, sizeof(*x->slot));
	x->mask = cap - 1;
	return x->slot ? 0 : -ENOMEM;
}

static void tindex_add(struct tindex *x, struct scrape_target *const *v, size_t i)
{
	size_t p = (size_t)v[i]->identity & x->mask;

	while (x->slot[p])
		p = (p + 1) & x->mask;
	x->slot[p] = i + 1;
}

/* Index in v of a target with t's input, or -1. */
static long tindex_find(const struct tindex *x, struct scrape_target *const *v,
			const struct scrape_target *t)
{
	for (size_t p = (size_t)t->identity & x->mask; x->slot[p]; p = (p + 1) & x->mask) {
		size_t i = x->slot[p] - 1;

		if (v[i] && same_input(v[i], t))
			return (long)i;
	}
	return -1;
}

/* Index in v of a target whose input is labels[0..n) (hash h), or -1. */
static long tindex_find_labels(const struct tindex *x, struct scrape_target *const *v,
			       const struct starling_label *labels, size_t n, uint64_t h)
{
	for (size_t p = (size_t)h & x->mask; x->slot[p]; p = (p + 1) & x->mask) {
		const struct scrape_target *t = v[x->slot[p] - 1];
		bool same = t && t->identity == h && t->n_input == n;

		for (size_t i = 0; same && i < n; i++)
			same = !strcmp(t->input[i].name, labels[i].name) &&
			       !strcmp(t->input[i].value, labels[i].value);
		if (same)
			return (long)(x->slot[p] - 1);
	}
	return -1;
}

/* The scrape targets of the merged list tl. A bad inline target is a
 * config error (-EINVAL, "file:line: target N: why" in err); a bad
 * discovered one (no __address__, say) is dropped: *dropped counts them and
 * err gets the first reason. Identical targets are scraped once, as
 * Prometheus does. Sorted by phase. */
static int targets_build(const struct scrape_config *c, const struct starling_target_list *tl,
			 struct scrape_target *const *cur, size_t n_cur,
			 struct scrape_target ***out, size_t *n_out, size_t *dropped, char *err,
			 size_t errlen)
{
	size_t n = starling_target_list_count(tl), k = 0, n_inline = 0;
	struct scrape_target **v = calloc(n ? n : 1, sizeof(*v));
	struct tindex seen = {0}, reuse = {0};
	char msg[256];
	int rc = 0;

	*dropped = 0;
	if (!v || tindex_init(&seen, n) || tindex_init(&reuse, n_cur)) {
		free(v);
		free(seen.slot);
		return -ENOMEM;
	}
	/* A current target with the same input labels is taken as it is
	 * (same config: the same target would be built), so a list that
	 * changed by 1% costs 1% of building it. */
	for (size_t j = 0; j < n_cur; j++)
		if (cur[j])
			tindex_add(&reuse, cur, j);
	for (size_t i = 0; i < n; i++) {
		const struct starling_target *in = starling_target_list_get(tl, i);
		bool is_inline;
		const char *origin = starling_target_list_origin(tl, i, &is_inline);
		struct scrape_target *t;
		bool dup = false;
		long j;

		n_inline += is_inline;
		j = n_cur ? tindex_find_labels(&reuse, cur, in->labels, in->n_labels,
					       starling_labels_hash(in->labels, in->n_labels))
			  : -1;
		if (j >= 0) {
			t = cur[j];
			if (tindex_find(&seen, v, t) < 0) {
				v[k] = t;
				tindex_add(&seen, v, k++);
			}
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
		dup = tindex_find(&seen, v, t) >= 0;
		if (dup) {
			scrape_target_free(t);
			continue;
		}
		v[k] = t;
		tindex_add(&seen, v, k++);
	}
	free(seen.slot);
	free(reuse.slot);
	if (rc) {
		targets_free_new(v, k);
		return rc;
	}
	qsort(v, k, sizeof(*v), phase_cmp);
	*out = v;
	*n_out = k;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Scraping (scrape thread).                                                 */

static void report_down(struct scrape_inst *in);

/* One JSON line per failed scrape (scrape_failure_log_file), with the
 * fields of Prometheus' scrape failure logger: time, level, msg, the target
 * URL, its labels and the error. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void log_failure(struct scrape_inst *in, const struct scrape_target *t, const char *err)
{
	int64_t ms = in->api->now_ms();
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char ts[40];

	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(in->failure_log,
		"{\"time\":\"%s.%03dZ\",\"level\":\"ERROR\",\"msg\":\"Scrape failed\","
		"\"component_id\":",
		ts, (int)(ms % 1000));
	json_str(in->failure_log, in->api->component_id(in->self));
	fputs(",\"target\":", in->failure_log);
	json_str(in->failure_log, t->url);
	for (size_t i = 0; i < t->n_labels; i++) {
		fputc(',', in->failure_log);
		json_str(in->failure_log, t->labels[i].name);
		fputc(':', in->failure_log);
		json_str(in->failure_log, t->labels[i].value);
	}
	fputs(",\"err\":", in->failure_log);
	json_str(in->failure_log, err);
	fputs("}\n", in->failure_log);
	fflush(in->failure_log);
}

static void on_done(void *arg, const struct starling_http_response *resp)
{
	struct scrape_target *t = arg;
	struct scrape_inst *in = t->owner;
	const struct starling_host_api *api = in->api;
	struct scrape_ctx ctx = {api, in->self, in->cfg, &in->scratch};
	struct scrape_stats st;
	enum starling_target_health before;
	int rc;

	if (atomic_load(&in->stopping)) {
		t->in_flight = false;
		return;
	}
	pthread_mutex_lock(&in->lock);
	before = t->health;
	pthread_mutex_unlock(&in->lock);
	rc = scrape_complete(&ctx, t, resp, &in->lock, &st);
	if (t->health != before)
		report_down(in);
	starling_scrape_account(api, in->self, &in->m, t, rc, &st);
	if (rc && in->failure_log)
		log_failure(in, t, st.error);
}

/* The component's health says how many of the targets scraped here are
 * down ("3/14 targets down"); healthy when none is. Called when a target's
 * health or ownership changes. */
static void report_down(struct scrape_inst *in)
{
	size_t down = 0, owned = 0;
	bool changed;
	char msg[64];

	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++) {
		if (!in->targets[i]->owned)
			continue;
		owned++;
		if (in->targets[i]->health == STARLING_TARGET_DOWN)
			down++;
	}
	changed = down != in->down_reported || (down && owned != in->owned_reported);
	in->down_reported = down;
	in->owned_reported = owned;
	pthread_mutex_unlock(&in->lock);
	if (!changed)
		return;
	if (!down) {
		in->api->set_health(in->self, true, NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "%zu/%zu targets down", down, owned);
	in->api->set_health(in->self, false, msg);
}

/* Whether this node scrapes t in the slot starting at `at`. */
static bool owns(struct scrape_inst *in, const struct scrape_target *t, int64_t at)
{
	return starling_scrape_owns_at(in->api, in->self, in->cfg->clustering, in->cfg->replicas,
				       t->key, at);
}

static void dispatch(struct scrape_inst *in, struct scrape_target *t, int64_t slot)
{
	bool owned = owns(in, t, slot);

	t->skipped_slot = owned ? STARLING_SCRAPE_NO_SLOT : slot;
	if (owned != t->owned) {
		if (!owned) /* Alloy's prometheus_scrape_targets_moved_total */
			in->api->metric_add(in->m.moved, 1);
		in->api->log(in->self, STARLING_LOG_DEBUG, "target %s %s at its slot %lld", t->url,
			     owned ? "owned here" : "no longer owned here",
			     (long long)(t->next_due_ms - t->interval_ms));
		starling_scrape_owned_changed(in->api, in->self, &in->m, &in->lock, &in->owned,
					      in->n_targets, &t->owned, owned);
		report_down(in);
	}
	if (!owned) {
		scrape_forget(t); /* moved away: no staleness markers */
		return;
	}
	if (t->in_flight) {
		in->api->metric_add(in->m.missed, 1);
		return;
	}
	if (in->limit_error[0]) {
		/* target_limit exceeded: the scrape fails without a request
		 * (Prometheus' scrapePool.sync forces errTargetLimit on every
		 * loop) */
		struct starling_http_response resp = {0};

		t->scrape_start_ms = in->api->now_ms();
		t->in_flight = true;
		resp.error = -E2BIG;
		resp.error_msg = in->limit_error;
		on_done(t, &resp);
		return;
	}
	scrape_submit(in->http, in->cfg, t, in->api->now_ms(), on_done, t, NULL);
}

static void reset_cursor(struct scrape_inst *in);

/* Scrape every target whose slot has come; returns ms until the next one.
 * With one interval for all targets (the usual case) the targets, sorted by
 * phase, come due in a fixed cyclic order and a cursor finds the next one;
 * targets with their own __scrape_interval__ are scanned instead. */
static int64_t schedule(void *arg, int64_t now)
{
	struct scrape_inst *in = arg;
	int64_t wait = STARLING_SCRAPE_MAX_WAIT_MS, back = 0;
	size_t n = in->n_targets;
	struct scrape_ctx ctx = {in->api, in->self, in->cfg, &in->scratch};

	/* The wall clock went back: re-place every target on its slots from
	 * the new time. */
	if (n && in->uniform)
		back = starling_scrape_clock_back(in->targets[in->cursor]->next_due_ms, now,
						  in->targets[0]->interval_ms);
	for (size_t i = 0; n && !in->uniform && !back && i < n; i++)
		back = starling_scrape_clock_back(in->targets[i]->next_due_ms, now,
						  in->targets[i]->interval_ms);
	if (back) {
		in->api->log(in->self, STARLING_LOG_WARN,
			     "wall clock went back by %lld ms: rescheduling the targets",
			     (long long)back);
		for (size_t i = 0; i < n; i++)
			in->targets[i]->next_due_ms = starling_scrape_next_slot(
			    now, in->targets[i]->interval_ms, in->targets[i]->phase_ms);
		reset_cursor(in);
	}
	/* An owner declared dead: its targets' current slots that this node
	 * skipped and owns now are scraped at once (scrape_sched.h). */
	if (starling_scrape_view_changed(in->api, in->self, in->cfg->clustering, &in->seen_epoch))
		for (size_t i = 0; i < n; i++) {
			struct scrape_target *t = in->targets[i];
			int64_t slot = t->skipped_slot;

			if (starling_scrape_catch_up(in->api, in->self, true, in->cfg->replicas,
						     t->key, &t->skipped_slot, t->interval_ms,
						     now)) {
				in->api->metric_add(in->m.catch_up, 1);
				dispatch(in, t, slot);
			}
		}
	if (n && !in->uniform) {
		for (size_t i = 0; i < n; i++) {
			struct scrape_target *t = in->targets[i];

			if (t->next_due_ms <= now) {
				int64_t slot = t->next_due_ms;

				t->next_due_ms = starling_scrape_slot_done(
				    t->next_due_ms, now, t->interval_ms, t->phase_ms);
				dispatch(in, t, slot);
			}
			if (t->next_due_ms - now < wait)
				wait = t->next_due_ms - now;
		}
	}
	for (size_t done = 0; n && in->uniform && done < n; done++) {
		struct scrape_target *t = in->targets[in->cursor];

		if (t->next_due_ms > now)
			break;
		int64_t slot = t->next_due_ms;

		t->next_due_ms =
		    starling_scrape_slot_done(t->next_due_ms, now, t->interval_ms, t->phase_ms);
		dispatch(in, t, slot);
		in->cursor = (in->cursor + 1) % n;
	}
	if (n && in->uniform)
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
		owned += owns(in, in->targets[i], in->api->now_ms());
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
		rc = targets_build(in->cfg, in->tl, NULL, 0, &in->targets, &in->n_targets, &dropped,
				   err, sizeof(err));
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

/* After the target list was (re)set: the cursor, whether all targets share
 * one interval, and whether target_limit is exceeded. */
static void reset_cursor(struct scrape_inst *in)
{
	in->limit_error[0] = '\0';
	if (in->cfg->target_limit && in->n_targets > in->cfg->target_limit)
		snprintf(in->limit_error, sizeof(in->limit_error),
			 "target_limit exceeded (number of targets: %zu, limit: %llu)",
			 in->n_targets, (unsigned long long)in->cfg->target_limit);
	in->uniform = true;
	for (size_t i = 1; i < in->n_targets; i++)
		in->uniform &= in->targets[i]->interval_ms == in->targets[0]->interval_ms;
	in->cursor = 0;
	for (size_t i = 1; i < in->n_targets; i++)
		if (in->targets[i]->next_due_ms < in->targets[in->cursor]->next_due_ms)
			in->cursor = i;
}

/* scrape_failure_log_file: opened for appending at start, closed at stop. */
static void failure_log_open(struct scrape_inst *in)
{
	if (!in->cfg->failure_log_file || in->failure_log)
		return;
	in->failure_log = fopen(in->cfg->failure_log_file, "ae");
	if (!in->failure_log)
		in->api->log(in->self, STARLING_LOG_ERROR, "scrape_failure_log_file %s: %s",
			     in->cfg->failure_log_file, strerror(errno));
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
	failure_log_open(in);
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_targets; i++)
		in->targets[i]->next_due_ms = starling_scrape_next_slot(
		    now, in->targets[i]->interval_ms, in->targets[i]->phase_ms);
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
	if (in->failure_log)
		fclose(in->failure_log);
	in->failure_log = NULL;
	return 0;
}

static void scrape_destroy(void *inst)
{
	inst_free(inst);
}

/* Follow a new list of targets in place, like Prometheus' scrapePool.sync
 * (scrape/scrape.go): targets are matched by their input labels; kept ones
 * keep their series cache and slots, new ones start at their next slot,
 * vanished ones get staleness markers at their next slot (end-of-run
 * staleness) unless they come back before it. Takes nt. */
static int targets_sync(struct scrape_inst *in, struct scrape_target **nt, size_t nn)
{
	struct scrape_target **ret;
	struct tindex cur = {0}, gone = {0};
	size_t kept = 0, removed = 0, o = 0;
	int64_t now = in->api->now_ms();

	pthread_mutex_lock(&in->lock);
	ret = realloc(in->retired, (in->n_retired + in->n_targets + 1) * sizeof(*ret));
	if (!ret || tindex_init(&cur, in->n_targets) || tindex_init(&gone, in->n_retired)) {
		if (ret)
			in->retired = ret;
		free(cur.slot);
		pthread_mutex_unlock(&in->lock);
		targets_free_new(nt, nn);
		return -ENOMEM;
	}
	in->retired = ret;
	for (size_t j = 0; j < in->n_targets; j++)
		if (in->targets[j])
			tindex_add(&cur, in->targets, j);
	for (size_t j = 0; j < in->n_retired; j++)
		tindex_add(&gone, in->retired, j);
	for (size_t i = 0; i < nn; i++) {
		long j;

		j = tindex_find(&cur, in->targets, nt[i]);
		if (j >= 0) {
			/* kept: its cache and slot carry on (targets_build
			 * may have reused the very same object) */
			if (nt[i] != in->targets[j])
				scrape_target_free(nt[i]);
			nt[i] = in->targets[j];
			in->targets[j] = NULL;
			kept++;
			continue;
		}
		/* removed and given back before its staleness markers went
		 * out: it simply carries on */
		j = tindex_find(&gone, in->retired, nt[i]);
		if (j >= 0) {
			struct scrape_target *old = in->retired[j];

			scrape_target_free(nt[i]);
			old->state = TARGET_ACTIVE;
			old->next_due_ms = old->retire_ms;
			if (old->owned)
				in->owned++;
			nt[i] = old;
			in->retired[j] = NULL; /* compacted below */
			kept++;
			continue;
		}
		nt[i]->next_due_ms =
		    starling_scrape_next_slot(now, nt[i]->interval_ms, nt[i]->phase_ms);
		nt[i]->owner = in;
	}
	free(cur.slot);
	free(gone.slot);
	for (size_t j = 0; j < in->n_retired; j++)
		if (in->retired[j])
			in->retired[o++] = in->retired[j];
	in->n_retired = o;
	for (size_t j = 0; j < in->n_targets; j++) {
		struct scrape_target *old = in->targets[j];

		if (!old)
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
	size_t nn = 0, dropped = 0;
	char err[512] = "";
	int rc = targets_build(in->cfg, in->tl, in->targets, in->n_targets, &nt, &nn, &dropped, err,
			       sizeof(err));

	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
		return rc;
	}
	starling_scrape_note_dropped(in->api, in->self, &in->m, dropped, err);
	return targets_sync(in, nt, nn);
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
		scrape_emit_target(in->api, in->self, in->cfg->clustering, in->cfg->replicas,
				   in->targets[i], emit, ctx);
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
