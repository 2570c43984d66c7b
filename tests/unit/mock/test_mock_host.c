/* Self-test of the mock host: config defaults, timers, metrics, forwards. */
#include <CUnit/Basic.h>
#include <errno.h>
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

static int got_recv;
static const char *got_source;

static int recv_targets(void *inst, const char *source, const struct starling_target_set *set)
{
	got_recv += (int)set->n_targets + 100 * (inst != NULL);
	got_source = source;
	return 0;
}

static void chained(void *arg, const char *source, const struct starling_target_set *set)
{
	*(size_t *)arg = set->n_targets;
	got_source = source;
}

static void test_targets(void)
{
	char err[256];
	struct mock_host *m = mock_host_new("discovery.file.x", NULL, "", err, sizeof(err));
	const struct starling_host_api *api = mock_host_api(m);
	struct mock_targets *mt = mock_targets_new();
	struct starling_label bad_l[] = {{"job", "a"}, {"__address__", "h:1"}};
	struct starling_target bad_t = {bad_l, 2};
	struct starling_target_set bad = {&bad_t, 1};
	const struct starling_target_set *last;
	struct starling_component_type type = {.receive_targets = recv_targets};
	struct starling_label ml[] = {{"url", "http://a/,b"}, {"k", "v"}};
	size_t chained_n = 0;
	int inst;

	CU_ASSERT_PTR_NULL(mock_host_last_targets(m));
	mock_targets_add(mt, "job=node", "__address__=127.0.0.1:9100", NULL);
	mock_targets_add(mt, "__address__=b:2", "__address__=b:3", NULL);
	CU_ASSERT_EQUAL(mock_targets_set(mt)->n_targets, 2);
	CU_ASSERT_STRING_EQUAL(mock_targets_set(mt)->targets[0].labels[0].name, "__address__");
	CU_ASSERT_EQUAL(mock_targets_set(mt)->targets[1].n_labels, 1);
	CU_ASSERT_STRING_EQUAL(mock_target_label(&mock_targets_set(mt)->targets[1], "__address__"),
			       "b:3");
	mock_host_set_targets_receiver(m, chained, &chained_n);
	CU_ASSERT_EQUAL(api->forward_targets(mock_host_self(m), mock_targets_set(mt)), 0);
	CU_ASSERT_EQUAL(chained_n, 2);
	CU_ASSERT_STRING_EQUAL(got_source, "discovery.file.x");
	/* unsorted labels are refused and do not replace the latest set */
	CU_ASSERT_EQUAL(api->forward_targets(mock_host_self(m), &bad), -EINVAL);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(m), 1);
	last = mock_host_last_targets(m);
	CU_ASSERT_FATAL(last != NULL);
	CU_ASSERT_EQUAL(last->n_targets, 2);
	CU_ASSERT_STRING_EQUAL(mock_target_label(&last->targets[0], "job"), "node");
	CU_ASSERT_PTR_NULL(mock_target_label(&last->targets[0], "nope"));

	CU_ASSERT_EQUAL(mock_host_deliver_targets(&type, &inst, "a.b", mock_targets_set(mt)), 0);
	CU_ASSERT_EQUAL(got_recv, 102);
	CU_ASSERT_STRING_EQUAL(got_source, "a.b");
	CU_ASSERT_EQUAL(mock_host_deliver_targets(&type, &inst, "a.b", NULL), 0);
	CU_ASSERT_EQUAL(got_recv, 202);
	type.receive_targets = NULL;
	CU_ASSERT_EQUAL(mock_host_deliver_targets(&type, &inst, "a.b", NULL), -EOPNOTSUPP);
	mock_targets_free(mt);

	/* label arrays: a comma in a value is fine; found like the string form */
	CU_ASSERT_PTR_NOT_NULL(
	    api->metric_register_labels(mock_host_self(m), STARLING_SELF_GAUGE, "g", "h", ml, 2));
	CU_ASSERT_DOUBLE_EQUAL(mock_host_metric(m, "g", "url=http://a/,b,k=v"), 0, 1e-9);
	ml[1].name = "component_id";
	CU_ASSERT_PTR_NULL(
	    api->metric_register_labels(mock_host_self(m), STARLING_SELF_GAUGE, "g", "h", ml, 2));
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
	CU_add_test(s, "targets", test_targets);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
