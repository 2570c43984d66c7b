/*
 * Unit tests of prometheus.operator.*: PodMonitor / ServiceMonitor + pods,
 * endpoints, services (real API payload shapes) -> target label sets, the
 * generated relabelling, the scrape settings of each job, the monitor
 * selector, and config validation through the mock host.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <time.h>

#include "mock_host.h"
#include "mock_wait.h"
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "operator.h"

/* ------------------------------------------------------------------------ */
/* Fixtures (shapes as `kubectl get -o json` prints them).                   */

#define POD_FMT                                                                                    \
	"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%"  \
	"s\","                                                                                     \
	"\"uid\":\"uid-%s\",\"resourceVersion\":\"101\",\"labels\":{\"app.kubernetes.io/"          \
	"name\":\"%s\","                                                                           \
	"\"app.kubernetes.io/version\":\"1.5.0\",\"tier\":\"%s\"},"                                \
	"\"annotations\":{\"prometheus.io/scrape\":\"true\"},"                                     \
	"\"ownerReferences\":[{\"apiVersion\":\"apps/"                                             \
	"v1\",\"kind\":\"ReplicaSet\",\"name\":\"rs-1\","                                          \
	"\"uid\":\"u\",\"controller\":true,\"blockOwnerDeletion\":true}]},"                        \
	"\"spec\":{\"nodeName\":\"node-a\",\"containers\":["                                       \
	"{\"name\":\"app\",\"image\":\"example/app:1\",\"ports\":["                                \
	"{\"name\":\"metrics\",\"containerPort\":9100,\"protocol\":\"TCP\"},"                      \
	"{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"}]},"                       \
	"{\"name\":\"sidecar\",\"image\":\"example/sidecar:1\"}],"                                 \
	"\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox\",\"ports\":["                 \
	"{\"name\":\"init-metrics\",\"containerPort\":9999}]}]},"                                  \
	"\"status\":{\"phase\":\"%s\",\"hostIP\":\"192.168.1.10\",\"podIP\":\"%s\","               \
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null}]}}"

static cJSON *pod(const char *ns, const char *name, const char *app, const char *tier,
		  const char *phase, const char *ip)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), POD_FMT, name, ns, name, app, tier, phase, ip);
	return cJSON_Parse(buf);
}

static const char *podmonitor_json =
    "{\"apiVersion\":\"monitoring.coreos.com/v1\",\"kind\":\"PodMonitor\","
    "\"metadata\":{\"name\":\"app-pm\",\"namespace\":\"prod\",\"generation\":3,"
    "\"labels\":{\"team\":\"infra\"}},"
    "\"spec\":{\"selector\":{\"matchLabels\":{\"app.kubernetes.io/name\":\"app\"},"
    "\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"web\",\"api\"]}]},"
    "\"podTargetLabels\":[\"app.kubernetes.io/version\"],"
    "\"podMetricsEndpoints\":[{\"port\":\"metrics\",\"interval\":\"30s\",\"path\":\"/m\","
    "\"params\":{\"format\":[\"prometheus\"]},"
    "\"relabelings\":[{\"sourceLabels\":[\"__meta_kubernetes_pod_node_name\"],"
    "\"targetLabel\":\"node\",\"action\":\"Replace\"}],"
    "\"metricRelabelings\":[{\"sourceLabels\":[\"__name__\"],\"regex\":\"go_.*\","
    "\"action\":\"drop\"}]}]}}";

struct got {
	size_t n;
	char text[8][2048];
	struct op_job *job[8];
};

static int collect(void *arg, struct op_job *job, const struct starling_lset *ls)
{
	struct got *g = arg;
	size_t len = 0;

	if (g->n == 8)
		return -ENOSPC;
	for (size_t i = 0; i < ls->n; i++)
		len += (size_t)snprintf(g->text[g->n] + len, sizeof(g->text[0]) - len, "%s%s=%s",
					i ? "," : "", ls->v[i].name, ls->v[i].value);
	g->job[g->n] = job;
	g->n++;
	return 0;
}

static struct op_defaults defaults(enum op_kind kind)
{
	struct op_defaults d = {0};

	d.kind = kind;
	d.interval_ms = 60000;
	d.timeout_ms = 10000;
	return d;
}

static void targets_of(const struct op_defaults *d, const char *monitor, struct op_cluster *c,
		       struct got *g)
{
	cJSON *m = cJSON_Parse(monitor);
	struct op_job **jobs = NULL;
	size_t n = 0;
	struct op_gen_scratch s;
	char err[256] = "";

	memset(g, 0, sizeof(*g));
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_EQUAL_FATAL(op_jobs_from_monitor(d, m, &jobs, &n, err, sizeof(err)), 0);
	op_gen_scratch_init(&s);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(op_job_targets(d, jobs[i], c, &s, collect, g), 0);
	op_gen_scratch_free(&s);
	/* Keep a reference for the caller's checks of g->job. */
	for (size_t i = 0; i < g->n; i++)
		op_job_get(g->job[i]);
	for (size_t i = 0; i < n; i++)
		op_job_put(jobs[i]);
	free(jobs);
	cJSON_Delete(m);
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		op_job_put(g->job[i]);
}

/* ------------------------------------------------------------------------ */

static void test_podmonitor_targets(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	starling_k8s_store_put(&c.pods, pod("prod", "app-2", "app", "batch", "Running", "10.0.0.6"),
			       0);
	starling_k8s_store_put(&c.pods,
			       pod("prod", "other-1", "other", "web", "Running", "10.0.0.7"), 0);
	starling_k8s_store_put(&c.pods,
			       pod("prod", "app-failed", "app", "web", "Failed", "10.0.0.8"), 0);
	starling_k8s_store_put(&c.pods, pod("prod", "app-pending", "app", "web", "Pending", ""), 0);
	starling_k8s_store_put(&c.pods,
			       pod("staging", "app-s", "app", "web", "Running", "10.0.1.5"), 0);
	targets_of(&d, podmonitor_json, &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_STRING_EQUAL(g.text[0],
			       "__address__=10.0.0.5:9100,__metrics_path__=/m,"
			       "__param_format=prometheus,__scheme__=http,"
			       "app_kubernetes_io_version=1.5.0,container=app,endpoint=metrics,"
			       "job=prod/app-pm,namespace=prod,node=node-a,pod=app-1");
	CU_ASSERT_STRING_EQUAL(g.job[0]->cfg.job_name, "podMonitor/prod/app-pm/0");
	CU_ASSERT_EQUAL(g.job[0]->cfg.interval_ms, 30000);
	CU_ASSERT_EQUAL(g.job[0]->cfg.timeout_ms, 10000);
	CU_ASSERT_PTR_NOT_NULL(g.job[0]->cfg.metric_relabel);
	CU_ASSERT_STRING_EQUAL(g.job[0]->cfg.timeout_header,
			       "X-Prometheus-Scrape-Timeout-Seconds: 10");
	CU_ASSERT(g.job[0]->cfg.honor_timestamps);
	CU_ASSERT(!g.job[0]->cfg.honor_labels);
	/* The scrape target built from it: URL, instance, labels. */
	{
		struct scrape_target *t;
		char err[256];
		struct starling_lset ls;
		char *copy = strdup(g.text[0]), *tok = copy;

		starling_lset_init(&ls);
		while (tok && *tok) {
			char *comma = strchr(tok, ','), *eq = strchr(tok, '=');

			if (comma)
				*comma = '\0';
			*eq = '\0';
			starling_lset_set_str(&ls, tok, eq + 1);
			tok = comma ? comma + 1 : NULL;
		}
		free(copy);
		CU_ASSERT_EQUAL_FATAL(
		    scrape_target_new(&g.job[0]->cfg, ls.v, ls.n, &t, err, sizeof(err)), 0);
		CU_ASSERT_STRING_EQUAL(t->url, "http://10.0.0.5:9100/m?format=prometheus");
		CU_ASSERT_EQUAL(t->n_labels, 8); /* + instance, no "__" labels */
		for (size_t i = 0; i < t->n_labels; i++)
			if (strcmp(t->labels[i].name, "instance") == 0)
				CU_ASSERT_STRING_EQUAL(t->labels[i].value, "10.0.0.5:9100");
		scrape_target_free(t);
		starling_lset_free(&ls);
	}
	got_free(&g);
	op_cluster_free(&c);
}

static void test_podmonitor_options(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "fd00::5"),
			       0);
	starling_k8s_store_put(&c.pods,
			       pod("staging", "app-s", "app", "web", "Running", "10.0.1.5"), 0);
	starling_k8s_store_put(&c.pods,
			       pod("prod", "app-done", "app", "web", "Succeeded", "10.0.0.9"), 0);
	/* portNumber, any namespace, jobLabel, filterRunning=false. */
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"mon\"},"
		   "\"spec\":{\"jobLabel\":\"app.kubernetes.io/name\",\"namespaceSelector\":"
		   "{\"any\":true},\"selector\":{},\"podMetricsEndpoints\":[{\"portNumber\":8080,"
		   "\"filterRunning\":false,\"scheme\":\"HTTPS\"}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 3);
	for (size_t i = 0; i < g.n; i++) {
		CU_ASSERT_PTR_NOT_NULL(strstr(g.text[i], "job=app,"));
		/* portNumber alone: no endpoint label (issue 10 b; promcfg.go
		 * generatePodMonitorConfig sets it from port or targetPort only) */
		CU_ASSERT_PTR_NULL(strstr(g.text[i], "endpoint="));
		CU_ASSERT_PTR_NOT_NULL(strstr(g.text[i], "__scheme__=https,"));
		CU_ASSERT_PTR_NOT_NULL(strstr(g.text[i], ":8080,"));
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "__address__=[fd00::5]:8080,"));
	got_free(&g);

	/* targetPort by name reaches init containers too; Exists/DoesNotExist. */
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
		   "\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":"
		   "\"Exists\"},{\"key\":\"nope\",\"operator\":\"DoesNotExist\"}]},"
		   "\"podMetricsEndpoints\":[{\"targetPort\":\"init-metrics\"}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "container=init,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "endpoint=init-metrics,"));
	CU_ASSERT_EQUAL(g.job[0]->cfg.interval_ms, 60000); /* component default */
	got_free(&g);

	/* NotIn excludes; no port selection: every container port and the
	 * port-less sidecar (address = pod IP) are targets. */
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
		   "\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":"
		   "\"NotIn\",\"values\":[\"batch\"]}]},\"podMetricsEndpoints\":[{}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL(g.n, 4); /* metrics, http, sidecar, init */
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[2], "__address__=fd00::5,"));
	got_free(&g);
	op_cluster_free(&c);
}

