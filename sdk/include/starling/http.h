/*
 * Starling SDK HTTP client (static SDK library), on libcurl's multi interface.
 *
 * One struct starling_http_client owns one curl multi handle, its connection
 * cache (split by host into shards, see sdk/lib/http.c) and a pool of easy
 * handles, each keeping its options while requests differ only in the URL.
 * Any thread may submit requests; exactly one thread at a time drives the
 * client with starling_http_run(), and completion callbacks run on that
 * thread. A scrape component with 1,000 targets uses one
 * client and one driving thread: it submits each target's request when due and
 * calls starling_http_run() in its loop.
 *
 * Responses: the body is handed over whole, already gunzipped when the server
 * sent Content-Encoding: gzip (whole-buffer inflate with libdeflate, zlib
 * streaming as a fallback), in a buffer the client reuses. The body size limit
 * applies to the decompressed size, so a gzip bomb fails with -EFBIG instead of
 * eating memory.
 *
 * Authentication, TLS and proxy settings live in a struct starling_http_auth
 * ("auth profile"), built once from the component's config (the
 * STARLING_HTTP_CONFIG_KEYS schema fragment, Alloy's argument names) and shared
 * by all requests of the component. bearer_token_file, password_file and
 * authorization.credentials_file are
 * re-read when the file changes (mtime/size/inode), as Prometheus does.
 *
 * All functions: 0 or a negative errno. Since ABI 1.0.
 */
#ifndef STARLING_HTTP_H
#define STARLING_HTTP_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Auth / TLS / proxy profile.                                               */

struct starling_http_auth_settings;

/* OAuth 2.0 client-credentials flow (Prometheus/Alloy `oauth2` block): a
 * token is fetched from token_url, cached until 10 s before it expires
 * (golang.org/x/oauth2's expiryDelta) and sent as
 * "Authorization: <token_type> <access_token>". Since ABI 1.1. */
struct starling_http_oauth2_settings {
	const char *client_id;
	const char *client_secret;
	const char *client_secret_file; /* re-read when it changes (new token) */
	const char *token_url;		/* required */
	const char *const *scopes;	/* sent space-joined as `scope` */
	size_t n_scopes;
	const struct starling_label *endpoint_params; /* extra form fields */
	size_t n_endpoint_params;
	/* TLS and proxy settings for the token request: only the tls and
	 * proxy members of this struct are used (oauth2 > tls_config etc.). */
	const struct starling_http_auth_settings *conn;
};

/* Plain settings, e.g. filled by hand in tests. Every string may be NULL.
 * Only one of basic auth / bearer_token / bearer_token_file / authorization
 * / oauth2 may be set. */
struct starling_http_auth_settings {
	const char *username;	   /* basic_auth.username */
	const char *password;	   /* basic_auth.password */
	const char *password_file; /* basic_auth.password_file */
	const char *bearer_token;
	const char *bearer_token_file;
	const char *ca_file;	   /* tls_config.ca_file */
	const char *cert_file;	   /* tls_config.cert_file */
	const char *key_file;	   /* tls_config.key_file */
	const char *server_name;   /* tls_config.server_name: SNI + verified name */
	bool insecure_skip_verify; /* tls_config.insecure_skip_verify */
	const char *proxy_url;
	bool follow_redirects; /* Alloy default true (max 10 hops) */
	bool enable_http2;     /* false: HTTP/1.1 only */
	/* authorization { type; credentials; credentials_file; }: sends
	 * "Authorization: <type> <credentials>", type defaulting to Bearer. */
	const char *authorization_type;
	const char *authorization_credentials;
	const char *authorization_credentials_file;
	/* --- since ABI 1.1 ------------------------------------------------ */
	const char *ca_pem;	 /* tls_config.ca_pem (exclusive with ca_file) */
	const char *cert_pem;	 /* tls_config.cert_pem (exclusive with cert_file) */
	const char *key_pem;	 /* tls_config.key_pem (exclusive with key_file) */
	const char *min_version; /* tls_config.min_version: TLS10..TLS13 */
	/* http_headers: n_http_headers name/value pairs sent with every
	 * request (names Prometheus reserves, e.g. Authorization, refused). */
	const struct starling_label *http_headers;
	size_t n_http_headers;
	const char *no_proxy;	     /* needs proxy_url */
	bool proxy_from_environment; /* HTTP(S)_PROXY / NO_PROXY, read once */
	/* proxy_connect_header: sent to the proxy in CONNECT (https URLs). */
	const struct starling_label *proxy_connect_headers;
	size_t n_proxy_connect_headers;
	const struct starling_http_oauth2_settings *oauth2; /* NULL: none */
};

/* Opaque, immutable after creation apart from the cached token/password file
 * contents (guarded internally). Safe to share between threads and clients. */
struct starling_http_auth;

