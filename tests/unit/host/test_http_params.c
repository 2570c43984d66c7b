/* The HTTP API's parameter parsers (host/http_params.c). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <starling/labels.h>

#include "http_params.h"

static void test_key(void)
{
	static const char *const bad[] = {"",
					  "0x",
					  "0X",
					  "-1",
					  "+1",
					  " 1",
					  "1 ",
					  "0x-1",
					  "0x 1",
					  "0xg",
					  "1a",
					  "0x1g",
					  "18446744073709551616",
					  "0x10000000000000000"};
	uint64_t k = 7;

	CU_ASSERT_EQUAL(http_parse_key("0", &k), 0);
	CU_ASSERT_EQUAL(k, 0);
	CU_ASSERT_EQUAL(http_parse_key("18446744073709551615", &k), 0);
	CU_ASSERT_EQUAL(k, UINT64_MAX);
	CU_ASSERT_EQUAL(http_parse_key("0xFFFFffffFFFFffff", &k), 0);
	CU_ASSERT_EQUAL(k, UINT64_MAX);
	CU_ASSERT_EQUAL(http_parse_key("0x0", &k), 0);
	CU_ASSERT_EQUAL(k, 0);
	CU_ASSERT_EQUAL(http_parse_key(NULL, &k), -EINVAL);
	/* "0x" used to answer key 0 */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = 7;
		CU_ASSERT_EQUAL(http_parse_key(bad[i], &k), -EINVAL);
		CU_ASSERT_EQUAL(k, 7);
	}
}

static void test_labels(void)
{
	struct starling_label l[] = {{"instance", "a:1"}, {"job", "j"}};
	uint64_t k = 0;
	char big[64 * 12 + 16];
	size_t n = 0;

	CU_ASSERT_EQUAL(http_labels_key("{\"job\":\"j\",\"instance\":\"a:1\"}", &k), 0);
	CU_ASSERT_EQUAL(k, starling_target_key(l, 2, NULL, 0, NULL, 0));
	CU_ASSERT_EQUAL(http_labels_key("{}", &k), 0);
	CU_ASSERT_EQUAL(http_labels_key("[]", &k), -EINVAL);
	CU_ASSERT_EQUAL(http_labels_key("{\"a\":1}", &k), -EINVAL);
	CU_ASSERT_EQUAL(http_labels_key("{\"a\":", &k), -EINVAL);
	CU_ASSERT_EQUAL(http_labels_key(NULL, &k), -EINVAL);
	/* 65 labels: one too many */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"l%d\":\"v\"", i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "}");
	CU_ASSERT_EQUAL(http_labels_key(big, &k), -EINVAL);
}

static void test_component_path(void)
{
	char id[8];

	CU_ASSERT_EQUAL(http_component_targets_path("a.b.c/targets", id, sizeof(id)), 0);
	CU_ASSERT_STRING_EQUAL(id, "a.b.c");
	CU_ASSERT_EQUAL(http_component_targets_path("/targets", id, sizeof(id)), -ENOENT);
	CU_ASSERT_EQUAL(http_component_targets_path("a.b", id, sizeof(id)), -ENOENT);
	CU_ASSERT_EQUAL(http_component_targets_path("a.b/targets/", id, sizeof(id)), -ENOENT);
	CU_ASSERT_EQUAL(http_component_targets_path("a.b/x", id, sizeof(id)), -ENOENT);
	CU_ASSERT_EQUAL(http_component_targets_path("abcdefgh/targets", id, sizeof(id)), -ENOENT);
}

static void test_reload_csrf(void)
{
	/* allowed: curl -X POST, same origin, JSON, a custom type */
	CU_ASSERT_PTR_NULL(http_reload_refusal(NULL, "127.0.0.1:12345", NULL, NULL));
	CU_ASSERT_PTR_NULL(
	    http_reload_refusal("http://127.0.0.1:12345", "127.0.0.1:12345", "same-origin", NULL));
	CU_ASSERT_PTR_NULL(http_reload_refusal("HTTP://LOCALHOST:1", "localhost:1", NULL, NULL));
	CU_ASSERT_PTR_NULL(http_reload_refusal(NULL, "h", "none", "application/json"));
	CU_ASSERT_PTR_NULL(http_reload_refusal(NULL, "h", NULL, "text/plainx"));
	/* refused: another site, opaque origin, cross-site fetch, form types */
	CU_ASSERT_PTR_NOT_NULL(
	    http_reload_refusal("http://evil.example", "127.0.0.1:1", NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(
	    http_reload_refusal("http://127.0.0.1:2", "127.0.0.1:1", NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal("http://127.0.0.1:1", NULL, NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal("null", "h", NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal("garbage", "h", NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal(NULL, "h", "cross-site", NULL));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal(NULL, "h", "same-site", NULL));
	CU_ASSERT_PTR_NOT_NULL(
	    http_reload_refusal(NULL, "h", NULL, "application/x-www-form-urlencoded"));
	CU_ASSERT_PTR_NOT_NULL(
	    http_reload_refusal(NULL, "h", NULL, "Multipart/Form-Data; boundary=x"));
	CU_ASSERT_PTR_NOT_NULL(http_reload_refusal(NULL, "h", NULL, " text/plain;charset=utf-8"));
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("http_params", NULL, NULL);
	CU_add_test(s, "key=: decimal or 0x-hex, \"0x\" refused", test_key);
	CU_add_test(s, "labels=: JSON object of strings", test_labels);
	CU_add_test(s, "component targets path", test_component_path);
	CU_add_test(s, "/-/reload CSRF check", test_reload_csrf);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
