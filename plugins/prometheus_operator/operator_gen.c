/*
 * Kubernetes objects -> scrape jobs and target label sets.
 *
 * A monitor endpoint becomes one job whose relabel rules are the ones
 * Prometheus Operator / Alloy generate (configgen/config_gen_podmonitor.go,
 * config_gen_servicemonitor.go): the CRD's selector, port and label options
 * are rules over `__meta_kubernetes_*` labels, exactly as in the generated
 * Prometheus config, so that a user's `relabelings` see the same labels.
 * The meta labels of each candidate are Prometheus' kubernetes_sd pod,
 * endpoints and endpointslice roles (the SDK's starling_k8s_targets()).
 * Nothing here does I/O or keeps global state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "operator.h"

/* ------------------------------------------------------------------------ */
/* JSON helpers.                                                             */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jobj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

static const cJSON *jarr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsArray(v) ? v : NULL;
}

/* Tri-state bool: -1 absent. */
static int jbool(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? 1 : 0;
	return -1;
}

static const char *meta_str(const cJSON *o, const char *key)
{
	return jstr(jobj(o, "metadata"), key);
}

void op_cluster_free(struct op_cluster *c)
{
	starling_k8s_store_clear(&c->monitors, -1);
	starling_k8s_store_clear(&c->pods, -1);
	starling_k8s_store_clear(&c->endpoints, -1);
	starling_k8s_store_clear(&c->services, -1);
	starling_k8s_store_clear(&c->endpointslices, -1);
	starling_k8s_store_clear(&c->nodes, -1);
	starling_k8s_store_clear(&c->secrets, -1);
	starling_k8s_store_clear(&c->configmaps, -1);
}

/* ------------------------------------------------------------------------ */
/* Selector on monitor labels.                                               */

void op_selector_free(struct op_selector *s)
{
	for (size_t i = 0; i < s->n_match_labels; i++) {
		free((char *)s->match_labels[i].name);
		free((char *)s->match_labels[i].value);
	}
	free(s->match_labels);
	for (size_t i = 0; i < s->n_exprs; i++) {
		free(s->exprs[i].key);
		for (size_t j = 0; j < s->exprs[i].n_values; j++)
			free(s->exprs[i].values[j]);
		free(s->exprs[i].values);
	}
	free(s->exprs);
	memset(s, 0, sizeof(*s));
}

int op_sel_op_parse(const char *s, enum op_sel_op *out)
{
	static const char *const names[] = {"In", "NotIn", "Exists", "DoesNotExist"};

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum op_sel_op)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool op_selector_matches(const struct op_selector *s, const cJSON *labels)
{
	for (size_t i = 0; i < s->n_match_labels; i++) {
		const char *v = jstr(labels, s->match_labels[i].name);

		if (!v || strcmp(v, s->match_labels[i].value) != 0)
			return false;
	}
	for (size_t i = 0; i < s->n_exprs; i++) {
		const struct op_sel_expr *e = &s->exprs[i];
		const char *v = jstr(labels, e->key);
		bool in = false;

		for (size_t j = 0; v && j < e->n_values; j++)
			in |= strcmp(v, e->values[j]) == 0;
		switch (e->op) {
		case OP_SEL_IN:
			if (!in)
				return false;
			break;
		case OP_SEL_NOT_IN:
			if (in)
				return false;
			break;
		case OP_SEL_EXISTS:
			if (!v)
				return false;
			break;
		case OP_SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

int op_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ms", 1},	    {"h", 3600000}, {"m", 60000},    {"s", 1000},
		     {"us", 0.001}, {"µs", 0.001},  {"ns", 0.000001}};
	double total = 0;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		size_t u;

		if (end == s || v < 0)
			return -EINVAL;
		s = end;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			size_t l = strlen(units[u].unit);

			if (strncmp(s, units[u].unit, l) == 0) {
				total += v * units[u].ms;
				s += l;
				break;
			}
		}
		if (u == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
	}
	*ms = (int64_t)total;
	return 0;
}

void op_job_get(struct op_job *j)
{
	atomic_fetch_add(&j->refs, 1);
}

static void job_free(struct op_job *j)
{
	scrape_config_release(&j->cfg);
	starling_relabel_rules_free(j->rules);
	for (size_t i = 0; i < j->n_namespaces; i++)
		free(j->namespaces[i]);
	free(j->namespaces);
	free(j->monitor);
	cJSON_Delete(j->selector);
	free(j);
}

void op_job_put(struct op_job *j)
{
	if (j && atomic_fetch_sub(&j->refs, 1) == 1)
		job_free(j);
}

/* ------------------------------------------------------------------------ */
/* Relabel rule lists built in code.                                         */

struct rule_buf {
	struct starling_relabel_config *v;
	size_t n, cap;
	void **keep; /* strings and arrays to free once compiled */
	size_t n_keep, keep_cap;
	bool oom;
};

static void *rb_keep(struct rule_buf *b, void *p)
{
	if (!p) {
		b->oom = true;
		return NULL;
	}
	if (b->n_keep == b->keep_cap) {
		size_t cap = b->keep_cap ? b->keep_cap * 2 : 32;
		void **v = realloc(b->keep, cap * sizeof(*v));

		if (!v) {
			free(p);
			b->oom = true;
			return NULL;
		}
		b->keep = v;
		b->keep_cap = cap;
	}
	b->keep[b->n_keep++] = p;
	return p;
}