/* Validate and copy `s` (strings are duplicated: the caller keeps ownership of
 * its own). On error returns -EINVAL and writes a message to err. The result
 * is freed with starling_http_auth_free(). Since ABI 1.0. */
int starling_http_auth_new(const struct starling_http_auth_settings *s,
			   struct starling_http_auth **out, char *err, size_t errlen);

/* Build a profile from a component config node holding the keys of
 * STARLING_HTTP_CONFIG_KEYS (node = the instance config or e.g. one `endpoint`
 * element). Absent keys take the schema defaults. Error messages include the
 * config position. Since ABI 1.0. */
int starling_http_auth_from_config(const struct starling_host_api *api, const starling_config *node,
				   struct starling_http_auth **out, char *err, size_t errlen);

/* NULL is allowed. Requests using it must have completed. Since ABI 1.0. */
void starling_http_auth_free(struct starling_http_auth *a);

/* Schema fragment for the auth/TLS/proxy keys, with Alloy's names:
 *   basic_auth = { username; password; password_file; };
 *   bearer_token; bearer_token_file;
 *   authorization = { type ("Bearer"); credentials; credentials_file; };
 *   oauth2 = { client_id; client_secret; client_secret_file; token_url;
 *              scopes; endpoint_params; tls_config; proxy_url; no_proxy;
 *              proxy_from_environment; proxy_connect_header; };
 *   tls_config = { ca_file; ca_pem; cert_file; cert_pem; key_file; key_pem;
 *                  server_name; insecure_skip_verify; min_version; };
 *   http_headers = { Name = "value"; ... };
 *   proxy_url; no_proxy; proxy_from_environment (false);
 *   proxy_connect_header = { Name = "value"; ... };
 *   follow_redirects (true); enable_http2 (false);
 * Put STARLING_HTTP_CONFIG_KEYS inside a component's key array:
 *   static const struct starling_config_key keys[] = {
 *       { "url", STARLING_CFG_STRING, true, ... },
 *       STARLING_HTTP_CONFIG_KEYS,
 *       { NULL } };
 */
extern const struct starling_config_key starling_http_basic_auth_keys[];
extern const struct starling_config_key starling_http_tls_config_keys[];
extern const struct starling_config_key starling_http_authorization_keys[];
extern const struct starling_config_key starling_http_oauth2_keys[]; /* since ABI 1.1 */
/* clang-format off */
#define STARLING_HTTP_CONFIG_KEYS                                                        \
	{ "basic_auth", STARLING_CFG_GROUP, false, NULL, "HTTP basic authentication",      \
	  starling_http_basic_auth_keys, 0 },                                               \
	{ "bearer_token", STARLING_CFG_STRING, false, NULL,                                \
	  "Bearer token sent in the Authorization header", NULL, 0 },                       \
	{ "bearer_token_file", STARLING_CFG_STRING, false, NULL,                           \
	  "File holding the bearer token (re-read when it changes)", NULL, 0 },             \
	{ "authorization", STARLING_CFG_GROUP, false, NULL,                                \
	  "Authorization header with a type and credentials",                               \
	  starling_http_authorization_keys, 0 },                                            \
	{ "tls_config", STARLING_CFG_GROUP, false, NULL, "TLS settings",                   \
	  starling_http_tls_config_keys, 0 },                                               \
	{ "oauth2", STARLING_CFG_GROUP, false, NULL,                                       \
	  "OAuth 2.0 client credentials", starling_http_oauth2_keys, 0 },                   \
	{ "http_headers", STARLING_CFG_MAP, false, NULL,                                   \
	  "Headers sent with every request", NULL, 0 },                                     \
	{ "proxy_url", STARLING_CFG_STRING, false, NULL, "HTTP proxy URL", NULL, 0 },      \
	{ "no_proxy", STARLING_CFG_STRING, false, NULL,                                    \
	  "Comma-separated hosts, domains, IPs or CIDRs reached without the proxy",         \
	  NULL, 0 },                                                                        \
	{ "proxy_from_environment", STARLING_CFG_BOOL, false, "false",                     \
	  "Use HTTP_PROXY, HTTPS_PROXY and NO_PROXY", NULL, 0 },                            \
	{ "proxy_connect_header", STARLING_CFG_MAP, false, NULL,                           \
	  "Headers sent to the proxy with CONNECT", NULL, 0 },                              \
	{ "follow_redirects", STARLING_CFG_BOOL, false, "true",                             \
	  "Follow HTTP 3xx redirects (at most 10)", NULL, 0 },                              \
	{ "enable_http2", STARLING_CFG_BOOL, false, "false", "Allow HTTP/2", NULL, 0 }
/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Requests and responses.                                                   */

struct starling_http_response;
typedef void (*starling_http_done_fn)(void *arg, const struct starling_http_response *resp);

