/*
 * Minimal msgpack writer and bounds-checked reader, private to the cluster
 * service. We write the encoding hashicorp/go-msgpack produces (old-spec
 * "raw" for strings and byte slices) so Go peers decode us exactly as they
 * decode each other, and we read every msgpack form so newer peers work too.
 * A reader never reads past its buffer: a short buffer gives -EAGAIN (the
 * stream code reads more), a malformed one -EBADMSG.
 */
#ifndef STARLING_HOST_CLUSTER_MPACK_H
#define STARLING_HOST_CLUSTER_MPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool oom; /* an allocation failed: the content is incomplete */
};

void mp_init(struct mp_buf *b);
void mp_free(struct mp_buf *b);
void mp_reset(struct mp_buf *b);
void mp_put(struct mp_buf *b, const void *p, size_t n);
void mp_put_byte(struct mp_buf *b, uint8_t v);
void mp_w_map(struct mp_buf *b, uint32_t n);
void mp_w_array(struct mp_buf *b, uint32_t n);
void mp_w_raw(struct mp_buf *b, const void *p, size_t n);
void mp_w_str(struct mp_buf *b, const char *s);
void mp_w_uint(struct mp_buf *b, uint64_t v);
void mp_w_bool(struct mp_buf *b, bool v);
void mp_w_nil(struct mp_buf *b);

struct mp_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static inline void mp_rd_init(struct mp_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

int mp_r_map(struct mp_rd *r, uint32_t *n);
int mp_r_array(struct mp_rd *r, uint32_t *n);
/* str, bin, old raw, or nil (empty). Points into the buffer. */
int mp_r_raw(struct mp_rd *r, const uint8_t **p, uint32_t *n);
int mp_r_uint(struct mp_rd *r, uint64_t *v);
int mp_r_int(struct mp_rd *r, int64_t *v);
int mp_r_bool(struct mp_rd *r, bool *v);
/* Skip one value of any type (nesting bounded). */
int mp_r_skip(struct mp_rd *r);

#endif
