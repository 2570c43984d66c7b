/* HTTP client on libcurl's multi interface (see starling/http.h). */
#include "http_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libdeflate.h>

#ifndef STARLING_VERSION
#define STARLING_VERSION "0"
#endif
#define DEFAULT_UA    "Starling/" STARLING_VERSION
#define MAX_REDIRECTS 10
/* Idle transfers kept for reuse (easy handle + receive buffer). */
#define POOL_MAX 32
/* A pooled receive buffer larger than this is freed rather than kept. */
#define POOL_BUF_KEEP (4u << 20)
/* Socket events taken per epoll_wait (level-triggered: the rest next time). */
#define MAX_EVENTS 256
/* Connection cache: never below this, and (when the fd limit allows) at least
 * one idle connection per distinct host:port used in the last HOSTS_WINDOW_US
 * plus the peak number of concurrent transfers. */
#define MAXCONNECTS_FLOOR 256L
#define HOSTS_WINDOW_US	  (120 * 1000000LL)
/* Connection-cache shards (see struct starling_http_client.shards): a host
 * first seen in second t goes to time group t % SHARD_TIME_GROUPS and, in it,
 * the hosts new in that second fill its SHARD_FILL_GROUPS shards in turn,
 * SHARD_FILL hosts each (then round again). A shard costs ~8.5 KB of
 * libcurl's (its connection cache and that cache's closure handle): spread
 * by hash, 1,000 targets at 10 s used 171 shards for ~6 hosts each (1.5
 * MB, issue 12 shape C); filled 32 at a time, 40. */
#define SHARD_TIME_GROUPS 16
#define SHARD_FILL_GROUPS 16
#define SHARD_FILL	  32
#define HTTP_SHARDS	  (SHARD_TIME_GROUPS * SHARD_FILL_GROUPS)

struct xfer {
	struct xfer *next;
	struct xfer *anext, *aprev; /* active list (in the multi handle) */
	struct starling_http_client *c;
	CURL *easy;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to;
	struct curl_slist *proxy_hdrs;
	int fail; /* set at submit: complete with this error, no transfer */
	char *url;
	char *password;
	starling_http_done_fn done;
	void *arg;
	int (*on_data)(void *arg, const uint8_t *data, size_t len);
	bool aborted; /* on_data said stop */
	size_t body_limit;
	size_t raw_limit;
	bool gzip; /* response has Content-Encoding: gzip */
	bool too_big;
	uint8_t *buf; /* raw response body */
	size_t len, cap;
	char content_type[256];
	bool have_ct;
	char retry_after[64];
	bool have_ra;
	int64_t start_us;
	char errbuf[CURL_ERROR_SIZE];
	/* What the easy handle was last set up for, when setup_easy() may
	 * keep its options for a request that matches (see same_setup()). */
	struct {
		bool valid;
		uint64_t auth_id; /* 0: no auth profile */
		bool accept_gzip;
		int64_t timeout_ms;
		char *user_agent;
		/* hdrs: [Accept-Encoding] the request's headers, then the auth
		 * profile's, starting at auth_hdrs */
		const struct curl_slist *auth_hdrs;
	} kept;
};

/* Distinct host:port keys (64-bit hashes) seen recently, to size the
 * connection cache and to keep each host on its connection-cache shard (run
 * thread only). Open addressing, key 0 = empty. */
struct host_set {
	uint64_t *keys;
	int64_t *seen_us;
	uint16_t *shard;
	size_t cap, n;
};

