/* memberlist wire codec; see wire.h. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* ---- struct decoding by field table ---- */

enum fkind { F_U32, F_U16, F_I64, F_BOOL, F_BYTES, F_VSN };

struct field {
	const char *name;
	enum fkind kind;
	size_t off;
	size_t aux; /* F_VSN: offset of the count byte */
};

static int dec_vsn(struct mp_rd *r, uint8_t *vsn, uint8_t *count)
{
	const uint8_t *p;
	uint32_t n;
	int rc;

	/* go-msgpack writes []uint8 as raw bytes; others may use an array */
	if (r->off < r->len && (r->p[r->off] & 0xf0) == 0x90) {
		rc = mp_r_array(r, &n);
		if (rc)
			return rc;
		*count = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t v;

			rc = mp_r_uint(r, &v);
			if (rc)
				return rc;
			if (v > 255)
				return -EBADMSG;
			if (i < 6)
				vsn[(*count)++] = (uint8_t)v;
		}
		return 0;
	}
	rc = mp_r_raw(r, &p, &n);
	if (rc)
		return rc;
	*count = n > 6 ? 6 : (uint8_t)n;
	memcpy(vsn, p, *count);
	return 0;
}

static int dec_struct(struct mp_rd *r, const struct field *f, size_t nf, void *out)
{
	uint32_t n;
	int rc = mp_r_map(r, &n);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *k;
		uint32_t kn;
		const struct field *hit = NULL;

		rc = mp_r_raw(r, &k, &kn);
		if (rc)
			return rc;
		for (size_t j = 0; j < nf; j++)
			if (strlen(f[j].name) == kn && memcmp(f[j].name, k, kn) == 0)
				hit = &f[j];
		if (!hit) {
			rc = mp_r_skip(r);
			if (rc)
				return rc;
			continue;
		}
		char *dst = (char *)out + hit->off;
		uint64_t u;
		int64_t s;

		switch (hit->kind) {
		case F_U32:
			rc = mp_r_uint(r, &u);
			if (!rc && u > UINT32_MAX)
				rc = -EBADMSG;
			if (!rc)
				*(uint32_t *)dst = (uint32_t)u;
			break;
		case F_U16:
			rc = mp_r_uint(r, &u);
			if (!rc && u > UINT16_MAX)
				rc = -EBADMSG;
			if (!rc)
				*(uint16_t *)dst = (uint16_t)u;
			break;
		case F_I64:
			rc = mp_r_int(r, &s);
			if (!rc)
				*(int64_t *)dst = s;
			break;
		case F_BOOL:
			rc = mp_r_bool(r, (bool *)dst);
			break;
		case F_BYTES: {
			struct ml_bytes *bs = (struct ml_bytes *)dst;

			rc = mp_r_raw(r, &bs->p, &bs->n);
			break;
		}
		case F_VSN:
			rc = dec_vsn(r, (uint8_t *)dst, (uint8_t *)out + hit->aux);
			break;
		}
		if (rc)
			return rc;
	}
	return 0;
}

#define FLD(T, name, kind, member)                                                                 \
	{                                                                                          \
		name, kind, offsetof(T, member), 0                                                 \
	}

static const struct field ping_f[] = {
    FLD(struct ml_ping, "SeqNo", F_U32, seq),
    FLD(struct ml_ping, "Node", F_BYTES, node),
    FLD(struct ml_ping, "SourceAddr", F_BYTES, source_addr),
    FLD(struct ml_ping, "SourcePort", F_U16, source_port),
    FLD(struct ml_ping, "SourceNode", F_BYTES, source_node),
};

static const struct field ind_f[] = {
    FLD(struct ml_indirect, "SeqNo", F_U32, seq),
    FLD(struct ml_indirect, "Target", F_BYTES, target),
    FLD(struct ml_indirect, "Port", F_U16, port),
    FLD(struct ml_indirect, "Node", F_BYTES, node),
    FLD(struct ml_indirect, "Nack", F_BOOL, nack),
    FLD(struct ml_indirect, "SourceAddr", F_BYTES, source_addr),
    FLD(struct ml_indirect, "SourcePort", F_U16, source_port),
    FLD(struct ml_indirect, "SourceNode", F_BYTES, source_node),
};