static void test_prune(void)
{
	cJSON *p = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"labels\":{\"x\":\"y\"},"
	    "\"managedFields\":[{\"manager\":\"kubelet\"}]},\"spec\":{\"volumes\":[],"
	    "\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"c\",\"env\":[],\"image\":"
	    "\"i\",\"ports\":[{\"containerPort\":1}]}]},\"status\":{\"phase\":\"Running\","
	    "\"podIP\":\"10.0.0.1\",\"containerStatuses\":[]}}");
	char *out;

	starling_k8s_prune(p, STARLING_K8S_POD);
	out = cJSON_PrintUnformatted(p);
	CU_ASSERT_STRING_EQUAL(out, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\","
				    "\"labels\":{\"x\":\"y\"}},\"spec\":{\"nodeName\":\"node-a\","
				    "\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"ports\":"
				    "[{\"containerPort\":1}]}]},\"status\":{\"phase\":\"Running\","
				    "\"podIP\":\"10.0.0.1\",\"containerStatuses\":[]}}");
	free(out);
	cJSON_Delete(p);
}

static void test_component_rules_first(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct starling_relabel_config rc[2] = {0};
	const char *src[] = {"__meta_kubernetes_pod_name"};
	const char *src2[] = {"__meta_kubernetes_pod_controller_kind"};
	char err[128];
	struct got g;

	rc[0].source_labels = src;
	rc[0].n_source_labels = 1;
	rc[0].regex = "app-2";
	rc[0].action = "drop";
	rc[1].source_labels = src2;
	rc[1].n_source_labels = 1;
	rc[1].target_label = "owner_kind";
	CU_ASSERT_EQUAL_FATAL(starling_relabel_rules_new(rc, 2,
							 (struct starling_relabel_rules **)&d.rules,
							 err, sizeof(err)),
			      0);
	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	starling_k8s_store_put(&c.pods, pod("prod", "app-2", "app", "web", "Running", "10.0.0.6"),
			       0);
	targets_of(&d, podmonitor_json, &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "owner_kind=ReplicaSet"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "pod=app-1"));
	got_free(&g);
	starling_relabel_rules_free((struct starling_relabel_rules *)d.rules);
	op_cluster_free(&c);
}

static const char *service_json =
    "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"api\","
    "\"namespace\":\"prod\",\"labels\":{\"app\":\"api\",\"team\":\"payments\"}},"
    "\"spec\":{\"ports\":[{\"name\":\"metrics\",\"port\":9100,\"targetPort\":9100}],"
    "\"clusterIP\":\"10.96.0.10\",\"type\":\"ClusterIP\"}}";

static const char *endpoints_json =
    "{\"kind\":\"Endpoints\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"api\","
    "\"namespace\":\"prod\",\"labels\":{\"app\":\"api\"}},\"subsets\":[{"
    "\"addresses\":[{\"ip\":\"10.0.0.5\",\"nodeName\":\"node-a\",\"targetRef\":{\"kind\":"
    "\"Pod\",\"namespace\":\"prod\",\"name\":\"app-1\",\"uid\":\"uid-app-1\"}}],"
    "\"notReadyAddresses\":[{\"ip\":\"10.0.0.99\",\"targetRef\":{\"kind\":\"Node\","
    "\"name\":\"node-b\"}}],"
    "\"ports\":[{\"name\":\"metrics\",\"port\":9100,\"protocol\":\"TCP\"},"
    "{\"name\":\"web\",\"port\":8080,\"protocol\":\"TCP\"}]}]}";

static const char *servicemonitor_json =
    "{\"apiVersion\":\"monitoring.coreos.com/v1\",\"kind\":\"ServiceMonitor\","
    "\"metadata\":{\"name\":\"api-sm\",\"namespace\":\"prod\"},"
    "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"api\"}},"
    "\"targetLabels\":[\"team\"],\"endpoints\":[{\"port\":\"metrics\",\"interval\":\"15s\","
    "\"scrapeTimeout\":\"15s\",\"honorLabels\":true}]}}";

static void test_servicemonitor_targets(void)
{
	struct op_defaults d = defaults(OP_SERVICE_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	starling_k8s_store_put(&c.services, cJSON_Parse(service_json), 0);
	starling_k8s_store_put(&c.endpoints, cJSON_Parse(endpoints_json), 0);
	targets_of(&d, servicemonitor_json, &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 2);
	CU_ASSERT_STRING_EQUAL(g.text[0], "__address__=10.0.0.5:9100,__metrics_path__=/metrics,"
					  "__scheme__=http,container=app,endpoint=metrics,job=api,"
					  "namespace=prod,pod=app-1,service=api,team=payments");
	CU_ASSERT_STRING_EQUAL(g.text[1], "__address__=10.0.0.99:9100,__metrics_path__=/metrics,"
					  "__scheme__=http,endpoint=metrics,job=api,namespace=prod,"
					  "node=node-b,service=api,team=payments");
	CU_ASSERT_STRING_EQUAL(g.job[0]->cfg.job_name, "serviceMonitor/prod/api-sm/0");
	CU_ASSERT_STRING_EQUAL(g.job[0]->cfg.accept, "Accept: " STARLING_EXPO_ACCEPT_HEADER);
	CU_ASSERT_EQUAL(g.job[0]->cfg.body_size_limit, SCRAPE_SAFETY_BODY_LIMIT);
	CU_ASSERT_EQUAL(g.job[0]->cfg.interval_ms, 15000);
	CU_ASSERT_EQUAL(g.job[0]->cfg.timeout_ms, 15000);
	CU_ASSERT(g.job[0]->cfg.honor_labels);
	got_free(&g);

	/* scrapeProtocols, fallbackScrapeProtocol, bodySizeLimit. */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"x\",\"namespace\":"
		   "\"prod\"},\"spec\":{\"selector\":{},\"bodySizeLimit\":\"10MiB\","
		   "\"scrapeProtocols\":[\"PrometheusProto\",\"PrometheusText0.0.4\","
		   "\"OpenMetricsText1.0.0\"],\"fallbackScrapeProtocol\":\"OpenMetricsText1.0.0\","
		   "\"endpoints\":[{\"port\":\"metrics\"}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 2);
	CU_ASSERT_STRING_EQUAL(
	    g.job[0]->cfg.accept,
	    "Accept: text/plain;version=0.0.4;q=0.3,application/openmetrics-text;"
	    "version=1.0.0;escaping=underscores;q=0.2,*/*;q=0.1");
	CU_ASSERT_EQUAL(g.job[0]->cfg.fallback_format, STARLING_EXPO_OPENMETRICS);
	CU_ASSERT_EQUAL(g.job[0]->cfg.body_size_limit, 10 << 20);
	got_free(&g);
	/* Service labels that do not match: nothing. */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"x\",\"namespace\":"
		   "\"prod\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
		   "\"endpoints\":[{\"port\":\"metrics\"}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL(g.n, 0);
	got_free(&g);
	/* Another namespace without namespaceSelector: nothing. */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"x\",\"namespace\":"
		   "\"other\"},\"spec\":{\"selector\":{},\"endpoints\":[{\"port\":\"metrics\"}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL(g.n, 0);
	got_free(&g);
	/* targetPort number + jobLabel from the service. */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"x\",\"namespace\":"
		   "\"prod\"},\"spec\":{\"jobLabel\":\"team\",\"selector\":{},"
		   "\"endpoints\":[{\"targetPort\":9100}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "job=payments,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "endpoint=9100,"));
	got_free(&g);
	op_cluster_free(&c);
}