struct starling_http_client {
	CURLM *multi;
	int epfd;		/* sockets libcurl asks us to watch + evfd */
	int evfd;		/* eventfd: submit()/wakeup() */
	int64_t timer_due_us;	/* libcurl's timeout, -1: none */
	struct host_set hosts;	/* run thread only */
	int64_t hosts_swept_us; /* last expiry pass over hosts */
	size_t n_active, peak_active;
	long maxconnects;      /* current CURLMOPT_MAXCONNECTS */
	long fd_budget;	       /* upper bound for maxconnects */
	pthread_mutex_t lock;  /* incoming, pool, pending */
	struct xfer *incoming; /* submitted, not yet added (FIFO via tail) */
	struct xfer **incoming_tail;
	struct xfer *pool;
	size_t n_pool;
	struct xfer *active; /* run thread only */
	size_t pending;
	uint8_t *inflate_buf; /* reused across responses (run thread only) */
	size_t inflate_cap;
	struct libdeflate_decompressor *inflater; /* the same */
	/* The connection cache, split by host into CURLSH objects sharing
	 * connections (created on first use; run thread only; n_shards 0:
	 * the multi handle's own cache). libcurl 7.88 walks a whole cache in
	 * two places: curl_multi_remove_handle() walks the cache a finished
	 * transfer used until it meets the transfer's last connection (to
	 * close it if it was CONNECT_ONLY; since curl 8.22 only for those,
	 * commit e093c67f1c), and a new transfer prunes its cache (one poll()
	 * per idle connection) when the last prune is a second old. With one
	 * idle connection per target in one cache, the first was ~2/3 of the
	 * CPU at 10,000 targets, the second ~18% after splitting by hash
	 * alone. So a cache holds few hosts, and hosts first seen in the same
	 * second: a periodic scraper sees a target again at the same offset
	 * of its interval, so a cache is busy for about a second per interval
	 * and is pruned about once per interval instead of every second. A
	 * host keeps its shard while it stays in `hosts`, so its idle
	 * connection is found again. */
	CURLSH *shards[HTTP_SHARDS];
	unsigned n_shards;
	int64_t new_sec;	   /* the second new_in_sec counts (run thread only) */
	uint64_t new_in_sec;	   /* hosts first seen in it */
	atomic_size_t setups_kept; /* requests on a handle kept set up */
	/* The thread in starling_http_run() last (its run_token): a submit
	 * from that thread needs no wakeup, the thread adds the transfer in
	 * its next run before it waits. */
	_Atomic(const char *) runner;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CURLMOPT_SOCKETFUNCTION: keep the epoll set equal to the sockets libcurl
 * waits on, so a wake-up costs O(ready sockets), not O(transfers). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct starling_http_client *c = userp;
	struct epoll_event ev = {0};

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* the fd may be closed already: ENOENT/EBADF are fine */
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0; /* libcurl forgets socketp with the socket */
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	ev.data.fd = s;
	if (socketp) {
		if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
			return 0;
		/* closed and reused behind our back: add it again */
	}
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) &&
	    (errno != EEXIST || epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev)))
		return -1; /* libcurl fails the transfer */
	curl_multi_assign(c->multi, s, (void *)1);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl wants
 * curl_multi_socket_action(CURL_SOCKET_TIMEOUT); run() calls it. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct starling_http_client *c = userp;

	(void)multi;
	c->timer_due_us = timeout_ms < 0 ? -1 : mono_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

/* Descriptors the connection cache may hold: the soft RLIMIT_NOFILE less a
 * reserve for the rest of the process (listeners, files, other clients). */
static long fd_budget(void)
{
	struct rlimit rl;
	long lim;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000)
		return 1000000;
	lim = (long)rl.rlim_cur;
	lim = lim > 2048 ? lim - 1024 : lim / 2;
	return lim < MAXCONNECTS_FLOOR ? MAXCONNECTS_FLOOR : lim;
}

int starling_http_client_new(const struct starling_http_client_options *opts,
			     struct starling_http_client **out)
{
	struct starling_http_client *c;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};

	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->multi = curl_multi_init();
	ev.data.fd = c->evfd;
	if (c->epfd < 0 || c->evfd < 0 || !c->multi ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev)) {
		int r = c->multi ? -errno : -ENOMEM;

		if (c->multi)
			curl_multi_cleanup(c->multi);
		if (c->epfd >= 0)
			close(c->epfd);
		if (c->evfd >= 0)
			close(c->evfd);
		free(c);
		return r ? r : -ENOMEM;
	}
	c->timer_due_us = -1;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	/* Keep an idle connection per target between scrapes: libcurl sizes
	 * its cache by the easy handles attached *now*, which between scrapes
	 * is few, so without this every scrape of a large target set reconnects
	 * (measured: ~17% of scrape CPU at 200 targets). The cache then grows
	 * with the distinct hosts in use (update_maxconnects), up to what the
	 * fd limit allows. */
	/* CURLMOPT_MAX_TOTAL_CONNECTIONS counts the connections of the cache
	 * the transfer uses: with shards it would hold per shard */
	c->n_shards = opts && opts->max_total_connections > 0 ? 0 : HTTP_SHARDS;
	c->fd_budget = fd_budget();
	c->maxconnects = c->fd_budget < 4096 ? c->fd_budget : 4096;
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->maxconnects);
	if (opts && opts->max_host_connections > 0)
		curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				  opts->max_host_connections);
	if (opts && opts->max_total_connections > 0)
		curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
				  opts->max_total_connections);
	pthread_mutex_init(&c->lock, NULL);
	c->incoming_tail = &c->incoming;
	*out = c;
	return 0;
}

/* Forget the easy handle's set-up: free the lists it points to (the caller
 * resets the handle or destroys it). */
static void xfer_unkeep(struct xfer *x)
{
	curl_slist_free_all(x->hdrs);
	curl_slist_free_all(x->connect_to);
	curl_slist_free_all(x->proxy_hdrs);
	x->hdrs = NULL;
	x->connect_to = NULL;
	x->proxy_hdrs = NULL;
	free(x->kept.user_agent);
	memset(&x->kept, 0, sizeof(x->kept));
}

static void xfer_destroy(struct xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	xfer_unkeep(x);
	free(x->buf);
	free(x);
}

/* Clear per-request state; keep the easy handle, its set-up (lists included:
 * the handle points to them) and the buffer. */
static void xfer_reset(struct xfer *x)
{
	x->fail = 0;
	free(x->url);
	x->url = NULL;
	if (x->password) {
		explicit_bzero(x->password, strlen(x->password));
		free(x->password);
		x->password = NULL;
	}
	x->len = 0;
	x->gzip = x->too_big = x->have_ct = x->have_ra = x->aborted = false;
	x->on_data = NULL;
	x->errbuf[0] = 0;
}

