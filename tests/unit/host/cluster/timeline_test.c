/*
 * Ownership over time (host/cluster/timeline.c): the view in force at a
 * slot's time from announced spans, the same whatever order members come in.
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "cluster/timeline.h"

static bool has(const struct ownership_view *v, const char *name)
{
	for (size_t i = 0; v && i < v->n; i++)
		if (strcmp(v->members[i].name, name) == 0)
			return true;
	return false;
}

static void test_spans(void)
{
	/* a: always; b: joins at 1000; c: leaves at 2000; d: joins 500, leaves 1500 */
	struct timeline_member m[] = {
	    {"c", 1.0, TIMELINE_ALWAYS, 2000},
	    {"a", 1.0, TIMELINE_ALWAYS, TIMELINE_NEVER},
	    {"b", 2.0, 1000, TIMELINE_NEVER},
	    {"d", 1.0, 500, 1500},
	    {"e", 1.0, 3000, 2500}, /* left before its join came due: never */
	};
	struct timeline *tl = timeline_new(m, 5);
	const struct ownership_view *v;
	int64_t next;

	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	v = timeline_view_at(tl, 0, &next);
	CU_ASSERT_EQUAL(v->n, 2);
	CU_ASSERT(has(v, "a") && has(v, "c"));
	CU_ASSERT_EQUAL(next, 500);
	/* the start is inclusive, the end exclusive: one owner per instant */
	v = timeline_view_at(tl, 999, NULL);
	CU_ASSERT(has(v, "d") && !has(v, "b"));
	v = timeline_view_at(tl, 1000, &next);
	CU_ASSERT(has(v, "b") && has(v, "d") && v->weighted);
	CU_ASSERT_EQUAL(next, 1500);
	v = timeline_view_at(tl, 1999, NULL);
	CU_ASSERT(has(v, "c") && !has(v, "d"));
	v = timeline_view_at(tl, 2000, NULL);
	CU_ASSERT(!has(v, "c") && v->n == 2);
	v = timeline_view_at(tl, 1000000, &next);
	CU_ASSERT_EQUAL(v->n, 2);
	CU_ASSERT_EQUAL(next, TIMELINE_NEVER);
	CU_ASSERT(!has(timeline_view_at(tl, 2700, NULL), "e"));
	/* the same view object for two times in one segment (built once) */
	CU_ASSERT_PTR_EQUAL(timeline_view_at(tl, 1001, NULL), timeline_view_at(tl, 1400, NULL));

	/* equality ignores order, sees any span change */
	struct timeline_member r[5] = {m[4], m[3], m[2], m[1], m[0]};

	CU_ASSERT(timeline_equal(tl, r, 5));
	r[0].until = 2600;
	CU_ASSERT_FALSE(timeline_equal(tl, r, 5));
	CU_ASSERT_FALSE(timeline_equal(tl, r, 4));
	timeline_free(tl);

	tl = timeline_new(NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	CU_ASSERT_EQUAL(timeline_view_at(tl, 5, NULL)->n, 0);
	timeline_free(tl);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cluster_timeline", NULL, NULL);
	CU_add_test(s, "spans", test_spans);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
