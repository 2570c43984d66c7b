/*
 * Unit tests of discovery.file through the mock host: path patterns, JSON
 * and YAML files, __meta_filepath, changes seen through inotify without a
 * restart, a bad file keeping its last good targets (counted, unhealthy
 * until fixed), vanished files, targets without an address, and the
 * refresh_interval fallback when a directory cannot be watched.
 *
 * Upstream: Prometheus discovery/file/file.go (patterns, fsnotify on the
 * directories, read errors keep the previous groups, vanished files drop
 * theirs, __meta_filepath), config/config.go patFileSDName; Alloy
 * internal/component/discovery/file (arguments, defaults).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dfile.h"
#include "mock_host.h"
#include "mock_wait.h"

/* ------------------------------------------------------------------------ */
/* Received sets, rendered as text, waited for with a deadline.             */

static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rx_cv = PTHREAD_COND_INITIALIZER;
static size_t rx_count;
static char rx_text[8192];

static void on_targets(void *arg, const char *source, const struct starling_target_set *set)
{
	size_t o = 0;

	pthread_mutex_lock(&rx_mu);
	rx_text[0] = '\0';
	for (size_t i = 0; i < set->n_targets; i++) {
		const struct starling_target *t = &set->targets[i];

		for (size_t j = 0; j < t->n_labels && o < sizeof(rx_text); j++)
			o += (size_t)snprintf(rx_text + o, sizeof(rx_text) - o, "%s%s=%s",
					      j ? "," : "", t->labels[j].name, t->labels[j].value);
		if (o < sizeof(rx_text))
			o += (size_t)snprintf(rx_text + o, sizeof(rx_text) - o, "\n");
	}
	rx_count++;
	pthread_cond_broadcast(&rx_cv);
	pthread_mutex_unlock(&rx_mu);
}

/* Wait until more than `after` sets arrived and the last one contains
 * `want` (or, if want starts with '!', does not contain it). */
static bool wait_for(size_t after, const char *want)
{
	struct timespec dl;
	bool ok = false;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30; /* generous: returns as soon as the set is there */
	pthread_mutex_lock(&rx_mu);
	for (;;) {
		if (rx_count > after) {
			bool has = strstr(rx_text, want[0] == '!' ? want + 1 : want) != NULL;

			if (has != (want[0] == '!')) {
				ok = true;
				break;
			}
		}
		if (pthread_cond_timedwait(&rx_cv, &rx_mu, &dl) == ETIMEDOUT)
			break;
	}
	if (!ok)
		fprintf(stderr, "timed out waiting for '%s'; last set (%zu):\n%s", want, rx_count,
			rx_text);
	pthread_mutex_unlock(&rx_mu);
	return ok;
}

static size_t rx_now(void)
{
	size_t n;

	pthread_mutex_lock(&rx_mu);
	n = rx_count;
	pthread_mutex_unlock(&rx_mu);
	return n;
}

/* Generous: a passing test returns as soon as its condition holds. */
#define WAIT_MS 30000

/* Wait until a metric has exactly the value want. */
static bool wait_metric_eq(struct mock_host *m, const char *name, double want)
{
	MOCK_WAIT_UNTIL(mock_host_metric(m, name, NULL) == want, WAIT_MS);
	return mock_host_metric(m, name, NULL) == want;
}

/* Wait until a metric of the component reaches min, or an error line
 * containing log_substr was logged (the scan runs on the watcher thread and
 * a failed read publishes nothing). */
static bool metric_or_log(struct mock_host *m, const char *name, double min, const char *log_substr)
{
	return (name && mock_host_metric(m, name, NULL) >= min) ||
	       (log_substr && mock_host_log_count(m, STARLING_LOG_ERROR, log_substr) > 0);
}

static bool wait_metric_or_log(struct mock_host *m, const char *name, double min,
			       const char *log_substr)
{
	MOCK_WAIT_UNTIL(metric_or_log(m, name, min, log_substr), WAIT_MS);
	return metric_or_log(m, name, min, log_substr);
}

static char tmpdir[64];

