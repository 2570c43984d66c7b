/*
 * LIST + WATCH of Kubernetes collections (see starling/k8s.h), on the SDK
 * HTTP client: the watch stream arrives through the request's on_data
 * callback and is cut into events by the streaming decoder.
 *
 * Per collection: GET ?limit=500 (following `continue`), then
 * GET ?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=RV
 * (client-go's reflector does the same). ADDED / MODIFIED / DELETED update
 * the store, every event moves RV, BOOKMARK only moves RV. A 410 Gone, as a
 * status or an in-stream ERROR, lists again at once; other failures retry
 * with back-off 1 s .. 30 s, a failed watch from RV, a failed list from
 * scratch. A watch the server ends normally is resumed from RV.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <starling/k8s.h>

#define LIST_LIMIT	500
#define WATCH_TIMEOUT_S 300
#define BODY_LIMIT	((size_t)256 << 20)
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
#define MAX_WATCHES	256

enum wstate { W_LIST, W_WATCH };

struct watch {
	struct starling_k8s_client *c;
	int idx;
	char *what, *path, *query; /* query: "&labelSelector=..." or "" */
	struct starling_k8s_store *store;
	enum starling_k8s_kind kind;
	enum wstate state;
	bool in_flight;
	bool listed, failing;
	bool disabled;
	unsigned gen, req_gen; /* enable/disable bumps gen; req_gen: of the request */
	bool relist;	       /* a 410 ended the stream: list again at once */
	bool garbage;	       /* the server sent something unusable: err says what */
	char *rv, *cont;
	struct starling_k8s_store pend; /* pages of a list in progress */
	struct starling_k8s_event_decoder dec;
	int64_t next_ms, started_ms, backoff_ms;
	char err[256];
};

struct starling_k8s_client {
	const struct starling_k8s_conn *conn;
	struct starling_k8s_callbacks cb;
	struct starling_http_client *http;
	struct watch *w[MAX_WATCHES];
	size_t n;
	bool closing;
	char last_err[512];
	struct starling_k8s_stats st;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(struct starling_k8s_client *c, enum starling_log_level lvl, const char *fmt, ...)
    STARLING_PRINTF(3, 4);
static void logf_(struct starling_k8s_client *c, enum starling_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->cb.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->cb.log(c->cb.arg, lvl, msg);
}

static void changed(struct watch *w)
{
	if (w->c->cb.changed)
		w->c->cb.changed(w->c->cb.arg, w->idx);
}

int starling_k8s_client_new(const struct starling_k8s_conn *conn,
			    const struct starling_k8s_callbacks *cb,
			    struct starling_k8s_client **out)
{
	struct starling_k8s_client *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->conn = conn;
	if (cb)
		c->cb = *cb;
	rc = starling_http_client_new(NULL, &c->http);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *r;

	if (!e)
		return NULL;
	r = strdup(e);
	curl_free(e);
	return r;
}

int starling_k8s_watch_add(struct starling_k8s_client *c, const char *what, const char *path,
			   const char *label_selector, const char *field_selector,
			   struct starling_k8s_store *store, enum starling_k8s_kind kind)
{
	struct watch *w;
	char *ls = NULL, *fs = NULL;
	int rc;

