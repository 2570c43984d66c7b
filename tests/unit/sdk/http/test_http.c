/* SDK HTTP client against an in-test libmicrohttpd server on 127.0.0.1. */
#include <signal.h>
#include <CUnit/Basic.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <starling/http.h>
#include "http_internal.h"
#include "http_test_util.h"
#include "mock_host.h"

static struct MHD_Daemon *daemon_, *tls_daemon;
static unsigned short tls_port;
static int connections;
static char tls_dir[] = "/tmp/starling-http-tls-XXXXXX";
static char *tls_key, *tls_cert;
static unsigned short port;
static char base[64];
static uint8_t *gz_text, *gz_bomb;
static size_t gz_text_len, gz_bomb_len;
static char *plain_text;
static size_t plain_len;

static uint8_t *gzip_buf(const void *in, size_t len, size_t *out_len)
{
	z_stream zs = {0};
	size_t cap = compressBound(len) + 64;
	uint8_t *out = malloc(cap);

	deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const void *body,
			     size_t len, const char *hname, const char *hval)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (hname)
		MHD_add_response_header(r, hname, hval);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

struct upload {
	char *data;
	size_t len;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	struct upload *u = *con_cls;

	/* Answer only on the second call: MHD closes the connection when a
	 * response is queued on the first one, and keep-alive is tested. */
	if (!u) {
		*con_cls = calloc(1, sizeof(*u));
		return MHD_YES;
	}
	if (*upload_size) {
		u->data = realloc(u->data, u->len + *upload_size + 1);
		memcpy(u->data + u->len, upload_data, *upload_size);
		u->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	*con_cls = NULL;
	if (!strcmp(method, "POST")) {
		enum MHD_Result r = reply(conn, 200, u->data ? u->data : "", u->len, NULL, NULL);

		free(u->data);
		free(u);
		return r;
	}
	free(u->data);
	free(u);
	/* an absolute URI: we are being used as an HTTP proxy */
	if (!strncmp(url, "http://", 7)) {
		char buf[256];
		int n = snprintf(buf, sizeof(buf), "proxied %s", url);

		return reply(conn, 200, buf, (size_t)n, NULL, NULL);
	}
	if (!strcmp(url, "/plain"))
		return reply(conn, 200, "hello", 5, NULL, NULL);
	if (!strcmp(url, "/gzip")) {
		const char *ae =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");

		if (ae && strstr(ae, "gzip"))
			return reply(conn, 200, gz_text, gz_text_len, "Content-Encoding", "gzip");
		return reply(conn, 200, plain_text, plain_len, NULL, NULL);
	}
	if (!strcmp(url, "/bomb"))
		return reply(conn, 200, gz_bomb, gz_bomb_len, "Content-Encoding", "gzip");
	if (!strcmp(url, "/liar")) {
		/* the bomb with a trailer that claims 100 bytes */
		uint8_t *b = malloc(gz_bomb_len);
		enum MHD_Result r;

		memcpy(b, gz_bomb, gz_bomb_len);
		b[gz_bomb_len - 4] = 100;
		b[gz_bomb_len - 3] = b[gz_bomb_len - 2] = b[gz_bomb_len - 1] = 0;
		r = reply(conn, 200, b, gz_bomb_len, "Content-Encoding", "gzip");
		free(b);
		return r;
	}
	if (!strcmp(url, "/corrupt"))
		return reply(conn, 200, "\x1f\x8b\x08\x00garbagegarbagegarbage", 24,
			     "Content-Encoding", "gzip");
	if (!strcmp(url, "/big"))
		return reply(conn, 200, plain_text, plain_len, NULL, NULL);
	if (!strcmp(url, "/slow")) {
		usleep(1500 * 1000);
		return reply(conn, 200, "late", 4, NULL, NULL);
	}
	if (!strcmp(url, "/loop"))
		return reply(conn, 302, "", 0, "Location", "/loop");
	if (!strcmp(url, "/redir"))
		return reply(conn, 301, "", 0, "Location", "/plain");
	if (!strcmp(url, "/429"))
		return reply(conn, 429, "slow down", 9, "Retry-After", "7");
	if (!strcmp(url, "/headers")) {
		const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		const char *x = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Test");
		const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
		char buf[512];
		int n = snprintf(buf, sizeof(buf), "auth=%s x=%s ua=%s", a ? a : "-", x ? x : "-",
				 ua ? ua : "-");

		return reply(conn, 200, buf, (size_t)n, NULL, NULL);
	}
	return reply(conn, 404, "nope", 4, NULL, NULL);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		__atomic_add_fetch(&connections, 1, __ATOMIC_SEQ_CST);
}

/* A CA and a server certificate for "starling.test", made with openssl. */
static int make_certs(void)
{
	char path[256];

	if (!mkdtemp(tls_dir) || http_test_make_certs(tls_dir, false))
		return -1;
	snprintf(path, sizeof(path), "%s/srv.key", tls_dir);
	tls_key = http_test_slurp(path);
	snprintf(path, sizeof(path), "%s/srv.crt", tls_dir);
	tls_cert = http_test_slurp(path);
	return tls_key && tls_cert && *tls_key && *tls_cert ? 0 : -1;
}

static int suite_init(void)
{
	struct sockaddr_in sa = {0};
	const union MHD_DaemonInfo *info;
	uint8_t *zeros;

	plain_len = 300000;
	plain_text = malloc(plain_len + 1);
	for (size_t i = 0; i < plain_len; i++)
		plain_text[i] = "metric_a{x=\"1\"} 42\n"[i % 19];
	plain_text[plain_len] = 0;
	gz_text = gzip_buf(plain_text, plain_len, &gz_text_len);
	zeros = calloc(1, 64u << 20);
	gz_bomb = gzip_buf(zeros, 64u << 20, &gz_bomb_len);
	free(zeros);

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	daemon_ = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0, NULL,
	    NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, NULL, MHD_OPTION_END);
	if (!daemon_)
		return 1;
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	if (make_certs() == 0)
		tls_daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
						  MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS,
					      0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
					      &sa, MHD_OPTION_HTTPS_MEM_KEY, tls_key,
					      MHD_OPTION_HTTPS_MEM_CERT, tls_cert, MHD_OPTION_END);
	if (tls_daemon)
		tls_port = MHD_get_daemon_info(tls_daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
	return 0;
}

