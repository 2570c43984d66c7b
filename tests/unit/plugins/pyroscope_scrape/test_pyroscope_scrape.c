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

#include <starling/http.h>

#include "mock_host.h"
#include "mock_wait.h"

/* Generous: a passing test returns as soon as its condition holds. */
#define WAIT_MS 30000
#include "pyro_scrape.h"

static struct pyro_config base_cfg(void)
{
	struct pyro_config c = {0};

	c.job_name = "pyroscope.scrape.t";
	c.interval_ms = 15000;
	c.timeout_ms = 10000;
	c.delta_seconds = 14;
	c.scheme = "http";
	return c;
}

static const struct pyro_profile_type cpu = {"process_cpu", "/debug/pprof/profile", true, true};
static const struct pyro_profile_type mem = {"memory", "/debug/pprof/allocs", true, false};

static void test_service_name(void)
{
	char *a;
	const struct starling_label k8s[] = {
	    {"__meta_kubernetes_namespace", "ns"},
	    {"__meta_kubernetes_pod_container_name", "app"},
	};
	const struct starling_label ann[] = {
	    {"__meta_kubernetes_namespace", "ns"},
	    {"__meta_kubernetes_pod_container_name", "app"},
	    {"__meta_kubernetes_pod_annotation_pyroscope_io_service_name", "from-annotation"},
	};
	const struct starling_label docker[] = {{"__meta_docker_container_name", "/web"}};
	const struct starling_label swarm[] = {{"__meta_dockerswarm_service_name", "svc"}};
	const struct starling_label none[] = {{"__address__", "h:1"}};

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
	    {"__address__", "10.0.0.1:6060"},
	    {"env", "prod"},
	    {"__meta_kubernetes_namespace", "ns"},
	    {"__meta_kubernetes_pod_container_name", "api"},
	    {"__tmp", "x"},
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
	/* __name__ env instance job otel.scope.name otel.scope.version service_name */
	CU_ASSERT_EQUAL(t->n_labels, 7);
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
	struct starling_scrape_param params[] = {{"debug", "0"}, {"seconds", "99"}};
	struct pyro_target *t;
	char err[256];
	const struct starling_label in[] = {
	    {"__address__", "example.org"},
	    {"__scheme__", "https"},
	    {"__profile_path_prefix__", "/app"},
	    {"__param_gc", "1"},
	    {"service_name", "mine"},
	    {"job", "custom"},
	    {"instance", "inst-1"},
	};
	const struct starling_label v6[] = {{"__address__", "::1"}};
	const struct starling_label noaddr[] = {{"job", "x"}};
	const struct starling_label url[] = {{"__address__", "http://h:1/x"}};

	c.params = params;
	c.n_params = 2;
	c.path_prefix = "/ignored";
	c.delta_seconds = 5;
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &cpu, in, 7, &t, err, sizeof(err)), 0);
	/* default https port, the target's prefix wins, seconds is ours, the
	 * rest sorted */
	CU_ASSERT_STRING_EQUAL(
	    t->url, "https://example.org:443/app/debug/pprof/profile?debug=0&gc=1&seconds=5");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "service_name"), "mine");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "job"), "custom");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "instance"), "inst-1");
	pyro_target_free(t);

	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, v6, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(t->url,
			       "http://[::1]:80/ignored/debug/pprof/allocs?debug=0&seconds=99");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "service_name"), "unspecified");
	pyro_target_free(t);

	CU_ASSERT_EQUAL(pyro_target_new(&c, &mem, noaddr, 1, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "__address__"));
	CU_ASSERT_EQUAL(pyro_target_new(&c, &mem, url, 1, &t, err, sizeof(err)), -EINVAL);
}

/* What Alloy does that differed before (issue 10), after
 * internal/component/pyroscope/scrape/target.go: godeltaprof profiles keep
 * the standard names, a target's __profile_path__ wins, and the component's
 * params override a target's __param_ labels of the same name. */
