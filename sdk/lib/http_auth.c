/* HTTP auth/TLS/proxy profiles and their config schema (see starling/http.h). */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
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
    {"cert_file", STARLING_CFG_STRING, false, NULL, "Client certificate (PEM)"},
    {"key_file", STARLING_CFG_STRING, false, NULL, "Client private key (PEM)"},
    {"server_name", STARLING_CFG_STRING, false, NULL,
     "Server name for SNI and certificate verification"},
    {"insecure_skip_verify", STARLING_CFG_BOOL, false, "false",
     "Do not verify the server certificate"},
    {NULL},
};

/* Longest secret read from a file; longer files are an error, not a
 * silently cut token. */
#define SECRET_MAX 16384

static char *dup_or_null(const char *s)
{
	return (s && *s) ? strdup(s) : NULL;
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
	free((char *)s->cert_pem);
	if (s->key_pem)
		explicit_bzero((char *)s->key_pem, strlen(s->key_pem));
	free((char *)s->key_pem);
}

int starling_http_auth_new(const struct starling_http_auth_settings *s,
			   struct starling_http_auth **out, char *err, size_t errlen)
{
	struct starling_http_auth *a;
	bool basic = (s->username && *s->username) || (s->password && *s->password) ||
		     (s->password_file && *s->password_file);
	bool authz = (s->authorization_credentials && *s->authorization_credentials) ||
		     (s->authorization_credentials_file && *s->authorization_credentials_file);
	int kinds = basic + authz + !!(s->bearer_token && *s->bearer_token) +
		    !!(s->bearer_token_file && *s->bearer_token_file);

	*out = NULL;
	if (kinds > 1) {
		snprintf(
		    err, errlen,
		    "at most one of basic_auth, bearer_token, bearer_token_file, authorization "
		    "may be set");
		return -EINVAL;
	}
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
	if (((s->cert_file && *s->cert_file) || (s->cert_pem && *s->cert_pem)) !=
	    ((s->key_file && *s->key_file) || (s->key_pem && *s->key_pem))) {
		snprintf(err, errlen, "tls_config: cert_file and key_file must be set together");
		return -EINVAL;
	}
	if (s->proxy_url && *s->proxy_url && !strstr(s->proxy_url, "://")) {
		snprintf(err, errlen, "proxy_url \"%s\": expected scheme://host:port",
			 s->proxy_url);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
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
	a->s.ca_pem = dup_or_null(s->ca_pem);
	a->s.cert_pem = dup_or_null(s->cert_pem);
	a->s.key_pem = dup_or_null(s->key_pem);
	a->s.server_name = dup_or_null(s->server_name);
	a->s.proxy_url = dup_or_null(s->proxy_url);
	a->s.insecure_skip_verify = s->insecure_skip_verify;
	a->s.follow_redirects = s->follow_redirects;
	a->s.enable_http2 = s->enable_http2;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

void starling_http_auth_free(struct starling_http_auth *a)
{
	if (!a)
		return;
	settings_free(&a->s);
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

int starling_http_auth_from_config(const struct starling_host_api *api, const starling_config *node,
				   struct starling_http_auth **out, char *err, size_t errlen)
{
	struct starling_http_auth_settings s = {0};
	static const char *const str_keys[] = {
	    "basic_auth.username",	 "basic_auth.password",
	    "basic_auth.password_file",	 "bearer_token",
	    "bearer_token_file",	 "tls_config.ca_file",
	    "tls_config.cert_file",	 "tls_config.key_file",
	    "tls_config.server_name",	 "proxy_url",
	    "authorization.credentials", "authorization.credentials_file",
	};
	const char **dst[] = {
	    &s.username,
	    &s.password,
	    &s.password_file,
	    &s.bearer_token,
	    &s.bearer_token_file,
	    &s.ca_file,
	    &s.cert_file,
	    &s.key_file,
	    &s.server_name,
	    &s.proxy_url,
	    &s.authorization_credentials,
	    &s.authorization_credentials_file,
	};
	char msg[256];
	bool b;
	int r;

	*out = NULL;
	for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++) {
		r = get_str(api, node, str_keys[i], dst[i], err, errlen);
		if (r)
			return r;
	}
	/* the type only matters when credentials are set (it has a default) */
	r = get_str(api, node, "authorization.type", &s.authorization_type, err, errlen);
	if (r)
		return r;
	s.follow_redirects = true;
	r = api->config_bool(node, "follow_redirects", &b);
	if (!r)
		s.follow_redirects = b;
	else if (r != -ENOENT)
		goto bad_bool;
	r = api->config_bool(node, "enable_http2", &b);
	if (!r)
		s.enable_http2 = b;
	else if (r != -ENOENT)
		goto bad_bool;
	r = api->config_bool(node, "tls_config.insecure_skip_verify", &b);
	if (!r)
		s.insecure_skip_verify = b;
	else if (r != -ENOENT)
		goto bad_bool;
	r = starling_http_auth_new(&s, out, msg, sizeof(msg));
	if (r)
		snprintf(err, errlen, "%s: %s", api->config_where(node), msg);
	return r;
bad_bool:
	snprintf(err, errlen,
		 "%s: follow_redirects/enable_http2/insecure_skip_verify: expected true or false",
		 api->config_where(node));
	return -EINVAL;
}

/* Read a secret file when it changed since the last read (same test as
 * Prometheus: the file is re-read, we just skip it when stat says it is
 * unchanged). Trailing whitespace is trimmed. Caller holds a->lock. */
static int refresh_file(struct file_cache *fc, const char *path)
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
		r = refresh_file(&a->password, a->s.password_file);
		if (!r && !(*password = strdup(a->password.value)))
			r = -ENOMEM;
	} else if (a->s.password) {
		if (!(*password = strdup(a->s.password)))
			r = -ENOMEM;
	}
	if (!r && a->s.bearer_token_file) {
		r = refresh_file(&a->token, a->s.bearer_token_file);
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
