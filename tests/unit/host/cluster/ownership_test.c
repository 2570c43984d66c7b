/* Rendezvous ownership: determinism, balance, minimal movement, weights. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ownership.h"

static struct ownership_view *mkview(int n, const char *prefix, const double *w)
{
	char names[64][32];
	const char *p[64];

	for (int i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "%s%d", prefix, i);
		p[i] = names[i];
	}
	return ownership_view_new(1, p, w, (size_t)n);
}

static uint64_t key_of(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull ^ (i << 17);
}

static void test_determinism(void)
{
	/* same members in another order -> same owners */
	const char *a[] = {"n1", "n2", "n3", "n4"}, *b[] = {"n4", "n2", "n1", "n3"};
	struct ownership_view *va = ownership_view_new(1, a, NULL, 4);
	struct ownership_view *vb = ownership_view_new(9, b, NULL, 4);

	for (uint64_t k = 0; k < 10000; k++) {
		size_t oa[3], ob[3];

		CU_ASSERT_EQUAL_FATAL(ownership_owners(va, key_of(k), oa, 3), 3);
		CU_ASSERT_EQUAL_FATAL(ownership_owners(vb, key_of(k), ob, 3), 3);
		for (int i = 0; i < 3; i++)
			CU_ASSERT_STRING_EQUAL(va->members[oa[i]].name, vb->members[ob[i]].name);
		CU_ASSERT(oa[0] != oa[1] && oa[1] != oa[2] && oa[0] != oa[2]);
	}
	/* fewer members than asked */
	size_t o[4];

	CU_ASSERT_EQUAL(ownership_owners(va, 1, o, 16), 4);
	CU_ASSERT_EQUAL(ownership_owners(NULL, 1, o, 1), 0);
	ownership_view_free(va);
	ownership_view_free(vb);
}

static void test_balance_and_movement(void)
{
	struct ownership_view *v10 = mkview(10, "node-", NULL), *v11 = mkview(11, "node-", NULL);
	unsigned count[11] = {0}, moved = 0, moved_elsewhere = 0, total = 100000, max = 0;

	for (uint64_t k = 0; k < total; k++) {
		size_t a, b;

		ownership_owners(v10, key_of(k), &a, 1);
		ownership_owners(v11, key_of(k), &b, 1);
		count[a]++;
		if (strcmp(v10->members[a].name, v11->members[b].name)) {
			moved++;
			if (strcmp(v11->members[b].name, "node-10"))
				moved_elsewhere++;
		}
	}
	for (int i = 0; i < 10; i++)
		max = count[i] > max ? count[i] : max;
	double ratio = max / (total / 10.0), share = moved / (double)total;

	printf("\n  busiest/mean %.4f, moved %.4f (ideal %.4f)\n", ratio, share, 1.0 / 11);
	CU_ASSERT(ratio <= 1.03);
	/* minimal movement: keys only move to the new node */
	CU_ASSERT_EQUAL(moved_elsewhere, 0);
	CU_ASSERT(share > (1.0 / 11) * 0.95 && share < (1.0 / 11) * 1.05);
	ownership_view_free(v10);
	ownership_view_free(v11);
}

static void test_weights(void)
{
	double w[4] = {1, 1, 2, 1};
	struct ownership_view *v = mkview(4, "w", w);
	unsigned count[4] = {0};

	CU_ASSERT(v->weighted);
	for (uint64_t k = 0; k < 100000; k++) {
		size_t o;

		ownership_owners(v, key_of(k), &o, 1);
		count[o]++;
	}
	/* weight 2 owns twice the keys of weight 1 (2/5 vs 1/5) */
	CU_ASSERT(count[2] > 38000 && count[2] < 42000);
	CU_ASSERT(count[0] > 18500 && count[0] < 21500);
	ownership_view_free(v);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("cluster_ownership", NULL, NULL);
	CU_add_test(s, "determinism", test_determinism);
	CU_add_test(s, "balance_and_movement", test_balance_and_movement);
	CU_add_test(s, "weights", test_weights);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
