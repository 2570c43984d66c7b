/*
 * Per-endpoint HTTP settings of a monitor (issue 10 h): `basicAuth`,
 * `bearerTokenSecret`, `authorization`, `tlsConfig`, `proxyUrl`,
 * `followRedirects`, `enableHttp2`, with the secret material read from the
 * Secrets and ConfigMaps of the monitor's namespace, as Prometheus Operator
 * resolves them (pkg/apis/monitoring/v1 http_config.go / tls_types.go,
 * pkg/assets/store.go, pkg/prometheus/resource_selector.go). Secret values
 * go into the auth profile only: never into messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "operator.h"

static const char *jstr(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const cJSON *jobj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

static int jbool(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* Base64 `data` of a Secret into a NUL-terminated string. */
static char *b64(const char *in)
{
	size_t n = strlen(in), pad = 0;
	char *out;
	int len;

	if (n % 4 || n > (1u << 24))
		return NULL;
	if (n == 0)
		return strdup("");
	while (pad < 2 && in[n - 1 - pad] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
	if (len < 0 || (size_t)len < pad) {
		free(out);
		return NULL;
	}
	out[len - (int)pad] = 0;
	if (strlen(out) != (size_t)len - pad) { /* NUL inside: unusable as text */
		free(out);
		return NULL;
	}
	return out;
}

/* A SecretKeySelector / ConfigMapKeySelector ({name, key}). */
static int key_value(const struct op_secrets *sc, bool secret, const char *ns, const cJSON *sel,
		     const char *what, char **out, char *err, size_t errlen)
{
	const char *name = jstr(sel, "name"), *key = jstr(sel, "key"), *v;
	const cJSON *obj;

	*out = NULL;
	if (!name || !*name || !key || !*key) {
		snprintf(err, errlen, "%s: a %s reference needs name and key", what,
			 secret ? "secret" : "configmap");
		return -EINVAL;
	}
	if (sc && sc->want)
		sc->want(sc->arg, secret, ns, name);
	obj = sc ? starling_k8s_store_get(secret ? sc->secrets : sc->configmaps, ns, name) : NULL;
	if (!obj) {
		snprintf(err, errlen, "%s: unable to get %s \"%s\"", what,
			 secret ? "secret" : "configmap", name);
		return -EINVAL;
	}
	v = jstr(jobj(obj, "data"), key);
	if (!v) {
		snprintf(err, errlen, "%s: key \"%s\" in %s \"%s\" not found", what, key,
			 secret ? "secret" : "configmap", name);
		return -EINVAL;
	}
	*out = secret ? b64(v) : strdup(v);
	if (!*out) {
		snprintf(err, errlen, "%s: key \"%s\" in %s \"%s\" is not valid text", what, key,
			 secret ? "secret" : "configmap", name);
		return -EINVAL;
	}
	return 0;
}

/* A SecretOrConfigMap: both set is an error, neither is "unset". */
static int secret_or_configmap(const struct op_secrets *sc, const char *ns, const cJSON *soc,
			       const char *what, char **out, char *err, size_t errlen)
{
	const cJSON *s = jobj(soc, "secret"), *c = jobj(soc, "configMap");

	*out = NULL;
	if (s && c) {
		snprintf(err, errlen, "%s: secret and configMap are mutually exclusive", what);
		return -EINVAL;
	}
	if (s)
		return key_value(sc, true, ns, s, what, out, err, errlen);
	if (c)
		return key_value(sc, false, ns, c, what, out, err, errlen);
	return 0;
}

/* tls.go: the CA must parse as a certificate, cert + key as a pair. */
static int check_pem(const char *ca, const char *cert, const char *key, char *err, size_t errlen)
{
	BIO *b;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int rc = 0;

	if (ca) {
		b = BIO_new_mem_buf(ca, -1);
		x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!x) {
			snprintf(err, errlen, "tlsConfig.ca: not a PEM certificate");
			return -EINVAL;
		}
		X509_free(x);
		x = NULL;
	}
	if (!cert && !key)
		return 0;
	if (!cert || !key) {
		snprintf(err, errlen, "tlsConfig: cert and keySecret must be set together");
		return -EINVAL;
	}
	b = BIO_new_mem_buf(cert, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(key, -1);
	k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!x || !k || X509_check_private_key(x, k) != 1) {
		snprintf(err, errlen, "tlsConfig: cert and keySecret are not a valid key pair");
		rc = -EINVAL;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

int op_endpoint_auth(const struct op_secrets *sc, const char *ns, const cJSON *ep,
		     struct starling_http_auth **out, char *err, size_t errlen)
{
	const cJSON *ba = jobj(ep, "basicAuth"), *bts = jobj(ep, "bearerTokenSecret"),
		    *az = jobj(ep, "authorization"), *tls = jobj(ep, "tlsConfig");
	struct starling_http_auth_settings s = {0};
	struct starling_http_oauth2_settings o2 = {0};
	const char *o2_scopes[32];
	struct starling_label o2_params[32];
	char *o2_id = NULL, *o2_secret = NULL;
	char *user = NULL, *pass = NULL, *token = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	char msg[256];
	int b, rc = 0, kinds;

	*out = NULL;
	/* An empty bearerTokenSecret ({} or no name) counts as unset, as the
	 * operator's generated config has no bearer token then. */
	if (bts && !jstr(bts, "name"))
		bts = NULL;
	kinds = !!ba + !!bts + !!az + !!jobj(ep, "oauth2");
	if (kinds > 1) {
		snprintf(err, errlen,
			 "at most one of authorization, basicAuth, oauth2 and bearerTokenSecret "
			 "may be set");
		return -EINVAL;
	}
	if (!kinds && !tls && !jstr(ep, "proxyUrl") && jbool(ep, "followRedirects") < 0 &&
	    jbool(ep, "enableHttp2") < 0 && jbool(ep, "proxyFromEnvironment") < 0)
		return 0;
	if (ba) {
		rc = key_value(sc, true, ns, jobj(ba, "username"), "basicAuth.username", &user, err,
			       errlen);
		if (!rc && jobj(ba, "password"))
			rc = key_value(sc, true, ns, jobj(ba, "password"), "basicAuth.password",
				       &pass, err, errlen);
	} else if (bts) {
		rc = key_value(sc, true, ns, bts, "bearerTokenSecret", &token, err, errlen);
	} else if (jobj(ep, "oauth2")) {
		/* OAuth2 (types.go): clientId is a SecretOrConfigMap,
		 * clientSecret a SecretKeySelector; the token URL, scopes and
		 * endpointParams are plain. */
		const cJSON *o = jobj(ep, "oauth2"), *e;
		size_t n = 0;

		o2.token_url = jstr(o, "tokenUrl");
		if (!o2.token_url || !*o2.token_url) {
			snprintf(err, errlen, "oauth2: tokenUrl is required");
			rc = -EINVAL;
		}
		if (!rc)
			rc = secret_or_configmap(sc, ns, jobj(o, "clientId"), "oauth2.clientId",
						 &o2_id, err, errlen);
		if (!rc && jobj(o, "clientSecret"))
			rc = key_value(sc, true, ns, jobj(o, "clientSecret"), "oauth2.clientSecret",
				       &o2_secret, err, errlen);
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "scopes"))
		{
			if (cJSON_IsString(e) && n < sizeof(o2_scopes) / sizeof(o2_scopes[0]))
				o2_scopes[n++] = e->valuestring;
		}
		o2.scopes = o2_scopes;
		o2.n_scopes = n;
		n = 0;
		cJSON_ArrayForEach(e, jobj(o, "endpointParams"))
		{
			if (cJSON_IsString(e) && n < sizeof(o2_params) / sizeof(o2_params[0])) {
				o2_params[n].name = e->string;
				o2_params[n++].value = e->valuestring;
			}
		}
		o2.endpoint_params = o2_params;
		o2.n_endpoint_params = n;
		o2.client_id = o2_id;
		o2.client_secret = o2_secret;
		o2.conn = &s;
		s.oauth2 = &o2;
	} else if (az) {
		const char *type = jstr(az, "type");

		if (type && strcasecmp(type, "Basic") == 0) {
			snprintf(err, errlen, "authorization: type Basic is not allowed");
			rc = -EINVAL;
		} else if (!jobj(az, "credentials")) {
			snprintf(err, errlen, "authorization: credentials are required");
			rc = -EINVAL;
		} else {
			rc = key_value(sc, true, ns, jobj(az, "credentials"),
				       "authorization.credentials", &token, err, errlen);
			s.authorization_type = type && *type ? type : "Bearer";
		}
	}
	if (!rc && tls) {
		const char *files[3] = {jstr(tls, "caFile"), jstr(tls, "certFile"),
					jstr(tls, "keyFile")};

		if ((files[0] || files[1] || files[2]) && !(sc && sc->allow_files)) {
			snprintf(err, errlen,
				 "tlsConfig: caFile/certFile/keyFile need "
				 "allow_arbitrary_file_access");
			rc = -EINVAL;
		}
		if (!rc)
			rc = secret_or_configmap(sc, ns, jobj(tls, "ca"), "tlsConfig.ca", &ca, err,
						 errlen);
		if (!rc)
			rc = secret_or_configmap(sc, ns, jobj(tls, "cert"), "tlsConfig.cert", &cert,
						 err, errlen);
		if (!rc && jobj(tls, "keySecret"))
			rc = key_value(sc, true, ns, jobj(tls, "keySecret"), "tlsConfig.keySecret",
				       &key, err, errlen);
		if (!rc && ((ca && files[0]) || (cert && files[1]) || (key && files[2]))) {
			snprintf(err, errlen,
				 "tlsConfig: ca/caFile, cert/certFile, keySecret/keyFile are "
				 "mutually exclusive");
			rc = -EINVAL;
		}
		if (!rc)
			rc = check_pem(ca, cert, key, err, errlen);
		s.ca_file = files[0];
		s.cert_file = files[1];
		s.key_file = files[2];
		s.server_name = jstr(tls, "serverName");
		s.insecure_skip_verify = jbool(tls, "insecureSkipVerify") == 1;
		s.min_version = jstr(tls, "minVersion");
	}
	if (!rc) {
		s.username = user;
		s.password = pass;
		if (az)
			s.authorization_credentials = token;
		else
			s.bearer_token = token;
		s.ca_pem = ca;
		s.cert_pem = cert;
		s.key_pem = key;
		s.proxy_url = jstr(ep, "proxyUrl");
		s.no_proxy = jstr(ep, "noProxy");
		s.proxy_from_environment = jbool(ep, "proxyFromEnvironment") == 1;
		b = jbool(ep, "followRedirects");
		s.follow_redirects = b != 0;
		b = jbool(ep, "enableHttp2");
		s.enable_http2 = b == 1;
		rc = starling_http_auth_new(&s, out, msg, sizeof(msg));
		if (rc == -EINVAL)
			snprintf(err, errlen, "%s", msg);
	}
	free(o2_id);
	free_secret(o2_secret);
	free(user);
	free_secret(pass);
	free_secret(token);
	free(ca);
	free(cert);
	free_secret(key);
	return rc;
}

