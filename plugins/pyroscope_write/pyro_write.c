/*
 * pyroscope.write: push profiles to Pyroscope's push API.
 *
 * receive_profile() encodes the PushRequest at once (one copy of the pprof
 * bytes) and appends it to a bounded in-memory queue per endpoint; it never
 * blocks on the network. One sender thread per instance drives one HTTP
 * client for all endpoints, with up to PYRO_MAX_IN_FLIGHT requests per
 * endpoint. Answers are classified as Alloy's connect-go client sees them
 * (pyro_classify): retryable ones are retried with exponential back-off
 * between min_backoff_period and max_backoff_period, at most
 * max_backoff_retries times (0: forever); final refusals (400, 401, 403,
 * 404, 412) drop the profile. Every drop is counted and logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <starling/http.h>

#include "pyro_write.h"

#define PYRO_MAX_IN_FLIGHT 4
/* How long stop() keeps sending what is queued before dropping it. */
#define PYRO_DRAIN_MS 3000

/* One encoded PushRequest, shared by the endpoints' queues. */
struct item {
	unsigned refs; /* guarded by the instance lock */
	size_t len;
	uint8_t body[];
};

struct qent {
	struct item *it;
	unsigned attempts; /* retries so far */
};

enum drop_reason { DROP_QUEUE_FULL, DROP_REJECTED, DROP_RETRIES, DROP_SHUTDOWN, DROP_N };
static const char *const drop_names[DROP_N] = {"queue_full", "rejected", "retries_exhausted",
					       "shutdown"};

struct endpoint {
	struct pyro_inst *in;
	char *url; /* as configured, for logs and metric labels */
	char *push_url;
	char **headers; /* "Name: value" */
	size_t n_headers;
	int64_t timeout_ms, min_backoff_ms, max_backoff_ms;
	int64_t max_retries; /* 0 = forever */
	struct starling_http_auth *auth;

	/* Guarded by the instance lock. */
	struct qent *q; /* ring of cap entries */
	size_t head, n, cap;
	size_t bytes;
	unsigned in_flight;
	int64_t backoff_until_ms; /* monotonic */

	starling_metric *m_sent, *m_sent_bytes, *m_retries, *m_failed, *m_queued, *m_latency;
	starling_metric *m_dropped[DROP_N], *m_dropped_bytes[DROP_N];
};

struct send_ctx {
	struct endpoint *ep;
	struct qent e;
	char tmo[48];
};

struct pyro_inst {
	const struct starling_host_api *api;
	starling_component *self;
	struct starling_label *ext; /* external_labels (strings owned by the host) */
	size_t n_ext;
	struct endpoint *eps;
	size_t n_eps;
	size_t max_queued;
	size_t max_bytes;

	pthread_mutex_t lock;
	struct starling_http_client *http;
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	atomic_bool draining;
};

/* ------------------------------------------------------------------------ */
/* Schema.                                                                   */

static const struct starling_config_key endpoint_keys[] = {
    {"url", STARLING_CFG_STRING, true, NULL,
     "Base URL of Pyroscope; profiles go to <url>" PYRO_PUSH_PATH},
    {"name", STARLING_CFG_STRING, false, NULL, "Name of the endpoint in metrics and logs"},
    {"remote_timeout", STARLING_CFG_DURATION, false, "10s", "Timeout of one push request"},
    {"min_backoff_period", STARLING_CFG_DURATION, false, "500ms",
     "First retry delay; doubled on each retry"},
    {"max_backoff_period", STARLING_CFG_DURATION, false, "5m", "Longest retry delay"},
    {"max_backoff_retries", STARLING_CFG_INT, false, "10",
     "Retries before a profile is dropped (0: retry forever)"},
    {"headers", STARLING_CFG_MAP, false, NULL, "Extra HTTP headers of each request"},
    STARLING_HTTP_CONFIG_KEYS,
    {NULL},
};