static void xfer_recycle(struct starling_http_client *c, struct xfer *x)
{
	xfer_reset(x);
	if (x->cap > POOL_BUF_KEEP) {
		free(x->buf);
		x->buf = NULL;
		x->cap = 0;
	}
	pthread_mutex_lock(&c->lock);
	c->pending--;
	if (c->n_pool < POOL_MAX) {
		x->next = c->pool;
		c->pool = x;
		c->n_pool++;
		x = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (x)
		xfer_destroy(x);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, vlen;
	const char *v;

	/* A new status line (redirect hop, 100-continue): forget the old
	 * response's headers. */
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		x->gzip = x->have_ct = x->have_ra = false;
		return len;
	}
	v = memchr(p, ':', len);
	if (!v)
		return len;
	vlen = len - (size_t)(v + 1 - p);
	v++;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
#define IS(name) ((size_t)(v - p) > sizeof(name) - 1 && !strncasecmp(p, name ":", sizeof(name)))
	if (IS("Content-Encoding")) {
		x->gzip = vlen == 4 && !strncasecmp(v, "gzip", 4);
	} else if (IS("Content-Type")) {
		if (vlen >= sizeof(x->content_type))
			vlen = sizeof(x->content_type) - 1;
		memcpy(x->content_type, v, vlen);
		x->content_type[vlen] = 0;
		x->have_ct = true;
	} else if (IS("Retry-After")) {
		if (vlen >= sizeof(x->retry_after))
			vlen = sizeof(x->retry_after) - 1;
		memcpy(x->retry_after, v, vlen);
		x->retry_after[vlen] = 0;
		x->have_ra = true;
	}
#undef IS
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, limit = x->body_limit;

	if (x->on_data) {
		long status = 0;

		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (x->on_data(x->arg, (const uint8_t *)p, len)) {
				x->aborted = true;
				return 0;
			}
			return len;
		}
	}
	if (limit) {
		/* Compressed bytes can exceed the plain size only by gzip's small
		 * framing overhead; the real check is after inflating. */
		if (x->gzip)
			limit += limit / 8 + 4096;
		if (x->len + len > limit) {
			x->too_big = true;
			return 0; /* aborts with CURLE_WRITE_ERROR */
		}
	}
	if (x->len + len + 1 > x->cap) {
		size_t ncap = x->cap ? x->cap : 16384;
		uint8_t *nb;

		while (ncap < x->len + len + 1)
			ncap *= 2;
		nb = realloc(x->buf, ncap);
		if (!nb)
			return 0;
		x->buf = nb;
		x->cap = ncap;
	}
	memcpy(x->buf + x->len, p, len);
	x->len += len;
	return len;
}

/* For tls_config.server_name: ask curl to talk to server_name (so SNI and
 * certificate verification use it) but connect to the URL's real host, and
 * keep the original Host header. */
static int apply_server_name(CURL *e, const char *url, const char *server_name,
			     struct curl_slist **hdrs, struct curl_slist **connect_to,
			     char **url_out)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *nurl = NULL, line[512];
	struct curl_slist *l;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT))
		goto out;
	snprintf(line, sizeof(line), "%s:%s:%s:%s", server_name, port, host, port);
	if (!(l = curl_slist_append(*connect_to, line)))
		goto nomem;
	*connect_to = l;
	snprintf(line, sizeof(line), "Host: %s:%s", host, port);
	if (!(l = curl_slist_append(*hdrs, line)))
		goto nomem;
	*hdrs = l;
	if (curl_url_set(u, CURLUPART_HOST, server_name, 0) ||
	    curl_url_get(u, CURLUPART_URL, &nurl, 0))
		goto out;
	*url_out = strdup(nurl);
	if (!*url_out)
		goto nomem;
	curl_easy_setopt(e, CURLOPT_URL, *url_out);
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
	r = 0;
	goto out;
nomem:
	r = -ENOMEM;
out:
	curl_free(host);
	curl_free(port);
	curl_free(nurl);
	curl_url_cleanup(u);
	return r;
}

/* Loopback is never proxied with proxy_from_environment or no_proxy, as Go's
 * golang.org/x/net/http/httpproxy does. */
#define LOOPBACK_NO_PROXY "localhost,127.0.0.0/8,::1"

static int set_no_proxy(CURL *e, const char *list)
{
	size_t n = sizeof(LOOPBACK_NO_PROXY) + (list ? strlen(list) + 1 : 0);
	char *v = malloc(n);

	if (!v)
		return -ENOMEM;
	snprintf(v, n, "%s%s%s", LOOPBACK_NO_PROXY, list ? "," : "", list ? list : "");
	curl_easy_setopt(e, CURLOPT_NOPROXY, v); /* curl copies it */
	free(v);
	return 0;
}

int http_apply_conn(CURL *e, const struct starling_http_auth *a, const char *url,
		    struct curl_slist **hdrs, struct curl_slist **connect_to,
		    struct curl_slist **proxy_hdrs, char **url_out)
{
	bool https = !strncasecmp(url, "https://", 8);
	const char *proxy = a->s.proxy_url;
	int r;

