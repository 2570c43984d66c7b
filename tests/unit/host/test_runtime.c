/*
 * Runtime with in-process fake component types: start/stop order, forwarding
 * fan-out, timers, reload by difference (keep, update, re-create, remove,
 * add), failure + back-off retry, debounced cluster callbacks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "rt_fixture.h"
#include "mock_wait.h"
#include "runtime.h"

/* Simulated work inside a fake callback (widens overlaps); tests never wait
 * with it: they wait on conditions (mock_wait.h) or step the clock. */
static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- fake types --------------------------------------------------------- */

struct fake {
	const struct starling_host_api *api;
	starling_component *self;
	const char *id;
	int64_t period;
	bool fail_start;
	int received;
	uint64_t epochs;
	starling_timer *timer;
};

static int fake_create(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, void **out)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->api = api;
	f->self = self;
	f->id = api->component_id(self);
	api->config_duration_ms(cfg, "period", &f->period);
	api->config_bool(cfg, "fail_start", &f->fail_start);
	note("create:%s", f->id);
	{
		const char *why = NULL;

		/* A refusal in the plugin's own words, at a node of its config. */
		if (!api->config_string(cfg, "fail_create", &why) && why && *why) {
			api->log(self, STARLING_LOG_ERROR, "%s: fail_create: %s",
				 api->config_where(api->config_lookup(cfg, "fail_create")), why);
			free(f);
			return -EINVAL;
		}
	}
	*out = f;
	return 0;
}

static void on_tick(void *arg)
{
	struct fake *f = arg;
	struct starling_label l[] = {{"__name__", "x"}};
	double v = 1;
	int64_t ts = 1;
	struct starling_series s = {
	    .labels = l, .n_labels = 1, .values = &v, .timestamps_ms = &ts, .n_samples = 1};
	struct starling_series_batch b = {.series = &s, .n_series = 1};

	f->api->forward_series(f->self, &b);
}

static void on_view(void *arg, uint64_t epoch)
{
	struct fake *f = arg;

	f->epochs++;
	note("view:%s", f->id);
}

static int fake_start(void *inst)
{
	struct fake *f = inst;

	note("start:%s", f->id);
	if (f->fail_start) {
		f->api->log(f->self, STARLING_LOG_ERROR, "cannot bind 127.0.0.1:1: test");
		return -EIO;
	}
	if (f->period > 0)
		f->timer = f->api->timer_start(f->self, 0, f->period, on_tick, f);
	f->api->cluster_subscribe(f->self, on_view, f);
	return 0;
}

static int fake_stop(void *inst)
{
	struct fake *f = inst;

	/* Cancelling from stop() is allowed after the host's auto-cancel. */
	if (f->timer)
		f->api->timer_cancel(f->self, f->timer);
	f->timer = NULL;
	note("stop:%s", f->id);
	return 0;
}

static void fake_destroy(void *inst)
{
	struct fake *f = inst;

	note("destroy:%s", f->id);
	free(f);
}

static int fake_receive(void *inst, const struct starling_series_batch *b)
{
	struct fake *f = inst;

	__atomic_add_fetch(&f->received, 1, __ATOMIC_RELAXED);
	return 0;
}

static int fake_update(void *inst, const starling_config *cfg)
{
	struct fake *f = inst;

	note("update:%s", f->id);
	return 0;
}

static const struct starling_config_key src_schema[] = {
    {.name = "period", .type = STARLING_CFG_DURATION, .default_value = "0"},
    {.name = "fail_start", .type = STARLING_CFG_BOOL, .default_value = "false"},
    {.name = "fail_create", .type = STARLING_CFG_STRING},
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_SERIES},
    {0},
};

static const struct starling_config_key sink_schema[] = {
    {.name = "tag", .type = STARLING_CFG_STRING, .default_value = ""},
    {0},
};

static const struct starling_component_type src_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.src",
    .schema = src_schema,
    .create = fake_create,
    .start = fake_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
};

static const struct starling_component_type sink_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.sink",
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = sink_schema,
    .create = fake_create,
    .update = fake_update,
    .start = fake_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
    .receive_series = fake_receive,
};