static int suite_clean(void)
{
	MHD_stop_daemon(daemon_);
	if (tls_daemon)
		MHD_stop_daemon(tls_daemon);
	http_test_rm_dir(tls_dir);
	free(tls_key);
	free(tls_cert);
	free(plain_text);
	free(gz_text);
	free(gz_bomb);
	return 0;
}

/* One completed response, copied out of the callback. */
struct result {
	bool done;
	int error;
	long status;
	char *body;
	size_t len;
	size_t wire;
	int64_t retry_after_ms;
	char ct[128];
	char msg[256];
};

static void on_done(void *arg, const struct starling_http_response *r)
{
	struct result *res = arg;

	res->done = true;
	res->error = r->error;
	res->status = r->status;
	res->len = r->body_len;
	res->wire = r->wire_len;
	res->retry_after_ms = r->retry_after_ms;
	snprintf(res->msg, sizeof(res->msg), "%s", r->error_msg);
	snprintf(res->ct, sizeof(res->ct), "%s", r->content_type ? r->content_type : "");
	if (r->body) {
		CU_ASSERT_EQUAL(r->body[r->body_len], 0); /* NUL-terminated */
		res->body = malloc(r->body_len + 1);
		memcpy(res->body, r->body, r->body_len + 1);
	}
}

/* One request on client c, the result in *res. */
static void fetch_on(struct starling_http_client *c, struct starling_http_request *req,
		     struct result *res)
{
	int loops = 0;

	memset(res, 0, sizeof(*res));
	req->done = on_done;
	req->arg = res;
	CU_ASSERT_EQUAL_FATAL(starling_http_submit(c, req), 0);
	while (!res->done && loops++ < 1000)
		starling_http_run(c, 50);
	CU_ASSERT_TRUE(res->done);
	CU_ASSERT_EQUAL(starling_http_pending(c), 0);
}

static void fetch(struct starling_http_request *req, struct result *res)
{
	struct starling_http_client *c;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	fetch_on(c, req, res);
	starling_http_client_free(c);
}

static void get(const char *path, size_t limit, bool gzip, int64_t timeout,
		const struct starling_http_auth *auth, struct result *res)
{
	char url[128];
	struct starling_http_request req = {0};

	snprintf(url, sizeof(url), "%s%s", base, path);
	req.url = url;
	req.body_limit = limit;
	req.accept_gzip = gzip;
	req.timeout_ms = timeout;
	req.auth = auth;
	fetch(&req, res);
}

