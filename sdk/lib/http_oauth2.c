/*
 * OAuth 2.0 client-credentials tokens for the SDK HTTP client, as
 * prometheus/common config/http_config.go's oauth2RoundTripper gets them
 * through golang.org/x/oauth2/clientcredentials:
 * - POST token_url, form grant_type=client_credentials, scope (space-joined),
 *   endpoint_params;
 * - client authentication "auto-detect": HTTP Basic with the url-encoded id
 *   and secret first; if that request fails, the id and secret as form
 *   fields, and whichever worked is remembered (x/oauth2 internal/token.go);
 * - the token is reused until 10 s before expires_in runs out (expiryDelta),
 *   forever without expires_in; a changed client_secret_file gets a new one;
 * - answer: 2xx with JSON {access_token, token_type, expires_in}.
 * A failed fetch is remembered for FAIL_HOLD_MS so that a component sending
 * many requests does not block on a dead token endpoint for each of them.
 * Secrets never reach error messages.
 */
#include "http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#define EXPIRY_DELTA_MS	   10000
#define FAIL_HOLD_MS	   1000
#define TOKEN_BODY_MAX	   (1u << 20)
#define DEFAULT_TIMEOUT_MS 30000

enum auth_style { STYLE_AUTO, STYLE_HEADER, STYLE_PARAMS };

