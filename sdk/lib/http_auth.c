/* HTTP auth/TLS/proxy profiles and their config schema (see starling/http.h). */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const struct starling_config_key starling_http_basic_auth_keys[] = {
    {"username", STARLING_CFG_STRING, false, NULL, "Basic auth user name"},
    {"password", STARLING_CFG_STRING, false, NULL, "Basic auth password"},
    {"password_file", STARLING_CFG_STRING, false, NULL,
     "File holding the basic auth password (re-read when it changes)"},
    {NULL},
};

const struct starling_config_key starling_http_authorization_keys[] = {
    {"type", STARLING_CFG_STRING, false, "Bearer", "Authorization type, e.g. Bearer"},
    {"credentials", STARLING_CFG_STRING, false, NULL, "Secret sent after the type"},
    {"credentials_file", STARLING_CFG_STRING, false, NULL,
     "File holding the credentials (re-read when it changes)"},
    {NULL},
};

const struct starling_config_key starling_http_tls_config_keys[] = {
    {"ca_file", STARLING_CFG_STRING, false, NULL, "CA certificates (PEM) to verify the server"},
    {"ca_pem", STARLING_CFG_STRING, false, NULL, "CA certificates (PEM text)"},
    {"cert_file", STARLING_CFG_STRING, false, NULL, "Client certificate (PEM)"},
    {"cert_pem", STARLING_CFG_STRING, false, NULL, "Client certificate (PEM text)"},
    {"key_file", STARLING_CFG_STRING, false, NULL, "Client private key (PEM)"},
    {"key_pem", STARLING_CFG_STRING, false, NULL, "Client private key (PEM text)"},
    {"server_name", STARLING_CFG_STRING, false, NULL,
     "Server name for SNI and certificate verification"},
    {"insecure_skip_verify", STARLING_CFG_BOOL, false, "false",
     "Do not verify the server certificate"},
    {"min_version", STARLING_CFG_STRING, false, NULL,
     "Lowest TLS version accepted: TLS10, TLS11, TLS12 or TLS13"},
    {NULL},
};

const struct starling_config_key starling_http_oauth2_keys[] = {
    {"client_id", STARLING_CFG_STRING, false, NULL, "OAuth2 client id"},
    {"client_secret", STARLING_CFG_STRING, false, NULL, "OAuth2 client secret"},
    {"client_secret_file", STARLING_CFG_STRING, false, NULL,
     "File holding the client secret (re-read when it changes)"},
    {"token_url", STARLING_CFG_STRING, false, NULL, "Token endpoint (required)"},
    {"scopes", STARLING_CFG_STRING_LIST, false, NULL, "Scopes requested"},
    {"endpoint_params", STARLING_CFG_MAP, false, NULL, "Extra parameters of the token request"},
    {"tls_config", STARLING_CFG_GROUP, false, NULL, "TLS settings of the token request",
     starling_http_tls_config_keys},
    {"proxy_url", STARLING_CFG_STRING, false, NULL, "Proxy for the token request"},
    {"no_proxy", STARLING_CFG_STRING, false, NULL, "Hosts reached without the proxy"},
    {"proxy_from_environment", STARLING_CFG_BOOL, false, "false",
     "Use HTTP_PROXY, HTTPS_PROXY and NO_PROXY"},
    {"proxy_connect_header", STARLING_CFG_MAP, false, NULL,
     "Headers sent to the proxy with CONNECT"},
    {NULL},
};

/* Headers Prometheus refuses in http_headers (prometheus/common
 * config/headers.go reservedHeaders): set by the client itself or
 * connection-level. */
static const char *const reserved_headers[] = {
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
};

/* Longest secret read from a file; longer files are an error, not a
 * silently cut token. */
#define SECRET_MAX 16384

static char *dup_or_null(const char *s)
{
	return (s && *s) ? strdup(s) : NULL;
}

static bool set(const char *s)
{
	return s && *s;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i])
			explicit_bzero(v[i], strlen(v[i]));
		free(v[i]);
	}
	free(v);
}

