/*
 * Backlog-triggered anti-entropy (engine.c backlog_sync; README "Gossip at
 * scale"), beyond memberlist: when the broadcast queue holds more than
 * gossip sends in 2 s, the engine adds full push/pulls with random members,
 * one a second at most, while members keep joining in its view. One engine,
 * a recording transport and a stepped clock (the `now` every call takes):
 * - a mass join (1,000 members at once, then a new member every 200 ms)
 *   starts syncs at the bounded rate, and they stop when the news stops;
 * - a settled 1,000-member node that hears of one join starts none, and
 *   neither does a node that has just learned 1,000 members at once and
 *   then hears nothing new (a joiner).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/engine.h"
#include "cluster/mpack.h"
#include "cluster/wire.h"

static unsigned streams_pp; /* push/pull streams the engine opened */

static void t_packet(void *ctx, const struct ml_addr *to, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)to;
	(void)buf;
	(void)len;
}

static void t_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *buf,
		     size_t len, int64_t timeout)
{
	(void)ctx;
	(void)id;
	(void)to;
	(void)timeout;
	/* no label, key or compression: the message type is the first byte;
	 * never answered (the engine expires it) */
	if (len && buf[0] == ML_PUSH_PULL)
		streams_pp++;
}

static struct ml_addr addr_of(int i)
{
	return (struct ml_addr){
	    .ip = {10, 1, (uint8_t)(i / 256), (uint8_t)(i % 256)}, .len = 4, .port = 7946};
}

static struct ml_engine *new_engine(void)
{
	struct ml_config cfg;
	struct ml_transport tr = {NULL, t_packet, t_stream};

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "self");
	cfg.advertise = (struct ml_addr){.ip = {10, 0, 0, 1}, .len = 4, .port = 7946};
	CU_ASSERT_FATAL(ml_timing_preset("lan", &cfg.timing) == 0);
	/* no probes of the invented members, no periodic push/pull: every
	 * push/pull the engine opens is a backlog sync */
	cfg.timing.probe_interval = 1000000000;
	cfg.timing.pushpull_interval = 1000000000;
	cfg.seed = 1;
	streams_pp = 0;
	return ml_new(&cfg, &tr, 0);
}

/* An inbound push/pull listing members first..last-1 alive. */
static void push_members(struct ml_engine *e, int first, int last, int64_t now)
{
	struct mp_buf b;
	struct ml_pp_header h = {.nodes = last - first, .user_state_len = 0, .join = false};
	struct ml_addr from = addr_of(first);
	uint8_t *reply = NULL;
	size_t rlen = 0;

	mp_init(&b);
	mp_put_byte(&b, ML_PUSH_PULL);
	ml_enc_pp_header(&b, &h);
	for (int i = first; i < last; i++) {
		char name[32];
		struct ml_addr a = addr_of(i);
		struct ml_push_node p = {
		    .addr = {a.ip, a.len},
		    .port = a.port,
		    .incarnation = 1,
		    .state = ML_STATE_ALIVE,
		    .vsn = {1, 5, 2, 2, 5, 5},
		    .n_vsn = 6,
		};

		snprintf(name, sizeof(name), "m-%04d", i);
		p.name = (struct ml_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
		ml_enc_push_node(&b, &p);
	}
	CU_ASSERT_FATAL(!b.oom);
	CU_ASSERT_EQUAL(ml_on_stream(e, &from, b.p, b.len, &reply, &rlen, now), 0);
	free(reply);
	mp_free(&b);
}

/* Member i's alive message arriving by gossip. */
static void alive_packet(struct ml_engine *e, int i, int64_t now)
{
	char name[32];
	struct ml_addr a = addr_of(i);
	struct ml_alive m = {
	    .incarnation = 1, .addr = {a.ip, a.len}, .port = a.port, .vsn = {1, 5, 2, 2, 5, 5}};
	struct mp_buf b;

	snprintf(name, sizeof(name), "m-%04d", i);
	m.node = (struct ml_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
	m.n_vsn = 6;
	mp_init(&b);
	ml_enc_alive(&b, &m);
	CU_ASSERT_FATAL(!b.oom);
	ml_on_packet(e, &a, b.p, b.len, now);
	mp_free(&b);
}

/* Step the clock to `until` through every deadline the engine reports. */
static int64_t run(struct ml_engine *e, int64_t now, int64_t until)
{
	while (now < until) {
		int64_t next = ml_tick(e, now);

		now = next < until ? next : until;
	}
	ml_tick(e, now);
	return now;
}

static void test_mass_join_fires(void)
{
	struct ml_engine *e = new_engine();
	int64_t now = 0;
	uint64_t during, after;

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	push_members(e, 0, 1000, now);
	now = run(e, now, 100);
	/* 1,000 alive messages x 16 transmissions: ~50 s of gossip */
	CU_ASSERT(ml_backlog_ms(e) > 20000);
	/* the join goes on: a new member every 200 ms for 10 s */
	for (int i = 0; i < 50; i++) {
		alive_packet(e, 1000 + i, now);
		now = run(e, now, now + 200);
	}
	during = ml_stats(e)->backlog_syncs;
	printf("\n  mass join: %llu syncs in 10 s (backlog %lld ms)", (unsigned long long)during,
	       (long long)ml_backlog_ms(e));
	/* one a second: the first one interval after the backlog was seen */
	CU_ASSERT(during >= 8 && during <= 10);
	CU_ASSERT_EQUAL(streams_pp, during);
	/* news stops: at most the one sync owed to the last news, then none
	 * although the backlog is still there */
	now = run(e, now, now + 10000);
	after = ml_stats(e)->backlog_syncs;
	CU_ASSERT(ml_backlog_ms(e) > 2000);
	CU_ASSERT(after - during <= 1);
	CU_ASSERT_EQUAL(streams_pp, after);
	ml_free(e);
}

static void test_single_join_does_not_fire(void)
{
	struct ml_engine *e = new_engine();
	int64_t now = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	/* a joiner: 1,000 members at once, then nothing new; the queue drains
	 * at the gossip rate without a sync */
	push_members(e, 0, 1000, now);
	now = run(e, now, 120000);
	CU_ASSERT_EQUAL(ml_pending_broadcasts(e), 0);
	CU_ASSERT_EQUAL(ml_stats(e)->backlog_syncs, 0);
	/* settled: one more node joins */
	alive_packet(e, 1000, now);
	CU_ASSERT(ml_backlog_ms(e) < 2000);
	now = run(e, now, now + 10000);
	CU_ASSERT_EQUAL(ml_stats(e)->backlog_syncs, 0);
	CU_ASSERT_EQUAL(streams_pp, 0);
	ml_free(e);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("cluster_antientropy", NULL, NULL);
	CU_add_test(suite, "mass_join_fires_bounded", test_mass_join_fires);
	CU_add_test(suite, "single_join_does_not_fire", test_single_join_does_not_fire);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
