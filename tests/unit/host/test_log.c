/* logfmt output, level filter and rate limiting of repeated messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "log.h"

static char out[8192];

/* Run fn with stderr captured into `out`. */
static void capture(void (*fn)(void))
{
	char path[] = "/tmp/starling-log-XXXXXX";
	int fd = mkstemp(path), saved;
	FILE *f;
	size_t n;

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	f = fopen(path, "r");
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	unlink(path);
}

static void emit_basic(void)
{
	log_set_level(STARLING_LOG_INFO);
	log_msg(STARLING_LOG_INFO, "prometheus.scrape.node", "scraped %d \"targets\"\n", 3);
	log_msg(STARLING_LOG_DEBUG, NULL, "hidden");
	log_msg(STARLING_LOG_ERROR, NULL, "boom");
}

static void test_format_and_level(void)
{
	capture(emit_basic);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " level=info component=\"prometheus.scrape.node\" "
					   "msg=\"scraped 3 \\\"targets\\\"\\n\"\n"));
	CU_ASSERT_EQUAL(strncmp(out, "ts=", 3), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "level=error msg=\"boom\""));
}

static void emit_repeated(void)
{
	for (int i = 0; i < 50; i++)
		log_msg(STARLING_LOG_WARN, "c", "same thing");
	log_msg(STARLING_LOG_WARN, "c", "other thing");
}

static void test_rate_limit(void)
{
	char *p;
	int n = 0;

	capture(emit_repeated);
	for (p = strstr(out, "same thing"); p; p = strstr(p + 1, "same thing"))
		n++;
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "other thing"));
}

static void test_parse_level(void)
{
	enum starling_log_level l;

	CU_ASSERT_EQUAL(log_parse_level("debug", &l), 0);
	CU_ASSERT_EQUAL(l, STARLING_LOG_DEBUG);
	CU_ASSERT_EQUAL(log_parse_level("WARN", &l), 0);
	CU_ASSERT_EQUAL(l, STARLING_LOG_WARN);
	CU_ASSERT_NOT_EQUAL(log_parse_level("loud", &l), 0);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("host_log", NULL, NULL);
	CU_add_test(s, "logfmt and level filter", test_format_and_level);
	CU_add_test(s, "repeated messages rate-limited", test_rate_limit);
	CU_add_test(s, "level names", test_parse_level);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