/* Write a file atomically (temporary name, then rename). */
static void put(const char *name, const char *text)
{
	char path[512], tmp[520];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", tmpdir, name);
	f = fopen(tmp, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	CU_ASSERT_EQUAL(rename(tmp, path), 0);
}

struct fixture {
	struct mock_host *m;
	void *inst;
};

static int fx_start(struct fixture *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fx_start(struct fixture *fx, const char *fmt, ...)
{
	char cfg[1024], err[256];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cfg, sizeof(cfg), fmt, ap);
	va_end(ap);
	fx->m =
	    mock_host_new("discovery.file.t", discovery_file_type.schema, cfg, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx->m);
	mock_host_set_quiet(fx->m, true);
	mock_host_set_targets_receiver(fx->m, on_targets, NULL);
	rc = discovery_file_type.create(mock_host_api(fx->m), mock_host_self(fx->m),
					mock_host_config(fx->m), &fx->inst);
	if (rc)
		return rc;
	return discovery_file_type.start(fx->inst);
}

static void fx_stop(struct fixture *fx)
{
	discovery_file_type.stop(fx->inst);
	discovery_file_type.destroy(fx->inst);
	mock_host_free(fx->m);
}

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dfile-test-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ------------------------------------------------------------------------ */

static void test_patterns(void)
{
	/* config/config.go patFileSDName:
	 * ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
	CU_ASSERT_TRUE(dfile_pattern_ok("a.json"));
	CU_ASSERT_TRUE(dfile_pattern_ok("/etc/sd/*.yml"));
	CU_ASSERT_TRUE(dfile_pattern_ok("sd/node-*.prod.yaml"));
	CU_ASSERT_TRUE(dfile_pattern_ok("/x/*.JSON"));
	CU_ASSERT_TRUE(dfile_pattern_ok("/x/a*.YAML"));
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/*/a.json")); /* '*' not in the last segment */
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/**.json"));  /* two '*' */
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/a.txt"));
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/a.Json")); /* mixed case extension */
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/a.json.bak"));
	CU_ASSERT_FALSE(dfile_pattern_ok("/x/a.*")); /* the extension is fixed */
	CU_ASSERT_FALSE(dfile_pattern_ok("json"));
}

static void test_config_errors(void)
{
	struct mock_host *m;
	void *inst = NULL;
	char err[256];

	m = mock_host_new("discovery.file.t", discovery_file_type.schema,
			  "files = [\"/x/*/a.json\"];", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mock_host_set_quiet(m, true);
	CU_ASSERT_EQUAL(discovery_file_type.create(mock_host_api(m), mock_host_self(m),
						   mock_host_config(m), &inst),
			-EINVAL);
	CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_ERROR, "not valid for file discovery"),
			1);
	mock_host_free(m);

	m = mock_host_new("discovery.file.t", discovery_file_type.schema,
			  "files = [\"/x/a.json\"]; refresh_interval = \"0s\";", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mock_host_set_quiet(m, true);
	CU_ASSERT_EQUAL(discovery_file_type.create(mock_host_api(m), mock_host_self(m),
						   mock_host_config(m), &inst),
			-EINVAL);
	mock_host_free(m);
}

static void test_files_and_changes(void)
{
	struct fixture fx;
	const char *msg = NULL;
	size_t n;

	mk_tmpdir();
	put("a.json", "[{\"targets\": [\"10.0.0.1:9100\", \"10.0.0.2:9100\"], "
		      "\"labels\": {\"env\": \"prod\"}}]");
	put("b.yml", "- targets: ['10.0.0.3:9100']\n  labels: {job: yml}\n");
	put("c.txt", "not matched");
	n = rx_now();
	CU_ASSERT_EQUAL_FATAL(
	    fx_start(&fx, "files = [\"%s/*.json\", \"%s/*.yml\"];", tmpdir, tmpdir), 0);
	/* the first set is published by start() itself */
	CU_ASSERT_TRUE(rx_now() > n);
	CU_ASSERT_TRUE(wait_for(n, "__address__=10.0.0.3:9100"));
	pthread_mutex_lock(&rx_mu);
	{
		char want[1024];

		snprintf(want, sizeof(want),
			 "__address__=10.0.0.1:9100,__meta_filepath=%s/a.json,env=prod\n"
			 "__address__=10.0.0.2:9100,__meta_filepath=%s/a.json,env=prod\n"
			 "__address__=10.0.0.3:9100,__meta_filepath=%s/b.yml,job=yml\n",
			 tmpdir, tmpdir, tmpdir);
		CU_ASSERT_STRING_EQUAL(rx_text, want);
	}
	pthread_mutex_unlock(&rx_mu);
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "starling_discovery_targets", NULL), 3);
	CU_ASSERT_TRUE(mock_host_metric(fx.m, "prometheus_sd_file_mtime_seconds", "a.json") > 0);

	/* a change is seen through inotify, no timer involved */
	n = rx_now();
	put("a.json", "[{\"targets\": [\"10.0.0.9:9100\"]}]");
	CU_ASSERT_TRUE(wait_for(n, "__address__=10.0.0.9:9100"));
	CU_ASSERT_TRUE(wait_for(n, "!10.0.0.1:9100"));

	/* a new file matching a pattern appears */
	n = rx_now();
	put("d.json", "[{\"targets\": [\"10.0.0.4:9100\"]}]");
	CU_ASSERT_TRUE(wait_for(n, "__address__=10.0.0.4:9100"));

	/* a bad file keeps its last good targets, counted and unhealthy */
	n = rx_now();
	put("a.json", "[{\"targets\": [\"10.0.0.9:9100\"]},\n {\"targets\": [1]}]");
	CU_ASSERT_TRUE(wait_metric_or_log(fx.m, "prometheus_sd_file_read_errors_total", 1, NULL));
	/* the error is counted while the file is read, the health is set after
	 * the scan publishes: wait for it rather than race it */
	MOCK_WAIT_UNTIL(!mock_host_healthy(fx.m, NULL), 30000);
	CU_ASSERT_FALSE(mock_host_healthy(fx.m, &msg));
	CU_ASSERT_PTR_NOT_NULL(msg ? strstr(msg, "a.json") : NULL);
	CU_ASSERT_EQUAL(mock_host_log_count(fx.m, STARLING_LOG_ERROR, "a.json: group 1"), 1);
	pthread_mutex_lock(&rx_mu);
	CU_ASSERT_PTR_NOT_NULL(strstr(rx_text, "10.0.0.9:9100"));
	pthread_mutex_unlock(&rx_mu);

	/* a YAML syntax error names file:line */
	put("b.yml", "- targets: ['10.0.0.3:9100']\n  labels: {job: yml\n");
	CU_ASSERT_TRUE(wait_for(0, "10.0.0.3:9100"));
	CU_ASSERT_TRUE(wait_metric_or_log(fx.m, NULL, 0, "b.yml:"));
	CU_ASSERT_EQUAL(mock_host_log_count(fx.m, STARLING_LOG_ERROR, "b.yml:3:"), 1);

	/* fixed again: healthy, new targets */
	n = rx_now();
	put("a.json", "[{\"targets\": [\"10.0.0.7:9100\", \"\"]}]");
	put("b.yml", "[]\n");
	CU_ASSERT_TRUE(wait_for(n, "10.0.0.7:9100"));
	CU_ASSERT_TRUE(wait_for(n, "!10.0.0.3:9100"));
	MOCK_WAIT_UNTIL(mock_host_healthy(fx.m, NULL), 30000); /* set after the publish */
	CU_ASSERT_TRUE(mock_host_healthy(fx.m, &msg));
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "starling_discovery_targets_dropped_total", NULL),
			1);

	/* a vanished file takes its targets with it */
	n = rx_now();
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/d.json", tmpdir);
		CU_ASSERT_EQUAL(unlink(p), 0);
	}
	CU_ASSERT_TRUE(wait_for(n, "!10.0.0.4:9100"));
	/* the gauge is set right after the set is handed over: wait for it */
	CU_ASSERT_TRUE(wait_metric_eq(fx.m, "starling_discovery_targets", 1));
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "prometheus_sd_file_watcher_errors_total", NULL), 0);
	fx_stop(&fx);
	rm_tmpdir();
}

