/* msgpack writer/reader; see mpack.h for why we carry our own. */
#include "mpack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting mp_r_skip follows; memberlist messages nest at most 3. */
#define MP_MAX_DEPTH 16

void mp_init(struct mp_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void mp_free(struct mp_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void mp_reset(struct mp_buf *b)
{
	b->len = 0;
	b->oom = false;
}

static bool mp_grow(struct mp_buf *b, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = cap;
	return true;
}

void mp_put(struct mp_buf *b, const void *p, size_t n)
{
	if (!n || !mp_grow(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void mp_put_byte(struct mp_buf *b, uint8_t v)
{
	mp_put(b, &v, 1);
}

static void put_be(struct mp_buf *b, uint8_t tag, uint64_t v, int bytes)
{
	uint8_t tmp[9];

	tmp[0] = tag;
	for (int i = 0; i < bytes; i++)
		tmp[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	mp_put(b, tmp, 1 + (size_t)bytes);
}

void mp_w_map(struct mp_buf *b, uint32_t n)
{
	if (n < 16)
		mp_put_byte(b, 0x80 | n);
	else if (n <= 0xffff)
		put_be(b, 0xde, n, 2);
	else
		put_be(b, 0xdf, n, 4);
}

void mp_w_array(struct mp_buf *b, uint32_t n)
{
	if (n < 16)
		mp_put_byte(b, 0x90 | n);
	else if (n <= 0xffff)
		put_be(b, 0xdc, n, 2);
	else
		put_be(b, 0xdd, n, 4);
}

void mp_w_raw(struct mp_buf *b, const void *p, size_t n)
{
	if (n < 32)
		mp_put_byte(b, 0xa0 | (uint8_t)n);
	else if (n <= 0xffff)
		put_be(b, 0xda, n, 2);
	else
		put_be(b, 0xdb, n, 4);
	mp_put(b, p, n);
}

void mp_w_str(struct mp_buf *b, const char *s)
{
	mp_w_raw(b, s, strlen(s));
}

void mp_w_uint(struct mp_buf *b, uint64_t v)
{
	if (v < 128)
		mp_put_byte(b, (uint8_t)v);
	else if (v <= 0xff)
		put_be(b, 0xcc, v, 1);
	else if (v <= 0xffff)
		put_be(b, 0xcd, v, 2);
	else if (v <= 0xffffffffu)
		put_be(b, 0xce, v, 4);
	else
		put_be(b, 0xcf, v, 8);
}

void mp_w_bool(struct mp_buf *b, bool v)
{
	mp_put_byte(b, v ? 0xc3 : 0xc2);
}

void mp_w_nil(struct mp_buf *b)
{
	mp_put_byte(b, 0xc0);
}

/* ---- reader ---- */

static int need(struct mp_rd *r, size_t n)
{
	return r->len - r->off >= n ? 0 : -EAGAIN;
}

static uint64_t get_be(struct mp_rd *r, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = (v << 8) | r->p[r->off + (size_t)i];
	r->off += (size_t)bytes;
	return v;
}

/* Read a length that follows a tag of `bytes` width. */
static int get_len(struct mp_rd *r, int bytes, uint32_t *n)
{
	if (need(r, (size_t)bytes))
		return -EAGAIN;
	*n = (uint32_t)get_be(r, bytes);
	return 0;
}

int mp_r_map(struct mp_rd *r, uint32_t *n)
{
	uint8_t t;

	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if ((t & 0xf0) == 0x80) {
		r->off++;
		*n = t & 0x0f;
		return 0;
	}
	if (t == 0xde || t == 0xdf) {
		size_t save = r->off++;
		int rc = get_len(r, t == 0xde ? 2 : 4, n);

		if (rc)
			r->off = save;
		return rc;
	}
	return -EBADMSG;
}

int mp_r_array(struct mp_rd *r, uint32_t *n)
{
	uint8_t t;

	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if ((t & 0xf0) == 0x90) {
		r->off++;
		*n = t & 0x0f;
		return 0;
	}
	if (t == 0xdc || t == 0xdd) {
		size_t save = r->off++;
		int rc = get_len(r, t == 0xdc ? 2 : 4, n);

		if (rc)
			r->off = save;
		return rc;
	}
	return -EBADMSG;
}

int mp_r_raw(struct mp_rd *r, const uint8_t **p, uint32_t *n)
{
	size_t save = r->off;
	uint32_t len;
	int width;
	uint8_t t;

	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if ((t & 0xe0) == 0xa0) {
		r->off++;
		len = t & 0x1f;
		goto body;
	}
	switch (t) {
	case 0xc0:
		r->off++;
		*p = r->p + r->off;
		*n = 0;
		return 0;
	case 0xd9: /* str8 */
	case 0xc4: /* bin8 */
		width = 1;
		break;
	case 0xda:
	case 0xc5:
		width = 2;
		break;
	case 0xdb:
	case 0xc6:
		width = 4;
		break;
	default:
		return -EBADMSG;
	}
	r->off++;
	if (get_len(r, width, &len)) {
		r->off = save;
		return -EAGAIN;
	}
body:
	if (need(r, len)) {
		r->off = save;
		return -EAGAIN;
	}
	*p = r->p + r->off;
	*n = len;
	r->off += len;
	return 0;
}

int mp_r_int(struct mp_rd *r, int64_t *v)
{
	uint8_t t;
	int w;

	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if (t < 0x80) {
		r->off++;
		*v = t;
		return 0;
	}
	if (t >= 0xe0) {
		r->off++;
		*v = (int8_t)t;
		return 0;
	}
	switch (t) {
	case 0xcc:
	case 0xd0:
		w = 1;
		break;
	case 0xcd:
	case 0xd1:
		w = 2;
		break;
	case 0xce:
	case 0xd2:
		w = 4;
		break;
	case 0xcf:
	case 0xd3:
		w = 8;
		break;
	default:
		return -EBADMSG;
	}
	if (need(r, 1 + (size_t)w))
		return -EAGAIN;
	r->off++;
	uint64_t u = get_be(r, w);

	if (t >= 0xd0) { /* signed: sign-extend from w bytes */
		int shift = 64 - 8 * w;

		*v = (int64_t)(u << shift) >> shift;
	} else {
		if (u > INT64_MAX)
			return -EBADMSG;
		*v = (int64_t)u;
	}
	return 0;
}

int mp_r_uint(struct mp_rd *r, uint64_t *v)
{
	size_t save = r->off;
	uint8_t t;

	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if (t == 0xcf) {
		if (need(r, 9))
			return -EAGAIN;
		r->off++;
		*v = get_be(r, 8);
		return 0;
	}
	int64_t s;
	int rc = mp_r_int(r, &s);

	if (rc)
		return rc;
	if (s < 0) {
		r->off = save;
		return -EBADMSG;
	}
	*v = (uint64_t)s;
	return 0;
}

int mp_r_bool(struct mp_rd *r, bool *v)
{
	if (need(r, 1))
		return -EAGAIN;
	switch (r->p[r->off]) {
	case 0xc2:
		*v = false;
		break;
	case 0xc3:
		*v = true;
		break;
	case 0xc0:
		*v = false;
		break;
	default:
		return -EBADMSG;
	}
	r->off++;
	return 0;
}

static int skip_n(struct mp_rd *r, size_t n)
{
	if (need(r, n))
		return -EAGAIN;
	r->off += n;
	return 0;
}

static int skip_depth(struct mp_rd *r, int depth)
{
	uint32_t n;
	uint8_t t;
	int rc;

	if (depth > MP_MAX_DEPTH)
		return -EBADMSG;
	if (need(r, 1))
		return -EAGAIN;
	t = r->p[r->off];
	if (t < 0x80 || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
		r->off++;
		return 0;
	}
	if ((t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb || t == 0xc4 || t == 0xc5 ||
	    t == 0xc6) {
		const uint8_t *p;

		return mp_r_raw(r, &p, &n);
	}
	if ((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf) {
		rc = mp_r_map(r, &n);
		if (rc)
			return rc;
		for (uint64_t i = 0; i < 2ull * n; i++) {
			rc = skip_depth(r, depth + 1);
			if (rc)
				return rc;
		}
		return 0;
	}
	if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
		rc = mp_r_array(r, &n);
		if (rc)
			return rc;
		for (uint32_t i = 0; i < n; i++) {
			rc = skip_depth(r, depth + 1);
			if (rc)
				return rc;
		}
		return 0;
	}
	switch (t) {
	case 0xcc:
	case 0xd0:
		return skip_n(r, 2);
	case 0xcd:
	case 0xd1:
		return skip_n(r, 3);
	case 0xce:
	case 0xd2:
	case 0xca:
		return skip_n(r, 5);
	case 0xcf:
	case 0xd3:
	case 0xcb:
		return skip_n(r, 9);
	case 0xd4:
		return skip_n(r, 3);
	case 0xd5:
		return skip_n(r, 4);
	case 0xd6:
		return skip_n(r, 6);
	case 0xd7:
		return skip_n(r, 10);
	case 0xd8:
		return skip_n(r, 18);
	case 0xc7:
	case 0xc8:
	case 0xc9: {
		int w = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
		size_t save = r->off;

		r->off++;
		if (get_len(r, w, &n) || need(r, 1 + (size_t)n)) {
			r->off = save;
			return -EAGAIN;
		}
		r->off += 1 + (size_t)n;
		return 0;
	}
	default:
		return -EBADMSG;
	}
}

int mp_r_skip(struct mp_rd *r)
{
	size_t save = r->off;
	int rc = skip_depth(r, 0);

	if (rc)
		r->off = save;
	return rc;
}
