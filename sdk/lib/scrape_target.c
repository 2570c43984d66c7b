/*
 * Targets of prometheus.scrape: labels, URL, ownership key and phase.
 *
 * The label rules are Prometheus' (scrape/target.go populateLabels), without
 * target relabelling (Alloy does that in discovery.relabel): job, __scheme__,
 * __metrics_path__ and __param_* default from the component settings,
 * instance defaults to __address__, then every "__" label is removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/labels.h>
#include <starling/scrape_sched.h>
#include <xxhash.h>

#include <starling/scrape.h>

static const char *const report_names[SCRAPE_N_REPORT_MAX] = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    /* extra_metrics */
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
};

void scrape_timeout_header(int64_t timeout_ms, char *buf, size_t len)
{
	size_t l = (size_t)snprintf(buf, len, "X-Prometheus-Scrape-Timeout-Seconds: %lld",
				    (long long)(timeout_ms / 1000));

	if (timeout_ms % 1000 && l < len) {
		char frac[8];
		size_t f;

		snprintf(frac, sizeof(frac), ".%03lld", (long long)(timeout_ms % 1000));
		for (f = strlen(frac); frac[f - 1] == '0'; f--)
			frac[f - 1] = '\0';
		snprintf(buf + l, len - l, "%s", frac);
	}
}

int scrape_parse_duration(const char *s, int64_t *out)
{
	/* units in the only order Prometheus accepts them, each at most once */
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {{"y", 365LL * 86400000},
		     {"w", 7LL * 86400000},
		     {"d", 86400000},
		     {"h", 3600000},
		     {"m", 60000},
		     {"s", 1000},
		     {"ms", 1}};
	size_t next = 0;
	int64_t total = 0;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	while (*s) {
		int64_t v = 0;
		size_t k;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9') {
			if (v > INT64_MAX / 10 - 10)
				return -EINVAL;
			v = v * 10 + (*s++ - '0');
		}
		for (k = next; k < sizeof(units) / sizeof(units[0]); k++) {
			size_t ul = strlen(units[k].u);

			/* "m" must not take the "m" of "ms" */
			if (strncmp(s, units[k].u, ul) == 0 &&
			    !(ul == 1 && *s == 'm' && s[1] == 's'))
				break;
		}
		if (k == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		if (v > (INT64_MAX - total) / units[k].ms)
			return -EINVAL;
		total += v * units[k].ms;
		s += strlen(units[k].u);
		next = k + 1;
	}
	*out = total;
	return 0;
}

int scrape_query_escape(const char *s, char *buf, size_t cap, size_t *len)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';

		if (*len + 4 > cap)
			return -ENOSPC;
		if (plain) {
			buf[(*len)++] = (char)c;
		} else if (c == ' ') {
			buf[(*len)++] = '+';
		} else {
			buf[(*len)++] = '%';
			buf[(*len)++] = hex[c >> 4];
			buf[(*len)++] = hex[c & 15];
		}
	}
	buf[*len] = '\0';
	return 0;
}

/* A growable list of labels whose strings are not owned (point into the
 * input, the config or literals) while the target is assembled. */
struct label_vec {
	struct starling_label *v;
	size_t n, cap;
};