/* A reentrant sink: receives may overlap each other, never update/stop. */
static int r_concurrent, r_max_concurrent, r_updating, r_violations, r_received;

static int rsink_receive(void *inst, const struct starling_series_batch *b)
{
	int now = __atomic_add_fetch(&r_concurrent, 1, __ATOMIC_SEQ_CST);
	int max = __atomic_load_n(&r_max_concurrent, __ATOMIC_SEQ_CST);

	while (now > max && !__atomic_compare_exchange_n(&r_max_concurrent, &max, now, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	if (__atomic_load_n(&r_updating, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&r_violations, 1, __ATOMIC_SEQ_CST);
	sleep_ms(2);
	if (__atomic_load_n(&r_updating, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&r_violations, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r_received, 1, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&r_concurrent, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int rsink_update(void *inst, const starling_config *cfg)
{
	__atomic_store_n(&r_updating, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r_concurrent, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&r_violations, 1, __ATOMIC_SEQ_CST);
	sleep_ms(5);
	__atomic_store_n(&r_updating, 0, __ATOMIC_SEQ_CST);
	return 0;
}

static const struct starling_component_type rsink_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.rsink",
    .flags = STARLING_TYPE_REENTRANT_RECEIVE,
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = sink_schema,
    .create = fake_create,
    .update = rsink_update,
    .start = fake_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
    .receive_series = rsink_receive,
};

/* A sink whose receive fails while fsink_fail is set. */
static int fsink_fail;

static int fsink_receive(void *inst, const struct starling_series_batch *b)
{
	return __atomic_load_n(&fsink_fail, __ATOMIC_SEQ_CST) ? -EIO : 0;
}

static const struct starling_component_type fsink_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.fsink",
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = sink_schema,
    .create = fake_create,
    .start = fake_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
    .receive_series = fsink_receive,
};

static const struct starling_component_type *const all_types[] = {&src_type, &sink_type,
								  &rsink_type, &fsink_type};
static const struct type_set types = {.types = all_types, .n = 4};

static struct cfg_doc *doc_from(const char *text)
{
	return rt_doc_from(text, &types);
}

static char state_dir[] = "/tmp/starling-rt-XXXXXX";

static const char *components_json(struct runtime *rt, char *buf, size_t len)
{
	char *j = runtime_components_json(rt);

	snprintf(buf, len, "%s", j ? j : "");
	free(j);
	return buf;
}

/* The runtime's /metrics text contains needle. */
static bool metrics_have(struct runtime *rt, const char *needle)
{
	char *m = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&m, &len);
	bool r;

	runtime_write_metrics(rt, f);
	fclose(f);
	r = m && strstr(m, needle);
	free(m);
	return r;
}

/* ---- tests -------------------------------------------------------------- */

static void test_order_forward_reload(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d1, *d2, *d3;
	char buf[4096];

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	journal_reset();
	d1 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"p\"; period = \"10ms\";\n"
		      "   forward_to = [ \"t.sink.a\", \"t.sink.b\" ]; },\n"
		      " { type = \"t.sink\"; name = \"a\"; },\n"
		      " { type = \"t.sink\"; name = \"b\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d1), 0);
	/* Receivers start before the producer. */
	CU_ASSERT_TRUE(journal_pos("start:t.sink.a") >= 0);
	CU_ASSERT_TRUE(journal_pos("start:t.sink.a") < journal_pos("start:t.src.p"));
	CU_ASSERT_TRUE(journal_pos("start:t.sink.b") < journal_pos("start:t.src.p"));
	/* Fan-out: both sinks received the producer's batches. */
	MOCK_WAIT_UNTIL(
	    metrics_have(rt, "component_id=\"t.sink.a\",callback=\"receive_series\"") &&
		metrics_have(rt, "component_id=\"t.sink.b\",callback=\"receive_series\""),
	    30000);
	{
		char *m = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&m, &len);

		runtime_write_metrics(rt, f);
		fclose(f);
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(m, "starling_component_callback_calls_total{component_id="
			      "\"t.sink.a\",callback=\"receive_series\"}"));
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(m, "starling_component_callback_calls_total{component_id="
			      "\"t.sink.b\",callback=\"receive_series\"}"));
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(m, "starling_component_callback_calls_total{component_id="
			      "\"t.src.p\",callback=\"timer\"}"));
		free(m);
	}
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(components_json(rt, buf, sizeof(buf)),
		   "\"id\":\"t.src.p\",\"type\":\"t.src\",\"health\":\"healthy\""));

	/* Reload: sink a changed (update), sink b removed, p changed (no update:
	 * re-created), c added. */
	journal_reset();
	d2 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"p\"; period = \"20ms\";\n"
		      "   forward_to = [ \"t.sink.a\", \"t.sink.c\" ]; },\n"
		      " { type = \"t.sink\"; name = \"a\"; tag = \"new\"; },\n"
		      " { type = \"t.sink\"; name = \"c\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d2), 0);
	CU_ASSERT_TRUE(journal_has("update:t.sink.a"));
	/* Its new config was checked by a create() + destroy() first; the
	 * running instance was updated, never stopped. */
	CU_ASSERT_TRUE(journal_pos("create:t.sink.a") < journal_pos("update:t.sink.a"));
	CU_ASSERT_FALSE(journal_has("stop:t.sink.a"));
	CU_ASSERT_TRUE(journal_has("stop:t.sink.b"));
	CU_ASSERT_TRUE(journal_has("destroy:t.sink.b"));
	CU_ASSERT_TRUE(journal_has("stop:t.src.p"));
	CU_ASSERT_TRUE(journal_has("create:t.src.p"));
	CU_ASSERT_TRUE(journal_has("create:t.sink.c"));
	CU_ASSERT_TRUE(journal_pos("start:t.sink.c") < journal_pos("start:t.src.p"));
	components_json(rt, buf, sizeof(buf));
	CU_ASSERT_PTR_NULL(strstr(buf, "t.sink.b"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"forward_to\":[\"t.sink.a\",\"t.sink.c\"]"));

	/* Same config again: nothing happens. */
	journal_reset();
	d3 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"p\"; period = \"20ms\";\n"
		      "   forward_to = [ \"t.sink.a\", \"t.sink.c\" ]; },\n"
		      " { type = \"t.sink\"; name = \"a\"; tag = \"new\"; },\n"
		      " { type = \"t.sink\"; name = \"c\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d3), 0);
	CU_ASSERT_TRUE(journal_empty());

	/* Shutdown: producer stops before its receivers. */
	journal_reset();
	runtime_shutdown(rt);
	CU_ASSERT_TRUE(journal_pos("stop:t.src.p") >= 0);
	CU_ASSERT_TRUE(journal_pos("stop:t.src.p") < journal_pos("stop:t.sink.a"));
	CU_ASSERT_TRUE(journal_pos("stop:t.src.p") < journal_pos("stop:t.sink.c"));
	runtime_destroy(rt);
	cfg_doc_unref(d1);
	cfg_doc_unref(d2);
	cfg_doc_unref(d3);
	cluster_destroy(cl);
}