static const struct starling_config_key write_schema[] = {
    {"endpoint", STARLING_CFG_GROUP_LIST, true, NULL, "Pyroscope servers to push to",
     endpoint_keys},
    {"external_labels", STARLING_CFG_MAP, false, NULL,
     "Labels added to every profile (they override same-named labels)"},
    {"max_queued_profiles", STARLING_CFG_INT, false, "1000",
     "Profiles an endpoint may hold in memory before new ones are dropped"},
    {"max_queued_bytes", STARLING_CFG_BYTES, false, "256MiB",
     "Bytes an endpoint may hold in memory before new profiles are dropped"},
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* Queue (instance lock held).                                               */

static void item_put(struct item *it)
{
	if (it && --it->refs == 0)
		free(it);
}

static void q_push(struct endpoint *ep, struct qent e, bool front)
{
	if (front) {
		ep->head = (ep->head + ep->cap - 1) % ep->cap;
		ep->q[ep->head] = e;
	} else {
		ep->q[(ep->head + ep->n) % ep->cap] = e;
	}
	ep->n++;
	ep->bytes += e.it->len;
}

static struct qent q_pop(struct endpoint *ep)
{
	struct qent e = ep->q[ep->head];

	ep->head = (ep->head + 1) % ep->cap;
	ep->n--;
	ep->bytes -= e.it->len;
	return e;
}

static void drop(struct endpoint *ep, enum drop_reason why, size_t len)
{
	const struct starling_host_api *api = ep->in->api;

	api->metric_add(ep->m_dropped[why], 1);
	api->metric_add(ep->m_dropped_bytes[why], (double)len);
}

/* ------------------------------------------------------------------------ */
/* Sending (sender thread).                                                  */

static void on_done(void *arg, const struct starling_http_response *resp)
{
	struct send_ctx *sc = arg;
	struct endpoint *ep = sc->ep;
	struct pyro_inst *in = ep->in;
	const struct starling_host_api *api = in->api;
	enum pyro_outcome o;
	char why[160];

	if (resp->error)
		snprintf(why, sizeof(why), "%s",
			 resp->error_msg[0] ? resp->error_msg : strerror(-resp->error));
	else
		snprintf(why, sizeof(why), "HTTP %ld: %.100s", resp->status,
			 resp->body_len ? (const char *)resp->body : "");
	o = pyro_classify(resp->error, resp->status, resp->content_type, resp->body,
			  resp->body_len);
	if (resp->error == -ECANCELED)
		o = PYRO_DROP; /* the client is being freed at stop() */

	pthread_mutex_lock(&in->lock);
	ep->in_flight--;
	if (o == PYRO_SENT) {
		api->metric_add(ep->m_sent, 1);
		api->metric_add(ep->m_sent_bytes, (double)sc->e.it->len);
		api->metric_set(ep->m_latency, (double)resp->duration_us / 1e6);
		ep->backoff_until_ms = 0;
		item_put(sc->e.it);
	} else if (o == PYRO_RETRY && !atomic_load(&in->stopping) &&
		   (ep->max_retries == 0 || sc->e.attempts < (uint64_t)ep->max_retries)) {
		int64_t d;

		api->metric_add(ep->m_failed, 1);
		api->metric_add(ep->m_retries, 1);
		sc->e.attempts++;
		d = pyro_backoff_ms(sc->e.attempts, ep->min_backoff_ms, ep->max_backoff_ms,
				    resp->retry_after_ms);
		ep->backoff_until_ms = api->monotonic_ms() + d;
		/* Back to the front: it goes out first once the back-off ends. */
		q_push(ep, sc->e, true);
		api->log(in->self, STARLING_LOG_WARN,
			 "push to %s failed (%s); retry %u in %" PRId64 " ms", ep->url, why,
			 sc->e.attempts, d);
	} else {
		enum drop_reason r = DROP_REJECTED;

		if (resp->error == -ECANCELED || (o == PYRO_RETRY && atomic_load(&in->stopping)))
			r = DROP_SHUTDOWN;
		else if (o == PYRO_RETRY)
			r = DROP_RETRIES;

		api->metric_add(ep->m_failed, 1);
		drop(ep, r, sc->e.it->len);
		api->log(in->self, STARLING_LOG_WARN,
			 "push to %s failed (%s): profile dropped (%s)", ep->url, why,
			 drop_names[r]);
		item_put(sc->e.it);
	}
	api->metric_set(ep->m_queued, (double)ep->n);
	pthread_mutex_unlock(&in->lock);
	free(sc);
}

/* Submit what may go out now; returns ms until an endpoint's back-off ends
 * (or 1000). Instance lock held. */
static int64_t pump(struct pyro_inst *in)
{
	int64_t now = in->api->monotonic_ms(), wait = 1000;

	for (size_t i = 0; i < in->n_eps; i++) {
		struct endpoint *ep = &in->eps[i];

		if (ep->n && ep->backoff_until_ms > now) {
			if (ep->backoff_until_ms - now < wait)
				wait = ep->backoff_until_ms - now;
			continue;
		}
		while (ep->n && ep->in_flight < PYRO_MAX_IN_FLIGHT) {
			struct send_ctx *sc = calloc(1, sizeof(*sc));
			const char *hdr[64];
			size_t nh = 0;
			struct starling_http_request req = {0};
			int rc;

			if (!sc)
				break;
			sc->ep = ep;
			sc->e = q_pop(ep);
			hdr[nh++] = "Content-Type: application/proto";
			hdr[nh++] = "Connect-Protocol-Version: 1";
			snprintf(sc->tmo, sizeof(sc->tmo), "Connect-Timeout-Ms: %" PRId64,
				 ep->timeout_ms);
			hdr[nh++] = sc->tmo;
			for (size_t h = 0; h < ep->n_headers && nh < 64; h++)
				hdr[nh++] = ep->headers[h];
			req.url = ep->push_url;
			req.method = "POST";
			req.headers = hdr;
			req.n_headers = nh;
			req.body = sc->e.it->body;
			req.body_len = sc->e.it->len;
			req.timeout_ms = ep->timeout_ms;
			req.body_limit = 1 << 20;
			req.accept_gzip = true;
			req.user_agent = "Starling/" STARLING_VERSION;
			req.auth = ep->auth;
			req.done = on_done;
			req.arg = sc;
			ep->in_flight++;
			rc = starling_http_submit(in->http, &req);
			if (rc) {
				ep->in_flight--;
				in->api->log(in->self, STARLING_LOG_WARN,
					     "cannot submit a push to %s: %s", ep->url,
					     strerror(-rc));
				q_push(ep, sc->e, true);
				free(sc);
				ep->backoff_until_ms = now + ep->min_backoff_ms;
				break;
			}
		}
		in->api->metric_set(ep->m_queued, (double)ep->n);
	}
	return wait;
}

static bool idle(struct pyro_inst *in)
{
	for (size_t i = 0; i < in->n_eps; i++)
		if (in->eps[i].n || in->eps[i].in_flight)
			return false;
	return true;
}

static void *sender_thread(void *arg)
{
	struct pyro_inst *in = arg;
	int64_t drain_end = 0;

	while (!atomic_load(&in->stopping)) {
		int64_t wait;

		pthread_mutex_lock(&in->lock);
		wait = pump(in);
		if (atomic_load(&in->draining)) {
			int64_t now = in->api->monotonic_ms();

			if (!drain_end)
				drain_end = now + PYRO_DRAIN_MS;
			if (idle(in) || now >= drain_end) {
				pthread_mutex_unlock(&in->lock);
				break;
			}
			if (wait > 100)
				wait = 100;
		}
		pthread_mutex_unlock(&in->lock);
		if (wait < 0)
			wait = 0;
		starling_http_run(in->http, (int)wait);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Receiving (producer threads).                                             */

static int write_receive(void *inst, const struct starling_profile *p)
{
	struct pyro_inst *in = inst;
	uint8_t *body;
	size_t len, accepted = 0;
	struct item *it;
	int rc;

	if (!p->data || !p->len)
		return -EINVAL;
	/* Encoded straight behind the item header: one copy of the pprof.
	 * RawSample.ID stays empty, as Alloy sends it. */
	rc = pyro_push_encode(p->labels, p->n_labels, in->ext, in->n_ext, p->data, p->len, NULL,
			      offsetof(struct item, body), &body, &len);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_WARN, "cannot encode a profile: %s",
			     strerror(-rc));
		return rc;
	}
	it = (struct item *)body;
	it->refs = 1; /* ours until the loop is done */
	it->len = len;

	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_eps; i++) {
		struct endpoint *ep = &in->eps[i];

		if (atomic_load(&in->stopping)) {
			drop(ep, DROP_SHUTDOWN, len);
			continue;
		}
		if (ep->n >= in->max_queued || ep->bytes + len > in->max_bytes) {
			drop(ep, DROP_QUEUE_FULL, len);
			in->api->log(
			    in->self, STARLING_LOG_WARN,
			    "queue of %s is full (%zu profiles, %zu bytes): profile dropped",
			    ep->url, ep->n, ep->bytes);
			continue;
		}
		it->refs++;
		q_push(ep, (struct qent){it, 0}, false);
		in->api->metric_set(ep->m_queued, (double)ep->n);
		accepted++;
	}
	item_put(it);
	if (in->http)
		starling_http_wakeup(in->http);
	pthread_mutex_unlock(&in->lock);
	return accepted ? 0 : -ENOBUFS;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle.                                                                */

static void endpoint_free(struct endpoint *ep)
{
	while (ep->n)
		item_put(q_pop(ep).it);
	free(ep->q);
	free(ep->url);
	free(ep->push_url);
	for (size_t i = 0; i < ep->n_headers; i++)
		free(ep->headers[i]);
	free(ep->headers);
	starling_http_auth_free(ep->auth);
}

static void inst_free(struct pyro_inst *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_eps; i++)
		endpoint_free(&in->eps[i]);
	free(in->eps);
	free(in->ext);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static void register_metrics(struct pyro_inst *in, struct endpoint *ep, const char *name)
{
	const struct starling_host_api *api = in->api;
	char l[512];

	snprintf(l, sizeof(l), "endpoint=%s", name);
	ep->m_sent = api->metric_register(in->self, STARLING_SELF_COUNTER,
					  "pyroscope_write_sent_profiles_total",
					  "Profiles the endpoint accepted", l);
	ep->m_sent_bytes = api->metric_register(in->self, STARLING_SELF_COUNTER,
						"pyroscope_write_sent_bytes_total",
						"Bytes of push requests the endpoint accepted", l);
	ep->m_retries =
	    api->metric_register(in->self, STARLING_SELF_COUNTER, "pyroscope_write_retries_total",
				 "Push requests retried after a retryable failure", l);
	ep->m_failed = api->metric_register(
	    in->self, STARLING_SELF_COUNTER, "starling_pyroscope_write_failed_requests_total",
	    "Push requests that failed (any non-2xx or no answer)", l);
	ep->m_queued = api->metric_register(in->self, STARLING_SELF_GAUGE,
					    "starling_pyroscope_write_queued_profiles",
					    "Profiles waiting in the endpoint's queue", l);
	ep->m_latency =
	    api->metric_register(in->self, STARLING_SELF_GAUGE, "pyroscope_write_latency",
				 "Seconds the last successful push took", l);
	for (int r = 0; r < DROP_N; r++) {
		snprintf(l, sizeof(l), "endpoint=%s,reason=%s", name, drop_names[r]);
		ep->m_dropped[r] = api->metric_register(in->self, STARLING_SELF_COUNTER,
							"pyroscope_write_dropped_profiles_total",
							"Profiles dropped, by reason", l);
		ep->m_dropped_bytes[r] = api->metric_register(
		    in->self, STARLING_SELF_COUNTER, "pyroscope_write_dropped_bytes_total",
		    "Bytes of profiles dropped, by reason", l);
	}
}

static int endpoint_load(struct pyro_inst *in, const starling_config *e, struct endpoint *ep,
			 char *err, size_t errlen)
{
	const struct starling_host_api *api = in->api;
	const starling_config *h;
	const char *s, *name;
	size_t l;
	int rc;

	ep->in = in;
	if (api->config_string(e, "url", &s) ||
	    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)) {
		snprintf(err, errlen, "%s: endpoint url must start with http:// or https://",
			 api->config_where(e));
		return -EINVAL;
	}
	ep->url = strdup(s);
	l = strlen(s);
	while (l && s[l - 1] == '/')
		l--;
	ep->push_url = malloc(l + sizeof(PYRO_PUSH_PATH));
	if (!ep->url || !ep->push_url)
		return -ENOMEM;
	memcpy(ep->push_url, s, l);
	memcpy(ep->push_url + l, PYRO_PUSH_PATH, sizeof(PYRO_PUSH_PATH));
	if (api->config_duration_ms(e, "remote_timeout", &ep->timeout_ms))
		ep->timeout_ms = 10000;
	if (api->config_duration_ms(e, "min_backoff_period", &ep->min_backoff_ms))
		ep->min_backoff_ms = 500;
	if (api->config_duration_ms(e, "max_backoff_period", &ep->max_backoff_ms))
		ep->max_backoff_ms = 300000;
	if (api->config_int(e, "max_backoff_retries", &ep->max_retries))
		ep->max_retries = 10;
	if (ep->timeout_ms <= 0 || ep->min_backoff_ms <= 0 ||
	    ep->max_backoff_ms < ep->min_backoff_ms || ep->max_retries < 0) {
		snprintf(err, errlen,
			 "%s: remote_timeout and min_backoff_period must be positive, "
			 "max_backoff_period at least min_backoff_period, max_backoff_retries >= 0",
			 api->config_where(e));
		return -EINVAL;
	}
	h = api->config_lookup(e, "headers");
	if (h && api->config_count(h) > 60) {
		snprintf(err, errlen, "%s: at most 60 headers", api->config_where(h));
		return -EINVAL;
	}
	if (h && api->config_count(h)) {
		ep->headers = calloc(api->config_count(h), sizeof(*ep->headers));
		if (!ep->headers)
			return -ENOMEM;
		for (size_t i = 0; i < api->config_count(h); i++) {
			const starling_config *c = api->config_child(h, i);
			const char *n = api->config_name(c);
			size_t hl;

			if (api->config_string(c, NULL, &s) || !n || strpbrk(s, "\r\n")) {
				snprintf(err, errlen, "%s: header values must be one-line strings",
					 api->config_where(c));
				return -EINVAL;
			}
			if (!strcasecmp(n, "Content-Type") ||
			    !strcasecmp(n, "Connect-Protocol-Version")) {
				snprintf(err, errlen, "%s: header %s cannot be overridden",
					 api->config_where(c), n);
				return -EINVAL;
			}
			hl = strlen(n) + strlen(s) + 3;
			ep->headers[ep->n_headers] = malloc(hl);
			if (!ep->headers[ep->n_headers])
				return -ENOMEM;
			snprintf(ep->headers[ep->n_headers++], hl, "%s: %s", n, s);
		}
	}
	rc = starling_http_auth_from_config(api, e, &ep->auth, err, errlen);
	if (rc)
		return rc;
	/* Room for retried pushes going back in front of a full queue. */
	ep->cap = in->max_queued + PYRO_MAX_IN_FLIGHT;
	ep->q = calloc(ep->cap, sizeof(*ep->q));
	if (!ep->q)
		return -ENOMEM;
	if (api->config_string(e, "name", &name))
		name = ep->url;
	register_metrics(in, ep, name);
	return 0;
}