static int vec_set(struct label_vec *lv, const char *name, const char *value, bool replace)
{
	for (size_t i = 0; i < lv->n; i++) {
		if (strcmp(lv->v[i].name, name) == 0) {
			if (replace)
				lv->v[i].value = value;
			return 0;
		}
	}
	if (lv->n == lv->cap) {
		size_t cap = lv->cap ? lv->cap * 2 : 16;
		struct starling_label *v = realloc(lv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		lv->v = v;
		lv->cap = cap;
	}
	lv->v[lv->n].name = name;
	lv->v[lv->n].value = value;
	lv->n++;
	return 0;
}

static const char *vec_get(const struct label_vec *lv, const char *name)
{
	for (size_t i = 0; i < lv->n; i++)
		if (strcmp(lv->v[i].name, name) == 0)
			return lv->v[i].value;
	return NULL;
}

static bool reserved(const char *name)
{
	return name[0] == '_' && name[1] == '_';
}

static int param_cmp(const void *a, const void *b)
{
	const struct starling_label *pa = a, *pb = b;

	return strcmp(pa->name, pb->name);
}

/* URL = scheme://address path ?params, params sorted by name like Go's
 * url.Values.Encode(). The __param_<name> labels hold the final first
 * values (config params were turned into labels when absent); a config
 * param with several values keeps the others after it, as Prometheus'
 * Target.URL() replaces only the first value. */
static int build_url(const struct label_vec *lv, const struct scrape_config *cfg, char **out,
		     char *err, size_t errlen)
{
	const char *scheme = vec_get(lv, "__scheme__");
	const char *addr = vec_get(lv, "__address__");
	const char *path = vec_get(lv, "__metrics_path__");
	struct starling_label params[64];
	size_t np = 0, len = 0, cap;
	char *buf;
	int rc;

	if (!scheme || !*scheme)
		scheme = "http";
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(err, errlen, "unsupported scheme \"%s\" (http or https)", scheme);
		return -EINVAL;
	}
	if (!path)
		path = "/metrics";
	if (strchr(addr, '/') || strchr(addr, '?') || strchr(addr, '#') || strchr(addr, ' ')) {
		snprintf(err, errlen, "invalid __address__ \"%s\" (host:port expected)", addr);
		return -EINVAL;
	}
	cap = strlen(scheme) + strlen(addr) + strlen(path) + 16;
	for (size_t i = 0; i < lv->n; i++) {
		if (strncmp(lv->v[i].name, "__param_", 8) != 0)
			continue;
		if (np == sizeof(params) / sizeof(params[0])) {
			snprintf(err, errlen, "too many __param_ labels (max 64)");
			return -EINVAL;
		}
		params[np].name = lv->v[i].name + 8;
		params[np].value = lv->v[i].value;
		cap += 3 * (strlen(params[np].name) + strlen(params[np].value)) + 2;
		np++;
	}
	for (size_t i = 0; i < cfg->n_params; i++)
		cap += 3 * (strlen(cfg->params[i].name) + strlen(cfg->params[i].value)) + 2;
	qsort(params, np, sizeof(params[0]), param_cmp);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap, "%s://%s%s%s", scheme, addr, path[0] == '/' ? "" : "/",
			       path);
	for (size_t i = 0; i < np; i++) {
		buf[len++] = i == 0 && !strchr(path, '?') ? '?' : '&';
		rc = scrape_query_escape(params[i].name, buf, cap, &len);
		if (!rc) {
			buf[len++] = '=';
			rc = scrape_query_escape(params[i].value, buf, cap, &len);
		}
		/* the config's further values of this name */
		for (size_t k = 0, seen = 0; !rc && k < cfg->n_params; k++) {
			if (strcmp(cfg->params[k].name, params[i].name) != 0 || seen++ == 0)
				continue;
			buf[len++] = '&';
			rc = scrape_query_escape(params[i].name, buf, cap, &len);
			if (!rc) {
				buf[len++] = '=';
				rc = scrape_query_escape(cfg->params[k].value, buf, cap, &len);
			}
		}
		if (rc) {
			free(buf);
			return rc;
		}
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* Copy labels into one string block; returns the array (sorted) or NULL. */
static struct starling_label *pack_labels(const struct starling_label *src, size_t n, char **pool,
					  size_t *pool_off)
{
	struct starling_label *dst = malloc((n ? n : 1) * sizeof(*dst));

	if (!dst)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t ln = strlen(src[i].name) + 1, lv = strlen(src[i].value) + 1;

		memcpy(*pool + *pool_off, src[i].name, ln);
		dst[i].name = *pool + *pool_off;
		*pool_off += ln;
		memcpy(*pool + *pool_off, src[i].value, lv);
		dst[i].value = *pool + *pool_off;
		*pool_off += lv;
	}
	starling_labels_sort(dst, n);
	return dst;
}

void scrape_target_free(struct scrape_target *t)
{
	if (!t)
		return;
	series_cache_free(&t->cache);
	free(t->meta_seen);
	free(t->last_error);
	free(t->input);
	free(t->labels);
	free(t->strings);
	free(t->url);
	free(t);
}

static size_t strings_size(const struct starling_label *v, size_t n)
{
	size_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += strlen(v[i].name) + strlen(v[i].value) + 2;
	return s;
}

void scrape_report_labels(const struct scrape_target *t, int i, struct starling_label *out)
{
	memcpy(out, t->labels, t->n_labels * sizeof(*out));
	out[t->n_labels].name = "__name__";
	out[t->n_labels].value = report_names[i];
	starling_labels_sort(out, t->n_labels + 1);
}

