/*
 * 200-node simulation (fixed seed, 2-7 ms delay): convergence after a mass
 * join, one later join, detection of crashed nodes, no false death at 10%
 * packet loss, and a partition that heals through periodic rejoin.
 * SIM_NODES=1000 (and SIM_SEED) run the same at 1,000 nodes: the bench
 * target tests/bench/cluster/run_sim does that for several seeds.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static int N = 200;
static uint64_t seed = 42;
/* SIM_META: bytes of node metadata (a Starling daemon's tags are ~150) */
static size_t meta_len;
/* The last node stays out of the mass join and joins alone afterwards. */
#define LATE (N - 1)

/* Count (viewer, member) pairs over up viewers where pred holds for the
 * member's state in the viewer's list (-1: not listed). One pass over each
 * viewer's list (names are "sim-<index>"). */
static int count_pairs(struct sim *s, bool (*pred)(struct sim *, int, int))
{
	int c = 0;
	int *st = malloc((size_t)N * sizeof(*st));

	for (int v = 0; v < N; v++) {
		struct ml_engine *e;

		if (!sim_is_up(s, v))
			continue;
		e = sim_engine(s, v);
		for (int m = 0; m < N; m++)
			st[m] = -1;
		for (size_t i = 0; i < ml_node_count(e); i++) {
			const struct ml_node *n = ml_node_at(e, i);
			int m = atoi(n->name + 4);

			if (m >= 0 && m < N)
				st[m] = n->state;
		}
		for (int m = 0; m < N; m++)
			c += pred(s, m, st[m]);
	}
	free(st);
	return c;
}

static bool sees_up_alive(struct sim *s, int m, int st)
{
	return sim_is_up(s, m) && st == ML_STATE_ALIVE;
}

static bool sees_crashed_dead(struct sim *s, int m, int st)
{
	/* a reaped dead member (gone from the list) also counts */
	return !sim_is_up(s, m) && (st == ML_STATE_DEAD || st == -1);
}

static bool false_death(struct sim *s, int m, int st)
{
	return sim_is_up(s, m) && st == ML_STATE_DEAD;
}

static int up_count(struct sim *s)
{
	int c = 0;

	for (int i = 0; i < N; i++)
		c += sim_is_up(s, i);
	return c;
}

/* Run in 100 ms steps until the pair count reaches want; returns the time
 * taken or -1. When at99 is given, it gets the time 99% of want was reached. */
static int64_t run_until_pairs(struct sim *s, bool (*pred)(struct sim *, int, int), int want,
			       int64_t limit, int64_t *at99)
{
	int64_t start = sim_now(s);

	if (at99)
		*at99 = -1;
	while (sim_now(s) - start < limit) {
		int c;

		sim_run_until(s, sim_now(s) + 100);
		c = count_pairs(s, pred);
		if (at99 && *at99 < 0 && c >= want / 100 * 99)
			*at99 = sim_now(s) - start;
		if (c >= want)
			return sim_now(s) - start;
	}
	return -1;
}

static struct sim *s;

/* Broadcasts queued per up node, on average (the gossip backlog). */
static size_t avg_queued(struct sim *sm)
{
	size_t q = 0, up = 0;

	for (int i = 0; i < N; i++) {
		if (!sim_is_up(sm, i))
			continue;
		q += ml_pending_broadcasts(sim_engine(sm, i));
		up++;
	}
	return up ? q / up : 0;
}

/* Engine counters summed over up nodes: bytes sent by gossip/probes (UDP)
 * and by streams (push/pull requests and replies), and the push/pulls the
 * backlog started. */
struct totals {
	uint64_t udp, stream, syncs, retired;
};

static struct totals totals(struct sim *sm)
{
	struct totals t = {0, 0, 0, 0};

	for (int i = 0; i < N; i++) {
		const struct ml_stats *st;

		if (!sim_is_up(sm, i))
			continue;
		st = ml_stats(sim_engine(sm, i));
		t.udp += st->tx_bytes;
		t.stream += st->tx_stream_bytes;
		t.syncs += st->backlog_syncs;
		t.retired += st->backlog_retired;
	}
	return t;
}

