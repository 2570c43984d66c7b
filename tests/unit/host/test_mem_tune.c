/* Heap trimming (host/mem_tune.c): the schedule on a stepped clock, and
 * that a trim really gives freed heap pages back (glibc, not under ASan,
 * whose allocator is not glibc's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "mem_tune.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void test_schedule(void)
{
	struct mem_trim t = {0};

	CU_ASSERT_TRUE(mem_trim_due(&t, 5000)); /* the first tick trims */
	CU_ASSERT_FALSE(mem_trim_due(&t, 5001));
	CU_ASSERT_FALSE(mem_trim_due(&t, 5000 + MEM_TRIM_INTERVAL_MS - 1));
	CU_ASSERT_TRUE(mem_trim_due(&t, 5000 + MEM_TRIM_INTERVAL_MS));
	CU_ASSERT_FALSE(mem_trim_due(&t, 5000 + MEM_TRIM_INTERVAL_MS + 1));
	/* a clock that went back does not stop trimming for good */
	CU_ASSERT_TRUE(mem_trim_due(&t, 100));
	CU_ASSERT_FALSE(mem_trim_due(&t, 200));
	/* clock 0 is a time like any other */
	t = (struct mem_trim){0};
	CU_ASSERT_TRUE(mem_trim_due(&t, 0));
	CU_ASSERT_FALSE(mem_trim_due(&t, 1));
	mem_trim_tick(&t, 2);
	CU_ASSERT_EQUAL(t.trims, 0);
	mem_trim_tick(&t, 2 + MEM_TRIM_INTERVAL_MS);
	CU_ASSERT_EQUAL(t.trims, 1);
}

#if defined(__GLIBC__) && !defined(UNDER_ASAN)
static long rss_anon_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#endif

/* 32 MB of small blocks freed below a block still in use: free() cannot
 * shrink the heap past that block, the trim hands the pages back. */
static void test_trim_returns_pages(void)
{
#if defined(__GLIBC__) && !defined(UNDER_ASAN)
	enum { N = 32768, SZ = 1000 };
	char **v = malloc(N * sizeof(*v));
	struct mem_trim t = {0};
	long before, freed, after;
	char *keep;

	CU_ASSERT_FATAL(v != NULL);
	mem_tune_init();
	for (int i = 0; i < N; i++) {
		v[i] = malloc(SZ);
		CU_ASSERT_FATAL(v[i] != NULL);
		memset(v[i], 0x5a, SZ);
	}
	keep = malloc(SZ);
	CU_ASSERT_FATAL(keep != NULL);
	memset(keep, 1, SZ);
	before = rss_anon_kb();
	for (int i = 0; i < N; i++)
		free(v[i]);
	freed = rss_anon_kb();
	mem_trim_tick(&t, 1);
	after = rss_anon_kb();
	printf("\nRssAnon: %ld kB in use, %ld kB after free, %ld kB after the trim\n", before,
	       freed, after);
	CU_ASSERT_EQUAL(t.trims, 1);
	CU_ASSERT(before > 0 && after > 0);
	/* free() alone kept most of it; the trim gave back at least 20 MB */
	CU_ASSERT(freed - after >= 20 * 1024);
	free(keep);
	free(v);
#endif
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("host_mem_tune", NULL, NULL);
	CU_add_test(s, "schedule", test_schedule);
	CU_add_test(s, "trim_returns_pages", test_trim_returns_pages);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