/* Every Secret / ConfigMap reference of an endpoint, as (secret?, name). */
static void refs_of(const cJSON *ep, void (*fn)(void *, bool, const char *), void *arg)
{
	const cJSON *ba = jobj(ep, "basicAuth"), *tls = jobj(ep, "tlsConfig");
	const cJSON *sk[] = {jobj(ba, "username"),
			     jobj(ba, "password"),
			     jobj(ep, "bearerTokenSecret"),
			     jobj(jobj(ep, "authorization"), "credentials"),
			     jobj(tls, "keySecret"),
			     jobj(jobj(tls, "ca"), "secret"),
			     jobj(jobj(tls, "cert"), "secret")};
	const cJSON *o2 = jobj(ep, "oauth2");
	const cJSON *cm[] = {jobj(jobj(tls, "ca"), "configMap"),
			     jobj(jobj(tls, "cert"), "configMap"),
			     jobj(jobj(o2, "clientId"), "configMap")};
	const cJSON *sk2[] = {jobj(jobj(o2, "clientId"), "secret"), jobj(o2, "clientSecret")};

	for (size_t i = 0; i < sizeof(sk2) / sizeof(sk2[0]); i++)
		if (jstr(sk2[i], "name"))
			fn(arg, true, jstr(sk2[i], "name"));

	for (size_t i = 0; i < sizeof(sk) / sizeof(sk[0]); i++)
		if (jstr(sk[i], "name"))
			fn(arg, true, jstr(sk[i], "name"));
	for (size_t i = 0; i < sizeof(cm) / sizeof(cm[0]); i++)
		if (jstr(cm[i], "name"))
			fn(arg, false, jstr(cm[i], "name"));
}

