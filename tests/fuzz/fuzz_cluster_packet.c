/*
 * Fuzz the cluster packet and stream decoders: every input goes through a
 * plain engine, one with a label and a keyring, the stream parser, the LZW
 * decoder and the raw message decoders. Nothing may crash, leak or read
 * out of bounds; bad input must only be counted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/engine.h"
#include "cluster/wire.h"

static void nop_packet(void *ctx, const struct ml_addr *to, const uint8_t *b, size_t n)
{
}

static void nop_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *b, size_t n,
		       int64_t t)
{
}

static struct ml_engine *mk(const char *label, const char *key)
{
	struct ml_config cfg;
	struct ml_transport tr = {NULL, nop_packet, nop_stream};
	char err[128];

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "fuzz-self");
	ml_addr_parse("127.0.0.1:23990", &cfg.advertise);
	ml_timing_preset("lan", &cfg.timing);
	snprintf(cfg.label, sizeof(cfg.label), "%s", label);
	if (key)
		ml_keyring_add_b64(&cfg.keys, key, err, sizeof(err));
	cfg.seed = 7;
	cfg.compress = true;
	return ml_new(&cfg, &tr, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ml_engine *plain, *secured;
	static int64_t now;
	struct ml_addr from;
	uint8_t *reply = NULL;
	size_t rlen;

	if (!plain) {
		plain = mk("", NULL);
		secured = mk("prod", "QUJDREVGR0hJSktMTU5PUA==");
	}
	ml_addr_parse("127.0.0.2:23991", &from);
	now += 37;
	ml_on_packet(plain, &from, data, size, now);
	ml_on_packet(secured, &from, data, size, now);
	(void)ml_stream_complete(plain, data, size);
	if (ml_on_stream(plain, &from, data, size, &reply, &rlen, now) == 0)
		free(reply);
	ml_stream_result(plain, 1, data, size, now);
	ml_tick(plain, now);

	struct mp_buf out;
	struct mp_rd r;
	struct ml_alive a;
	struct ml_push_node pn;
	struct ml_bytes parts[16];
	int trunc;

	mp_init(&out);
	(void)ml_lzw_decompress(data, size, &out, 1 << 16);
	mp_free(&out);
	mp_rd_init(&r, data, size);
	(void)ml_dec_alive(&r, &a);
	mp_rd_init(&r, data, size);
	(void)ml_dec_push_node(&r, &pn);
	mp_rd_init(&r, data, size);
	(void)mp_r_skip(&r);
	(void)ml_compound_split(data, size, parts, 16, &trunc);
	return 0;
}
