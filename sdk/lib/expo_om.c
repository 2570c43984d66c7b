/*
 * Strict OpenMetrics 1.0 semantics on top of the line grammar in expo.c:
 * families and their metadata, name clashes, type-specific sample names and
 * values, histogram/summary rules, exemplar placement, grouping and
 * timestamp order. Only used when STARLING_EXPO_STRICT is set (check-metrics,
 * or a scraper that wants the full spec), so clarity beats speed here.
 */
#include "expo_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

/* Set of 64-bit hashes (open addressing, 0 = empty). A collision could only
 * hide an error, never invent one. */
struct u64set {
	uint64_t *v;
	size_t cap, n;
};

static void set_clear(struct u64set *s)
{
	if (s->v)
		memset(s->v, 0, s->cap * sizeof(*s->v));
	s->n = 0;
}

static int set_grow(struct u64set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	uint64_t *nv = calloc(cap, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t h = s->v[i];
		size_t j;

		if (!h)
			continue;
		for (j = h & (cap - 1); nv[j]; j = (j + 1) & (cap - 1))
			;
		nv[j] = h;
	}
	free(s->v);
	s->v = nv;
	s->cap = cap;
	return 0;
}

/* Insert h; returns 1 if it was already there, 0 if added, -ENOMEM. */
static int set_add(struct u64set *s, uint64_t h)
{
	size_t j;

	if (!h)
		h = 1;
	if ((s->n + 1) * 2 > s->cap && set_grow(s))
		return -ENOMEM;
	for (j = h & (s->cap - 1); s->v[j]; j = (j + 1) & (s->cap - 1))
		if (s->v[j] == h)
			return 1;
	s->v[j] = h;
	s->n++;
	return 0;
}

static uint64_t name_hash(const char *a, size_t alen, const char *suffix)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, alen);
	XXH3_64bits_update(&st, suffix, strlen(suffix));
	return XXH3_64bits_digest(&st);
}

/* Which sample of a family a line is. */
enum sfx {
	SFX_PLAIN = 0,
	SFX_TOTAL,
	SFX_CREATED,
	SFX_BUCKET,
	SFX_COUNT,
	SFX_SUM,
	SFX_GCOUNT,
	SFX_GSUM,
	SFX_INFO,
	SFX_MAX,
};

static const char *const sfx_text[SFX_MAX] = {
    "", "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
};

/* Allowed suffixes per type (bit i = enum sfx i). */
static unsigned type_sfx(enum starling_metric_type t)
{
	switch (t) {
	case STARLING_METRIC_COUNTER:
		return 1u << SFX_TOTAL | 1u << SFX_CREATED;
	case STARLING_METRIC_HISTOGRAM:
		return 1u << SFX_BUCKET | 1u << SFX_COUNT | 1u << SFX_SUM | 1u << SFX_CREATED;
	case STARLING_METRIC_GAUGE_HISTOGRAM:
		return 1u << SFX_BUCKET | 1u << SFX_GCOUNT | 1u << SFX_GSUM;
	case STARLING_METRIC_SUMMARY:
		return 1u << SFX_PLAIN | 1u << SFX_COUNT | 1u << SFX_SUM | 1u << SFX_CREATED;
	case STARLING_METRIC_INFO:
		return 1u << SFX_INFO;
	default: /* gauge, stateset, unknown */
		return 1u << SFX_PLAIN;
	}
}

static const char *type_name(enum starling_metric_type t)
{
	switch (t) {
	case STARLING_METRIC_COUNTER:
		return "counter";
	case STARLING_METRIC_GAUGE:
		return "gauge";
	case STARLING_METRIC_HISTOGRAM:
		return "histogram";
	case STARLING_METRIC_GAUGE_HISTOGRAM:
		return "gaugehistogram";
	case STARLING_METRIC_SUMMARY:
		return "summary";
	case STARLING_METRIC_INFO:
		return "info";
	case STARLING_METRIC_STATESET:
		return "stateset";
	default:
		return "unknown";
	}
}

struct expo_om {
	struct u64set claims;  /* sample names any earlier family may produce */
	struct u64set metrics; /* label-set keys of the current family's metrics */
	struct starling_lset ls;

	/* Current family. */
	bool in_family;
	char *fam;
	size_t fam_len, fam_cap;
	enum starling_metric_type type;
	bool has_type, has_help, has_unit, unit_set, has_samples;