static const struct field ack_f[] = {
    FLD(struct ml_ack, "SeqNo", F_U32, seq),
    FLD(struct ml_ack, "Payload", F_BYTES, payload),
};

static const struct field sus_f[] = {
    FLD(struct ml_suspect, "Incarnation", F_U32, incarnation),
    FLD(struct ml_suspect, "Node", F_BYTES, node),
    FLD(struct ml_suspect, "From", F_BYTES, from),
};

static const struct field alive_f[] = {
    FLD(struct ml_alive, "Incarnation", F_U32, incarnation),
    FLD(struct ml_alive, "Node", F_BYTES, node),
    FLD(struct ml_alive, "Addr", F_BYTES, addr),
    FLD(struct ml_alive, "Port", F_U16, port),
    FLD(struct ml_alive, "Meta", F_BYTES, meta),
    {"Vsn", F_VSN, offsetof(struct ml_alive, vsn), offsetof(struct ml_alive, n_vsn)},
};

static const struct field pph_f[] = {
    FLD(struct ml_pp_header, "Nodes", F_I64, nodes),
    FLD(struct ml_pp_header, "UserStateLen", F_I64, user_state_len),
    FLD(struct ml_pp_header, "Join", F_BOOL, join),
};

static const struct field pn_f[] = {
    FLD(struct ml_push_node, "Name", F_BYTES, name),
    FLD(struct ml_push_node, "Addr", F_BYTES, addr),
    FLD(struct ml_push_node, "Port", F_U16, port),
    FLD(struct ml_push_node, "Meta", F_BYTES, meta),
    FLD(struct ml_push_node, "Incarnation", F_U32, incarnation),
    FLD(struct ml_push_node, "State", F_I64, state),
    {"Vsn", F_VSN, offsetof(struct ml_push_node, vsn), offsetof(struct ml_push_node, n_vsn)},
};

struct seq_only {
	uint32_t seq;
};

static const struct field nack_f[] = {
    FLD(struct seq_only, "SeqNo", F_U32, seq),
};

struct err_only {
	struct ml_bytes msg;
};

static const struct field err_f[] = {
    FLD(struct err_only, "Error", F_BYTES, msg),
};

struct compress_body {
	int64_t algo;
	struct ml_bytes buf;
};

static const struct field comp_f[] = {
    FLD(struct compress_body, "Algo", F_I64, algo),
    FLD(struct compress_body, "Buf", F_BYTES, buf),
};

#define NF(a) (sizeof(a) / sizeof((a)[0]))

int ml_dec_ping(struct mp_rd *r, struct ml_ping *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, ping_f, NF(ping_f), m);
}

int ml_dec_indirect(struct mp_rd *r, struct ml_indirect *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, ind_f, NF(ind_f), m);
}

int ml_dec_ack(struct mp_rd *r, struct ml_ack *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, ack_f, NF(ack_f), m);
}

int ml_dec_nack(struct mp_rd *r, uint32_t *seq)
{
	struct seq_only s = {0};
	int rc = dec_struct(r, nack_f, NF(nack_f), &s);

	*seq = s.seq;
	return rc;
}

int ml_dec_suspect(struct mp_rd *r, struct ml_suspect *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, sus_f, NF(sus_f), m);
}

int ml_dec_alive(struct mp_rd *r, struct ml_alive *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, alive_f, NF(alive_f), m);
}

int ml_dec_pp_header(struct mp_rd *r, struct ml_pp_header *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, pph_f, NF(pph_f), m);
}

int ml_dec_push_node(struct mp_rd *r, struct ml_push_node *m)
{
	memset(m, 0, sizeof(*m));
	return dec_struct(r, pn_f, NF(pn_f), m);
}

int ml_dec_err(struct mp_rd *r, struct ml_bytes *msg)
{
	struct err_only e = {{0}};
	int rc = dec_struct(r, err_f, NF(err_f), &e);

	*msg = e.msg;
	return rc;
}