static const char *endpointslice_json =
    "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{"
    "\"name\":\"api-7xk2q\",\"namespace\":\"prod\",\"generateName\":\"api-\","
    "\"labels\":{\"kubernetes.io/service-name\":\"api\",\"endpointslice.kubernetes.io/"
    "managed-by\":\"endpointslice-controller.k8s.io\"}},\"addressType\":\"IPv4\","
    "\"endpoints\":[{\"addresses\":[\"10.0.0.5\"],\"conditions\":{\"ready\":true,"
    "\"serving\":true,\"terminating\":false},\"nodeName\":\"node-a\",\"zone\":\"z1\","
    "\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"prod\",\"name\":\"app-1\","
    "\"uid\":\"uid-app-1\"}},{\"addresses\":[\"10.0.0.6\"],\"conditions\":{\"ready\":"
    "false}}],\"ports\":[{\"name\":\"metrics\",\"protocol\":\"TCP\",\"port\":9100},"
    "{\"name\":\"web\",\"protocol\":\"TCP\",\"port\":8080}]}";

static void test_endpointslice_targets(void)
{
	struct op_defaults d = defaults(OP_SERVICE_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	d.endpointslice = true;
	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	starling_k8s_store_put(&c.services, cJSON_Parse(service_json), 0);
	starling_k8s_store_put(&c.endpointslices, cJSON_Parse(endpointslice_json), 0);
	/* Endpoints objects are not looked at in this role. */
	starling_k8s_store_put(&c.endpoints, cJSON_Parse(endpoints_json), 0);
	targets_of(&d, servicemonitor_json, &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 2);
	CU_ASSERT_STRING_EQUAL(g.text[0], "__address__=10.0.0.5:9100,__metrics_path__=/metrics,"
					  "__scheme__=http,container=app,endpoint=metrics,job=api,"
					  "namespace=prod,pod=app-1,service=api,team=payments");
	CU_ASSERT_STRING_EQUAL(g.text[1], "__address__=10.0.0.6:9100,__metrics_path__=/metrics,"
					  "__scheme__=http,endpoint=metrics,job=api,"
					  "namespace=prod,service=api,team=payments");
	got_free(&g);
	/* Conditions are meta labels a relabeling can use. */
	targets_of(
	    &d,
	    "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"x\",\"namespace\":"
	    "\"prod\"},\"spec\":{\"selector\":{},\"endpoints\":[{\"port\":\"web\","
	    "\"relabelings\":[{\"action\":\"keep\",\"sourceLabels\":[\"__meta_kubernetes_"
	    "endpointslice_endpoint_conditions_ready\"],\"regex\":\"true\"},{\"action\":"
	    "\"replace\",\"sourceLabels\":[\"__meta_kubernetes_endpointslice_endpoint_zone\"],"
	    "\"targetLabel\":\"zone\"}]}]}}",
	    &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "__address__=10.0.0.5:8080,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], ",zone=z1"));
	got_free(&g);
	op_cluster_free(&c);
}

static void test_bad_monitors(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	static const char *const bad[] = {
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"podMetricsEndpoints\":[{\"interval\":\"soon\"}]}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"podMetricsEndpoints\":[{\"relabelings\":[{\"action\":\"replace\","
	    "\"regex\":\"(\",\"targetLabel\":\"x\"}]}]}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"podMetricsEndpoints\":[{\"metricRelabelings\":[{\"action\":\"explode\"}]}]"
	    "}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"podMetricsEndpoints\":[{\"scheme\":\"ftp\"}]}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"bodySizeLimit\":\"lots\",\"podMetricsEndpoints\":[{}]}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"scrapeProtocols\":[\"Gopher\"],\"podMetricsEndpoints\":[{}]}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\"},\"spec\":{}}",
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
	    "\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Near\"}]},"
	    "\"podMetricsEndpoints\":[{}]}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *m = cJSON_Parse(bad[i]);
		struct op_job **jobs = NULL;
		size_t n = 7;
		char err[256] = "";

		CU_ASSERT_FATAL(m != NULL);
		CU_ASSERT_EQUAL(op_jobs_from_monitor(&d, m, &jobs, &n, err, sizeof(err)), -EINVAL);
		CU_ASSERT(err[0] != '\0');
		CU_ASSERT_EQUAL(n, 0);
		CU_ASSERT_PTR_NULL(jobs);
		cJSON_Delete(m);
	}
}

static void test_selector_and_store(void)
{
	struct op_selector s = {0};
	struct starling_label ml = {"team", "infra"};
	char *vals[] = {"a", "b"};
	struct op_sel_expr e[2] = {{"tier", OP_SEL_IN, vals, 2},
				   {"legacy", OP_SEL_DOES_NOT_EXIST, NULL, 0}};
	cJSON *l1 = cJSON_Parse("{\"team\":\"infra\",\"tier\":\"a\"}");
	cJSON *l2 = cJSON_Parse("{\"team\":\"infra\",\"tier\":\"c\"}");
	cJSON *l3 = cJSON_Parse("{\"team\":\"infra\",\"tier\":\"b\",\"legacy\":\"\"}");
	struct starling_k8s_store st = {0};
	int64_t ms;

	CU_ASSERT(op_selector_matches(&s, NULL)); /* empty selector: everything */
	s.match_labels = &ml;
	s.n_match_labels = 1;
	s.exprs = e;
	s.n_exprs = 2;
	CU_ASSERT(op_selector_matches(&s, l1));
	CU_ASSERT(!op_selector_matches(&s, l2));
	CU_ASSERT(!op_selector_matches(&s, l3));
	CU_ASSERT(!op_selector_matches(&s, NULL));
	cJSON_Delete(l1);
	cJSON_Delete(l2);
	cJSON_Delete(l3);

	CU_ASSERT_EQUAL(
	    starling_k8s_store_put(&st, pod("a", "p1", "x", "t", "Running", "1.1.1.1"), 0), 0);
	CU_ASSERT_EQUAL(
	    starling_k8s_store_put(&st, pod("a", "p2", "x", "t", "Running", "1.1.1.2"), 1), 0);
	CU_ASSERT_EQUAL(
	    starling_k8s_store_put(&st, pod("b", "p1", "x", "t", "Running", "1.1.1.3"), 1), 0);
	CU_ASSERT_EQUAL(
	    starling_k8s_store_put(&st, pod("a", "p1", "x", "t", "Running", "1.1.1.9"), 0), 0);
	CU_ASSERT_EQUAL(st.n, 3);
	CU_ASSERT_EQUAL(starling_k8s_store_put(&st, cJSON_Parse("{\"metadata\":{}}"), 0), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(starling_k8s_store_get(&st, "b", "p1"));
	starling_k8s_store_clear(&st, 1);
	CU_ASSERT_EQUAL(st.n, 1);
	CU_ASSERT_PTR_NULL(starling_k8s_store_get(&st, "b", "p1"));
	{
		cJSON *k = cJSON_Parse("{\"metadata\":{\"namespace\":\"a\",\"name\":\"p1\"}}");

		CU_ASSERT_EQUAL(starling_k8s_store_del(&st, k), 0);
		CU_ASSERT_EQUAL(starling_k8s_store_del(&st, k), -ENOENT);
		cJSON_Delete(k);
	}
	CU_ASSERT_EQUAL(st.n, 0);
	starling_k8s_store_clear(&st, -1);

	/* The index under churn: many objects, deletions moving the last one. */
	for (int i = 0; i < 3000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "p%d", i);
		CU_ASSERT_EQUAL(
		    starling_k8s_store_put(
			&st, pod(i % 2 ? "x" : "y", name, "a", "t", "Running", "1.1.1.1"), i % 3),
		    0);
	}
	for (int i = 0; i < 3000; i += 3) {
		char buf[128];
		cJSON *k;

		snprintf(buf, sizeof(buf), "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"p%d\"}}",
			 i % 2 ? "x" : "y", i);
		k = cJSON_Parse(buf);
		CU_ASSERT_EQUAL(starling_k8s_store_del(&st, k), 0);
		cJSON_Delete(k);
	}
	CU_ASSERT_EQUAL(st.n, 2000);
	for (int i = 0; i < 3000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "p%d", i);
		CU_ASSERT_EQUAL(starling_k8s_store_get(&st, i % 2 ? "x" : "y", name) != NULL,
				i % 3 != 0);
		CU_ASSERT_PTR_NULL(starling_k8s_store_get(&st, i % 2 ? "y" : "x", name));
	}
	starling_k8s_store_clear(&st, 1);
	CU_ASSERT_EQUAL(st.n, 1000);
	CU_ASSERT_PTR_NOT_NULL(starling_k8s_store_get(&st, "y", "p2"));
	CU_ASSERT_PTR_NULL(starling_k8s_store_get(&st, "x", "p1"));
	starling_k8s_store_clear(&st, -1);

	CU_ASSERT_EQUAL(op_parse_duration("1m30s", &ms), 0);
	CU_ASSERT_EQUAL(ms, 90000);
	CU_ASSERT_EQUAL(op_parse_duration("250ms", &ms), 0);
	CU_ASSERT_EQUAL(ms, 250);
	CU_ASSERT_EQUAL(op_parse_duration("1h", &ms), 0);
	CU_ASSERT_EQUAL(ms, 3600000);
	CU_ASSERT_EQUAL(op_parse_duration("10", &ms), -EINVAL);
	CU_ASSERT_EQUAL(op_parse_duration("", &ms), -EINVAL);
	CU_ASSERT_EQUAL(op_parse_duration("-1s", &ms), -EINVAL);
}

/* create() through the mock host: validation errors name the problem. */
/* ------------------------------------------------------------------------ */
/* Fidelity with Prometheus Operator + Prometheus (issue 10 a-i). Each case  */
/* states the upstream code its expectation comes from: prometheus-operator  */
/* pkg/prometheus/promcfg.go (generatePodMonitorConfig,                      */
/* generateServiceMonitorConfig, generateRelabelConfig), resource_selector.go */
/* and the golden files under pkg/prometheus/testdata/, and Prometheus       */
/* discovery/kubernetes/{pod,endpoints,endpointslice}.go.                    */

static size_t count_with(const struct got *g, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++)
		n += strstr(g->text[i], needle) != NULL;
	return n;
}

