/*
 * Where the Kubernetes API is and how to authenticate (see starling/k8s.h):
 * kubeconfig files (parsed with libyaml, resolved through the current
 * context as client-go's clientcmd does), the in-cluster service account,
 * or a component's api_server + HTTP client arguments.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include <starling/k8s.h>

/* ------------------------------------------------------------------------ */
/* kubeconfig.                                                               */

struct kc_doc {
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

static yaml_node_t *node_at(struct kc_doc *d, int idx)
{
	return yaml_document_get_node(&d->doc, idx);
}

/* Member `key` of mapping n, or NULL. */
static yaml_node_t *map_get(struct kc_doc *d, yaml_node_t *n, const char *key)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(d, p->key);

		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return node_at(d, p->value);
	}
	return NULL;
}

/* A scalar member as a string (NULL if absent, not a scalar, or ""). */
static const char *map_str(struct kc_doc *d, yaml_node_t *n, const char *key)
{
	yaml_node_t *v = map_get(d, n, key);

	if (!v || v->type != YAML_SCALAR_NODE || !v->data.scalar.length)
		return NULL;
	/* a scalar with a NUL inside cannot be a path, token or URL */
	if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
		return NULL;
	return (const char *)v->data.scalar.value;
}

/* The `inner` mapping of the element of list `list` whose name is `name`
 * (clusters[].cluster, contexts[].context, users[].user). */
static yaml_node_t *named(struct kc_doc *d, yaml_node_t *root, const char *list, const char *inner,
			  const char *name, bool *found)
{
	yaml_node_t *l = map_get(d, root, list);

	*found = false;
	if (!l || l->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = l->data.sequence.items.start; i < l->data.sequence.items.top;
	     i++) {
		yaml_node_t *e = node_at(d, *i);
		const char *n = map_str(d, e, "name");

		if (n && strcmp(n, name) == 0) {
			*found = true;
			return map_get(d, e, inner);
		}
	}
	return NULL;
}

/* Base64 (standard alphabet, whitespace ignored) into a NUL-terminated
 * string; NULL on bad input. */
static char *b64_decode(const char *in, int *rc)
{
	size_t n = strlen(in), k = 0, pad = 0;
	char *clean = malloc(n + 1), *out;
	int len;

	*rc = -ENOMEM;
	if (!clean)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (in[i] != '\n' && in[i] != '\r' && in[i] != ' ' && in[i] != '\t')
			clean[k++] = in[i];
	clean[k] = 0;
	*rc = -EINVAL;
	if (k % 4 || k == 0 || k > INT_MAX / 2) {
		free(clean);
		return NULL;
	}
	while (pad < 2 && clean[k - 1 - pad] == '=')
		pad++;
	out = malloc(k / 4 * 3 + 1);
	if (!out) {
		free(clean);
		*rc = -ENOMEM;
		return NULL;
	}
	len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)clean, (int)k);
	free(clean);
	if (len < 0 || (size_t)len < pad) {
		free(out);
		return NULL;
	}
	len -= (int)pad;
	out[len] = 0;
	if (strlen(out) != (size_t)len) { /* binary: not PEM text */
		free(out);
		return NULL;
	}
	*rc = 0;
	return out;
}