int ml_dec_compress(struct mp_rd *r, int64_t *algo, struct ml_bytes *buf)
{
	struct compress_body c = {-1, {0}};
	int rc = dec_struct(r, comp_f, NF(comp_f), &c);

	*algo = c.algo;
	*buf = c.buf;
	return rc;
}

/* ---- encoders (keys in the order go-msgpack writes them: sorted) ---- */

static void w_key(struct mp_buf *b, const char *k)
{
	mp_w_str(b, k);
}

static void w_bytes(struct mp_buf *b, const struct ml_bytes *v)
{
	mp_w_raw(b, v->p, v->n);
}

void ml_enc_ping(struct mp_buf *b, const struct ml_ping *m)
{
	bool src = m->source_addr.n > 0;

	mp_put_byte(b, ML_PING);
	mp_w_map(b, src ? 5 : 2);
	w_key(b, "Node");
	w_bytes(b, &m->node);
	w_key(b, "SeqNo");
	mp_w_uint(b, m->seq);
	if (src) {
		w_key(b, "SourceAddr");
		w_bytes(b, &m->source_addr);
		w_key(b, "SourceNode");
		w_bytes(b, &m->source_node);
		w_key(b, "SourcePort");
		mp_w_uint(b, m->source_port);
	}
}

void ml_enc_indirect(struct mp_buf *b, const struct ml_indirect *m)
{
	mp_put_byte(b, ML_INDIRECT_PING);
	mp_w_map(b, 8);
	w_key(b, "Nack");
	mp_w_bool(b, m->nack);
	w_key(b, "Node");
	w_bytes(b, &m->node);
	w_key(b, "Port");
	mp_w_uint(b, m->port);
	w_key(b, "SeqNo");
	mp_w_uint(b, m->seq);
	w_key(b, "SourceAddr");
	w_bytes(b, &m->source_addr);
	w_key(b, "SourceNode");
	w_bytes(b, &m->source_node);
	w_key(b, "SourcePort");
	mp_w_uint(b, m->source_port);
	w_key(b, "Target");
	w_bytes(b, &m->target);
}

void ml_enc_ack(struct mp_buf *b, const struct ml_ack *m)
{
	mp_put_byte(b, ML_ACK);
	mp_w_map(b, 2);
	w_key(b, "Payload");
	if (m->payload.n)
		w_bytes(b, &m->payload);
	else
		mp_w_nil(b);
	w_key(b, "SeqNo");
	mp_w_uint(b, m->seq);
}

void ml_enc_nack(struct mp_buf *b, uint32_t seq)
{
	mp_put_byte(b, ML_NACK);
	mp_w_map(b, 1);
	w_key(b, "SeqNo");
	mp_w_uint(b, seq);
}

void ml_enc_suspect(struct mp_buf *b, uint8_t type, const struct ml_suspect *m)
{
	mp_put_byte(b, type);
	mp_w_map(b, 3);
	w_key(b, "From");
	w_bytes(b, &m->from);
	w_key(b, "Incarnation");
	mp_w_uint(b, m->incarnation);
	w_key(b, "Node");
	w_bytes(b, &m->node);
}

void ml_enc_alive(struct mp_buf *b, const struct ml_alive *m)
{
	mp_put_byte(b, ML_ALIVE);
	mp_w_map(b, 6);
	w_key(b, "Addr");
	w_bytes(b, &m->addr);
	w_key(b, "Incarnation");
	mp_w_uint(b, m->incarnation);
	w_key(b, "Meta");
	w_bytes(b, &m->meta);
	w_key(b, "Node");
	w_bytes(b, &m->node);
	w_key(b, "Port");
	mp_w_uint(b, m->port);
	w_key(b, "Vsn");
	mp_w_raw(b, m->vsn, m->n_vsn);
}

void ml_enc_pp_header(struct mp_buf *b, const struct ml_pp_header *m)
{
	mp_w_map(b, 3);
	w_key(b, "Join");
	mp_w_bool(b, m->join);
	w_key(b, "Nodes");
	mp_w_uint(b, (uint64_t)m->nodes);
	w_key(b, "UserStateLen");
	mp_w_uint(b, (uint64_t)m->user_state_len);
}