static void test_failure_and_retry(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d;
	char buf[4096];

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	journal_reset();
	d = doc_from(
	    "components = ( { type = \"t.src\"; name = \"bad\"; fail_start = true; } );\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d), 0);
	components_json(rt, buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"health\":\"failed\""));
	/* The reason in the plugin's own words, not only errno's. */
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(buf, "start failed: cannot bind 127.0.0.1:1: test (retry in 1s)"));
	/* Start failed: destroyed, not stopped. */
	CU_ASSERT_TRUE(journal_has("destroy:t.src.bad"));
	CU_ASSERT_FALSE(journal_has("stop:t.src.bad"));
	/* Before the 1 s back-off nothing is retried; after it, it is. */
	journal_reset();
	runtime_tick(rt);
	CU_ASSERT_FALSE(journal_has("create:t.src.bad"));
	runtime_clock_step(rt, 1100);
	runtime_tick(rt);
	CU_ASSERT_TRUE(journal_has("create:t.src.bad"));
	/* Second failure doubles the back-off (2 s): not retried after 1.1 s. */
	journal_reset();
	runtime_clock_step(rt, 1100);
	runtime_tick(rt);
	CU_ASSERT_FALSE(journal_has("create:t.src.bad"));
	runtime_destroy(rt);
	cfg_doc_unref(d);
	cluster_destroy(cl);
}