static const char *rb_fmt(struct rule_buf *b, const char *fmt, ...) STARLING_PRINTF(2, 3);
static const char *rb_fmt(struct rule_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	return rb_keep(b, rc < 0 ? NULL : s);
}

static struct starling_relabel_config *rb_add(struct rule_buf *b)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct starling_relabel_config *v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->oom = true;
			return NULL;
		}
		b->v = v;
		b->cap = cap;
	}
	memset(&b->v[b->n], 0, sizeof(b->v[0]));
	return &b->v[b->n++];
}

/* One rule; srcs is a NULL-terminated list of source labels (copied). */
static void rb_rule(struct rule_buf *b, const char *action, const char *regex, const char *target,
		    const char *replacement, const char *const *srcs)
{
	struct starling_relabel_config *r = rb_add(b);
	size_t n = 0;
	const char **s;

	if (!r)
		return;
	while (srcs && srcs[n])
		n++;
	if (n) {
		s = rb_keep(b, calloc(n, sizeof(*s)));
		if (!s)
			return;
		for (size_t i = 0; i < n; i++)
			s[i] = rb_fmt(b, "%s", srcs[i]);
		r->source_labels = s;
		r->n_source_labels = n;
	}
	r->action = action;
	r->regex = regex;
	r->target_label = target;
	r->replacement = replacement;
}

static void rb_free(struct rule_buf *b)
{
	for (size_t i = 0; i < b->n_keep; i++)
		free(b->keep[i]);
	free(b->keep);
	free(b->v);
}