static void test_join_convergence(void)
{
	struct sim_opts o = {.profile = "lan", .delay_ms = 2, .jitter_ms = 5, .loss = 0};
	int64_t t, t99;
	int up;

	o.n = N;
	o.seed = seed;
	o.meta_len = meta_len;
	s = sim_new(&o);
	sim_crash(s, LATE); /* not started yet: see test_later_join */
	for (int i = 1; i < LATE; i++) {
		sim_run_until(s, sim_now(s) + 10);
		sim_join(s, i, i < 10 ? 0 : (int)(i * 7919 % 10));
	}
	up = up_count(s);
	size_t backlog = avg_queued(s);
	int64_t join_ms = sim_now(s);
	struct totals at_join = totals(s), done;

	t = run_until_pairs(s, sees_up_alive, up * up, 60000, &t99);
	done = totals(s);
	printf("\n  %d nodes (seed %llu, %zu bytes of meta): 99%% of pairs alive %lld ms, all %lld "
	       "ms after the last "
	       "join (%llu packets; %zu broadcasts queued per node at the last join, %zu when all "
	       "were seen)\n",
	       up, (unsigned long long)seed, meta_len, (long long)t99, (long long)t,
	       (unsigned long long)sim_packets(s), backlog, avg_queued(s));
	/* the cost of the mass join per node: during the joins, and from the
	 * last join until every pair was seen */
	printf(
	    "  bytes sent per node: joins (%lld ms) %llu kB UDP + %llu kB streams, then until all "
	    "pairs %llu kB UDP + %llu kB streams; backlog push/pulls per node %.1f + %.1f\n",
	    (long long)join_ms, (unsigned long long)(at_join.udp / (uint64_t)up / 1000),
	    (unsigned long long)(at_join.stream / (uint64_t)up / 1000),
	    (unsigned long long)((done.udp - at_join.udp) / (uint64_t)up / 1000),
	    (unsigned long long)((done.stream - at_join.stream) / (uint64_t)up / 1000),
	    (double)at_join.syncs / up, (double)(done.syncs - at_join.syncs) / up);
	CU_ASSERT(t >= 0);
	/* the anti-entropy fired: a mass join of 200 or more leaves every
	 * node a backlog of several seconds of gossip (below ~100 it does not) */
	if (N >= 200)
		CU_ASSERT(done.syncs > 0);
	/* issue 13's goal: 99% of pairs within 3 s and all within 10 s, at
	 * CI's 200 nodes and at the bench's 1,000. Met at 1,000 only with the
	 * backlog-triggered push/pulls (memberlist's gossip alone drains the
	 * backlog in 20-30 s: README, "Gossip at scale") */
	printf("  goal 99%% <= 3000 ms: %s; all <= 10000 ms: %s\n",
	       t99 >= 0 && t99 <= 3000 ? "met" : "MISSED", t >= 0 && t <= 10000 ? "met" : "MISSED");
	CU_ASSERT(t99 >= 0 && t99 <= 3000);
	CU_ASSERT(t <= 10000);
}

/* One node joining a settled cluster: seen alive by every node within
 * 1.5 s (issue 13). */
static void test_later_join(void)
{
	int64_t start, t = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	sim_restart(s, LATE);
	sim_join(s, LATE, 3);
	start = sim_now(s);
	struct totals before = totals(s), after;

	while (sim_now(s) - start < 30000) {
		int seen = 0;

		sim_run_until(s, sim_now(s) + 50);
		for (int v = 0; v < N; v++)
			seen += sim_is_up(s, v) && sim_state(s, v, LATE) == ML_STATE_ALIVE;
		if (seen == up_count(s)) {
			t = sim_now(s) - start;
			break;
		}
	}
	after = totals(s);
	printf("\n  one later join seen alive by all %d nodes after %lld ms (backlog push/pulls "
	       "meanwhile: %llu, by the joiner: %llu; alive messages deferred per node so far: "
	       "%llu)\n",
	       up_count(s), (long long)t, (unsigned long long)(after.syncs - before.syncs),
	       (unsigned long long)ml_stats(sim_engine(s, LATE))->backlog_syncs,
	       (unsigned long long)(after.retired / (uint64_t)up_count(s)));
	CU_ASSERT(t >= 0 && t <= 1500);
}

