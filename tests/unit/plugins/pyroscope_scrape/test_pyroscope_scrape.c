/* pyroscope.scrape: label derivation, URLs per profile type, response
 * validation, config handling, and scraping through the mock host from an
 * in-test pprof server (libmicrohttpd). */
#include <CUnit/Basic.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock_host.h"
#include "pyro_scrape.h"

static struct pyro_config base_cfg(void)
{
	struct pyro_config c = { 0 };

	c.job_name = "pyroscope.scrape.t";
	c.interval_ms = 15000;
	c.timeout_ms = 10000;
	c.delta_seconds = 14;
	c.scheme = "http";
	return c;
}

static const struct pyro_profile_type cpu = { "process_cpu", "/debug/pprof/profile", true, true };
static const struct pyro_profile_type mem = { "memory", "/debug/pprof/allocs", true, false };

static void test_service_name(void)
{
	char *a;
	const struct starling_label k8s[] = {
		{ "__meta_kubernetes_namespace", "ns" },
		{ "__meta_kubernetes_pod_container_name", "app" },
	};
	const struct starling_label ann[] = {
		{ "__meta_kubernetes_namespace", "ns" },
		{ "__meta_kubernetes_pod_container_name", "app" },
		{ "__meta_kubernetes_pod_annotation_pyroscope_io_service_name", "from-annotation" },
	};
	const struct starling_label docker[] = { { "__meta_docker_container_name", "/web" } };
	const struct starling_label swarm[] = { { "__meta_dockerswarm_service_name", "svc" } };
	const struct starling_label none[] = { { "__address__", "h:1" } };

	CU_ASSERT_STRING_EQUAL(pyro_service_name(ann, 3, &a), "from-annotation");
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_STRING_EQUAL(pyro_service_name(k8s, 2, &a), "ns/app");
	free(a);
	CU_ASSERT_STRING_EQUAL(pyro_service_name(docker, 1, &a), "/web");
	CU_ASSERT_STRING_EQUAL(pyro_service_name(swarm, 1, &a), "svc");
	CU_ASSERT_STRING_EQUAL(pyro_service_name(none, 1, &a), "unspecified");
}

static void test_target_labels_and_urls(void)
{
	struct pyro_config c = base_cfg();
	struct pyro_target *t;
	char err[256];
	const struct starling_label in[] = {
		{ "__address__", "10.0.0.1:6060" },
		{ "env", "prod" },
		{ "__meta_kubernetes_namespace", "ns" },
		{ "__meta_kubernetes_pod_container_name", "api" },
		{ "__tmp", "x" },
	};

	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &cpu, in, 5, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(t->url, "http://10.0.0.1:6060/debug/pprof/profile?seconds=14");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__name__"), "process_cpu");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "job"), "pyroscope.scrape.t");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "instance"), "10.0.0.1:6060");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "service_name"), "ns/api");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "env"), "prod");
	CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "__address__"));
	CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "__meta_kubernetes_namespace"));
	CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "__tmp"));
	CU_ASSERT_EQUAL(t->n_labels, 5); /* __name__ env instance job service_name */
	for (size_t i = 1; i < t->n_labels; i++)
		CU_ASSERT_TRUE(strcmp(t->labels[i - 1].name, t->labels[i].name) < 0);
	/* delta profiles may run for timeout + interval - 1s */
	CU_ASSERT_EQUAL(t->timeout_ms, 10000 + 14000);
	CU_ASSERT_TRUE(t->delta);
	CU_ASSERT_EQUAL(t->phase_ms, (int64_t)(t->key % 15000));
	{
		struct pyro_target *t2;

		/* every profile type of one target has the same ownership key */
		CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, in, 5, &t2, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(t2->key, t->key);
		CU_ASSERT_STRING_EQUAL(t2->url, "http://10.0.0.1:6060/debug/pprof/allocs");
		CU_ASSERT_EQUAL(t2->timeout_ms, 10000);
		CU_ASSERT_STRING_EQUAL(pyro_label(t2->labels, t2->n_labels, "__name__"), "memory");
		pyro_target_free(t2);
	}
	pyro_target_free(t);
}

static void test_target_overrides(void)
{
	struct pyro_config c = base_cfg();
	struct pyro_param params[] = { { "debug", "0" }, { "seconds", "99" } };
	struct pyro_target *t;
	char err[256];
	const struct starling_label in[] = {
		{ "__address__", "example.org" },
		{ "__scheme__", "https" },
		{ "__profile_path_prefix__", "/app" },
		{ "__param_gc", "1" },
		{ "service_name", "mine" },
		{ "job", "custom" },
		{ "instance", "inst-1" },
	};
	const struct starling_label v6[] = { { "__address__", "::1" } };
	const struct starling_label noaddr[] = { { "job", "x" } };
	const struct starling_label url[] = { { "__address__", "http://h:1/x" } };

	c.params = params;
	c.n_params = 2;
	c.path_prefix = "/ignored";
	c.delta_seconds = 5;
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &cpu, in, 7, &t, err, sizeof(err)), 0);
	/* default https port, the target's prefix wins, seconds is ours, the
	 * rest sorted */
	CU_ASSERT_STRING_EQUAL(t->url,
			       "https://example.org:443/app/debug/pprof/profile?debug=0&gc=1&seconds=5");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "service_name"), "mine");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "job"), "custom");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "instance"), "inst-1");
	pyro_target_free(t);

	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, v6, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(t->url, "http://[::1]:80/ignored/debug/pprof/allocs?debug=0&seconds=99");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "service_name"), "unspecified");
	pyro_target_free(t);

	CU_ASSERT_EQUAL(pyro_target_new(&c, &mem, noaddr, 1, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "__address__"));
	CU_ASSERT_EQUAL(pyro_target_new(&c, &mem, url, 1, &t, err, sizeof(err)), -EINVAL);
}