/* The RelabelConfig objects of a CRD (relabelings / metricRelabelings). */
static int rb_crd_rules(struct rule_buf *b, const cJSON *arr, char *err, size_t errlen,
			const char *what)
{
	const cJSON *r;
	size_t idx = 0;

	cJSON_ArrayForEach(r, arr)
	{
		struct starling_relabel_config *c;
		const cJSON *src = jarr(r, "sourceLabels"), *s, *mod;
		const char *action = jstr(r, "action");
		size_t n = 0;

		idx++;
		if (!cJSON_IsObject(r)) {
			snprintf(err, errlen, "%s[%zu]: not an object", what, idx - 1);
			return -EINVAL;
		}
		c = rb_add(b);
		if (!c)
			return -ENOMEM;
		if (src) {
			const char **v =
			    rb_keep(b, calloc((size_t)cJSON_GetArraySize(src) + 1, sizeof(*v)));

			if (!v)
				return -ENOMEM;
			cJSON_ArrayForEach(s, src)
			{
				if (!cJSON_IsString(s)) {
					snprintf(err, errlen,
						 "%s[%zu]: sourceLabels must be strings", what,
						 idx - 1);
					return -EINVAL;
				}
				v[n++] = s->valuestring;
			}
			c->source_labels = v;
			c->n_source_labels = n;
		}
		c->separator = jstr(r, "separator");
		c->target_label = jstr(r, "targetLabel");
		/* An empty regex is left out (promcfg.go generateRelabelConfig),
		 * so the default (.*) applies. */
		c->regex = jstr(r, "regex");
		if (c->regex && !*c->regex)
			c->regex = NULL;
		c->replacement = jstr(r, "replacement");
		mod = cJSON_GetObjectItemCaseSensitive(r, "modulus");
		if (cJSON_IsNumber(mod) && mod->valuedouble > 0)
			c->modulus = (uint64_t)mod->valuedouble;
		if (action) {
			/* The CRD accepts CamelCase ("LabelMap") too. */
			char *lower = rb_keep(b, strdup(action));

			if (!lower)
				return -ENOMEM;
			for (char *p = lower; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			c->action = lower;
		}
	}
	return b->oom ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------------ */
/* Monitor -> jobs.                                                          */

/* Push selector rules: matchLabels (keys sorted) then matchExpressions. */
static int selector_rules(struct rule_buf *b, const cJSON *sel, const char *prefix, char *err,
			  size_t errlen)
{
	const cJSON *ml = jobj(sel, "matchLabels"), *me = jarr(sel, "matchExpressions"), *e;
	const cJSON *sorted[256];
	size_t n = 0;
	char k[256];

	cJSON_ArrayForEach(e, ml)
	{
		size_t i = n;

		if (!cJSON_IsString(e) || n == 256) {
			snprintf(err, errlen, "selector.matchLabels: bad value of \"%s\"",
				 e->string ? e->string : "");
			return -EINVAL;
		}
		while (i > 0 && strcmp(sorted[i - 1]->string, e->string) > 0) {
			sorted[i] = sorted[i - 1];
			i--;
		}
		sorted[i] = e;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const char *srcs[3];

		starling_k8s_sanitize(sorted[i]->string, k, sizeof(k));
		srcs[0] = rb_fmt(b, "__meta_kubernetes_%s_label_%s", prefix, k);
		srcs[1] = rb_fmt(b, "__meta_kubernetes_%s_labelpresent_%s", prefix, k);
		srcs[2] = NULL;
		rb_rule(b, "keep", rb_fmt(b, "(%s);true", sorted[i]->valuestring), NULL, NULL,
			srcs);
	}
	cJSON_ArrayForEach(e, me)
	{
		const char *key = jstr(e, "key"), *op = jstr(e, "operator");
		const cJSON *vals = jarr(e, "values"), *v;
		enum op_sel_op o;
		const char *srcs[3];
		size_t len = 0;
		char alt[2048] = "";

		if (!key || !op || op_sel_op_parse(op, &o)) {
			snprintf(err, errlen, "selector.matchExpressions: bad key/operator");
			return -EINVAL;
		}
		starling_k8s_sanitize(key, k, sizeof(k));
		srcs[0] = rb_fmt(b, "__meta_kubernetes_%s_label_%s", prefix, k);
		srcs[1] = rb_fmt(b, "__meta_kubernetes_%s_labelpresent_%s", prefix, k);
		srcs[2] = NULL;
		if (o == OP_SEL_EXISTS || o == OP_SEL_DOES_NOT_EXIST) {
			rb_rule(b, o == OP_SEL_EXISTS ? "keep" : "drop", "true", NULL, NULL,
				srcs + 1);
			continue;
		}
		cJSON_ArrayForEach(v, vals)
		{
			if (!cJSON_IsString(v))
				continue;
			len += (size_t)snprintf(alt + len, sizeof(alt) - len, "%s%s",
						len ? "|" : "", v->valuestring);
			if (len >= sizeof(alt)) {
				snprintf(err, errlen, "selector.matchExpressions: too many values");
				return -EINVAL;
			}
		}
		rb_rule(b, o == OP_SEL_IN ? "keep" : "drop", rb_fmt(b, "(%s);true", alt), NULL,
			NULL, srcs);
	}
	return 0;
}

/* Label-list options (podTargetLabels, targetLabels): `<l>` <- meta label. */
static void copy_label_rules(struct rule_buf *b, const cJSON *list, const char *prefix)
{
	const cJSON *l;
	char k[256];

	cJSON_ArrayForEach(l, list)
	{
		const char *srcs[2] = {NULL, NULL};

		if (!cJSON_IsString(l))
			continue;
		starling_k8s_sanitize(l->valuestring, k, sizeof(k));
		srcs[0] = rb_fmt(b, "__meta_kubernetes_%s_label_%s", prefix, k);
		rb_rule(b, "replace", "(.+)", rb_fmt(b, "%s", k), "${1}", srcs);
	}
}

/* A CRD ByteSize ("512KB", "10MiB", "1.5GB", "0"): units are powers of 1024
 * with or without the "i", as Prometheus' units.ParseBase2Bytes reads them. */
static int parse_byte_size(const char *s, int64_t *out)
{
	static const char units[] = "KMGTPE";
	char *end;
	double v = strtod(s, &end), mul = 1;
	const char *u;

	if (end == s || v < 0)
		return -EINVAL;
	if (!*end) {
		if (v != 0)
			return -EINVAL; /* a bare number must be 0 */
		*out = 0;
		return 0;
	}
	u = strchr(units, *end);
	if (u && *end) {
		for (const char *k = units; k <= u; k++)
			mul *= 1024;
		end++;
		if (*end == 'i')
			end++;
	}
	if (strcmp(end, "B") != 0 || v * mul > 9e18)
		return -EINVAL;
	*out = (int64_t)(v * mul);
	return 0;
}

/* scrapeProtocols / fallbackScrapeProtocol -> Accept header and fallback
 * parser, weighted like Prometheus' acceptHeader(). */
static int protocols(struct scrape_config *c, const cJSON *spec, char *err, size_t errlen)
{
	static const struct {
		const char *name, *media;
		enum starling_expo_format fmt;
	} known[] = {
	    {"OpenMetricsText1.0.0",
	     "application/openmetrics-text;version=1.0.0;escaping=underscores",
	     STARLING_EXPO_OPENMETRICS},
	    {"OpenMetricsText0.0.1", "application/openmetrics-text;version=0.0.1",
	     STARLING_EXPO_OPENMETRICS},
	    {"PrometheusText1.0.0", "text/plain;version=1.0.0;escaping=underscores",
	     STARLING_EXPO_PROMETHEUS},
	    {"PrometheusText0.0.4", "text/plain;version=0.0.4", STARLING_EXPO_PROMETHEUS},
	};
	const cJSON *list = jarr(spec, "scrapeProtocols"), *p;
	const char *fb = jstr(spec, "fallbackScrapeProtocol");
	size_t n = 0, len;
	int w;

	c->fallback_format = STARLING_EXPO_PROMETHEUS;
	if (fb) {
		size_t k;

		for (k = 0; k < 4 && strcmp(fb, known[k].name); k++)
			;
		if (k == 4) {
			snprintf(err, errlen, "unsupported fallbackScrapeProtocol \"%s\"", fb);
			return -EINVAL;
		}
		c->fallback_format = known[k].fmt;
	}
	/* PrometheusProto cannot be parsed here: left out of the negotiation. */
	cJSON_ArrayForEach(p, list) n +=
	    !(cJSON_IsString(p) && strcmp(p->valuestring, "PrometheusProto") == 0);
	if (!n) {
		c->accept = strdup("Accept: " STARLING_EXPO_ACCEPT_HEADER);
		return c->accept ? 0 : -ENOMEM;
	}
	c->accept = malloc(1024);
	if (!c->accept)
		return -ENOMEM;
	len = (size_t)snprintf(c->accept, 1024, "Accept: ");
	w = (int)n + 1;
	cJSON_ArrayForEach(p, list)
	{
		size_t k;

		if (cJSON_IsString(p) && strcmp(p->valuestring, "PrometheusProto") == 0)
			continue;
		for (k = 0;
		     k < 4 && !(cJSON_IsString(p) && strcmp(p->valuestring, known[k].name) == 0);
		     k++)
			;
		if (k == 4) {
			snprintf(err, errlen,
				 "unsupported scrapeProtocols entry (supported: "
				 "OpenMetricsText1.0.0, OpenMetricsText0.0.1, "
				 "PrometheusText1.0.0, PrometheusText0.0.4)");
			return -EINVAL;
		}
		if (w < 2 || len > 900) {
			snprintf(err, errlen, "scrapeProtocols: too many entries");
			return -EINVAL;
		}
		len += (size_t)snprintf(c->accept + len, 1024 - len, "%s;q=0.%d,", known[k].media,
					w--);
	}
	snprintf(c->accept + len, 1024 - len, "*/*;q=0.%d", w);
	return 0;
}

static int fill_scrape_config(const struct op_defaults *d, struct op_job *j, const cJSON *spec,
			      const cJSON *ep, struct rule_buf *mb, char *err, size_t errlen)
{
	struct scrape_config *c = &j->cfg;
	const char *s, *s_timeout;
	const cJSON *params, *p, *v;
	int b, rc;
	char frac[16];

	c->interval_ms = d->interval_ms;
	c->timeout_ms = d->timeout_ms;
	s = jstr(ep, "interval");
	if (s && op_parse_duration(s, &c->interval_ms)) {
		snprintf(err, errlen, "invalid interval \"%s\"", s);
		return -EINVAL;
	}
	s = s_timeout = jstr(ep, "scrapeTimeout");
	if (s && op_parse_duration(s, &c->timeout_ms)) {
		snprintf(err, errlen, "invalid scrapeTimeout \"%s\"", s);
		return -EINVAL;
	}
	if (c->interval_ms <= 0)
		c->interval_ms = d->interval_ms;
	/* An explicit scrapeTimeout above the interval rejects the monitor
	 * (resource_selector.go validateScrapeIntervalAndTimeout); a default
	 * timeout is clamped to the interval, as Prometheus does. */
	if (s_timeout && c->timeout_ms > c->interval_ms) {
		snprintf(err, errlen, "scrapeTimeout \"%s\" greater than scrapeInterval (%lld ms)",
			 s_timeout, (long long)c->interval_ms);
		return -EINVAL;
	}
	if (c->timeout_ms <= 0 || c->timeout_ms > c->interval_ms)
		c->timeout_ms = c->interval_ms;
	s = jstr(ep, "path");
	c->metrics_path = strdup(s && *s ? s : "/metrics");
	s = jstr(ep, "scheme");
	c->scheme = strdup(s && *s ? s : "http");
	if (!c->metrics_path || !c->scheme)
		return -ENOMEM;
	for (char *q = c->scheme; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	if (strcmp(c->scheme, "http") && strcmp(c->scheme, "https")) {
		snprintf(err, errlen, "unsupported scheme \"%s\"", c->scheme);
		return -EINVAL;
	}
	params = jobj(ep, "params");
	cJSON_ArrayForEach(p, params)
	{
		/* map(list(string)): every value is sent (Prometheus' params
		 * are url.Values); __param_<name> holds the first. */
		const cJSON *vals = cJSON_IsArray(p) ? p : NULL;

		for (v = vals ? vals->child : p; v; v = vals ? v->next : NULL) {
			struct starling_scrape_param *np;

			if (!cJSON_IsString(v))
				continue;
			np = realloc(c->params, (c->n_params + 1) * sizeof(*np));
			if (!np)
				return -ENOMEM;
			c->params = np;
			np[c->n_params].name = strdup(p->string);
			np[c->n_params].value = strdup(v->valuestring);
			c->n_params++;
			if (!np[c->n_params - 1].name || !np[c->n_params - 1].value)
				return -ENOMEM;
		}
	}
	b = jbool(ep, "honorLabels");
	c->honor_labels = b == 1;
	b = jbool(ep, "honorTimestamps");
	c->honor_timestamps = b != 0;
	b = jbool(ep, "trackTimestampsStaleness");
	c->track_timestamps_staleness = b == 1;
	c->enable_compression = true;
	c->body_size_limit = SCRAPE_SAFETY_BODY_LIMIT;
	s = jstr(spec, "bodySizeLimit");
	if (s) {
		int64_t lim;

		if (parse_byte_size(s, &lim)) {
			snprintf(err, errlen, "invalid bodySizeLimit \"%s\"", s);
			return -EINVAL;
		}
		if (lim > 0)
			c->body_size_limit = lim;
	}
	v = cJSON_GetObjectItemCaseSensitive(spec, "sampleLimit");
	c->sample_limit =
	    cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : d->sample_limit;
	v = cJSON_GetObjectItemCaseSensitive(spec, "labelLimit");
	if (cJSON_IsNumber(v) && v->valuedouble > 0)
		c->label_limit = (uint64_t)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(spec, "labelNameLengthLimit");
	if (cJSON_IsNumber(v) && v->valuedouble > 0)
		c->label_name_length_limit = (uint64_t)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(spec, "labelValueLengthLimit");
	if (cJSON_IsNumber(v) && v->valuedouble > 0)
		c->label_value_length_limit = (uint64_t)v->valuedouble;
	c->clustering = d->clustering;
	rc = protocols(c, spec, err, errlen);
	if (rc)
		return rc;
	snprintf(c->timeout_header, sizeof(c->timeout_header),
		 "X-Prometheus-Scrape-Timeout-Seconds: %lld", (long long)(c->timeout_ms / 1000));
	if (c->timeout_ms % 1000) {
		size_t l = strlen(c->timeout_header);

		snprintf(frac, sizeof(frac), ".%03lld", (long long)(c->timeout_ms % 1000));
		while (frac[strlen(frac) - 1] == '0')
			frac[strlen(frac) - 1] = '\0';
		snprintf(c->timeout_header + l, sizeof(c->timeout_header) - l, "%s", frac);
	}
	rc = rb_crd_rules(mb, jarr(ep, "metricRelabelings"), err, errlen, "metricRelabelings");
	if (rc)
		return rc;
	if (mb->n) {
		char e2[200];

		rc = starling_relabel_rules_new(mb->v, mb->n, &c->metric_relabel, e2, sizeof(e2));
		if (rc) {
			snprintf(err, errlen, "metricRelabelings: %s", e2);
			return rc;
		}
	}
	return 0;
}

static int job_namespaces(struct op_job *j, const cJSON *spec, const char *mns)
{
	const cJSON *nsel = jobj(spec, "namespaceSelector"), *names, *n;

	if (jbool(nsel, "any") == 1)
		return 0;
	names = jarr(nsel, "matchNames");
	if (names && cJSON_GetArraySize(names) > 0) {
		j->namespaces = calloc((size_t)cJSON_GetArraySize(names), sizeof(char *));
		if (!j->namespaces)
			return -ENOMEM;
		cJSON_ArrayForEach(n, names)
		{
			if (!cJSON_IsString(n))
				continue;
			j->namespaces[j->n_namespaces] = strdup(n->valuestring);
			if (!j->namespaces[j->n_namespaces++])
				return -ENOMEM;
		}
		return 0;
	}
	j->namespaces = calloc(1, sizeof(char *));
	if (!j->namespaces)
		return -ENOMEM;
	j->namespaces[0] = strdup(mns);
	j->n_namespaces = 1;
	return j->namespaces[0] ? 0 : -ENOMEM;
}

/* The generated target relabelling of one endpoint (see file comment). */
static int endpoint_rules(const struct op_defaults *d, const cJSON *mon, const cJSON *spec,
			  const cJSON *ep, struct rule_buf *b, char *err, size_t errlen)
{
	bool pm = d->kind == OP_POD_MONITORS;
	const char *ns = meta_str(mon, "namespace"), *name = meta_str(mon, "name");
	const char *port = jstr(ep, "port"), *job_label = jstr(spec, "jobLabel");
	const cJSON *tp = cJSON_GetObjectItemCaseSensitive(ep, "targetPort");
	const cJSON *pn = cJSON_GetObjectItemCaseSensitive(ep, "portNumber");
	const char *src1[2] = {NULL, NULL}, *src2[3] = {NULL, NULL, NULL};
	char k[256];
	int rc;

	src1[0] = "job";
	rb_rule(b, "replace", NULL, "__tmp_prometheus_job_name", NULL, src1);
	if (pm && jbool(ep, "filterRunning") != 0) {
		src1[0] = "__meta_kubernetes_pod_phase";
		rb_rule(b, "drop", "(Failed|Succeeded)", NULL, NULL, src1);
	}
	rc = selector_rules(b, jobj(spec, "selector"), pm ? "pod" : "service", err, errlen);
	if (rc)
		return rc;
	/* Port selection. port and a string targetPort are regexes, not
	 * literals (promcfg.go puts them into `regex` as they are). */
	if (port && *port) {
		src1[0] = pm		     ? "__meta_kubernetes_pod_container_port_name"
			  : d->endpointslice ? "__meta_kubernetes_endpointslice_port_name"
					     : "__meta_kubernetes_endpoint_port_name";
		rb_rule(b, "keep", rb_fmt(b, "%s", port), NULL, NULL, src1);
	} else if (pm && cJSON_IsNumber(pn) && pn->valueint != 0) {
		src1[0] = "__meta_kubernetes_pod_container_port_number";
		rb_rule(b, "keep", rb_fmt(b, "%d", pn->valueint), NULL, NULL, src1);
	} else if (cJSON_IsString(tp) && *tp->valuestring) {
		src1[0] = "__meta_kubernetes_pod_container_port_name";
		rb_rule(b, "keep", rb_fmt(b, "%s", tp->valuestring), NULL, NULL, src1);
	} else if (cJSON_IsNumber(tp) && tp->valueint != 0) {
		src1[0] = "__meta_kubernetes_pod_container_port_number";
		rb_rule(b, "keep", rb_fmt(b, "%d", tp->valueint), NULL, NULL, src1);
	}
	if (!pm) {
		src2[0] = d->endpointslice ? "__meta_kubernetes_endpointslice_address_target_kind"
					   : "__meta_kubernetes_endpoint_address_target_kind";
		src2[1] = d->endpointslice ? "__meta_kubernetes_endpointslice_address_target_name"
					   : "__meta_kubernetes_endpoint_address_target_name";
		rb_rule(b, "replace", "Node;(.*)", "node", "${1}", src2);
		rb_rule(b, "replace", "Pod;(.*)", "pod", "${1}", src2);
	}
	src1[0] = "__meta_kubernetes_namespace";
	rb_rule(b, "replace", NULL, "namespace", NULL, src1);
	if (!pm) {
		src1[0] = "__meta_kubernetes_service_name";
		rb_rule(b, "replace", NULL, "service", NULL, src1);
	}
	src1[0] = "__meta_kubernetes_pod_container_name";
	rb_rule(b, "replace", NULL, "container", NULL, src1);
	src1[0] = "__meta_kubernetes_pod_name";
	rb_rule(b, "replace", NULL, "pod", NULL, src1);
	if (!pm && jbool(ep, "filterRunning") != 0) {
		src1[0] = "__meta_kubernetes_pod_phase";
		rb_rule(b, "drop", "(Failed|Succeeded)", NULL, NULL, src1);
	}
	if (!pm)
		copy_label_rules(b, jarr(spec, "targetLabels"), "service");
	copy_label_rules(b, jarr(spec, "podTargetLabels"), "pod");
	/* job */
	if (pm) {
		rb_rule(b, "replace", NULL, "job", rb_fmt(b, "%s/%s", ns, name), NULL);
	} else {
		src1[0] = "__meta_kubernetes_service_name";
		rb_rule(b, "replace", NULL, "job", NULL, src1);
	}
	if (job_label && *job_label) {
		starling_k8s_sanitize(job_label, k, sizeof(k));
		src1[0] = rb_fmt(b, "__meta_kubernetes_%s_label_%s", pm ? "pod" : "service", k);
		rb_rule(b, "replace", "(.+)", "job", "${1}", src1);
	}
	/* endpoint = port, else targetPort.String(); portNumber alone sets
	 * none (promcfg.go generatePodMonitorConfig). */
	if (port && *port)
		rb_rule(b, "replace", NULL, "endpoint", port, NULL);
	else if (cJSON_IsString(tp) && *tp->valuestring)
		rb_rule(b, "replace", NULL, "endpoint", tp->valuestring, NULL);
	else if (cJSON_IsNumber(tp) && tp->valueint != 0)
		rb_rule(b, "replace", NULL, "endpoint", rb_fmt(b, "%d", tp->valueint), NULL);
	rc = rb_crd_rules(b, jarr(ep, "relabelings"), err, errlen, "relabelings");
	if (rc)
		return rc;
	return b->oom ? -ENOMEM : 0;
}

uint64_t op_monitor_fingerprint(const cJSON *monitor)
{
	const char *ns = meta_str(monitor, "namespace"), *name = meta_str(monitor, "name");
	char *text = cJSON_PrintUnformatted(jobj(monitor, "spec"));
	uint64_t fp;

	fp = text ? XXH3_64bits(text, strlen(text)) : 0;
	free(text);
	if (ns)
		fp ^= XXH3_64bits(ns, strlen(ns)) * 31;
	if (name)
		fp ^= XXH3_64bits(name, strlen(name)) * 961;
	return fp;
}

uint64_t op_monitor_job_fp(const struct op_defaults *d, const cJSON *monitor)
{
	return op_monitor_fingerprint(monitor) ^
	       op_monitor_refs_fp(d->secrets, monitor, d->kind) * 0x9E3779B97F4A7C15ull;
}

int op_jobs_from_monitor(const struct op_defaults *d, const cJSON *monitor, struct op_job ***out,
			 size_t *n_out, char *err, size_t errlen)
{
	const char *ns = meta_str(monitor, "namespace"), *name = meta_str(monitor, "name");
	const cJSON *spec = jobj(monitor, "spec"), *eps, *ep;
	bool pm = d->kind == OP_POD_MONITORS;
	struct op_job **v = NULL;
	size_t n = 0, idx = 0;
	uint64_t fp;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (!ns || !name || !spec) {
		snprintf(err, errlen, "monitor without metadata.namespace/name or spec");
		return -EINVAL;
	}
	eps = jarr(spec, pm ? "podMetricsEndpoints" : "endpoints");
	fp = op_monitor_job_fp(d, monitor);
	v = calloc((size_t)(eps ? cJSON_GetArraySize(eps) : 0) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach(ep, eps)
	{
		struct rule_buf b = {0}, mb = {0};
		struct op_job *j = calloc(1, sizeof(*j));
		char e2[256] = "";

		if (!j) {
			rc = -ENOMEM;
			break;
		}
		atomic_init(&j->refs, 1);
		v[n++] = j;
		j->fingerprint = fp + idx;
		j->monitor_fp = fp;
		if (asprintf(&j->cfg.job_name, "%s/%s/%s/%zu", pm ? "podMonitor" : "serviceMonitor",
			     ns, name, idx) < 0) {
			j->cfg.job_name = NULL;
			rc = -ENOMEM;
			break;
		}
		if (asprintf(&j->monitor, "%s/%s", ns, name) < 0) {
			j->monitor = NULL;
			rc = -ENOMEM;
			break;
		}
		/* attachMetadata.node (PodMonitor, ServiceMonitor): promcfg.go
		 * mergeAttachMetadataWithScrapeClass -> attach_metadata */
		j->attach_node = jbool(jobj(spec, "attachMetadata"), "node") == 1;
		/* targetLimit -> target_limit (promcfg.go AddLimitsToYAML) */
		{
			const cJSON *tl = cJSON_GetObjectItemCaseSensitive(spec, "targetLimit");

			if (cJSON_IsNumber(tl) && tl->valuedouble > 0)
				j->target_limit = (uint64_t)tl->valuedouble;
		}
		rc = job_namespaces(j, spec, ns);
		if (!rc && jobj(spec, "selector")) {
			j->selector = cJSON_Duplicate(jobj(spec, "selector"), true);
			if (!j->selector)
				rc = -ENOMEM;
		}
		if (!rc)
			rc = fill_scrape_config(d, j, spec, ep, &mb, e2, sizeof(e2));
		if (!rc) {
			/* Bad HTTP settings (a missing Secret, a CA that is not
			 * PEM) leave this endpoint out; the others run. */
			rc = op_endpoint_auth(d->secrets, ns, ep, &j->cfg.auth, e2, sizeof(e2));
			if (rc == -EINVAL) {
				if (d->secrets && d->secrets->skipped)
					d->secrets->skipped(d->secrets->arg, j->monitor, idx, e2);
				rb_free(&b);
				rb_free(&mb);
				op_job_put(v[--n]);
				idx++;
				rc = 0;
				continue;
			}
		}
		if (!rc)
			rc = endpoint_rules(d, monitor, spec, ep, &b, e2, sizeof(e2));
		if (!rc) {
			char e3[200];

			rc = starling_relabel_rules_new(b.v, b.n, &j->rules, e3, sizeof(e3));
			if (rc)
				snprintf(e2, sizeof(e2), "relabelings: %s", e3);
		}
		rb_free(&b);
		rb_free(&mb);
		if (rc) {
			snprintf(err, errlen, "%s endpoint %zu: %s", j->monitor ? j->monitor : name,
				 idx, e2[0] ? e2 : strerror(-rc));
			break;
		}
		idx++;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			op_job_put(v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Meta labels: the SDK's kubernetes_sd roles (starling_k8s_targets).        */

void op_gen_scratch_init(struct op_gen_scratch *s)
{
	starling_lset_init(&s->ls);
	starling_k8s_meta_init(&s->meta);
	s->jobs = NULL;
	s->jobs_cap = 0;
	starling_relabel_scratch_init(&s->rs);
}

void op_gen_scratch_free(struct op_gen_scratch *s)
{
	starling_lset_free(&s->ls);
	starling_k8s_meta_free(&s->meta);
	free(s->jobs);
	starling_relabel_scratch_free(&s->rs);
}

static bool in_namespaces(const struct op_job *j, const char *ns)
{
	if (!j->n_namespaces)
		return true;
	for (size_t i = 0; i < j->n_namespaces; i++)
		if (ns && strcmp(j->namespaces[i], ns) == 0)
			return true;
	return false;
}

/* Relabel one candidate (s->ls) and hand it out if kept. */
static int finish_target(const struct op_defaults *d, struct op_job *j, struct op_gen_scratch *s,
			 op_target_fn fn, void *arg)
{
	struct starling_lset *ls = &s->ls;
	char b[32];
	int rc;

	/* What Prometheus presets before target relabelling. */
	rc = starling_lset_set_str(ls, "job", j->cfg.job_name);
	rc |= starling_lset_set_str(ls, "__scheme__", j->cfg.scheme);
	rc |= starling_lset_set_str(ls, "__metrics_path__", j->cfg.metrics_path);
	snprintf(b, sizeof(b), "%llds", (long long)(j->cfg.interval_ms / 1000));
	rc |= starling_lset_set_str(ls, "__scrape_interval__", b);
	snprintf(b, sizeof(b), "%llds", (long long)(j->cfg.timeout_ms / 1000));
	rc |= starling_lset_set_str(ls, "__scrape_timeout__", b);
	for (size_t i = 0; i < j->cfg.n_params; i++) {
		char pn[256];

		snprintf(pn, sizeof(pn), "__param_%s", j->cfg.params[i].name);
		if (!starling_lset_get(ls, pn)) /* the first value of each name */
			rc |= starling_lset_set_str(ls, pn, j->cfg.params[i].value);
	}
	if (rc)
		return -ENOMEM;
	rc = starling_relabel_apply(d->rules, ls, &s->rs);
	if (rc == 1)
		rc = starling_relabel_apply(j->rules, ls, &s->rs);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < ls->n;) {
		const char *n = ls->v[i].name;

		if (strncmp(n, "__meta_", 7) == 0 || strncmp(n, "__tmp", 5) == 0 ||
		    strcmp(n, "__scrape_interval__") == 0 || strcmp(n, "__scrape_timeout__") == 0) {
			snprintf(s->buf, sizeof(s->buf), "%s", n);
			starling_lset_del(ls, s->buf);
			continue;
		}
		i++;
	}
	if (!starling_lset_get(ls, "__address__"))
		return 0;
	return fn(arg, j, ls);
}

/* The jobs a rebuild evaluates together: each candidate's meta labels are
 * built once and relabelled for every job whose namespaces hold it. */
struct job_set {
	struct op_job *const *v;
	size_t n;
};

struct emit_ctx {
	const struct op_defaults *d;
	const struct job_set *js;
	struct op_gen_scratch *s;
	op_target_fn fn;
	void *arg;
};

static int emit(void *arg, const struct starling_lset *cand)
{
	struct emit_ctx *e = arg;
	const char *ns = starling_lset_get(cand, "__meta_kubernetes_namespace");

	for (size_t i = 0; i < e->js->n; i++) {
		int rc;

		if (!in_namespaces(e->js->v[i], ns))
			continue;
		if (starling_lset_copy(&e->s->ls, cand))
			return -ENOMEM;
		rc = finish_target(e->d, e->js->v[i], e->s, e->fn, e->arg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A selector value as the generated keep rule sees it: the operator puts
 * it into the regex unquoted, so '.' matches any character (the only regex
 * metacharacter a label value may contain). */
static bool value_matches(const char *pattern, const char *v)
{
	for (; *pattern && *v; pattern++, v++)
		if (*pattern != '.' && *pattern != *v)
			return false;
	return !*pattern && !*v;
}

/* Whether job j's selector (as its keep/drop rules would) selects an object
 * with these labels (pod labels, or the service's; NULL = none). */
static bool job_selects(const struct op_job *j, const cJSON *labels)
{
	const cJSON *e, *v;

	if (!j->selector)
		return true;
	cJSON_ArrayForEach(e, jobj(j->selector, "matchLabels"))
	{
		const char *have = jstr(labels, e->string);

		if (!cJSON_IsString(e) || !have || !value_matches(e->valuestring, have))
			return false;
	}
	cJSON_ArrayForEach(e, jarr(j->selector, "matchExpressions"))
	{
		const char *key = jstr(e, "key"), *op = jstr(e, "operator");
		const char *have = key ? jstr(labels, key) : NULL;
		enum op_sel_op o;
		bool in = false;

		if (!key || !op || op_sel_op_parse(op, &o))
			return true; /* refused when the job was built */
		cJSON_ArrayForEach(v, jarr(e, "values")) in |=
		    have && cJSON_IsString(v) && value_matches(v->valuestring, have);
		if ((o == OP_SEL_IN && !in) || (o == OP_SEL_NOT_IN && in) ||
		    (o == OP_SEL_EXISTS && !have) || (o == OP_SEL_DOES_NOT_EXIST && have))
			return false;
	}
	return true;
}

int op_targets(const struct op_defaults *d, struct op_job *const *jobs, size_t n_jobs,
	       const struct op_cluster *c, struct op_gen_scratch *s, op_target_fn fn, void *arg)
{
	const struct starling_k8s_store *st = d->kind == OP_POD_MONITORS ? &c->pods
					      : d->endpointslice	 ? &c->endpointslices
									 : &c->endpoints;
	enum starling_k8s_role role = d->kind == OP_POD_MONITORS ? STARLING_K8S_ROLE_POD
				      : d->endpointslice	 ? STARLING_K8S_ROLE_ENDPOINTSLICE
								 : STARLING_K8S_ROLE_ENDPOINTS;
	int rc = 0;

	if (!n_jobs)
		return 0;
	s->meta.pods = &c->pods;
	s->meta.services = &c->services;
	s->meta.nodes = &c->nodes;
	/* Component rules run first and could rewrite the labels the
	 * selector looks at: then every job sees every object. */
	bool prefilter = starling_relabel_rules_count(d->rules) == 0;

	if (s->jobs_cap < n_jobs) {
		struct op_job **v = realloc(s->jobs, n_jobs * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->jobs = v;
		s->jobs_cap = n_jobs;
	}
	for (size_t i = 0; i < st->n && !rc; i++) {
		const cJSON *o = st->v[i].obj, *labels = NULL;
		const char *ns = meta_str(o, "namespace");
		struct job_set sel = {s->jobs, 0};
		struct emit_ctx e = {d, &sel, s, fn, arg};

		if (d->kind == OP_POD_MONITORS) {
			labels = jobj(jobj(o, "metadata"), "labels");
		} else {
			const char *svc = d->endpointslice
					      ? jstr(jobj(jobj(o, "metadata"), "labels"),
						     "kubernetes.io/service-name")
					      : meta_str(o, "name");
			const cJSON *so =
			    svc ? starling_k8s_store_get(&c->services, ns, svc) : NULL;

			labels = jobj(jobj(so, "metadata"), "labels");
		}
		/* Jobs without attachMetadata.node first, then those with it:
		 * each group sees the candidates its generated config would
		 * (attach_metadata adds the node's labels and, for pods, leaves
		 * out pods of unknown nodes: Prometheus pod.go / endpoints.go). */
		size_t n_attach = 0;

		for (size_t k = 0; k < n_jobs; k++) {
			if (!in_namespaces(jobs[k], ns) ||
			    (prefilter && !job_selects(jobs[k], labels)))
				continue;
			s->jobs[sel.n++] = jobs[k];
			n_attach += jobs[k]->attach_node;
		}
		if (!sel.n)
			continue;
		if (!n_attach) {
			s->meta.attach_node = false;
			rc = starling_k8s_targets(&s->meta, role, o, emit, &e);
			continue;
		}
		/* stable partition: plain jobs first */
		for (size_t k = 0, w = 0; k < sel.n; k++) {
			struct op_job *t = s->jobs[k];

			if (t->attach_node)
				continue;
			memmove(&s->jobs[w + 1], &s->jobs[w], (k - w) * sizeof(*s->jobs));
			s->jobs[w++] = t;
		}
		{
			size_t all = sel.n;

			sel.n = all - n_attach;
			s->meta.attach_node = false;
			if (sel.n)
				rc = starling_k8s_targets(&s->meta, role, o, emit, &e);
			sel.v = s->jobs + (all - n_attach);
			sel.n = n_attach;
			s->meta.attach_node = true;
			if (!rc)
				rc = starling_k8s_targets(&s->meta, role, o, emit, &e);
		}
	}
	return rc;
}

int op_job_targets(const struct op_defaults *d, struct op_job *job, const struct op_cluster *c,
		   struct op_gen_scratch *s, op_target_fn fn, void *arg)
{
	return op_targets(d, &job, 1, c, s, fn, arg);
}