/* Check header pairs and build "Name: value" lines. what = config key. */
static int header_lines(const struct starling_label *h, size_t n, bool check_reserved,
			const char *what, char ***out, char *err, size_t errlen)
{
	char **v;

	*out = NULL;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = h[i].name, *val = h[i].value ? h[i].value : "";

		if (!set(name) || name[strcspn(name, " \t\r\n:()<>@,;\\\"/[]?={}")]) {
			snprintf(err, errlen, "%s: \"%s\" is not a valid header name", what,
				 name ? name : "");
			return -EINVAL;
		}
		if (val[strcspn(val, "\r\n")]) {
			snprintf(err, errlen, "%s: the value of %s holds a line break", what, name);
			return -EINVAL;
		}
		for (size_t r = 0;
		     check_reserved && r < sizeof(reserved_headers) / sizeof(*reserved_headers);
		     r++)
			if (!strcasecmp(name, reserved_headers[r])) {
				snprintf(err, errlen, "%s: header %s is reserved", what, name);
				return -EINVAL;
			}
	}
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(h[i].name) + strlen(h[i].value ? h[i].value : "") + 3;

		v[i] = malloc(len);
		if (!v[i]) {
			free_lines(v, n);
			return -ENOMEM;
		}
		snprintf(v[i], len, "%s: %s", h[i].name, h[i].value ? h[i].value : "");
	}
	*out = v;
	return 0;
}

static const char *getenv_any(const char *upper, const char *lower)
{
	const char *v = getenv(upper);

	return set(v) ? v : getenv(lower);
}

/* The checks of prometheus/common config ProxyConfig.Validate and
 * TLSConfig.Validate. */
static int check_conn(const struct starling_http_auth_settings *s, char *err, size_t errlen)
{
	if (set(s->ca_file) && set(s->ca_pem)) {
		snprintf(err, errlen, "tls_config: at most one of ca_file and ca_pem may be set");
		return -EINVAL;
	}
	if (set(s->cert_file) && set(s->cert_pem)) {
		snprintf(err, errlen,
			 "tls_config: at most one of cert_file and cert_pem may be set");
		return -EINVAL;
	}
	if (set(s->key_file) && set(s->key_pem)) {
		snprintf(err, errlen, "tls_config: at most one of key_file and key_pem may be set");
		return -EINVAL;
	}
	if ((set(s->cert_file) || set(s->cert_pem)) != (set(s->key_file) || set(s->key_pem))) {
		snprintf(err, errlen,
			 "tls_config: cert_file and key_file must be set together (or their _pem "
			 "forms)");
		return -EINVAL;
	}
	if (set(s->proxy_url) && !strstr(s->proxy_url, "://")) {
		snprintf(err, errlen, "proxy_url \"%s\": expected scheme://host:port",
			 s->proxy_url);
		return -EINVAL;
	}
	if (set(s->no_proxy) && !set(s->proxy_url)) {
		snprintf(err, errlen,
			 "if no_proxy is configured, proxy_url must also be configured");
		return -EINVAL;
	}
	if (s->proxy_from_environment && (set(s->proxy_url) || set(s->no_proxy))) {
		snprintf(err, errlen,
			 "if proxy_from_environment is configured, proxy_url and no_proxy must not "
			 "be configured");
		return -EINVAL;
	}
	if (s->n_proxy_connect_headers && !set(s->proxy_url) && !s->proxy_from_environment) {
		snprintf(err, errlen,
			 "if proxy_connect_header is configured, proxy_url or "
			 "proxy_from_environment must also be configured");
		return -EINVAL;
	}
	return 0;
}

