/*
 * discovery.http: Prometheus HTTP service discovery (http_sd_config,
 * discovery/http/http.go; Alloy's discovery.http). Every refresh_interval
 * the URL is fetched with GET through the SDK HTTP client (so every HTTP
 * client argument applies: auth, oauth2, TLS, proxy, http_headers). The
 * answer must be HTTP 200 with Content-Type application/json (optionally
 * `; charset=utf-8`) holding a target-group list
 * `[{"targets": [...], "labels": {...}}]`; each group gets __meta_url. Any
 * error keeps the last good set, counts prometheus_sd_http_failures_total
 * and makes the component unhealthy until the next good answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <starling/http.h>
#include <starling/plugin.h>
#include <starling/sd.h>
#include <starling/targetgroup.h>

/* Largest answer accepted (Prometheus has no cap; an unbounded body would
 * be unbounded memory here). */
#define BODY_LIMIT (64u << 20)

struct http_sd {
	struct starling_sd_refresh *refresh; /* first: starling_sd_component_* */
	const struct starling_host_api *api;
	starling_component *self;
	char *url;
	int64_t interval_ms;
	char interval_header[96];
	struct starling_http_auth *auth;
	struct starling_sd_groups *groups;
	starling_metric *m_failures, *m_dropped;
};

static const struct starling_config_key schema[] = {
    {.name = "url",
     .type = STARLING_CFG_STRING,
     .required = true,
     .help = "URL answering with a JSON list of target groups"},
    {.name = "refresh_interval",
     .type = STARLING_CFG_DURATION,
     .default_value = "60s",
     .help = "How often the URL is fetched (also the request timeout)"},
    STARLING_HTTP_CONFIG_KEYS,
    {0},
};

/* ^(?i:application/json(;\s*charset=("utf-8"|utf-8))?)$ after trimming
 * spaces (Prometheus discovery/http/http.go matchContentType). */
static bool json_content_type(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	while (isspace((unsigned char)*ct))
		ct++;
	n = strlen(ct);
	while (n && isspace((unsigned char)ct[n - 1]))
		n--;
	if (n < 16 || strncasecmp(ct, "application/json", 16))
		return false;
	ct += 16;
	n -= 16;
	if (!n)
		return true;
	if (*ct != ';')
		return false;
	ct++;
	n--;
	while (n && isspace((unsigned char)*ct)) {
		ct++;
		n--;
	}
	return (n == 13 && !strncasecmp(ct, "charset=utf-8", 13)) ||
	       (n == 15 && !strncasecmp(ct, "charset=\"utf-8\"", 15));
}

struct fetch {
	bool done;
	int error;
	long status;
	char msg[256];
	char *body;
	size_t len;
	bool json;
};

static void on_done(void *arg, const struct starling_http_response *r)
{
	struct fetch *f = arg;

	f->done = true;
	f->error = r->error;
	f->status = r->status;
	snprintf(f->msg, sizeof(f->msg), "%s", r->error_msg);
	f->json = json_content_type(r->content_type);
	if (!r->error && r->status == 200 && f->json) {
		f->body = malloc(r->body_len + 1);
		if (f->body) {
			memcpy(f->body, r->body, r->body_len + 1);
			f->len = r->body_len;
		} else {
			f->error = -ENOMEM;
		}
	}
}

/* Store the answer's groups as the one group of source `url` (each answer
 * is the whole list, so replacing it removes vanished groups). */
static int apply(struct http_sd *d, const char *body, size_t len, char *err, size_t errlen)
{
	struct starling_tgroups g;
	struct starling_target_builder b;
	struct starling_target_set set;
	char perr[256];
	int r;

	starling_tgroups_init(&g);
	starling_target_builder_init(&b);
	r = starling_tgroups_parse_json(&g, body, len, perr, sizeof(perr));
	if (r) {
		snprintf(err, errlen, "%s: bad answer: %s", d->url,
			 r == -ENOMEM ? "out of memory" : perr);
		goto out;
	}
	r = starling_tgroups_set_label(&g, "__meta_url", d->url);
	if (!r)
		r = starling_target_builder_add(&b, &g);
	if (r) {
		snprintf(err, errlen, "%s: %s", d->url, strerror(-r));
		goto out;
	}
	if (b.dropped) {
		d->api->metric_add(d->m_dropped, (double)b.dropped);
		d->api->log(d->self, STARLING_LOG_WARN,
			    "%s: %zu target(s) without an address dropped", d->url, b.dropped);
	}
	starling_target_builder_view(&b, &set);
	r = starling_sd_groups_set(d->groups, d->url, NULL, 0, set.targets, set.n_targets);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", d->url, strerror(-r));
	else
		r = 0;
out:
	starling_target_builder_free(&b);
	starling_tgroups_free(&g);
	return r;
}