static void test_in_place_write(void)
{
	/* An editor-style write (truncate, then write) is folded into one
	 * scan by the watcher's debounce. */
	struct fixture fx;
	char path[512];
	FILE *f;
	size_t n;

	mk_tmpdir();
	put("a.yaml", "- targets: [a:1]\n");
	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, "files = [\"%s/a.yaml\"];", tmpdir), 0);
	CU_ASSERT_TRUE(wait_for(0, "__address__=a:1"));
	n = rx_now();
	snprintf(path, sizeof(path), "%s/a.yaml", tmpdir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("- targets: [b:2]\n", f);
	fclose(f);
	CU_ASSERT_TRUE(wait_for(n, "__address__=b:2"));
	fx_stop(&fx);
	rm_tmpdir();
}

static void test_polling_fallback(void)
{
	/* The directory does not exist at start: the watch fails (counted)
	 * and refresh_interval finds the file later. */
	struct fixture fx;
	char sub[300];
	size_t n;

	mk_tmpdir();
	n = rx_now();
	CU_ASSERT_EQUAL_FATAL(
	    fx_start(&fx, "files = [\"%s/later/*.json\"]; refresh_interval = \"30s\";", tmpdir), 0);
	CU_ASSERT_TRUE(wait_for(n, "")); /* the empty first set */
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "prometheus_sd_file_watcher_errors_total", NULL), 1);
	snprintf(sub, sizeof(sub), "%s/later", tmpdir);
	CU_ASSERT_EQUAL(mkdir(sub, 0755), 0);
	put("later/x.json", "[{\"targets\": [\"h:1\"]}]");
	n = rx_now();
	mock_host_advance(fx.m, 30000);
	CU_ASSERT_TRUE(wait_for(n, "__address__=h:1"));
	/* now the directory is watched: a change needs no timer */
	n = rx_now();
	put("later/x.json", "[{\"targets\": [\"h:2\"]}]");
	CU_ASSERT_TRUE(wait_for(n, "__address__=h:2"));
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "prometheus_sd_file_watcher_errors_total", NULL), 1);
	fx_stop(&fx);
	rm_tmpdir();
}