	*url_out = NULL;
	if (a->s.ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, a->s.ca_file);
	if (a->s.cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, a->s.cert_file);
	if (a->s.key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, a->s.key_file);
	/* PEM text: curl copies the blobs (CURL_BLOB_COPY) */
	if (a->s.ca_pem) {
		struct curl_blob b = {(void *)a->s.ca_pem, strlen(a->s.ca_pem), CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (a->s.cert_pem) {
		struct curl_blob b = {(void *)a->s.cert_pem, strlen(a->s.cert_pem), CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (a->s.key_pem) {
		struct curl_blob b = {(void *)a->s.key_pem, strlen(a->s.key_pem), CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	/* a configured CA is the only one trusted (Go: RootCAs), so the system
	 * CA directory goes too */
	if (a->s.ca_file || a->s.ca_pem)
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	if (a->ssl_version != CURL_SSLVERSION_DEFAULT)
		curl_easy_setopt(e, CURLOPT_SSLVERSION, a->ssl_version);
	if (a->s.insecure_skip_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (a->s.proxy_from_environment)
		proxy = https ? a->env_https_proxy : a->env_http_proxy;
	/* "" also makes curl ignore its own *_proxy environment variables */
	curl_easy_setopt(e, CURLOPT_PROXY, proxy ? proxy : "");
	/* No proxy either way; a no-proxy list that is set also spares libcurl
	 * two getenv() calls per transfer (no_proxy, NO_PROXY), which it makes
	 * before it looks at the proxy. */
	if (!proxy || !*proxy)
		curl_easy_setopt(e, CURLOPT_NOPROXY, "");
	if (proxy && (a->s.no_proxy || a->s.proxy_from_environment)) {
		r = set_no_proxy(e, a->s.proxy_from_environment ? a->env_no_proxy : a->s.no_proxy);
		if (r)
			return r;
	}
	if (proxy && a->n_proxy_headers) {
		for (size_t i = 0; i < a->n_proxy_headers; i++) {
			struct curl_slist *l = curl_slist_append(*proxy_hdrs, a->proxy_headers[i]);

			if (!l)
				return -ENOMEM;
			*proxy_hdrs = l;
		}
		curl_easy_setopt(e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
		curl_easy_setopt(e, CURLOPT_PROXYHEADER, *proxy_hdrs);
	}
	if (a->s.server_name && https)
		return apply_server_name(e, url, a->s.server_name, hdrs, connect_to, url_out);
	return 0;
}

static bool http_debug(void)
{
	static int on = -1;

	if (on < 0)
		on = getenv("STARLING_HTTP_DEBUG") != NULL;
	return on;
}

/* A GET without a body whose options are all fixed by what keep_setup()
 * records: the auth profile (when its options never change between
 * requests), timeout, compression, user agent and headers. */
static bool settable_once(const struct starling_http_request *req)
{
	return (!req->method || !strcmp(req->method, "GET")) && !req->body &&
	       (!req->auth || req->auth->fixed);
}

static const char *user_agent(const struct starling_http_request *req)
{
	return req->user_agent ? req->user_agent : DEFAULT_UA;
}

/* Whether x's easy handle is set up as setup_easy() would set it up for
 * req, apart from the URL: then its options are kept (libcurl's options
 * stay on a handle from one transfer to the next; what a transfer changes
 * is reset when it starts), and a scrape costs no curl_easy_reset() and
 * re-setting of ~20 options and the header list. */
static bool same_setup(const struct xfer *x, const struct starling_http_request *req)
{
	const struct curl_slist *l = x->hdrs;

	if (!x->kept.valid || !settable_once(req) ||
	    x->kept.auth_id != (req->auth ? req->auth->id : 0) ||
	    x->kept.accept_gzip != req->accept_gzip || x->kept.timeout_ms != req->timeout_ms ||
	    strcmp(x->kept.user_agent, user_agent(req)))
		return false;
	if (req->accept_gzip)
		l = l ? l->next : NULL;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!req->headers[i])
			continue;
		if (!l || strcmp(l->data, req->headers[i]))
			return false;
		l = l->next;
	}
	return l == x->kept.auth_hdrs;
}

/* Record what x was just set up for (see same_setup()); req_hdrs_end is
 * the list node of the request's last header (NULL: none). */
static void keep_setup(struct xfer *x, const struct starling_http_request *req,
		       const struct curl_slist *req_hdrs_end)
{
	if (!settable_once(req) || x->fail || !(x->kept.user_agent = strdup(user_agent(req))))
		return;
	x->kept.auth_id = req->auth ? req->auth->id : 0;
	x->kept.accept_gzip = req->accept_gzip;
	x->kept.timeout_ms = req->timeout_ms;
	x->kept.auth_hdrs = req_hdrs_end ? req_hdrs_end->next : x->hdrs;
	x->kept.valid = true;
}

static int setup_easy(struct xfer *x, const struct starling_http_request *req)
{
	const struct starling_http_auth *a = req->auth;
	CURL *e = x->easy;
	char *token = NULL;
	const char *method = req->method;
	const struct curl_slist *req_hdrs_end;
	int r;

	x->url = strdup(req->url);
	if (!x->url)
		return -ENOMEM;
	if (same_setup(x, req)) {
		curl_easy_setopt(e, CURLOPT_URL, x->url);
		atomic_fetch_add(&x->c->setups_kept, 1);
		return 0;
	}
	xfer_unkeep(x);
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent(req));
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* No DNS cache, as Go's resolver (Prometheus, Alloy) has none: libcurl
	 * prunes its cache by walking every entry on each new connection, one
	 * entry per host, which at 10,000 targets was ~75% of scrape CPU.
	 * Connections in the cache are reused without resolving. */
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	if (http_debug())
		curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* libcurl's trace on stderr */
	if (req->timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	if (!method)
		method = req->body ? "POST" : "GET";
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		/* no "Expect: 100-continue" round trip for large bodies */
		x->hdrs = curl_slist_append(x->hdrs, "Expect:");
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		if (req->body) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		}
	}
	if (req->accept_gzip)
		x->hdrs = curl_slist_append(x->hdrs, "Accept-Encoding: gzip");
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i])
			x->hdrs = curl_slist_append(x->hdrs, req->headers[i]);
	/* the last of the request's own headers: the profile's follow */
	for (req_hdrs_end = x->hdrs; req_hdrs_end && req_hdrs_end->next;
	     req_hdrs_end = req_hdrs_end->next)
		;

	if (!a) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		goto out;
	}
	r = http_auth_secrets(a, &x->password, &token);
	if (r)
		return r;
	if (a->oauth2) {
		char *h = NULL;

		r = http_oauth2_header(a->oauth2, req->timeout_ms, &h, x->errbuf,
				       sizeof(x->errbuf));
		if (r) {
			/* completed with this error by run(), like a failed
			 * transfer, so that the caller sees the message */
			x->fail = r;
			goto out;
		}
		x->hdrs = curl_slist_append(x->hdrs, h);
		explicit_bzero(h, strlen(h));
		free(h);
	}
	for (size_t i = 0; i < a->n_headers; i++)
		x->hdrs = curl_slist_append(x->hdrs, a->headers[i]);
	if (a->s.username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, a->s.username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, x->password ? x->password : "");
	}
	if (token) {
		size_t n = strlen(token) + strlen(a->auth_type) + 32;
		char *h = malloc(n);

		if (!h) {
			free(token);
			return -ENOMEM;
		}
		snprintf(h, n, "Authorization: %s %s", a->auth_type, token);
		x->hdrs = curl_slist_append(x->hdrs, h);
		explicit_bzero(h, n);
		explicit_bzero(token, strlen(token));
		free(h);
		free(token);
	}
	if (a->s.follow_redirects) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
		/* credentials only to the original host */
		curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}
	curl_easy_setopt(
	    e, CURLOPT_HTTP_VERSION,
	    (long)(a->s.enable_http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
	{
		char *nurl = NULL;

		r = http_apply_conn(e, a, req->url, &x->hdrs, &x->connect_to, &x->proxy_hdrs,
				    &nurl);
		if (nurl) {
			free(x->url);
			x->url = nurl;
		}
		if (r)
			return r;
	}
out:
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	keep_setup(x, req, req_hdrs_end);
	return 0;
}

/* One byte per thread: its address tells the threads apart. */
static _Thread_local char run_token;

int starling_http_submit(struct starling_http_client *c, const struct starling_http_request *req)
{
	struct xfer *x;
	int r;

	if (!c || !req || !req->url || !req->done)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	x = c->pool;
	if (x) {
		c->pool = x->next;
		c->n_pool--;
	}
	pthread_mutex_unlock(&c->lock);
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		x->easy = curl_easy_init();
		if (!x->easy) {
			free(x);
			return -ENOMEM;
		}
	}
	x->c = c;
	x->next = NULL;
	x->done = req->done;
	x->arg = req->arg;
	x->body_limit = req->body_limit;
	r = setup_easy(x, req);
	x->on_data = req->on_data;
	if (r) {
		pthread_mutex_lock(&c->lock);
		c->pending++; /* balanced by recycle */
		pthread_mutex_unlock(&c->lock);
		xfer_recycle(c, x);
		return r;
	}
	x->start_us = mono_us();
	pthread_mutex_lock(&c->lock);
	*c->incoming_tail = x;
	c->incoming_tail = &x->next;
	c->pending++;
	pthread_mutex_unlock(&c->lock);
	/* The run thread submitting (a scrape loop between runs, a done
	 * callback): no eventfd write and read, and no extra pass of its
	 * loop (a write and a read per scrape at 200 scrapes/s) */
	if (atomic_load_explicit(&c->runner, memory_order_relaxed) != &run_token)
		starling_http_wakeup(c);
	return 0;
}

