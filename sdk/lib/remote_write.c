/* Remote Write 1.0 wire encoding by hand (see starling/remote_write.h).
 * Field tags (field << 3 | wire type): WriteRequest.timeseries 0x0a,
 * .metadata 0x1a; TimeSeries.labels 0x0a, .samples 0x12; Label.name 0x0a,
 * .value 0x12; Sample.value 0x09 (fixed64), .timestamp 0x10 (varint);
 * MetricMetadata.type 0x08, .metric_family_name 0x12, .help 0x22, .unit 0x2a. */
#include <starling/remote_write.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the wire encoder copies doubles as little-endian"
#endif

/* Reallocate b to ncap bytes (its content kept). */
static int buf_resize(struct starling_rw_buf *b, size_t ncap)
{
	uint8_t *p = realloc(b->data, ncap);

	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int starling_rw_buf_reserve(struct starling_rw_buf *b, size_t extra)
{
	size_t ncap;

	if (b->len + extra <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + extra) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	return buf_resize(b, ncap);
}

int starling_rw_buf_fit(struct starling_rw_buf *b, size_t n)
{
	size_t want = n + n / 16 + 64;
	uint8_t *p;

	b->len = 0;
	if (n <= b->cap && b->cap - n <= n / 4 + 64)
		return 0;
	if (want < n)
		return -ENOMEM;
	/* the content is not kept: no copy */
	p = malloc(want);
	if (!p)
		return b->cap >= n ? 0 : -ENOMEM; /* a larger buffer still does */
	free(b->data);
	b->data = p;
	b->cap = want;
	return 0;
}

void starling_rw_buf_free(struct starling_rw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_bytes_field(uint8_t *p, uint8_t tag, const void *s, size_t len)
{
	*p++ = tag;
	p = put_varint(p, len);
	memcpy(p, s, len);
	return p + len;
}

/* Room for one length-delimited field of `body` bytes, its tag and length
 * written: where its body goes, or NULL (out of memory). */
static uint8_t *begin_field(struct starling_rw_buf *b, uint8_t tag, size_t body)
{
	uint8_t *p;

	if (starling_rw_buf_reserve(b, 1 + varint_len(body) + body))
		return NULL;
	p = b->data + b->len;
	*p++ = tag;
	return put_varint(p, body);
}

int starling_rw_encode_labels(struct starling_rw_buf *out, const struct starling_label *labels,
			      size_t n)
{
	return starling_rw_encode_labels_n(out, labels, NULL, n);
}

/* One Label message, any lengths (nl > 0, vl > 0). */
static int encode_label(struct starling_rw_buf *out, const struct starling_label *l, size_t nl,
			size_t vl)
{
	size_t ml = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
	uint8_t *p;
	int r;

	r = starling_rw_buf_reserve(out, 1 + varint_len(ml) + ml);
	if (r)
		return r;
	p = out->data + out->len;
	*p++ = 0x0a;
	p = put_varint(p, ml);
	p = put_bytes_field(p, 0x0a, l->name, nl);
	p = put_bytes_field(p, 0x12, l->value, vl);
	out->len = (size_t)(p - out->data);
	return 0;
}

/* memcpy() of a label-sized string without a call: two overlapping 8-, 4-
 * or 2-byte moves cover 2..16 bytes (never reading outside [s, s + n)). */
static inline void copy_small(uint8_t *d, const char *s, size_t n)
{
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t a, b;

		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;

		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else if (n >= 2) {
		uint16_t a, b;

		memcpy(&a, s, 2);
		memcpy(&b, s + n - 2, 2);
		memcpy(d, &a, 2);
		memcpy(d + n - 2, &b, 2);
	} else if (n) {
		d[0] = (uint8_t)s[0];
	}
}

/* A label whose message is under 128 bytes (nearly all) has one-byte
 * lengths: written in place with one capacity check and no calls for the
 * copies; longer ones go through encode_label(). Encoding labels was ~13% of
 * the CPU of 200 targets x 1,000 series at 1 s. */
int starling_rw_encode_labels_n(struct starling_rw_buf *out, const struct starling_label *labels,
				const size_t *value_lens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct starling_label *l = &labels[i];
		size_t nl = strlen(l->name), vl, ml;
		uint8_t *p;
		int r;

		vl = !l->value ? 0 : value_lens ? value_lens[i] : strlen(l->value);
		if (!nl)
			return -EINVAL;
		if (!vl)
			continue;
		ml = 4 + nl + vl;
		if (ml >= 0x80) {
			r = encode_label(out, l, nl, vl);
			if (r)
				return r;
			continue;
		}
		if (out->len + 2 + ml > out->cap && (r = starling_rw_buf_reserve(out, 2 + ml)))
			return r;
		p = out->data + out->len;
		p[0] = 0x0a;
		p[1] = (uint8_t)ml;
		p[2] = 0x0a;
		p[3] = (uint8_t)nl;
		copy_small(p + 4, l->name, nl);
		p[4 + nl] = 0x12;
		p[5 + nl] = (uint8_t)vl;
		copy_small(p + 6 + nl, l->value, vl);
		out->len += 2 + ml;
	}
	return 0;
}

static size_t sample_len(int64_t ts)
{
	return 1 + 8 + 1 + varint_len((uint64_t)ts);
}

/* Name and value lengths of label i (see starling_rw_append_series_labels). */
static inline size_t name_len_at(const struct starling_label *l, const uint32_t *ll, size_t i)
{
	return ll ? ll[2 * i] : strlen(l[i].name);
}

static inline size_t value_len_at(const struct starling_label *l, const uint32_t *ll,
				  const size_t *vlens, size_t i)
{
	return !l[i].value ? 0 : vlens ? vlens[i] : ll ? ll[2 * i + 1] : strlen(l[i].value);
}

/* Bytes of one labels field (tag, length, Label message). */
static inline size_t label_field_len(size_t nl, size_t vl)
{
	size_t ml = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;

	return 1 + varint_len(ml) + ml;
}

/* Labels whose lengths are kept on the stack between the two passes of
 * starling_rw_append_series_labels (more: counted again). */
#define SERIES_LOCAL_LABELS 32

int starling_rw_append_series_labels(struct starling_rw_buf *req,
				     const struct starling_label *labels,
				     const uint32_t *label_lens, const size_t *value_lens,
				     size_t n_labels, const double *values,
				     const int64_t *timestamps_ms, size_t n)
{
	uint32_t local[2 * SERIES_LOCAL_LABELS];
	bool keep = !label_lens && n_labels <= SERIES_LOCAL_LABELS;
	const uint32_t *ll = label_lens;
	const size_t *vlens = value_lens;
	size_t body = 0;
	uint8_t *p;

	/* pass 1: the size, and the lengths when they had to be counted */
	for (size_t i = 0; i < n_labels; i++) {
		size_t nl = name_len_at(labels, label_lens, i);
		size_t vl = value_len_at(labels, label_lens, value_lens, i);

		if (!nl)
			return -EINVAL;
		if (keep && (nl > UINT32_MAX || vl > UINT32_MAX))
			keep = false; /* counted again in pass 2 */
		if (keep) {
			local[2 * i] = (uint32_t)nl;
			local[2 * i + 1] = (uint32_t)vl;
		}
		if (vl)
			body += label_field_len(nl, vl);
	}
	if (keep) {
		ll = local;
		vlens = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t sl = sample_len(timestamps_ms[i]);

		body += 1 + varint_len(sl) + sl;
	}
	if (!(p = begin_field(req, 0x0a, body)))
		return -ENOMEM;
	/* pass 2: the labels, as starling_rw_encode_labels_n writes them */
	for (size_t i = 0; i < n_labels; i++) {
		size_t nl = name_len_at(labels, ll, i), vl = value_len_at(labels, ll, vlens, i);
		size_t ml = 4 + nl + vl;

		if (!vl)
			continue;
		if (ml >= 0x80) {
			*p++ = 0x0a;
			p = put_varint(p, 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl);
			p = put_bytes_field(p, 0x0a, labels[i].name, nl);
			p = put_bytes_field(p, 0x12, labels[i].value, vl);
			continue;
		}
		p[0] = 0x0a;
		p[1] = (uint8_t)ml;
		p[2] = 0x0a;
		p[3] = (uint8_t)nl;
		copy_small(p + 4, labels[i].name, nl);
		p[4 + nl] = 0x12;
		p[5 + nl] = (uint8_t)vl;
		copy_small(p + 6 + nl, labels[i].value, vl);
		p += 2 + ml;
	}
	for (size_t i = 0; i < n; i++) {
		*p++ = 0x12;
		*p++ = (uint8_t)sample_len(timestamps_ms[i]);
		*p++ = 0x09;
		memcpy(p, &values[i], 8);
		p += 8;
		*p++ = 0x10;
		p = put_varint(p, (uint64_t)timestamps_ms[i]);
	}
	req->len = (size_t)(p - req->data);
	return 0;
}

size_t starling_rw_series_size(size_t labels_len, const int64_t *timestamps_ms, size_t n)
{
	size_t body = labels_len;

	for (size_t i = 0; i < n; i++) {
		size_t sl = sample_len(timestamps_ms[i]);

		body += 1 + varint_len(sl) + sl;
	}
	return 1 + varint_len(body) + body;
}

int starling_rw_append_series(struct starling_rw_buf *req, const uint8_t *labels, size_t labels_len,
			      const double *values, const int64_t *timestamps_ms, size_t n)
{
	return starling_rw_append_series_ext(req, labels, labels_len, values, timestamps_ms, n,
					     NULL, 0, NULL, 0);
}

int starling_rw_append_metadata(struct starling_rw_buf *req, const struct starling_metadata *md)
{
	size_t fl = md->family ? strlen(md->family) : 0;
	size_t hl = md->help ? strlen(md->help) : 0;
	size_t ul = md->unit ? strlen(md->unit) : 0;
	size_t body = 0;
	uint8_t *p;

	if (!fl)
		return -EINVAL;
	if (md->type)
		body += 1 + varint_len((uint64_t)md->type);
	body += 1 + varint_len(fl) + fl;
	if (hl)
		body += 1 + varint_len(hl) + hl;
	if (ul)
		body += 1 + varint_len(ul) + ul;
	if (!(p = begin_field(req, 0x1a, body)))
		return -ENOMEM;
	if (md->type) {
		*p++ = 0x08;
		p = put_varint(p, (uint64_t)md->type);
	}
	p = put_bytes_field(p, 0x12, md->family, fl);
	if (hl)
		p = put_bytes_field(p, 0x22, md->help, hl);
	if (ul)
		p = put_bytes_field(p, 0x2a, md->unit, ul);
	req->len = (size_t)(p - req->data);
	return 0;
}

int starling_rw_snappy(const uint8_t *in, size_t len, struct starling_rw_buf *out)
{
	size_t max = snappy_max_compressed_length(len), olen;
	int r;

	out->len = 0;
	r = starling_rw_buf_reserve(out, max);
	if (r)
		return r;
	olen = out->cap;
	if (snappy_compress((const char *)in, len, (char *)out->data, &olen) != SNAPPY_OK)
		return -EIO;
	out->len = olen;
	return 0;
}

/* Room for `extra` more bytes, growing to a quarter over what is needed,
 * not to the next power of two: the block buffer is reused batch after
 * batch, so its size settles at 1.25x the largest block (issue 12). */
static int grow_quarter(struct starling_rw_buf *b, size_t extra)
{
	size_t need = b->len + extra, ncap = need + need / 4;

	if (need <= b->cap)
		return 0;
	if (need < extra || ncap < need)
		return -ENOMEM;
	return buf_resize(b, ncap);
}

int starling_rw_snappy_fragment(const uint8_t *in, size_t len, struct starling_rw_buf *out)
{
	size_t vl = varint_len(len), olen;
	int r;

	if (!len || len > STARLING_RW_SNAPPY_BLOCK)
		return -EINVAL;
	if (out->len < STARLING_RW_SNAPPY_HEADROOM)
		out->len = STARLING_RW_SNAPPY_HEADROOM;
	r = grow_quarter(out, snappy_max_compressed_length(len));
	if (r)
		return r;
	olen = out->cap - out->len;
	if (snappy_compress((const char *)in, len, (char *)out->data + out->len, &olen) !=
	    SNAPPY_OK)
		return -EIO;
	/* drop this fragment's own length preamble: the block has one, for
	 * all fragments, written by starling_rw_snappy_finish */
	memmove(out->data + out->len, out->data + out->len + vl, olen - vl);
	out->len += olen - vl;
	return 0;
}

size_t starling_rw_snappy_finish(struct starling_rw_buf *out, size_t total, uint8_t **data)
{
	size_t vl = varint_len(total);

	if (out->len < STARLING_RW_SNAPPY_HEADROOM) {
		/* no fragment: the empty block is its preamble alone */
		if (starling_rw_buf_reserve(out, STARLING_RW_SNAPPY_HEADROOM - out->len))
			return 0;
		out->len = STARLING_RW_SNAPPY_HEADROOM;
	}
	*data = out->data + STARLING_RW_SNAPPY_HEADROOM - vl;
	put_varint(*data, total);
	return out->len - STARLING_RW_SNAPPY_HEADROOM + vl;
}

int starling_rw_unsnappy(const uint8_t *in, size_t len, size_t limit, struct starling_rw_buf *out)
{
	size_t ulen;
	int r;

	out->len = 0;
	if (snappy_uncompressed_length((const char *)in, len, &ulen) != SNAPPY_OK)
		return -EBADMSG;
	if (limit && ulen > limit)
		return -EFBIG;
	r = starling_rw_buf_reserve(out, ulen ? ulen : 1);
	if (r)
		return r;
	if (snappy_uncompress((const char *)in, len, (char *)out->data, &ulen) != SNAPPY_OK)
		return -EBADMSG;
	out->len = ulen;
	return 0;
}

/* ---- exemplars and native histograms (since ABI 1.1) --------------------
 * TimeSeries.exemplars 0x1a, .histograms 0x22. Exemplar: labels 0x0a, value
 * 0x11 (fixed64), timestamp 0x18. Histogram (prompb/types.proto): count_int
 * 0x08 | count_float 0x11, sum 0x19, schema 0x20 (zigzag), zero_threshold
 * 0x29, zero_count_int 0x30 | zero_count_float 0x39, negative_spans 0x42,
 * negative_deltas 0x4a (packed zigzag), negative_counts 0x52 (packed
 * doubles), positive_spans 0x5a, positive_deltas 0x62, positive_counts
 * 0x6a, reset_hint 0x70, timestamp 0x78. BucketSpan: offset 0x08 (zigzag),
 * length 0x10. The oneof members are always written, so a float histogram
 * with a zero count still reads as float. */

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static uint8_t *put_double(uint8_t *p, uint8_t tag, double d)
{
	*p++ = tag;
	memcpy(p, &d, 8);
	return p + 8;
}

static size_t label_msgs_size(const struct starling_label *l, size_t n)
{
	size_t s = 0;

	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
		size_t ml = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;

		if (!vl)
			continue;
		s += 1 + varint_len(ml) + ml;
	}
	return s;
}

