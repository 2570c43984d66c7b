/*
 * SDK HTTP client arguments shared with Alloy/Prometheus (prometheus/common
 * config/http_config.go): oauth2 against a token server written for this
 * test (libmicrohttpd on 127.0.0.1), http_headers, no_proxy,
 * proxy_from_environment, proxy_connect_header, and tls_config ca_pem,
 * cert_pem/key_pem (against `openssl s_server -Verify`), min_version.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <starling/http.h>
#include "http_test_util.h"
#include "mock_wait.h"

static struct MHD_Daemon *srv, *tls12_srv;
static unsigned short port, tls12_port;
static char base[64];
static char dir[] = "/tmp/starling-http-args-XXXXXX";
static char *ca_pem, *srv_key, *srv_cert, *cli_cert_pem, *cli_key_pem;

/* token server state (guarded by lock) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int token_requests; /* POST /token received */
static int tokens_issued;  /* tok-N handed out */
static int expires_in = 3600;
static bool require_params;  /* 401 unless id/secret come as form fields */
static bool token_fail;	     /* 400 invalid_client */
static char last_form[2048]; /* last /token body */
static char last_basic[256]; /* last /token Authorization header */
static const char *want_secret = "s3cr%t";

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ct,
			     const char *body)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", ct);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

struct upload {
	char data[2048];
	size_t len;
};

static enum MHD_Result token(struct MHD_Connection *conn, const char *form)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	/* "c%2Fid:s3cr%25t" in base64: the id and secret are form-encoded
	 * before Basic (RFC 6749 2.3.1), as x/oauth2 does */
	const char *want_basic = "Basic YyUyRmlkOnMzY3IlMjV0";
	char body[256], want_field[64];
	bool ok;

	pthread_mutex_lock(&lock);
	token_requests++;
	snprintf(last_form, sizeof(last_form), "%s", form);
	snprintf(last_basic, sizeof(last_basic), "%s", auth ? auth : "");
	snprintf(want_field, sizeof(want_field), "client_secret=%s",
		 !strcmp(want_secret, "s3cr%t") ? "s3cr%25t" : want_secret);
	ok = require_params ? strstr(form, "client_id=c%2Fid") && strstr(form, want_field)
			    : auth && !strcmp(auth, !strcmp(want_secret, "s3cr%t")
							? want_basic
							: "Basic YyUyRmlkOm5ldy1zZWNyZXQ=");
	if (token_fail || !ok) {
		pthread_mutex_unlock(&lock);
		return reply(conn, token_fail ? 400 : 401, "application/json",
			     "{\"error\":\"invalid_client\"}");
	}
	snprintf(body, sizeof(body),
		 "{\"access_token\":\"tok-%d\",\"token_type\":\"bearer\",\"expires_in\":%d}",
		 ++tokens_issued, expires_in);
	pthread_mutex_unlock(&lock);
	return reply(conn, 200, "application/json", body);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	struct upload *u = *con_cls;
	enum MHD_Result r;

	if (!u) {
		*con_cls = calloc(1, sizeof(*u));
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		if (n > sizeof(u->data) - 1 - u->len)
			n = sizeof(u->data) - 1 - u->len;
		memcpy(u->data + u->len, upload_data, n);
		u->len += n;
		*upload_size = 0;
		return MHD_YES;
	}
	*con_cls = NULL;
	if (!strncmp(url, "http://", 7)) { /* used as a proxy */
		char buf[256];

		snprintf(buf, sizeof(buf), "proxied %s", url);
		r = reply(conn, 200, "text/plain", buf);
	} else if (!strcmp(url, "/token") && !strcmp(method, "POST")) {
		r = token(conn, u->data);
	} else {
		const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		const char *x = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Custom");
		char buf[512];

		snprintf(buf, sizeof(buf), "auth=%s x=%s", a ? a : "-", x ? x : "-");
		r = reply(conn, 200, "text/plain", buf);
	}
	free(u);
	return r;
}