static void test_plain_and_gzip(void)
{
	struct result r;

	get("/plain", 0, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello");
	CU_ASSERT_STRING_EQUAL(r.ct, "text/plain; version=0.0.4");
	free(r.body);

	get("/gzip", 1 << 20, true, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(r.len, plain_len);
	CU_ASSERT_EQUAL(r.wire, gz_text_len); /* it really came compressed */
	CU_ASSERT_TRUE(r.wire < plain_len / 10);
	CU_ASSERT_TRUE(r.body && !memcmp(r.body, plain_text, plain_len));
	free(r.body);

	/* without Accept-Encoding the server sends identity */
	get("/gzip", 0, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.wire, plain_len);
	free(r.body);
}

/* One large gzip body (the 64 MiB bomb, within a 128 MiB limit here) must
 * not pin its inflate buffer for the client's lifetime: it used to stay at
 * the largest body ever seen (211 MB for one 200 MB body). */
static void test_inflate_buffer_released(void)
{
	struct starling_http_request req = {0};
	struct starling_http_client *c;
	struct result res;
	char url[128];
	int loops = 0;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	snprintf(url, sizeof(url), "%s/bomb", base);
	req.url = url;
	req.body_limit = 128u << 20;
	req.accept_gzip = true;
	req.timeout_ms = 10000;
	req.done = on_done;
	req.arg = &res;
	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL_FATAL(starling_http_submit(c, &req), 0);
	while (!res.done && loops++ < 1000)
		starling_http_run(c, 50);
	CU_ASSERT_EQUAL(res.error, 0);
	CU_ASSERT_EQUAL(res.len, 64u << 20);
	free(res.body);
	CU_ASSERT_TRUE(http_client_retained_bytes(c) <= 8u << 20);
	/* and a small gzip body afterwards still works */
	snprintf(url, sizeof(url), "%s/gzip", base);
	req.body_limit = 1 << 20;
	memset(&res, 0, sizeof(res));
	loops = 0;
	CU_ASSERT_EQUAL_FATAL(starling_http_submit(c, &req), 0);
	while (!res.done && loops++ < 1000)
		starling_http_run(c, 50);
	CU_ASSERT_EQUAL(res.error, 0);
	CU_ASSERT_EQUAL(res.len, plain_len);
	free(res.body);
	CU_ASSERT_TRUE(http_client_retained_bytes(c) <= 8u << 20);
	starling_http_client_free(c);
}

static void test_limits(void)
{
	struct result r;

	get("/big", 100000, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "limit of 100000"));
	CU_ASSERT_PTR_NULL(r.body);

	/* decompressed size counts: 300 kB of text in ~1 kB of gzip */
	get("/gzip", 100000, true, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -EFBIG);

	/* gzip bomb: 64 MiB of zeros, 1 MiB limit */
	get("/bomb", 1 << 20, true, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -EFBIG);
	/* same bomb whose trailer lies about the size: zlib path catches it */
	get("/liar", 1 << 20, true, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -EFBIG);

	get("/corrupt", 1 << 20, true, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -EBADMSG);
}

static void test_timeout_and_redirects(void)
{
	struct result r;

	get("/slow", 0, false, 300, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -ETIMEDOUT);
	CU_ASSERT_STRING_NOT_EQUAL(r.msg, "");

	get("/loop", 0, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, -ELOOP);

	get("/redir", 0, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_STRING_EQUAL(r.body, "hello");
	free(r.body);

	get("/429", 0, false, 5000, NULL, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(r.status, 429);
	CU_ASSERT_EQUAL(r.retry_after_ms, 7000);
	free(r.body);

	/* nothing listens on port 1 */
	struct starling_http_request req = {.url = "http://127.0.0.1:1/", .timeout_ms = 2000};

	fetch(&req, &r);
	CU_ASSERT_EQUAL(r.error, -ECONNREFUSED);
}

static void test_auth_headers(void)
{
	struct starling_http_auth_settings s = {
	    .username = "user", .password = "pass", .follow_redirects = true};
	struct starling_http_auth *a;
	char err[256], url[128], path[] = "/tmp/starling-http-token-XXXXXX";
	struct result r;
	const char *hdr[] = {"X-Test: yes"};
	struct starling_http_request req = {0};
	FILE *f;
	int fd;

	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "%s/headers", base);
	req.url = url;
	req.headers = hdr;
	req.n_headers = 1;
	req.auth = a;
	req.user_agent = "test-agent/1";
	fetch(&req, &r);
	CU_ASSERT_STRING_EQUAL(r.body, "auth=Basic dXNlcjpwYXNz x=yes ua=test-agent/1");
	free(r.body);
	starling_http_auth_free(a);

	/* bearer token file, re-read when it changes */
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "tok-one\n", 8), 8);
	close(fd);
	memset(&s, 0, sizeof(s));
	s.bearer_token_file = path;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	req.auth = a;
	req.user_agent = NULL;
	fetch(&req, &r);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=Bearer tok-one x=yes ua=Starling/"));
	free(r.body);
	f = fopen(path, "w");
	fputs("token-number-two", f);
	fclose(f);
	fetch(&req, &r);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=Bearer token-number-two "));
	free(r.body);
	unlink(path);
	/* a vanished token file fails the submit with a clear errno */
	{
		struct starling_http_client *c;

		starling_http_client_new(NULL, &c);
		req.done = on_done;
		req.arg = &r;
		CU_ASSERT_EQUAL(starling_http_submit(c, &req), -ENOENT);
		CU_ASSERT_EQUAL(starling_http_pending(c), 0);
		starling_http_client_free(c);
	}
	starling_http_auth_free(a);

	/* conflicting settings are refused */
	memset(&s, 0, sizeof(s));
	s.username = "u";
	s.bearer_token = "t";
	CU_ASSERT_EQUAL(starling_http_auth_new(&s, &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most one"));
}

struct counter {
	int ok;
	int done;
};

static void count_done(void *arg, const struct starling_http_response *r)
{
	struct counter *c = arg;

	c->done++;
	if (!r->error && r->status == 200 && r->body_len == 5)
		c->ok++;
}

/* Many requests from one thread through one client, and POST echo. */
static void test_concurrency_and_post(void)
{
	struct starling_http_client *c;
	struct counter cnt = {0};
	char url[128];
	struct starling_http_request req = {0};
	struct result r;
	int loops = 0;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	snprintf(url, sizeof(url), "%s/plain", base);
	req.url = url;
	req.timeout_ms = 10000;
	req.done = count_done;
	req.arg = &cnt;
	for (int i = 0; i < 200; i++)
		CU_ASSERT_EQUAL(starling_http_submit(c, &req), 0);
	while (cnt.done < 200 && loops++ < 2000)
		starling_http_run(c, 50);
	CU_ASSERT_EQUAL(cnt.ok, 200);

	/* client freed with requests still queued: each gets -ECANCELED */
	cnt.done = 0;
	for (int i = 0; i < 5; i++)
		starling_http_submit(c, &req);
	starling_http_client_free(c);
	CU_ASSERT_EQUAL(cnt.done, 5);

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "%s/echo", base);
	req.url = url;
	req.body = "payload\0bytes";
	req.body_len = 13;
	fetch(&req, &r);
	CU_ASSERT_EQUAL(r.len, 13);
	CU_ASSERT_TRUE(r.body && !memcmp(r.body, "payload\0bytes", 13));
	free(r.body);
}

/* Sequential requests through one client reuse one connection. */
static void test_connection_reuse(void)
{
	struct starling_http_client *c;
	struct counter cnt = {0};
	char url[128];
	struct starling_http_request req = {0};
	int before;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	snprintf(url, sizeof(url), "%s/plain", base);
	req.url = url;
	req.timeout_ms = 5000;
	req.done = count_done;
	req.arg = &cnt;
	before = __atomic_load_n(&connections, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 20; i++) {
		int loops = 0;

		CU_ASSERT_EQUAL(starling_http_submit(c, &req), 0);
		while (cnt.done < i + 1 && loops++ < 200)
			starling_http_run(c, 50);
	}
	CU_ASSERT_EQUAL(cnt.ok, 20);
	if (__atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before != 1)
		fprintf(stderr, "connections: %d\n",
			__atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before);
	CU_ASSERT_EQUAL(__atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before, 1);
	starling_http_client_free(c);
}

/* Rounds of concurrent requests (like scrapes of many targets, one per
 * interval): the connections opened in the first round stay in the cache and
 * serve the later rounds; none is re-made (sdk/lib/http.c sizes the cache to
 * the hosts and concurrency in use). */
static void test_idle_connections_kept(void)
{
	enum { N = 24, ROUNDS = 3 };
	struct starling_http_client *c;
	struct counter cnt = {0};
	char url[128];
	struct starling_http_request req = {0};
	int before, first = 0;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	snprintf(url, sizeof(url), "%s/plain", base);
	req.url = url;
	req.timeout_ms = 10000;
	req.done = count_done;
	req.arg = &cnt;
	before = __atomic_load_n(&connections, __ATOMIC_SEQ_CST);
	for (int round = 1; round <= ROUNDS; round++) {
		int loops = 0;

		for (int i = 0; i < N; i++)
			CU_ASSERT_EQUAL(starling_http_submit(c, &req), 0);
		while (cnt.done < round * N && loops++ < 2000)
			starling_http_run(c, 50);
		CU_ASSERT_EQUAL(cnt.ok, round * N);
		if (round == 1)
			first = __atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before;
	}
	CU_ASSERT(first >= 1 && first <= N);
	CU_ASSERT_EQUAL(__atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before, first);
	starling_http_client_free(c);
}

/* Many hosts (one server per port, as many targets): each host's idle
 * connection is found again in later rounds although the client splits its
 * connection cache into shards by host (sdk/lib/http.c: libcurl 7.88 walks
 * the cache a finished transfer used, so at most 32 new hosts of a second
 * per cache), and more than one shard is in use. */
static void test_many_hosts_connections_kept(void)
{
	enum { HOSTS = 40, ROUNDS = 3 };
	struct MHD_Daemon *d[HOSTS];
	char urls[HOSTS][64];
	struct starling_http_client *c;
	struct counter cnt = {0};
	struct sockaddr_in sa = {0};
	int before, first = 0;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < HOSTS; i++) {
		d[i] = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0, NULL,
					NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
					MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
					MHD_OPTION_END);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d[i]);
		snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%u/plain",
			 MHD_get_daemon_info(d[i], MHD_DAEMON_INFO_BIND_PORT)->port);
	}
	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	before = __atomic_load_n(&connections, __ATOMIC_SEQ_CST);
	for (int round = 1; round <= ROUNDS; round++) {
		int loops = 0;

		for (int i = 0; i < HOSTS; i++) {
			struct starling_http_request req = {0};

			req.url = urls[i];
			req.timeout_ms = 10000;
			req.done = count_done;
			req.arg = &cnt;
			CU_ASSERT_EQUAL(starling_http_submit(c, &req), 0);
		}
		while (cnt.done < round * HOSTS && loops++ < 2000)
			starling_http_run(c, 50);
		CU_ASSERT_EQUAL(cnt.ok, round * HOSTS);
		if (round == 1)
			first = __atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before;
	}
	CU_ASSERT_EQUAL(first, HOSTS);
	CU_ASSERT_EQUAL(__atomic_load_n(&connections, __ATOMIC_SEQ_CST) - before, HOSTS);
	CU_ASSERT(http_client_shards_used(c) > 1);
	starling_http_client_free(c);
	for (int i = 0; i < HOSTS; i++)
		MHD_stop_daemon(d[i]);
}