static int map_curl_error(CURLcode rc, bool too_big)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		return too_big ? -EFBIG : -EIO;
	case CURLE_TOO_MANY_REDIRECTS:
		return -ELOOP;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_USE_SSL_FAILED:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void complete(struct starling_http_client *c, struct xfer *x, CURLcode rc)
{
	struct starling_http_response resp = {0};
	char msg[CURL_ERROR_SIZE + 96];
	static uint8_t empty[1];
	int64_t now_ms;
	struct timespec ts;

	resp.error = x->fail ? x->fail : x->aborted ? -ECANCELED : map_curl_error(rc, x->too_big);
	if (!x->fail)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	resp.wire_len = x->len;
	resp.retry_after_ms = -1;
	resp.error_msg = "";
	if (resp.error == -EFBIG) {
		snprintf(msg, sizeof(msg), "response body exceeds the limit of %zu bytes",
			 x->body_limit);
		resp.error_msg = msg;
	} else if (resp.error) {
		snprintf(msg, sizeof(msg), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
		resp.error_msg = msg;
	} else if (x->gzip) {
		int r = http_gunzip_with(&c->inflater, x->buf, x->len, x->body_limit,
					 &c->inflate_buf, &c->inflate_cap, &resp.body_len);

		if (r == 0) {
			resp.body = c->inflate_buf;
		} else {
			resp.error = r;
			if (r == -EFBIG)
				snprintf(
				    msg, sizeof(msg),
				    "decompressed response body exceeds the limit of %zu bytes",
				    x->body_limit);
			else
				snprintf(msg, sizeof(msg),
					 "cannot decompress gzip response body: %s", strerror(-r));
			resp.error_msg = msg;
		}
	} else {
		if (x->buf) {
			x->buf[x->len] = 0; /* on_body always leaves room */
			resp.body = x->buf;
		} else {
			resp.body = empty;
		}
		resp.body_len = x->len;
	}
	if (resp.error) {
		resp.body = NULL;
		resp.body_len = 0;
	}
	resp.content_type = x->have_ct ? x->content_type : NULL;
	if (x->have_ra) {
		clock_gettime(CLOCK_REALTIME, &ts);
		now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		resp.retry_after_ms = starling_http_parse_retry_after(x->retry_after, now_ms);
	}
	resp.duration_us = mono_us() - x->start_us;
	x->done(x->arg, &resp);
	/* The inflate buffer is reused for the next gzip body, but one large
	 * body (or a bomb cut at the limit) must not pin its size for the
	 * client's lifetime: like the wire buffers of the pool, it is kept
	 * only up to POOL_BUF_KEEP. */
	if (c->inflate_cap > POOL_BUF_KEEP) {
		free(c->inflate_buf);
		c->inflate_buf = NULL;
		c->inflate_cap = 0;
	}
}

size_t http_client_retained_bytes(struct starling_http_client *c)
{
	size_t n = c->inflate_cap;

	pthread_mutex_lock(&c->lock);
	for (struct xfer *x = c->pool; x; x = x->next)
		n += x->cap;
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t http_client_setups_kept(struct starling_http_client *c)
{
	return atomic_load(&c->setups_kept);
}

unsigned http_client_shards_used(struct starling_http_client *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->n_shards; i++)
		n += c->shards[i] != NULL;
	return n;
}

static void unlink_active(struct starling_http_client *c, struct xfer *x)
{
	if (x->aprev)
		x->aprev->anext = x->anext;
	else
		c->active = x->anext;
	if (x->anext)
		x->anext->aprev = x->aprev;
	x->anext = x->aprev = NULL;
}

/* FNV-1a of the URL's scheme and authority ("http://host:port"). */
static uint64_t host_key(const char *url)
{
	const char *p = strstr(url, "://");
	uint64_t h = 1469598103934665603ULL;

	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	for (const char *q = url; q < p; q++)
		h = (h ^ (unsigned char)tolower((unsigned char)*q)) * 1099511628211ULL;
	return h ? h : 1;
}

/* Insert or refresh key (a new key gets `shard`); returns the key's shard,
 * or -1 when out of memory. */
static int host_set_put(struct host_set *hs, uint64_t key, int64_t now_us, uint16_t shard)
{
	size_t i;

	if ((hs->n + 1) * 2 > hs->cap) {
		size_t ncap = hs->cap ? hs->cap * 2 : 64;
		uint64_t *nk = calloc(ncap, sizeof(*nk));
		int64_t *ns = calloc(ncap, sizeof(*ns));
		uint16_t *nh = calloc(ncap, sizeof(*nh));

		if (!nk || !ns || !nh) {
			free(nk);
			free(ns);
			free(nh);
			return -1;
		}
		for (size_t j = 0; j < hs->cap; j++) {
			if (!hs->keys[j])
				continue;
			for (i = hs->keys[j] & (ncap - 1); nk[i]; i = (i + 1) & (ncap - 1))
				;
			nk[i] = hs->keys[j];
			ns[i] = hs->seen_us[j];
			nh[i] = hs->shard[j];
		}
		free(hs->keys);
		free(hs->seen_us);
		free(hs->shard);
		hs->keys = nk;
		hs->seen_us = ns;
		hs->shard = nh;
		hs->cap = ncap;
	}
	for (i = key & (hs->cap - 1); hs->keys[i] && hs->keys[i] != key;
	     i = (i + 1) & (hs->cap - 1))
		;
	if (!hs->keys[i]) {
		hs->keys[i] = key;
		hs->shard[i] = shard;
		hs->n++;
	}
	hs->seen_us[i] = now_us;
	return hs->shard[i];
}

static void host_set_free(struct host_set *hs)
{
	free(hs->keys);
	free(hs->seen_us);
	free(hs->shard);
	memset(hs, 0, sizeof(*hs));
}

/* Drop the keys not seen since `since_us` (rebuilds the table). */
static void host_set_expire(struct host_set *hs, int64_t since_us)
{
	struct host_set old = *hs;

	memset(hs, 0, sizeof(*hs));
	for (size_t j = 0; j < old.cap; j++)
		if (old.keys[j] && old.seen_us[j] >= since_us)
			host_set_put(hs, old.keys[j], old.seen_us[j], old.shard[j]);
	host_set_free(&old);
}

/* Size the connection cache to one idle connection per host in use plus the
 * concurrent transfers, within the fd budget (run thread only). */
static void update_maxconnects(struct starling_http_client *c, int64_t now_us)
{
	long want;

	if (now_us - c->hosts_swept_us >= HOSTS_WINDOW_US) {
		host_set_expire(&c->hosts, now_us - HOSTS_WINDOW_US);
		c->hosts_swept_us = now_us;
		c->peak_active = c->n_active;
	}
	want = (long)(c->hosts.n + c->peak_active) + 64;
	if (want < 4096)
		want = 4096;
	if (want > c->fd_budget)
		want = c->fd_budget;
	/* grow at once, shrink only by a margin (no setopt per request) */
	if (want > c->maxconnects || want + 1024 < c->maxconnects) {
		c->maxconnects = want;
		curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, want);
	}
}