/* A reload whose new or changed instance fails create() changes nothing:
 * the running instances are neither stopped nor updated, the error is
 * "FILE:LINE: key.path: message" in the plugin's words, and the dry run
 * (check-config) reports the same line. */
static void test_refused_apply(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL, *vr = NULL;
	struct cfg_errors errs = {0};
	struct cfg_doc *d1, *d2;
	char buf[4096];

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	d1 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"p\"; forward_to = [ \"t.sink.a\" ]; },\n"
		      " { type = \"t.sink\"; name = \"a\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply_checked(rt, d1, &errs), 0);
	CU_ASSERT_EQUAL(errs.n, 0);
	journal_reset();
	d2 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"p\"; period = \"1h\";\n"
		      "   forward_to = [ \"t.sink.a\" ]; },\n"
		      " { type = \"t.sink\"; name = \"a\"; tag = \"x\"; },\n"
		      " { type = \"t.src\"; name = \"q\";\n"
		      "   fail_create = \"lookaround is not supported\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply_checked(rt, d2, &errs), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], "test:6: components.[2].fail_create: fail_create: "
					     "lookaround is not supported");
	cfg_errors_free(&errs);
	/* Nothing running was stopped or updated; the checks were destroyed. */
	CU_ASSERT_FALSE(journal_has("stop:"));
	CU_ASSERT_FALSE(journal_has("update:"));
	CU_ASSERT_FALSE(journal_has("start:"));
	CU_ASSERT_TRUE(journal_has("destroy:t.src.p"));
	components_json(rt, buf, sizeof(buf));
	CU_ASSERT_PTR_NULL(strstr(buf, "t.src.q"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(buf, "\"id\":\"t.src.p\",\"type\":\"t.src\",\"health\":\"healthy\""));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(buf, "\"id\":\"t.sink.a\",\"type\":\"t.sink\",\"health\":\"healthy\""));

	/* check-config's dry run: the same line, nothing started. */
	CU_ASSERT_EQUAL_FATAL(runtime_create_validator(&vr, "/nonexistent/state"), 0);
	journal_reset();
	CU_ASSERT_EQUAL(runtime_validate(vr, d2, &errs), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], "test:6: components.[2].fail_create: fail_create: "
					     "lookaround is not supported");
	CU_ASSERT_FALSE(journal_has("start:"));
	CU_ASSERT_TRUE(journal_has("destroy:t.sink.a"));
	cfg_errors_free(&errs);
	runtime_destroy(vr);

	runtime_destroy(rt);
	cfg_doc_unref(d1);
	cfg_doc_unref(d2);
	cluster_destroy(cl);
}

static int count_views(void)
{
	return journal_count("view:t.sink.s");
}