static int ssl_version(const char *v, long *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		long v;
	} versions[] = {
	    {"TLS10", CURL_SSLVERSION_TLSv1_0},
	    {"TLS11", CURL_SSLVERSION_TLSv1_1},
	    {"TLS12", CURL_SSLVERSION_TLSv1_2},
	    {"TLS13", CURL_SSLVERSION_TLSv1_3},
	};

	*out = CURL_SSLVERSION_DEFAULT;
	if (!set(v))
		return 0;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(v, versions[i].name)) {
			*out = versions[i].v;
			return 0;
		}
	snprintf(err, errlen,
		 "tls_config: min_version \"%s\": expected TLS10, TLS11, TLS12 or TLS13", v);
	return -EINVAL;
}

static void settings_free(struct starling_http_auth_settings *s)
{
	free((char *)s->username);
	free((char *)s->password);
	free((char *)s->password_file);
	free((char *)s->bearer_token);
	free((char *)s->bearer_token_file);
	free((char *)s->ca_file);
	free((char *)s->cert_file);
	free((char *)s->key_file);
	free((char *)s->server_name);
	free((char *)s->proxy_url);
	free((char *)s->ca_pem);
	if (s->key_pem)
		explicit_bzero((char *)s->key_pem, strlen(s->key_pem));
	free((char *)s->key_pem);
	free((char *)s->cert_pem);
	free((char *)s->no_proxy);
}

/* Profile ids (struct starling_http_auth.id). */
static atomic_uint_fast64_t next_auth_id;

int starling_http_auth_new(const struct starling_http_auth_settings *s,
			   struct starling_http_auth **out, char *err, size_t errlen)
{
	struct starling_http_auth *a;
	bool basic = (s->username && *s->username) || (s->password && *s->password) ||
		     (s->password_file && *s->password_file);
	bool authz = (s->authorization_credentials && *s->authorization_credentials) ||
		     (s->authorization_credentials_file && *s->authorization_credentials_file);
	int kinds = basic + authz + !!(s->bearer_token && *s->bearer_token) +
		    !!(s->bearer_token_file && *s->bearer_token_file) + !!s->oauth2;
	long sslv;
	int r;