static void test_target_alloy_rules(void)
{
	static const struct pyro_profile_type dmem = {"godeltaprof_memory",
						      "/debug/pprof/delta_heap", true, false};
	static const struct pyro_profile_type dmutex = {"godeltaprof_mutex",
							"/debug/pprof/delta_mutex", true, false};
	static const struct pyro_profile_type dblock = {"godeltaprof_block",
							"/debug/pprof/delta_block", true, false};
	struct pyro_config c = base_cfg();
	struct starling_scrape_param params[] = {{"gc", "0"}};
	struct pyro_target *t;
	char err[256];
	const struct starling_label plain[] = {{"__address__", "h:6060"}};
	const struct starling_label custom[] = {{"__address__", "h:6060"},
						{"__profile_path__", "/custom/heap"},
						{"__param_gc", "1"},
						{"__param_x", "y"}};

	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &dmem, plain, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__name__"), "memory");
	CU_ASSERT_STRING_EQUAL(t->url, "http://h:6060/debug/pprof/delta_heap");
	CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "__delta__"));
	pyro_target_free(t);
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &dmutex, plain, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__name__"), "mutex");
	pyro_target_free(t);
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &dblock, plain, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__name__"), "block");
	pyro_target_free(t);

	c.params = params;
	c.n_params = 1;
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, custom, 4, &t, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(t->url, "http://h:6060/custom/heap?gc=0&x=y");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__name__"), "memory");
	/* Scope labels as Alloy's AddScopeLabels fills them. */
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "otel.scope.name"),
			       "com.grafana.alloy/pyroscope.scrape");
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "otel.scope.version"),
			       "v" STARLING_VERSION);
	pyro_target_free(t);
	{
		const struct starling_label own[] = {{"__address__", "h:6060"},
						     {"otel.scope.name", "my.scope"}};

		CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, own, 2, &t, err, sizeof(err)), 0);
		CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "otel.scope.name"),
				       "my.scope");
		CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "otel.scope.version"));
		pyro_target_free(t);
	}
}

static void test_validate(void)
{
	const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00};
	const uint8_t raw[] = {0x0a, 0x04, 0x08, 0x01, 0x10, 0x02};
	const uint8_t html[] = "<html>";
	const uint8_t json[] = "{\"a\":1}";
	const uint8_t junk[] = {0xff, 0xff};
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

/* ---- client-side delta ----------------------------------------------------- */

struct wbuf {
	uint8_t b[4096];
	size_t n;
};