	if (c->n == MAX_WATCHES)
		return -E2BIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->c = c;
	w->idx = (int)c->n;
	w->store = store;
	w->kind = kind;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->what = strdup(what);
	w->path = strdup(path);
	if (label_selector && *label_selector)
		ls = escape(label_selector);
	if (field_selector && *field_selector)
		fs = escape(field_selector);
	rc = asprintf(&w->query, "%s%s%s%s", ls ? "&labelSelector=" : "", ls ? ls : "",
		      fs ? "&fieldSelector=" : "", fs ? fs : "");
	free(ls);
	free(fs);
	if (rc < 0)
		w->query = NULL;
	if (!w->what || !w->path || !w->query) {
		free(w->what);
		free(w->path);
		free(w->query);
		free(w);
		return -ENOMEM;
	}
	c->w[c->n++] = w;
	return w->idx;
}

static void set_rv(struct watch *w, const char *rv)
{
	char *n;

	if (!rv || !*rv || (w->rv && strcmp(w->rv, rv) == 0))
		return;
	n = strdup(rv);
	if (!n)
		return;
	free(w->rv);
	w->rv = n;
}

static void backoff(struct watch *w)
{
	w->next_ms = mono_ms() + w->backoff_ms;
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

static void failed(struct watch *w, bool relist, const char *fmt, ...) STARLING_PRINTF(3, 4);
static void failed(struct watch *w, bool relist, const char *fmt, ...)
{
	struct starling_k8s_client *c = w->c;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	logf_(c, STARLING_LOG_WARN, "%s %s: %s (retrying in %llds)", w->what,
	      w->state == W_LIST ? "list" : "watch", w->err, (long long)(w->backoff_ms / 1000));
	snprintf(c->last_err, sizeof(c->last_err), "%s: %s", w->what, w->err);
	c->st.errors++;
	w->failing = true;
	backoff(w);
	if (relist || !w->rv) {
		w->state = W_LIST;
		free(w->cont);
		w->cont = NULL;
		starling_k8s_store_clear(&w->pend, -1);
	}
}

static void succeeded(struct watch *w)
{
	w->failing = false;
	w->backoff_ms = BACKOFF_MIN_MS;
}

/* One watch event (decoder callback). Non-zero ends the stream. */
static int on_event(void *arg, struct starling_k8s_event *ev)
{
	struct watch *w = arg;
	struct starling_k8s_client *c = w->c;

	if (ev->type == STARLING_K8S_ERROR) {
		if (ev->code == 410) {
			logf_(c, STARLING_LOG_INFO, "%s watch expired (%s): re-listing", w->what,
			      ev->message ? ev->message : "410 Gone");
			free(w->rv);
			w->rv = NULL;
			w->relist = true;
			c->st.relists_410++;
		} else {
			w->garbage = true;
			snprintf(w->err, sizeof(w->err), "watch error %d: %s", ev->code,
				 ev->message ? ev->message : "unknown");
		}
		return 1;
	}
	c->st.events++;
	set_rv(w, ev->resource_version);
	switch (ev->type) {
	case STARLING_K8S_ADDED:
	case STARLING_K8S_MODIFIED:
		starling_k8s_prune(ev->object, w->kind);
		if (starling_k8s_store_put(w->store, ev->object, w->idx) == -ENOMEM) {
			ev->object = NULL;
			w->garbage = true;
			snprintf(w->err, sizeof(w->err), "out of memory");
			return 1;
		}
		ev->object = NULL;
		changed(w);
		break;
	case STARLING_K8S_DELETED:
		if (!starling_k8s_store_del(w->store, ev->object))
			changed(w);
		break;
	default:
		break;
	}
	succeeded(w);
	return 0;
}

static int on_data(void *arg, const uint8_t *data, size_t len)
{
	struct watch *w = arg;
	int rc;

	if (w->c->closing || w->req_gen != w->gen)
		return 1;
	if (w->state != W_WATCH)
		return 0;
	rc = starling_k8s_events_feed(&w->dec, (const char *)data, len, on_event, w, w->err,
				      sizeof(w->err));
	if (rc < 0)
		w->garbage = true;
	return rc;
}

static void list_done(struct watch *w, const struct starling_http_response *r)
{
	struct starling_k8s_client *c = w->c;
	struct starling_k8s_list l;
	cJSON *it;
	char err[256];

	if (starling_k8s_list_decode((const char *)r->body, r->body_len, &l, err, sizeof(err))) {
		failed(w, true, "%s", err);
		return;
	}
	while ((it = cJSON_DetachItemFromArray(l.items, 0))) {
		starling_k8s_prune(it, w->kind);
		if (starling_k8s_store_put(&w->pend, it, w->idx)) {
			starling_k8s_list_free(&l);
			failed(w, true, "list item without metadata.name");
			return;
		}
	}
	free(w->cont);
	w->cont = l.cont;
	l.cont = NULL;
	if (w->cont) {
		starling_k8s_list_free(&l);
		w->next_ms = 0;
		return; /* next page */
	}
	set_rv(w, l.resource_version);
	starling_k8s_list_free(&l);
	/* The list replaces everything this watch had. */
	starling_k8s_store_clear(w->store, w->idx);
	for (size_t i = 0; i < w->pend.n; i++)
		starling_k8s_store_put(w->store, w->pend.v[i].obj, w->idx);
	/* The objects now belong to the store: drop pend's arrays only. */
	free(w->pend.v);
	free(w->pend.slots);
	memset(&w->pend, 0, sizeof(w->pend));
	w->listed = true;
	succeeded(w);
	w->state = W_WATCH;
	w->next_ms = 0;
	c->st.lists++;
	changed(w);
}

static void on_done(void *arg, const struct starling_http_response *r)
{
	struct watch *w = arg;
	struct starling_k8s_client *c = w->c;

	w->in_flight = false;
	if (c->closing)
		return;
	if (w->req_gen != w->gen) {
		/* stopped (and maybe resumed) meanwhile: start over */
		w->state = W_LIST;
		w->next_ms = 0;
		return;
	}
	if (w->garbage) {
		failed(w, true, "%s", w->err);
		return;
	}
	if (w->relist) {
		/* An in-stream ERROR 410 ended the transfer: not a failure. */
		w->state = W_LIST;
		w->next_ms = 0;
		return;
	}
	if (r->status == 410) {
		logf_(c, STARLING_LOG_INFO, "%s: 410 Gone, re-listing", w->what);
		c->st.relists_410++;
		free(w->rv);
		w->rv = NULL;
		w->state = W_LIST;
		w->next_ms = 0;
		return;
	}
	if (r->error && !(w->state == W_WATCH && r->error == -ETIMEDOUT)) {
		failed(w, false, "%s", r->error_msg);
		return;
	}
	if (!r->error && r->status != 200) {
		cJSON *st = cJSON_ParseWithLength((const char *)r->body, r->body_len);
		const char *msg =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "message"));

		failed(w, w->state == W_LIST, "HTTP %ld%s%.200s", r->status, msg ? ": " : "",
		       msg ? msg : "");
		cJSON_Delete(st);
		return;
	}
	if (w->state == W_LIST) {
		list_done(w, r);
		return;
	}
	/* The watch ended (server timeout): go on from RV. A server that
	 * keeps closing watches at once is not hammered. */
	w->next_ms = 0;
	if (mono_ms() - w->started_ms < BACKOFF_MIN_MS)
		backoff(w);
}