static size_t exemplar_size(const struct starling_exemplar *e)
{
	return label_msgs_size(e->labels, e->n_labels) + 9 + 1 +
	       varint_len((uint64_t)e->timestamp_ms);
}

static size_t spans_size(const struct starling_bucket_span *sp, size_t n)
{
	size_t s = 0;

	for (size_t i = 0; i < n; i++) {
		size_t b = 1 + varint_len(zz(sp[i].offset)) + 1 + varint_len(sp[i].length);

		s += 1 + varint_len(b) + b;
	}
	return s;
}

static size_t deltas_len(const int64_t *d, size_t n)
{
	size_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += varint_len(zz(d[i]));
	return s;
}

static size_t hist_size(const struct starling_histogram *h)
{
	size_t s = 0, l;

	s += h->is_float ? 9 : 1 + varint_len(h->count_int);
	s += 9;				    /* sum */
	s += 1 + varint_len(zz(h->schema)); /* schema */
	s += 9;				    /* zero_threshold */
	s += h->is_float ? 9 : 1 + varint_len(h->zero_count_int);
	s += spans_size(h->negative_spans, h->n_negative_spans);
	s += spans_size(h->positive_spans, h->n_positive_spans);
	if (h->n_negative) {
		l = h->is_float ? 8 * h->n_negative : deltas_len(h->negative_deltas, h->n_negative);
		s += 1 + varint_len(l) + l;
	}
	if (h->n_positive) {
		l = h->is_float ? 8 * h->n_positive : deltas_len(h->positive_deltas, h->n_positive);
		s += 1 + varint_len(l) + l;
	}
	if (h->reset_hint)
		s += 2;
	s += 1 + varint_len((uint64_t)h->timestamp_ms);
	return s;
}