static void test_crash_detection(void)
{
	int64_t t;
	int crashed[10], nc = N >= 1000 ? 10 : 5;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int i = 0; i < nc; i++) {
		crashed[i] = (int)((3 + (int64_t)i * 7919) % N);
		if (crashed[i] == 0) /* not the seed */
			crashed[i] = N - 1;
		sim_crash(s, crashed[i]);
	}
	uint64_t syncs = totals(s).syncs;

	t = run_until_pairs(s, sees_crashed_dead, up_count(s) * nc, 90000, NULL);
	printf(
	    "\n  %d crashed nodes marked dead by all %d others after %lld ms (backlog push/pulls "
	    "meanwhile: %llu)\n",
	    nc, up_count(s), (long long)t, (unsigned long long)(totals(s).syncs - syncs));
	CU_ASSERT(t >= 0);
	CU_ASSERT_EQUAL(count_pairs(s, false_death), 0);
}

static void test_no_false_death_under_loss(void)
{
	uint64_t susp = 0, ref = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* count only what happens under loss */
	for (int i = 0; i < N; i++) {
		if (!sim_is_up(s, i))
			continue;
		susp -= ml_stats(sim_engine(s, i))->suspicions;
		ref -= ml_stats(sim_engine(s, i))->refutations;
	}
	uint64_t syncs = totals(s).syncs;

	sim_set_loss(s, 0.10);
	for (int step = 0; step < 120; step++) {
		sim_run_until(s, sim_now(s) + 1000);
		CU_ASSERT_EQUAL_FATAL(count_pairs(s, false_death), 0);
	}
	for (int i = 0; i < N; i++) {
		if (!sim_is_up(s, i))
			continue;
		susp += ml_stats(sim_engine(s, i))->suspicions;
		ref += ml_stats(sim_engine(s, i))->refutations;
	}
	syncs = totals(s).syncs - syncs;
	printf("\n  120 s at 10%% loss: 0 false deaths (%llu suspicions, %llu refutations, %llu "
	       "backlog push/pulls)\n",
	       (unsigned long long)susp, (unsigned long long)ref, (unsigned long long)syncs);
	/* a settled cluster (CI's size: the mass join's backlog has drained by
	 * now) gossips as memberlist does: no extra push/pull */
	if (N <= 500)
		CU_ASSERT_EQUAL(syncs, 0);
	sim_set_loss(s, 0);
}

static void test_partition_and_heal(void)
{
	int up = up_count(s), half = 0;
	int64_t t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	if (N > 500) {
		/* issue 13 asks the 1,000-node run for joins, detection and loss;
		 * the partition (minutes of simulated time) stays at CI's size */
		printf("\n  partition: not run at %d nodes (CI runs it at 200)\n", N);
		sim_free(s);
		s = NULL;
		return;
	}
	for (int i = 0; i < N; i++) {
		sim_set_group(s, i, i % 2);
		half += sim_is_up(s, i) && i % 2 == 0;
	}
	/* each side marks the other dead (reaped members count as gone) */
	int64_t start = sim_now(s);
	bool split = false;

	while (sim_now(s) - start < 120000 && !split) {
		sim_run_until(s, sim_now(s) + 500);
		split = count_pairs(s, sees_up_alive) == half * half + (up - half) * (up - half);
	}
	printf("\n  partition: each side sees only itself after %lld ms\n",
	       (long long)(sim_now(s) - start));
	CU_ASSERT_FATAL(split);
	for (int i = 0; i < N; i++)
		sim_set_group(s, i, 0);
	/* heal through rejoin: every node rejoins a seed of each side every
	 * 10 s (the front end's rejoin_interval) */
	start = sim_now(s);
	t = -1;
	while (sim_now(s) - start < 120000) {
		if ((sim_now(s) - start) % 10000 == 0)
			for (int i = 0; i < N; i++)
				if (sim_is_up(s, i))
					sim_join(s, i, (i + 1) % 2 ? 0 : 1);
		sim_run_until(s, sim_now(s) + 500);
		if (count_pairs(s, sees_up_alive) == up * up) {
			t = sim_now(s) - start;
			break;
		}
	}
	printf("  healed: all %d see each other alive %lld ms after the partition ended\n", up,
	       (long long)t);
	CU_ASSERT(t >= 0);
	sim_free(s);
	s = NULL;
}

