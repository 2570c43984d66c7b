/* Self-test of the mock host: config defaults, timers, metrics, forwards. */
#include <CUnit/Basic.h>
#include <math.h>
#include <string.h>

#include "mock_host.h"

static const struct starling_config_key inner_keys[] = {
    {"min_backoff", STARLING_CFG_DURATION, false, "30ms", "x"},
    {"capacity", STARLING_CFG_INT, false, "10000", "x"},
    {NULL},
};
static const struct starling_config_key ep_keys[] = {
    {"url", STARLING_CFG_STRING, true, NULL, "x"},
    {"remote_timeout", STARLING_CFG_DURATION, false, "30s", "x"},
    {"queue_config", STARLING_CFG_GROUP, false, NULL, "x", inner_keys},
    {NULL},
};
static const struct starling_config_key keys[] = {
    {"endpoint", STARLING_CFG_GROUP_LIST, true, NULL, "x", ep_keys},
    {"size", STARLING_CFG_BYTES, false, "1GiB", "x"},
    {"flag", STARLING_CFG_BOOL, false, "true", "x"},
    {NULL},
};

static void test_config(void)
{
	char err[256];
	struct mock_host *m = mock_host_new(
	    "t.x", keys,
	    "endpoint = ( { url = \"http://a\"; queue_config = { capacity = 5; }; },\n"
	    "             { url = \"http://b\"; remote_timeout = \"1m30s\"; } );\n"
	    "size = \"10MiB\";",
	    err, sizeof(err));
	const struct starling_host_api *api;
	const starling_config *root, *eps, *e;
	const char *s;
	int64_t v;
	bool b;

	CU_ASSERT_FATAL(m != NULL);
	api = mock_host_api(m);
	root = mock_host_config(m);
	eps = api->config_lookup(root, "endpoint");
	CU_ASSERT_EQUAL(api->config_count(eps), 2);
	e = api->config_child(eps, 1);
	CU_ASSERT_EQUAL(api->config_string(e, "url", &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "http://b");
	CU_ASSERT_EQUAL(api->config_duration_ms(e, "remote_timeout", &v), 0);
	CU_ASSERT_EQUAL(v, 90000);
	/* defaults through a list element and a nested group */
	CU_ASSERT_EQUAL(api->config_duration_ms(e, "queue_config.min_backoff", &v), 0);
	CU_ASSERT_EQUAL(v, 30);
	CU_ASSERT_EQUAL(api->config_int(e, "queue_config.capacity", &v), 0);
	CU_ASSERT_EQUAL(v, 10000);
	e = api->config_child(eps, 0);
	CU_ASSERT_EQUAL(api->config_int(e, "queue_config.capacity", &v), 0);
	CU_ASSERT_EQUAL(v, 5);
	CU_ASSERT_EQUAL(api->config_duration_ms(e, "remote_timeout", &v), 0);
	CU_ASSERT_EQUAL(v, 30000);
	CU_ASSERT_EQUAL(api->config_bytes(root, "size", &v), 0);
	CU_ASSERT_EQUAL(v, 10 * 1048576);
	CU_ASSERT_EQUAL(api->config_bool(root, "flag", &b), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(api->config_string(root, "nope", &s), -ENOENT);
	CU_ASSERT_EQUAL(api->config_int(e, "url", &v), -EINVAL);
	CU_ASSERT_STRING_EQUAL(api->config_where(e), "mock.cfg:1");
	mock_host_free(m);

	CU_ASSERT_PTR_NULL(mock_host_new("t.x", keys, "endpoint = (", err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "mock.cfg:1"));
}

static int ticks;
static void tick(void *arg)
{
	ticks += *(int *)arg;
}

static void test_timers_metrics(void)
{
	char err[256];
	struct mock_host *m = mock_host_new("t.y", NULL, "", err, sizeof(err));
	const struct starling_host_api *api = mock_host_api(m);
	int one = 1;
	starling_metric *c;

	ticks = 0;
	api->timer_start(mock_host_self(m), 1000, 1000, tick, &one);
	mock_host_advance(m, 999);
	CU_ASSERT_EQUAL(ticks, 0);
	mock_host_advance(m, 2001);
	CU_ASSERT_EQUAL(ticks, 3);
	CU_ASSERT_EQUAL(mock_host_fire_timers(m), 1);
	CU_ASSERT_EQUAL(ticks, 4);

	c = api->metric_register(mock_host_self(m), STARLING_SELF_COUNTER, "x_total", "h", "url=a");
	CU_ASSERT_PTR_EQUAL(c, api->metric_register(mock_host_self(m), STARLING_SELF_COUNTER,
						    "x_total", "h", "url=a"));
	api->metric_add(c, 2);
	api->metric_add(c, 3);
	CU_ASSERT_DOUBLE_EQUAL(mock_host_metric(m, "x_total", "url=a"), 5, 1e-9);
	CU_ASSERT_TRUE(isnan(mock_host_metric(m, "y_total", NULL)));
	mock_host_free(m);
}

static void test_forward(void)
{
	char err[256];
	struct mock_host *m = mock_host_new("t.z", NULL, "", err, sizeof(err));
	const struct starling_host_api *api = mock_host_api(m);
	struct starling_label l[] = {{"__name__", "up"}, {"job", "j"}};
	double v[] = {1, 2};
	int64_t t[] = {10, 20};
	struct starling_series s = {l, 2, 7, v, t, 2};
	struct starling_series_batch b = {&s, 1, NULL, 0};
	const struct starling_series_batch *got;

	CU_ASSERT_EQUAL(api->forward_series(mock_host_self(m), &b), 0);
	CU_ASSERT_EQUAL(mock_host_forwarded_samples(m), 2);
	got = mock_host_forwarded_batch(m, 0);
	CU_ASSERT_STRING_EQUAL(got->series[0].labels[1].value, "j");
	CU_ASSERT_EQUAL(got->series[0].timestamps_ms[1], 20);
	mock_host_free(m);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("mock_host", NULL, NULL);
	CU_add_test(s, "config", test_config);
	CU_add_test(s, "timers_metrics", test_timers_metrics);
	CU_add_test(s, "forward", test_forward);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
