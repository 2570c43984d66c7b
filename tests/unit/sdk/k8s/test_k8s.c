/*
 * SDK Kubernetes client: kubeconfig resolution (client-go clientcmd rules),
 * the LIST and watch-event decoders on real payload shapes (the fuzz seed
 * corpus), the object store, and the meta labels of cases the integration
 * test does not reach.
 */
#include <signal.h>
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <starling/k8s.h>

static char *slurp(const char *rel, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = malloc(1 << 20);

	snprintf(path, sizeof(path), "%s/%s", CORPUS, rel);
	f = fopen(path, "rb");
	CU_ASSERT_FATAL(f != NULL);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

static int parse_file(const char *rel, const char *ctx, struct starling_k8s_kubeconfig *k,
		      char *err, size_t errlen)
{
	size_t len;
	char *t = slurp(rel, &len);
	int rc = starling_k8s_kubeconfig_parse(t, len, "/etc/kube", ctx, k, err, errlen);

	free(t);
	return rc;
}

/* kind's kubeconfig: embedded CA and client certificate/key (*-data). */
static void test_kubeconfig_kind(void)
{
	struct starling_k8s_kubeconfig k;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse_file("k8s_kubeconfig/kind.yaml", NULL, &k, err, sizeof(err)),
			      0);
	CU_ASSERT_STRING_EQUAL(k.server, "https://127.0.0.1:39451");
	CU_ASSERT_PTR_NOT_NULL(strstr(k.ca_pem ? k.ca_pem : "", "BEGIN CERTIFICATE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(k.key_pem ? k.key_pem : "", "BEGIN EC PRIVATE KEY"));
	CU_ASSERT_PTR_NOT_NULL(k.cert_pem);
	CU_ASSERT_PTR_NULL(k.ca_file);
	CU_ASSERT_PTR_NULL(k.token);
	starling_k8s_kubeconfig_free(&k);
}

/* current-context picks prod among several; relative paths are made
 * relative to the kubeconfig's directory (client-go ResolvePaths); a named
 * context can be asked for instead. */
static void test_kubeconfig_contexts(void)
{
	struct starling_k8s_kubeconfig k;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse_file("k8s_kubeconfig/multi.yaml", NULL, &k, err, sizeof(err)),
			      0);
	CU_ASSERT_STRING_EQUAL(k.server, "https://prod.example.com:6443/");
	CU_ASSERT_STRING_EQUAL(k.namespace, "monitoring");
	CU_ASSERT_STRING_EQUAL(k.ca_file, "/etc/kube/certs/prod-ca.crt");
	CU_ASSERT_STRING_EQUAL(k.token_file, "/var/run/secrets/robot-token");
	CU_ASSERT_STRING_EQUAL(k.server_name, "kubernetes.default");
	CU_ASSERT_STRING_EQUAL(k.proxy_url, "http://proxy.example.com:3128");
	CU_ASSERT_PTR_NULL(k.username);
	CU_ASSERT_FALSE(k.insecure_skip_verify);
	starling_k8s_kubeconfig_free(&k);

	CU_ASSERT_EQUAL_FATAL(
	    parse_file("k8s_kubeconfig/multi.yaml", "staging", &k, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(k.server, "https://staging.example.com:6443");
	CU_ASSERT_STRING_EQUAL(k.username, "admin");
	CU_ASSERT_STRING_EQUAL(k.password, "s3cret");
	CU_ASSERT_STRING_EQUAL(k.namespace, "test");
	CU_ASSERT_TRUE(k.insecure_skip_verify);
	starling_k8s_kubeconfig_free(&k);
}

/* Whatever cannot be resolved is an error, never another entry's server
 * with these credentials. */
static void test_kubeconfig_unresolvable(void)
{
	struct starling_k8s_kubeconfig k;
	char err[256];
	static const char *const bad[] = {
	    /* no current-context */
	    "clusters: [{name: c, cluster: {server: https://a}}]\n"
	    "contexts: [{name: x, context: {cluster: c}}]\n",
	    /* current-context names a missing context */
	    "current-context: y\nclusters: [{name: c, cluster: {server: https://a}}]\n"
	    "contexts: [{name: x, context: {cluster: c}}]\n",
	    /* the context names a missing cluster */
	    "current-context: x\nclusters: [{name: c, cluster: {server: https://a}}]\n"
	    "contexts: [{name: x, context: {cluster: d, user: u}}]\n"
	    "users: [{name: u, user: {token: t}}]\n",
	    /* a cluster without a server */
	    "current-context: x\nclusters: [{name: c, cluster: {}}]\n"
	    "contexts: [{name: x, context: {cluster: c}}]\n",
	    /* not YAML */
	    "current-context: [\n",
	    /* not a mapping */
	    "- a\n- b\n",
	    /* bad base64 */
	    "current-context: x\nclusters: [{name: c, cluster: {server: https://a, "
	    "certificate-authority-data: '***'}}]\ncontexts: [{name: x, context: {cluster: c}}]\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CU_ASSERT_EQUAL(starling_k8s_kubeconfig_parse(bad[i], strlen(bad[i]), NULL, NULL,
							      &k, err, sizeof(err)),
				-EINVAL);
		CU_ASSERT(err[0] != 0);
	}
	CU_ASSERT_EQUAL(parse_file("k8s_kubeconfig/missing-user.yaml", NULL, &k, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "user \"nobody\""));
	CU_ASSERT_EQUAL(parse_file("k8s_kubeconfig/exec.yaml", NULL, &k, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "exec"));
	/* a context without a user is anonymous, which is allowed */
	{
		const char *anon = "current-context: x\n"
				   "clusters: [{name: c, cluster: {server: https://a}}]\n"
				   "contexts: [{name: x, context: {cluster: c}}]\n";

		CU_ASSERT_EQUAL_FATAL(starling_k8s_kubeconfig_parse(anon, strlen(anon), NULL, NULL,
								    &k, err, sizeof(err)),
				      0);
		CU_ASSERT_PTR_NULL(k.token);
		starling_k8s_kubeconfig_free(&k);
	}
}

static void test_conn_from_kubeconfig_file(void)
{
	char path[] = "/tmp/sts-kc-XXXXXX", err[256];
	int fd = mkstemp(path);
	const char *text = "current-context: x\n"
			   "clusters: [{name: c, cluster: {server: 'https://k.example:6443/'}}]\n"
			   "contexts: [{name: x, context: {cluster: c, user: u, namespace: n}}]\n"
			   "users: [{name: u, user: {token: abc}}]\n";
	struct starling_k8s_conn c;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	CU_ASSERT_EQUAL_FATAL(starling_k8s_conn_from_kubeconfig(path, NULL, &c, err, sizeof(err)),
			      0);
	CU_ASSERT_STRING_EQUAL(c.server, "https://k.example:6443");
	CU_ASSERT_STRING_EQUAL(c.namespace, "n");
	CU_ASSERT_PTR_NOT_NULL(c.auth);
	starling_k8s_conn_free(&c);
	unlink(path);
	CU_ASSERT_EQUAL(starling_k8s_conn_from_kubeconfig(path, NULL, &c, err, sizeof(err)),
			-ENOENT);
}

static void test_in_cluster(void)
{
	char dir[] = "/tmp/sts-sa-XXXXXX", p[300], err[256];
	struct starling_k8s_conn c;
	FILE *f;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	CU_ASSERT_EQUAL(starling_k8s_conn_in_cluster(dir, &c, err, sizeof(err)), -EINVAL);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	/* no token file */
	CU_ASSERT_EQUAL(starling_k8s_conn_in_cluster(dir, &c, err, sizeof(err)), -EINVAL);
	snprintf(p, sizeof(p), "%s/token", dir);
	f = fopen(p, "w");
	fputs("eyJhbGciOi", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/namespace", dir);
	f = fopen(p, "w");
	fputs("monitoring\n", f);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(starling_k8s_conn_in_cluster(dir, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.server, "https://[fd00::1]:443");
	CU_ASSERT_STRING_EQUAL(c.namespace, "monitoring");
	starling_k8s_conn_free(&c);
	unlink(p);
	snprintf(p, sizeof(p), "%s/token", dir);
	unlink(p);
	rmdir(dir);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_list_decode(void)
{
	struct starling_k8s_list l;
	size_t len;
	char err[256], *t = slurp("k8s_list/pods.json", &len);

	CU_ASSERT_EQUAL_FATAL(starling_k8s_list_decode(t, len, &l, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(l.resource_version, "123456");
	CU_ASSERT_PTR_NOT_NULL(l.cont);
	CU_ASSERT_EQUAL(cJSON_GetArraySize(l.items), 1);
	starling_k8s_list_free(&l);
	free(t);
	t = slurp("k8s_list/empty-null.json", &len);
	CU_ASSERT_EQUAL_FATAL(starling_k8s_list_decode(t, len, &l, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cJSON_GetArraySize(l.items), 0);
	CU_ASSERT_PTR_NULL(l.cont);
	starling_k8s_list_free(&l);
	free(t);
	/* A Status (403) is not a list. */
	t = slurp("k8s_list/forbidden.json", &len);
	CU_ASSERT_EQUAL(starling_k8s_list_decode(t, len, &l, err, sizeof(err)), -EINVAL);
	free(t);
	CU_ASSERT_EQUAL(starling_k8s_list_decode("<html>", 6, &l, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(
	    starling_k8s_list_decode("{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[1]}", 46,
				     &l, err, sizeof(err)),
	    -EINVAL);
}

struct evlog {
	int types[16];
	char rv[16][16];
	int n, code;
};

static int on_ev(void *arg, struct starling_k8s_event *ev)
{
	struct evlog *l = arg;

	if (l->n < 16) {
		l->types[l->n] = ev->type;
		snprintf(l->rv[l->n], sizeof(l->rv[0]), "%s",
			 ev->resource_version ? ev->resource_version : "");
		l->n++;
	}
	if (ev->type == STARLING_K8S_ERROR)
		l->code = ev->code;
	return 0;
}

/* The stream cut at every possible byte gives the same events. */
static void test_events_chunked(void)
{
	size_t len;
	char err[256], *t = slurp("k8s_watch/stream.jsonl", &len);

	for (size_t cut = 0; cut <= len; cut++) {
		struct starling_k8s_event_decoder d = {0};
		struct evlog l = {0};

		CU_ASSERT_EQUAL(starling_k8s_events_feed(&d, t, cut, on_ev, &l, err, sizeof(err)),
				0);
		CU_ASSERT_EQUAL(
		    starling_k8s_events_feed(&d, t + cut, len - cut, on_ev, &l, err, sizeof(err)),
		    0);
		CU_ASSERT_EQUAL(l.n, 4);
		CU_ASSERT_EQUAL(l.types[0], STARLING_K8S_ADDED);
		CU_ASSERT_EQUAL(l.types[1], STARLING_K8S_MODIFIED);
		CU_ASSERT_EQUAL(l.types[2], STARLING_K8S_BOOKMARK);
		CU_ASSERT_STRING_EQUAL(l.rv[2], "1050");
		CU_ASSERT_EQUAL(l.types[3], STARLING_K8S_DELETED);
		starling_k8s_events_free(&d);
	}
	free(t);
}

static void test_events_errors(void)
{
	struct starling_k8s_event_decoder d = {.line_limit = 64};
	struct evlog l = {0};
	size_t len;
	char err[256], *t = slurp("k8s_watch/expired.jsonl", &len), big[200];

	CU_ASSERT_EQUAL(starling_k8s_events_feed(&d, t, len, on_ev, &l, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(l.types[0], STARLING_K8S_ERROR);
	CU_ASSERT_EQUAL(l.code, 410);
	free(t);
	starling_k8s_events_reset(&d);
	t = slurp("k8s_watch/garbage.jsonl", &len);
	CU_ASSERT_EQUAL(starling_k8s_events_feed(&d, t, len, on_ev, &l, err, sizeof(err)), -EINVAL);
	free(t);
	starling_k8s_events_reset(&d);
	/* an unknown type, an event without an object */
	CU_ASSERT_EQUAL(starling_k8s_events_feed(&d, "{\"type\":\"X\",\"object\":{}}\n", 26, on_ev,
						 &l, err, sizeof(err)),
			-EINVAL);
	starling_k8s_events_reset(&d);
	CU_ASSERT_EQUAL(
	    starling_k8s_events_feed(&d, "{\"type\":\"ADDED\"}\n", 17, on_ev, &l, err, sizeof(err)),
	    -EINVAL);
	starling_k8s_events_reset(&d);
	/* a line that never ends is bounded */
	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(starling_k8s_events_feed(&d, big, sizeof(big), on_ev, &l, err, sizeof(err)),
			-EFBIG);
	starling_k8s_events_free(&d);
}

static cJSON *obj(const char *ns, const char *name)
{
	char b[256];

	snprintf(b, sizeof(b), "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\"}}", ns, name);
	return cJSON_Parse(b);
}

static void test_store(void)
{
	struct starling_k8s_store s = {0};
	char name[32];
	cJSON *probe;

	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		CU_ASSERT_EQUAL(starling_k8s_store_put(&s, obj(i % 2 ? "a" : "b", name), i % 3), 0);
	}
	CU_ASSERT_EQUAL(s.n, 1000);
	CU_ASSERT_PTR_NOT_NULL(starling_k8s_store_get(&s, "a", "p1"));
	CU_ASSERT_PTR_NULL(starling_k8s_store_get(&s, "b", "p1"));
	probe = obj("a", "p1");
	CU_ASSERT_EQUAL(starling_k8s_store_del(&s, probe), 0);
	CU_ASSERT_EQUAL(starling_k8s_store_del(&s, probe), -ENOENT);
	cJSON_Delete(probe);
	starling_k8s_store_clear(&s, 0);
	for (size_t i = 0; i < s.n; i++)
		CU_ASSERT(s.v[i].src != 0);
	CU_ASSERT_PTR_NOT_NULL(starling_k8s_store_get(&s, "b", "p2"));
	CU_ASSERT_PTR_NULL(starling_k8s_store_get(&s, "b", "p0"));
	CU_ASSERT_EQUAL(starling_k8s_store_put(&s, cJSON_Parse("{\"metadata\":{}}"), 0), -EINVAL);
	starling_k8s_store_clear(&s, -1);
	CU_ASSERT_EQUAL(s.n, 0);
}

struct collect {
	int n;
	char addr[8][64];
	char extra[8][128];
	const char *want;
};

static int collect_fn(void *arg, const struct starling_lset *t)
{
	struct collect *c = arg;
	const char *v = starling_lset_get(t, "__address__");
	const char *e = c->want ? starling_lset_get(t, c->want) : NULL;

	if (c->n < 8) {
		snprintf(c->addr[c->n], sizeof(c->addr[0]), "%s", v ? v : "");
		snprintf(c->extra[c->n], sizeof(c->extra[0]), "%s", e ? e : "");
	}
	c->n++;
	return 0;
}

/* endpointslice.go: a slice of the non-primary family of a dual-stack
 * service yields no targets; a port-less slice port gives the bare address.
 * node.go: no address -> no target. IPv6 addresses are bracketed. */
static void test_meta_edge_cases(void)
{
	struct starling_k8s_meta m;
	struct starling_k8s_store svcs = {0};
	struct collect c = {0};
	cJSON *es;

	starling_k8s_meta_init(&m);
	m.services = &svcs;
	starling_k8s_store_put(
	    &svcs,
	    cJSON_Parse(
		"{\"metadata\":{\"namespace\":\"d\",\"name\":\"s\"},\"spec\":{"
		"\"ipFamilyPolicy\":\"PreferDualStack\",\"ipFamilies\":[\"IPv4\",\"IPv6\"]}}"),
	    0);
	es =
	    cJSON_Parse("{\"metadata\":{\"namespace\":\"d\",\"name\":\"s-v6\",\"labels\":{"
			"\"kubernetes.io/service-name\":\"s\"}},\"addressType\":\"IPv6\","
			"\"endpoints\":[{\"addresses\":[\"fd00::5\"]}],\"ports\":[{\"port\":80}]}");
	CU_ASSERT_EQUAL(
	    starling_k8s_targets(&m, STARLING_K8S_ROLE_ENDPOINTSLICE, es, collect_fn, &c), 0);
	CU_ASSERT_EQUAL(c.n, 0);
	cJSON_ReplaceItemInObject(es, "addressType", cJSON_CreateString("IPv4"));
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(es, "metadata"), "name",
				  cJSON_CreateString("s-v4"));
	CU_ASSERT_EQUAL(
	    starling_k8s_targets(&m, STARLING_K8S_ROLE_ENDPOINTSLICE, es, collect_fn, &c), 0);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_STRING_EQUAL(c.addr[0], "[fd00::5]:80");
	cJSON_Delete(es);

	memset(&c, 0, sizeof(c));
	c.want = "__meta_kubernetes_endpointslice_port";
	es = cJSON_Parse("{\"metadata\":{\"namespace\":\"d\",\"name\":\"x\"},\"addressType\":"
			 "\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],\"ports\":[{}]}");
	starling_k8s_targets(&m, STARLING_K8S_ROLE_ENDPOINTSLICE, es, collect_fn, &c);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_STRING_EQUAL(c.addr[0], "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(c.extra[0], "");
	cJSON_Delete(es);

	memset(&c, 0, sizeof(c));
	es = cJSON_Parse("{\"metadata\":{\"name\":\"n\"},\"status\":{\"addresses\":[]}}");
	starling_k8s_targets(&m, STARLING_K8S_ROLE_NODE, es, collect_fn, &c);
	CU_ASSERT_EQUAL(c.n, 0);
	cJSON_Delete(es);

	/* pod without IP: nothing (pod.go) */
	memset(&c, 0, sizeof(c));
	es = cJSON_Parse("{\"metadata\":{\"namespace\":\"d\",\"name\":\"p\"},\"spec\":{"
			 "\"containers\":[{\"name\":\"c\"}]},\"status\":{\"phase\":\"Pending\"}}");
	starling_k8s_targets(&m, STARLING_K8S_ROLE_POD, es, collect_fn, &c);
	CU_ASSERT_EQUAL(c.n, 0);
	cJSON_Delete(es);
	starling_k8s_store_clear(&svcs, -1);
	starling_k8s_meta_free(&m);
}

static void test_prune(void)
{
	size_t len;
	char err[256], *t = slurp("k8s_list/pods.json", &len), *out;
	struct starling_k8s_list l;
	cJSON *pod;

	CU_ASSERT_EQUAL_FATAL(starling_k8s_list_decode(t, len, &l, err, sizeof(err)), 0);
	pod = cJSON_GetArrayItem(l.items, 0);
	starling_k8s_prune(pod, STARLING_K8S_POD);
	out = cJSON_PrintUnformatted(pod);
	CU_ASSERT_PTR_NULL(strstr(out, "managedFields"));
	CU_ASSERT_PTR_NULL(strstr(out, "volumes"));
	CU_ASSERT_PTR_NULL(strstr(out, "imageID"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "containerd://9f2b"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"containerPort\":80"));
	free(out);
	starling_k8s_list_free(&l);
	free(t);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	/* A test server writing to a client that gave up (a timeout on a loaded
	 * machine) must see EPIPE, not die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("sdk_k8s", NULL, NULL);
	CU_add_test(s, "kubeconfig_kind", test_kubeconfig_kind);
	CU_add_test(s, "kubeconfig_contexts", test_kubeconfig_contexts);
	CU_add_test(s, "kubeconfig_unresolvable", test_kubeconfig_unresolvable);
	CU_add_test(s, "conn_from_kubeconfig_file", test_conn_from_kubeconfig_file);
	CU_add_test(s, "in_cluster", test_in_cluster);
	CU_add_test(s, "list_decode", test_list_decode);
	CU_add_test(s, "events_chunked", test_events_chunked);
	CU_add_test(s, "events_errors", test_events_errors);
	CU_add_test(s, "store", test_store);
	CU_add_test(s, "meta_edge_cases", test_meta_edge_cases);
	CU_add_test(s, "prune", test_prune);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