/* a: `port: "metrics|http"` is a regex (promcfg.go: `regex: ep.Port`, as in
 * the golden file's `regex: web` for port "web"): both ports are kept. A
 * string targetPort likewise. */
static void test_fidelity_port_regex(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	targets_of(
	    &d,
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
	    "\"spec\":{\"selector\":{},\"podMetricsEndpoints\":[{\"port\":\"metrics|http\"}]}}",
	    &c, &g);
	CU_ASSERT_EQUAL(g.n, 2);
	CU_ASSERT_EQUAL(count_with(&g, "__address__=10.0.0.5:9100,"), 1);
	CU_ASSERT_EQUAL(count_with(&g, "__address__=10.0.0.5:8080,"), 1);
	CU_ASSERT_EQUAL(count_with(&g, "endpoint=metrics|http,"), 2);
	got_free(&g);
	targets_of(
	    &d,
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
	    "\"spec\":{\"selector\":{},\"podMetricsEndpoints\":[{\"targetPort\":\"metr.*\"}]}}",
	    &c, &g);
	CU_ASSERT_EQUAL(g.n, 1);
	CU_ASSERT_EQUAL(count_with(&g, "endpoint=metr.*,"), 1);
	got_free(&g);
	op_cluster_free(&c);
}

/* c: a relabeling with `regex: ""` has its regex left out
 * (generateRelabelConfig: `if c.Regex != ""`), so the default (.*) applies:
 * the replace below fires and copies the node name. */
static void test_fidelity_empty_regex(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
		   "\"spec\":{\"selector\":{},\"podMetricsEndpoints\":[{\"port\":\"metrics\","
		   "\"relabelings\":[{\"sourceLabels\":[\"__meta_kubernetes_pod_node_name\"],"
		   "\"regex\":\"\",\"targetLabel\":\"node\",\"replacement\":\"$1\"}]}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL(g.n, 1);
	CU_ASSERT_EQUAL(count_with(&g, "node=node-a"), 1);
	got_free(&g);
	op_cluster_free(&c);
}

/* d, e: a ServiceMonitor endpoint whose port matches an *init* container's
 * port gets that container's labels (endpoints.go: containers then
 * initContainers, matched by port number only, pod_container_init=true);
 * the pod's ports no endpoint covers become extra targets (endpoints.go
 * last loop), which a targetPort rule selects. */
static void test_fidelity_endpoints_pod_lookup(void)
{
	struct op_defaults d = defaults(OP_SERVICE_MONITORS);
	struct op_cluster c = {0};
	struct got g;
	const char *eps =
	    "{\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"api\",\"namespace\":\"prod\"},"
	    "\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.5\",\"targetRef\":{\"kind\":\"Pod\","
	    "\"namespace\":\"prod\",\"name\":\"app-1\"}}],\"ports\":[{\"name\":\"native\","
	    "\"port\":9999,\"protocol\":\"UDP\"}]}]}";

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	starling_k8s_store_put(&c.services, cJSON_Parse(service_json), 0);
	starling_k8s_store_put(&c.endpoints, cJSON_Parse(eps), 0);
	/* d: the endpoint port (protocol UDP, unlike the container's) still
	 * finds the init container by number */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"sm\",\"namespace\":"
		   "\"prod\"},\"spec\":{\"selector\":{},\"endpoints\":[{\"port\":\"native\","
		   "\"relabelings\":[{\"sourceLabels\":[\"__meta_kubernetes_pod_container_init\"],"
		   "\"targetLabel\":\"init\"}]}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "container=init,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "init=true,"));
	got_free(&g);
	/* e: targetPort 8080 is a container port no endpoint lists: Prometheus'
	 * extra target for it is what the monitor selects */
	targets_of(&d,
		   "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"sm\",\"namespace\":"
		   "\"prod\"},\"spec\":{\"selector\":{},\"endpoints\":[{\"targetPort\":8080}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_STRING_EQUAL(g.text[0], "__address__=10.0.0.5:8080,__metrics_path__=/metrics,"
					  "__scheme__=http,container=app,endpoint=8080,job=api,"
					  "namespace=prod,pod=app-1,service=api");
	got_free(&g);
	op_cluster_free(&c);
}

/* f: an explicit scrapeTimeout above the interval rejects the monitor
 * (resource_selector.go validateScrapeIntervalAndTimeout ->
 * CompareScrapeTimeoutToScrapeInterval: "scrapeTimeout ... greater than
 * scrapeInterval"); equal is fine; the default timeout is clamped. */