	/* Current metric (label set without le/quantile/state label). */
	bool in_metric;
	uint64_t mkey;
	unsigned mline;
	bool ts_known, ts_mode;
	double last_ts;
	/* Current point of that metric. */
	unsigned seen; /* SFX bits seen */
	bool any_bucket, inf_bucket, neg_bucket;
	double last_le, last_bucket, inf_value;
	bool has_count, has_sum;
	double count_v, sum_v;
};

struct expo_om *expo_om_new(void)
{
	struct expo_om *om = calloc(1, sizeof(*om));

	if (om)
		starling_lset_init(&om->ls);
	return om;
}

void expo_om_free(struct expo_om *om)
{
	if (!om)
		return;
	free(om->claims.v);
	free(om->metrics.v);
	free(om->fam);
	starling_lset_free(&om->ls);
	free(om);
}

static void point_reset(struct expo_om *om)
{
	om->seen = 0;
	om->any_bucket = om->inf_bucket = om->neg_bucket = false;
	om->last_le = -INFINITY;
	om->last_bucket = 0;
	om->inf_value = 0;
	om->has_count = om->has_sum = false;
	om->count_v = om->sum_v = 0;
}

void expo_om_reset(struct expo_om *om)
{
	set_clear(&om->claims);
	set_clear(&om->metrics);
	om->in_family = false;
	om->in_metric = false;
	point_reset(om);
}

#define FAM(om) (int)(om)->fam_len, (om)->fam

/* End of one point of a metric: the histogram rules that need all of it. */
static int point_close(struct starling_expo_parser *p, struct expo_om *om)
{
	bool gauge = om->type == STARLING_METRIC_GAUGE_HISTOGRAM;
	unsigned line = om->mline;

	if (!om->seen)
		return 0;
	if (om->type == STARLING_METRIC_COUNTER && !(om->seen & (1u << SFX_TOTAL)))
		return expo_fail_at(p, line, 1, "counter %.*s has _created without _total",
				    FAM(om));
	if (om->type != STARLING_METRIC_HISTOGRAM && !gauge)
		return 0;
	if (!om->inf_bucket)
		return expo_fail_at(p, line, 1, "%s %.*s has no le=\"+Inf\" bucket",
				    type_name(om->type), FAM(om));
	if (om->has_count != om->has_sum)
		return expo_fail_at(
		    p, line, 1, "%s %.*s has %s without %s", type_name(om->type), FAM(om),
		    om->has_count ? (gauge ? "_gcount" : "_count") : (gauge ? "_gsum" : "_sum"),
		    om->has_count ? (gauge ? "_gsum" : "_sum") : (gauge ? "_gcount" : "_count"));
	if (om->has_count && om->count_v != om->inf_value)
		return expo_fail_at(p, line, 1,
				    "%s %.*s: %s (%g) differs from the +Inf bucket (%g)",
				    type_name(om->type), FAM(om), gauge ? "_gcount" : "_count",
				    om->count_v, om->inf_value);
	if (om->has_sum) {
		if (isnan(om->sum_v))
			return expo_fail_at(p, line, 1, "%s %.*s: sum is NaN", type_name(om->type),
					    FAM(om));
		if (!gauge && om->neg_bucket)
			return expo_fail_at(p, line, 1,
					    "histogram %.*s has negative buckets, so it must not "
					    "have _sum",
					    FAM(om));
		if (om->sum_v < 0 && !om->neg_bucket)
			return expo_fail_at(p, line, 1,
					    "%s %.*s: negative sum without negative buckets",
					    type_name(om->type), FAM(om));
	}
	return 0;
}

static int metric_close(struct starling_expo_parser *p, struct expo_om *om)
{
	int rc = 0;

	if (om->in_metric)
		rc = point_close(p, om);
	om->in_metric = false;
	point_reset(om);
	return rc;
}

static int family_close(struct starling_expo_parser *p, struct expo_om *om)
{
	int rc = metric_close(p, om);

	om->in_family = false;
	set_clear(&om->metrics);
	return rc;
}

/* Claim every sample name of the current family (type now known). */
static int family_claim(struct starling_expo_parser *p, struct expo_om *om, const char *at)
{
	unsigned bits = type_sfx(om->type);

	for (int i = 1; i < SFX_MAX; i++) {
		int r;

		if (!(bits & (1u << i)))
			continue;
		r = set_add(&om->claims, name_hash(om->fam, om->fam_len, sfx_text[i]));
		if (r < 0)
			return expo_fail(p, at, "out of memory");
		if (r)
			return expo_fail(p, at,
					 "%s %.*s clashes with an earlier family's sample %.*s%s",
					 type_name(om->type), FAM(om), FAM(om), sfx_text[i]);
	}
	return 0;
}