uint16_t http_new_host_shard(uint64_t nth, int64_t now_us)
{
	uint64_t t = (uint64_t)(now_us / 1000000) % SHARD_TIME_GROUPS;

	return (uint16_t)(t * SHARD_FILL_GROUPS + (nth / SHARD_FILL) % SHARD_FILL_GROUPS);
}

/* The connection cache of host `key` (run thread only): NULL for the multi
 * handle's own (no shards, or one cannot be made). */
static CURLSH *shard_for(struct starling_http_client *c, uint64_t key, int64_t now_us)
{
	int i;
	CURLSH **sh;
	size_t known = c->hosts.n;

	if (!c->n_shards)
		return NULL;
	if (now_us / 1000000 != c->new_sec) {
		c->new_sec = now_us / 1000000;
		c->new_in_sec = 0;
	}
	i = host_set_put(&c->hosts, key, now_us, http_new_host_shard(c->new_in_sec, now_us));
	if (c->hosts.n > known)
		c->new_in_sec++;
	/* out of memory: a shard by the key */
	sh = &c->shards[i < 0 ? (uint16_t)(key % HTTP_SHARDS) : (uint16_t)i];
	if (!*sh && (*sh = curl_share_init()) &&
	    curl_share_setopt(*sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		curl_share_cleanup(*sh);
		*sh = NULL;
	}
	return *sh;
}

/* Take a transfer out of the multi handle and its shard (run thread). */
static void detach(struct starling_http_client *c, struct xfer *x)
{
	curl_multi_remove_handle(c->multi, x->easy);
	curl_easy_setopt(x->easy, CURLOPT_SHARE, NULL);
}

/* Move submitted requests into the multi handle (run thread only). */
static void add_incoming(struct starling_http_client *c)
{
	struct xfer *list, *next;
	int64_t now_us;
	uint64_t key;
	bool added = false;

	pthread_mutex_lock(&c->lock);
	list = c->incoming;
	c->incoming = NULL;
	c->incoming_tail = &c->incoming;
	pthread_mutex_unlock(&c->lock);
	if (!list)
		return;
	now_us = mono_us();
	for (; list; list = next) {
		next = list->next;
		list->next = NULL;
		if (list->fail) {
			complete(c, list, CURLE_OK);
			xfer_recycle(c, list);
			continue;
		}
		key = host_key(list->url);
		if (c->n_shards)
			curl_easy_setopt(list->easy, CURLOPT_SHARE, shard_for(c, key, now_us));
		else
			host_set_put(&c->hosts, key, now_us, 0);
		if (curl_multi_add_handle(c->multi, list->easy) != CURLM_OK) {
			curl_easy_setopt(list->easy, CURLOPT_SHARE, NULL);
			snprintf(list->errbuf, sizeof(list->errbuf),
				 "curl_multi_add_handle failed");
			complete(c, list, CURLE_OUT_OF_MEMORY);
			xfer_recycle(c, list);
			continue;
		}
		list->aprev = NULL;
		list->anext = c->active;
		if (c->active)
			c->active->aprev = list;
		c->active = list;
		if (++c->n_active > c->peak_active)
			c->peak_active = c->n_active;
		added = true;
	}
	if (added)
		update_maxconnects(c, now_us);
}

static int drain(struct starling_http_client *c)
{
	CURLMsg *msg;
	int left, n = 0;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct xfer *x = NULL;
		CURLcode rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		detach(c, x);
		unlink_active(c, x);
		c->n_active--;
		complete(c, x, rc);
		xfer_recycle(c, x);
		n++;
	}
	return n;
}