static int make_certs(void)
{
	char path[256];

	if (!mkdtemp(dir) || http_test_make_certs(dir, true))
		return -1;
#define LOAD(var, file)                                                                            \
	do {                                                                                       \
		snprintf(path, sizeof(path), "%s/" file, dir);                                     \
		var = http_test_slurp(path);                                                       \
	} while (0)
	LOAD(ca_pem, "ca.crt");
	LOAD(srv_key, "srv.key");
	LOAD(srv_cert, "srv.crt");
	LOAD(cli_cert_pem, "cli.crt");
	LOAD(cli_key_pem, "cli.key");
#undef LOAD
	return *ca_pem && *srv_key && *cli_key_pem ? 0 : -1;
}

static int suite_init(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv =
	    MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
			     NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!srv)
		return 1;
	port = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
	if (make_certs())
		return 1;
	/* a TLS server that speaks at most TLS 1.2 */
	tls12_srv = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
	    NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_KEY, srv_key,
	    MHD_OPTION_HTTPS_MEM_CERT, srv_cert, MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-TLS1.3",
	    MHD_OPTION_END);
	if (tls12_srv)
		tls12_port = MHD_get_daemon_info(tls12_srv, MHD_DAEMON_INFO_BIND_PORT)->port;
	return 0;
}

static int suite_clean(void)
{
	MHD_stop_daemon(srv);
	if (tls12_srv)
		MHD_stop_daemon(tls12_srv);
	http_test_rm_dir(dir);
	free(ca_pem);
	free(srv_key);
	free(srv_cert);
	free(cli_cert_pem);
	free(cli_key_pem);
	return 0;
}

struct result {
	bool done;
	int error;
	long status;
	char body[512];
	char msg[512];
};

static void on_done(void *arg, const struct starling_http_response *r)
{
	struct result *res = arg;

	res->done = true;
	res->error = r->error;
	res->status = r->status;
	snprintf(res->msg, sizeof(res->msg), "%s", r->error_msg);
	snprintf(res->body, sizeof(res->body), "%s", r->body ? (const char *)r->body : "");
}

/* GET url with auth; waits on the completion with a 10 s deadline. */
static void get(const char *url, const struct starling_http_auth *auth, struct result *res)
{
	struct starling_http_client *c;
	struct starling_http_request req = {
	    .url = url, .auth = auth, .timeout_ms = 5000, .done = on_done, .arg = res};
	int loops = 0;

	memset(res, 0, sizeof(*res));
	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	CU_ASSERT_EQUAL_FATAL(starling_http_submit(c, &req), 0);
	while (!res->done && loops++ < 200)
		starling_http_run(c, 50);
	CU_ASSERT_TRUE(res->done);
	starling_http_client_free(c);
}

static void get_path(const char *path, const struct starling_http_auth *auth, struct result *res)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", base, path);
	get(url, auth, res);
}

static int counter(int *v)
{
	int n;

	pthread_mutex_lock(&lock);
	n = *v;
	pthread_mutex_unlock(&lock);
	return n;
}

static struct starling_http_auth *oauth2_auth(const char *secret, const char *secret_file)
{
	char token_url[128], err[256];
	static const char *const scopes[] = {"read", "write"};
	static const struct starling_label params[] = {{"audience", "starling test"}};
	struct starling_http_oauth2_settings o = {
	    .client_id = "c/id",
	    .client_secret = secret,
	    .client_secret_file = secret_file,
	    .token_url = token_url,
	    .scopes = scopes,
	    .n_scopes = 2,
	    .endpoint_params = params,
	    .n_endpoint_params = 1,
	};
	struct starling_http_auth_settings s = {.follow_redirects = true, .oauth2 = &o};
	struct starling_http_auth *a = NULL;

	snprintf(token_url, sizeof(token_url), "%s/token", base);
	CU_ASSERT_EQUAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	return a;
}