static int family_open(struct starling_expo_parser *p, struct expo_om *om, const char *name,
		       size_t len, const char *at)
{
	int r;

	if (len + 1 > om->fam_cap) {
		char *nf = realloc(om->fam, len + 1);

		if (!nf)
			return expo_fail(p, at, "out of memory");
		om->fam = nf;
		om->fam_cap = len + 1;
	}
	memcpy(om->fam, name, len);
	om->fam[len] = '\0';
	om->fam_len = len;
	om->in_family = true;
	om->type = STARLING_METRIC_UNKNOWN;
	om->has_type = om->has_help = om->has_unit = om->unit_set = om->has_samples = false;
	r = set_add(&om->claims, name_hash(name, len, ""));
	if (r < 0)
		return expo_fail(p, at, "out of memory");
	if (r)
		return expo_fail(p, at,
				 "metric family %.*s appears twice or clashes with an earlier "
				 "family (families must not be interleaved)",
				 (int)len, name);
	return 0;
}

int expo_om_meta(struct starling_expo_parser *p, const struct starling_expo_event *ev,
		 const char *at)
{
	struct expo_om *om = p->om;
	const char *what;

	if (!om->in_family || ev->family_len != om->fam_len ||
	    memcmp(ev->family, om->fam, om->fam_len) != 0) {
		if (om->in_family && family_close(p, om))
			return -EINVAL;
		if (family_open(p, om, ev->family, ev->family_len, at))
			return -EINVAL;
	} else if (om->has_samples) {
		return expo_fail(p, p->line_start, "metadata for %.*s after its samples", FAM(om));
	}
	switch (ev->kind) {
	case STARLING_EXPO_TYPE:
		what = "TYPE";
		if (om->has_type)
			break;
		om->has_type = true;
		om->type = ev->type;
		if (om->unit_set &&
		    (om->type == STARLING_METRIC_INFO || om->type == STARLING_METRIC_STATESET))
			return expo_fail(p, at, "%s %.*s must not have a UNIT", type_name(om->type),
					 FAM(om));
		return family_claim(p, om, at);
	case STARLING_EXPO_HELP:
		what = "HELP";
		if (om->has_help)
			break;
		om->has_help = true;
		return 0;
	default:
		what = "UNIT";
		if (om->has_unit)
			break;
		om->has_unit = true;
		if (ev->text_len == 0)
			return 0; /* empty UNIT: treated as absent */
		om->unit_set = true;
		if (om->type == STARLING_METRIC_INFO || om->type == STARLING_METRIC_STATESET)
			return expo_fail(p, at, "%s %.*s must not have a UNIT", type_name(om->type),
					 FAM(om));
		if (om->fam_len < ev->text_len + 1 ||
		    memcmp(om->fam + om->fam_len - ev->text_len, ev->text, ev->text_len) != 0 ||
		    om->fam[om->fam_len - ev->text_len - 1] != '_')
			return expo_fail(p, ev->text,
					 "metric name %.*s must end with _%.*s (its unit)", FAM(om),
					 (int)ev->text_len, ev->text);
		return 0;
	}
	return expo_fail(p, p->line_start, "repeated %s for %.*s", what, FAM(om));
}

/* Does sample name n belong to the current family? Sets *sfx. */
static bool belongs(const struct expo_om *om, const char *n, size_t len, enum sfx *sfx)
{
	unsigned bits = type_sfx(om->type);

	if (len < om->fam_len || memcmp(n, om->fam, om->fam_len) != 0)
		return false;
	for (int i = 0; i < SFX_MAX; i++) {
		size_t sl = strlen(sfx_text[i]);

		if (!(bits & (1u << i)))
			continue;
		if (len == om->fam_len + sl && memcmp(n + om->fam_len, sfx_text[i], sl) == 0) {
			*sfx = (enum sfx)i;
			return true;
		}
	}
	return false;
}