struct starling_http_request {
	const char *url;    /* http:// or https:// */
	const char *method; /* NULL = "GET" (or "POST" when body != NULL) */
	/* Extra headers as "Name: value" strings; copied at submit. */
	const char *const *headers;
	size_t n_headers;
	/* Request body. NOT copied: must stay valid until done() is called. */
	const void *body;
	size_t body_len;
	int64_t timeout_ms;	/* whole transfer; 0 = none */
	size_t body_limit;	/* max decompressed response body; 0 = none */
	bool accept_gzip;	/* send Accept-Encoding: gzip and inflate */
	const char *user_agent; /* NULL = "Starling/<version>" */
	/* May be NULL. Must outlive the request. */
	const struct starling_http_auth *auth;
	starling_http_done_fn done; /* required */
	void *arg;
	/* Optional streaming (since ABI 1.1): when set, the body of a 2xx response is handed
	 * over in chunks as it arrives (not gunzipped: leave accept_gzip off)
	 * and done() gets an empty body; other statuses are collected as
	 * usual. A non-zero return aborts the transfer (done() gets
	 * -ECANCELED). Called on the run() thread. */
	int (*on_data)(void *arg, const uint8_t *data, size_t len);
};

struct starling_http_response {
	/* 0 when an HTTP response was received (any status), else a negative
	 * errno: -ETIMEDOUT (timeout), -EFBIG (body over body_limit, also after
	 * decompression), -ELOOP (too many redirects), -ECONNREFUSED,
	 * -EHOSTUNREACH (name resolution), -ECONNRESET (connection lost or
	 * empty reply), -EBADMSG (corrupt gzip), -EPROTO (TLS/protocol),
	 * -ECANCELED (client freed), -EIO (other). */
	int error;
	const char *error_msg; /* human-readable, "" when error == 0 */
	long status;	       /* HTTP status, 0 if none */
	/* The (decompressed) body, followed by a NUL byte not counted in
	 * body_len; owned by the client, valid only during the callback (the
	 * buffer is reused). Never NULL when error == 0. */
	const uint8_t *body;
	size_t body_len;
	size_t wire_len;	  /* bytes received before inflating */
	const char *content_type; /* NULL if absent; valid during callback */
	/* Retry-After in ms (delta-seconds or HTTP-date), -1 if absent. */
	int64_t retry_after_ms;
	int64_t duration_us; /* submit to completion */
};

struct starling_http_client_options {
	/* Cap on simultaneous connections to one host (0 = unlimited). */
	long max_host_connections;
	/* Cap on simultaneous transfers of the client (0 = unlimited). When
	 * set, the client keeps one connection cache (libcurl counts this cap
	 * per cache) instead of splitting it by host. */
	long max_total_connections;
};

struct starling_http_client;

/* Create a client (opts may be NULL). Not thread-affine until first run().
 * Since ABI 1.0. */
int starling_http_client_new(const struct starling_http_client_options *opts,
			     struct starling_http_client **out);

/* Abort every pending request (each done() gets -ECANCELED, on the calling
 * thread) and free the client. Must not run concurrently with run(). NULL ok.
 * Since ABI 1.0. */
void starling_http_client_free(struct starling_http_client *c);

/* Queue a request. Thread-safe; wakes a run() blocked in another thread.
 * Returns -EINVAL (no url/done), -ENOMEM, or the negative errno of reading
 * the auth profile's password/token/credentials file (then done() is not
 * called). The request struct itself may be
 * reused after return (headers/url are copied; body is not). done() is
 * called exactly once, from run() (or client_free()), never from submit().
 * Since ABI 1.0. */
int starling_http_submit(struct starling_http_client *c, const struct starling_http_request *req);

/* Drive transfers for up to timeout_ms (returns early after at least one
 * completion or a wakeup). Completion callbacks run here, on the calling
 * thread; they may call submit(). Only one thread may run a client at a time.
 * Returns the number of requests completed, or a negative errno. Since ABI 1.0. */
int starling_http_run(struct starling_http_client *c, int timeout_ms);

/* Make a blocked run() return soon. Thread-safe, async-signal-unsafe. */
void starling_http_wakeup(struct starling_http_client *c);

/* Requests submitted but not completed. Thread-safe. Since ABI 1.0. */
size_t starling_http_pending(struct starling_http_client *c);

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

/* Inflate a whole gzip body into *buf (grown with realloc as needed; the
 * caller owns it and may pass it back for reuse). limit = max output bytes,
 * 0 = none. -EFBIG when the output would exceed limit, -EBADMSG if corrupt.
 * Thread-safe (uses no shared state). Since ABI 1.0. */
int starling_http_gunzip(const uint8_t *in, size_t in_len, size_t limit, uint8_t **buf, size_t *cap,
			 size_t *out_len);

/* Parse a Retry-After value (delta-seconds or IMF-fixdate) into ms from now
 * (now_ms = current wall clock); -1 if unparsable. Since ABI 1.0. */
int64_t starling_http_parse_retry_after(const char *value, int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif /* STARLING_HTTP_H */