/* Hosts first seen in the same second share a time group (a periodic
 * scraper meets them again together, so their cache is busy, and pruned,
 * about once per interval); other seconds get other groups, 16 in turn; the
 * hosts new in one second fill the group's 16 shards 32 at a time (a shard
 * costs libcurl ~8.5 KB: not one per handful of hosts). */
static void test_host_shard_groups(void)
{
	enum { G = 16, FILL = 32 };
	int seen[G * G] = {0}, used = 0;

	for (uint64_t k = 0; k < 1000; k++) {
		int64_t t = 5000000 + (int64_t)(k % 7) * 100000; /* within second 5 */
		uint16_t s = http_new_host_shard(k, t);

		CU_ASSERT(s < G * G);
		CU_ASSERT_EQUAL(s / G, 5);
		CU_ASSERT_EQUAL(s % G, (k / FILL) % G);
		if (s < G * G && !seen[s]++)
			used++;
		/* the next second: the next time group */
		CU_ASSERT_EQUAL(http_new_host_shard(k, t + 1000000), 6 * G + s % G);
		/* 16 seconds on: the same shard again */
		CU_ASSERT_EQUAL(http_new_host_shard(k, t + 16000000), s);
	}
	CU_ASSERT_EQUAL(used, G);
	/* 100 new hosts in a second: 4 shards (32 + 32 + 32 + 4) */
	memset(seen, 0, sizeof(seen));
	used = 0;
	for (uint64_t k = 0; k < 100; k++)
		if (!seen[http_new_host_shard(k, 7000000)]++)
			used++;
	CU_ASSERT_EQUAL(used, 4);
	CU_ASSERT_EQUAL(seen[7 * G], FILL);
	CU_ASSERT_EQUAL(seen[7 * G + 3], 4);
}