static uint8_t *put_labels(uint8_t *p, const struct starling_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(l[i].name), vl = strlen(l[i].value);

		if (!vl)
			continue;
		*p++ = 0x0a;
		p = put_varint(p, 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl);
		p = put_bytes_field(p, 0x0a, l[i].name, nl);
		p = put_bytes_field(p, 0x12, l[i].value, vl);
	}
	return p;
}

static uint8_t *put_spans(uint8_t *p, uint8_t tag, const struct starling_bucket_span *sp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*p++ = tag;
		p = put_varint(p, 1 + varint_len(zz(sp[i].offset)) + 1 + varint_len(sp[i].length));
		*p++ = 0x08;
		p = put_varint(p, zz(sp[i].offset));
		*p++ = 0x10;
		p = put_varint(p, sp[i].length);
	}
	return p;
}

static uint8_t *put_values(uint8_t *p, uint8_t tag, bool fl, const int64_t *d, const double *c,
			   size_t n)
{
	if (!n)
		return p;
	*p++ = tag;
	if (fl) {
		p = put_varint(p, 8 * n);
		memcpy(p, c, 8 * n);
		return p + 8 * n;
	}
	p = put_varint(p, deltas_len(d, n));
	for (size_t i = 0; i < n; i++)
		p = put_varint(p, zz(d[i]));
	return p;
}

