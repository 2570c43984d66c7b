/* Duration, size, int/bool and address parsing. */
#include <errno.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "units.h"

static int64_t dur(const char *s)
{
	int64_t v = -12345;

	CU_ASSERT_EQUAL_FATAL(parse_duration_ms(s, &v), 0);
	return v;
}

static void test_durations(void)
{
	int64_t v;

	CU_ASSERT_EQUAL(dur("15s"), 15000);
	CU_ASSERT_EQUAL(dur("1m30s"), 90000);
	CU_ASSERT_EQUAL(dur("250ms"), 250);
	CU_ASSERT_EQUAL(dur("1h"), 3600000);
	CU_ASSERT_EQUAL(dur("2d"), 172800000);
	CU_ASSERT_EQUAL(dur("1w"), 604800000);
	CU_ASSERT_EQUAL(dur("1h2m3s4ms"), 3723004);
	CU_ASSERT_EQUAL(dur("0"), 0);
	CU_ASSERT_EQUAL(dur("0s"), 0);
	CU_ASSERT_EQUAL(parse_duration_ms("", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("15", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("15x", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("s", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("-1s", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("1.5s", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms(" 1s", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("1s ", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_duration_ms("99999999999999999999s", &v), -ERANGE);
	CU_ASSERT_EQUAL(parse_duration_ms("9999999999999y", &v), -ERANGE);
	CU_ASSERT_EQUAL(parse_duration_ms(NULL, &v), -EINVAL);
}

static int64_t bytes(const char *s)
{
	int64_t v = -12345;

	CU_ASSERT_EQUAL_FATAL(parse_bytes(s, &v), 0);
	return v;
}

static void test_bytes(void)
{
	int64_t v;

	CU_ASSERT_EQUAL(bytes("100"), 100);
	CU_ASSERT_EQUAL(bytes("100B"), 100);
	CU_ASSERT_EQUAL(bytes("512KB"), 512000);
	CU_ASSERT_EQUAL(bytes("512kB"), 512000);
	CU_ASSERT_EQUAL(bytes("10MiB"), 10485760);
	CU_ASSERT_EQUAL(bytes("1.5GiB"), 1610612736);
	CU_ASSERT_EQUAL(bytes("2Ki"), 2048);
	CU_ASSERT_EQUAL(bytes("1TB"), INT64_C(1000000000000));
	CU_ASSERT_EQUAL(parse_bytes("12QB", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_bytes("-1", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_bytes("", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_bytes("MiB", &v), -EINVAL);
	CU_ASSERT_EQUAL(parse_bytes("1e30TiB", &v), -ERANGE);
}

static void test_scalars(void)
{
	int64_t i;
	double d;
	bool b;

	CU_ASSERT_EQUAL(parse_int64("42", &i), 0);
	CU_ASSERT_EQUAL(i, 42);
	CU_ASSERT_EQUAL(parse_int64("0x10", &i), 0);
	CU_ASSERT_EQUAL(i, 16);
	CU_ASSERT_EQUAL(parse_int64("4x", &i), -EINVAL);
	CU_ASSERT_EQUAL(parse_int64("99999999999999999999", &i), -ERANGE);
	CU_ASSERT_EQUAL(parse_double("1.5", &d), 0);
	CU_ASSERT_DOUBLE_EQUAL(d, 1.5, 1e-12);
	CU_ASSERT_EQUAL(parse_double("1.5x", &d), -EINVAL);
	CU_ASSERT_EQUAL(parse_bool("true", &b), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(parse_bool("off", &b), 0);
	CU_ASSERT_FALSE(b);
	CU_ASSERT_EQUAL(parse_bool("maybe", &b), -EINVAL);
}

static void test_hostport(void)
{
	char host[64];
	unsigned port;

	CU_ASSERT_EQUAL(parse_hostport("127.0.0.1:12345", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 12345);
	CU_ASSERT_EQUAL(parse_hostport("[::1]:80", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_EQUAL(parse_hostport(":7946", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "");
	CU_ASSERT_EQUAL(parse_hostport("localhost", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(parse_hostport("a:70000", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(parse_hostport("a:", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(parse_hostport("::1:80", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(parse_hostport("a:-1", host, sizeof(host), &port), -EINVAL);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("host_units", NULL, NULL);
	CU_add_test(s, "durations", test_durations);
	CU_add_test(s, "bytes", test_bytes);
	CU_add_test(s, "scalars", test_scalars);
	CU_add_test(s, "hostport", test_hostport);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