static int refresh(void *arg, struct starling_sd_groups *g, char *err, size_t errlen)
{
	struct http_sd *d = arg;
	const char *headers[] = {"Accept: application/json", d->interval_header};
	struct fetch f = {0};
	struct starling_http_client *client;
	struct starling_http_request req = {
	    .url = d->url,
	    .headers = headers,
	    .n_headers = 2,
	    .timeout_ms = d->interval_ms,
	    .body_limit = BODY_LIMIT,
	    .accept_gzip = true,
	    .auth = d->auth,
	    .done = on_done,
	    .arg = &f,
	};
	int r;

	(void)g;
	/* a client per refresh, owned by this job: stop() can end a slow
	 * request at once (freeing the client completes it here) */
	r = starling_http_client_new(NULL, &client);
	if (!r) {
		r = starling_http_submit(client, &req);
		if (r)
			starling_http_client_free(client);
	}
	if (r) {
		snprintf(err, errlen, "%s: cannot send the request: %s", d->url, strerror(-r));
		goto fail;
	}
	/* done() runs exactly once: at the latest when the timeout fires, or
	 * (-ECANCELED) when the client is freed */
	while (!f.done && !starling_sd_refresh_stopping(d->refresh))
		if (starling_http_run(client, 250) < 0)
			break;
	starling_http_client_free(client);
	if (f.error) {
		snprintf(err, errlen, "%s: %s", d->url, f.msg);
		r = f.error;
	} else if (f.status != 200) {
		snprintf(err, errlen, "%s: server returned HTTP status %ld", d->url, f.status);
		r = -EPROTO;
	} else if (!f.json) {
		snprintf(err, errlen, "%s: unsupported content type (want application/json)",
			 d->url);
		r = -EPROTO;
	} else {
		r = apply(d, f.body, f.len, err, errlen);
	}
	free(f.body);
	if (!r)
		return 0;
fail:
	if (!starling_sd_refresh_stopping(d->refresh))
		d->api->metric_add(d->m_failures, 1);
	return r;
}

static void http_sd_free(struct http_sd *d)
{
	starling_sd_refresh_free(d->refresh);
	starling_sd_groups_free(d->groups);
	starling_http_auth_free(d->auth);
	free(d->url);
	free(d);
}

/* http or https, with a host (Prometheus SDConfig.UnmarshalYAML). */
static bool url_ok(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok;

	ok = u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
	     !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
	     !curl_url_get(u, CURLUPART_HOST, &host, 0) && host && *host &&
	     (!strcasecmp(scheme, "http") || !strcasecmp(scheme, "https"));
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	struct http_sd *d = calloc(1, sizeof(*d));
	const char *url;
	char err[512];
	int r;

	if (!d)
		return -ENOMEM;
	d->api = api;
	d->self = self;
	if (api->config_string(cfg, "url", &url) ||
	    api->config_duration_ms(cfg, "refresh_interval", &d->interval_ms)) {
		api->log(self, STARLING_LOG_ERROR, "%s: url and refresh_interval are required",
			 api->config_where(cfg));
		r = -EINVAL;
		goto out;
	}
	if (!url_ok(url)) {
		api->log(self, STARLING_LOG_ERROR,
			 "%s: url \"%s\": expected an http or https URL with a host",
			 api->config_where(cfg), url);
		r = -EINVAL;
		goto out;
	}
	if (d->interval_ms < 1) {
		api->log(self, STARLING_LOG_ERROR, "%s: refresh_interval must be positive",
			 api->config_where(cfg));
		r = -EINVAL;
		goto out;
	}
	/* seconds as Go's strconv.FormatFloat(s, 'f', -1, 64): "60", "0.5" */
	snprintf(d->interval_header, sizeof(d->interval_header),
		 "X-Prometheus-Refresh-Interval-Seconds: %lld", (long long)(d->interval_ms / 1000));
	if (d->interval_ms % 1000) {
		char frac[8];
		int n = snprintf(frac, sizeof(frac), "%03lld", (long long)(d->interval_ms % 1000));

		while (n > 0 && frac[n - 1] == '0')
			frac[--n] = 0;
		strncat(d->interval_header, ".",
			sizeof(d->interval_header) - 1 - strlen(d->interval_header));
		strncat(d->interval_header, frac,
			sizeof(d->interval_header) - 1 - strlen(d->interval_header));
	}
	r = starling_http_auth_from_config(api, cfg, &d->auth, err, sizeof(err));
	if (r) {
		api->log(self, STARLING_LOG_ERROR, "%s", err);
		goto out;
	}
	r = -ENOMEM;
	d->url = strdup(url);
	d->groups = starling_sd_groups_new();
	if (!d->url || !d->groups)
		goto out;
	d->refresh = starling_sd_refresh_new(api, self, d->groups, d->interval_ms, refresh, d);
	if (!d->refresh)
		goto out;
	d->m_failures =
	    api->metric_register(self, STARLING_SELF_COUNTER, "prometheus_sd_http_failures_total",
				 "Number of HTTP service discovery refresh failures.", NULL);
	d->m_dropped = api->metric_register(
	    self, STARLING_SELF_COUNTER, "starling_discovery_targets_dropped_total",
	    "Targets dropped because they have no __address__", NULL);
	*out = d;
	return 0;
out:
	http_sd_free(d);
	return r;
}

static void destroy(void *inst)
{
	http_sd_free(inst);
}

static const struct starling_component_type http_type = {
    STARLING_TYPE_HEAD,
    .name = "discovery.http",
    .help = "Targets from an HTTP endpoint (Prometheus http_sd_config)",
    .schema = schema,
    .create = create,
    .start = starling_sd_component_start,
    .stop = starling_sd_component_stop,
    .destroy = destroy,
    .list_targets = starling_sd_component_list_targets,
    .produces = STARLING_ACCEPTS_TARGETS,
};

static const struct starling_component_type *const types_list[] = {&http_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "discovery_http",
    .version = "1.0.0",
    .types = types_list,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
