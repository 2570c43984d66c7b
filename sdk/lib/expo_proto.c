/*
 * Protobuf exposition (STARLING_EXPO_PROTOBUF): a body of uvarint-delimited
 * io.prometheus.client.MetricFamily messages, decoded one family at a time
 * with the protobuf-c code generated from sdk/lib/metrics.proto.
 *
 * Each family yields its metadata (TYPE, HELP, UNIT), then its series the
 * way Prometheus' protobuf parser does (model/textparse/protobufparse.go):
 * counters, gauges and untyped as `name`, summaries as name_count, name_sum
 * and name{quantile=...}, classic histograms as name_count, name_sum and
 * name_bucket{le=...} with +Inf synthesized from the count when the last
 * bucket is finite; le and quantile values are formatted like Go's
 * FormatOpenMetricsFloat. The series text is generated in Prometheus text
 * syntax into a scratch buffer, so a scraper's text-keyed cache and
 * starling_expo_series_labels() work unchanged.
 *
 * Bad input fails the document with a message: a truncated or impossible
 * length prefix, a message protobuf-c cannot decode, names that are not
 * valid, and native histograms whose spans do not match their buckets, with
 * negative counts, negative span offsets past the first span or a schema out
 * of -4..8. protobuf-c allocates through a counting allocator limited to a
 * multiple of the message size, so memory stays proportional to the body.
 */
#include "expo_internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily pb_family;
typedef Io__Prometheus__Client__Metric pb_metric;
typedef Io__Prometheus__Client__Histogram pb_histogram;
typedef Io__Prometheus__Client__Exemplar pb_exemplar;
typedef Io__Prometheus__Client__LabelPair pb_label;
typedef Io__Prometheus__Client__BucketSpan pb_span;
typedef Io__Prometheus__Client__Timestamp pb_ts;

/* Budget for protobuf-c's allocations per message: its in-memory structs
 * are at most ~40 times the size of their wire form (an empty Bucket is 2
 * bytes on the wire, a 56-byte struct plus a pointer). */
#define PROTO_MEM_FACTOR 64
#define PROTO_MEM_SLACK	 (64u << 10)
/* Largest single message accepted (the Go client rejects larger). */
#define PROTO_MAX_MSG ((uint64_t)INT32_MAX)

/* protobuf-c allocates every message, string and array of a family
 * separately; a bump arena (reset per family, freed never per object) makes
 * that cheap and caps it at the budget. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t cap, used;
	max_align_t data[];
};

struct expo_proto {
	ProtobufCAllocator alloc;
	size_t budget, used;
	struct arena_chunk *chunks; /* newest first; reused after a reset */
	/* le/quantile strings of recent bounds (bounds repeat per series) */
	struct {
		double v;
		char s[40];
	} fmt_cache[32];
	unsigned fmt_valid;
	pb_family *mf;
	size_t off;  /* byte offset of the next length prefix */
	size_t mi;   /* metric index in mf */
	unsigned st; /* step inside the current metric */
	int meta;    /* metadata events of mf already yielded */
	unsigned n_msg;
	size_t msg_off; /* offset of mf's message, for errors */
	char *txt;
	size_t txt_len, txt_cap;
	bool txt_oom;
	struct starling_expo_exemplar *ex;
	size_t ex_off[64]; /* label text offsets while txt may move */
	size_t n_ex;
	struct starling_histogram h;
	struct starling_bucket_span *spans;
	size_t spans_cap;
};

/* ---- counting allocator ---------------------------------------------- */