static int write_create(const struct starling_host_api *api, starling_component *self,
			const starling_config *cfg, void **out)
{
	struct pyro_inst *in = calloc(1, sizeof(*in));
	const starling_config *node;
	char err[512] = "";
	int64_t v;
	int rc = -ENOMEM;

	if (!in)
		return -ENOMEM;
	in->api = api;
	in->self = self;
	pthread_mutex_init(&in->lock, NULL);
	v = 1000;
	api->config_int(cfg, "max_queued_profiles", &v);
	if (v < 1 || v > 1000000) {
		snprintf(err, sizeof(err), "%s: max_queued_profiles must be in 1..1000000",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	in->max_queued = (size_t)v;
	v = (int64_t)256 << 20;
	api->config_bytes(cfg, "max_queued_bytes", &v);
	if (v < 1) {
		snprintf(err, sizeof(err), "%s: max_queued_bytes must be positive",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	in->max_bytes = (size_t)v;
	node = api->config_lookup(cfg, "external_labels");
	if (node && api->config_count(node)) {
		in->ext = calloc(api->config_count(node), sizeof(*in->ext));
		if (!in->ext)
			goto fail;
		for (size_t i = 0; i < api->config_count(node); i++) {
			const starling_config *e = api->config_child(node, i);

			in->ext[i].name = api->config_name(e);
			if (api->config_string(e, NULL, &in->ext[i].value)) {
				snprintf(err, sizeof(err), "%s: external_labels: strings expected",
					 api->config_where(e));
				rc = -EINVAL;
				goto fail;
			}
			in->n_ext++;
		}
	}
	node = api->config_lookup(cfg, "endpoint");
	in->n_eps = node ? api->config_count(node) : 0;
	if (!in->n_eps) {
		snprintf(err, sizeof(err), "%s: at least one endpoint is required",
			 api->config_where(cfg));
		rc = -EINVAL;
		goto fail;
	}
	in->eps = calloc(in->n_eps, sizeof(*in->eps));
	if (!in->eps)
		goto fail;
	for (size_t i = 0; i < in->n_eps; i++) {
		rc = endpoint_load(in, api->config_child(node, i), &in->eps[i], err, sizeof(err));
		if (rc)
			goto fail;
	}
	*out = in;
	return 0;
fail:
	api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
	inst_free(in);
	return rc;
}

static int write_start(void *inst)
{
	struct pyro_inst *in = inst;
	struct starling_http_client *c;
	int rc;

	rc = starling_http_client_new(NULL, &c);
	if (rc) {
		in->api->log(in->self, STARLING_LOG_ERROR, "HTTP client: %s", strerror(-rc));
		return rc;
	}
	atomic_store(&in->stopping, false);
	atomic_store(&in->draining, false);
	pthread_mutex_lock(&in->lock);
	in->http = c;
	pthread_mutex_unlock(&in->lock);
	rc = pthread_create(&in->thread, NULL, sender_thread, in);
	if (rc) {
		in->http = NULL;
		starling_http_client_free(c);
		in->api->log(in->self, STARLING_LOG_ERROR, "cannot start the sender thread: %s",
			     strerror(rc));
		return -rc;
	}
	in->running = true;
	in->api->set_health(in->self, true, NULL);
	return 0;
}

/* Send what is queued for up to PYRO_DRAIN_MS, then drop (and count) the
 * rest: profiles live only in memory. */
static int write_stop(void *inst)
{
	struct pyro_inst *in = inst;
	struct starling_http_client *c;
	size_t left = 0;

	if (!in->running)
		return 0;
	atomic_store(&in->draining, true);
	starling_http_wakeup(in->http);
	pthread_join(in->thread, NULL);
	atomic_store(&in->stopping, true);
	in->running = false;
	pthread_mutex_lock(&in->lock);
	c = in->http;
	in->http = NULL;
	pthread_mutex_unlock(&in->lock);
	starling_http_client_free(c); /* in-flight pushes: dropped as "shutdown" */
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n_eps; i++) {
		struct endpoint *ep = &in->eps[i];

		while (ep->n) {
			struct qent e = q_pop(ep);

			drop(ep, DROP_SHUTDOWN, e.it->len);
			item_put(e.it);
			left++;
		}
		in->api->metric_set(ep->m_queued, 0);
	}
	pthread_mutex_unlock(&in->lock);
	if (left)
		in->api->log(in->self, STARLING_LOG_WARN,
			     "stopped with %zu queued profile pushes unsent: dropped", left);
	return 0;
}

static void write_destroy(void *inst)
{
	inst_free(inst);
}

const struct starling_component_type pyroscope_write_type = {
    STARLING_TYPE_HEAD,
    .name = "pyroscope.write",
    .help = "Push profiles to Pyroscope (push.v1.PusherService/Push)",
    .flags = STARLING_TYPE_REENTRANT_RECEIVE,
    .accepts = STARLING_ACCEPTS_PROFILE,
    .schema = write_schema,
    .create = write_create,
    .update = NULL,
    .start = write_start,
    .stop = write_stop,
    .destroy = write_destroy,
    .receive_profile = write_receive,
};