	*out = NULL;
	if (kinds > 1) {
		snprintf(err, errlen,
			 "at most one of basic_auth, bearer_token, bearer_token_file, "
			 "authorization, oauth2 may be set");
		return -EINVAL;
	}
	r = check_conn(s, err, errlen);
	if (!r)
		r = ssl_version(s->min_version, &sslv, err, errlen);
	if (r)
		return r;
	if (s->authorization_credentials && *s->authorization_credentials &&
	    s->authorization_credentials_file && *s->authorization_credentials_file) {
		snprintf(
		    err, errlen,
		    "authorization: at most one of credentials and credentials_file may be set");
		return -EINVAL;
	}
	if (s->authorization_type && !strcasecmp(s->authorization_type, "basic")) {
		snprintf(err, errlen, "authorization: type Basic is not allowed, use basic_auth");
		return -EINVAL;
	}
	if (s->password && *s->password && s->password_file && *s->password_file) {
		snprintf(err, errlen,
			 "basic_auth: at most one of password and password_file may be set");
		return -EINVAL;
	}
	if (basic && !(s->username && *s->username)) {
		snprintf(err, errlen, "basic_auth: username is required");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	r = header_lines(s->http_headers, s->n_http_headers, true, "http_headers", &a->headers, err,
			 errlen);
	if (!r) {
		a->n_headers = s->n_http_headers;
		r = header_lines(s->proxy_connect_headers, s->n_proxy_connect_headers, false,
				 "proxy_connect_header", &a->proxy_headers, err, errlen);
	}
	if (!r) {
		a->n_proxy_headers = s->n_proxy_connect_headers;
		if (s->oauth2)
			r = http_oauth2_new(s->oauth2, &a->oauth2, err, errlen);
	}
	if (r) {
		starling_http_auth_free(a);
		return r;
	}
	a->ssl_version = sslv;
	if (s->proxy_from_environment) {
		a->s.proxy_from_environment = true;
		a->env_http_proxy = dup_or_null(getenv_any("HTTP_PROXY", "http_proxy"));
		a->env_https_proxy = dup_or_null(getenv_any("HTTPS_PROXY", "https_proxy"));
		a->env_no_proxy = dup_or_null(getenv_any("NO_PROXY", "no_proxy"));
	}
	a->s.ca_pem = dup_or_null(s->ca_pem);
	a->s.cert_pem = dup_or_null(s->cert_pem);
	a->s.key_pem = dup_or_null(s->key_pem);
	a->s.no_proxy = dup_or_null(s->no_proxy);
	a->s.username = dup_or_null(s->username);
	a->s.password = dup_or_null(s->password);
	a->s.password_file = dup_or_null(s->password_file);
	a->s.bearer_token = dup_or_null(authz ? s->authorization_credentials : s->bearer_token);
	a->s.bearer_token_file =
	    dup_or_null(authz ? s->authorization_credentials_file : s->bearer_token_file);
	a->auth_type =
	    strdup(authz && s->authorization_type && *s->authorization_type ? s->authorization_type
									    : "Bearer");
	a->s.ca_file = dup_or_null(s->ca_file);
	a->s.cert_file = dup_or_null(s->cert_file);
	a->s.key_file = dup_or_null(s->key_file);
	a->s.server_name = dup_or_null(s->server_name);
	a->s.proxy_url = dup_or_null(s->proxy_url);
	a->s.insecure_skip_verify = s->insecure_skip_verify;
	a->s.follow_redirects = s->follow_redirects;
	a->s.enable_http2 = s->enable_http2;
	a->id = atomic_fetch_add(&next_auth_id, 1) + 1;
	a->fixed =
	    !a->s.password_file && !a->s.bearer_token_file && !a->oauth2 && !a->s.server_name;
	*out = a;
	return 0;
}

void starling_http_auth_free(struct starling_http_auth *a)
{
	if (!a)
		return;
	settings_free(&a->s);
	free_lines(a->headers, a->n_headers);
	free_lines(a->proxy_headers, a->n_proxy_headers);
	free(a->env_http_proxy);
	free(a->env_https_proxy);
	free(a->env_no_proxy);
	http_oauth2_free(a->oauth2);
	free(a->auth_type);
	free(a->token.value);
	free(a->password.value);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static int get_str(const struct starling_host_api *api, const starling_config *node,
		   const char *path, const char **out, char *err, size_t errlen)
{
	int r = api->config_string(node, path, out);

	if (r == -ENOENT) {
		*out = NULL;
		return 0;
	}
	if (r)
		snprintf(err, errlen, "%s: %s: expected a string", api->config_where(node), path);
	return r;
}

/* Config values of one node, before starling_http_auth_new copies them. */
struct cfg_tmp {
	struct starling_label *headers, *proxy_headers, *params;
	const char **scopes;
};

static void cfg_tmp_free(struct cfg_tmp *t)
{
	free(t->headers);
	free(t->proxy_headers);
	free(t->params);
	free(t->scopes);
}

/* A MAP node (absent: 0 pairs) as label pairs pointing at host strings. */
static int get_map(const struct starling_host_api *api, const starling_config *node,
		   const char *path, struct starling_label **out, size_t *n, char *err,
		   size_t errlen)
{
	const starling_config *m = api->config_lookup(node, path);
	size_t cnt = m ? api->config_count(m) : 0;

	*out = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	*out = calloc(cnt, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		const starling_config *c = api->config_child(m, i);

		(*out)[i].name = api->config_name(c);
		if (!(*out)[i].name || api->config_string(c, NULL, &(*out)[i].value)) {
			snprintf(err, errlen, "%s: %s: expected name = \"value\" pairs",
				 api->config_where(c), path);
			return -EINVAL;
		}
	}
	*n = cnt;
	return 0;
}

static int get_bool(const struct starling_host_api *api, const starling_config *node,
		    const char *path, bool *out, char *err, size_t errlen)
{
	bool b;
	int r = api->config_bool(node, path, &b);

	if (r == -ENOENT)
		return 0;
	if (r) {
		snprintf(err, errlen, "%s: %s: expected true or false", api->config_where(node),
			 path);
		return r;
	}
	*out = b;
	return 0;
}

/* tls_config.*, proxy_url, no_proxy, proxy_from_environment and
 * proxy_connect_header of `node` (a component config or an oauth2 block). */
static int get_conn(const struct starling_host_api *api, const starling_config *node,
		    struct starling_http_auth_settings *s, struct cfg_tmp *t, char *err,
		    size_t errlen)
{
	static const char *const keys[] = {
	    "tls_config.ca_file",
	    "tls_config.ca_pem",
	    "tls_config.cert_file",
	    "tls_config.cert_pem",
	    "tls_config.key_file",
	    "tls_config.key_pem",
	    "tls_config.server_name",
	    "tls_config.min_version",
	    "proxy_url",
	    "no_proxy",
	};
	const char **dst[] = {
	    &s->ca_file, &s->ca_pem,	  &s->cert_file,   &s->cert_pem,  &s->key_file,
	    &s->key_pem, &s->server_name, &s->min_version, &s->proxy_url, &s->no_proxy,
	};
	int r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = get_str(api, node, keys[i], dst[i], err, errlen);
		if (r)
			return r;
	}
	r = get_bool(api, node, "tls_config.insecure_skip_verify", &s->insecure_skip_verify, err,
		     errlen);
	if (!r)
		r = get_bool(api, node, "proxy_from_environment", &s->proxy_from_environment, err,
			     errlen);
	if (!r)
		r = get_map(api, node, "proxy_connect_header", &t->proxy_headers,
			    &s->n_proxy_connect_headers, err, errlen);
	s->proxy_connect_headers = t->proxy_headers;
	return r;
}

static int get_oauth2(const struct starling_host_api *api, const starling_config *o,
		      struct starling_http_oauth2_settings *os,
		      struct starling_http_auth_settings *conn, struct cfg_tmp *t, char *err,
		      size_t errlen)
{
	static const char *const keys[] = {"client_id", "client_secret", "client_secret_file",
					   "token_url"};
	const char **dst[] = {&os->client_id, &os->client_secret, &os->client_secret_file,
			      &os->token_url};
	const starling_config *sc = api->config_lookup(o, "scopes");
	int r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = get_str(api, o, keys[i], dst[i], err, errlen);
		if (r)
			return r;
	}
	os->n_scopes = sc ? api->config_count(sc) : 0;
	if (os->n_scopes) {
		t->scopes = calloc(os->n_scopes, sizeof(*t->scopes));
		if (!t->scopes)
			return -ENOMEM;
		for (size_t i = 0; i < os->n_scopes; i++)
			if (api->config_string(api->config_child(sc, i), NULL, &t->scopes[i])) {
				snprintf(err, errlen, "%s: oauth2.scopes: expected strings",
					 api->config_where(sc));
				return -EINVAL;
			}
	}
	os->scopes = t->scopes;
	r = get_map(api, o, "endpoint_params", &t->params, &os->n_endpoint_params, err, errlen);
	os->endpoint_params = t->params;
	if (!r)
		r = get_conn(api, o, conn, t + 1, err, errlen);
	os->conn = conn;
	return r;
}

