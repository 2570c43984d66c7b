/*
 * Issue 13, kill -9: a crashed process on a live host closes its port, and
 * the first packet sent to it comes back as ICMP port unreachable. The
 * transport (net.c, IP_RECVERR) hands that to ml_hint_unreachable, and the
 * member is probed at once instead of when its round-robin turn comes
 * (memberlist waits for the turn: state.go probe). It is still only the
 * failed probe that makes it suspect. 12 simulated nodes (fixed seed, no
 * loss): after node 5 crashes, node 0, hinted, has failed a probe of it
 * within a probe interval plus a gossip round; without the hint it has not.
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "sim.h"

#define N 12

static const struct ml_node *member(struct ml_engine *e, const char *name)
{
	for (size_t i = 0; i < ml_node_count(e); i++)
		if (!strcmp(ml_node_at(e, i)->name, name))
			return ml_node_at(e, i);
	return NULL;
}

/* Crash node 5, hint node 0 (or not), run 1.2 s: node 0's failed probes. */
static uint64_t failed_probes_after_crash(bool hint, uint64_t *hints)
{
	struct sim_opts o = {.n = N, .seed = 11, .profile = "lan", .delay_ms = 1, .jitter_ms = 0};
	struct sim *s = sim_new_formed(&o);
	struct ml_engine *e;
	struct ml_addr addr, self, nowhere = {.ip = {10, 9, 8, 7}, .len = 4, .port = 1};
	uint64_t before;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	e = sim_engine(s, 0);
	addr = member(e, sim_name(s, 5))->addr;
	self = member(e, sim_name(s, 0))->addr;
	before = ml_stats(e)->probes_failed;
	sim_crash(s, 5);
	if (hint) {
		ml_hint_unreachable(e, &addr, sim_now(s));
		ml_hint_unreachable(e, &addr, sim_now(s));    /* queued once */
		ml_hint_unreachable(e, &self, sim_now(s));    /* never ourselves */
		ml_hint_unreachable(e, &nowhere, sim_now(s)); /* not a member */
	}
	sim_run_until(s, sim_now(s) + 1200);
	*hints = ml_stats(e)->unreachable_hints;
	before = ml_stats(e)->probes_failed - before;
	if (hint) {
		/* its own failed probe made it suspect (or dead, if others agreed) */
		int st = member(e, sim_name(s, 5))->state;

		CU_ASSERT(st == ML_STATE_SUSPECT || st == ML_STATE_DEAD);
	}
	sim_free(s);
	return before;
}

static void test_unreachable_probed_at_once(void)
{
	uint64_t hints;

	CU_ASSERT_EQUAL(failed_probes_after_crash(true, &hints), 1);
	CU_ASSERT_EQUAL(hints, 1);
	CU_ASSERT_EQUAL(failed_probes_after_crash(false, &hints), 0);
	CU_ASSERT_EQUAL(hints, 0);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("cluster_unreachable", NULL, NULL);
	CU_add_test(suite, "unreachable_member_probed_at_once", test_unreachable_probed_at_once);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