static void test_fidelity_scrape_timeout(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_job **jobs = NULL;
	size_t n = 0;
	char err[256] = "";
	cJSON *m = cJSON_Parse(
	    "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
	    "\"spec\":{\"podMetricsEndpoints\":[{\"interval\":\"15s\",\"scrapeTimeout\":\"20s\"}]}"
	    "}");

	CU_ASSERT_EQUAL(op_jobs_from_monitor(&d, m, &jobs, &n, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "greater than"));
	cJSON_Delete(m);
	/* targetLimit -> target_limit (promcfg.go AddLimitsToYAML); enforced
	 * at target generation (podmonitors.sh checks the up=0) */
	m = cJSON_Parse("{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":"
			"\"prod\"},\"spec\":{\"targetLimit\":5,\"podMetricsEndpoints\":[{"
			"\"interval\":\"5s\"}]}}");
	CU_ASSERT_EQUAL_FATAL(op_jobs_from_monitor(&d, m, &jobs, &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(jobs[0]->cfg.timeout_ms, 5000);
	CU_ASSERT_EQUAL(jobs[0]->target_limit, 5);
	op_job_put(jobs[0]);
	free(jobs);
	cJSON_Delete(m);
}

/* i (container ID): pod.go buildPod sets __meta_kubernetes_pod_container_id
 * from the container's status, for init containers from
 * initContainerStatuses. */
static void test_fidelity_container_id(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;
	cJSON *p = pod("prod", "app-1", "app", "web", "Running", "10.0.0.5");

	cJSON_AddItemToObject(
	    cJSON_GetObjectItem(p, "status"), "containerStatuses",
	    cJSON_Parse("[{\"name\":\"app\",\"containerID\":\"containerd://abc123\"}]"));
	starling_k8s_prune(p, STARLING_K8S_POD);
	starling_k8s_store_put(&c.pods, p, 0);
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
		   "\"spec\":{\"selector\":{},\"podMetricsEndpoints\":[{\"port\":\"metrics\","
		   "\"relabelings\":[{\"sourceLabels\":[\"__meta_kubernetes_pod_container_id\"],"
		   "\"targetLabel\":\"cid\"}]}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "cid=containerd://abc123,"));
	got_free(&g);
	op_cluster_free(&c);
}

/* i (attachMetadata): `attachMetadata: {node: true}` becomes
 * `attach_metadata: {node: true}` (promcfg.go
 * mergeAttachMetadataWithScrapeClass); Prometheus then adds the node's
 * labels and leaves out pods whose node it does not know (pod.go buildPod,
 * withNodeMetadata). Monitors without it are unaffected. */
static void test_fidelity_attach_metadata(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;
#define ATTACH_MON                                                                                 \
	"{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"          \
	"\"spec\":{\"selector\":{},\"attachMetadata\":{\"node\":%s},"                              \
	"\"podMetricsEndpoints\":[{\"port\":\"metrics\",\"relabelings\":[{\"sourceLabels\":"       \
	"[\"__meta_kubernetes_node_label_topology_kubernetes_io_zone\"],\"targetLabel\":"          \
	"\"zone\"}]}]}}"
	char buf[1024];
	cJSON *other = pod("prod", "app-2", "app", "web", "Running", "10.0.0.6");

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(other, "spec"), "nodeName",
				  cJSON_CreateString("node-gone"));
	starling_k8s_store_put(&c.pods, other, 0);
	starling_k8s_store_put(
	    &c.nodes,
	    cJSON_Parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"node-a\",\"labels\":{"
			"\"topology.kubernetes.io/zone\":\"eu-west-1a\"}}}"),
	    0);
	snprintf(buf, sizeof(buf), ATTACH_MON, "true");
	targets_of(&d, buf, &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "__address__=10.0.0.5:9100,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "zone=eu-west-1a"));
	CU_ASSERT(g.job[0]->attach_node);
	got_free(&g);
	snprintf(buf, sizeof(buf), ATTACH_MON, "false");
	targets_of(&d, buf, &c, &g);
	CU_ASSERT_EQUAL(g.n, 2);
	CU_ASSERT_EQUAL(count_with(&g, "zone="), 0);
	got_free(&g);
	op_cluster_free(&c);
}

/* ------------------------------------------------------------------------ */
/* h: per-endpoint HTTP settings from Secrets / ConfigMaps (prometheus-      */
/* operator pkg/apis/monitoring/v1/http_config.go, tls_types.go;             */
/* pkg/assets/store.go for the reference errors; tls.go for the PEM checks). */

/* A self-signed certificate and its key, PEM, made here with OpenSSL. */
static void make_cert(char **cert, char **key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *b;
	BUF_MEM *m;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	BIO_get_mem_ptr(b, &m);
	*cert = strndup(m->data, m->length);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	BIO_get_mem_ptr(b, &m);
	*key = strndup(m->data, m->length);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
}

static char *b64enc(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)o, (const unsigned char *)s, (int)n);
	return o;
}

/* A Secret (data base64) or ConfigMap (data plain) with one or two keys. */
static cJSON *kv_object(bool secret, const char *name, const char *k1, const char *v1,
			const char *k2, const char *v2)
{
	cJSON *o = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(o, "metadata"),
	      *data = cJSON_AddObjectToObject(o, "data");
	const char *k[2] = {k1, k2}, *v[2] = {v1, v2};

	cJSON_AddStringToObject(o, "kind", secret ? "Secret" : "ConfigMap");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", "prod");
	cJSON_AddStringToObject(md, "resourceVersion", "7");
	for (int i = 0; i < 2; i++) {
		char *e;

		if (!k[i])
			continue;
		e = secret ? b64enc(v[i]) : strdup(v[i]);
		cJSON_AddStringToObject(data, k[i], e);
		free(e);
	}
	return o;
}

struct auth_log {
	int wants, skips;
	char last[512];
};

static void t_want(void *arg, bool secret, const char *ns, const char *name)
{
	(void)secret;
	(void)ns;
	(void)name;
	((struct auth_log *)arg)->wants++;
}

static void t_skipped(void *arg, const char *monitor, size_t endpoint, const char *msg)
{
	struct auth_log *l = arg;

	l->skips++;
	snprintf(l->last, sizeof(l->last), "%s/%zu: %s", monitor, endpoint, msg);
}

static int auth_of(const struct op_secrets *sc, const char *ep_json, char *err, size_t errlen,
		   bool *have)
{
	cJSON *ep = cJSON_Parse(ep_json);
	struct starling_http_auth *a = NULL;
	int rc;

	CU_ASSERT_FATAL(ep != NULL);
	err[0] = 0;
	rc = op_endpoint_auth(sc, "prod", ep, &a, err, errlen);
	*have = a != NULL;
	starling_http_auth_free(a);
	cJSON_Delete(ep);
	return rc;
}