int starling_http_auth_from_config(const struct starling_host_api *api, const starling_config *node,
				   struct starling_http_auth **out, char *err, size_t errlen)
{
	struct starling_http_auth_settings s = {0}, oconn = {0};
	struct starling_http_oauth2_settings os = {0};
	struct cfg_tmp tmp[3] = {{0}};
	const starling_config *o;
	static const char *const str_keys[] = {
	    "basic_auth.username",
	    "basic_auth.password",
	    "basic_auth.password_file",
	    "bearer_token",
	    "bearer_token_file",
	    "authorization.credentials",
	    "authorization.credentials_file",
	};
	const char **dst[] = {
	    &s.username,
	    &s.password,
	    &s.password_file,
	    &s.bearer_token,
	    &s.bearer_token_file,
	    &s.authorization_credentials,
	    &s.authorization_credentials_file,
	};
	char msg[256];
	int r = 0;

	*out = NULL;
	for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]) && !r; i++)
		r = get_str(api, node, str_keys[i], dst[i], err, errlen);
	/* the type only matters when credentials are set (it has a default) */
	if (!r)
		r = get_str(api, node, "authorization.type", &s.authorization_type, err, errlen);
	s.follow_redirects = true;
	if (!r)
		r = get_bool(api, node, "follow_redirects", &s.follow_redirects, err, errlen);
	if (!r)
		r = get_bool(api, node, "enable_http2", &s.enable_http2, err, errlen);
	if (!r)
		r = get_conn(api, node, &s, &tmp[0], err, errlen);
	if (!r)
		r = get_map(api, node, "http_headers", &tmp[0].headers, &s.n_http_headers, err,
			    errlen);
	s.http_headers = tmp[0].headers;
	/* the host may hand out an absent group with its defaults filled in:
	 * the block counts as configured when one of its strings is set */
	o = api->config_lookup(node, "oauth2");
	if (o) {
		static const char *const oauth2_strings[] = {"client_id", "client_secret",
							     "client_secret_file", "token_url"};
		const char *v;
		bool any = false;

		for (size_t i = 0; i < sizeof(oauth2_strings) / sizeof(oauth2_strings[0]); i++)
			any |= !api->config_string(o, oauth2_strings[i], &v) && *v;
		if (!any)
			o = NULL;
	}
	if (!r && o) {
		r = get_oauth2(api, o, &os, &oconn, &tmp[1], err, errlen);
		s.oauth2 = &os;
	}
	if (!r) {
		r = starling_http_auth_new(&s, out, msg, sizeof(msg));
		if (r)
			snprintf(err, errlen, "%s: %s", api->config_where(node), msg);
	}
	for (size_t i = 0; i < 3; i++)
		cfg_tmp_free(&tmp[i]);
	return r;
}