void ml_enc_push_node(struct mp_buf *b, const struct ml_push_node *m)
{
	mp_w_map(b, 7);
	w_key(b, "Addr");
	w_bytes(b, &m->addr);
	w_key(b, "Incarnation");
	mp_w_uint(b, m->incarnation);
	w_key(b, "Meta");
	w_bytes(b, &m->meta);
	w_key(b, "Name");
	w_bytes(b, &m->name);
	w_key(b, "Port");
	mp_w_uint(b, m->port);
	w_key(b, "State");
	mp_w_uint(b, (uint64_t)m->state);
	w_key(b, "Vsn");
	mp_w_raw(b, m->vsn, m->n_vsn);
}

void ml_enc_err(struct mp_buf *b, const char *msg)
{
	mp_put_byte(b, ML_ERR);
	mp_w_map(b, 1);
	w_key(b, "Error");
	mp_w_str(b, msg);
}

/* ---- compound ---- */

int ml_compound_split(const uint8_t *buf, size_t len, struct ml_bytes *parts, int max,
		      int *truncated)
{
	size_t off, n;
	int k = 0;

	*truncated = 0;
	if (len < 1)
		return -EBADMSG;
	n = buf[0];
	if (len < 1 + 2 * n)
		return -EBADMSG;
	off = 1 + 2 * n;
	for (size_t i = 0; i < n; i++) {
		size_t l = ((size_t)buf[1 + 2 * i] << 8) | buf[2 + 2 * i];

		if (len - off < l) {
			*truncated = (int)(n - i);
			break;
		}
		if (k < max) {
			parts[k].p = buf + off;
			parts[k].n = (uint32_t)l;
			k++;
		} else {
			(*truncated)++;
		}
		off += l;
	}
	return k;
}

void ml_compound_make(struct mp_buf *b, const struct ml_bytes *parts, int n)
{
	mp_put_byte(b, ML_COMPOUND);
	mp_put_byte(b, (uint8_t)n);
	for (int i = 0; i < n; i++) {
		mp_put_byte(b, (uint8_t)(parts[i].n >> 8));
		mp_put_byte(b, (uint8_t)parts[i].n);
	}
	for (int i = 0; i < n; i++)
		mp_put(b, parts[i].p, parts[i].n);
}

/* CRC-32 (IEEE, as Go's crc32.ChecksumIEEE); table built on first use. */
uint32_t ml_crc32(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static bool ready;
	uint32_t c = 0xffffffffu;

	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t v = i;

			for (int k = 0; k < 8; k++)
				v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
			table[i] = v;
		}
		/* idempotent: racing threads write identical values */
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* ---- LZW (Go compress/lzw, LSB, litWidth 8) ---- */

#define LZW_CLEAR   256
#define LZW_EOF	    257
#define LZW_MAXW    12
#define LZW_MAXCODE 4095
#define LZW_INVALID 0xffff

int ml_lzw_decompress(const uint8_t *in, size_t n, struct mp_buf *out, size_t max_out)
{
	/* on the stack, not in thread-local storage: static TLS is set up
	 * (and its pages touched) in every thread of the process */
	uint16_t prefix[4096];
	uint8_t suffix[4096];
	uint8_t stack[4096];
	uint32_t bits = 0;
	unsigned nbits = 0, width = 9;
	uint16_t hi = LZW_EOF, overflow = 512, last = LZW_INVALID;
	size_t pos = 0, start = out->len;

	for (;;) {
		uint16_t code;

		while (nbits < width) {
			if (pos >= n)
				return -EBADMSG; /* no EOF code: truncated */
			bits |= (uint32_t)in[pos++] << nbits;
			nbits += 8;
		}
		code = (uint16_t)(bits & ((1u << width) - 1));
		bits >>= width;
		nbits -= width;

		if (code == LZW_CLEAR) {
			width = 9;
			hi = LZW_EOF;
			overflow = 512;
			last = LZW_INVALID;
			continue;
		}
		if (code == LZW_EOF)
			break;
		if (code > hi || (code == hi && last == LZW_INVALID))
			return -EBADMSG;

		/* expand code onto a stack (reverse order) */
		size_t sp = sizeof(stack);
		uint16_t c = code;

		if (code == hi) {
			/* KwKwK: last's expansion + its first byte */
			uint16_t h = last;

			while (h >= LZW_CLEAR)
				h = prefix[h];
			stack[--sp] = (uint8_t)h;
			c = last;
		}
		while (c >= LZW_CLEAR) {
			if (sp == 0)
				return -EBADMSG;
			stack[--sp] = suffix[c];
			c = prefix[c];
		}
		if (sp == 0)
			return -EBADMSG;
		stack[--sp] = (uint8_t)c;
		if (out->len - start + (sizeof(stack) - sp) > max_out)
			return -EMSGSIZE;
		mp_put(out, stack + sp, sizeof(stack) - sp);
		if (out->oom)
			return -ENOMEM;
		if (last != LZW_INVALID) {
			suffix[hi] = (uint8_t)c;
			prefix[hi] = last;
		}
		last = code;
		hi++;
		if (hi >= overflow) {
			if (width == LZW_MAXW) {
				last = LZW_INVALID;
				hi--;
			} else {
				width++;
				overflow = (uint16_t)(1u << width);
			}
		}
	}
	return 0;
}

