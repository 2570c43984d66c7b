/*
 * Ownership over time (host/cluster/timeline.c): the view in force at a
 * slot's time from announced spans, the same whatever order members come in.
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "cluster/departed.h"
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

/* A participant that crashed: declared dead at 9000 after this node first
 * suspected it at 5000. It owns until 5000 (a failed probe came after its
 * crash, so it scraped nothing from then on): slots starting at or after
 * 5000 belong to the survivors, retroactively; earlier ones stay its own (it
 * may have scraped them, so catching them up would double them). */
static void test_retroactive_span(void)
{
	const int64_t suspected = 5000, declared = 9000;
	struct timeline_member live[] = {
	    {"a", 1.0, TIMELINE_ALWAYS, TIMELINE_NEVER},
	    {"d", 1.0, TIMELINE_ALWAYS, TIMELINE_NEVER},
	};
	struct timeline_member dead[] = {
	    live[0],
	    {"d", 1.0, TIMELINE_ALWAYS, departed_until(TIMELINE_NEVER, suspected)},
	};
	struct timeline *before = timeline_new(live, 2), *after = timeline_new(dead, 2);

	CU_ASSERT_PTR_NOT_NULL_FATAL(before);
	CU_ASSERT_PTR_NOT_NULL_FATAL(after);
	/* before the death: d owns every slot, also those after its suspicion
	 * (suspects keep their targets) */
	CU_ASSERT(has(timeline_view_at(before, suspected + 1000, NULL), "d"));
	/* after it: the same slot times answer differently from the suspicion on */
	CU_ASSERT(has(timeline_view_at(after, suspected - 1, NULL), "d"));
	CU_ASSERT(!has(timeline_view_at(after, suspected, NULL), "d"));
	CU_ASSERT(!has(timeline_view_at(after, declared - 1, NULL), "d"));
	CU_ASSERT_EQUAL(timeline_view_at(after, declared, NULL)->n, 1);
	CU_ASSERT_FALSE(timeline_equal(after, live, 2));
	timeline_free(before);
	timeline_free(after);

	/* a terminating member announced 12000 but crashed first: the earlier
	 * end wins; one that left after its hand-over time keeps that time */
	CU_ASSERT_EQUAL(departed_until(12000, suspected), suspected);
	CU_ASSERT_EQUAL(departed_until(12000, 12400), 12000);

	/* the same name with two lives (crashed, restarted at 20000): it owns
	 * in both spans, once, and not between them */
	struct timeline_member two[] = {
	    {"d", 1.0, 20000, TIMELINE_NEVER},
	    live[0],
	    {"d", 1.0, TIMELINE_ALWAYS, suspected},
	};
	struct timeline *tl = timeline_new(two, 3);
	const struct ownership_view *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	v = timeline_view_at(tl, 1000, NULL);
	CU_ASSERT(v->n == 2 && has(v, "d"));
	CU_ASSERT_EQUAL(timeline_view_at(tl, 10000, NULL)->n, 1);
	v = timeline_view_at(tl, 30000, NULL);
	CU_ASSERT(v->n == 2 && has(v, "d"));
	{
		struct timeline_member r[3] = {two[2], two[0], two[1]};

		CU_ASSERT(timeline_equal(tl, r, 3));
		r[0].until = suspected + 1;
		CU_ASSERT_FALSE(timeline_equal(tl, r, 3));
	}
	timeline_free(tl);
}

/* Gone members' spans outlive the member table (memberlist reaps the dead
 * after GossipToTheDeadTime, memberlist/state.go), bounded in time and
 * number. */
static void test_departed(void)
{
	struct departed *d = departed_new(2, 1000);

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(departed_note(d, "x", 1.0, 100, 500));
	CU_ASSERT_FALSE(departed_note(d, "x", 1.0, 100, 400)); /* same life: updated */
	CU_ASSERT_EQUAL(departed_count(d), 1);
	CU_ASSERT_EQUAL(departed_at(d, 0)->until, 400);
	CU_ASSERT_FALSE(departed_note(d, "y", 1.0, 900, 800)); /* never owned */
	CU_ASSERT_EQUAL(departed_count(d), 1);
	CU_ASSERT_TRUE(departed_note(d, "x", 1.0, 700, 900)); /* its next life */
	CU_ASSERT_EQUAL(departed_count(d), 2);
	/* full: the span that ended first goes */
	CU_ASSERT_TRUE(departed_note(d, "z", 2.0, TIMELINE_ALWAYS, 1200));
	CU_ASSERT_EQUAL(departed_count(d), 2);
	for (size_t i = 0; i < departed_count(d); i++)
		CU_ASSERT(departed_at(d, i)->until != 400);
	/* a refuted death: that life is forgotten */
	departed_forget(d, "x", 700);
	CU_ASSERT_EQUAL(departed_count(d), 1);
	CU_ASSERT_STRING_EQUAL(departed_at(d, 0)->name, "z");
	/* kept keep_ms after the end */
	departed_expire(d, 2200);
	CU_ASSERT_EQUAL(departed_count(d), 1);
	departed_expire(d, 2201);
	CU_ASSERT_EQUAL(departed_count(d), 0);
	CU_ASSERT_PTR_NULL(departed_at(d, 0));
	departed_free(d);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cluster_timeline", NULL, NULL);
	CU_add_test(s, "spans", test_spans);
	CU_add_test(s, "retroactive_span", test_retroactive_span);
	CU_add_test(s, "departed", test_departed);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