struct http_oauth2 {
	char *client_id, *client_secret, *client_secret_file, *token_url, *scope;
	struct starling_label *params; /* owned strings */
	size_t n_params;
	struct starling_http_auth *conn; /* TLS/proxy of token requests */
	pthread_mutex_t lock;		 /* everything below; held while fetching */
	struct file_cache secret_fc;
	char *secret_used; /* the secret the token was obtained with */
	char *header;	   /* "Authorization: <type> <token>", NULL: none */
	int64_t expiry_ms; /* monotonic; 0: never expires */
	enum auth_style style;
	int64_t fail_until_ms; /* monotonic */
	int fail_err;
	char fail_msg[256];
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void http_oauth2_free(struct http_oauth2 *o)
{
	if (!o)
		return;
	free(o->client_id);
	wipe_free(o->client_secret);
	free(o->client_secret_file);
	free(o->token_url);
	free(o->scope);
	for (size_t i = 0; i < o->n_params; i++) {
		free((char *)o->params[i].name);
		free((char *)o->params[i].value);
	}
	free(o->params);
	starling_http_auth_free(o->conn);
	wipe_free(o->secret_fc.value);
	wipe_free(o->secret_used);
	wipe_free(o->header);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static char *dup_set(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int http_oauth2_new(const struct starling_http_oauth2_settings *s, struct http_oauth2 **out,
		    char *err, size_t errlen)
{
	struct starling_http_auth_settings conn = {0};
	struct http_oauth2 *o;
	size_t scope_len = 1;
	int r;

	*out = NULL;
	if (!s->token_url ||
	    (strncasecmp(s->token_url, "http://", 7) && strncasecmp(s->token_url, "https://", 8))) {
		snprintf(err, errlen, "oauth2: token_url is required (an http or https URL)");
		return -EINVAL;
	}
	if (s->client_secret && *s->client_secret && s->client_secret_file &&
	    *s->client_secret_file) {
		snprintf(err, errlen,
			 "oauth2: at most one of client_secret and client_secret_file may be set");
		return -EINVAL;
	}
	if (s->conn) {
		/* only the connection members: no credentials for the token
		 * endpoint beyond the client id and secret */
		const struct starling_http_auth_settings *c = s->conn;

		conn = (struct starling_http_auth_settings){
		    .ca_file = c->ca_file,
		    .ca_pem = c->ca_pem,
		    .cert_file = c->cert_file,
		    .cert_pem = c->cert_pem,
		    .key_file = c->key_file,
		    .key_pem = c->key_pem,
		    .server_name = c->server_name,
		    .insecure_skip_verify = c->insecure_skip_verify,
		    .min_version = c->min_version,
		    .proxy_url = c->proxy_url,
		    .no_proxy = c->no_proxy,
		    .proxy_from_environment = c->proxy_from_environment,
		    .proxy_connect_headers = c->proxy_connect_headers,
		    .n_proxy_connect_headers = c->n_proxy_connect_headers,
		};
	}
	/* clientcredentials.Config.Token: endpoint_params may override
	 * grant_type but no other field of the request */
	for (size_t i = 0; i < s->n_endpoint_params; i++) {
		const char *n = s->endpoint_params[i].name;

		if (!n || !*n || (s->n_scopes && !strcmp(n, "scope"))) {
			snprintf(err, errlen,
				 "oauth2: endpoint_params: cannot overwrite parameter \"%s\"",
				 n ? n : "");
			return -EINVAL;
		}
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	pthread_mutex_init(&o->lock, NULL);
	r = starling_http_auth_new(&conn, &o->conn, err, errlen);
	if (r) {
		char inner[256];

		snprintf(inner, sizeof(inner), "%s", err);
		snprintf(err, errlen, "oauth2: %s", inner);
		http_oauth2_free(o);
		return r;
	}
	o->client_id = strdup(s->client_id ? s->client_id : "");
	o->client_secret = dup_set(s->client_secret);
	o->client_secret_file = dup_set(s->client_secret_file);
	o->token_url = strdup(s->token_url);
	for (size_t i = 0; i < s->n_scopes; i++)
		scope_len += strlen(s->scopes[i]) + 1;
	if (s->n_scopes && (o->scope = calloc(1, scope_len))) {
		size_t off = 0;

		for (size_t i = 0; i < s->n_scopes; i++) {
			size_t n = strlen(s->scopes[i]);

			if (i)
				o->scope[off++] = ' ';
			memcpy(o->scope + off, s->scopes[i], n);
			off += n;
		}
	}
	o->params = calloc(s->n_endpoint_params + 1, sizeof(*o->params));
	if (!o->client_id || !o->token_url || (s->n_scopes && !o->scope) || !o->params) {
		http_oauth2_free(o);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_endpoint_params; i++) {
		o->params[i].name = strdup(s->endpoint_params[i].name);
		o->params[i].value =
		    strdup(s->endpoint_params[i].value ? s->endpoint_params[i].value : "");
		o->n_params = i + 1;
		if (!o->params[i].name || !o->params[i].value) {
			http_oauth2_free(o);
			return -ENOMEM;
		}
	}
	*out = o;
	return 0;
}

struct buf {
	char *p;
	size_t len;
	bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	char *np;

	if (b->len + len > TOKEN_BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	np = realloc(b->p, b->len + len + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, p, len);
	b->p = np;
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

/* Append "&name=value" (url-encoded) to *body. */
static int form_add(CURL *e, char **body, size_t *len, const char *name, const char *value)
{
	char *n = curl_easy_escape(e, name, 0), *v = curl_easy_escape(e, value, 0), *nb = NULL;
	size_t add;

	if (n && v) {
		add = strlen(n) + strlen(v) + 2;
		nb = realloc(*body, *len + add + 1);
	}
	if (nb) {
		snprintf(nb + *len, add + 1, "%s%s=%s", *len ? "&" : "", n, v);
		*len += strlen(nb + *len);
		*body = nb;
	}
	if (v)
		explicit_bzero(v, strlen(v));
	curl_free(n);
	curl_free(v);
	return nb ? 0 : -ENOMEM;
}

/* x/oauth2's Token.Type(): canonical case for the common types. */
static const char *token_type(const char *t)
{
	if (!t || !*t || !strcasecmp(t, "bearer"))
		return "Bearer";
	if (!strcasecmp(t, "mac"))
		return "MAC";
	if (!strcasecmp(t, "basic"))
		return "Basic";
	return t;
}

/* The answer of a token request: 0 and o->header/o->expiry_ms set, or an
 * error with err filled. */
int http_oauth2_parse_token(struct http_oauth2 *o, long status, char *body, size_t len, char *err,
			    size_t errlen)
{
	cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *at = NULL, *tt, *ei, *e;
	size_t n;
	int r = 0;

	if (status < 200 || status > 299) {
		e = cJSON_GetObjectItemCaseSensitive(j, "error");
		snprintf(err, errlen, "oauth2: token endpoint %s answered HTTP %ld%s%s%s",
			 o->token_url, status, cJSON_IsString(e) ? " (error: " : "",
			 cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(e) ? ")" : "");
		r = -EACCES;
		goto out;
	}
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	tt = cJSON_GetObjectItemCaseSensitive(j, "token_type");
	ei = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	if (!j || !cJSON_IsString(at) || !*at->valuestring) {
		snprintf(err, errlen, "oauth2: token endpoint %s: response without access_token",
			 o->token_url);
		r = -EBADMSG;
		goto out;
	}
	if (strpbrk(at->valuestring, "\r\n") ||
	    (cJSON_IsString(tt) && strpbrk(tt->valuestring, "\r\n"))) {
		snprintf(err, errlen, "oauth2: token endpoint %s: token with a line break",
			 o->token_url);
		r = -EBADMSG;
		goto out;
	}
	wipe_free(o->header);
	n = strlen(at->valuestring) + 64 + (cJSON_IsString(tt) ? strlen(tt->valuestring) : 0);
	o->header = malloc(n);
	if (!o->header) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(o->header, n, "Authorization: %s %s",
		 token_type(cJSON_IsString(tt) ? tt->valuestring : NULL), at->valuestring);
	o->expiry_ms = 0;
	{
		double secs = cJSON_IsNumber(ei)   ? ei->valuedouble
			      : cJSON_IsString(ei) ? strtod(ei->valuestring, NULL)
						   : 0;

		/* expires_in 0 or absent: the token does not expire */
		if (secs > 0 && secs < 1e9)
			o->expiry_ms = mono_ms() + (int64_t)(secs * 1000);
	}
out:
	if (body) /* the token is in the body */
		explicit_bzero(body, len);
	cJSON_Delete(j);
	return r;
}

static const char *param(const struct http_oauth2 *o, const char *name)
{
	for (size_t i = 0; i < o->n_params; i++)
		if (!strcmp(o->params[i].name, name))
			return o->params[i].value;
	return NULL;
}

/* One token request with the given client authentication style. */
static int fetch(struct http_oauth2 *o, const char *secret, enum auth_style style,
		 int64_t timeout_ms, char *err, size_t errlen)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hdrs = NULL, *connect_to = NULL, *proxy_hdrs = NULL;
	char *body = NULL, *url = NULL, *user = NULL, *pass = NULL, ebuf[CURL_ERROR_SIZE] = "";
	size_t blen = 0;
	struct buf b = {0};
	long status = 0;
	CURLcode rc;
	int r = 0;

	if (!e)
		return -ENOMEM;
	if (!param(o, "grant_type"))
		r = form_add(e, &body, &blen, "grant_type", "client_credentials");
	if (!r && o->scope)
		r = form_add(e, &body, &blen, "scope", o->scope);
	/* in the params style a non-empty id and secret replace
	 * endpoint_params of the same name (x/oauth2 internal/token.go) */
	for (size_t i = 0; !r && i < o->n_params; i++) {
		const char *n = o->params[i].name;

		if (style == STYLE_PARAMS && ((!strcmp(n, "client_id") && *o->client_id) ||
					      (!strcmp(n, "client_secret") && *secret)))
			continue;
		r = form_add(e, &body, &blen, n, o->params[i].value);
	}
	if (!r && style == STYLE_PARAMS && *o->client_id)
		r = form_add(e, &body, &blen, "client_id", o->client_id);
	if (!r && style == STYLE_PARAMS && *secret)
		r = form_add(e, &body, &blen, "client_secret", secret);
	if (r)
		goto out;
	hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
	r = http_apply_conn(e, o->conn, o->token_url, &hdrs, &connect_to, &proxy_hdrs, &url);
	if (r) {
		snprintf(err, errlen, "oauth2: cannot set up the token request to %s",
			 o->token_url);
		goto out;
	}
	if (style != STYLE_PARAMS) {
		/* RFC 6749 2.3.1: id and secret form-urlencoded, then Basic */
		user = curl_easy_escape(e, o->client_id, 0);
		pass = curl_easy_escape(e, secret, 0);
		if (!user || !pass) {
			r = -ENOMEM;
			goto out;
		}
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
	}
	curl_easy_setopt(e, CURLOPT_URL, url ? url : o->token_url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 (long)(timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "Starling");
	rc = curl_easy_perform(e);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "oauth2: token request to %s failed: %s", o->token_url,
			 b.too_big ? "answer too large"
			 : ebuf[0] ? ebuf
				   : curl_easy_strerror(rc));
		r = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	r = http_oauth2_parse_token(o, status, b.p, b.len, err, errlen);
out:
	if (body)
		explicit_bzero(body, blen);
	free(body);
	free(b.p);
	free(url);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(user);
	curl_free(pass);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(connect_to);
	curl_slist_free_all(proxy_hdrs);
	curl_easy_cleanup(e);
	return r;
}

int http_oauth2_header(struct http_oauth2 *o, int64_t timeout_ms, char **header, char *err,
		       size_t errlen)
{
	const char *secret = o->client_secret ? o->client_secret : "";
	int64_t now;
	int r = 0;

	*header = NULL;
	pthread_mutex_lock(&o->lock);
	if (o->client_secret_file) {
		r = http_file_cache_refresh(&o->secret_fc, o->client_secret_file);
		if (r) {
			snprintf(err, errlen, "oauth2: cannot read client_secret_file %s: %s",
				 o->client_secret_file, strerror(-r));
			goto out;
		}
		secret = o->secret_fc.value;
	}
	now = mono_ms();
	/* a new secret invalidates the cached token (Prometheus builds a new
	 * token source when the secret changes) */
	if (o->header && (!o->secret_used || strcmp(o->secret_used, secret))) {
		wipe_free(o->header);
		o->header = NULL;
	}
	if (o->header && (!o->expiry_ms || now < o->expiry_ms - EXPIRY_DELTA_MS))
		goto have;
	if (now < o->fail_until_ms) {
		snprintf(err, errlen, "%s", o->fail_msg);
		r = o->fail_err;
		goto out;
	}
	if (o->style != STYLE_PARAMS) {
		r = fetch(o, secret, STYLE_HEADER, timeout_ms, err, errlen);
		if (!r)
			o->style = STYLE_HEADER;
	}
	if (o->style == STYLE_PARAMS || (r && o->style == STYLE_AUTO)) {
		char first[256];

		snprintf(first, sizeof(first), "%s", err);
		r = fetch(o, secret, STYLE_PARAMS, timeout_ms, err, errlen);
		if (!r)
			o->style = STYLE_PARAMS;
		else if (o->style == STYLE_AUTO)
			snprintf(err, errlen, "%s", first); /* report the first try */
	}
	if (r) {
		o->fail_until_ms = mono_ms() + FAIL_HOLD_MS;
		o->fail_err = r;
		snprintf(o->fail_msg, sizeof(o->fail_msg), "%s", err);
		goto out;
	}
	o->fail_until_ms = 0;
	wipe_free(o->secret_used);
	o->secret_used = strdup(secret);
	if (!o->secret_used) {
		r = -ENOMEM;
		goto out;
	}
have:
	*header = strdup(o->header);
	if (!*header)
		r = -ENOMEM;
out:
	pthread_mutex_unlock(&o->lock);
	return r;
}