struct lzw_w {
	struct mp_buf *out;
	uint32_t bits;
	unsigned nbits;
	unsigned width;
};

static void lzw_emit(struct lzw_w *w, uint32_t code)
{
	w->bits |= code << w->nbits;
	w->nbits += w->width;
	while (w->nbits >= 8) {
		mp_put_byte(w->out, (uint8_t)w->bits);
		w->bits >>= 8;
		w->nbits -= 8;
	}
}

#define LZW_TABLE (1 << 14)

void ml_lzw_compress(const uint8_t *in, size_t n, struct mp_buf *out)
{
	uint32_t table[LZW_TABLE]; /* key<<12 | code, 0 = empty (stack, not TLS) */
	struct lzw_w w = {out, 0, 0, 9};
	uint32_t hi = LZW_EOF, overflow = 512, code;

	memset(table, 0, sizeof(table));
	lzw_emit(&w, LZW_CLEAR); /* Go's writer starts with a clear code */
	if (n == 0)
		goto done;
	code = in[0];
	for (size_t i = 1; i < n; i++) {
		uint32_t key = code << 8 | in[i];
		uint32_t h = ((key >> 12) ^ key) & (LZW_TABLE - 1);
		bool found = false;

		while (table[h]) {
			if (table[h] >> 12 == key) {
				code = table[h] & LZW_MAXCODE;
				found = true;
				break;
			}
			h = (h + 1) & (LZW_TABLE - 1);
		}
		if (found)
			continue;
		lzw_emit(&w, code);
		code = in[i];
		hi++;
		if (hi == overflow) {
			w.width++;
			overflow <<= 1;
		}
		if (hi == LZW_MAXCODE) {
			lzw_emit(&w, LZW_CLEAR);
			w.width = 9;
			hi = LZW_EOF;
			overflow = 512;
			memset(table, 0, sizeof(table));
			continue;
		}
		table[h] = key << 12 | hi;
	}
	lzw_emit(&w, code);
	hi++;
	if (hi == overflow) {
		w.width++;
		overflow <<= 1;
	}
	if (hi == LZW_MAXCODE) {
		lzw_emit(&w, LZW_CLEAR);
		w.width = 9;
	}
done:
	lzw_emit(&w, LZW_EOF);
	if (w.nbits > 0)
		mp_put_byte(out, (uint8_t)w.bits);
}

void ml_enc_compress(struct mp_buf *b, const uint8_t *msg, size_t n)
{
	struct mp_buf tmp;

	mp_init(&tmp);
	ml_lzw_compress(msg, n, &tmp);
	mp_put_byte(b, ML_COMPRESS);
	mp_w_map(b, 2);
	w_key(b, "Algo");
	mp_w_uint(b, 0);
	w_key(b, "Buf");
	mp_w_raw(b, tmp.p, tmp.len);
	if (tmp.oom)
		b->oom = true;
	mp_free(&tmp);
}

/* ---- keyring / AES-GCM ---- */