/* One GET on client c (its pooled easy handle is reused request after
 * request), the result in *res. */
static void get_on(struct starling_http_client *c, const char *path, const char *const *hdrs,
		   size_t n_hdrs, const char *ua, const struct starling_http_auth *auth, bool gzip,
		   int64_t timeout_ms, struct result *res)
{
	struct starling_http_request req = {
	    .headers = hdrs,
	    .n_headers = n_hdrs,
	    .user_agent = ua,
	    .auth = auth,
	    .accept_gzip = gzip,
	    .timeout_ms = timeout_ms,
	};
	char url[128];

	free(res->body);
	snprintf(url, sizeof(url), "%s%s", base, path);
	req.url = url;
	fetch_on(c, &req, res);
}

static bool body_is(const struct result *r, const char *want)
{
	return r->body && !strcmp(r->body, want);
}

static struct starling_http_auth *bearer(const char *token)
{
	struct starling_http_auth_settings s = {0};
	struct starling_http_auth *a = NULL;
	char err[256];

	s.bearer_token = token;
	s.follow_redirects = true;
	CU_ASSERT_EQUAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	return a;
}

/* An easy handle keeps its options from one request to the next when
 * nothing but the URL changes (sdk/lib/http.c same_setup(): no
 * curl_easy_reset() and option storm per scrape), and any change of
 * headers, user agent, auth profile, compression or timeout still reaches
 * the wire. */