static uint8_t *put_hist(uint8_t *p, const struct starling_histogram *h)
{
	if (h->is_float) {
		p = put_double(p, 0x11, h->count_float);
	} else {
		*p++ = 0x08;
		p = put_varint(p, h->count_int);
	}
	p = put_double(p, 0x19, h->sum);
	*p++ = 0x20;
	p = put_varint(p, zz(h->schema));
	p = put_double(p, 0x29, h->zero_threshold);
	if (h->is_float) {
		p = put_double(p, 0x39, h->zero_count_float);
	} else {
		*p++ = 0x30;
		p = put_varint(p, h->zero_count_int);
	}
	p = put_spans(p, 0x42, h->negative_spans, h->n_negative_spans);
	p = put_values(p, h->is_float ? 0x52 : 0x4a, h->is_float, h->negative_deltas,
		       h->negative_counts, h->n_negative);
	p = put_spans(p, 0x5a, h->positive_spans, h->n_positive_spans);
	p = put_values(p, h->is_float ? 0x6a : 0x62, h->is_float, h->positive_deltas,
		       h->positive_counts, h->n_positive);
	if (h->reset_hint) {
		*p++ = 0x70;
		*p++ = (uint8_t)h->reset_hint;
	}
	*p++ = 0x78;
	return put_varint(p, (uint64_t)h->timestamp_ms);
}

