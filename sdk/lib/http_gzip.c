/* Whole-body gunzip with a size limit (see starling/http.h). libdeflate
 * inflates a whole buffer about twice as fast as zlib but needs the output
 * size up front; the gzip trailer's ISIZE gives it for the common
 * single-member body. Multi-member bodies, bodies over 4 GiB and bodies whose
 * ISIZE lies go through zlib's streaming inflate instead, which enforces the
 * limit as it goes. */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

/* Make room for want bytes plus the NUL terminator the client promises. */
static int reserve(uint8_t **buf, size_t *cap, size_t want)
{
	uint8_t *p;
	size_t n;

	if (want + 1 <= *cap && *buf)
		return 0;
	n = *cap ? *cap : 4096;
	while (n < want + 1)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int gunzip_zlib(const uint8_t *in, size_t in_len, size_t limit, uint8_t **buf, size_t *cap,
		       size_t *out_len)
{
	z_stream zs;
	size_t out = 0;
	int r, ret = 0;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = in_len > UINT32_MAX ? UINT32_MAX : (uInt)in_len;
	for (;;) {
		size_t room;

		if (reserve(buf, cap, out + 65536)) {
			ret = -ENOMEM;
			break;
		}
		room = *cap - 1 - out;
		if (limit && room > limit - out + 1)
			room = limit - out + 1; /* one byte over the limit tells us */
		if (room > UINT32_MAX)
			room = UINT32_MAX;
		zs.next_out = *buf + out;
		zs.avail_out = (uInt)room;
		r = inflate(&zs, Z_NO_FLUSH);
		out += room - zs.avail_out;
		if (limit && out > limit) {
			ret = -EFBIG;
			break;
		}
		if (r == Z_STREAM_END) {
			/* another gzip member may follow */
			if (zs.avail_in == 0)
				break;
			if (inflateReset(&zs) != Z_OK) {
				ret = -EBADMSG;
				break;
			}
			continue;
		}
		if (r == Z_BUF_ERROR && zs.avail_in == 0) {
			ret = -EBADMSG; /* truncated */
			break;
		}
		if (r != Z_OK && r != Z_BUF_ERROR) {
			ret = r == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
			break;
		}
	}
	inflateEnd(&zs);
	if (!ret) {
		(*buf)[out] = 0;
		*out_len = out;
	}
	return ret;
}

int http_gunzip_with(struct libdeflate_decompressor **dp, const uint8_t *in, size_t in_len,
		     size_t limit, uint8_t **buf, size_t *cap, size_t *out_len)
{
	enum libdeflate_result res;
	size_t isize, used_in = 0, got = 0;
	int r;

	if (in_len < 18 || in[0] != 0x1f || in[1] != 0x8b)
		return -EBADMSG;
	isize = (size_t)in[in_len - 4] | (size_t)in[in_len - 3] << 8 |
		(size_t)in[in_len - 2] << 16 | (size_t)in[in_len - 1] << 24;
	/* A body announcing more than the limit (a bomb, or garbage) goes to
	 * zlib, which stops one byte past the limit or at the first corrupt
	 * block, so memory stays bounded by the limit either way. If ISIZE
	 * lies low, libdeflate runs out of room and zlib takes over too. */
	if (limit && isize > limit)
		return gunzip_zlib(in, in_len, limit, buf, cap, out_len);
	r = reserve(buf, cap, isize);
	if (r)
		return r;
	if (!*dp && !(*dp = libdeflate_alloc_decompressor()))
		return -ENOMEM;
	res = libdeflate_gzip_decompress_ex(*dp, in, in_len, *buf, isize, &used_in, &got);
	if (res == LIBDEFLATE_SUCCESS && used_in == in_len && got == isize) {
		(*buf)[got] = 0;
		*out_len = got;
		return 0;
	}
	if (res == LIBDEFLATE_BAD_DATA)
		return -EBADMSG;
	return gunzip_zlib(in, in_len, limit, buf, cap, out_len);
}

int starling_http_gunzip(const uint8_t *in, size_t in_len, size_t limit, uint8_t **buf, size_t *cap,
			 size_t *out_len)
{
	struct libdeflate_decompressor *d = NULL;
	int r = http_gunzip_with(&d, in, in_len, limit, buf, cap, out_len);

	libdeflate_free_decompressor(d);
	return r;
}