static void test_validate(void)
{
	const uint8_t gz[] = { 0x1f, 0x8b, 0x08, 0x00 };
	const uint8_t raw[] = { 0x0a, 0x04, 0x08, 0x01, 0x10, 0x02 };
	const uint8_t html[] = "<html>";
	const uint8_t json[] = "{\"a\":1}";
	const uint8_t junk[] = { 0xff, 0xff };
	const char *oct = "application/octet-stream";
	char err[128];

	CU_ASSERT_EQUAL(pyro_validate(200, oct, gz, 4, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pyro_validate(200, oct, raw, 6, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pyro_validate(500, oct, gz, 4, err, sizeof(err)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "500"));
	CU_ASSERT_EQUAL(pyro_validate(200, oct, gz, 0, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_EQUAL(pyro_validate(200, "text/html", html, 6, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_EQUAL(pyro_validate(200, NULL, gz, 4, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_EQUAL(pyro_validate(200, oct, html, 6, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_EQUAL(pyro_validate(200, oct, json, 7, err, sizeof(err)), -EBADMSG);
	CU_ASSERT_EQUAL(pyro_validate(200, oct, junk, 2, err, sizeof(err)), -EBADMSG);
}

static void test_next_slot(void)
{
	CU_ASSERT_EQUAL(pyro_next_slot(1000, 15000, 700), 15700);
	CU_ASSERT_EQUAL(pyro_next_slot(15700, 15000, 700), 15700);
	CU_ASSERT_EQUAL(pyro_next_slot(15701, 15000, 700), 30700);
}

/* ---- through the mock host ----------------------------------------------- */

static struct mock_host *make(const char *cfg, void **inst, int *rc)
{
	struct mock_host *m = mock_host_new("pyroscope.scrape.t", pyroscope_scrape_type.schema, cfg,
					    NULL, 0);

	if (!m)
		return NULL;
	mock_host_set_quiet(m, true);
	*rc = pyroscope_scrape_type.create(mock_host_api(m), mock_host_self(m),
					   mock_host_config(m), inst);
	return m;
}

static void test_config(void)
{
	struct mock_host *m;
	void *in;
	int rc;

	/* defaults: the five Go profile types per target */
	m = make("targets = ( { *address__ = \"127.0.0.1:1\"; }, { *address__ = \"127.0.0.1:2\"; } );"
		 "forward_to = [ \"x.y\" ];",
		 &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_DOUBLE_EQUAL(mock_host_metric(m, "pyroscope_scrape_targets_gauge", NULL), 10, 0.1);
	pyroscope_scrape_type.destroy(in);
	mock_host_free(m);

	/* disable two, enable fgprof and godeltaprof_memory, one custom */
	m = make("targets = ( { *address__ = \"127.0.0.1:1\"; } );"
		 "forward_to = [ \"x.y\" ];"
		 "profiling_config = { mutex = { enabled = false; }; block = { enabled = false; };"
		 "  fgprof = { enabled = true; }; godeltaprof_memory = { enabled = true; };"
		 "  custom = ( { name = \"custom_thing\"; enabled = true; path = \"/x\"; } ); };",
		 &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_DOUBLE_EQUAL(mock_host_metric(m, "pyroscope_scrape_targets_gauge", NULL), 6, 0.1);
	pyroscope_scrape_type.destroy(in);
	mock_host_free(m);

	{
		static const char *const bad[] = {
			/* delta profile with an interval under 2s */
			"targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
			"scrape_interval = \"1s\";",
			/* delta_profiling_duration over interval - 1s */
			"targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
			"delta_profiling_duration = \"15s\";",
			"targets = ( { job = \"no-address\"; } ); forward_to = [ \"x.y\" ];",
			"targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
			"scheme = \"ftp\";",
			"targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
			"profiling_config = { custom = ( { name = \"memory\"; enabled = true;"
			" path = \"/y\"; } ); };",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			m = make(bad[i], &in, &rc);
			CU_ASSERT_PTR_NOT_NULL_FATAL(m);
			CU_ASSERT_TRUE(rc < 0);
			CU_ASSERT_TRUE(mock_host_log_count(m, STARLING_LOG_ERROR, NULL) >= 1);
			mock_host_free(m);
		}
	}
	/* a 1s interval is fine once CPU is off */
	m = make("targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
		 "scrape_interval = \"1s\"; profiling_config = { process_cpu = { enabled = false; }; };",
		 &in, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	if (!rc)
		pyroscope_scrape_type.destroy(in);
	mock_host_free(m);
}

static struct MHD_Daemon *daemon_;
static unsigned port_;
static pthread_mutex_t rx_lock = PTHREAD_MUTEX_INITIALIZER;
static int hits_good, hits_bad;

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	static const uint8_t prof[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00 };
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool bad = strncmp(url, "/bad/", 5) == 0;

	pthread_mutex_lock(&rx_lock);
	if (bad)
		hits_bad++;
	else
		hits_good++;
	pthread_mutex_unlock(&rx_lock);
	if (bad) {
		r = MHD_create_response_from_buffer(4, (void *)"oops", MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(conn, 500, r);
	} else {
		r = MHD_create_response_from_buffer(sizeof(prof), (void *)prof,
						    MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Content-Type", "application/octet-stream");
		ret = MHD_queue_response(conn, 200, r);
	}
	MHD_destroy_response(r);
	return ret;
}

static int suite_init(void)
{
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
				   MHD_OPTION_END);
	if (!daemon_)
		return -1;
	port_ = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
	return 0;
}

static int suite_clean(void)
{
	MHD_stop_daemon(daemon_);
	return 0;
}

static int get(int *v)
{
	int r;

	pthread_mutex_lock(&rx_lock);
	r = *v;
	pthread_mutex_unlock(&rx_lock);
	return r;
}

static bool owns_nothing(void *arg, uint64_t key, unsigned replicas)
{
	return false;
}

static void run_scrape(bool owned)
{
	char cfg[768];
	struct mock_host *m;
	void *in;
	int rc;

	pthread_mutex_lock(&rx_lock);
	hits_good = hits_bad = 0;
	pthread_mutex_unlock(&rx_lock);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( { *address__ = \"127.0.0.1:%u\"; service_name = \"good\"; },"
		 "  { *address__ = \"127.0.0.1:%u\"; *profile_path_prefix__ = \"/bad\"; } );"
		 "forward_to = [ \"x.y\" ]; scrape_interval = \"200ms\";"
		 "clustering = { enabled = true; };"
		 "profiling_config = { process_cpu = { enabled = false; }; mutex = { enabled = false; };"
		 " block = { enabled = false; }; memory = { enabled = false; }; };",
		 port_, port_);
	m = make(cfg, &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	if (!owned)
		mock_host_set_owns(m, owns_nothing, NULL);
	CU_ASSERT_EQUAL_FATAL(pyroscope_scrape_type.start(in), 0);
	for (int i = 0; i < 300 && owned; i++) {
		if (mock_host_forwarded_profiles(m) >= 2 &&
		    mock_host_metric(m, "starling_pyroscope_scrape_failures_total", NULL) >= 2)
			break;
		usleep(10000);
	}
	if (!owned)
		usleep(700000);
	pyroscope_scrape_type.stop(in);
	if (owned) {
		size_t owned_n, total;

		/* good target forwarded, the 500 one failed and was counted */
		CU_ASSERT_TRUE(mock_host_forwarded_profiles(m) >= 2);
		CU_ASSERT_TRUE(mock_host_metric(m, "starling_pyroscope_scrape_failures_total",
						NULL) >= 2);
		CU_ASSERT_TRUE(mock_host_metric(m, "starling_pyroscope_forwarded_profiles_total",
						NULL) >= 2);
		CU_ASSERT_TRUE(mock_host_log_count(m, STARLING_LOG_WARN, "status 500") >= 1);
		mock_host_targets(m, &owned_n, &total);
		CU_ASSERT_EQUAL(owned_n, 2);
		CU_ASSERT_EQUAL(total, 2);
		CU_ASSERT_TRUE(get(&hits_good) >= 2);
	} else {
		/* owned by another node: nothing scraped */
		CU_ASSERT_EQUAL(get(&hits_good) + get(&hits_bad), 0);
		CU_ASSERT_EQUAL(mock_host_forwarded_profiles(m), 0);
	}
	pyroscope_scrape_type.destroy(in);
	mock_host_free(m);
}

static void test_scrape_owned(void)
{
	run_scrape(true);
}

static void test_scrape_not_owned(void)
{
	run_scrape(false);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("pyroscope_scrape_pure", NULL, NULL);
	CU_add_test(s, "service_name_inference", test_service_name);
	CU_add_test(s, "target_labels_and_urls", test_target_labels_and_urls);
	CU_add_test(s, "target_overrides", test_target_overrides);
	CU_add_test(s, "validate_response", test_validate);
	CU_add_test(s, "next_slot", test_next_slot);
	CU_add_test(s, "config", test_config);
	s = CU_add_suite("pyroscope_scrape", suite_init, suite_clean);
	CU_add_test(s, "scrape_owned_targets", test_scrape_owned);
	CU_add_test(s, "skip_targets_owned_elsewhere", test_scrape_not_owned);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