/* Copy a path member, made relative to base_dir when it is relative. */
static int dup_path(const char *v, const char *base_dir, char **out)
{
	if (!v)
		return 0;
	if (v[0] == '/' || !base_dir || !*base_dir)
		*out = strdup(v);
	else if (asprintf(out, "%s/%s", base_dir, v) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

static int dup_str(const char *v, char **out)
{
	if (!v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

/* `<key>` (a path) or `<key>-data` (base64 PEM) of mapping n. */
static int file_or_data(struct kc_doc *d, yaml_node_t *n, const char *key, const char *base_dir,
			char **file, char **pem)
{
	char dk[64];
	const char *data;
	int rc;

	snprintf(dk, sizeof(dk), "%s-data", key);
	data = map_str(d, n, dk);
	if (data) {
		*pem = b64_decode(data, &rc);
		if (!*pem && rc == -EINVAL)
			snprintf(d->err, d->errlen, "kubeconfig: %s is not valid base64 PEM text",
				 dk);
		return *pem ? 0 : rc;
	}
	return dup_path(map_str(d, n, key), base_dir, file);
}

static bool is_true(const char *s)
{
	return s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0);
}

static int resolve(struct kc_doc *d, const char *base_dir, const char *context,
		   struct starling_k8s_kubeconfig *k)
{
	yaml_node_t *root = yaml_document_get_root_node(&d->doc), *ctx, *cl, *user = NULL;
	const char *cname = context, *clname, *uname;
	bool found;
	int rc = 0;

	if (!root || root->type != YAML_MAPPING_NODE) {
		snprintf(d->err, d->errlen, "kubeconfig: not a YAML mapping");
		return -EINVAL;
	}
	if (!cname)
		cname = map_str(d, root, "current-context");
	if (!cname) {
		snprintf(d->err, d->errlen, "kubeconfig: no current-context");
		return -EINVAL;
	}
	ctx = named(d, root, "contexts", "context", cname, &found);
	if (!found || !ctx || ctx->type != YAML_MAPPING_NODE) {
		snprintf(d->err, d->errlen, "kubeconfig: context \"%s\" not found", cname);
		return -EINVAL;
	}
	clname = map_str(d, ctx, "cluster");
	if (!clname) {
		snprintf(d->err, d->errlen, "kubeconfig: context \"%s\" names no cluster", cname);
		return -EINVAL;
	}
	cl = named(d, root, "clusters", "cluster", clname, &found);
	if (!found || !cl || cl->type != YAML_MAPPING_NODE) {
		snprintf(d->err, d->errlen,
			 "kubeconfig: cluster \"%s\" of context \"%s\" not found", clname, cname);
		return -EINVAL;
	}
	uname = map_str(d, ctx, "user");
	if (uname) {
		user = named(d, root, "users", "user", uname, &found);
		if (!found) {
			snprintf(d->err, d->errlen,
				 "kubeconfig: user \"%s\" of context \"%s\" not found", uname,
				 cname);
			return -EINVAL;
		}
		if (user && user->type != YAML_MAPPING_NODE)
			user = NULL;
	}
	if (!map_str(d, cl, "server")) {
		snprintf(d->err, d->errlen, "kubeconfig: cluster \"%s\" has no server", clname);
		return -EINVAL;
	}
	if (map_get(d, user, "exec") || map_get(d, user, "auth-provider")) {
		snprintf(d->err, d->errlen,
			 "kubeconfig: user \"%s\": exec and auth-provider credentials are not "
			 "supported (use a token, tokenFile or a client certificate)",
			 uname);
		return -EINVAL;
	}
	rc |= dup_str(map_str(d, cl, "server"), &k->server);
	rc |= dup_str(map_str(d, ctx, "namespace"), &k->namespace);
	rc |= dup_str(map_str(d, cl, "tls-server-name"), &k->server_name);
	rc |= dup_str(map_str(d, cl, "proxy-url"), &k->proxy_url);
	k->insecure_skip_verify = is_true(map_str(d, cl, "insecure-skip-tls-verify"));
	if (rc)
		return -ENOMEM;
	rc = file_or_data(d, cl, "certificate-authority", base_dir, &k->ca_file, &k->ca_pem);
	if (!rc)
		rc = file_or_data(d, user, "client-certificate", base_dir, &k->cert_file,
				  &k->cert_pem);
	if (!rc)
		rc = file_or_data(d, user, "client-key", base_dir, &k->key_file, &k->key_pem);
	if (rc)
		return rc;
	rc |= dup_str(map_str(d, user, "token"), &k->token);
	rc |= dup_path(map_str(d, user, "tokenFile"), base_dir, &k->token_file);
	rc |= dup_str(map_str(d, user, "username"), &k->username);
	rc |= dup_str(map_str(d, user, "password"), &k->password);
	return rc ? -ENOMEM : 0;
}

int starling_k8s_kubeconfig_parse(const char *text, size_t len, const char *base_dir,
				  const char *context, struct starling_k8s_kubeconfig *out,
				  char *err, size_t errlen)
{
	yaml_parser_t parser;
	struct kc_doc d = {.err = err, .errlen = errlen};
	int rc;

	memset(out, 0, sizeof(*out));
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &d.doc)) {
		snprintf(err, errlen, "kubeconfig: YAML error at line %zu: %s",
			 parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	rc = resolve(&d, base_dir, context, out);
	yaml_document_delete(&d.doc);
	if (rc)
		starling_k8s_kubeconfig_free(out);
	return rc;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void starling_k8s_kubeconfig_free(struct starling_k8s_kubeconfig *k)
{
	free(k->server);
	free(k->namespace);
	free(k->ca_file);
	free(k->ca_pem);
	free(k->cert_file);
	free(k->cert_pem);
	free(k->key_file);
	free_secret(k->key_pem);
	free_secret(k->token);
	free(k->token_file);
	free(k->username);
	free_secret(k->password);
	free(k->server_name);
	free(k->proxy_url);
	memset(k, 0, sizeof(*k));
}

/* ------------------------------------------------------------------------ */
/* Connections.                                                              */

static int read_file(const char *path, size_t max, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	*out = NULL;
	if (!f)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, max, f);
	if (ferror(f) || !feof(f)) {
		int e = ferror(f) ? -EIO : -EFBIG;

		fclose(f);
		free(buf);
		return e;
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	return 0;
}

static int set_server(struct starling_k8s_conn *c, const char *url)
{
	size_t n = strlen(url);

	while (n && url[n - 1] == '/')
		n--;
	c->server = strndup(url, n);
	return c->server ? 0 : -ENOMEM;
}

int starling_k8s_conn_from_kubeconfig(const char *path, const char *context,
				      struct starling_k8s_conn *out, char *err, size_t errlen)
{
	struct starling_k8s_kubeconfig k;
	struct starling_http_auth_settings s = {0};
	char *text, *dir, msg[256];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_file(path, 1 << 20, &text);
	if (rc) {
		snprintf(err, errlen, "kubeconfig_file %s: %s", path, strerror(-rc));
		return rc;
	}
	dir = strdup(path);
	if (!dir) {
		free(text);
		return -ENOMEM;
	}
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = 0;
	else
		dir[0] = 0;
	rc = starling_k8s_kubeconfig_parse(text, strlen(text), dir[0] ? dir : NULL, context, &k,
					   msg, sizeof(msg));
	explicit_bzero(text, strlen(text));
	free(text);
	free(dir);
	if (rc) {
		snprintf(err, errlen, "kubeconfig_file %s: %s", path, msg);
		return rc;
	}
	s.ca_file = k.ca_file;
	s.ca_pem = k.ca_pem;
	s.cert_file = k.cert_file;
	s.cert_pem = k.cert_pem;
	s.key_file = k.key_file;
	s.key_pem = k.key_pem;
	s.bearer_token = k.token;
	s.bearer_token_file = k.token ? NULL : k.token_file;
	if (!k.token && !k.token_file) {
		s.username = k.username;
		s.password = k.password;
	}
	s.server_name = k.server_name;
	s.proxy_url = k.proxy_url;
	s.insecure_skip_verify = k.insecure_skip_verify;
	s.follow_redirects = true;
	s.enable_http2 = true;
	rc = starling_http_auth_new(&s, &out->auth, msg, sizeof(msg));
	if (!rc)
		rc = set_server(out, k.server);
	if (!rc && k.namespace && !(out->namespace = strdup(k.namespace)))
		rc = -ENOMEM;
	if (rc == -EINVAL)
		snprintf(err, errlen, "kubeconfig_file %s: %s", path, msg);
	starling_k8s_kubeconfig_free(&k);
	if (rc)
		starling_k8s_conn_free(out);
	return rc;
}

int starling_k8s_conn_in_cluster(const char *sa_dir, struct starling_k8s_conn *out, char *err,
				 size_t errlen)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
	struct starling_http_auth_settings s = {0};
	char token[512], ca[512], nsf[512], msg[256], *ns = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!sa_dir)
		sa_dir = STARLING_K8S_SA_DIR;
	if (!h || !*h || !p || !*p) {
		snprintf(err, errlen,
			 "no api_server or kubeconfig_file, and not running in a cluster "
			 "(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset)");
		return -EINVAL;
	}
	snprintf(token, sizeof(token), "%s/token", sa_dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", sa_dir);
	snprintf(nsf, sizeof(nsf), "%s/namespace", sa_dir);
	if (access(token, R_OK)) {
		snprintf(err, errlen, "in-cluster: %s: %s", token, strerror(errno));
		return -EINVAL;
	}
	s.bearer_token_file = token; /* re-read when it rotates */
	s.ca_file = access(ca, R_OK) ? NULL : ca;
	s.follow_redirects = true;
	s.enable_http2 = true;
	rc = starling_http_auth_new(&s, &out->auth, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "in-cluster: %s", msg);
		return rc;
	}
	if (asprintf(&out->server, strchr(h, ':') ? "https://[%s]:%s" : "https://%s:%s", h, p) <
	    0) {
		out->server = NULL;
		starling_k8s_conn_free(out);
		return -ENOMEM;
	}
	if (!read_file(nsf, 256, &ns)) {
		size_t n = strlen(ns);

		while (n && (ns[n - 1] == '\n' || ns[n - 1] == ' ' || ns[n - 1] == '\r'))
			ns[--n] = 0;
		if (n)
			out->namespace = ns;
		else
			free(ns);
	}
	return 0;
}

/* Keys of STARLING_HTTP_CONFIG_KEYS that only make sense with api_server. */
static const char *const http_keys[] = {
    "basic_auth",
    "bearer_token",
    "bearer_token_file",
    "authorization",
    "tls_config",
    "oauth2",
    "http_headers",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
};

int starling_k8s_conn_from_config(const struct starling_host_api *api, const starling_config *node,
				  struct starling_k8s_conn *out, char *err, size_t errlen)
{
	const char *server = NULL, *kc = NULL;
	char msg[256];
	int rc;

	memset(out, 0, sizeof(*out));
	api->config_string(node, "api_server", &server);
	api->config_string(node, "kubeconfig_file", &kc);
	if (server && !*server)
		server = NULL;
	if (kc && !*kc)
		kc = NULL;
	if (server && kc) {
		snprintf(err, errlen, "%s: api_server and kubeconfig_file are mutually exclusive",
			 api->config_where(node));
		return -EINVAL;
	}
	if (!server) {
		for (size_t i = 0; i < sizeof(http_keys) / sizeof(http_keys[0]); i++) {
			if (api->config_lookup(node, http_keys[i])) {
				snprintf(err, errlen,
					 "%s: %s needs api_server (the kubeconfig or in-cluster "
					 "credentials are used otherwise)",
					 api->config_where(node), http_keys[i]);
				return -EINVAL;
			}
		}
		rc = kc ? starling_k8s_conn_from_kubeconfig(kc, NULL, out, msg, sizeof(msg))
			: starling_k8s_conn_in_cluster(NULL, out, msg, sizeof(msg));
		if (rc)
			snprintf(err, errlen, "%s: %s", api->config_where(node), msg);
		return rc;
	}
	if (strncmp(server, "http://", 7) && strncmp(server, "https://", 8)) {
		snprintf(err, errlen, "%s: api_server \"%s\": expected http:// or https://",
			 api->config_where(node), server);
		return -EINVAL;
	}
	rc = starling_http_auth_from_config(api, node, &out->auth, err, errlen);
	if (!rc)
		rc = set_server(out, server);
	if (rc)
		starling_k8s_conn_free(out);
	return rc;
}

void starling_k8s_conn_free(struct starling_k8s_conn *c)
{
	free(c->server);
	free(c->namespace);
	starling_http_auth_free(c->auth);
	memset(c, 0, sizeof(*c));
}
