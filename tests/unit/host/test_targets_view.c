/*
 * The cluster-wide targets view's handling of an owner's answer (untrusted
 * bytes from a peer) and the /targets page rendering: malformed answers are
 * refused, fields of the wrong type ignored, every string HTML-escaped, and
 * the filters keep their values in the form (shareable URLs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "suggest.h"
#include "targets_page.h"
#include "targets_view.h"

static cJSON *local_row(const char *comp, const char *key)
{
	cJSON *r = cJSON_CreateObject(), *l = cJSON_AddObjectToObject(r, "labels");

	cJSON_AddStringToObject(l, "job", "node");
	cJSON_AddStringToObject(l, "instance", "10.0.0.1:9100");
	cJSON_AddStringToObject(r, "component", comp);
	cJSON_AddStringToObject(r, "key", key);
	cJSON_AddStringToObject(r, "owner", "peer-b");
	cJSON_AddBoolToObject(r, "owned_here", false);
	cJSON_AddNumberToObject(r, "last_scrape_ms", 0);
	cJSON_AddNumberToObject(r, "last_duration_seconds", 0);
	cJSON_AddStringToObject(r, "health", "unknown");
	cJSON_AddStringToObject(r, "last_error", "");
	return r;
}

static void test_parse_answer(void)
{
	static const char *const bad[] = {
	    "", "null", "[]", "{\"targets\":{}}", "{\"targets\":[", "{\"x\":1}"};
	cJSON *a = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(targets_view_parse_answer(bad[i], strlen(bad[i]), &a), -EBADMSG);
		CU_ASSERT_PTR_NULL(a);
	}
	CU_ASSERT_EQUAL(targets_view_parse_answer("{\"targets\":[]}", 14, &a), 0);
	cJSON_Delete(a);
}

static void test_fill_row(void)
{
	const char *ans = "{\"targets\":["
			  "{\"component\":\"s\",\"key\":\"0x1\",\"last_scrape_ms\":5000,"
			  "\"last_duration_seconds\":0.25,\"health\":\"down\","
			  "\"last_error\":\"connection refused\"},"
			  "{\"component\":\"s\",\"key\":\"0x2\",\"last_scrape_ms\":\"soon\","
			  "\"health\":[1],\"last_error\":{}}]}";
	cJSON *a = NULL, *r1 = local_row("s", "0x1"), *r2 = local_row("s", "0x2"),
	      *r3 = local_row("s", "0x3");

	CU_ASSERT_EQUAL_FATAL(targets_view_parse_answer(ans, strlen(ans), &a), 0);
	CU_ASSERT_TRUE(targets_view_fill_row(r1, a));
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r1, "health")->valuestring, "down");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r1, "view")->valuestring, "owner");
	CU_ASSERT_EQUAL(cJSON_GetObjectItem(r1, "last_scrape_ms")->valuedouble, 5000);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r1, "last_error")->valuestring,
			       "connection refused");
	/* Wrong types: nothing copied but the string last_scrape_ms. */
	CU_ASSERT_TRUE(targets_view_fill_row(r2, a));
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r2, "health")->valuestring, "unknown");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r2, "last_error")->valuestring, "");
	/* Not listed by the owner. */
	CU_ASSERT_FALSE(targets_view_fill_row(r3, a));
	cJSON_Delete(r1);
	cJSON_Delete(r2);
	cJSON_Delete(r3);
	cJSON_Delete(a);
}

static void test_page_escapes_and_keeps_filters(void)
{
	cJSON *v = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(v, "targets");
	cJSON *r = local_row("prometheus.scrape.a", "0x1"), *n, *nodes, *jobs;
	struct targets_filter f = {.job = "node", .q = "\"><b>", .unhealthy = true};
	char *page;

	cJSON_ReplaceItemInObject(r, "last_error", cJSON_CreateString("<script>alert(1)</script>"));
	cJSON_AddStringToObject(r, "view", "owner");
	cJSON_AddItemToArray(rows, r);
	r = local_row("prometheus.scrape.a", "0x2");
	cJSON_AddStringToObject(r, "view", "no answer");
	cJSON_AddStringToObject(r, "view_error", "timed out");
	cJSON_AddItemToArray(rows, r);
	nodes = cJSON_AddArrayToObject(v, "nodes");
	n = cJSON_CreateObject();
	cJSON_AddStringToObject(n, "name", "peer-b");
	cJSON_AddStringToObject(n, "answer", "timed out");
	cJSON_AddItemToArray(nodes, n);
	jobs = cJSON_AddArrayToObject(v, "jobs");
	cJSON_AddItemToArray(jobs, cJSON_CreateString("node"));
	cJSON_AddNumberToObject(v, "generated_ms", 62000);
	page = targets_page_html(v, &f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(page);
	CU_ASSERT_PTR_NULL(strstr(page, "<script>alert"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	CU_ASSERT_PTR_NULL(strstr(page, "\"><b>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "value=\"&quot;&gt;&lt;b&gt;\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "<option value=\"node\" selected>node</option>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "id=\"f-unhealthy\" checked"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "<td class=\"bad\">no answer</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "no answer: timed out"));
	/* 62 s after a scrape at 0 is "never" (0 = not scraped); links carry
	 * the component as a query value. */
	CU_ASSERT_PTR_NOT_NULL(strstr(page, ">never</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(page, "href=\"/targets?component=prometheus.scrape.a\""));
	free(page);
	cJSON_Delete(v);
}

static void test_suggest(void)
{
	static const char *const k[] = {"scrape_interval", "scrape_timeout", "job_name", NULL};

	CU_ASSERT_STRING_EQUAL(suggest_closest("scrape_intervall", k, 4), "scrape_interval");
	CU_ASSERT_STRING_EQUAL(suggest_closest("scrape-timeout", k, 4), "scrape_timeout");
	CU_ASSERT_STRING_EQUAL(suggest_closest("jbo_name", k, 4), "job_name");
	CU_ASSERT_PTR_NULL(suggest_closest("colour", k, 4));
	CU_ASSERT_PTR_NULL(suggest_closest("job_name", k, 4));
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("host_targets_view", NULL, NULL);
	CU_add_test(s, "owner answers: malformed refused", test_parse_answer);
	CU_add_test(s, "owner answers: fields copied, wrong types ignored", test_fill_row);
	CU_add_test(s, "page: escaped, filters kept, no answer shown",
		    test_page_escapes_and_keeps_filters);
	CU_add_test(s, "did you mean", test_suggest);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