static void test_cluster_debounce(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d;

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	d = doc_from("components = ( { type = \"t.sink\"; name = \"s\"; } );\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d), 0);
	journal_reset();
	/* Three view changes in a row are delivered as one callback. */
	cluster_set_participant(cl);
	cluster_set_participant(cl);
	cluster_set_participant(cl);
	MOCK_WAIT_UNTIL(count_views() >= 1, 30000);
	CU_ASSERT_EQUAL(count_views(), 1);
	/* A change right after a delivery waits for the 1 s debounce: nothing
	 * 500 ms (of the stepped clock) later, delivered once it passed. */
	cluster_set_participant(cl);
	runtime_clock_step(rt, 500);
	MOCK_WAIT_UNTIL(count_views() >= 2, 100); /* a short look: must not come */
	CU_ASSERT_EQUAL(count_views(), 1);
	runtime_clock_step(rt, 600);
	MOCK_WAIT_UNTIL(count_views() >= 2, 30000);
	CU_ASSERT_EQUAL(count_views(), 2);
	runtime_destroy(rt);
	cfg_doc_unref(d);
	cluster_destroy(cl);
}

static void test_reentrant_receive(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d1, *d2;
	int before;

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 4), 0);
	d1 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"a\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.src\"; name = \"b\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.src\"; name = \"c\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.rsink\"; name = \"r\"; }\n"
		      ");\n");
	d2 = doc_from("components = (\n"
		      " { type = \"t.src\"; name = \"a\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.src\"; name = \"b\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.src\"; name = \"c\"; period = \"1ms\"; forward_to = [ "
		      "\"t.rsink.r\" ]; },\n"
		      " { type = \"t.rsink\"; name = \"r\"; tag = \"changed\"; }\n"
		      ");\n");
	CU_ASSERT_EQUAL(runtime_apply(rt, d1), 0);
	/* Three producers on four workers: receives overlapped. */
	MOCK_WAIT_UNTIL(__atomic_load_n(&r_max_concurrent, __ATOMIC_SEQ_CST) >= 2, 30000);
	CU_ASSERT_TRUE(__atomic_load_n(&r_max_concurrent, __ATOMIC_SEQ_CST) >= 2);
	/* An update while receives are flowing never overlaps one. */
	CU_ASSERT_EQUAL(runtime_apply(rt, d2), 0);
	CU_ASSERT_EQUAL(runtime_apply(rt, d1), 0);
	before = __atomic_load_n(&r_received, __ATOMIC_SEQ_CST);
	MOCK_WAIT_UNTIL(__atomic_load_n(&r_received, __ATOMIC_SEQ_CST) > before, 30000);
	CU_ASSERT_TRUE(__atomic_load_n(&r_received, __ATOMIC_SEQ_CST) > before);
	runtime_destroy(rt);
	CU_ASSERT_EQUAL(__atomic_load_n(&r_violations, __ATOMIC_SEQ_CST), 0);
	cfg_doc_unref(d1);
	cfg_doc_unref(d2);
	cluster_destroy(cl);
}

static void test_receive_failure_health(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d;
	char buf[4096];

	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	d = doc_from("components = (\n"
		     " { type = \"t.src\"; name = \"p\"; period = \"5ms\"; forward_to = [ "
		     "\"t.fsink.f\" ]; },\n"
		     " { type = \"t.fsink\"; name = \"f\"; }\n"
		     ");\n");
	__atomic_store_n(&fsink_fail, 1, __ATOMIC_SEQ_CST);
	CU_ASSERT_EQUAL(runtime_apply(rt, d), 0);
	MOCK_WAIT_UNTIL(
	    strstr(components_json(rt, buf, sizeof(buf)),
		   "\"id\":\"t.fsink.f\",\"type\":\"t.fsink\",\"health\":\"unhealthy\""),
	    30000);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"id\":\"t.fsink.f\",\"type\":\"t.fsink\",\"health\":"
					   "\"unhealthy\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "receive_series failed: Input/output error"));
	/* The daemon and the producer carry on; recovery clears the state. */
	__atomic_store_n(&fsink_fail, 0, __ATOMIC_SEQ_CST);
	MOCK_WAIT_UNTIL(strstr(components_json(rt, buf, sizeof(buf)),
			       "\"id\":\"t.fsink.f\",\"type\":\"t.fsink\",\"health\":\"healthy\""),
			30000);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"id\":\"t.fsink.f\",\"type\":\"t.fsink\",\"health\":"
					   "\"healthy\""));
	runtime_destroy(rt);
	cfg_doc_unref(d);
	cluster_destroy(cl);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (!mkdtemp(state_dir))
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("host_runtime", NULL, NULL);
	CU_add_test(s, "start order, fan-out, reload by difference, stop order",
		    test_order_forward_reload);
	CU_add_test(s, "failing start: unhealthy, retried with back-off", test_failure_and_retry);
	CU_add_test(s, "refused apply changes nothing; dry run says the same", test_refused_apply);
	CU_add_test(s, "cluster callbacks debounced", test_cluster_debounce);
	CU_add_test(s, "reentrant receive: concurrent, never with update", test_reentrant_receive);
	CU_add_test(s, "failing receive: unhealthy, then recovers", test_receive_failure_health);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	rmdir(state_dir);
	return fails ? 1 : 0;
}