static void test_fidelity_endpoint_auth(void)
{
	struct starling_k8s_store secrets = {0}, cms = {0};
	struct auth_log log = {0};
	struct op_secrets sc = {&secrets, &cms, t_want, t_skipped, &log, false};
	char *cert, *key, *cert2, *key2, err[512];
	bool have;

	make_cert(&cert, &key);
	make_cert(&cert2, &key2);
	starling_k8s_store_put(&secrets,
			       kv_object(true, "basic", "user", "scraper", "pass", "hunter2"), 0);
	starling_k8s_store_put(&secrets, kv_object(true, "token", "t", "s3cr3t-token", NULL, NULL),
			       0);
	starling_k8s_store_put(&secrets, kv_object(true, "tls", "tls.crt", cert, "tls.key", key),
			       0);
	starling_k8s_store_put(&secrets, kv_object(true, "mixed", "tls.crt", cert, "tls.key", key2),
			       0);
	starling_k8s_store_put(&cms, kv_object(false, "ca", "ca.crt", cert, "junk", "not pem"), 0);
	/* none set: no profile */
	CU_ASSERT_EQUAL(auth_of(&sc, "{\"port\":\"m\"}", err, sizeof(err), &have), 0);
	CU_ASSERT_FALSE(have);
	/* basicAuth, bearerTokenSecret, authorization, full tlsConfig */
	CU_ASSERT_EQUAL(
	    auth_of(&sc,
		    "{\"basicAuth\":{\"username\":{\"name\":\"basic\",\"key\":\"user\"},"
		    "\"password\":{\"name\":\"basic\",\"key\":\"pass\"}}}",
		    err, sizeof(err), &have),
	    0);
	CU_ASSERT_TRUE(have);
	CU_ASSERT_EQUAL(auth_of(&sc, "{\"bearerTokenSecret\":{\"name\":\"token\",\"key\":\"t\"}}",
				err, sizeof(err), &have),
			0);
	CU_ASSERT_TRUE(have);
	CU_ASSERT_EQUAL(
	    auth_of(&sc,
		    "{\"authorization\":{\"type\":\"Token\",\"credentials\":{\"name\":"
		    "\"token\",\"key\":\"t\"}},\"tlsConfig\":{\"ca\":{\"configMap\":{"
		    "\"name\":\"ca\",\"key\":\"ca.crt\"}},\"cert\":{\"secret\":{\"name\":"
		    "\"tls\",\"key\":\"tls.crt\"}},\"keySecret\":{\"name\":\"tls\",\"key\":"
		    "\"tls.key\"},\"serverName\":\"api.internal\"}}",
		    err, sizeof(err), &have),
	    0);
	CU_ASSERT_TRUE(have);
	CU_ASSERT(log.wants >= 5);
	/* oauth2 (types.go OAuth2): clientId from a ConfigMap, clientSecret
	 * from a Secret, scopes and endpointParams plain */
	CU_ASSERT_EQUAL(
	    auth_of(&sc,
		    "{\"oauth2\":{\"tokenUrl\":\"https://sso.example/token\","
		    "\"clientId\":{\"configMap\":{\"name\":\"ca\",\"key\":\"junk\"}},"
		    "\"clientSecret\":{\"name\":\"basic\",\"key\":\"pass\"},"
		    "\"scopes\":[\"metrics\"],\"endpointParams\":{\"audience\":\"x\"}}}",
		    err, sizeof(err), &have),
	    0);
	CU_ASSERT_TRUE(have);
	/* errors as store.go / tls.go / Validate() phrase them; no values */
	static const struct {
		const char *ep, *want;
	} bad[] = {
	    {"{\"bearerTokenSecret\":{\"name\":\"nope\",\"key\":\"t\"}}",
	     "unable to get secret \"nope\""},
	    {"{\"bearerTokenSecret\":{\"name\":\"token\",\"key\":\"x\"}}",
	     "key \"x\" in secret \"token\" not found"},
	    {"{\"tlsConfig\":{\"ca\":{\"configMap\":{\"name\":\"ca\",\"key\":\"junk\"}}}}",
	     "not a PEM certificate"},
	    {"{\"tlsConfig\":{\"cert\":{\"secret\":{\"name\":\"mixed\",\"key\":\"tls.crt\"}},"
	     "\"keySecret\":{\"name\":\"mixed\",\"key\":\"tls.key\"}}}",
	     "not a valid key pair"},
	    {"{\"tlsConfig\":{\"ca\":{\"secret\":{\"name\":\"tls\",\"key\":\"tls.crt\"},"
	     "\"configMap\":{\"name\":\"ca\",\"key\":\"ca.crt\"}}}}",
	     "mutually exclusive"},
	    {"{\"basicAuth\":{\"username\":{\"name\":\"basic\",\"key\":\"user\"}},"
	     "\"bearerTokenSecret\":{\"name\":\"token\",\"key\":\"t\"}}",
	     "at most one"},
	    {"{\"oauth2\":{\"tokenUrl\":\"http://x\",\"clientId\":{\"configMap\":{\"name\":"
	     "\"ca\",\"key\":\"junk\"}},\"clientSecret\":{\"name\":\"gone\",\"key\":\"s\"}}}",
	     "oauth2.clientSecret: unable to get secret \"gone\""},
	    {"{\"oauth2\":{\"clientId\":{\"secret\":{\"name\":\"basic\",\"key\":\"user\"}}}}",
	     "tokenUrl is required"},
	    {"{\"tlsConfig\":{\"caFile\":\"/etc/ca.crt\"}}", "allow_arbitrary_file_access"},
	    {"{\"authorization\":{\"type\":\"Basic\",\"credentials\":{\"name\":\"token\","
	     "\"key\":\"t\"}}}",
	     "Basic"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(auth_of(&sc, bad[i].ep, err, sizeof(err), &have), -EINVAL);
		CU_ASSERT_FALSE(have);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
		CU_ASSERT_PTR_NULL(strstr(err, "s3cr3t"));
		CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
	}
	/* A monitor with one bad endpoint: the other still becomes a job; the
	 * fingerprint follows the Secret's content. */
	{
		struct op_defaults d = defaults(OP_SERVICE_MONITORS);
		cJSON *m = cJSON_Parse(
		    "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"sm\",\"namespace\":"
		    "\"prod\"},\"spec\":{\"selector\":{},\"endpoints\":[{\"port\":\"a\","
		    "\"bearerTokenSecret\":{\"name\":\"gone\",\"key\":\"t\"}},{\"port\":\"b\","
		    "\"bearerTokenSecret\":{\"name\":\"token\",\"key\":\"t\"}}]}}");
		struct op_job **jobs = NULL;
		size_t n = 0;
		uint64_t fp1, fp2;

		d.secrets = &sc;
		CU_ASSERT_EQUAL_FATAL(op_jobs_from_monitor(&d, m, &jobs, &n, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_PTR_NOT_NULL(jobs[0]->cfg.auth);
		CU_ASSERT_STRING_EQUAL(jobs[0]->cfg.job_name, "serviceMonitor/prod/sm/1");
		CU_ASSERT_EQUAL(log.skips, 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(log.last, "prod/sm/0: bearerTokenSecret: unable"));
		op_job_put(jobs[0]);
		free(jobs);
		fp1 = op_monitor_job_fp(&d, m);
		starling_k8s_store_put(&secrets,
				       kv_object(true, "token", "t", "rotated", NULL, NULL), 0);
		fp2 = op_monitor_job_fp(&d, m);
		CU_ASSERT_NOT_EQUAL(fp1, fp2);
		starling_k8s_store_put(&secrets, kv_object(true, "gone", "t", "back", NULL, NULL),
				       0);
		CU_ASSERT_NOT_EQUAL(op_monitor_job_fp(&d, m), fp2);
		cJSON_Delete(m);
	}
	free(cert);
	free(key);
	free(cert2);
	free(key2);
	starling_k8s_store_clear(&secrets, -1);
	starling_k8s_store_clear(&cms, -1);
}

/* g: `params: {module: [http_2xx, tcp]}` sends both values
 * (promcfg.go copies ep.Params into the scrape config's url.Values;
 * Prometheus' Target.URL() replaces only the first value with
 * __param_module), as the blackbox exporter's multi-module probes need. */
static void test_fidelity_params(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	struct op_cluster c = {0};
	struct got g;
	struct scrape_target *t = NULL;
	char err[256];
	struct starling_lset ls;

	starling_k8s_store_put(&c.pods, pod("prod", "app-1", "app", "web", "Running", "10.0.0.5"),
			       0);
	targets_of(&d,
		   "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"pm\",\"namespace\":\"prod\"},"
		   "\"spec\":{\"selector\":{},\"podMetricsEndpoints\":[{\"port\":\"metrics\","
		   "\"path\":\"/probe\",\"params\":{\"target\":[\"example.com\"],"
		   "\"module\":[\"http_2xx\",\"tcp\"]}}]}}",
		   &c, &g);
	CU_ASSERT_EQUAL_FATAL(g.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.text[0], "__param_module=http_2xx,"));
	/* the URL the scrape uses */
	starling_lset_init(&ls);
	char *save = NULL;

	for (char *tok = strtok_r(g.text[0], ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq) {
			*eq = 0;
			starling_lset_set_str(&ls, tok, eq + 1);
		}
	}
	CU_ASSERT_EQUAL_FATAL(scrape_target_new(&g.job[0]->cfg, ls.v, ls.n, &t, err, sizeof(err)),
			      0);
	CU_ASSERT_STRING_EQUAL(
	    t->url, "http://10.0.0.5:9100/probe?module=http_2xx&module=tcp&target=example.com");
	scrape_target_free(t);
	starling_lset_free(&ls);
	got_free(&g);
	op_cluster_free(&c);
}

static int try_create(const struct starling_component_type *type, const char *cfg,
		      const char *want_log)
{
	char err[512];
	struct mock_host *m =
	    mock_host_new("prometheus.operator.podmonitors.t", type->schema, cfg, err, sizeof(err));
	void *inst = NULL;
	int rc;

	if (!m) {
		fprintf(stderr, "mock: %s\n", err);
		return -999;
	}
	mock_host_set_quiet(m, true);
	rc = type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst);
	if (rc == 0) {
		type->destroy(inst);
	} else if (want_log) {
		CU_ASSERT(mock_host_log_count(m, STARLING_LOG_ERROR, want_log) > 0);
	}
	mock_host_free(m);
	return rc;
}

static void test_component_config(void)
{
	const struct starling_component_type *pm = &prometheus_operator_podmonitors_type;
	const struct starling_component_type *sm = &prometheus_operator_servicemonitors_type;

	unsetenv("KUBERNETES_SERVICE_HOST");
	CU_ASSERT_EQUAL(try_create(pm,
				   "forward_to = [\"x.y\"]; client = { api_server = "
				   "\"http://127.0.0.1:1\"; bearer_token = \"t\"; };"
				   "selector = { match_labels = { team = \"a\"; }; "
				   "match_expression = ( { key = \"k\"; operator = \"In\"; "
				   "values = [\"v\"]; } ); };"
				   "rule = ( { source_labels = [\"a\"]; target_label = \"b\"; } );"
				   "namespaces = [\"a\", \"b\"];",
				   NULL),
			0);
	CU_ASSERT_EQUAL(try_create(pm, "forward_to = [\"x.y\"];", "not running in a cluster"),
			-EINVAL);
	CU_ASSERT_EQUAL(
	    try_create(pm,
		       "forward_to = [\"x.y\"]; client = { api_server = \"http://a\"; };"
		       "selector = { match_expression = ( { key = \"k\"; operator = "
		       "\"Near\"; } ); };",
		       "Near"),
	    -EINVAL);
	CU_ASSERT_EQUAL(
	    try_create(pm,
		       "forward_to = [\"x.y\"]; client = { api_server = \"http://a\"; };"
		       "selector = { match_expression = ( { key = \"k\"; operator = "
		       "\"In\"; } ); };",
		       "needs values"),
	    -EINVAL);
	CU_ASSERT_EQUAL(try_create(pm,
				   "forward_to = [\"x.y\"]; client = { api_server = \"http://a\"; "
				   "bearer_token = \"a\"; bearer_token_file = \"/b\"; };",
				   "at most one"),
			-EINVAL);
	CU_ASSERT_EQUAL(
	    try_create(pm,
		       "forward_to = [\"x.y\"]; client = { api_server = \"http://a\"; };"
		       "rule = ( { action = \"explode\"; } );",
		       "explode"),
	    -EINVAL);
	CU_ASSERT_EQUAL(
	    try_create(sm,
		       "forward_to = [\"x.y\"]; client = { api_server = \"http://a\"; };"
		       "kubernetes_role = \"nodes\";",
		       "nodes"),
	    -EINVAL);
	CU_ASSERT_EQUAL(try_create(pm,
				   "forward_to = [\"x.y\"]; client = { kubeconfig_file = "
				   "\"/nonexistent/kubeconfig\"; };",
				   "kubeconfig"),
			-ENOENT);
	/* in-cluster needs the service account token (none on this machine) */
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	CU_ASSERT_EQUAL(try_create(sm, "forward_to = [\"x.y\"];", "token"), -EINVAL);
	/* HTTP client arguments need api_server (Prometheus kubernetes_sd) */
	CU_ASSERT_EQUAL(try_create(sm,
				   "forward_to = [\"x.y\"]; client = { bearer_token = \"t\"; };",
				   "needs api_server"),
			-EINVAL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_kubeconfig(void)
{
	const struct starling_component_type *pm = &prometheus_operator_podmonitors_type;
	char path[] = "/tmp/op-kubeconfig.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	char cfg[512];

	CU_ASSERT_FATAL(fd >= 0);
	f = fdopen(fd, "w");
	fputs("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- cluster:\n"
	      "    certificate-authority: /etc/k8s/ca.crt\n"
	      "    server: https://10.0.0.1:6443\n  name: c\n"
	      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	      "users:\n- name: u\n  user:\n    token: abc\n",
	      f);
	fclose(f);
	snprintf(cfg, sizeof(cfg),
		 "forward_to = [\"x.y\"]; client = { kubeconfig_file = \"%s\"; };", path);
	CU_ASSERT_EQUAL(try_create(pm, cfg, NULL), 0);
	/* No current-context: refused (the old reader took the first server). */
	f = fopen(path, "w");
	fputs("clusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\n"
	      "users:\n- name: u\n  user:\n    token: abc\n",
	      f);
	fclose(f);
	CU_ASSERT_EQUAL(try_create(pm, cfg, "current-context"), -EINVAL);
	/* The context's user is missing: never another entry's token. */
	f = fopen(path, "w");
	fputs("current-context: x\nclusters:\n- {name: c, cluster: {server: https://a}}\n"
	      "contexts:\n- {name: x, context: {cluster: c, user: gone}}\n"
	      "users:\n- {name: u, user: {token: abc}}\n",
	      f);
	fclose(f);
	CU_ASSERT_EQUAL(try_create(pm, cfg, "user \"gone\""), -EINVAL);
	unlink(path);
}

/* ------------------------------------------------------------------------ */
/* The whole component through the mock host, against an in-process fake    */
/* API server that also serves the "pod"'s /metrics.                         */

static struct MHD_Daemon *api_daemon;
static unsigned api_port;
static volatile int api_garbage; /* 1: the pod LIST answers with HTML */

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *data,
				   size_t *size, void **ctx)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *watch = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "watch");
	char body[4096];
	const char *ct = "application/json";
	unsigned status = 200;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)cls, (void)method, (void)version, (void)data, (void)size, (void)ctx;
	if (strcmp(url, "/metrics") == 0) {
		snprintf(body, sizeof(body), "# TYPE test_metric gauge\ntest_metric{a=\"b\"} 42\n");
		ct = "text/plain; version=0.0.4";
	} else if (!auth || strcmp(auth, "Bearer tok") != 0) {
		status = 401;
		snprintf(body, sizeof(body), "{\"kind\":\"Status\",\"code\":401}");
	} else if (watch) {
		body[0] = '\0'; /* the watch ends at once; the client resumes */
	} else if (strcmp(url, "/apis/monitoring.coreos.com/v1/podmonitors") == 0) {
		snprintf(
		    body, sizeof(body),
		    "{\"kind\":\"PodMonitorList\",\"apiVersion\":\"monitoring.coreos.com/v1\","
		    "\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":{"
		    "\"name\":\"pm\",\"namespace\":\"ns1\",\"resourceVersion\":\"9\"},"
		    "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
		    "\"podMetricsEndpoints\":[{\"port\":\"metrics\",\"interval\":\"1s\"}]}}]}");
	} else if (strcmp(url, "/api/v1/pods") == 0 && api_garbage) {
		snprintf(body, sizeof(body), "<html>502 Bad Gateway</html>");
	} else if (strcmp(url, "/api/v1/pods") == 0) {
		snprintf(body, sizeof(body),
			 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{"
			 "\"resourceVersion\":\"11\"},\"items\":[{\"metadata\":{\"name\":\"web-1\","
			 "\"namespace\":\"ns1\",\"labels\":{\"app\":\"web\"}},\"spec\":{"
			 "\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"metrics\","
			 "\"containerPort\":%u}]}]},\"status\":{\"phase\":\"Running\","
			 "\"podIP\":\"127.0.0.1\"}}]}",
			 api_port);
	} else {
		status = 404;
		snprintf(body, sizeof(body), "{\"kind\":\"Status\",\"code\":404}");
	}
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", ct);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int api_start(void)
{
	struct sockaddr_in sa = {0};
	const union MHD_DaemonInfo *info;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	api_daemon = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
	    api_handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!api_daemon)
		return -1;
	info = MHD_get_daemon_info(api_daemon, MHD_DAEMON_INFO_BIND_PORT);
	api_port = info->port;
	return 0;
}

static const char *label_of(const struct starling_series *s, const char *name)
{
	for (size_t i = 0; i < s->n_labels; i++)
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	return NULL;
}

/* The first forwarded series called `name`, or NULL. */
static const struct starling_series *find_series(struct mock_host *m, const char *name)
{
	for (size_t b = 0; b < mock_host_forwarded_batches(m); b++) {
		const struct starling_series_batch *batch = mock_host_forwarded_batch(m, b);

		for (size_t i = 0; i < batch->n_series; i++) {
			const char *n = label_of(&batch->series[i], "__name__");

			if (n && strcmp(n, name) == 0)
				return &batch->series[i];
		}
	}
	return NULL;
}

static void test_component_end_to_end(void)
{
	const struct starling_component_type *type = &prometheus_operator_podmonitors_type;
	const struct starling_series *s = NULL;
	struct mock_host *m;
	char cfg[512], err[256], inst_s[64];
	void *inst = NULL;
	const char *why = NULL;

	CU_ASSERT_FATAL(api_start() == 0);
	api_garbage = 0;
	snprintf(cfg, sizeof(cfg),
		 "forward_to = [\"x.y\"]; client = { api_server = \"http://127.0.0.1:%u\"; "
		 "bearer_token = \"tok\"; };",
		 api_port);
	m = mock_host_new("prometheus.operator.podmonitors.t", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_EQUAL_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst), 0);
	CU_ASSERT_EQUAL_FATAL(type->start(inst), 0);
	MOCK_WAIT_UNTIL((s = find_series(m, "test_metric")) != NULL, 30000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	snprintf(inst_s, sizeof(inst_s), "127.0.0.1:%u", api_port);
	CU_ASSERT_STRING_EQUAL(label_of(s, "a"), "b");
	CU_ASSERT_STRING_EQUAL(label_of(s, "job"), "ns1/pm");
	CU_ASSERT_STRING_EQUAL(label_of(s, "namespace"), "ns1");
	CU_ASSERT_STRING_EQUAL(label_of(s, "pod"), "web-1");
	CU_ASSERT_STRING_EQUAL(label_of(s, "container"), "c");
	CU_ASSERT_STRING_EQUAL(label_of(s, "endpoint"), "metrics");
	CU_ASSERT_STRING_EQUAL(label_of(s, "instance"), inst_s);
	CU_ASSERT_EQUAL(s->n_labels, 8);
	CU_ASSERT_EQUAL(s->values[0], 42);
	s = find_series(m, "up");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->values[0], 1);
	CU_ASSERT(mock_host_healthy(m, &why));
	CU_ASSERT(mock_host_metric(m, "starling_operator_lists_total", NULL) >= 2);
	CU_ASSERT_EQUAL(mock_host_metric(m, "starling_operator_monitors", NULL), 1);
	CU_ASSERT_EQUAL(type->stop(inst), 0);
	type->destroy(inst);
	mock_host_free(m);

	/* An API server answering the pod LIST with garbage: unhealthy,
	 * counted, nothing scraped, and a clean stop. */
	api_garbage = 1;
	m = mock_host_new("prometheus.operator.podmonitors.t", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_EQUAL_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst), 0);
	CU_ASSERT_EQUAL_FATAL(type->start(inst), 0);
	MOCK_WAIT_UNTIL(!mock_host_healthy(m, NULL), 30000);
	CU_ASSERT(!mock_host_healthy(m, &why));
	CU_ASSERT(why && strstr(why, "not a Kubernetes list"));
	CU_ASSERT(mock_host_metric(m, "starling_operator_api_errors_total", NULL) >= 1);
	CU_ASSERT_EQUAL(mock_host_forwarded_batches(m), 0);
	CU_ASSERT_EQUAL(type->stop(inst), 0);
	type->destroy(inst);
	mock_host_free(m);
	MHD_stop_daemon(api_daemon);
}

