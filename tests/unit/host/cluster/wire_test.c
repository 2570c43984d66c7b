/* Wire codec tests: round trips, packets captured from a real serf agent,
 * LZW, AES-GCM keyring, timing formulas, and bad input through the engine. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/engine.h"
#include "cluster/wire.h"

static size_t load(const char *name, uint8_t *buf, size_t cap)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
	f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static bool bytes_is(const struct ml_bytes *b, const char *s)
{
	return b->n == strlen(s) && memcmp(b->p, s, b->n) == 0;
}

static void test_roundtrip(void)
{
	struct mp_buf b;
	struct mp_rd r;
	uint8_t ip[4] = {10, 1, 2, 3}, meta[3] = {0xff, 0x80, 0};
	struct ml_alive a = {.incarnation = 70000,
			     .node = {(const uint8_t *)"node-a", 6},
			     .addr = {ip, 4},
			     .port = 7946,
			     .meta = {meta, 2},
			     .vsn = {1, 5, 2, 2, 5, 4},
			     .n_vsn = 6},
			a2;
	struct ml_ping p = {.seq = 4000000000u,
			    .node = {(const uint8_t *)"x", 1},
			    .source_addr = {ip, 4},
			    .source_port = 1,
			    .source_node = {(const uint8_t *)"y", 1}},
		       p2;
	struct ml_indirect in = {.seq = 9,
				 .target = {ip, 4},
				 .port = 2,
				 .nack = true,
				 .node = {(const uint8_t *)"t", 1},
				 .source_addr = {ip, 4},
				 .source_port = 3,
				 .source_node = {(const uint8_t *)"s", 1}},
			   in2;
	struct ml_suspect s = {.incarnation = 5,
			       .node = {(const uint8_t *)"n", 1},
			       .from = {(const uint8_t *)"f", 1}},
			  s2;
	uint32_t seq;

	mp_init(&b);
	ml_enc_alive(&b, &a);
	CU_ASSERT_EQUAL(b.p[0], ML_ALIVE);
	mp_rd_init(&r, b.p + 1, b.len - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_alive(&r, &a2), 0);
	CU_ASSERT_EQUAL(a2.incarnation, 70000);
	CU_ASSERT(bytes_is(&a2.node, "node-a"));
	CU_ASSERT_EQUAL(a2.port, 7946);
	CU_ASSERT_EQUAL(a2.n_vsn, 6);
	CU_ASSERT_EQUAL(a2.vsn[1], 5);
	CU_ASSERT_EQUAL(a2.meta.n, 2);
	/* every truncation is detected, never over-read */
	for (size_t cut = 1; cut < b.len - 1; cut++) {
		mp_rd_init(&r, b.p + 1, cut);
		CU_ASSERT_EQUAL(ml_dec_alive(&r, &a2), -EAGAIN);
	}

	mp_reset(&b);
	ml_enc_ping(&b, &p);
	mp_rd_init(&r, b.p + 1, b.len - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_ping(&r, &p2), 0);
	CU_ASSERT_EQUAL(p2.seq, 4000000000u);
	CU_ASSERT(bytes_is(&p2.source_node, "y"));

	mp_reset(&b);
	ml_enc_indirect(&b, &in);
	mp_rd_init(&r, b.p + 1, b.len - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_indirect(&r, &in2), 0);
	CU_ASSERT(in2.nack);
	CU_ASSERT_EQUAL(in2.port, 2);
	CU_ASSERT_EQUAL(in2.source_port, 3);

	mp_reset(&b);
	ml_enc_suspect(&b, ML_DEAD, &s);
	CU_ASSERT_EQUAL(b.p[0], ML_DEAD);
	mp_rd_init(&r, b.p + 1, b.len - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_suspect(&r, &s2), 0);
	CU_ASSERT_EQUAL(s2.incarnation, 5);
	CU_ASSERT(bytes_is(&s2.from, "f"));

	mp_reset(&b);
	ml_enc_nack(&b, 77);
	mp_rd_init(&r, b.p + 1, b.len - 1);
	CU_ASSERT_EQUAL(ml_dec_nack(&r, &seq), 0);
	CU_ASSERT_EQUAL(seq, 77);

	/* compound of two */
	struct mp_buf c;
	struct ml_bytes parts[2] = {{b.p, (uint32_t)b.len}, {meta, 3}}, out[4];
	int trunc;

	mp_init(&c);
	ml_compound_make(&c, parts, 2);
	CU_ASSERT_EQUAL(ml_compound_split(c.p + 1, c.len - 1, out, 4, &trunc), 2);
	CU_ASSERT_EQUAL(trunc, 0);
	CU_ASSERT_EQUAL(out[1].n, 3);
	CU_ASSERT_EQUAL(ml_compound_split(c.p + 1, c.len - 2, out, 4, &trunc), 1);
	CU_ASSERT_EQUAL(trunc, 1);
	mp_free(&c);
	mp_free(&b);
}