/* Bytes of one TimeSeries entry's body (without its tag and length). */
static size_t ext_body(size_t labels_len, const int64_t *timestamps_ms, size_t n,
		       const struct starling_exemplar *ex, size_t n_ex,
		       const struct starling_histogram *h, size_t n_h)
{
	size_t body = labels_len;

	for (size_t i = 0; i < n; i++) {
		size_t sl = sample_len(timestamps_ms[i]);

		body += 1 + varint_len(sl) + sl;
	}
	for (size_t i = 0; i < n_ex; i++) {
		size_t el = exemplar_size(&ex[i]);

		body += 1 + varint_len(el) + el;
	}
	for (size_t i = 0; i < n_h; i++) {
		size_t hl = hist_size(&h[i]);

		body += 1 + varint_len(hl) + hl;
	}
	return body;
}

size_t starling_rw_series_ext_size(size_t labels_len, const int64_t *timestamps_ms, size_t n,
				   const struct starling_exemplar *ex, size_t n_ex,
				   const struct starling_histogram *h, size_t n_h)
{
	size_t body = ext_body(labels_len, timestamps_ms, n, ex, n_ex, h, n_h);

	return 1 + varint_len(body) + body;
}

int starling_rw_append_series_ext(struct starling_rw_buf *req, const uint8_t *labels,
				  size_t labels_len, const double *values,
				  const int64_t *timestamps_ms, size_t n,
				  const struct starling_exemplar *ex, size_t n_ex,
				  const struct starling_histogram *h, size_t n_h)
{
	size_t body = ext_body(labels_len, timestamps_ms, n, ex, n_ex, h, n_h);
	uint8_t *p;

	if (!(p = begin_field(req, 0x0a, body)))
		return -ENOMEM;
	memcpy(p, labels, labels_len);
	p += labels_len;
	for (size_t i = 0; i < n; i++) {
		*p++ = 0x12;
		*p++ = (uint8_t)sample_len(timestamps_ms[i]);
		p = put_double(p, 0x09, values[i]);
		*p++ = 0x10;
		p = put_varint(p, (uint64_t)timestamps_ms[i]);
	}
	for (size_t i = 0; i < n_ex; i++) {
		*p++ = 0x1a;
		p = put_varint(p, exemplar_size(&ex[i]));
		p = put_labels(p, ex[i].labels, ex[i].n_labels);
		p = put_double(p, 0x11, ex[i].value);
		*p++ = 0x18;
		p = put_varint(p, (uint64_t)ex[i].timestamp_ms);
	}
	for (size_t i = 0; i < n_h; i++) {
		*p++ = 0x22;
		p = put_varint(p, hist_size(&h[i]));
		p = put_hist(p, &h[i]);
	}
	req->len = (size_t)(p - req->data);
	return 0;
}
