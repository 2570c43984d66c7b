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

int starling_rw_buf_reserve(struct starling_rw_buf *b, size_t extra)
{
	size_t ncap;
	uint8_t *p;

	if (b->len + extra <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + extra) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	p = realloc(b->data, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
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

int starling_rw_encode_labels(struct starling_rw_buf *out, const struct starling_label *labels,
			      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t nl, vl, ml;
		uint8_t *p;
		int r;

		nl = strlen(labels[i].name);
		vl = labels[i].value ? strlen(labels[i].value) : 0;
		if (!nl)
			return -EINVAL;
		if (!vl)
			continue;
		ml = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
		r = starling_rw_buf_reserve(out, 1 + varint_len(ml) + ml);
		if (r)
			return r;
		p = out->data + out->len;
		*p++ = 0x0a;
		p = put_varint(p, ml);
		p = put_bytes_field(p, 0x0a, labels[i].name, nl);
		p = put_bytes_field(p, 0x12, labels[i].value, vl);
		out->len = (size_t)(p - out->data);
	}
	return 0;
}

static size_t sample_len(int64_t ts)
{
	return 1 + 8 + 1 + varint_len((uint64_t)ts);
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
	size_t body = labels_len;
	uint8_t *p;
	int r;

	/* one sample (the common case) costs one varint length computation */
	for (size_t i = 0; i < n; i++) {
		size_t sl = sample_len(timestamps_ms[i]);

		body += 1 + varint_len(sl) + sl;
	}
	r = starling_rw_buf_reserve(req, 1 + varint_len(body) + body);
	if (r)
		return r;
	p = req->data + req->len;
	*p++ = 0x0a;
	p = put_varint(p, body);
	memcpy(p, labels, labels_len);
	p += labels_len;
	for (size_t i = 0; i < n; i++) {
		uint64_t bits, ts = (uint64_t)timestamps_ms[i];

		memcpy(&bits, &values[i], 8);
		*p++ = 0x12;
		*p++ = (uint8_t)sample_len(timestamps_ms[i]); /* < 128: one byte */
		*p++ = 0x09;
		memcpy(p, &bits, 8); /* little-endian double (x86, arm64 LE) */
		p += 8;
		*p++ = 0x10;
		p = put_varint(p, ts);
	}
	req->len = (size_t)(p - req->data);
	return 0;
}

int starling_rw_append_metadata(struct starling_rw_buf *req, const struct starling_metadata *md)
{
	size_t fl = md->family ? strlen(md->family) : 0;
	size_t hl = md->help ? strlen(md->help) : 0;
	size_t ul = md->unit ? strlen(md->unit) : 0;
	size_t body = 0;
	uint8_t *p;
	int r;

	if (!fl)
		return -EINVAL;
	if (md->type)
		body += 1 + varint_len((uint64_t)md->type);
	body += 1 + varint_len(fl) + fl;
	if (hl)
		body += 1 + varint_len(hl) + hl;
	if (ul)
		body += 1 + varint_len(ul) + ul;
	r = starling_rw_buf_reserve(req, 1 + varint_len(body) + body);
	if (r)
		return r;
	p = req->data + req->len;
	*p++ = 0x1a;
	p = put_varint(p, body);
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