/* node `m` as `v` sees it (NULL if not in v's list) */
static const struct ml_node *view_of(struct sim *sm, int v, int m)
{
	struct ml_engine *e = sim_engine(sm, v);

	for (size_t i = 0; i < ml_node_count(e); i++) {
		const struct ml_node *n = ml_node_at(e, i);

		if (strcmp(n->name, sim_name(sm, m)) == 0)
			return n;
	}
	return NULL;
}

/*
 * Lifeguard confirmations, as serf counts them: 4 nodes (k = 2), one crashes.
 * The first survivor to fail a probe gossips suspect{From: itself}; the other
 * two adopt that suspicion, and each must still gossip its own suspect{From:
 * itself} when its own probe fails. Only then does every survivor (the first
 * one included) count 2 confirmations and declare the node dead at the
 * minimum timeout (4 s after the suspicion) instead of up to 24 s.
 */
static void test_suspicion_confirmations(void)
{
	struct sim_opts o = {
	    .n = 4, .seed = 7, .profile = "lan", .delay_ms = 1, .jitter_ms = 2, .loss = 0};
	struct sim *sm = sim_new(&o);
	int max_n[4] = {0}, k[4] = {0};
	int64_t dead_at[4] = {-1, -1, -1, -1}, crash;
	bool all_alive = false;

	CU_ASSERT_PTR_NOT_NULL_FATAL(sm);
	for (int i = 1; i < 4; i++)
		sim_join(sm, i, 0);
	while (sim_now(sm) < 20000 && !all_alive) {
		sim_run_until(sm, sim_now(sm) + 100);
		all_alive = true;
		for (int v = 0; v < 4; v++)
			for (int m = 0; m < 4; m++)
				all_alive &= sim_state(sm, v, m) == ML_STATE_ALIVE;
	}
	CU_ASSERT_FATAL(all_alive);
	sim_run_until(sm, sim_now(sm) + 3000);
	sim_crash(sm, 3);
	crash = sim_now(sm);
	while (sim_now(sm) - crash < 30000) {
		bool done = true;

		sim_run_until(sm, sim_now(sm) + 20);
		for (int v = 0; v < 3; v++) {
			const struct ml_node *n = view_of(sm, v, 3);

			if (n && n->state == ML_STATE_SUSPECT) {
				if (n->susp_n > max_n[v])
					max_n[v] = n->susp_n;
				k[v] = n->susp_k;
			}
			if (dead_at[v] < 0 && (!n || n->state == ML_STATE_DEAD))
				dead_at[v] = sim_now(sm) - crash;
			done &= dead_at[v] >= 0;
		}
		if (done)
			break;
	}
	printf("\n  4 nodes, one crashed: confirmations %d/%d/%d (k %d), dead after %lld/%lld/%lld "
	       "ms\n",
	       max_n[0], max_n[1], max_n[2], k[0], (long long)dead_at[0], (long long)dead_at[1],
	       (long long)dead_at[2]);
	for (int v = 0; v < 3; v++) {
		CU_ASSERT_EQUAL(k[v], 2);
		CU_ASSERT_EQUAL(max_n[v], 2);
		/* first failed probe (<= 3 probe rounds) + 4 s minimum + gossip */
		CU_ASSERT(dead_at[v] >= 0 && dead_at[v] <= 9000);
	}
	sim_free(sm);
}

int main(void)
{
	CU_pSuite suite;
	unsigned fails;

	if (getenv("SIM_NODES"))
		N = atoi(getenv("SIM_NODES"));
	if (getenv("SIM_SEED"))
		seed = strtoull(getenv("SIM_SEED"), NULL, 10);
	if (getenv("SIM_META"))
		meta_len = strtoull(getenv("SIM_META"), NULL, 10);
	if (N < 20 || N > 5000)
		N = 200;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite("cluster_sim", NULL, NULL);
	CU_add_test(suite, "join_convergence", test_join_convergence);
	CU_add_test(suite, "later_join", test_later_join);
	CU_add_test(suite, "crash_detection", test_crash_detection);
	CU_add_test(suite, "no_false_death_at_10pct_loss", test_no_false_death_under_loss);
	CU_add_test(suite, "partition_and_heal", test_partition_and_heal);
	suite = CU_add_suite("cluster_sim_4", NULL, NULL);
	CU_add_test(suite, "suspicion_confirmations", test_suspicion_confirmations);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