static void *pa_alloc(void *ctx, size_t size)
{
	struct expo_proto *x = ctx;
	struct arena_chunk *c = x->chunks;
	size_t need = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (need > x->budget || x->used > x->budget - need)
		return NULL;
	/* chunks after the head are full or were reset: walk to one with room */
	while (c && c->cap - c->used < need)
		c = c->next;
	if (!c) {
		size_t cap = need > (64u << 10) ? need : (64u << 10);

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = x->chunks;
		x->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	x->used += need;
	return p;
}

static void pa_free(void *ctx, void *ptr)
{
	(void)ctx;
	(void)ptr; /* freed with the arena */
}

/* Forget the current family: the arena is rewound, its chunks kept (all
 * but 1 MiB of them freed, so one huge family does not pin memory). */
static void drop_family(struct expo_proto *x)
{
	struct arena_chunk **pc = &x->chunks;
	size_t kept = 0;

	x->mf = NULL;
	x->used = 0;
	while (*pc) {
		struct arena_chunk *c = *pc;

		if (kept + c->cap > (1u << 20) && kept) {
			*pc = c->next;
			free(c);
			continue;
		}
		kept += c->cap;
		c->used = 0;
		pc = &c->next;
	}
}

void expo_proto_free(struct expo_proto *x)
{
	if (!x)
		return;
	drop_family(x);
	while (x->chunks) {
		struct arena_chunk *c = x->chunks;

		x->chunks = c->next;
		free(c);
	}
	free(x->txt);
	free(x->ex);
	free(x->spans);
	free(x);
}

void expo_proto_reset(struct expo_proto *x)
{
	drop_family(x);
	x->off = 0;
	x->n_msg = 0;
}

/* ---- content type parameters --------------------------------------------- */

static bool param_is(const char *s, size_t n, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n != kl + 1 + vl || strncasecmp(s, key, kl) != 0 || s[kl] != '=')
		return false;
	return strncmp(s + kl + 1, val, vl) == 0;
}

bool expo_proto_params_ok(const char *s, size_t len)
{
	bool proto = false, delimited = false;
	size_t i = 0;

	while (i < len) {
		size_t j;

		if (s[i] == ';') {
			i++;
			continue;
		}
		for (j = i; j < len && s[j] != ';'; j++)
			;
		proto |= param_is(s + i, j - i, "proto", "io.prometheus.client.MetricFamily");
		delimited |= param_is(s + i, j - i, "encoding", "delimited");
		i = j;
	}
	return proto && delimited;
}

/* ---- text generation --------------------------------------------------- */

static void put(struct expo_proto *x, const char *s, size_t n)
{
	if (x->txt_len + n + 1 > x->txt_cap) {
		size_t cap = x->txt_cap ? x->txt_cap : 256;
		char *t;

		while (cap < x->txt_len + n + 1)
			cap *= 2;
		t = realloc(x->txt, cap);
		if (!t) {
			x->txt_oom = true;
			return;
		}
		x->txt = t;
		x->txt_cap = cap;
	}
	memcpy(x->txt + x->txt_len, s, n);
	x->txt_len += n;
}

static void puts_(struct expo_proto *x, const char *s)
{
	put(x, s, strlen(s));
}

static void put_escaped(struct expo_proto *x, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;

		if (!rep)
			continue;
		put(x, run, (size_t)(s - run));
		puts_(x, rep);
		run = s + 1;
	}
	put(x, run, (size_t)(s - run));
}

static bool valid_name(const char *s, bool metric)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* A name the document may carry: legacy, or any UTF-8 (protobuf-c does not
 * check proto2 strings) with STARLING_EXPO_UTF8_NAMES. */
static bool name_ok(const struct starling_expo_parser *p, const char *s, bool metric)
{
	if (p->flags & STARLING_EXPO_UTF8_NAMES)
		return s && *s && expo_utf8_valid(s, strlen(s));
	return valid_name(s, metric);
}

/* Go's strconv.FormatFloat(f, 'g', -1, 64), then ".0" appended when the
 * result has neither '.' nor 'e' (Prometheus' formatOpenMetricsFloat). */