static void test_kept_setup(void)
{
	struct starling_http_client *c;
	struct starling_http_auth *a1 = bearer("t1"), *a2 = bearer("t2"), *a3;
	const char *xa[] = {"X-Test: a", NULL}, *xb[] = {"X-Test: b"};
	struct result r = {0};
	size_t kept;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	get_on(c, "/headers", xa, 2, "ua1", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=a ua=ua1"));
	kept = http_client_setups_kept(c);
	get_on(c, "/headers", xa, 2, "ua1", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=a ua=ua1"));
	CU_ASSERT_EQUAL(http_client_setups_kept(c), kept + 1);
	get_on(c, "/headers", xb, 1, "ua1", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=b ua=ua1"));
	get_on(c, "/headers", NULL, 0, "ua1", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=- ua=ua1"));
	get_on(c, "/headers", xb, 1, "ua1", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=b ua=ua1"));
	get_on(c, "/headers", xb, 1, "ua2", a1, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t1 x=b ua=ua2"));
	get_on(c, "/headers", xb, 1, "ua2", a2, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t2 x=b ua=ua2"));
	/* a new profile (perhaps at the freed one's address) is a new one */
	starling_http_auth_free(a2);
	a3 = bearer("t3");
	get_on(c, "/headers", xb, 1, "ua2", a3, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=Bearer t3 x=b ua=ua2"));
	get_on(c, "/headers", xb, 1, "ua2", NULL, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=- x=b ua=ua2"));
	get_on(c, "/headers", xb, 1, "ua2", NULL, false, 10000, &r);
	CU_ASSERT(body_is(&r, "auth=- x=b ua=ua2"));
	/* compression on, off, on */
	get_on(c, "/gzip", NULL, 0, NULL, a1, true, 10000, &r);
	CU_ASSERT_EQUAL(r.len, plain_len);
	CU_ASSERT_EQUAL(r.wire, gz_text_len);
	get_on(c, "/gzip", NULL, 0, NULL, a1, false, 10000, &r);
	CU_ASSERT_EQUAL(r.wire, plain_len);
	get_on(c, "/gzip", NULL, 0, NULL, a1, true, 10000, &r);
	CU_ASSERT_EQUAL(r.wire, gz_text_len);
	/* timeout: short, long, short again (/slow answers after 1.5 s) */
	get_on(c, "/slow", NULL, 0, NULL, a1, false, 300, &r);
	CU_ASSERT_EQUAL(r.error, -ETIMEDOUT);
	get_on(c, "/slow", NULL, 0, NULL, a1, false, 60000, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT(body_is(&r, "late"));
	get_on(c, "/slow", NULL, 0, NULL, a1, false, 300, &r);
	CU_ASSERT_EQUAL(r.error, -ETIMEDOUT);
	/* kept: the second request, the second without auth and this one */
	get_on(c, "/slow", NULL, 0, NULL, a1, false, 300, &r);
	CU_ASSERT_EQUAL(r.error, -ETIMEDOUT);
	CU_ASSERT_EQUAL(http_client_setups_kept(c), kept + 3);
	free(r.body);
	starling_http_client_free(c);
	starling_http_auth_free(a1);
	starling_http_auth_free(a3);
}

/* One client inflates every gzip response with the same libdeflate
 * decompressor (sdk/lib/http.c): bodies stay right, also after a corrupt
 * one. */
static void test_inflater_reused(void)
{
	struct starling_http_client *c;
	struct result r = {0};

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	for (int i = 0; i < 3; i++) {
		get_on(c, "/gzip", NULL, 0, NULL, NULL, true, 10000, &r);
		CU_ASSERT_EQUAL(r.error, 0);
		CU_ASSERT(r.len == plain_len && r.body && !memcmp(r.body, plain_text, plain_len));
		CU_ASSERT_EQUAL(r.wire, gz_text_len);
		get_on(c, "/corrupt", NULL, 0, NULL, NULL, true, 10000, &r);
		CU_ASSERT_EQUAL(r.error, -EBADMSG);
	}
	free(r.body);
	starling_http_client_free(c);
}

struct waker {
	struct starling_http_client *c;
	struct counter *cnt;
	const char *url;
};

static void *submit_from_thread(void *arg)
{
	struct waker *w = arg;
	struct starling_http_request req = {0};

	req.url = w->url;
	req.timeout_ms = 10000;
	req.done = count_done;
	req.arg = w->cnt;
	CU_ASSERT_EQUAL(starling_http_submit(w->c, &req), 0);
	return NULL;
}

/* A submit() from another thread wakes a run() blocked with a long timeout
 * (the eventfd in the client's epoll set), and wakeup() alone makes run()
 * return with nothing completed. */
static void test_wakeup_from_thread(void)
{
	struct starling_http_client *c;
	struct counter cnt = {0};
	char url[128];
	struct waker w = {0};
	pthread_t t;
	int loops = 0;
	struct timespec t0, t1;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	snprintf(url, sizeof(url), "%s/plain", base);
	w.c = c;
	w.cnt = &cnt;
	w.url = url;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, submit_from_thread, &w), 0);
	/* each run() waits at most 60 s: a lost wakeup shows as a slow test */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (cnt.done < 1 && loops++ < 100)
		starling_http_run(c, 60000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(cnt.ok, 1);
	CU_ASSERT(t1.tv_sec - t0.tv_sec < 50);
	starling_http_wakeup(c);
	CU_ASSERT_EQUAL(starling_http_run(c, 60000), 0);
	starling_http_client_free(c);
}

static void tls_get(const struct starling_http_auth_settings *s, struct result *r)
{
	struct starling_http_auth *a = NULL;
	char err[256], url[128];
	struct starling_http_request req = {0};

	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(s, &a, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/plain", tls_port);
	req.url = url;
	req.timeout_ms = 5000;
	req.auth = a;
	fetch(&req, r);
	starling_http_auth_free(a);
}

static void test_tls(void)
{
	struct starling_http_auth_settings s = {0};
	char ca[128];
	struct result r;

	if (!tls_daemon) {
		fprintf(stderr, "no TLS server (openssl or MHD TLS missing): TLS test skipped\n");
		CU_FAIL("TLS server could not be started");
		return;
	}
	snprintf(ca, sizeof(ca), "%s/ca.crt", tls_dir);
	/* unknown CA */
	tls_get(&s, &r);
	CU_ASSERT_EQUAL(r.error, -EPROTO);
	/* right CA, but the URL's host (127.0.0.1) is not in the certificate */
	s.ca_file = ca;
	tls_get(&s, &r);
	CU_ASSERT_EQUAL(r.error, -EPROTO);
	/* server_name makes SNI and verification use starling.test */
	s.server_name = "starling.test";
	tls_get(&s, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_TRUE(r.body && !strcmp(r.body, "hello"));
	free(r.body);
	/* insecure_skip_verify accepts anything */
	memset(&s, 0, sizeof(s));
	s.insecure_skip_verify = true;
	tls_get(&s, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	free(r.body);
}

static int auth_from(const char *cfg, struct starling_http_auth **a, char *err, size_t errlen)
{
	return http_test_auth_from(cfg, a, err, errlen);
}

/* The Alloy-named config blocks, through the host API (mock host). */
static void test_auth_from_config(void)
{
	struct starling_http_auth *a;
	struct starling_http_request req = {0};
	char err[256], url[128];
	struct result r;

	snprintf(url, sizeof(url), "%s/headers", base);
	req.url = url;
	CU_ASSERT_EQUAL_FATAL(
	    auth_from("authorization = { type = \"Token\"; credentials = \"s3cret\"; };", &a, err,
		      sizeof(err)),
	    0);
	req.auth = a;
	fetch(&req, &r);
	CU_ASSERT(r.body && strstr(r.body, "auth=Token s3cret ") != NULL);
	free(r.body);
	starling_http_auth_free(a);

	CU_ASSERT_EQUAL_FATAL(auth_from("basic_auth = { username = \"u\"; password = \"p\"; };\n"
					"follow_redirects = false;",
					&a, err, sizeof(err)),
			      0);
	req.auth = a;
	fetch(&req, &r);
	CU_ASSERT(r.body && strstr(r.body, "auth=Basic dTpw ") != NULL);
	free(r.body);
	/* follow_redirects = false: the 301 itself is the answer */
	snprintf(url, sizeof(url), "%s/redir", base);
	fetch(&req, &r);
	CU_ASSERT_EQUAL(r.status, 301);
	free(r.body);
	starling_http_auth_free(a);

	CU_ASSERT_EQUAL(
	    auth_from("bearer_token = \"t\";\nauthorization = { credentials = \"c\"; };", &a, err,
		      sizeof(err)),
	    -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "mock.cfg"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most one"));
	CU_ASSERT_EQUAL(auth_from("tls_config = { cert_file = \"/x\"; };", &a, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "key_file"));
	CU_ASSERT_EQUAL(auth_from("follow_redirects = \"yes\";", &a, err, sizeof(err)), -EINVAL);
}

/* proxy_url: the request goes to the proxy (the test server), which sees
 * the absolute URI of a host that does not exist. */
static void test_proxy(void)
{
	struct starling_http_auth_settings st = {.follow_redirects = true};
	struct starling_http_auth *a;
	struct starling_http_request req = {0};
	char err[256];
	struct result r;

	st.proxy_url = base;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&st, &a, err, sizeof(err)), 0);
	req.url = "http://scrape-target.invalid:9100/metrics";
	req.timeout_ms = 5000;
	req.auth = a;
	fetch(&req, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_TRUE(r.body &&
		       !strcmp(r.body, "proxied http://scrape-target.invalid:9100/metrics"));
	free(r.body);
	starling_http_auth_free(a);

	st.proxy_url = "not a url";
	CU_ASSERT_EQUAL(starling_http_auth_new(&st, &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "proxy_url"));
}

static void test_retry_after_parse(void)
{
	CU_ASSERT_EQUAL(starling_http_parse_retry_after("120", 0), 120000);
	CU_ASSERT_EQUAL(starling_http_parse_retry_after("abc", 0), -1);
	/* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
	CU_ASSERT_EQUAL(
	    starling_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000LL),
	    10000);
	CU_ASSERT_EQUAL(
	    starling_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490000LL), 0);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	/* A test server writing to a client that gave up (a timeout on a loaded
	 * machine) must see EPIPE, not die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("http", suite_init, suite_clean);
	CU_add_test(s, "plain_and_gzip", test_plain_and_gzip);
	CU_add_test(s, "limits_and_gzip_bomb", test_limits);
	CU_add_test(s, "inflate_buffer_released", test_inflate_buffer_released);
	CU_add_test(s, "timeout_redirects_429", test_timeout_and_redirects);
	CU_add_test(s, "auth_headers", test_auth_headers);
	CU_add_test(s, "concurrency_and_post", test_concurrency_and_post);
	CU_add_test(s, "auth_from_config", test_auth_from_config);
	CU_add_test(s, "connection_reuse", test_connection_reuse);
	CU_add_test(s, "idle_connections_kept", test_idle_connections_kept);
	CU_add_test(s, "many_hosts_connections_kept", test_many_hosts_connections_kept);
	CU_add_test(s, "host_shard_groups", test_host_shard_groups);
	CU_add_test(s, "kept_setup", test_kept_setup);
	CU_add_test(s, "inflater_reused", test_inflater_reused);
	CU_add_test(s, "wakeup_from_thread", test_wakeup_from_thread);
	CU_add_test(s, "proxy", test_proxy);
	CU_add_test(s, "tls_ca_server_name_insecure", test_tls);
	CU_add_test(s, "retry_after_parse", test_retry_after_parse);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
