/*
 * Fuzz the remote-write segment reader (plugins/prometheus_remote_write/
 * rw_segment.c): after a crash or a disk fault a segment file is input like
 * any other. The input is one whole segment file given to rw_seg_scan(),
 * which must only hand out records that lie inside the file with a matching
 * crc, and account for every other byte (skipped, torn tail, corrupt).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "rw_segment.h"

struct ctx {
	const uint8_t *buf;
	size_t len;
	uint64_t end; /* end of the last record handed out */
};

static void on_rec(void *arg, uint64_t off, const struct rw_rec_hdr *h)
{
	struct ctx *c = arg;
	const uint8_t *payload = c->buf + off + sizeof(*h);

	/* in order, inside the buffer, crc right, not done */
	if (off < c->end || off + sizeof(*h) + h->len > c->len || h->magic != RW_REC_MAGIC ||
	    (h->flags & RW_REC_DONE) || (uint32_t)crc32(0, payload, (uInt)h->len) != h->crc)
		abort();
	c->end = off + sizeof(*h) + h->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c = {data, size, 0};
	struct rw_seg_scan_stats st;

	rw_seg_scan(data, size, on_rec, &c, &st);
	if (st.skipped_bytes > size)
		abort();
	return 0;
}
