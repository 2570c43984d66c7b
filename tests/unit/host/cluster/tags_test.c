/*
 * Serf tags of Starling nodes (host/cluster/tags.c): round trip of our tags,
 * refused weights, and the fingerprint comparison that names drifting
 * components, with the inputs a peer could send (an empty component id used
 * to loop forever: found by fuzz_cluster_tags).
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "cluster/tags.h"
#include "cluster/timeline.h"
#include "cluster/wire.h"

static void test_round_trip(void)
{
	uint8_t buf[ML_META_MAX];
	struct member_tags t;
	size_t n = tags_encode(CLUSTER_STATE_TERMINATING, 2.5, "127.0.0.1:80", 1000, 5000,
			       "a.b:0123abcd", buf, sizeof(buf));

	CU_ASSERT_FATAL(n > 0);
	tags_decode(buf, n, &t);
	CU_ASSERT_EQUAL(t.state, CLUSTER_STATE_TERMINATING);
	CU_ASSERT(t.starling);
	CU_ASSERT_DOUBLE_EQUAL(t.weight, 2.5, 1e-9);
	CU_ASSERT_EQUAL(t.from, 1000);
	CU_ASSERT_EQUAL(t.until, 5000);
	CU_ASSERT_STRING_EQUAL(t.http, "127.0.0.1:80");
	CU_ASSERT_STRING_EQUAL(t.fp, "a.b:0123abcd");
	/* a participant carries no until; a weight of 1e6 is refused */
	n = tags_encode(CLUSTER_STATE_PARTICIPANT, 1e6, "", TIMELINE_ALWAYS, 9, "", buf,
			sizeof(buf));
	tags_decode(buf, n, &t);
	CU_ASSERT_EQUAL(t.until, TIMELINE_NEVER);
	CU_ASSERT_EQUAL(t.from, TIMELINE_ALWAYS);
	CU_ASSERT(t.weight_refused);
	CU_ASSERT_DOUBLE_EQUAL(t.weight, 1.0, 1e-9);
	/* does not fit: nothing written */
	CU_ASSERT_EQUAL(tags_encode(CLUSTER_STATE_PARTICIPANT, 1, "", 1, 1, "x", buf, 8), 0);
	/* serf agent's tags: a viewer, not Starling */
	tags_decode((const uint8_t *)"\xff\x81\xa4role\xa3web", 11, &t);
	CU_ASSERT_FALSE(t.starling);
	CU_ASSERT_EQUAL(t.state, CLUSTER_STATE_VIEWER);
}

static void test_fingerprint_diff(void)
{
	char d[128];

	tags_fp_diff("a:11111111,b:22222222", "a:11111111,b:22222222", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "");
	tags_fp_diff("a:11111111,b:22222222", "a:11111111,b:33333333", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "b");
	/* missing on either side, each named once */
	tags_fp_diff("a:11111111,b:22222222", "b:22222222,c:44444444", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "a c");
	tags_fp_diff("#0123456789abcdef", "#fedcba9876543210", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "(too many components to name)");
	/* hostile: empty ids, no colon, a long id: bounded, terminates */
	tags_fp_diff(":12345678,:x", "a:1", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "a");
	tags_fp_diff("nocolon", "", d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "");
	char longid[300];

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	tags_fp_diff(longid, "a:1", d, sizeof(d));
	CU_ASSERT(strlen(d) < sizeof(d));
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cluster_tags", NULL, NULL);
	CU_add_test(s, "round_trip", test_round_trip);
	CU_add_test(s, "fingerprint_diff", test_fingerprint_diff);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