int ml_keyring_add_b64(struct ml_keyring *k, const char *b64, char *err, size_t errlen)
{
	uint8_t tmp[64];
	size_t len = strlen(b64);
	int n;

	if (k->n >= ML_MAX_KEYS) {
		snprintf(err, errlen, "too many secret keys (max %d)", ML_MAX_KEYS);
		return -EINVAL;
	}
	if (len == 0 || len > 64 || len % 4) {
		snprintf(err, errlen, "secret key is not base64 of 16, 24 or 32 bytes");
		return -EINVAL;
	}
	n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		snprintf(err, errlen, "secret key is not valid base64");
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts padding bytes as output */
	if (len >= 1 && b64[len - 1] == '=')
		n--;
	if (len >= 2 && b64[len - 2] == '=')
		n--;
	if (n != 16 && n != 24 && n != 32) {
		snprintf(err, errlen, "secret key decodes to %d bytes; AES needs 16, 24 or 32", n);
		return -EINVAL;
	}
	memcpy(k->key[k->n], tmp, (size_t)n);
	k->len[k->n] = (uint8_t)n;
	k->n++;
	return 0;
}

static const EVP_CIPHER *gcm_for(int len)
{
	return len == 16 ? EVP_aes_128_gcm() : len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

int ml_encrypt(const struct ml_keyring *k, const uint8_t *msg, size_t n, const uint8_t *aad,
	       size_t aad_len, struct mp_buf *out)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t nonce[12], tag[16];
	size_t base;
	int ol = 0, rc = -EIO;

	if (k->n < 1)
		return -EINVAL;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -EIO;
	base = out->len;
	mp_put_byte(out, 1);
	mp_put(out, nonce, sizeof(nonce));
	/* reserve room for the ciphertext */
	for (size_t i = 0; i < n; i++)
		mp_put_byte(out, 0);
	if (out->oom)
		return -ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(ctx, gcm_for(k->len[0]), NULL, k->key[0], nonce) != 1)
		goto out;
	if (aad_len && EVP_EncryptUpdate(ctx, NULL, &ol, aad, (int)aad_len) != 1)
		goto out;
	if (n && EVP_EncryptUpdate(ctx, out->p + base + 13, &ol, msg, (int)n) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, tag, &ol) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
		goto out;
	mp_put(out, tag, 16);
	rc = out->oom ? -ENOMEM : 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (rc)
		out->len = base;
	return rc;
}

static int try_key(const uint8_t *key, int klen, const uint8_t *msg, size_t n, const uint8_t *aad,
		   size_t aad_len, uint8_t *plain)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t ct_len = n - 13 - 16;
	int ol = 0, ok = 0;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(ctx, gcm_for(klen), NULL, key, msg + 1) != 1)
		goto out;
	if (aad_len && EVP_DecryptUpdate(ctx, NULL, &ol, aad, (int)aad_len) != 1)
		goto out;
	if (ct_len && EVP_DecryptUpdate(ctx, plain, &ol, msg + 13, (int)ct_len) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(msg + n - 16)) != 1)
		goto out;
	ok = EVP_DecryptFinal_ex(ctx, plain + ct_len, &ol) == 1;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

int ml_decrypt(const struct ml_keyring *k, const uint8_t *msg, size_t n, const uint8_t *aad,
	       size_t aad_len, struct mp_buf *out)
{
	size_t base = out->len, ct_len;

	if (n < 1 + 12 + 16 || msg[0] > 1)
		return -EBADMSG;
	ct_len = n - 29;
	for (size_t i = 0; i < ct_len + 1; i++)
		mp_put_byte(out, 0);
	if (out->oom)
		return -ENOMEM;
	for (int i = 0; i < k->n; i++) {
		if (try_key(k->key[i], k->len[i], msg, n, aad, aad_len, out->p + base) == 0) {
			out->len = base + ct_len;
			if (msg[0] == 0) { /* PKCS7 padding */
				uint8_t pad = ct_len ? out->p[out->len - 1] : 0;

				if (pad == 0 || pad > 16 || pad > ct_len) {
					out->len = base;
					return -EBADMSG;
				}
				out->len -= pad;
			}
			return 0;
		}
	}
	out->len = base;
	return -EKEYREJECTED;
}
