/* Private to the SDK HTTP client files (sdk/lib/http*.c). */
#ifndef STARLING_HTTP_INTERNAL_H
#define STARLING_HTTP_INTERNAL_H

#include <starling/http.h>

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>

struct file_cache {
	char *value;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct http_oauth2;

struct starling_http_auth {
	struct starling_http_auth_settings s; /* strings owned; authorization
					       * credentials are kept in
					       * bearer_token(_file); the
					       * header arrays and oauth2 are
					       * not kept here (below) */
	char *auth_type;		      /* "Bearer" or authorization.type */
	long ssl_version;		      /* CURL_SSLVERSION_* for min_version */
	char **headers;			      /* http_headers as "Name: value" */
	size_t n_headers;
	char **proxy_headers; /* proxy_connect_header as "Name: value" */
	size_t n_proxy_headers;
	/* proxy_from_environment: read once at creation, like Go's
	 * httpproxy.FromEnvironment; NULL when unset */
	char *env_http_proxy, *env_https_proxy, *env_no_proxy;
	struct http_oauth2 *oauth2; /* NULL: no oauth2 */
	/* Unique per profile (never reused), and whether every option and
	 * header the profile puts on an easy handle is the same for each
	 * request (no password/token file, oauth2 or server_name): then an
	 * easy handle set up for it keeps its options for the next request. */
	uint64_t id;
	bool fixed;
	pthread_mutex_t lock; /* the file caches */
	struct file_cache token;
	struct file_cache password;
};

/* Current password and bearer token (either may come back NULL), freshly
 * read from their files when those changed. Caller frees both. */
int http_auth_secrets(const struct starling_http_auth *a, char **password, char **token);

/* Read a secret file when it changed since the last read (trailing
 * whitespace trimmed). Caller serialises calls on one cache. */
int http_file_cache_refresh(struct file_cache *fc, const char *path);

/* Connection settings of a profile (TLS, proxy, server_name) applied to an
 * easy handle for `url`. Lists built here are appended to *hdrs (request
 * headers), *connect_to and *proxy_hdrs, which the caller frees after the
 * transfer; *url_out is set to a replacement URL (server_name) the caller
 * frees, or left NULL. */
int http_apply_conn(CURL *e, const struct starling_http_auth *a, const char *url,
		    struct curl_slist **hdrs, struct curl_slist **connect_to,
		    struct curl_slist **proxy_hdrs, char **url_out);

/* OAuth 2.0 (http_oauth2.c). */
int http_oauth2_new(const struct starling_http_oauth2_settings *s, struct http_oauth2 **out,
		    char *err, size_t errlen);
void http_oauth2_free(struct http_oauth2 *o);
/* A valid "Authorization: <type> <token>" header line (caller frees and
 * wipes), fetching a token when none is cached or it is about to expire.
 * On failure a negative errno and a message without secrets in err.
 * Blocks for at most timeout_ms (0: 30 s) while fetching. Thread-safe. */
/* Read a token endpoint's answer (status, body; the body is wiped): the
 * cached token on success. Exposed for the fuzzer. */
int http_oauth2_parse_token(struct http_oauth2 *o, long status, char *body, size_t len, char *err,
			    size_t errlen);
int http_oauth2_header(struct http_oauth2 *o, int64_t timeout_ms, char **header, char *err,
		       size_t errlen);

/* Bytes of response buffers the client keeps between requests (the
 * inflate buffer and the pooled wire buffers), for tests: after any
 * response they stay within a few MiB however large it was. */
size_t http_client_retained_bytes(struct starling_http_client *c);

/* The connection-cache shard of a host first seen at monotonic time now_us,
 * the nth (from 0) new host of that second: the second's time group (16
 * groups), and in it the nth / 32 % 16th shard. */
uint16_t http_new_host_shard(uint64_t nth, int64_t now_us);

struct libdeflate_decompressor;

/* starling_http_gunzip() with a decompressor kept by the caller (*dp, made
 * on first use; the caller frees it with libdeflate_free_decompressor()):
 * the client inflates every response with one instead of allocating ~10 KB
 * per response. */
int http_gunzip_with(struct libdeflate_decompressor **dp, const uint8_t *in, size_t in_len,
		     size_t limit, uint8_t **buf, size_t *cap, size_t *out_len);

/* Requests whose easy handle kept the options of the previous request on
 * it (only the URL set); for tests. */
size_t http_client_setups_kept(struct starling_http_client *c);

/* Connection-cache shards in use (created) by the client; for tests. */
unsigned http_client_shards_used(struct starling_http_client *c);

#endif
