/* sd_groups (target groups by source) and sd_refresh (refresh runner)
 * through the mock host. The model is Prometheus' discovery manager
 * (discovery/targetgroup/targetgroup.go, discovery/refresh/refresh.go) and
 * Alloy's target merge (internal/component/discovery/target.go). */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <starling/sd.h>
#include "mock_host.h"

#define T(...)                                                                                     \
	{                                                                                          \
		.labels = (const struct starling_label[]){__VA_ARGS__},                            \
		.n_labels = sizeof((const struct starling_label[]){__VA_ARGS__}) /                 \
			    sizeof(struct starling_label)                                          \
	}

struct listing {
	char lines[16][256];
	size_t n;
};

static void emit(void *ctx, const struct starling_target_info *t)
{
	struct listing *l = ctx;
	size_t off = 0;

	for (size_t i = 0; i < t->n_labels && l->n < 16; i++)
		off += (size_t)snprintf(l->lines[l->n] + off, sizeof(l->lines[0]) - off, "%s%s=%s",
					i ? " " : "", t->labels[i].name, t->labels[i].value);
	l->n++;
}

/* Group labels merge under each target (the target's own label wins),
 * labels come out sorted, an identical group is no change, an empty group
 * deletes its source. */
static void test_groups(void)
{
	struct starling_sd_groups *g = starling_sd_groups_new();
	struct starling_label gl[] = {{"job", "grp"}, {"env", "prod"}};
	struct starling_target a[] = {T({"__address__", "a:1"}, {"job", "own"}),
				      T({"__address__", "b:1"})};
	struct starling_target c[] = {T({"__address__", "c:1"})};
	const char *keep[] = {"s2"};
	struct listing l = {0};
	uint64_t gen;

	CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s2", gl, 2, a, 2), 1);
	CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s1", NULL, 0, c, 1), 1);
	gen = starling_sd_groups_generation(g);
	CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s2", gl, 2, a, 2), 0);
	CU_ASSERT_EQUAL(starling_sd_groups_generation(g), gen);
	CU_ASSERT_EQUAL(starling_sd_groups_count(g), 3);
	starling_sd_groups_list(g, emit, &l);
	CU_ASSERT_EQUAL_FATAL(l.n, 3);
	/* sources in order: s1 then s2 */
	CU_ASSERT_STRING_EQUAL(l.lines[0], "__address__=c:1");
	CU_ASSERT_STRING_EQUAL(l.lines[1], "__address__=a:1 env=prod job=own");
	CU_ASSERT_STRING_EQUAL(l.lines[2], "__address__=b:1 env=prod job=grp");
	CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s9", NULL, 0, NULL, 0), 0);
	CU_ASSERT_EQUAL(starling_sd_groups_retain(g, keep, 1), 1);
	CU_ASSERT_EQUAL(starling_sd_groups_count(g), 2);
	CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s2", NULL, 0, NULL, 0), 1);
	CU_ASSERT_EQUAL(starling_sd_groups_count(g), 0);
	{
		struct starling_target bad[] = {T({"", "x"})};

		CU_ASSERT_EQUAL(starling_sd_groups_set(g, "s3", NULL, 0, bad, 1), -EINVAL);
	}
	starling_sd_groups_free(g);
}

struct fake {
	int ret;
	int calls;
	const char *addr; /* NULL: no targets */
};

static int fake_refresh(void *arg, struct starling_sd_groups *g, char *err, size_t errlen)
{
	struct fake *f = arg;
	struct starling_label l = {"__address__", f->addr};
	struct starling_target t = {&l, 1};

	f->calls++;
	if (f->ret) {
		snprintf(err, errlen, "lookup failed for x");
		return f->ret;
	}
	starling_sd_groups_set(g, "src", NULL, 0, &t, f->addr ? 1 : 0);
	return 0;
}

static void tick(struct mock_host *m, int64_t ms)
{
	mock_host_advance(m, ms);
	mock_host_wait_work(m);
}

/* The first refresh publishes even an empty set (Alloy sends once at start);
 * an unchanged set is not sent again; a failure keeps the set, is logged
 * ("Unable to refresh target groups") and makes the component unhealthy
 * until the next success. */
static void test_refresh(void)
{
	char err[256];
	struct mock_host *m = mock_host_new("discovery.t.x", NULL, "", err, sizeof(err));
	struct starling_sd_groups *g = starling_sd_groups_new();
	struct fake f = {0};
	struct starling_sd_refresh *r;
	const struct starling_target_set *set;
	const char *msg;
	uint64_t runs, fails;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mock_host_set_quiet(m, true);
	r = starling_sd_refresh_new(mock_host_api(m), mock_host_self(m), g, 1000, fake_refresh, &f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(starling_sd_refresh_start(r), 0);
	tick(m, 0);
	CU_ASSERT_EQUAL(f.calls, 1);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(m), 1);
	set = mock_host_last_targets(m);
	CU_ASSERT_TRUE(set && set->n_targets == 0);
	CU_ASSERT_TRUE(mock_host_healthy(m, &msg));

	tick(m, 1000); /* same (empty) answer: nothing sent */
	CU_ASSERT_EQUAL(f.calls, 2);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(m), 1);

	f.addr = "h:80";
	tick(m, 1000);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(m), 2);
	set = mock_host_last_targets(m);
	CU_ASSERT_TRUE_FATAL(set && set->n_targets == 1);
	CU_ASSERT_STRING_EQUAL(mock_target_label(&set->targets[0], "__address__"), "h:80");
	CU_ASSERT_EQUAL(mock_host_metric(m, "starling_discovery_targets", NULL), 1);

	f.ret = -EHOSTUNREACH;
	tick(m, 1000);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(m), 2);
	CU_ASSERT_FALSE(mock_host_healthy(m, &msg));
	CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "lookup failed for x"));
	CU_ASSERT_EQUAL(
	    mock_host_log_count(m, STARLING_LOG_ERROR, "Unable to refresh target groups"), 1);
	CU_ASSERT_EQUAL(starling_sd_groups_count(g), 1);

	f.ret = 0;
	tick(m, 1000);
	CU_ASSERT_TRUE(mock_host_healthy(m, &msg));
	starling_sd_refresh_stats(r, &runs, &fails);
	CU_ASSERT_EQUAL(runs, 5);
	CU_ASSERT_EQUAL(fails, 1);
	CU_ASSERT_EQUAL(mock_host_metric(m, "prometheus_sd_refresh_duration_seconds_count", NULL),
			5);

	starling_sd_refresh_stop(r);
	tick(m, 5000);
	CU_ASSERT_EQUAL(f.calls, 5);
	starling_sd_refresh_free(r);
	starling_sd_groups_free(g);
	mock_host_free(m);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("sd", NULL, NULL);
	CU_add_test(s, "groups_by_source", test_groups);
	CU_add_test(s, "refresh_runner", test_refresh);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