static void w_varint(struct wbuf *w, uint64_t v)
{
	while (v >= 0x80) {
		w->b[w->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->b[w->n++] = (uint8_t)v;
}

static void w_int(struct wbuf *w, unsigned field, uint64_t v)
{
	w_varint(w, field << 3);
	w_varint(w, v);
}

static void w_bytes(struct wbuf *w, unsigned field, const void *p, size_t n)
{
	w_varint(w, field << 3 | 2);
	w_varint(w, n);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_msg(struct wbuf *w, unsigned field, const struct wbuf *m)
{
	w_bytes(w, field, m->b, m->n);
}

/* A memory profile: sample types alloc_objects/count, alloc_space/bytes,
 * inuse_space/bytes; functions fA (string 6) and fB (7); the location of
 * fA gets id idA, of fB idB (the runtime renumbers them per profile). */
struct psample {
	int n_locs;
	int locs[2]; /* 'A' or 'B' */
	int64_t v[3];
};

static size_t build_profile(uint8_t *out, int idA, int idB, const struct psample *s, int n)
{
	static const char *const strs[] = {"",	    "alloc_objects", "count", "alloc_space",
					   "bytes", "inuse_space",   "fA",    "fB"};
	struct wbuf w = {.n = 0}, m, l;
	const int st[3][2] = {{1, 2}, {3, 4}, {5, 4}};

	for (int i = 0; i < 3; i++) {
		m.n = 0;
		w_int(&m, 1, (uint64_t)st[i][0]);
		w_int(&m, 2, (uint64_t)st[i][1]);
		w_msg(&w, 1, &m);
	}
	for (int i = 0; i < n; i++) {
		struct wbuf pk = {.n = 0};

		m.n = 0;
		for (int j = 0; j < s[i].n_locs; j++)
			w_varint(&pk, (uint64_t)(s[i].locs[j] == 'A' ? idA : idB));
		w_msg(&m, 1, &pk);
		for (int j = 0; j < 3; j++) /* unpacked values, also legal */
			w_int(&m, 2, (uint64_t)s[i].v[j]);
		w_msg(&w, 2, &m);
	}
	for (int f = 0; f < 2; f++) { /* location: id, address, line{function} */
		m.n = 0;
		l.n = 0;
		w_int(&m, 1, (uint64_t)(f == 0 ? idA : idB));
		w_int(&m, 3, f == 0 ? 0x1000 : 0x2000);
		w_int(&l, 1, (uint64_t)(f + 1));
		w_int(&l, 2, 10);
		w_msg(&m, 4, &l);
		w_msg(&w, 4, &m);
	}
	for (int f = 0; f < 2; f++) { /* function: id, name */
		m.n = 0;
		w_int(&m, 1, (uint64_t)(f + 1));
		w_int(&m, 2, (uint64_t)(6 + f));
		w_msg(&w, 5, &m);
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		w_bytes(&w, 6, strs[i], strlen(strs[i]));
	memcpy(out, w.b, w.n);
	return w.n;
}

struct rsample {
	uint64_t locs[4];
	int n_locs;
	int64_t v[4];
	int n_v;
};

static uint64_t r_varint(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;

	for (int s = 0; *p < end && s < 64; s += 7) {
		uint8_t c = *(*p)++;

		v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			break;
	}
	return v;
}

/* The samples of an uncompressed profile (packed fields only, as the
 * rewriter emits them). */
static int read_samples(const uint8_t *b, size_t n, struct rsample *out, int max)
{
	const uint8_t *p = b, *end = b + n;
	int k = 0;

	while (p < end) {
		uint64_t tag = r_varint(&p, end), len;

		if ((tag & 7) == 0) {
			r_varint(&p, end);
			continue;
		}
		len = r_varint(&p, end);
		if ((tag >> 3) == 2 && k < max) {
			const uint8_t *q = p, *qe = p + len;

			memset(&out[k], 0, sizeof(out[k]));
			while (q < qe) {
				uint64_t t = r_varint(&q, qe), l = r_varint(&q, qe);
				const uint8_t *e = q + l;

				while (q < e) {
					uint64_t v = r_varint(&q, e);

					if ((t >> 3) == 1 && out[k].n_locs < 4)
						out[k].locs[out[k].n_locs++] = v;
					else if ((t >> 3) == 2 && out[k].n_v < 4)
						out[k].v[out[k].n_v++] = (int64_t)v;
				}
			}
			k++;
		}
		p += len;
	}
	return k;
}

static void test_delta(void)
{
	const struct psample a[] = {
	    {1, {'A'}, {10, 1000, 5}},
	    {2, {'B', 'A'}, {4, 400, 0}},
	};
	const struct psample b[] = {
	    {1, {'A'}, {15, 1500, 7}},	  /* grew: 5, 500, in-use 7 as is */
	    {2, {'B', 'A'}, {4, 400, 0}}, /* unchanged: dropped */
	    {1, {'B'}, {3, 300, 0}},	  /* new stack: all of it */
	};
	struct pyro_delta *st = NULL;
	uint8_t pa[4096], pb[4096], *out = NULL, *raw = NULL;
	size_t na, nb, n_out, raw_cap = 0, raw_len;
	struct rsample r[8];
	char err[128];
	int k;

	na = build_profile(pa, 1, 2, a, 2);
	nb = build_profile(pb, 2, 1, b, 3); /* location ids swapped */
	CU_ASSERT_EQUAL(pyro_delta_apply(&st, "memory", pa, na, &out, &n_out, err, sizeof(err)), 1);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL_FATAL(
	    pyro_delta_apply(&st, "memory", pb, nb, &out, &n_out, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(n_out > 2 && out[0] == 0x1f && out[1] == 0x8b);
	CU_ASSERT_EQUAL_FATAL(starling_http_gunzip(out, n_out, 1 << 20, &raw, &raw_cap, &raw_len),
			      0);
	k = read_samples(raw, raw_len, r, 8);
	CU_ASSERT_EQUAL_FATAL(k, 2);
	/* in profile b, fA is location 2 and fB location 1 */
	CU_ASSERT_EQUAL(r[0].n_locs, 1);
	CU_ASSERT_EQUAL(r[0].locs[0], 2);
	CU_ASSERT_EQUAL(r[0].v[0], 5);
	CU_ASSERT_EQUAL(r[0].v[1], 500);
	CU_ASSERT_EQUAL(r[0].v[2], 7);
	CU_ASSERT_EQUAL(r[1].locs[0], 1);
	CU_ASSERT_EQUAL(r[1].v[0], 3);
	CU_ASSERT_EQUAL(r[1].v[1], 300);
	/* everything but the samples is copied as it came */
	CU_ASSERT_PTR_NOT_NULL(memmem(raw, raw_len, "alloc_space", 11));
	free(out);
	out = NULL;

	/* the same profile again: nothing was allocated; only the in-use
	 * value (not cumulative) keeps a sample */
	CU_ASSERT_EQUAL(pyro_delta_apply(&st, "memory", pb, nb, &out, &n_out, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(starling_http_gunzip(out, n_out, 1 << 20, &raw, &raw_cap, &raw_len), 0);
	CU_ASSERT_EQUAL_FATAL(read_samples(raw, raw_len, r, 8), 1);
	CU_ASSERT_EQUAL(r[0].v[0], 0);
	CU_ASSERT_EQUAL(r[0].v[1], 0);
	CU_ASSERT_EQUAL(r[0].v[2], 7);
	free(out);
	out = NULL;

	/* garbage: an error, the baseline is kept */
	CU_ASSERT_EQUAL(pyro_delta_apply(&st, "memory", (const uint8_t *)"\x0a\xff\xff", 3, &out,
					 &n_out, err, sizeof(err)),
			-EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "malformed"));
	CU_ASSERT_EQUAL(pyro_delta_apply(&st, "memory", (const uint8_t *)"\x1f\x8b\x08\x00zz", 6,
					 &out, &n_out, err, sizeof(err)) < 0,
			1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* a gzip body long enough to be inflated, with corrupt deflate data:
	 * the inflate buffer used to leak on this error (found by
	 * fuzz_pprof_delta; LeakSanitizer in the ASan build catches it) */
	CU_ASSERT_EQUAL(
	    pyro_delta_apply(&st, "memory",
			     (const uint8_t *)"\x1f\x8b\x08\x00\0\0\0\0\0\x03"
					      "\xff\xff\xff\xff\xff\xff\0\0\0\0\x10\0\0\0",
			     24, &out, &n_out, err, sizeof(err)),
	    -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "gunzip"));
	CU_ASSERT_EQUAL(pyro_delta_apply(&st, "memory", pb, nb, &out, &n_out, err, sizeof(err)), 0);
	free(out);
	free(raw);
	pyro_delta_free(st);
}

/* Targets are untrusted: every truncation and many corruptions of a
 * profile must give an error or a profile, never a crash (run under ASan). */
static void test_delta_corrupt(void)
{
	const struct psample a[] = {{2, {'B', 'A'}, {4, 400, 9}}};
	uint8_t good[4096], bad[4096], *out;
	size_t n = build_profile(good, 1, 2, a, 1), n_out;
	char err[128];
	unsigned seed = 1;

	for (size_t cut = 0; cut <= n; cut++) {
		struct pyro_delta *st = NULL;

		for (int round = 0; round < 2; round++) {
			out = NULL;
			if (pyro_delta_apply(&st, "memory", good, cut, &out, &n_out, err,
					     sizeof(err)) < 0)
				CU_ASSERT_TRUE(err[0] != '\0');
			free(out);
		}
		pyro_delta_free(st);
	}
	for (int i = 0; i < 3000; i++) {
		struct pyro_delta *st = NULL;

		memcpy(bad, good, n);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245 + 12345;
			bad[(seed >> 8) % n] = (uint8_t)(seed >> 16);
		}
		out = NULL;
		pyro_delta_apply(&st, "memory", good, n, &out, &n_out, err, sizeof(err));
		pyro_delta_apply(&st, "memory", bad, n, &out, &n_out, err, sizeof(err));
		free(out);
		pyro_delta_free(st);
	}
}

static void test_delta_labels(void)
{
	struct pyro_config c = base_cfg();
	const struct pyro_profile_type mutex = {"mutex", "/debug/pprof/mutex", true, false, true};
	const struct starling_label in[] = {{"__address__", "h:1"}};
	struct pyro_target *t;
	char err[128];

	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mutex, in, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(t->client_delta);
	CU_ASSERT_STRING_EQUAL(pyro_label(t->labels, t->n_labels, "__delta__"), "false");
	pyro_target_free(t);
	CU_ASSERT_EQUAL_FATAL(pyro_target_new(&c, &mem, in, 1, &t, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(pyro_label(t->labels, t->n_labels, "__delta__"));
	pyro_target_free(t);
}

/* ---- through the mock host ----------------------------------------------- */

static struct mock_host *make(const char *cfg, void **inst, int *rc)
{
	struct mock_host *m =
	    mock_host_new("pyroscope.scrape.t", pyroscope_scrape_type.schema, cfg, NULL, 0);

	if (!m)
		return NULL;
	mock_host_set_quiet(m, true);
	*rc = pyroscope_scrape_type.create(mock_host_api(m), mock_host_self(m), mock_host_config(m),
					   inst);
	return m;
}

static void test_config(void)
{
	struct mock_host *m;
	void *in;
	int rc;

	/* defaults: the five Go profile types per target */
	m = make(
	    "targets = ( { *address__ = \"127.0.0.1:1\"; }, { *address__ = \"127.0.0.1:2\"; } );"
	    "forward_to = [ \"x.y\" ];",
	    &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_DOUBLE_EQUAL(mock_host_metric(m, "pyroscope_scrape_targets_gauge", NULL), 10,
			       0.1);
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
	m = make(
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"x.y\" ];"
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
	static const uint8_t prof[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00};
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
	snprintf(
	    cfg, sizeof(cfg),
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
	if (owned)
		MOCK_WAIT_UNTIL(
		    mock_host_forwarded_profiles(m) >= 2 &&
			mock_host_metric(m, "starling_pyroscope_scrape_failures_total", NULL) >= 2,
		    WAIT_MS);
	else
		usleep(700000); /* a window for what must not happen: 3 intervals */
	pyroscope_scrape_type.stop(in);
	if (owned) {
		size_t owned_n, total;

		/* good target forwarded, the 500 one failed and was counted */
		CU_ASSERT_TRUE(mock_host_forwarded_profiles(m) >= 2);
		CU_ASSERT_TRUE(
		    mock_host_metric(m, "starling_pyroscope_scrape_failures_total", NULL) >= 2);
		CU_ASSERT_TRUE(
		    mock_host_metric(m, "starling_pyroscope_forwarded_profiles_total", NULL) >= 2);
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

/* The wall clock jumps back an hour: scraping goes on at the new slots
 * instead of waiting for the clock to catch up. */
static void test_scrape_clock_back(void)
{
	char cfg[768];
	struct mock_host *m;
	void *in;
	int rc, hits;

	snprintf(
	    cfg, sizeof(cfg),
	    "targets = ( { *address__ = \"127.0.0.1:%u\"; service_name = \"good\"; } );"
	    "forward_to = [ \"x.y\" ]; scrape_interval = \"200ms\";"
	    "profiling_config = { process_cpu = { enabled = false; }; mutex = { enabled = false; };"
	    " block = { enabled = false; }; memory = { enabled = false; }; };",
	    port_);
	m = make(cfg, &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(pyroscope_scrape_type.start(in), 0);
	MOCK_WAIT_UNTIL(get(&hits_good) >= 1, WAIT_MS);
	mock_host_advance(m, -3600 * 1000);
	hits = get(&hits_good);
	MOCK_WAIT_UNTIL(get(&hits_good) >= hits + 3, WAIT_MS);
	CU_ASSERT_TRUE(get(&hits_good) >= hits + 3);
	CU_ASSERT_TRUE(mock_host_log_count(m, STARLING_LOG_WARN, "wall clock went back") >= 1);
	pyroscope_scrape_type.stop(in);
	mock_host_advance(m, 3600 * 1000);
	pyroscope_scrape_type.destroy(in);
	mock_host_free(m);
}

/* Targets from a discovery component (ABI 1.1 target sets): followed in
 * place like prometheus.scrape follows them (Prometheus' scrapePool.sync,
 * scrape/scrape.go): kept units stay, new ones start at their slot,
 * vanished ones go; targets without __address__ are dropped and counted;
 * clustering applies to them as to inline ones. */
static void test_scrape_discovered(void)
{
	char cfg[768], addr[64];
	struct mock_host *m;
	struct mock_targets *s1 = mock_targets_new(), *s2 = mock_targets_new();
	size_t owned, total;
	void *in;
	int rc;

	snprintf(addr, sizeof(addr), "__address__=127.0.0.1:%u", port_);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( \"discovery.kubernetes.pods\" );"
		 "forward_to = [ \"x.y\" ]; scrape_interval = \"200ms\";"
		 "clustering = { enabled = true; };"
		 "profiling_config = { process_cpu = { enabled = false; }; mutex = { enabled = "
		 "false; }; block = { enabled = false; }; memory = { enabled = false; }; };");
	m = make(cfg, &in, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(pyroscope_scrape_type.start(in), 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 0);

	pthread_mutex_lock(&rx_lock);
	hits_good = hits_bad = 0;
	pthread_mutex_unlock(&rx_lock);
	mock_targets_add(s1, addr, "service_name=a", NULL);
	mock_targets_add(s1, addr, "service_name=b", NULL);
	mock_targets_add(s1, "service_name=c", NULL); /* no __address__ */
	CU_ASSERT_EQUAL(mock_host_deliver_targets(&pyroscope_scrape_type, in,
						  "discovery.kubernetes.pods",
						  mock_targets_set(s1)),
			0);
	CU_ASSERT_EQUAL(
	    mock_host_metric(m, "starling_pyroscope_scrape_targets_dropped_total", NULL), 1);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 2);
	CU_ASSERT_EQUAL(owned, 2);
	MOCK_WAIT_UNTIL(mock_host_forwarded_profiles(m) >= 2, WAIT_MS);
	CU_ASSERT_TRUE(mock_host_forwarded_profiles(m) >= 2);

	mock_targets_add(s2, addr, "service_name=b", NULL);
	mock_targets_add(s2, addr, "service_name=d", NULL);
	CU_ASSERT_EQUAL(mock_host_deliver_targets(&pyroscope_scrape_type, in,
						  "discovery.kubernetes.pods",
						  mock_targets_set(s2)),
			0);
	CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_INFO,
					    "scrape units updated: 1 kept, 1 added, 1 removed"),
			1);
	/* owned elsewhere now: the discovered units are not ours */
	mock_host_set_owns(m, owns_nothing, NULL);
	mock_host_cluster_change(m, 2);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 2);
	CU_ASSERT_EQUAL(owned, 0);
	/* the source removed by a reload: an empty set */
	CU_ASSERT_EQUAL(mock_host_deliver_targets(&pyroscope_scrape_type, in,
						  "discovery.kubernetes.pods", NULL),
			0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 0);
	pyroscope_scrape_type.stop(in);
	pyroscope_scrape_type.destroy(in);
	mock_targets_free(s1);
	mock_targets_free(s2);
	mock_host_free(m);
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
	CU_add_test(s, "target_alloy_rules", test_target_alloy_rules);
	CU_add_test(s, "validate_response", test_validate);
	CU_add_test(s, "config", test_config);
	CU_add_test(s, "client_delta", test_delta);
	CU_add_test(s, "client_delta_labels", test_delta_labels);
	CU_add_test(s, "client_delta_corrupt_input", test_delta_corrupt);
	s = CU_add_suite("pyroscope_scrape", suite_init, suite_clean);
	CU_add_test(s, "scrape_owned_targets", test_scrape_owned);
	CU_add_test(s, "skip_targets_owned_elsewhere", test_scrape_not_owned);
	CU_add_test(s, "wall_clock_goes_back", test_scrape_clock_back);
	CU_add_test(s, "follows_discovered_targets", test_scrape_discovered);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