static int start(struct watch *w)
{
	struct starling_k8s_client *c = w->c;
	struct starling_http_request req = {0};
	const char *hdrs[1] = {"Accept: application/json"};
	char *url = NULL;
	int rc;

	w->relist = w->garbage = false;
	w->err[0] = 0;
	starling_k8s_events_reset(&w->dec);
	if (w->state == W_LIST) {
		char *esc = w->cont ? escape(w->cont) : NULL;

		rc = asprintf(&url, "%s%s?limit=%d%s%s%s", c->conn->server, w->path, LIST_LIMIT,
			      w->query, esc ? "&continue=" : "", esc ? esc : "");
		free(esc);
		req.timeout_ms = 60000;
		req.accept_gzip = true;
	} else {
		rc = asprintf(&url,
			      "%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d"
			      "&resourceVersion=%s%s",
			      c->conn->server, w->path, WATCH_TIMEOUT_S, w->rv ? w->rv : "",
			      w->query);
		req.timeout_ms = (WATCH_TIMEOUT_S + 30) * 1000;
		req.on_data = on_data;
	}
	if (rc < 0)
		return -ENOMEM;
	req.url = url;
	req.headers = hdrs;
	req.n_headers = 1;
	req.body_limit = BODY_LIMIT;
	req.auth = c->conn->auth;
	req.done = on_done;
	req.arg = w;
	rc = starling_http_submit(c->http, &req);
	free(url);
	if (rc)
		return rc;
	w->in_flight = true;
	w->req_gen = w->gen;
	w->started_ms = mono_ms();
	return 0;
}