static void reset_server(int expires, bool params, bool fail)
{
	pthread_mutex_lock(&lock);
	token_requests = 0;
	expires_in = expires;
	require_params = params;
	token_fail = fail;
	want_secret = "s3cr%t";
	pthread_mutex_unlock(&lock);
}

/* The token is fetched once and reused while valid (x/oauth2
 * ReuseTokenSource); the request form is grant_type=client_credentials with
 * the scopes space-joined and the endpoint params
 * (x/oauth2/clientcredentials/clientcredentials.go Token). */
static void test_oauth2_cache(void)
{
	struct starling_http_auth *a;
	struct result r;
	int first;

	reset_server(3600, false, false);
	a = oauth2_auth("s3cr%t", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=Bearer tok-"));
	first = counter(&tokens_issued);
	CU_ASSERT_PTR_NOT_NULL(strstr(last_form, "grant_type=client_credentials"));
	CU_ASSERT_PTR_NOT_NULL(strstr(last_form, "scope=read%20write"));
	CU_ASSERT_PTR_NOT_NULL(strstr(last_form, "audience=starling%20test"));
	CU_ASSERT_PTR_NULL(strstr(last_form, "client_secret")); /* sent in the header */
	for (int i = 0; i < 3; i++) {
		char want[32];

		get_path("/echo", a, &r);
		snprintf(want, sizeof(want), "auth=Bearer tok-%d ", first);
		CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
	}
	CU_ASSERT_EQUAL(counter(&token_requests), 1);
	starling_http_auth_free(a);
}

/* A token is refreshed when less than 10 s of it remain (x/oauth2
 * token.go expiryDelta): with expires_in = 5 every request gets a new one. */
static void test_oauth2_refresh(void)
{
	struct starling_http_auth *a;
	struct result r;

	reset_server(5, false, false);
	a = oauth2_auth("s3cr%t", NULL);
	for (int i = 0; i < 3; i++) {
		get_path("/echo", a, &r);
		CU_ASSERT_EQUAL(r.error, 0);
	}
	CU_ASSERT_EQUAL(counter(&token_requests), 3);
	starling_http_auth_free(a);
}

/* Auth-style auto-detection (x/oauth2 internal/token.go): Basic first; a
 * server that refuses it gets the id and secret as form fields, and the
 * working style is kept for the next token. */
static void test_oauth2_params_style(void)
{
	struct starling_http_auth *a;
	struct result r;

	reset_server(5, true, false);
	a = oauth2_auth("s3cr%t", NULL);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=Bearer tok-"));
	CU_ASSERT_EQUAL(counter(&token_requests), 2); /* header try, then params */
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(counter(&token_requests), 3); /* params straight away */
	CU_ASSERT_EQUAL(last_basic[0], 0);
	starling_http_auth_free(a);
}

/* A changed client_secret_file gets a new token (Prometheus rebuilds the
 * token source when the secret changes). */
static void test_oauth2_secret_file(void)
{
	char path[] = "/tmp/starling-oauth2-secret-XXXXXX";
	struct starling_http_auth *a;
	struct result r;
	FILE *f;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "s3cr%t\n", 7), 7);
	close(fd);
	reset_server(3600, false, false);
	a = oauth2_auth(NULL, path);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(counter(&token_requests), 1);
	f = fopen(path, "w");
	fputs("new-secret", f);
	fclose(f);
	pthread_mutex_lock(&lock);
	want_secret = "new-secret";
	pthread_mutex_unlock(&lock);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(counter(&token_requests), 2);
	unlink(path);
	starling_http_auth_free(a);
}

/* A failing token endpoint fails the request through done() with a message
 * naming the endpoint and the OAuth error, never the secret; the failure is
 * remembered briefly instead of blocking every request on the endpoint. */