size_t starling_expo_format_float(double f, char out[40])
{
	char tmp[40], digits[24];
	int prec, nd = 0, x, dp;
	size_t n = 0;
	const char *e;

	if (f == 1)
		return (size_t)snprintf(out, 40, "1.0");
	if (f == 0)
		return (size_t)snprintf(out, 40, "0.0");
	if (f == -1)
		return (size_t)snprintf(out, 40, "-1.0");
	if (isnan(f))
		return (size_t)snprintf(out, 40, "NaN");
	if (isinf(f))
		return (size_t)snprintf(out, 40, f > 0 ? "+Inf" : "-Inf");
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	if (f < 0)
		out[n++] = '-';
	for (const char *s = tmp; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	e = strchr(tmp, 'e');
	x = e ? atoi(e + 1) : 0;
	dp = x + 1;
	if (x < -4 || x >= 6) {
		out[n++] = digits[0];
		if (nd > 1) {
			out[n++] = '.';
			for (int i = 1; i < nd; i++)
				out[n++] = digits[i];
		}
		n +=
		    (size_t)snprintf(out + n, 40 - n, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
		return n;
	}
	if (dp <= 0) {
		out[n++] = '0';
		out[n++] = '.';
		for (int i = 0; i < -dp; i++)
			out[n++] = '0';
		for (int i = 0; i < nd; i++)
			out[n++] = digits[i];
	} else {
		for (int i = 0; i < dp; i++)
			out[n++] = i < nd ? digits[i] : '0';
		if (nd > dp) {
			out[n++] = '.';
			for (int i = dp; i < nd; i++)
				out[n++] = digits[i];
		} else {
			out[n++] = '.';
			out[n++] = '0';
		}
	}
	out[n] = '\0';
	return n;
}

static uint64_t bits_hash(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return (b * UINT64_C(0x9e3779b97f4a7c15)) >> 59;
}

/* starling_expo_format_float through a small cache keyed by the value's bits. */
static const char *fmt_bound(struct expo_proto *x, double v)
{
	unsigned i = (unsigned)(bits_hash(v) & 31);

	if (!((x->fmt_valid >> i) & 1) || memcmp(&x->fmt_cache[i].v, &v, sizeof(v)) != 0) {
		starling_expo_format_float(v, x->fmt_cache[i].s);
		x->fmt_cache[i].v = v;
		x->fmt_valid |= 1u << i;
	}
	return x->fmt_cache[i].s;
}

/* A label name, quoted when it is not a legacy name (UTF-8 names). */
static void put_label_name(struct expo_proto *x, const char *name)
{
	if (valid_name(name, false)) {
		puts_(x, name);
		return;
	}
	puts_(x, "\"");
	put_escaped(x, name);
	puts_(x, "\"");
}

/* Series text: name+suffix{labels[,extra="val"]}, or with a UTF-8 name
 * {"name+suffix",labels...}. */
static void gen_series(struct expo_proto *x, const pb_metric *m, const char *suffix,
		       const char *extra, const char *extra_val, struct starling_expo_event *ev)
{
	bool quoted = !valid_name(x->mf->name, true);
	bool any = m->n_label > 0 || extra || quoted;

	x->txt_len = 0;
	x->txt_oom = false;
	if (quoted) {
		puts_(x, "{\"");
		put_escaped(x, x->mf->name);
		put_escaped(x, suffix);
		puts_(x, "\"");
		ev->name_len = 0;
	} else {
		puts_(x, x->mf->name);
		puts_(x, suffix);
		ev->name_len = x->txt_len;
	}
	if (any) {
		if (!quoted)
			puts_(x, "{");
		for (size_t i = 0; i < m->n_label; i++) {
			if (i || quoted)
				puts_(x, ",");
			put_label_name(x, m->label[i]->name);
			puts_(x, "=\"");
			put_escaped(x, m->label[i]->value ? m->label[i]->value : "");
			puts_(x, "\"");
		}
		if (extra) {
			if (m->n_label || quoted)
				puts_(x, ",");
			puts_(x, extra);
			puts_(x, "=\"");
			puts_(x, extra_val);
			puts_(x, "\"");
		}
		puts_(x, "}");
	}
	ev->series_len = x->txt_len;
}

static int64_t ts_ms(const pb_ts *t)
{
	int64_t ms;

	/* saturate instead of overflowing on absurd seconds */
	if (__builtin_mul_overflow((int64_t)t->seconds, (int64_t)1000, &ms) ||
	    __builtin_add_overflow(ms, (int64_t)(t->nanos / 1000000), &ms))
		return t->seconds < 0 ? INT64_MIN : INT64_MAX;
	return ms;
}

/* Append one exemplar's label text to txt (after the series). */
static int add_exemplar(struct starling_expo_parser *p, const pb_exemplar *e)
{
	struct expo_proto *x = p->proto;
	size_t lo;

	if (!e || x->n_ex >= sizeof(x->ex_off) / sizeof(x->ex_off[0]))
		return 0;
	if (!x->ex) {
		x->ex = calloc(sizeof(x->ex_off) / sizeof(x->ex_off[0]), sizeof(*x->ex));
		if (!x->ex)
			return expo_fail_at(p, x->n_msg, 1, "out of memory");
	}
	lo = x->txt_len;
	puts_(x, "{");
	for (size_t i = 0; i < e->n_label; i++) {
		if (!name_ok(p, e->label[i]->name, false))
			return expo_fail_at(p, x->n_msg, 1,
					    "family %s: invalid exemplar label name", x->mf->name);
		if (i)
			puts_(x, ",");
		put_label_name(x, e->label[i]->name);
		puts_(x, "=\"");
		put_escaped(x, e->label[i]->value ? e->label[i]->value : "");
		puts_(x, "\"");
	}
	puts_(x, "}");
	x->ex_off[x->n_ex] = lo;
	x->ex[x->n_ex].labels_len = x->txt_len - lo;
	x->ex[x->n_ex].value = e->value;
	x->ex[x->n_ex].has_timestamp = e->timestamp != NULL;
	x->ex[x->n_ex].timestamp_ms = e->timestamp ? ts_ms(e->timestamp) : 0;
	x->n_ex++;
	return 0;
}

static double canon(double v)
{
	uint64_t bits;

	if (!isnan(v))
		return v;
	bits = UINT64_C(0x7ff8000000000001);
	memcpy(&v, &bits, sizeof(v));
	return v;
}

/* ---- native histograms ------------------------------------------------ */

static bool is_native(const pb_histogram *h)
{
	return h->n_positive_span || h->n_negative_span || h->zero_threshold > 0 ||
	       h->zero_count > 0 || h->zero_count_float > 0;
}

static int check_side(struct starling_expo_parser *p, pb_span *const *sp, size_t n_sp,
		      size_t n_buckets, const int64_t *deltas, const double *counts,
		      const char *side, uint64_t *total, double *ftotal)
{
	struct expo_proto *x = p->proto;
	uint64_t want = 0;
	int64_t cur = 0;

	for (size_t i = 0; i < n_sp; i++) {
		if (i > 0 && sp[i]->offset < 0)
			return expo_fail_at(p, x->n_msg, 1,
					    "family %s: %s span %zu has a negative offset %d",
					    x->mf->name, side, i + 1, sp[i]->offset);
		want += sp[i]->length;
	}
	if (want != n_buckets)
		return expo_fail_at(p, x->n_msg, 1,
				    "family %s: %s spans cover %llu buckets but %zu are given",
				    x->mf->name, side, (unsigned long long)want, n_buckets);
	for (size_t i = 0; i < n_buckets; i++) {
		if (deltas) {
			if (__builtin_add_overflow(cur, deltas[i], &cur) || cur < 0)
				return expo_fail_at(p, x->n_msg, 1,
						    "family %s: %s bucket %zu has a negative count",
						    x->mf->name, side, i + 1);
			*total += (uint64_t)cur;
		} else {
			if (!(counts[i] >= 0))
				return expo_fail_at(p, x->n_msg, 1,
						    "family %s: %s bucket %zu has a negative count",
						    x->mf->name, side, i + 1);
			*ftotal += counts[i];
		}
	}
	return 0;
}

static struct starling_bucket_span *copy_spans(struct expo_proto *x, size_t at, pb_span *const *sp,
					       size_t n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		x->spans[at + i].offset = sp[i]->offset;
		x->spans[at + i].length = sp[i]->length;
	}
	return &x->spans[at];
}

static int native_event(struct starling_expo_parser *p, const pb_metric *m,
			struct starling_expo_event *ev)
{
	struct expo_proto *x = p->proto;
	const pb_histogram *ph = m->histogram;
	struct starling_histogram *h = &x->h;
	bool fl = ph->sample_count_float > 0 || ph->zero_count_float > 0;
	uint64_t total = 0;
	double ftotal = 0;
	size_t nsp = ph->n_positive_span + ph->n_negative_span;
	int rc;

	if (ph->schema < -4 || ph->schema > 8)
		return expo_fail_at(p, x->n_msg, 1,
				    "family %s: native histogram schema %d out of range -4..8",
				    x->mf->name, ph->schema);
	if (!(ph->zero_threshold >= 0))
		return expo_fail_at(p, x->n_msg, 1, "family %s: negative zero threshold",
				    x->mf->name);
	rc = check_side(p, ph->positive_span, ph->n_positive_span,
			fl ? ph->n_positive_count : ph->n_positive_delta,
			fl ? NULL : ph->positive_delta, fl ? ph->positive_count : NULL, "positive",
			&total, &ftotal);
	if (!rc)
		rc = check_side(p, ph->negative_span, ph->n_negative_span,
				fl ? ph->n_negative_count : ph->n_negative_delta,
				fl ? NULL : ph->negative_delta, fl ? ph->negative_count : NULL,
				"negative", &total, &ftotal);
	if (rc)
		return rc;
	if (fl && (!(ph->sample_count_float >= 0) || !(ph->zero_count_float >= 0)))
		return expo_fail_at(p, x->n_msg, 1, "family %s: negative histogram count",
				    x->mf->name);
	if (!fl && (total + ph->zero_count < total || total + ph->zero_count > ph->sample_count))
		return expo_fail_at(p, x->n_msg, 1,
				    "family %s: %llu observations in buckets but the count is %llu",
				    x->mf->name, (unsigned long long)(total + ph->zero_count),
				    (unsigned long long)ph->sample_count);
	if (nsp > x->spans_cap) {
		struct starling_bucket_span *s = realloc(x->spans, nsp * sizeof(*s));

		if (!s)
			return expo_fail_at(p, x->n_msg, 1, "out of memory");
		x->spans = s;
		x->spans_cap = nsp;
	}
	memset(h, 0, sizeof(*h));
	h->is_float = fl;
	h->count_int = ph->sample_count;
	h->count_float = ph->sample_count_float;
	h->sum = ph->sample_sum;
	h->schema = ph->schema;
	h->zero_threshold = ph->zero_threshold;
	h->zero_count_int = ph->zero_count;
	h->zero_count_float = ph->zero_count_float;
	h->positive_spans = copy_spans(x, 0, ph->positive_span, ph->n_positive_span);
	h->n_positive_spans = ph->n_positive_span;
	h->negative_spans =
	    copy_spans(x, ph->n_positive_span, ph->negative_span, ph->n_negative_span);
	h->n_negative_spans = ph->n_negative_span;
	if (fl) {
		h->positive_counts = ph->positive_count;
		h->n_positive = ph->n_positive_count;
		h->negative_counts = ph->negative_count;
		h->n_negative = ph->n_negative_count;
	} else {
		h->positive_deltas = ph->positive_delta;
		h->n_positive = ph->n_positive_delta;
		h->negative_deltas = ph->negative_delta;
		h->n_negative = ph->n_negative_delta;
	}
	h->reset_hint = x->mf->type == IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE_HISTOGRAM
			    ? STARLING_HISTOGRAM_RESET_GAUGE
			    : STARLING_HISTOGRAM_RESET_UNKNOWN;
	gen_series(x, m, "", NULL, NULL, ev);
	/* Exemplars: the histogram's own, else its buckets' (with timestamps:
	 * native histogram exemplars must carry one). */
	for (size_t i = 0; i < ph->n_exemplars; i++)
		if (ph->exemplars[i]->timestamp && (rc = add_exemplar(p, ph->exemplars[i])))
			return rc;
	for (size_t i = 0; !ph->n_exemplars && i < ph->n_bucket; i++)
		if (ph->bucket[i]->exemplar && ph->bucket[i]->exemplar->timestamp &&
		    (rc = add_exemplar(p, ph->bucket[i]->exemplar)))
			return rc;
	ev->kind = STARLING_EXPO_HISTOGRAM;
	ev->histogram = h;
	ev->value = 0;
	return STARLING_EXPO_HISTOGRAM;
}

/* ---- the decoder -------------------------------------------------------- */

static int read_family(struct starling_expo_parser *p)
{
	struct expo_proto *x = p->proto;
	size_t left = (size_t)(p->end - p->buf) - x->off;
	const uint8_t *b = (const uint8_t *)p->buf + x->off;
	uint64_t len = 0;
	unsigned shift = 0;
	size_t i = 0;

	x->n_msg++;
	for (;;) {
		if (i == left)
			return expo_fail_at(p, x->n_msg, (unsigned)x->off + 1,
					    "protobuf: truncated length prefix at byte %zu",
					    x->off);
		if (i == 10)
			return expo_fail_at(p, x->n_msg, (unsigned)x->off + 1,
					    "protobuf: invalid length prefix at byte %zu", x->off);
		len |= (uint64_t)(b[i] & 0x7f) << shift;
		shift += 7;
		if (!(b[i++] & 0x80))
			break;
	}
	if (len > PROTO_MAX_MSG || len > left - i)
		return expo_fail_at(p, x->n_msg, (unsigned)x->off + 1,
				    "protobuf: message %u at byte %zu claims %llu bytes, %zu left",
				    x->n_msg, x->off, (unsigned long long)len, left - i);
	x->msg_off = x->off;
	x->budget = (size_t)len * PROTO_MEM_FACTOR + PROTO_MEM_SLACK;
	x->used = 0;
	x->mf = io__prometheus__client__metric_family__unpack(&x->alloc, (size_t)len, b + i);
	x->off += i + (size_t)len;
	if (!x->mf)
		return expo_fail_at(
		    p, x->n_msg, (unsigned)x->msg_off + 1,
		    "protobuf: message %u at byte %zu is not a valid MetricFamily (or needs more "
		    "than %zu bytes of memory)",
		    x->n_msg, x->msg_off, x->budget);
	if (!name_ok(p, x->mf->name, true))
		return expo_fail_at(p, x->n_msg, (unsigned)x->msg_off + 1,
				    "protobuf: message %u: invalid metric family name \"%.64s\"",
				    x->n_msg, x->mf->name ? x->mf->name : "");
	for (size_t m = 0; m < x->mf->n_metric; m++)
		for (size_t l = 0; l < x->mf->metric[m]->n_label; l++)
			if (!name_ok(p, x->mf->metric[m]->label[l]->name, false))
				return expo_fail_at(
				    p, x->n_msg, (unsigned)x->msg_off + 1,
				    "protobuf: family %s: invalid label name \"%.64s\"",
				    x->mf->name,
				    x->mf->metric[m]->label[l]->name
					? x->mf->metric[m]->label[l]->name
					: "");
	x->mi = 0;
	x->st = 0;
	x->meta = 0;
	return 0;
}

static enum starling_metric_type map_type(const pb_family *mf)
{
	switch (mf->type) {
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER:
		return STARLING_METRIC_COUNTER;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE:
		return STARLING_METRIC_GAUGE;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__SUMMARY:
		return STARLING_METRIC_SUMMARY;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM:
		return STARLING_METRIC_HISTOGRAM;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE_HISTOGRAM:
		return STARLING_METRIC_GAUGE_HISTOGRAM;
	default:
		return STARLING_METRIC_UNKNOWN;
	}
}

/* Metadata events of the current family: TYPE, HELP, UNIT. Returns the
 * kind, or 0 when all were given. */
static int meta_event(struct expo_proto *x, struct starling_expo_event *ev)
{
	const pb_family *mf = x->mf;

	ev->family = mf->name;
	ev->family_len = strlen(mf->name);
	ev->text = NULL;
	ev->text_len = 0;
	while (x->meta < 3) {
		switch (x->meta++) {
		case 0:
			ev->type = map_type(mf);
			ev->kind = STARLING_EXPO_TYPE;
			return STARLING_EXPO_TYPE;
		case 1:
			if (!mf->help || !*mf->help)
				continue;
			/* HELP text as Prometheus text writes it: escaped \\ and \n */
			x->txt_len = 0;
			for (const char *s = mf->help; *s; s++) {
				if (*s == '\\')
					puts_(x, "\\\\");
				else if (*s == '\n')
					puts_(x, "\\n");
				else
					put(x, s, 1);
			}
			ev->text = x->txt;
			ev->text_len = x->txt_len;
			ev->kind = STARLING_EXPO_HELP;
			return x->txt_oom ? 0 : STARLING_EXPO_HELP;
		default:
			if (!mf->unit || !*mf->unit)
				continue;
			ev->text = mf->unit;
			ev->text_len = strlen(mf->unit);
			ev->kind = STARLING_EXPO_UNIT;
			return STARLING_EXPO_UNIT;
		}
	}
	return 0;
}

/* The st-th series of metric m (classic view). Returns SAMPLE, 0 when the
 * metric has no more, or an error. */
static int metric_step(struct starling_expo_parser *p, const pb_metric *m,
		       struct starling_expo_event *ev)
{
	struct expo_proto *x = p->proto;
	unsigned st = x->st++;

	switch (x->mf->type) {
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER:
		if (st)
			return 0;
		gen_series(x, m, "", NULL, NULL, ev);
		ev->value = m->counter ? m->counter->value : 0;
		if (m->counter && m->counter->exemplar) {
			int rc = add_exemplar(p, m->counter->exemplar);

			if (rc)
				return rc;
		}
		return STARLING_EXPO_SAMPLE;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE:
		if (st)
			return 0;
		gen_series(x, m, "", NULL, NULL, ev);
		ev->value = m->gauge ? m->gauge->value : 0;
		return STARLING_EXPO_SAMPLE;
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__SUMMARY: {
		const Io__Prometheus__Client__Summary *s = m->summary;
		size_t nq = s ? s->n_quantile : 0;

		if (st == 0) {
			gen_series(x, m, "_count", NULL, NULL, ev);
			ev->value = s ? (double)s->sample_count : 0;
		} else if (st == 1) {
			gen_series(x, m, "_sum", NULL, NULL, ev);
			ev->value = s ? s->sample_sum : 0;
		} else if (st - 2 < nq) {
			gen_series(x, m, "", "quantile",
				   fmt_bound(x, s->quantile[st - 2]->quantile), ev);
			ev->value = s->quantile[st - 2]->value;
		} else {
			return 0;
		}
		return STARLING_EXPO_SAMPLE;
	}
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM:
	case IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE_HISTOGRAM: {
		const pb_histogram *h = m->histogram;
		bool native = h && is_native(h);
		size_t nb = h ? h->n_bucket : 0;
		double count;
		unsigned b;

		if (st == 0) {
			if (native && (p->flags & STARLING_EXPO_NATIVE_HISTOGRAMS))
				return native_event(p, m, ev);
			x->st++; /* fall through to the classic series */
			st++;
		}
		if (native && (p->flags & STARLING_EXPO_NATIVE_HISTOGRAMS) &&
		    !(p->flags & STARLING_EXPO_CLASSIC_HISTOGRAMS))
			return 0;
		count = !h			    ? 0
			: h->sample_count_float > 0 ? h->sample_count_float
						    : (double)h->sample_count;
		if (st == 1) {
			gen_series(x, m, "_count", NULL, NULL, ev);
			ev->value = count;
			return STARLING_EXPO_SAMPLE;
		}
		if (st == 2) {
			gen_series(x, m, "_sum", NULL, NULL, ev);
			ev->value = h ? h->sample_sum : 0;
			return STARLING_EXPO_SAMPLE;
		}
		b = st - 3;
		if (b < nb) {
			const Io__Prometheus__Client__Bucket *bk = h->bucket[b];

			gen_series(x, m, "_bucket", "le", fmt_bound(x, bk->upper_bound), ev);
			ev->value = bk->cumulative_count_float > 0 ? bk->cumulative_count_float
								   : (double)bk->cumulative_count;
			if (bk->exemplar) {
				int rc = add_exemplar(p, bk->exemplar);

				if (rc)
					return rc;
			}
			return STARLING_EXPO_SAMPLE;
		}
		if (b == nb && (nb == 0 || !isinf(h->bucket[nb - 1]->upper_bound) ||
				h->bucket[nb - 1]->upper_bound < 0)) {
			gen_series(x, m, "_bucket", "le", "+Inf", ev);
			ev->value = count;
			return STARLING_EXPO_SAMPLE;
		}
		return 0;
	}
	default: /* UNTYPED and unknown enum values */
		if (st)
			return 0;
		gen_series(x, m, "", NULL, NULL, ev);
		ev->value = m->untyped ? m->untyped->value : 0;
		return STARLING_EXPO_SAMPLE;
	}
}

int expo_proto_next(struct starling_expo_parser *p, struct starling_expo_event *ev)
{
	struct expo_proto *x = p->proto;
	int rc;

	if (!x) {
		x = p->proto = calloc(1, sizeof(*x));
		if (!x)
			return expo_fail_at(p, 1, 1, "out of memory");
		x->alloc.alloc = pa_alloc;
		x->alloc.free = pa_free;
		x->alloc.allocator_data = x;
	}
	ev->has_exemplar = false;
	for (;;) {
		const pb_metric *m;

		if (!x->mf) {
			if (x->off >= (size_t)(p->end - p->buf)) {
				p->state = 1;
				return STARLING_EXPO_END;
			}
			rc = read_family(p);
			if (rc) {
				drop_family(x);
				return rc;
			}
		}
		ev->line = x->n_msg;
		rc = meta_event(x, ev);
		if (rc)
			return rc;
		if (x->mi >= x->mf->n_metric) {
			drop_family(x);
			continue;
		}
		m = x->mf->metric[x->mi];
		x->n_ex = 0;
		rc = metric_step(p, m, ev);
		if (rc < 0) {
			drop_family(x);
			return rc;
		}
		if (rc == 0) {
			x->mi++;
			x->st = 0;
			continue;
		}
		if (x->txt_oom) {
			drop_family(x);
			return expo_fail_at(p, x->n_msg, 1, "out of memory");
		}
		ev->series = x->txt;
		ev->value = canon(ev->value);
		ev->has_timestamp = m->has_timestamp_ms;
		ev->timestamp_ms = m->timestamp_ms;
		for (size_t i = 0; i < x->n_ex; i++)
			x->ex[i].labels = x->txt + x->ex_off[i];
		ev->exemplars = x->n_ex ? x->ex : NULL;
		ev->n_exemplars = x->n_ex;
		ev->has_exemplar = x->n_ex > 0;
		return rc;
	}
}