/* libcurl's timeout, when due. */
static int run_timer(struct starling_http_client *c)
{
	int running;

	if (c->timer_due_us < 0 || c->timer_due_us > mono_us())
		return 0;
	c->timer_due_us = -1; /* on_timer sets the next one */
	return curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running) == CURLM_OK
		   ? 0
		   : -EIO;
}

/* Wait up to timeout_ms (0: do not block) for socket events, a wakeup or
 * libcurl's timer, and hand the ready sockets to libcurl. */
static int run_events(struct starling_http_client *c, int timeout_ms, bool *woken)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, running;

	if (c->timer_due_us >= 0) {
		int64_t left = c->timer_due_us - mono_us();

		if (left <= 0)
			timeout_ms = 0;
		else if (left < (int64_t)timeout_ms * 1000)
			timeout_ms = (int)((left + 999) / 1000);
	}
	n = epoll_wait(c->epfd, ev, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		int fl = 0;

		if (ev[i].data.fd == c->evfd) {
			uint64_t v;

			if (read(c->evfd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another read took it */
			}
			*woken = true;
			continue;
		}
		if (ev[i].events & (EPOLLIN | EPOLLHUP))
			fl |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			fl |= CURL_CSELECT_OUT;
		if (ev[i].events & EPOLLERR)
			fl |= CURL_CSELECT_ERR;
		if (curl_multi_socket_action(c->multi, ev[i].data.fd, fl, &running) != CURLM_OK)
			return -EIO;
	}
	return 0;
}