static void test_oauth2_failure(void)
{
	struct starling_http_auth *a;
	struct result r;
	char err[256];
	struct starling_http_oauth2_settings o = {.client_id = "c"};
	struct starling_http_auth_settings s = {.oauth2 = &o, .bearer_token = "t"};

	reset_server(3600, false, true);
	a = oauth2_auth("s3cr%t", NULL);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, -EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "/token answered HTTP 400 (error: invalid_client)"));
	CU_ASSERT_PTR_NULL(strstr(r.msg, "s3cr"));
	CU_ASSERT_EQUAL(counter(&token_requests), 2); /* both auth styles tried */
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, -EACCES);
	CU_ASSERT_EQUAL(counter(&token_requests), 2); /* held, not retried */
	starling_http_auth_free(a);

	/* unreachable token endpoint */
	o.token_url = "http://127.0.0.1:1/token";
	s.bearer_token = NULL;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "oauth2: token request to http://127.0.0.1:1/token"));
	starling_http_auth_free(a);

	/* config errors */
	s.bearer_token = "t";
	CU_ASSERT_EQUAL(starling_http_auth_new(&s, &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "oauth2"));
	s.bearer_token = NULL;
	o.token_url = NULL;
	CU_ASSERT_EQUAL(starling_http_auth_new(&s, &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "token_url"));
}

static int auth_from(const char *cfg, struct starling_http_auth **a, char *err, size_t errlen)
{
	return http_test_auth_from(cfg, a, err, errlen);
}

/* The Alloy-named blocks through the config schema: oauth2 with scopes and
 * endpoint_params, http_headers; reserved headers and the proxy rules of
 * prometheus/common (ProxyConfig.Validate) are config errors. */