static void test_serf_fixtures(void)
{
	uint8_t buf[4096];
	size_t n = load("serf_crc_compound_alive.bin", buf, sizeof(buf));
	struct ml_bytes parts[8];
	struct ml_alive a;
	struct mp_rd r;
	int trunc;

	/* hasCrc framing: CRC-32 IEEE over the rest */
	CU_ASSERT_EQUAL_FATAL(buf[0], ML_HAS_CRC);
	uint32_t want = (uint32_t)buf[1] << 24 | buf[2] << 16 | buf[3] << 8 | buf[4];

	CU_ASSERT_EQUAL(ml_crc32(buf + 5, n - 5), want);
	CU_ASSERT_EQUAL_FATAL(buf[5], ML_COMPOUND);
	CU_ASSERT_EQUAL_FATAL(ml_compound_split(buf + 6, n - 6, parts, 8, &trunc), 2);
	CU_ASSERT_EQUAL(parts[0].p[0], ML_ALIVE);
	mp_rd_init(&r, parts[0].p + 1, parts[0].n - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_alive(&r, &a), 0);
	CU_ASSERT(bytes_is(&a.node, "s1"));
	CU_ASSERT_EQUAL(a.port, 23901);
	CU_ASSERT_EQUAL(a.addr.n, 4);
	CU_ASSERT_EQUAL(a.addr.p[0], 127);
	/* serf tags: magic 0xff then a msgpack map */
	CU_ASSERT_EQUAL(a.meta.p[0], 0xff);
	CU_ASSERT_EQUAL(a.meta.p[1], 0x82);
	CU_ASSERT_EQUAL(a.n_vsn, 6);
	CU_ASSERT_EQUAL(a.vsn[0], 1);
	CU_ASSERT_EQUAL(a.vsn[1], 5);
	CU_ASSERT_EQUAL(a.vsn[5], 5);

	struct ml_ping p;

	n = load("serf_ping.bin", buf, sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(buf[0], ML_PING);
	mp_rd_init(&r, buf + 1, n - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_ping(&r, &p), 0);
	CU_ASSERT(bytes_is(&p.node, "s2"));
	CU_ASSERT(bytes_is(&p.source_node, "s1"));
	CU_ASSERT_EQUAL(p.source_port, 23901);

	struct ml_ack ack;

	n = load("serf_ack.bin", buf, sizeof(buf));
	mp_rd_init(&r, buf + 1, n - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_ack(&r, &ack), 0);
	CU_ASSERT(ack.payload.n > 0); /* serf's coordinate */

	/* LZW-compressed packet from serf (compressMsg) */
	int64_t algo;
	struct ml_bytes cb;
	struct mp_buf plain, again;

	n = load("serf_compressed.bin", buf, sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(buf[0], ML_COMPRESS);
	mp_rd_init(&r, buf + 1, n - 1);
	CU_ASSERT_EQUAL_FATAL(ml_dec_compress(&r, &algo, &cb), 0);
	CU_ASSERT_EQUAL(algo, 0);
	mp_init(&plain);
	CU_ASSERT_EQUAL_FATAL(ml_lzw_decompress(cb.p, cb.n, &plain, 65536), 0);
	CU_ASSERT(plain.len > cb.n);
	CU_ASSERT(plain.p[0] <= ML_ERR);
	/* our compressor reproduces Go's stream bit for bit */
	mp_init(&again);
	ml_lzw_compress(plain.p, plain.len, &again);
	CU_ASSERT_EQUAL(again.len, cb.n);
	CU_ASSERT(again.len == cb.n && memcmp(again.p, cb.p, cb.n) == 0);
	mp_free(&again);
	mp_free(&plain);
}

static void nop_send(void *ctx, const struct ml_addr *to, const uint8_t *b, size_t n)
{
	(*(int *)ctx)++;
}

static void nop_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *b, size_t n,
		       int64_t t)
{
}

static struct ml_engine *mk_engine(const char *name, const char *label, int *sent)
{
	struct ml_config cfg;
	struct ml_transport tr = {sent, nop_send, nop_stream};

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	ml_addr_parse("127.0.0.1:23999", &cfg.advertise);
	ml_timing_preset("lan", &cfg.timing);
	snprintf(cfg.label, sizeof(cfg.label), "%s", label);
	cfg.seed = 1;
	return ml_new(&cfg, &tr, 0);
}

/* Packets an engine sent, for the queue-order test. */
static uint8_t q_pkts[32][1500];
static size_t q_lens[32];
static int q_n;

static void q_send(void *ctx, const struct ml_addr *to, const uint8_t *b, size_t n)
{
	(void)ctx;
	(void)to;
	if (q_n < 32 && n <= sizeof(q_pkts[0])) {
		memcpy(q_pkts[q_n], b, n);
		q_lens[q_n++] = n;
	}
}

/* The order of our user broadcasts "A", "B", "C" in packet i ("" if none). */
static void user_order(int i, char *out)
{
	const uint8_t *p = q_pkts[i];
	size_t n = q_lens[i];
	struct ml_bytes parts[64];
	int trunc, k;

	*out = 0;
	if (n > 5 && p[0] == ML_HAS_CRC) {
		p += 5;
		n -= 5;
	}
	if (n < 1 || p[0] != ML_COMPOUND)
		return;
	k = ml_compound_split(p + 1, n - 1, parts, 64, &trunc);
	for (int j = 0; j < k; j++)
		if (parts[j].n == 2 && parts[j].p[0] == ML_USER)
			*out++ = (char)parts[j].p[1];
	*out = 0;
}

/*
 * memberlist's TransmitLimitedQueue (queue.go, limitedBroadcast.Less)
 * orders by transmit count, then by the id stamped at QueueBroadcast,
 * newest first, and keeps that id when an item moves to its next transmit
 * tier: C, B, A (queued A, B, C) in every packet, the first transmission
 * and the retransmissions alike.
 */
static void test_broadcast_queue_order(void)
{
	struct ml_config cfg;
	struct ml_transport tr = {NULL, q_send, nop_stream};
	struct ml_engine *e;
	struct ml_addr from;
	struct mp_buf m;
	uint8_t ip[4] = {127, 0, 0, 1};
	struct ml_alive peer = {.incarnation = 1,
				.node = {(const uint8_t *)"peer", 4},
				.addr = {ip, 4},
				.port = 23902,
				.vsn = {1, 5, 2, 2, 5, 5},
				.n_vsn = 6};
	char order[8];
	int with_users = 0;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "self");
	ml_addr_parse("127.0.0.1:23999", &cfg.advertise);
	ml_timing_preset("lan", &cfg.timing);
	cfg.seed = 3;
	e = ml_new(&cfg, &tr, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	ml_addr_parse("127.0.0.1:23902", &from);
	mp_init(&m);
	ml_enc_alive(&m, &peer);
	ml_on_packet(e, &from, m.p, m.len, 1);
	mp_free(&m);
	CU_ASSERT_EQUAL_FATAL(ml_node_count(e), 2);
	ml_broadcast_user(e, "a", (const uint8_t *)"A", 1, 1);
	ml_broadcast_user(e, "b", (const uint8_t *)"B", 1, 1);
	ml_broadcast_user(e, "c", (const uint8_t *)"C", 1, 1);
	q_n = 0;
	/* gossip (and probes) until the retransmit limit (4 x log10(3) -> 4)
	 * used the items up */
	for (int64_t t = 1; t < 5000 && ml_queued_transmits(e, "c") >= 0; t += 50)
		ml_tick(e, t);
	CU_ASSERT_EQUAL(ml_queued_transmits(e, "c"), -1);
	for (int i = 0; i < q_n; i++) {
		user_order(i, order);
		if (!order[0])
			continue;
		with_users++;
		CU_ASSERT_STRING_EQUAL(order, "CBA");
	}
	CU_ASSERT_EQUAL(with_users, 4); /* the retransmit limit */
	ml_free(e);
}

static void test_engine_fixtures(void)
{
	uint8_t buf[4096];
	int sent = 0;
	struct ml_engine *e = mk_engine("s2", "", &sent);
	struct ml_addr from;
	size_t n;
	uint8_t *reply = NULL;
	size_t rlen;

	ml_addr_parse("127.0.0.1:23901", &from);
	n = load("serf_crc_compound_alive.bin", buf, sizeof(buf));
	ml_on_packet(e, &from, buf, n, 10);
	/* learned s1; the packet also claims our name "s2" at another
	 * address: that member is refuted, not believed */
	CU_ASSERT_EQUAL(ml_node_count(e), 2);
	CU_ASSERT_EQUAL(ml_stats(e)->dropped[ML_DROP_MALFORMED], 0);
	CU_ASSERT_EQUAL(ml_stats(e)->dropped[ML_DROP_CHECKSUM], 0);
	CU_ASSERT(ml_stats(e)->name_conflicts >= 1);
	CU_ASSERT(ml_stats(e)->refutations >= 1);
	CU_ASSERT_EQUAL(ml_self(e)->state, ML_STATE_ALIVE);
	CU_ASSERT(ml_self(e)->incarnation >= 2);

	/* s1 moves to incarnation 5; a replay of its incarnation-1 alive
	 * (the captured packet again) is dropped as stale */
	{
		struct mp_buf m;
		uint8_t ip[4] = {127, 0, 0, 1}, meta[2] = {0xff, 0x80};
		struct ml_alive a5 = {.incarnation = 5,
				      .node = {(const uint8_t *)"s1", 2},
				      .addr = {ip, 4},
				      .port = 23901,
				      .meta = {meta, 2},
				      .vsn = {1, 5, 2, 2, 5, 5},
				      .n_vsn = 6};
		uint64_t stale = ml_stats(e)->dropped[ML_DROP_STALE];

		mp_init(&m);
		ml_enc_alive(&m, &a5);
		ml_on_packet(e, &from, m.p, m.len, 11);
		mp_free(&m);
		ml_on_packet(e, &from, buf, n, 12);
		CU_ASSERT(ml_stats(e)->dropped[ML_DROP_STALE] > stale);
		for (size_t i = 0; i < ml_node_count(e); i++)
			if (strcmp(ml_node_at(e, i)->name, "s1") == 0)
				CU_ASSERT_EQUAL(ml_node_at(e, i)->incarnation, 5);
	}

	n = load("serf_ping.bin", buf, sizeof(buf));
	sent = 0;
	ml_on_packet(e, &from, buf, n, 20);
	CU_ASSERT(sent >= 1); /* acked */

	/* the compressed stream serf sent to join: complete, merged */
	n = load("serf_pushpull_join.bin", buf, sizeof(buf));
	CU_ASSERT_EQUAL(ml_stream_complete(e, buf, n), 0);
	CU_ASSERT_EQUAL(ml_stream_complete(e, buf, n - 3), -EAGAIN);
	CU_ASSERT_EQUAL(ml_on_stream(e, &from, buf, n, &reply, &rlen, 30), 0);
	CU_ASSERT_PTR_NOT_NULL(reply);
	free(reply);
	n = load("serf_pushpull_reply.bin", buf, sizeof(buf));
	CU_ASSERT_EQUAL(ml_stream_complete(e, buf, n), 0);

	/* bad input: counted, never a crash */
	const struct ml_stats *st = ml_stats(e);
	uint64_t before = st->dropped[ML_DROP_CHECKSUM];

	n = load("serf_crc_compound_alive.bin", buf, sizeof(buf));
	buf[n - 1] ^= 1;
	ml_on_packet(e, &from, buf, n, 40);
	CU_ASSERT_EQUAL(st->dropped[ML_DROP_CHECKSUM], before + 1);
	before = st->dropped[ML_DROP_TRUNCATED];
	ml_on_packet(e, &from, buf, 3, 41);
	CU_ASSERT_EQUAL(st->dropped[ML_DROP_TRUNCATED], before + 1);
	uint8_t garbage[64];

	for (int i = 0; i < 64; i++)
		garbage[i] = (uint8_t)(i * 37 + 200);
	ml_on_packet(e, &from, garbage, sizeof(garbage), 42);
	before = st->dropped[ML_DROP_UNKNOWN_TYPE];
	garbage[0] = 99;
	ml_on_packet(e, &from, garbage, sizeof(garbage), 43);
	CU_ASSERT_EQUAL(st->dropped[ML_DROP_UNKNOWN_TYPE], before + 1);
	/* a label header we do not expect */
	uint8_t lab[] = {ML_HAS_LABEL, 3, 'f', 'o', 'o', ML_PING, 0x80};

	before = st->dropped[ML_DROP_LABEL];
	ml_on_packet(e, &from, lab, sizeof(lab), 44);
	CU_ASSERT_EQUAL(st->dropped[ML_DROP_LABEL], before + 1);
	ml_free(e);

	/* with a label, unlabelled packets are foreign */
	e = mk_engine("x", "prod", &sent);
	n = load("serf_ping.bin", buf, sizeof(buf));
	ml_on_packet(e, &from, buf, n, 1);
	CU_ASSERT_EQUAL(ml_stats(e)->dropped[ML_DROP_LABEL], 1);
	ml_free(e);
}

static void test_lzw_roundtrip(void)
{
	for (int round = 0; round < 20; round++) {
		size_t n = (size_t)(round * round * 997 % 50000);
		uint8_t *in = malloc(n + 1);
		struct mp_buf c, d;

		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(round % 3 == 0 ? (size_t)rand()
							 : (i % (size_t)(round + 3)) * 7);
		mp_init(&c);
		mp_init(&d);
		ml_lzw_compress(in, n, &c);
		CU_ASSERT_EQUAL(ml_lzw_decompress(c.p, c.len, &d, 1 << 20), 0);
		CU_ASSERT_EQUAL(d.len, n);
		CU_ASSERT(n == 0 || memcmp(d.p, in, n) == 0);
		/* output limit enforced */
		mp_reset(&d);
		if (n > 100)
			CU_ASSERT_EQUAL(ml_lzw_decompress(c.p, c.len, &d, 100), -EMSGSIZE);
		mp_free(&c);
		mp_free(&d);
		free(in);
	}
}

static void test_keyring(void)
{
	struct ml_keyring k = {0}, k2 = {0}, k3 = {0};
	char err[128];
	struct mp_buf ct, pt;
	const char *msg = "hello memberlist";

	CU_ASSERT_EQUAL(ml_keyring_add_b64(&k, "yj8huxQcIVG3b2uFxAZ7+GFskOG97/2xFva+b4x7Iuo=", err,
					   sizeof(err)),
			0);
	CU_ASSERT_EQUAL(k.len[0], 32);
	CU_ASSERT_EQUAL(ml_keyring_add_b64(&k, "QUJDREVGR0hJSktMTU5PUA==", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(k.len[1], 16);
	CU_ASSERT(ml_keyring_add_b64(&k, "QUJD", err, sizeof(err)) < 0);
	CU_ASSERT(ml_keyring_add_b64(&k, "not base64!!", err, sizeof(err)) < 0);
	mp_init(&ct);
	mp_init(&pt);
	CU_ASSERT_EQUAL(ml_encrypt(&k, (const uint8_t *)msg, strlen(msg), NULL, 0, &ct), 0);
	CU_ASSERT_EQUAL(ct.len, strlen(msg) + ML_ENCRYPT_OVERHEAD);
	CU_ASSERT_EQUAL(ct.p[0], 1);
	CU_ASSERT_EQUAL(ml_decrypt(&k, ct.p, ct.len, NULL, 0, &pt), 0);
	CU_ASSERT(pt.len == strlen(msg) && memcmp(pt.p, msg, pt.len) == 0);
	/* a ring whose secondary key is our primary still decrypts */
	ml_keyring_add_b64(&k2, "QUJDREVGR0hJSktMTU5PUA==", err, sizeof(err));
	ml_keyring_add_b64(&k2, "yj8huxQcIVG3b2uFxAZ7+GFskOG97/2xFva+b4x7Iuo=", err, sizeof(err));
	mp_reset(&pt);
	CU_ASSERT_EQUAL(ml_decrypt(&k2, ct.p, ct.len, NULL, 0, &pt), 0);
	/* wrong key, wrong AAD, tampering: refused */
	ml_keyring_add_b64(&k3, "MDEyMzQ1Njc4OWFiY2RlZg==", err, sizeof(err));
	mp_reset(&pt);
	CU_ASSERT(ml_decrypt(&k3, ct.p, ct.len, NULL, 0, &pt) < 0);
	CU_ASSERT(ml_decrypt(&k, ct.p, ct.len, (const uint8_t *)"x", 1, &pt) < 0);
	ct.p[20] ^= 1;
	CU_ASSERT(ml_decrypt(&k, ct.p, ct.len, NULL, 0, &pt) < 0);
	CU_ASSERT(ml_decrypt(&k, ct.p, 10, NULL, 0, &pt) < 0);
	mp_free(&ct);
	mp_free(&pt);
}

static void test_timing_math(void)
{
	struct ml_timing t;

	CU_ASSERT_EQUAL(ml_timing_preset("lan", &t), 0);
	CU_ASSERT_EQUAL(t.probe_interval, 1000);
	CU_ASSERT_EQUAL(t.suspicion_mult, 4);
	CU_ASSERT_EQUAL(ml_timing_preset("wan", &t), 0);
	CU_ASSERT_EQUAL(t.probe_interval, 5000);
	CU_ASSERT_EQUAL(t.suspicion_mult, 6);
	CU_ASSERT_EQUAL(ml_timing_preset("local", &t), 0);
	CU_ASSERT_EQUAL(t.probe_timeout, 200);
	CU_ASSERT(ml_timing_preset("moon", &t) < 0);
	/* memberlist: mult * max(1, log10(n)) * interval */
	CU_ASSERT_EQUAL(ml_suspicion_timeout(4, 1, 1000), 4000);
	CU_ASSERT_EQUAL(ml_suspicion_timeout(4, 10, 1000), 4000);
	CU_ASSERT_EQUAL(ml_suspicion_timeout(4, 100, 1000), 8000);
	CU_ASSERT_EQUAL(ml_suspicion_timeout(4, 1000, 1000), 12000);
	CU_ASSERT_EQUAL(ml_suspicion_timeout(5, 200, 1000), 11505);
	/* retransmit: mult * ceil(log10(n+1)) */
	CU_ASSERT_EQUAL(ml_retransmit_limit(4, 1), 4);
	CU_ASSERT_EQUAL(ml_retransmit_limit(4, 9), 4);
	CU_ASSERT_EQUAL(ml_retransmit_limit(4, 10), 8);
	CU_ASSERT_EQUAL(ml_retransmit_limit(4, 200), 12);
	/* Lifeguard: timeout shrinks from max to min as confirmations arrive */
	CU_ASSERT_EQUAL(ml_remaining_suspicion(0, 2, 0, 4000, 24000), 24000);
	CU_ASSERT_EQUAL(ml_remaining_suspicion(2, 2, 0, 4000, 24000), 4000);
	int64_t one = ml_remaining_suspicion(1, 2, 0, 4000, 24000);

	CU_ASSERT(one > 4000 && one < 24000);
	CU_ASSERT_EQUAL(one, 11381); /* 24 - log(2)/log(3)*20 s, floored to ms */
	CU_ASSERT_EQUAL(ml_remaining_suspicion(1, 2, 2000, 4000, 24000), 9381);
	CU_ASSERT_EQUAL(ml_pushpull_scale(30000, 32), 30000);
	CU_ASSERT_EQUAL(ml_pushpull_scale(30000, 33), 60000);
	CU_ASSERT_EQUAL(ml_pushpull_scale(30000, 200), 120000);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("cluster_wire", NULL, NULL);
	CU_add_test(s, "roundtrip", test_roundtrip);
	CU_add_test(s, "serf_fixtures", test_serf_fixtures);
	CU_add_test(s, "engine_fixtures_bad_input", test_engine_fixtures);
	CU_add_test(s, "lzw_roundtrip", test_lzw_roundtrip);
	CU_add_test(s, "keyring", test_keyring);
	CU_add_test(s, "timing_math", test_timing_math);
	CU_add_test(s, "broadcast_queue_order", test_broadcast_queue_order);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
