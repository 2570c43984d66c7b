/*
 * What a leaving node sends straight to every member, not only by gossip
 * (issue 13, cluster_serf_rolling_restart): gossip reaches each member with
 * some probability only, and a serf agent that gets our dead message but
 * not our leave intent logs the leave as a failure (serf/serf.go
 * handleNodeLeave), one that misses the dead message keeps a restarted node
 * "leaving". 12 simulated nodes (fixed seed, 5 ms delay, no loss): after
 * one network delay, before any gossip round could relay it, every member
 * has the message.
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "sim.h"

#define N     12
#define DELAY 5

static struct sim *s;

static void formed(void)
{
	struct sim_opts o = {
	    .n = N, .seed = 7, .profile = "lan", .delay_ms = DELAY, .jitter_ms = 0, .loss = 0};

	s = sim_new_formed(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
}

static void test_user_message_direct(void)
{
	/* a serf leave intent about "x": {LTime: 7, Node: "x"} after type 0;
	 * every member relays it once, which ml_stats counts */
	static const uint8_t intent[] = {0x00, 0x82, 0xa5, 'L', 'T', 'i', 'm',	'e',
					 0x07, 0xa4, 'N',  'o', 'd', 'e', 0xa1, 'x'};
	uint64_t before[N];

	formed();
	for (int v = 0; v < N; v++)
		before[v] = ml_stats(sim_engine(s, v))->intents_relayed;
	ml_send_user_direct(sim_engine(s, 1), intent, sizeof(intent));
	sim_run_until(s, sim_now(s) + DELAY + 1);
	for (int v = 0; v < N; v++) {
		if (v == 1)
			continue;
		CU_ASSERT_EQUAL(ml_stats(sim_engine(s, v))->intents_relayed, before[v] + 1);
	}
	sim_free(s);
	s = NULL;
}

static void test_leave_dead_direct(void)
{
	formed();
	ml_leave(sim_engine(s, 0), sim_now(s));
	sim_run_until(s, sim_now(s) + DELAY + 1);
	for (int v = 1; v < N; v++) {
		struct ml_engine *e = sim_engine(s, v);
		int st = -1;

		for (size_t i = 0; i < ml_node_count(e); i++)
			if (!strcmp(ml_node_at(e, i)->name, sim_name(s, 0)))
				st = ml_node_at(e, i)->state;
		CU_ASSERT_EQUAL(st, ML_STATE_LEFT);
	}
	sim_free(s);
	s = NULL;
}

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("cluster_direct", NULL, NULL);
	CU_add_test(suite, "user_message_straight_to_every_member", test_user_message_direct);
	CU_add_test(suite, "leave_dead_straight_to_every_member", test_leave_dead_direct);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