static void test_unchanged_not_republished(void)
{
	struct fixture fx;
	size_t n, sets;

	mk_tmpdir();
	put("a.json", "[{\"targets\": [\"a:1\"]}]");
	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, "files = [\"%s/*.json\"];", tmpdir), 0);
	CU_ASSERT_TRUE(wait_for(0, "__address__=a:1"));
	sets = mock_host_forwarded_target_sets(fx.m);
	n = rx_now();
	mock_host_advance(fx.m, 5 * 60 * 1000); /* the default refresh_interval */
	CU_ASSERT_EQUAL(
	    mock_host_metric(fx.m, "prometheus_sd_file_scan_duration_seconds_count", NULL) >= 2, 1);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(fx.m), sets);
	CU_ASSERT_EQUAL(rx_now(), n);
	fx_stop(&fx);
	rm_tmpdir();
}

/* A target without an address is counted once per version of its file,
 * not again each time the (recently written, so re-read) file is read in a
 * later scan. Failed once in the proof: a second scan, for another file,
 * within a second of the first re-read a.json and counted its empty target
 * again (2 instead of 1). */
static void test_dropped_counted_once(void)
{
	struct fixture fx;
	size_t n;

	mk_tmpdir();
	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, "files = [\"%s/*.json\"];", tmpdir), 0);
	n = rx_now();
	put("a.json", "[{\"targets\": [\"a:1\", \"\"]}]");
	CU_ASSERT_TRUE(wait_for(n, "__address__=a:1"));
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "starling_discovery_targets_dropped_total", NULL),
			1);
	for (int i = 0; i < 3; i++) { /* more scans while a.json is recent */
		char name[32], text[64];

		n = rx_now();
		snprintf(name, sizeof(name), "c%d.json", i);
		snprintf(text, sizeof(text), "[{\"targets\": [\"c:%d\"]}]", i);
		put(name, text);
		snprintf(text, sizeof(text), "__address__=c:%d", i);
		CU_ASSERT_TRUE(wait_for(n, text));
	}
	CU_ASSERT_EQUAL(mock_host_metric(fx.m, "starling_discovery_targets_dropped_total", NULL),
			1);
	CU_ASSERT_EQUAL(
	    mock_host_log_count(fx.m, STARLING_LOG_WARN, "target(s) without an address dropped"),
	    1);
	fx_stop(&fx);
	rm_tmpdir();
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("discovery.file", NULL, NULL);
	CU_add_test(s, "path patterns", test_patterns);
	CU_add_test(s, "config errors", test_config_errors);
	/* before any test steps the mock clock: files must look recent */
	CU_add_test(s, "a dropped target is counted once", test_dropped_counted_once);
	CU_add_test(s, "files, changes, bad files, vanished files", test_files_and_changes);
	CU_add_test(s, "in-place write", test_in_place_write);
	CU_add_test(s, "refresh_interval fallback", test_polling_fallback);
	CU_add_test(s, "an unchanged set is not published again", test_unchanged_not_republished);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