int scrape_target_new(const struct scrape_config *cfg, const struct starling_label *in, size_t n,
		      struct scrape_target **out, char *err, size_t errlen)
{
	struct label_vec lv = {0}, fin = {0};
	const char *sint, *stmo;
	char **pnames = NULL;
	struct scrape_target *t;
	const char *addr;
	size_t pool_size, off = 0;
	int rc = -ENOMEM;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->skipped_slot = STARLING_SCRAPE_NO_SLOT;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(in[i].name, in[j].name) == 0) {
				snprintf(err, errlen, "label \"%s\" given twice", in[i].name);
				rc = -EINVAL;
				goto out_free;
			}
		}
		if (vec_set(&lv, in[i].name, in[i].value, true))
			goto out_free;
	}
	addr = vec_get(&lv, "__address__");
	if (!addr || !*addr) {
		snprintf(err, errlen, "target without __address__");
		rc = -EINVAL;
		goto out_free;
	}
	/* Per-target interval and timeout (Prometheus: scrape/target.go
	 * PopulateLabels, errors as there). */
	t->interval_ms = cfg->interval_ms;
	t->timeout_ms = cfg->timeout_ms;
	sint = vec_get(&lv, "__scrape_interval__");
	stmo = vec_get(&lv, "__scrape_timeout__");
	if (sint && (scrape_parse_duration(sint, &t->interval_ms) || t->interval_ms == 0)) {
		snprintf(err, errlen, "error parsing scrape interval \"%s\"", sint);
		rc = -EINVAL;
		goto out_free;
	}
	if (stmo && (scrape_parse_duration(stmo, &t->timeout_ms) || t->timeout_ms == 0)) {
		snprintf(err, errlen, "error parsing scrape timeout \"%s\"", stmo);
		rc = -EINVAL;
		goto out_free;
	}
	if (t->timeout_ms > t->interval_ms && !sint && !stmo)
		t->timeout_ms = t->interval_ms; /* as the component's config is */
	if (t->timeout_ms > t->interval_ms) {
		snprintf(err, errlen,
			 "scrape timeout cannot be greater than scrape interval (%lldms > %lldms)",
			 (long long)t->timeout_ms, (long long)t->interval_ms);
		rc = -EINVAL;
		goto out_free;
	}
	pnames = calloc(cfg->n_params + 1, sizeof(*pnames));
	if (!pnames)
		goto out_free;
	if (vec_set(&lv, "job", cfg->job_name, false) ||
	    vec_set(&lv, "__scheme__", cfg->scheme, false) ||
	    vec_set(&lv, "__metrics_path__", cfg->metrics_path, false))
		goto out_free;
	for (size_t i = 0; i < cfg->n_params; i++) {
		size_t l = strlen(cfg->params[i].name) + 9;

		pnames[i] = malloc(l);
		if (!pnames[i])
			goto out_free;
		snprintf(pnames[i], l, "__param_%s", cfg->params[i].name);
		if (vec_set(&lv, pnames[i], cfg->params[i].value, false))
			goto out_free;
	}
	if (vec_set(&lv, "instance", addr, false))
		goto out_free;
	rc = build_url(&lv, cfg, &t->url, err, errlen);
	if (rc)
		goto out_free;
	rc = -ENOMEM;
	for (size_t i = 0; i < lv.n; i++) {
		if (reserved(lv.v[i].name) || !*lv.v[i].value)
			continue;
		if (vec_set(&fin, lv.v[i].name, lv.v[i].value, true))
			goto out_free;
	}

	/* One string pool: input labels, final labels, report names. */
	pool_size = strings_size(in, n) + strings_size(fin.v, fin.n);
	t->strings = malloc(pool_size ? pool_size : 1);
	if (!t->strings)
		goto out_free;
	t->input = pack_labels(in, n, &t->strings, &off);
	t->labels = pack_labels(fin.v, fin.n, &t->strings, &off);
	if (!t->input || !t->labels)
		goto out_free;
	t->n_input = n;
	t->n_labels = fin.n;
	{
		struct starling_label *rl = malloc((fin.n + 1) * sizeof(*rl));

		if (!rl)
			goto out_free;
		for (int i = 0; i < SCRAPE_N_REPORT_MAX; i++) {
			scrape_report_labels(t, i, rl);
			t->report_hash[i] = starling_labels_hash(rl, fin.n + 1);
		}
		free(rl);
	}
	t->key = starling_target_key(t->input, n, (const char *const *)cfg->key_labels,
				     cfg->n_key_labels, (const char *const *)cfg->exclude_labels,
				     cfg->n_exclude_labels);
	t->identity = starling_labels_hash(t->input, n);
	t->phase_ms = starling_scrape_phase(t->key, t->interval_ms);
	t->health = STARLING_TARGET_UNKNOWN;
	*out = t;
	t = NULL;
	rc = 0;
out_free:
	if (pnames) {
		for (size_t i = 0; i < cfg->n_params; i++)
			free(pnames[i]);
		free(pnames);
	}
	free(lv.v);
	free(fin.v);
	scrape_target_free(t);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return rc;
}

void scrape_config_release(struct scrape_config *c)
{
	if (!c)
		return;
	free(c->job_name);
	free(c->metrics_path);
	free(c->scheme);
	starling_scrape_params_free(c->params, c->n_params);
	starling_relabel_rules_free(c->metric_relabel);
	starling_http_auth_free(c->auth);
	starling_scrape_strv_free(c->key_labels, c->n_key_labels);
	starling_scrape_strv_free(c->exclude_labels, c->n_exclude_labels);
	free(c->accept);
	free(c->failure_log_file);
}