/* ------------------------------------------------------------------------ */
/* Robustness: every node of every fixture replaced by every JSON type.      */

static cJSON *nth_node(cJSON *n, size_t *k, cJSON **parent, cJSON *par)
{
	cJSON *c, *r;

	if (*k == 0) {
		*parent = par;
		return n;
	}
	(*k)--;
	for (c = n->child; c; c = c->next)
		if ((r = nth_node(c, k, parent, n)))
			return r;
	return NULL;
}

static size_t count_nodes(const cJSON *n)
{
	size_t k = 1;

	for (const cJSON *c = n->child; c; c = c->next)
		k += count_nodes(c);
	return k;
}

static cJSON *replacement(int r)
{
	switch (r) {
	case 0:
		return cJSON_CreateNull();
	case 1:
		return cJSON_CreateNumber(-1e12);
	case 2:
		return cJSON_CreateString("x.y/z:(");
	case 3:
		return cJSON_CreateArray();
	default:
		return cJSON_CreateObject();
	}
}

static int count_cb(void *arg, struct op_job *job, const struct starling_lset *ls)
{
	(void)job, (void)ls;
	(*(size_t *)arg)++;
	return 0;
}

/* Mutate fixture `which` (0 monitor, 1 pod, 2 service, 3 endpoints/slice)
 * of a cluster of kind d and run discovery; must not crash or leak. */
