/*
 * The hashicorp/memberlist wire format (protocol 2..5, as spoken by Debian's
 * serf agent): message types, msgpack bodies, compound and CRC framing, the
 * packet label header, LZW compression and the AES-GCM keyring. Pure
 * functions, no I/O, no engine state: the fuzz target and the unit tests
 * drive them directly.
 */
#ifndef STARLING_HOST_CLUSTER_WIRE_H
#define STARLING_HOST_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpack.h"

enum ml_msg_type {
	ML_PING = 0,
	ML_INDIRECT_PING = 1,
	ML_ACK = 2,
	ML_SUSPECT = 3,
	ML_ALIVE = 4,
	ML_DEAD = 5,
	ML_PUSH_PULL = 6,
	ML_COMPOUND = 7,
	ML_USER = 8,
	ML_COMPRESS = 9,
	ML_ENCRYPT = 10,
	ML_NACK = 11,
	ML_HAS_CRC = 12,
	ML_ERR = 13,
	ML_HAS_LABEL = 244, /* newer memberlist: label header before everything */
};

enum ml_node_state {
	ML_STATE_ALIVE = 0,
	ML_STATE_SUSPECT = 1,
	ML_STATE_DEAD = 2,
	ML_STATE_LEFT = 3,
};

#define ML_NAME_MAX	  128  /* including NUL; = STARLING_NODE_NAME_MAX */
#define ML_META_MAX	  512  /* memberlist MetaMaxSize */
#define ML_UDP_MAX	  1400 /* memberlist UDPBufferSize */
#define ML_LABEL_MAX	  255
#define ML_MAX_PUSH_BYTES (20 * 1024 * 1024) /* memberlist maxPushStateBytes */
#define ML_MAX_KEYS	  8

/* A byte string pointing into a decoded buffer. */
struct ml_bytes {
	const uint8_t *p;
	uint32_t n;
};

struct ml_ping {
	uint32_t seq;
	struct ml_bytes node;
	struct ml_bytes source_addr;
	uint16_t source_port;
	struct ml_bytes source_node;
};

struct ml_indirect {
	uint32_t seq;
	struct ml_bytes target;
	uint16_t port;
	struct ml_bytes node;
	bool nack;
	struct ml_bytes source_addr;
	uint16_t source_port;
	struct ml_bytes source_node;
};

struct ml_ack {
	uint32_t seq;
	struct ml_bytes payload;
};

/* suspect and dead have the same fields */
struct ml_suspect {
	uint32_t incarnation;
	struct ml_bytes node;
	struct ml_bytes from;
};

struct ml_alive {
	uint32_t incarnation;
	struct ml_bytes node;
	struct ml_bytes addr;
	uint16_t port;
	struct ml_bytes meta;
	uint8_t vsn[6];
	uint8_t n_vsn;
};

struct ml_pp_header {
	int64_t nodes;
	int64_t user_state_len;
	bool join;
};

struct ml_push_node {
	struct ml_bytes name;
	struct ml_bytes addr;
	uint16_t port;
	struct ml_bytes meta;
	uint32_t incarnation;
	int64_t state;
	uint8_t vsn[6];
	uint8_t n_vsn;
};

/* Decoders: 0, -EAGAIN (truncated), -EBADMSG (malformed). */
int ml_dec_ping(struct mp_rd *r, struct ml_ping *m);
int ml_dec_indirect(struct mp_rd *r, struct ml_indirect *m);
int ml_dec_ack(struct mp_rd *r, struct ml_ack *m);
int ml_dec_nack(struct mp_rd *r, uint32_t *seq);
int ml_dec_suspect(struct mp_rd *r, struct ml_suspect *m); /* also dead */
int ml_dec_alive(struct mp_rd *r, struct ml_alive *m);
int ml_dec_pp_header(struct mp_rd *r, struct ml_pp_header *m);
int ml_dec_push_node(struct mp_rd *r, struct ml_push_node *m);
int ml_dec_err(struct mp_rd *r, struct ml_bytes *msg);
int ml_dec_compress(struct mp_rd *r, int64_t *algo, struct ml_bytes *buf);

/* Encoders append type byte + body. */
void ml_enc_ping(struct mp_buf *b, const struct ml_ping *m);
void ml_enc_indirect(struct mp_buf *b, const struct ml_indirect *m);
void ml_enc_ack(struct mp_buf *b, const struct ml_ack *m);
void ml_enc_nack(struct mp_buf *b, uint32_t seq);
void ml_enc_suspect(struct mp_buf *b, uint8_t type, const struct ml_suspect *m);
void ml_enc_alive(struct mp_buf *b, const struct ml_alive *m);
void ml_enc_pp_header(struct mp_buf *b, const struct ml_pp_header *m); /* no type byte */
void ml_enc_push_node(struct mp_buf *b, const struct ml_push_node *m);
void ml_enc_err(struct mp_buf *b, const char *msg);

/* Compound: parts point into buf. Returns number of parts (<= max), or
 * -EBADMSG; *truncated counts parts cut off by a short buffer. */
int ml_compound_split(const uint8_t *buf, size_t len, struct ml_bytes *parts, int max,
		      int *truncated);
void ml_compound_make(struct mp_buf *b, const struct ml_bytes *parts, int n);

uint32_t ml_crc32(const uint8_t *p, size_t n);

/* Go compress/lzw, LSB order, 8-bit literals (memberlist's compressMsg).
 * Output appended to out; at most max_out bytes, else -EMSGSIZE. */
int ml_lzw_decompress(const uint8_t *in, size_t n, struct mp_buf *out, size_t max_out);
void ml_lzw_compress(const uint8_t *in, size_t n, struct mp_buf *out);
/* Wrap msg in a compressMsg (type byte + msgpack {Algo, Buf}). */
void ml_enc_compress(struct mp_buf *b, const uint8_t *msg, size_t n);

/* ---- keyring ---- */
struct ml_keyring {
	int n;
	uint8_t key[ML_MAX_KEYS][32];
	uint8_t len[ML_MAX_KEYS]; /* 16, 24 or 32 */
};

/* Parse a base64 key (16/24/32 bytes decoded) into slot n. */
int ml_keyring_add_b64(struct ml_keyring *k, const char *b64, char *err, size_t errlen);

/* Encryption version 1 (AES-GCM, no padding): [1][nonce 12][ct][tag 16].
 * aad may be NULL. Output appended. */
int ml_encrypt(const struct ml_keyring *k, const uint8_t *msg, size_t n, const uint8_t *aad,
	       size_t aad_len, struct mp_buf *out);
/* Tries every key; version 0 (PKCS7) and 1 accepted. Output appended. */
int ml_decrypt(const struct ml_keyring *k, const uint8_t *msg, size_t n, const uint8_t *aad,
	       size_t aad_len, struct mp_buf *out);
#define ML_ENCRYPT_OVERHEAD 29

#endif