int starling_k8s_run(struct starling_k8s_client *c, int timeout_ms)
{
	int64_t now = mono_ms(), wait = timeout_ms;
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		struct watch *w = c->w[i];

		if (w->in_flight || w->disabled)
			continue;
		if (w->next_ms > now) {
			if (w->next_ms - now < wait)
				wait = w->next_ms - now;
			continue;
		}
		rc = start(w);
		if (rc)
			failed(w, false, "cannot start request: %s", strerror(-rc));
	}
	rc = starling_http_run(c->http, wait > 0 ? (int)wait : 1);
	return rc < 0 ? rc : 0;
}

void starling_k8s_wakeup(struct starling_k8s_client *c)
{
	starling_http_wakeup(c->http);
}

void starling_k8s_reset(struct starling_k8s_client *c)
{
	struct starling_http_client *h;

	c->closing = true;
	starling_http_client_free(c->http);
	c->http = NULL;
	c->closing = false;
	for (size_t i = 0; i < c->n; i++) {
		struct watch *w = c->w[i];

		w->in_flight = false;
		w->state = W_LIST;
		w->next_ms = 0;
		free(w->cont);
		w->cont = NULL;
		starling_k8s_store_clear(&w->pend, -1);
	}
	if (starling_http_client_new(NULL, &h) == 0)
		c->http = h;
}

bool starling_k8s_synced(const struct starling_k8s_client *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (!c->w[i]->listed && !c->w[i]->disabled)
			return false;
	return true;
}

void starling_k8s_watch_enable(struct starling_k8s_client *c, int watch, bool enabled)
{
	struct watch *w;

	if (watch < 0 || (size_t)watch >= c->n)
		return;
	w = c->w[watch];
	if (w->disabled == !enabled)
		return;
	w->disabled = !enabled;
	w->gen++;
	w->listed = w->failing = false;
	w->state = W_LIST;
	w->next_ms = 0;
	w->backoff_ms = BACKOFF_MIN_MS;
	free(w->rv);
	w->rv = NULL;
	free(w->cont);
	w->cont = NULL;
	starling_k8s_store_clear(&w->pend, -1);
	if (!enabled) {
		starling_k8s_store_clear(w->store, w->idx);
		changed(w);
	}
}

void starling_k8s_watch_status(const struct starling_k8s_client *c, int watch, bool *listed,
			       bool *failing)
{
	bool ok = watch >= 0 && (size_t)watch < c->n;

	*listed = ok && (c->w[watch]->listed || c->w[watch]->disabled);
	*failing = ok && c->w[watch]->failing;
}

size_t starling_k8s_watch_count(const struct starling_k8s_client *c)
{
	return c->n;
}

bool starling_k8s_healthy(const struct starling_k8s_client *c, char *why, size_t cap)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct watch *w = c->w[i];

		if (w->disabled)
			continue;
		if (w->failing) {
			snprintf(why, cap, "%s %s: %s", w->what,
				 w->state == W_LIST ? "list" : "watch", w->err);
			return false;
		}
		if (!w->listed) {
			snprintf(why, cap, "%s: not listed yet", w->what);
			return false;
		}
	}
	if (cap)
		why[0] = 0;
	return true;
}

void starling_k8s_stats(const struct starling_k8s_client *c, struct starling_k8s_stats *out)
{
	*out = c->st;
}

void starling_k8s_client_free(struct starling_k8s_client *c)
{
	if (!c)
		return;
	c->closing = true;
	starling_http_client_free(c->http);
	for (size_t i = 0; i < c->n; i++) {
		struct watch *w = c->w[i];

		free(w->what);
		free(w->path);
		free(w->query);
		free(w->rv);
		free(w->cont);
		starling_k8s_store_clear(&w->pend, -1);
		starling_k8s_events_free(&w->dec);
		free(w);
	}
	free(c);
}