struct fp_ctx {
	const struct op_secrets *sc;
	const char *ns;
	uint64_t h;
};

static void fp_ref(void *arg, bool secret, const char *name)
{
	struct fp_ctx *f = arg;
	const cJSON *o =
	    f->sc ? starling_k8s_store_get(secret ? f->sc->secrets : f->sc->configmaps, f->ns, name)
		  : NULL;
	const char *rv = o ? jstr(jobj(o, "metadata"), "resourceVersion") : NULL;
	char *data = o ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(o, "data")) : NULL;

	f->h = f->h * 0x100000001b3ull ^ XXH3_64bits(name, strlen(name)) ^ (secret ? 1 : 2);
	if (rv)
		f->h ^= XXH3_64bits(rv, strlen(rv)) * 31;
	if (data)
		f->h ^= XXH3_64bits(data, strlen(data)) * 961;
	if (!o)
		f->h ^= 0x5bd1e995; /* missing: changes when it appears */
	free(data);
}

uint64_t op_monitor_refs_fp(const struct op_secrets *sc, const cJSON *monitor, enum op_kind kind)
{
	const cJSON *spec = jobj(monitor, "spec"), *ep;
	struct fp_ctx f = {sc, jstr(jobj(monitor, "metadata"), "namespace"), 0};

	cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(spec, kind == OP_POD_MONITORS
									  ? "podMetricsEndpoints"
									  : "endpoints"))
	    refs_of(ep, fp_ref, &f);
	return f.h;
}

struct refs_ctx {
	const char *ns;
	void (*fn)(void *arg, bool secret, const char *ns, const char *name);
	void *arg;
};

static void ref_cb(void *arg, bool secret, const char *name)
{
	struct refs_ctx *r = arg;

	r->fn(r->arg, secret, r->ns, name);
}

void op_monitor_refs(const cJSON *monitor, enum op_kind kind,
		     void (*fn)(void *arg, bool secret, const char *ns, const char *name),
		     void *arg)
{
	const cJSON *ep;
	struct refs_ctx r = {jstr(jobj(monitor, "metadata"), "namespace"), fn, arg};

	if (!r.ns)
		return;
	cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(
				   jobj(monitor, "spec"),
				   kind == OP_POD_MONITORS ? "podMetricsEndpoints" : "endpoints"))
	    refs_of(ep, ref_cb, &r);
}