int starling_http_run(struct starling_http_client *c, int timeout_ms)
{
	bool woken = false;
	int n, r;

	if (atomic_load_explicit(&c->runner, memory_order_relaxed) != &run_token)
		atomic_store_explicit(&c->runner, &run_token, memory_order_relaxed);
	add_incoming(c);
	if ((r = run_timer(c)))
		return r;
	n = drain(c);
	if (n)
		return n;
	/* One epoll_wait per call: ready sockets and a pending wakeup() end
	 * the wait at once (a wait of 0 before it was one more syscall per
	 * call, two to three calls per scrape). */
	if ((r = run_events(c, timeout_ms > 0 ? timeout_ms : 0, &woken)))
		return r;
	add_incoming(c);
	if ((r = run_timer(c)))
		return r;
	return drain(c);
}

void starling_http_wakeup(struct starling_http_client *c)
{
	uint64_t one = 1;

	if (c && write(c->evfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a wakeup is pending anyway */
	}
}

size_t starling_http_pending(struct starling_http_client *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->pending;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void starling_http_client_free(struct starling_http_client *c)
{
	if (!c)
		return;
	/* in-flight transfers first, then the ones never added */
	while (c->active) {
		struct xfer *x = c->active;

		detach(c, x);
		unlink_active(c, x);
		c->n_active--;
		snprintf(x->errbuf, sizeof(x->errbuf), "HTTP client shut down");
		x->too_big = false;
		complete(c, x, CURLE_ABORTED_BY_CALLBACK);
		xfer_recycle(c, x);
	}
	for (;;) {
		struct xfer *x;

		pthread_mutex_lock(&c->lock);
		x = c->incoming;
		if (x) {
			c->incoming = x->next;
			if (!c->incoming)
				c->incoming_tail = &c->incoming;
		}
		pthread_mutex_unlock(&c->lock);
		if (!x)
			break;
		snprintf(x->errbuf, sizeof(x->errbuf), "HTTP client shut down");
		complete(c, x, CURLE_ABORTED_BY_CALLBACK);
		xfer_recycle(c, x);
	}
	while (c->pool) {
		struct xfer *x = c->pool;

		c->pool = x->next;
		xfer_destroy(x);
	}
	curl_multi_cleanup(c->multi); /* may still call on_socket */
	/* no easy handle uses a shard any more: this closes their idle
	 * connections */
	for (unsigned i = 0; i < c->n_shards; i++)
		if (c->shards[i])
			curl_share_cleanup(c->shards[i]);
	close(c->epfd);
	close(c->evfd);
	host_set_free(&c->hosts);
	pthread_mutex_destroy(&c->lock);
	free(c->inflate_buf);
	libdeflate_free_decompressor(c->inflater);
	free(c);
}

int64_t starling_http_parse_retry_after(const char *value, int64_t now_ms)
{
	struct tm tm;
	const char *end;
	int64_t secs = 0;

	if (!value)
		return -1;
	while (*value == ' ')
		value++;
	if (isdigit((unsigned char)*value)) {
		for (end = value; isdigit((unsigned char)*end); end++) {
			if (secs > INT64_MAX / 10000)
				return -1;
			secs = secs * 10 + (*end - '0');
		}
		while (*end == ' ')
			end++;
		return *end ? -1 : secs * 1000;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	secs = (int64_t)timegm(&tm) * 1000 - now_ms;
	return secs < 0 ? 0 : secs;
}