static void mutate_all(struct op_defaults *d, const char *monitor, const char *const fx[4])
{
	for (int which = 0; which < 4; which++) {
		cJSON *root;
		size_t n;

		if (!fx[which])
			continue;
		root = cJSON_Parse(fx[which]);
		CU_ASSERT_FATAL(root != NULL);
		n = count_nodes(root);
		for (size_t k = 1; k < n; k++) {
			for (int r = 0; r < 5; r++) {
				cJSON *dup = cJSON_Duplicate(root, true), *parent = NULL, *node;
				size_t kk = k, found = 0;
				struct op_cluster c = {0};
				struct op_job **jobs = NULL;
				size_t nj = 0;
				struct op_gen_scratch s;
				char err[256];
				cJSON *mon;

				node = nth_node(dup, &kk, &parent, NULL);
				CU_ASSERT_FATAL(node && parent);
				if (node->string) /* an object member keeps its name */
					cJSON_ReplaceItemInObjectCaseSensitive(parent, node->string,
									       replacement(r));
				else
					cJSON_ReplaceItemViaPointer(parent, node, replacement(r));
				mon = which == 0 ? dup : cJSON_Parse(monitor);
				for (int f = 1; f < 4; f++) {
					cJSON *o;
					struct starling_k8s_store *st = f == 1	 ? &c.pods
									: f == 2 ? &c.services
									: d->endpointslice
									    ? &c.endpointslices
									    : &c.endpoints;

					if (!fx[f])
						continue;
					o = f == which ? cJSON_Duplicate(dup, true)
						       : cJSON_Parse(fx[f]);
					starling_k8s_prune(o, f == 1 ? STARLING_K8S_POD
								     : STARLING_K8S_OTHER);
					starling_k8s_store_put(st, o, 0);
				}
				op_gen_scratch_init(&s);
				if (op_jobs_from_monitor(d, mon, &jobs, &nj, err, sizeof(err)) ==
				    0) {
					op_targets(d, jobs, nj, &c, &s, count_cb, &found);
					for (size_t j = 0; j < nj; j++)
						op_job_put(jobs[j]);
					free(jobs);
				}
				op_gen_scratch_free(&s);
				op_cluster_free(&c);
				if (mon != dup)
					cJSON_Delete(mon);
				cJSON_Delete(dup);
			}
		}
		cJSON_Delete(root);
	}
}

static void test_mutated_objects(void)
{
	struct op_defaults d = defaults(OP_POD_MONITORS);
	char podbuf[4096];
	const char *pm[4], *sm[4];

	snprintf(podbuf, sizeof(podbuf), POD_FMT, "app-1", "prod", "app-1", "app", "web", "Running",
		 "10.0.0.5");
	pm[0] = podmonitor_json;
	pm[1] = podbuf;
	pm[2] = pm[3] = NULL;
	mutate_all(&d, podmonitor_json, pm);
	d = defaults(OP_SERVICE_MONITORS);
	sm[0] = servicemonitor_json;
	sm[1] = podbuf;
	sm[2] = service_json;
	sm[3] = endpoints_json;
	mutate_all(&d, servicemonitor_json, sm);
	d.endpointslice = true;
	sm[3] = endpointslice_json;
	mutate_all(&d, servicemonitor_json, sm);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("prometheus_operator", NULL, NULL);
	CU_add_test(s, "PodMonitor -> targets", test_podmonitor_targets);
	CU_add_test(s, "PodMonitor options", test_podmonitor_options);
	CU_add_test(s, "pods are pruned", test_prune);
	CU_add_test(s, "component rules come first", test_component_rules_first);
	CU_add_test(s, "ServiceMonitor -> targets", test_servicemonitor_targets);
	CU_add_test(s, "EndpointSlice role", test_endpointslice_targets);
	CU_add_test(s, "bad monitors are refused", test_bad_monitors);
	CU_add_test(s, "selector, store, durations", test_selector_and_store);
	CU_add_test(s, "component config", test_component_config);
	CU_add_test(s, "fidelity a: port is a regex", test_fidelity_port_regex);
	CU_add_test(s, "fidelity c: empty regex left out", test_fidelity_empty_regex);
	CU_add_test(s, "fidelity d/e: pod lookup, extra container ports",
		    test_fidelity_endpoints_pod_lookup);
	CU_add_test(s, "fidelity f: scrapeTimeout > interval", test_fidelity_scrape_timeout);
	CU_add_test(s, "fidelity i: container id", test_fidelity_container_id);
	CU_add_test(s, "fidelity i: attachMetadata", test_fidelity_attach_metadata);
	CU_add_test(s, "fidelity h: endpoint auth from Secrets", test_fidelity_endpoint_auth);
	CU_add_test(s, "fidelity g: multi-valued params", test_fidelity_params);
	CU_add_test(s, "kubeconfig", test_kubeconfig);
	CU_add_test(s, "every field of every fixture with a wrong type", test_mutated_objects);
	CU_add_test(s, "component end to end (mock host, fake API)", test_component_end_to_end);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