/* Read a secret file when it changed since the last read (same test as
 * Prometheus: the file is re-read, we just skip it when stat says it is
 * unchanged). Trailing whitespace is trimmed. Caller holds a->lock. */
int http_file_cache_refresh(struct file_cache *fc, const char *path)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (stat(path, &st))
		return -errno;
	if (fc->value && st.st_ino == fc->ino && st.st_dev == fc->dev && st.st_size == fc->size &&
	    st.st_mtim.tv_sec == fc->mtime.tv_sec && st.st_mtim.tv_nsec == fc->mtime.tv_nsec)
		return 0;
	if (st.st_size > SECRET_MAX)
		return -EFBIG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(SECRET_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < SECRET_MAX) {
		n = read(fd, buf + len, SECRET_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;

			close(fd);
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
		       buf[len - 1] == '\t'))
		len--;
	buf[len] = 0;
	free(fc->value);
	fc->value = buf;
	fc->ino = st.st_ino;
	fc->dev = st.st_dev;
	fc->size = st.st_size;
	fc->mtime = st.st_mtim;
	return 0;
}

int http_auth_secrets(const struct starling_http_auth *ca, char **password, char **token)
{
	struct starling_http_auth *a = (struct starling_http_auth *)ca;
	int r = 0;

	*password = NULL;
	*token = NULL;
	pthread_mutex_lock(&a->lock);
	if (a->s.password_file) {
		r = http_file_cache_refresh(&a->password, a->s.password_file);
		if (!r && !(*password = strdup(a->password.value)))
			r = -ENOMEM;
	} else if (a->s.password) {
		if (!(*password = strdup(a->s.password)))
			r = -ENOMEM;
	}
	if (!r && a->s.bearer_token_file) {
		r = http_file_cache_refresh(&a->token, a->s.bearer_token_file);
		if (!r && !(*token = strdup(a->token.value)))
			r = -ENOMEM;
	} else if (!r && a->s.bearer_token) {
		if (!(*token = strdup(a->s.bearer_token)))
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&a->lock);
	if (r) {
		free(*password);
		free(*token);
		*password = *token = NULL;
	}
	return r;
}