static void test_from_config(void)
{
	struct starling_http_auth *a;
	struct result r;
	char cfg[1024], err[256];

	reset_server(3600, false, false);
	snprintf(cfg, sizeof(cfg),
		 "oauth2 = { client_id = \"c/id\"; client_secret = \"s3cr%%t\";\n"
		 "  token_url = \"%s/token\"; scopes = [\"a\", \"b\"];\n"
		 "  endpoint_params = { resource = \"r1\"; }; };\n"
		 "http_headers = { X-Custom = \"hello\"; };",
		 base);
	CU_ASSERT_EQUAL_FATAL(auth_from(cfg, &a, err, sizeof(err)), 0);
	get_path("/echo", a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=Bearer tok-"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "x=hello"));
	CU_ASSERT_PTR_NOT_NULL(strstr(last_form, "scope=a%20b"));
	CU_ASSERT_PTR_NOT_NULL(strstr(last_form, "resource=r1"));
	starling_http_auth_free(a);

	CU_ASSERT_EQUAL(
	    auth_from("http_headers = { Authorization = \"x\"; };", &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "header Authorization is reserved"));
	CU_ASSERT_EQUAL(auth_from("no_proxy = \"a.example\";", &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "proxy_url must also be configured"));
	CU_ASSERT_EQUAL(auth_from("proxy_from_environment = true; proxy_url = \"http://p:1\";", &a,
				  err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_EQUAL(auth_from("proxy_connect_header = { X-A = \"b\"; };", &a, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "proxy_connect_header"));
	CU_ASSERT_EQUAL(
	    auth_from("tls_config = { min_version = \"TLS9\"; };", &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "min_version"));
	CU_ASSERT_EQUAL(
	    auth_from("tls_config = { ca_pem = \"x\"; ca_file = \"/y\"; };", &a, err, sizeof(err)),
	    -EINVAL);
	CU_ASSERT_EQUAL(auth_from("tls_config = { cert_pem = \"x\"; };", &a, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_EQUAL(auth_from("oauth2 = { client_id = \"c\"; token_url = \"http://t\"; };\n"
				  "basic_auth = { username = \"u\"; };",
				  &a, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most one"));
}

/* no_proxy keeps matching hosts away from proxy_url; proxy_from_environment
 * takes HTTP_PROXY (read when the profile is built, like Go's
 * httpproxy.FromEnvironment). The test server plays the proxy. */
static void test_proxy_args(void)
{
	struct starling_http_auth_settings s = {.follow_redirects = true, .proxy_url = base};
	struct starling_http_auth *a;
	struct result r;
	char err[256];

	s.no_proxy = "other.invalid";
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get("http://target.invalid:9100/metrics", a, &r);
	CU_ASSERT_STRING_EQUAL(r.body, "proxied http://target.invalid:9100/metrics");
	starling_http_auth_free(a);
	s.no_proxy = "target.invalid";
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get("http://target.invalid:9100/metrics", a, &r);
	CU_ASSERT_EQUAL(r.error, -EHOSTUNREACH); /* direct: the name does not resolve */
	starling_http_auth_free(a);

	memset(&s, 0, sizeof(s));
	s.proxy_from_environment = true;
	setenv("HTTP_PROXY", base, 1);
	setenv("NO_PROXY", "skip.invalid", 1);
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	unsetenv("HTTP_PROXY");
	unsetenv("NO_PROXY");
	get("http://env-target.invalid/x", a, &r);
	CU_ASSERT_STRING_EQUAL(r.body, "proxied http://env-target.invalid/x");
	get("http://skip.invalid/x", a, &r);
	CU_ASSERT_EQUAL(r.error, -EHOSTUNREACH);
	/* loopback is never proxied (httpproxy useProxy) */
	get_path("/echo", a, &r);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=- x=-"));
	starling_http_auth_free(a);
}

/* A proxy that records the CONNECT request and refuses it. */
struct connect_proxy {
	int fd;
	unsigned short port;
	char seen[2048];
};

static void *proxy_main(void *arg)
{
	struct connect_proxy *p = arg;
	int c = accept(p->fd, NULL, NULL);
	size_t len = 0;
	ssize_t n;
	static const char no[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";

	if (c < 0)
		return NULL;
	while (len < sizeof(p->seen) - 1 && !strstr(p->seen, "\r\n\r\n")) {
		n = read(c, p->seen + len, sizeof(p->seen) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		p->seen[len] = 0;
	}
	if (write(c, no, sizeof(no) - 1) < 0)
		perror("proxy write");
	close(c);
	return NULL;
}

/* proxy_connect_header goes to the proxy in CONNECT, http_headers do not. */
static void test_proxy_connect_header(void)
{
	struct connect_proxy p = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct starling_label ph[] = {{"X-Proxy-Token", "pt-1"}}, hh[] = {{"X-Custom", "origin"}};
	struct starling_http_auth_settings s = {.proxy_url = NULL,
						.proxy_connect_headers = ph,
						.n_proxy_connect_headers = 1,
						.http_headers = hh,
						.n_http_headers = 1};
	struct starling_http_auth *a;
	char purl[64], err[256];
	struct result r;
	pthread_t t;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p.fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(p.fd >= 0 && !bind(p.fd, (struct sockaddr *)&sa, sizeof(sa)) &&
			!listen(p.fd, 1) && !getsockname(p.fd, (struct sockaddr *)&sa, &sl));
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	s.proxy_url = purl;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	pthread_create(&t, NULL, proxy_main, &p);
	get("https://tls-target.invalid:8443/", a, &r);
	pthread_join(t, NULL);
	close(p.fd);
	CU_ASSERT_NOT_EQUAL(r.error, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(p.seen, "CONNECT tls-target.invalid:8443 HTTP/1.1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.seen, "X-Proxy-Token: pt-1\r\n"));
	CU_ASSERT_PTR_NULL(strstr(p.seen, "X-Custom"));
	starling_http_auth_free(a);
}

/* ca_pem verifies the server; min_version TLS13 refuses a TLS 1.2-only
 * server that TLS12 accepts. */
static void test_tls_pem_min_version(void)
{
	struct starling_http_auth_settings s = {.ca_pem = NULL, .server_name = "starling.test"};
	struct starling_http_auth *a;
	struct result r;
	char url[128], err[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(tls12_srv);
	s.ca_pem = ca_pem;
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/echo", tls12_port);
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "auth=-"));
	starling_http_auth_free(a);
	s.min_version = "TLS13";
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_EQUAL(r.error, -EPROTO);
	starling_http_auth_free(a);
	s.min_version = "TLS12";
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	starling_http_auth_free(a);
	/* without the CA the certificate does not verify */
	s.ca_pem = NULL;
	s.min_version = NULL;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_EQUAL(r.error, -EPROTO);
	starling_http_auth_free(a);
}

/* Start `openssl s_server -Verify 1` (refuses a client without a
 * certificate signed by the CA) on a free loopback port; returns its pid
 * (-1: none) and the port. The port is picked by binding to 0 and closed
 * before s_server binds it: another process may take it in between, so
 * "listening" counts only while our s_server is alive (it exits when its
 * bind fails), and a new port is tried then. */
static pid_t start_s_server(const char *cert, const char *key, const char *ca, int *port)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char accept_arg[32];
		int64_t end;
		pid_t pid;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
			close(fd);
			continue;
		}
		*port = ntohs(sa.sin_port);
		close(fd);
		snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", *port);
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			if (!freopen("/dev/null", "w", stdout) ||
			    !freopen("/dev/null", "w", stderr))
				_exit(127);
			execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept_arg,
			       "-cert", cert, "-key", key, "-CAfile", ca, "-Verify", "1", "-www",
			       (char *)NULL);
			_exit(127);
		}
		/* wait (30 s at most) until it listens, or exits */
		end = mock_wait_now_ms() + 30000;
		for (;;) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			bool up = !connect(c, (struct sockaddr *)&sa, sizeof(sa));

			close(c);
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break; /* exited: the port was taken, or no openssl */
			if (up)
				return pid;
			if (!mock_wait_step(end)) {
				kill(pid, SIGTERM);
				waitpid(pid, NULL, 0);
				return -1;
			}
		}
	}
	return -1;
}

/* cert_pem/key_pem against `openssl s_server -Verify 1`, which refuses a
 * client without a certificate signed by the CA. */
static void test_client_cert_pem(void)
{
	char url[128], err[256], cert[300], key[300], ca[300];
	struct starling_http_auth_settings s = {.ca_pem = ca_pem, .server_name = "starling.test"};
	struct starling_http_auth *a;
	struct result r;
	int sport = 0;
	pid_t pid;

	snprintf(cert, sizeof(cert), "%s/srv.crt", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	pid = start_s_server(cert, key, ca, &sport);
	CU_ASSERT_FATAL(pid > 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", sport);
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_NOT_EQUAL(r.error, 0); /* no client certificate */
	starling_http_auth_free(a);
	s.cert_pem = cli_cert_pem;
	s.key_pem = cli_key_pem;
	CU_ASSERT_EQUAL_FATAL(starling_http_auth_new(&s, &a, err, sizeof(err)), 0);
	get(url, a, &r);
	CU_ASSERT_EQUAL(r.error, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	starling_http_auth_free(a);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("http_args", suite_init, suite_clean);
	CU_add_test(s, "oauth2_token_cached", test_oauth2_cache);
	CU_add_test(s, "oauth2_token_refreshed", test_oauth2_refresh);
	CU_add_test(s, "oauth2_auth_style_params", test_oauth2_params_style);
	CU_add_test(s, "oauth2_secret_file_change", test_oauth2_secret_file);
	CU_add_test(s, "oauth2_failures", test_oauth2_failure);
	CU_add_test(s, "from_config", test_from_config);
	CU_add_test(s, "no_proxy_proxy_from_environment", test_proxy_args);
	CU_add_test(s, "proxy_connect_header", test_proxy_connect_header);
	CU_add_test(s, "tls_ca_pem_min_version", test_tls_pem_min_version);
	CU_add_test(s, "tls_client_cert_pem", test_client_cert_pem);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