/* XXH3 over the labels except `skip` (and __name__). */
static uint64_t metric_key(const struct starling_lset *ls, const char *skip)
{
	XXH3_state_t st;
	static const unsigned char sep = 0xff;

	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < ls->n; i++) {
		const struct starling_label *l = &ls->v[i];

		if (strcmp(l->name, "__name__") == 0 || (skip && strcmp(l->name, skip) == 0))
			continue;
		XXH3_64bits_update(&st, l->name, strlen(l->name));
		XXH3_64bits_update(&st, &sep, 1);
		XXH3_64bits_update(&st, l->value, strlen(l->value));
		XXH3_64bits_update(&st, &sep, 1);
	}
	return XXH3_64bits_digest(&st);
}

/* A label value that must be a number: realnumber or exactly "+Inf". */
static int label_number(const char *v, double *out)
{
	if (strcmp(v, "+Inf") == 0) {
		*out = INFINITY;
		return 0;
	}
	return expo_parse_real(v, v + strlen(v), out);
}

static bool bad_count(double v)
{
	return isnan(v) || v < 0;
}

int expo_om_sample(struct starling_expo_parser *p, const struct starling_expo_event *ev,
		   double ts_s)
{
	struct expo_om *om = p->om;
	const char *name = ev->series, *at = p->line_start, *err = NULL;
	size_t name_len = ev->name_len;
	const char *skip = NULL;
	enum sfx sfx = SFX_PLAIN;
	const char *val_at;
	double v = ev->value;
	uint64_t key;
	int rc;

	/* Column of the value, for value errors. */
	val_at = ev->series + ev->series_len + 1;
	if (ev->name_len == 0 && ev->series_len > 2 && ev->series[0] == '{' &&
	    ev->series[1] == '"') {
		/* {"my.metric",...}: the name as written inside its quotes,
		 * as a quoted family name in TYPE/HELP/UNIT is kept */
		const char *q = ev->series + 2, *e = ev->series + ev->series_len;

		while (q < e && *q != '"')
			q += *q == '\\' ? 2 : 1;
		name = ev->series + 2;
		name_len = (size_t)(q - name);
	}

	if (!om->in_family || !belongs(om, name, name_len, &sfx)) {
		if (om->in_family && family_close(p, om))
			return -EINVAL;
		if (family_open(p, om, name, name_len, at))
			return -EINVAL;
		sfx = SFX_PLAIN;
		if (om->in_family && (!belongs(om, name, name_len, &sfx)))
			return expo_fail(p, at, "sample %.*s does not belong to its family",
					 (int)name_len, name);
	}
	om->has_samples = true;

	rc = starling_expo_series_labels_flags(ev->series, ev->series_len, p->flags, &om->ls, &err);
	if (rc == -ENOMEM)
		return expo_fail(p, at, "out of memory");
	if (rc)
		return expo_fail(p, at, "%s", err);

	switch (om->type) {
	case STARLING_METRIC_HISTOGRAM:
	case STARLING_METRIC_GAUGE_HISTOGRAM:
		if (sfx == SFX_BUCKET)
			skip = "le";
		break;
	case STARLING_METRIC_SUMMARY:
		if (sfx == SFX_PLAIN)
			skip = "quantile";
		break;
	case STARLING_METRIC_STATESET:
		skip = om->fam;
		break;
	default:
		break;
	}
	key = metric_key(&om->ls, skip);

	if (!om->in_metric || key != om->mkey) {
		if (metric_close(p, om))
			return -EINVAL;
		rc = set_add(&om->metrics, key);
		if (rc < 0)
			return expo_fail(p, at, "out of memory");
		if (rc)
			return expo_fail(p, at,
					 "metric %.*s: samples of one label set must be together "
					 "(interleaved with another label set)",
					 FAM(om));
		om->in_metric = true;
		om->mkey = key;
		om->mline = p->line;
		om->ts_known = false;
	}

	/* Timestamps: all or none within a metric, never going back. A later
	 * timestamp starts a new point of the metric. */
	if (!om->ts_known) {
		om->ts_known = true;
		om->ts_mode = ev->has_timestamp;
		om->last_ts = ts_s;
	} else if (om->ts_mode != ev->has_timestamp) {
		return expo_fail(p, at, "metric %.*s mixes samples with and without timestamps",
				 FAM(om));
	} else if (ev->has_timestamp) {
		if (ts_s < om->last_ts)
			return expo_fail(p, at, "timestamp goes backwards within metric %.*s",
					 FAM(om));
		if (ts_s > om->last_ts) {
			if (point_close(p, om))
				return -EINVAL;
			point_reset(om);
			om->mline = p->line;
		}
		om->last_ts = ts_s;
	}

	if (ev->has_exemplar) {
		bool ok = (om->type == STARLING_METRIC_COUNTER && sfx == SFX_TOTAL) ||
			  ((om->type == STARLING_METRIC_HISTOGRAM ||
			    om->type == STARLING_METRIC_GAUGE_HISTOGRAM) &&
			   sfx == SFX_BUCKET);

		if (!ok)
			return expo_fail(p, at,
					 "exemplars are only allowed on counter _total and "
					 "histogram _bucket samples");
	}

	/* Duplicates within one point (same sample twice, no new timestamp). */
	if (sfx != SFX_BUCKET && !(sfx == SFX_PLAIN && (om->type == STARLING_METRIC_SUMMARY ||
							om->type == STARLING_METRIC_STATESET))) {
		if ((om->seen & (1u << sfx)) && !ev->has_timestamp)
			return expo_fail(p, at, "duplicate sample %.*s", (int)name_len, name);
	}
	om->seen |= 1u << sfx;

	switch (om->type) {
	case STARLING_METRIC_COUNTER:
		if (sfx == SFX_TOTAL && bad_count(v))
			return expo_fail(
			    p, val_at, "counter %.*s: value must not be NaN or negative", FAM(om));
		break;
	case STARLING_METRIC_HISTOGRAM:
	case STARLING_METRIC_GAUGE_HISTOGRAM:
		if (sfx == SFX_BUCKET) {
			const char *le = starling_lset_get(&om->ls, "le");
			double lev;

			if (!le)
				return expo_fail(p, at, "%s bucket without an le label",
						 type_name(om->type));
			if (label_number(le, &lev))
				return expo_fail(p, at, "invalid le value \"%s\"", le);
			if (om->any_bucket && lev <= om->last_le)
				return expo_fail(p, at, "buckets must be in increasing le order");
			if (bad_count(v))
				return expo_fail(p, val_at,
						 "bucket value must not be NaN or negative");
			if (om->any_bucket && v < om->last_bucket)
				return expo_fail(p, val_at,
						 "bucket values must not decrease with le");
			if (om->inf_bucket)
				return expo_fail(p, at, "bucket after the +Inf bucket");
			om->any_bucket = true;
			om->last_le = lev;
			om->last_bucket = v;
			if (lev < 0)
				om->neg_bucket = true;
			if (isinf(lev)) {
				om->inf_bucket = true;
				om->inf_value = v;
			}
		} else if (sfx == SFX_COUNT || sfx == SFX_GCOUNT) {
			if (bad_count(v))
				return expo_fail(p, val_at, "count must not be NaN or negative");
			om->has_count = true;
			om->count_v = v;
		} else if (sfx == SFX_SUM || sfx == SFX_GSUM) {
			if (isnan(v) || (sfx == SFX_SUM && v < 0))
				return expo_fail(p, val_at, "sum must not be NaN%s",
						 sfx == SFX_SUM ? " or negative" : "");
			om->has_sum = true;
			om->sum_v = v;
		}
		break;
	case STARLING_METRIC_SUMMARY:
		if (sfx == SFX_PLAIN) {
			const char *q = starling_lset_get(&om->ls, "quantile");
			double qv;

			if (!q)
				return expo_fail(p, at, "summary sample without a quantile label");
			if (expo_parse_real(q, q + strlen(q), &qv) || qv < 0 || qv > 1)
				return expo_fail(p, at, "invalid quantile \"%s\" (needs 0..1)", q);
			if (v < 0)
				return expo_fail(p, val_at, "quantile value must not be negative");
		} else if ((sfx == SFX_COUNT || sfx == SFX_SUM) && bad_count(v)) {
			return expo_fail(p, val_at, "summary %s must not be NaN or negative",
					 sfx_text[sfx]);
		}
		break;
	case STARLING_METRIC_INFO:
		if (v != 1)
			return expo_fail(p, val_at, "info value must be 1");
		break;
	case STARLING_METRIC_STATESET:
		if (!starling_lset_get(&om->ls, om->fam))
			return expo_fail(p, at, "stateset sample without a label named %.*s",
					 FAM(om));
		if (v != 0 && v != 1)
			return expo_fail(p, val_at, "stateset value must be 0 or 1");
		break;
	default:
		break;
	}
	return 0;
}

int expo_om_finish(struct starling_expo_parser *p)
{
	struct expo_om *om = p->om;

	if (om->in_family)
		return family_close(p, om);
	return 0;
}
