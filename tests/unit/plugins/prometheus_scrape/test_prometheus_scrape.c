/*
 * Unit tests of prometheus.scrape: target labels and URLs, the series cache
 * and staleness markers, honor_labels, limits, the scrape phase, and the
 * whole component (scrape thread, ownership filtering, target updates)
 * against a tiny in-test HTTP server, through the mock host.
 */
#include <signal.h>
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <starling/labels.h>
#include <starling/relabel.h>

#include "mock_host.h"
#include "mock_wait.h"
#include "scrape_component.h"

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

static struct scrape_config *mk_cfg(void)
{
	struct scrape_config *c = calloc(1, sizeof(*c));

	c->job_name = strdup("node");
	c->interval_ms = 15000;
	c->timeout_ms = 10000;
	c->metrics_path = strdup("/metrics");
	c->scheme = strdup("http");
	c->honor_timestamps = true;
	c->enable_compression = true;
	c->body_size_limit = SCRAPE_SAFETY_BODY_LIMIT;
	c->fallback_format = STARLING_EXPO_PROMETHEUS;
	return c;
}

static void free_cfg(struct scrape_config *c)
{
	free(c->job_name);
	free(c->metrics_path);
	free(c->scheme);
	for (size_t i = 0; i < c->n_params; i++) {
		free(c->params[i].name);
		free(c->params[i].value);
	}
	free(c->params);
	free(c);
}

static const char *get_label(const struct starling_series *s, const char *name)
{
	for (size_t i = 0; i < s->n_labels; i++)
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	return NULL;
}

static bool sorted(const struct starling_series *s)
{
	for (size_t i = 1; i < s->n_labels; i++)
		if (strcmp(s->labels[i - 1].name, s->labels[i].name) >= 0)
			return false;
	return true;
}

/* The series named `name` (and, if lname, with label lname=lvalue). */
static const struct starling_series *find(const struct starling_series_batch *b, const char *name,
					  const char *lname, const char *lvalue)
{
	for (size_t i = 0; i < b->n_series; i++) {
		const char *n = get_label(&b->series[i], "__name__");
		const char *v = lname ? get_label(&b->series[i], lname) : NULL;

		if (n && strcmp(n, name) == 0 && (!lname || (v && strcmp(v, lvalue) == 0)))
			return &b->series[i];
	}
	return NULL;
}

static bool is_stale(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits == STARLING_STALE_NAN_BITS;
}

/* A processing harness: mock host + config + one target. */
struct harness {
	struct mock_host *m;
	struct scrape_config *cfg;
	struct scrape_scratch scratch;
	struct scrape_target *t;
	struct scrape_ctx ctx;
};

static void h_init(struct harness *h, struct scrape_config *cfg, const char *extra_name,
		   const char *extra_value)
{
	struct starling_label in[2] = {{"__address__", "10.0.0.1:9100"}, {extra_name, extra_value}};
	char err[256];

	memset(h, 0, sizeof(*h));
	h->m = mock_host_new("prometheus.scrape.t", NULL, "", err, sizeof(err));
	CU_ASSERT_FATAL(h->m != NULL);
	mock_host_set_quiet(h->m, true);
	h->cfg = cfg;
	scrape_scratch_init(&h->scratch);
	CU_ASSERT_FATAL(scrape_target_new(cfg, in, extra_name ? 2 : 1, &h->t, err, sizeof(err)) ==
			0);
	h->ctx.api = mock_host_api(h->m);
	h->ctx.self = mock_host_self(h->m);
	h->ctx.cfg = cfg;
	h->ctx.scratch = &h->scratch;
}

static void h_free(struct harness *h)
{
	scrape_target_free(h->t);
	scrape_scratch_free(&h->scratch);
	free_cfg(h->cfg);
	mock_host_free(h->m);
}

/* Process one successful scrape of body at time ts; returns the batch. */
static const struct starling_series_batch *h_scrape(struct harness *h, const char *body, int64_t ts,
						    struct scrape_stats *st)
{
	struct scrape_result r = {0};

	r.status = 200;
	r.body = body;
	r.body_len = strlen(body);
	r.content_type = "text/plain; version=0.0.4";
	r.start_ms = ts;
	r.duration_us = 1500;
	mock_host_clear_forwarded(h->m);
	scrape_process(&h->ctx, h->t, &r, st);
	CU_ASSERT_EQUAL_FATAL(mock_host_forwarded_batches(h->m), 1);
	return mock_host_forwarded_batch(h->m, 0);
}

/* ------------------------------------------------------------------------ */
/* Targets.                                                                  */

static void test_target_labels_and_url(void)
{
	struct scrape_config *c = mk_cfg();
	struct starling_label in[] = {
	    {"__address__", "host-a:9100"},  {"env", "prod"},  {"__param_module", "if mib"},
	    {"__meta_kubernetes_pod", "p1"}, {"__tmp_x", "y"},
	};
	struct scrape_target *t;
	char err[256];

	c->n_params = 2;
	c->params = calloc(2, sizeof(*c->params));
	c->params[0].name = strdup("a");
	c->params[0].value = strdup("x&y");
	c->params[1].name = strdup("module");
	c->params[1].value = strdup("overridden");
	CU_ASSERT_FATAL(scrape_target_new(c, in, 5, &t, err, sizeof(err)) == 0);
	/* job, instance and the non-"__" labels, sorted */
	CU_ASSERT_EQUAL(t->n_labels, 3);
	CU_ASSERT_STRING_EQUAL(t->labels[0].name, "env");
	CU_ASSERT_STRING_EQUAL(t->labels[0].value, "prod");
	CU_ASSERT_STRING_EQUAL(t->labels[1].name, "instance");
	CU_ASSERT_STRING_EQUAL(t->labels[1].value, "host-a:9100");
	CU_ASSERT_STRING_EQUAL(t->labels[2].name, "job");
	CU_ASSERT_STRING_EQUAL(t->labels[2].value, "node");
	/* params sorted by name, escaped like Go's url.Values; the target's
	 * __param_ label wins over the config */
	CU_ASSERT_STRING_EQUAL(t->url, "http://host-a:9100/metrics?a=x%26y&module=if+mib");
	/* synthetic series labels: target labels + __name__, sorted */
	{
		struct starling_label rl[4];

		CU_ASSERT_EQUAL_FATAL(t->n_labels, 3);
		scrape_report_labels(t, 0, rl);
		CU_ASSERT_STRING_EQUAL(rl[0].name, "__name__");
		CU_ASSERT_STRING_EQUAL(rl[0].value, "up");
		CU_ASSERT_STRING_EQUAL(rl[3].name, "job");
		CU_ASSERT_EQUAL(t->report_hash[0], starling_labels_hash(rl, 4));
	}
	scrape_target_free(t);

	/* __scheme__, __metrics_path__, job and instance given by the target */
	{
		struct starling_label in2[] = {
		    {"__address__", "h:1"},	   {"__scheme__", "https"},
		    {"__metrics_path__", "probe"}, {"job", "custom"},
		    {"instance", "nice-name"},
		};

		CU_ASSERT_FATAL(scrape_target_new(c, in2, 5, &t, err, sizeof(err)) == 0);
		CU_ASSERT_STRING_EQUAL(t->url, "https://h:1/probe?a=x%26y&module=overridden");
		CU_ASSERT_STRING_EQUAL(t->labels[0].value, "nice-name");
		CU_ASSERT_STRING_EQUAL(t->labels[1].value, "custom");
		scrape_target_free(t);
	}
	/* bad targets: clear errors */
	{
		struct starling_label none[] = {{"env", "x"}};
		struct starling_label bad[] = {{"__address__", "h:1/x"}};
		struct starling_label sch[] = {{"__address__", "h:1"}, {"__scheme__", "ftp"}};

		CU_ASSERT_EQUAL(scrape_target_new(c, none, 1, &t, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "__address__"));
		CU_ASSERT_EQUAL(scrape_target_new(c, bad, 1, &t, err, sizeof(err)), -EINVAL);
		CU_ASSERT_EQUAL(scrape_target_new(c, sch, 2, &t, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "ftp"));
	}
	free_cfg(c);
}

static void test_phase_node_independent(void)
{
	struct scrape_config *c = mk_cfg();
	struct starling_label a[] = {
	    {"__address__", "h:1"}, {"zone", "z1"}, {"__meta_node", "node-a"}};
	/* the same target as another node's discovery delivers it: other
	 * label order, other __meta_ labels */
	struct starling_label b[] = {
	    {"__meta_node", "node-b"}, {"zone", "z1"}, {"__address__", "h:1"}};
	struct scrape_target *ta, *tb;
	char err[256];

	CU_ASSERT_FATAL(scrape_target_new(c, a, 3, &ta, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(scrape_target_new(c, b, 3, &tb, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(ta->key, tb->key);
	CU_ASSERT_EQUAL(ta->phase_ms, tb->phase_ms);
	CU_ASSERT_EQUAL(ta->phase_ms, (int64_t)(ta->key % 15000));
	/* slots: k * interval + phase, whatever "now" each node has */
	for (int64_t now = 1700000000000; now < 1700000000000 + 40000; now += 777) {
		int64_t s = starling_scrape_next_slot(now, 15000, ta->phase_ms);

		CU_ASSERT(s >= now && s < now + 15000);
		CU_ASSERT_EQUAL(s % 15000, ta->phase_ms);
	}
	/* a slot boundary itself is due now */
	CU_ASSERT_EQUAL(starling_scrape_next_slot(30000 + 5, 15000, 5), 30005);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(30006, 15000, 5), 45005);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(3, 15000, 5), 5);
	scrape_target_free(ta);
	scrape_target_free(tb);
	/* key_labels: only the named labels make the key */
	{
		char *kl[] = {"zone"};
		struct starling_label x[] = {{"__address__", "h:1"}, {"zone", "z1"}};
		struct starling_label y[] = {{"__address__", "h:2"}, {"zone", "z1"}};

		c->key_labels = kl;
		c->n_key_labels = 1;
		CU_ASSERT_FATAL(scrape_target_new(c, x, 2, &ta, err, sizeof(err)) == 0);
		CU_ASSERT_FATAL(scrape_target_new(c, y, 2, &tb, err, sizeof(err)) == 0);
		CU_ASSERT_EQUAL(ta->key, tb->key);
		scrape_target_free(ta);
		scrape_target_free(tb);
		c->key_labels = NULL;
		c->n_key_labels = 0;
	}
	free_cfg(c);
}

/* ------------------------------------------------------------------------ */
/* Series cache, staleness, synthetic series.                                */

static void test_cache_and_staleness(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	const struct starling_series *s;
	struct scrape_stats st;
	size_t n_entries;

	h_init(&h, mk_cfg(), "env", "prod");
	b = h_scrape(&h,
		     "# HELP a_total Some\\nhelp.\n"
		     "# TYPE a_total counter\n"
		     "a_total{x=\"1\"} 5\n"
		     "b 2.5\n"
		     "c{y=\"q\\\"uote\"} 7 1600000000000\n",
		     1000, &st);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.scraped, 3);
	CU_ASSERT_EQUAL(st.added, 3);
	CU_ASSERT_EQUAL(b->n_series, 3 + SCRAPE_N_REPORT);
	s = find(b, "a_total", "x", "1");
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_TRUE(sorted(s));
	CU_ASSERT_STRING_EQUAL(get_label(s, "job"), "node");
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	CU_ASSERT_EQUAL(s->hash, starling_labels_hash(s->labels, s->n_labels));
	CU_ASSERT_EQUAL(s->values[0], 5);
	CU_ASSERT_EQUAL(s->timestamps_ms[0], 1000);
	s = find(b, "c", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_STRING_EQUAL(get_label(s, "y"), "q\"uote");
	CU_ASSERT_EQUAL(s->timestamps_ms[0], 1600000000000); /* honor_timestamps */
	s = find(b, "up", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(s->values[0], 1);
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	CU_ASSERT_EQUAL(find(b, "scrape_samples_scraped", NULL, NULL)->values[0], 3);
	CU_ASSERT_EQUAL(find(b, "scrape_series_added", NULL, NULL)->values[0], 3);
	CU_ASSERT_DOUBLE_EQUAL(find(b, "scrape_duration_seconds", NULL, NULL)->values[0], 0.0015,
			       1e-9);
	n_entries = h.t->cache.n;
	CU_ASSERT_EQUAL(n_entries, 3);
	/* metadata goes with the first batch (then once a minute) */
	CU_ASSERT_EQUAL_FATAL(b->n_metadata, 1);
	CU_ASSERT_STRING_EQUAL(b->metadata[0].family, "a_total");
	CU_ASSERT_EQUAL(b->metadata[0].type, STARLING_METRIC_COUNTER);
	CU_ASSERT_STRING_EQUAL(b->metadata[0].help, "Some\nhelp.");

	/* b vanishes: one staleness marker at the scrape time; a and c hit
	 * the cache (nothing added). c has its own timestamp: never stale. */
	b = h_scrape(&h, "a_total{x=\"1\"} 6\nc{y=\"q\\\"uote\"} 8 1600000001000\n", 2000, &st);
	CU_ASSERT_EQUAL(st.added, 0);
	CU_ASSERT_EQUAL(st.stale, 1);
	CU_ASSERT_EQUAL(b->n_metadata, 0);
	s = find(b, "b", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_TRUE(is_stale(s->values[0]));
	CU_ASSERT_EQUAL(s->timestamps_ms[0], 2000);
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	CU_ASSERT_EQUAL(find(b, "a_total", NULL, NULL)->values[0], 6);
	CU_ASSERT_EQUAL(find(b, "scrape_series_added", NULL, NULL)->values[0], 0);
	/* b left the cache with its marker (Prometheus' scrapeCache.iterDone,
	 * scrape/scrape.go, keeps only the entries of the current scrape) */
	CU_ASSERT_EQUAL(h.t->cache.n, 2);

	/* c vanishes: no marker (explicit timestamp), and leaves; b is gone */
	b = h_scrape(&h, "a_total{x=\"1\"} 7\n", 3000, &st);
	CU_ASSERT_EQUAL(st.stale, 0);
	CU_ASSERT_PTR_NULL(find(b, "b", NULL, NULL));
	CU_ASSERT_PTR_NULL(find(b, "c", NULL, NULL));
	CU_ASSERT_EQUAL(h.t->cache.n, 1);
	b = h_scrape(&h, "a_total{x=\"1\"} 8\n", 4000, &st);
	CU_ASSERT_EQUAL(h.t->cache.n, 1);

	/* a series that comes back is new again */
	b = h_scrape(&h, "a_total{x=\"1\"} 9\nb 1\n", 5000, &st);
	CU_ASSERT_EQUAL(st.added, 1);
	CU_ASSERT_EQUAL(find(b, "b", NULL, NULL)->values[0], 1);

	/* duplicate series text in one body: first sample wins */
	b = h_scrape(&h, "a_total{x=\"1\"} 10\nb 2\nb 3\n", 6000, &st);
	CU_ASSERT_EQUAL(b->n_series, 2 + SCRAPE_N_REPORT);
	CU_ASSERT_EQUAL(find(b, "b", NULL, NULL)->values[0], 2);
	h_free(&h);
}

/* Series churn: label values come and go; the cache and its pair table
 * stay bounded by what is live. */
static void test_cache_churn(void)
{
	struct harness h;
	struct scrape_stats st;
	char *body = malloc(64 * 1024);

	h_init(&h, mk_cfg(), NULL, NULL);
	for (int round = 0; round < 60; round++) {
		size_t len = 0;

		for (int k = round * 10; k < round * 10 + 200; k++)
			len += (size_t)snprintf(body + len, 64 * 1024 - len,
						"churn{id=\"%d\",le=\"%d\"} %d\n", k, k % 7, k);
		h_scrape(&h, body, 1000 + round * 1000, &st);
		CU_ASSERT_TRUE_FATAL(st.up);
		if (round > 0) {
			CU_ASSERT_EQUAL(st.added, 10);
			CU_ASSERT_EQUAL(st.stale, 10);
		}
	}
	/* the live series alone: the 10 that left this scrape left the cache
	 * with their markers; their pairs (id values) are freed once the dead
	 * ones are a quarter of the live ones (200 ids + 7 le + the name) */
	CU_ASSERT_EQUAL(h.t->cache.n, 200);
	CU_ASSERT_EQUAL(h.t->cache.ps->pairs_n - h.t->cache.ps->pairs_dead, 208);
	CU_ASSERT(h.t->cache.ps->pairs_dead * 4 < 208);
	/* ids handed out: live + dead + one scrape's new ones */
	CU_ASSERT(h.t->cache.ps->pv_n <= 208 + 52 + 10);
	/* evicted entries' room is reused by new ones of their size */
	CU_ASSERT(h.t->cache.st.held <= 220 * 12 + 220 * 12 / 4 + 64);
	free(body);
	h_free(&h);
}

static void check_whole(const struct starling_series *s);

/* Tables are fitted after a scrape (issue 12: a 50-series target kept a
 * 128-slot series table, 64-slot pair table and id array) and every series
 * is still found in the fitted, non-power-of-two tables: nothing is added
 * again and the label sets' hashes do not change. */
static void test_cache_tables_fitted(void)
{
	struct harness h;
	struct scrape_stats st;
	const struct starling_series_batch *b;
	char *body = malloc(64 * 1024);
	uint64_t hash[50];
	size_t len = 0;

	CU_ASSERT_FATAL(body != NULL);
	for (int k = 0; k < 50; k++)
		len += (size_t)snprintf(body + len, 64 * 1024 - len,
					"fit_%d{code=\"%d\",h=\"/x\"} %d\n", k % 5, k, k);
	h_init(&h, mk_cfg(), NULL, NULL);
	for (int round = 0; round < 3; round++) {
		b = h_scrape(&h, body, 1000 + round * 1000, &st);
		CU_ASSERT_TRUE_FATAL(st.up);
		CU_ASSERT_EQUAL(st.added, round ? 0 : 50);
		for (int k = 0; k < 50; k++) {
			char v[8], name[8];
			const struct starling_series *s;

			snprintf(v, sizeof(v), "%d", k);
			snprintf(name, sizeof(name), "fit_%d", k % 5);
			s = find(b, name, "code", v);
			CU_ASSERT_PTR_NOT_NULL_FATAL(s);
			check_whole(s);
			if (round == 0)
				hash[k] = s->hash;
			CU_ASSERT_EQUAL(s->hash, hash[k]);
		}
		CU_ASSERT_EQUAL(h.t->cache.n, 50);
		CU_ASSERT(h.t->cache.cap >= 67 && h.t->cache.cap < 128);
		/* 5 names, 50 codes, one h */
		CU_ASSERT_EQUAL(h.t->cache.ps->pairs_n, 56);
		CU_ASSERT(h.t->cache.ps->pairs_cap >= 75 && h.t->cache.ps->pairs_cap < 128);
		CU_ASSERT(h.t->cache.ps->pv_cap >= 56 && h.t->cache.ps->pv_cap <= 64);
		/* entries in one exact block: 50 x 10 4-byte words (a 28-byte
		 * header and 3 label ids), in the scrape's order from the
		 * first scrape on (the store grew in blocks, then was compacted
		 * in the order the series came) */
		CU_ASSERT_EQUAL(h.t->cache.st.n_blk, 1);
		CU_ASSERT_EQUAL(h.t->cache.st.held, 50 * 10);
		CU_ASSERT_EQUAL(h.t->cache.st.live, 50 * 10);
		CU_ASSERT_TRUE(h.t->cache.st.ordered);
		/* in the scrape's order, one after the other: the entry after
		 * series k's is series k + 1's (the order hint) */
		{
			const struct series_cache *c = &h.t->cache;
			const char *e;

			CU_ASSERT_EQUAL_FATAL(c->first, 1);
			e = (const char *)entry_at(&c->st, c->first - 1);
			for (int k = 0; k < 50; k++, e += 40) {
				const struct cache_entry *x = (const void *)e;
				const struct cache_pair *p;
				char v[8];

				CU_ASSERT_EQUAL_FATAL(x->n_labels, 3);
				p = c->ps->pv[x->labels[1]]; /* __name__, code, h */
				snprintf(v, sizeof(v), "%d", k);
				CU_ASSERT_STRING_EQUAL(p->s + p->name_len + 1, v);
			}
		}
	}
	free(body);
	h_free(&h);
}

/* After a burst of series (a cardinality bomb): once they are evicted the
 * series table shrinks, their label pairs are freed and their ids reused,
 * the scratch arrays sized for the burst are given back, and the series
 * that stayed keep exactly the same label sets and hashes (issue 12). */
static void test_cache_after_burst(void)
{
	enum { BURST = 5000 };
	struct harness h;
	struct scrape_stats st;
	const struct starling_series_batch *b;
	const struct starling_series *s;
	const char *keep = "keep{x=\"1\"} 1\nkeep{x=\"2\",le=\"0.5\"} 2\n";
	char *body = malloc(BURST * 48 + 128);
	struct starling_label before[2][8];
	uint64_t hash[2];
	size_t nl[2], len = 0, pv_n, big_cap;

	CU_ASSERT_FATAL(body != NULL);
	h_init(&h, mk_cfg(), "env", "prod");
	b = h_scrape(&h, keep, 1000, &st);
	for (int k = 0; k < 2; k++) {
		s = find(b, "keep", "x", k ? "2" : "1");
		check_whole(s);
		CU_ASSERT_FATAL(s->n_labels <= 8);
		nl[k] = s->n_labels;
		hash[k] = s->hash;
		memcpy(before[k], s->labels, s->n_labels * sizeof(*s->labels));
		for (size_t i = 0; i < nl[k]; i++) { /* the batch's strings are the cache's */
			before[k][i].name = strdup(before[k][i].name);
			before[k][i].value = strdup(before[k][i].value);
		}
	}
	len = (size_t)snprintf(body, 128, "%s", keep);
	for (int i = 0; i < BURST; i++)
		len += (size_t)snprintf(body + len, 48, "burst{id=\"%d\",le=\"%d\"} %d\n", i, i % 7,
					i);
	b = h_scrape(&h, body, 2000, &st);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.added, BURST);
	big_cap = h.t->cache.cap;
	CU_ASSERT(big_cap >= BURST);
	CU_ASSERT(h.t->cache.ps->pairs_n >= BURST);
	pv_n = h.t->cache.ps->pv_n;
	/* the burst goes stale and leaves the cache at once */
	b = h_scrape(&h, keep, 3000, &st);
	CU_ASSERT_EQUAL(st.stale, BURST);
	CU_ASSERT_EQUAL(h.t->cache.n, 2);
	b = h_scrape(&h, keep, 4000, &st);
	CU_ASSERT_EQUAL(h.t->cache.n, 2);
	CU_ASSERT(h.t->cache.cap <= 256);
	CU_ASSERT(h.t->cache.ps->pairs_n < 64);
	CU_ASSERT(h.t->cache.ps->pv_nfree >= BURST);
	for (int k = 0; k < 2; k++) {
		s = find(b, "keep", "x", k ? "2" : "1");
		check_whole(s);
		CU_ASSERT_FALSE(is_stale(s->values[0]));
		CU_ASSERT_EQUAL(s->values[0], k ? 2 : 1);
		CU_ASSERT_EQUAL(s->hash, hash[k]);
		CU_ASSERT_EQUAL_FATAL(s->n_labels, nl[k]);
		for (size_t i = 0; i < nl[k]; i++) {
			CU_ASSERT_STRING_EQUAL(s->labels[i].name, before[k][i].name);
			CU_ASSERT_STRING_EQUAL(s->labels[i].value, before[k][i].value);
		}
	}
	/* a second burst reuses the freed ids instead of new ones */
	len = (size_t)snprintf(body, 128, "%s", keep);
	for (int i = 0; i < BURST; i++)
		len += (size_t)snprintf(body + len, 48, "burst{id=\"b%d\",le=\"%d\"} %d\n", i,
					i % 7, i);
	b = h_scrape(&h, body, 5000, &st);
	CU_ASSERT_EQUAL(st.added, BURST);
	CU_ASSERT(h.t->cache.ps->pv_n <= pv_n + 8);
	s = find(b, "burst", "id", "b4999");
	check_whole(s);
	CU_ASSERT_STRING_EQUAL(get_label(s, "le"), "1"); /* 4999 % 7 */
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	/* small scrapes from now on: the scratch sized for the burst is given
	 * back at the end of the first trim window without the burst */
	CU_ASSERT(h.scratch.cap >= BURST);
	for (int i = 0; i < 2 * 64 + 2; i++) /* two windows of SCRAPE_TRIM_WINDOW */
		b = h_scrape(&h, keep, 6000 + i * 1000, &st);
	CU_ASSERT(h.scratch.cap < BURST);
	s = find(b, "keep", "x", "2");
	check_whole(s);
	CU_ASSERT_EQUAL(s->hash, hash[1]);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < nl[k]; i++) {
			free((void *)before[k][i].name);
			free((void *)before[k][i].value);
		}
	free(body);
	h_free(&h);
}

static void test_failed_scrape(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	struct scrape_result r = {0};
	struct scrape_stats st;

	h_init(&h, mk_cfg(), NULL, NULL);
	h_scrape(&h, "a 1\nb 2\n", 1000, &st);

	/* HTTP 500: up 0, every series of the last scrape goes stale */
	r.status = 500;
	r.start_ms = 2000;
	mock_host_clear_forwarded(h.m);
	CU_ASSERT(scrape_process(&h.ctx, h.t, &r, &st) < 0);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "500"));
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	CU_ASSERT_TRUE(is_stale(find(b, "a", NULL, NULL)->values[0]));
	CU_ASSERT_TRUE(is_stale(find(b, "b", NULL, NULL)->values[0]));
	CU_ASSERT_EQUAL(b->n_series, 2 + SCRAPE_N_REPORT);

	/* recovery, then garbage after a valid line: all or nothing, and
	 * no staleness marker later for the sample that was never sent */
	h_scrape(&h, "a 1\n", 3000, &st);
	CU_ASSERT_TRUE(st.up);
	b = h_scrape(&h, "a 2\nnew_series 5\nthis is { not valid\n", 4000, &st);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "line 3"));
	CU_ASSERT_PTR_NULL(find(b, "new_series", NULL, NULL));
	CU_ASSERT_TRUE(is_stale(find(b, "a", NULL, NULL)->values[0]));
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	b = h_scrape(&h, "a 3\n", 5000, &st);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.stale, 0);
	CU_ASSERT_PTR_NULL(find(b, "new_series", NULL, NULL));

	/* transport error (timeout) */
	memset(&r, 0, sizeof(r));
	r.error = -ETIMEDOUT;
	r.error_msg = "timed out";
	r.start_ms = 6000;
	mock_host_clear_forwarded(h.m);
	CU_ASSERT_EQUAL(scrape_process(&h.ctx, h.t, &r, &st), -ETIMEDOUT);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	CU_ASSERT_TRUE(is_stale(find(b, "a", NULL, NULL)->values[0]));
	CU_ASSERT_STRING_EQUAL(st.error, "timed out");

	/* duplicate label names in a series fail the scrape */
	b = h_scrape(&h, "a{x=\"1\",x=\"1\"} 1\n", 7000, &st);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_EQUAL(b->n_series, SCRAPE_N_REPORT);
	h_free(&h);
}

/* An entry keeps the low 8 bits of its scrape generation (struct
 * cache_entry.last_seen): over 600 scrapes, i.e. past the 8-bit wrap
 * twice, a flapping series and failed scrapes still get exactly the
 * staleness markers and "added" counts of the first rounds. */
static void test_generation_wraps(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	struct scrape_result r = {0};
	struct scrape_stats st;
	int64_t ts = 1000;

	h_init(&h, mk_cfg(), NULL, NULL);
	for (int k = 0; k < 600; k++, ts += 1000) {
		if (k % 50 == 49) { /* a failed scrape: a and b (if there) stale */
			memset(&r, 0, sizeof(r));
			r.status = 500;
			r.start_ms = ts;
			mock_host_clear_forwarded(h.m);
			CU_ASSERT(scrape_process(&h.ctx, h.t, &r, &st) < 0);
			b = mock_host_forwarded_batch(h.m, 0);
			CU_ASSERT_PTR_NOT_NULL_FATAL(find(b, "a", NULL, NULL));
			CU_ASSERT_TRUE(is_stale(find(b, "a", NULL, NULL)->values[0]));
			CU_ASSERT_EQUAL(st.stale, 2);
			continue;
		}
		/* b in even scrapes only */
		b = h_scrape(&h, k % 2 ? "a 1\n" : "a 1\nb 2\n", ts, &st);
		CU_ASSERT_TRUE(st.up);
		CU_ASSERT_PTR_NOT_NULL_FATAL(find(b, "a", NULL, NULL));
		CU_ASSERT_FALSE(is_stale(find(b, "a", NULL, NULL)->values[0]));
		if (k % 2) { /* b gone since the scrape before: one marker */
			CU_ASSERT_EQUAL(st.added, 0);
			CU_ASSERT_EQUAL(st.stale, 1);
			CU_ASSERT_PTR_NOT_NULL_FATAL(find(b, "b", NULL, NULL));
			CU_ASSERT_TRUE(is_stale(find(b, "b", NULL, NULL)->values[0]));
		} else { /* b new again; after a failed scrape both were kept */
			CU_ASSERT_EQUAL(st.added, k == 0 ? 2 : k % 50 == 0 ? 0 : 1);
			CU_ASSERT_EQUAL(st.stale, 0);
			CU_ASSERT_FALSE(is_stale(find(b, "b", NULL, NULL)->values[0]));
		}
		CU_ASSERT_EQUAL(h.t->cache.n, k % 2 ? 1 : 2);
	}
	h_free(&h);
}

static void test_honor_labels(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	const struct starling_series *s;
	struct scrape_stats st;
	struct scrape_config *c = mk_cfg();

	h_init(&h, c, "env", "prod");
	b = h_scrape(&h, "m{job=\"theirs\",instance=\"i\",exported_env=\"e0\",env=\"e1\"} 1\n",
		     1000, &st);
	s = find(b, "m", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_TRUE(sorted(s));
	CU_ASSERT_STRING_EQUAL(get_label(s, "job"), "node");
	CU_ASSERT_STRING_EQUAL(get_label(s, "exported_job"), "theirs");
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	CU_ASSERT_STRING_EQUAL(get_label(s, "exported_instance"), "i");
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	CU_ASSERT_STRING_EQUAL(get_label(s, "exported_env"), "e0");
	CU_ASSERT_STRING_EQUAL(get_label(s, "exported_exported_env"), "e1");
	h_free(&h);

	c = mk_cfg();
	c->honor_labels = true;
	h_init(&h, c, "env", "prod");
	b = h_scrape(&h, "m{job=\"theirs\",instance=\"i\"} 1\n", 1000, &st);
	s = find(b, "m", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_STRING_EQUAL(get_label(s, "job"), "theirs");
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "i");
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	CU_ASSERT_PTR_NULL(get_label(s, "exported_job"));
	/* the synthetic series always carry the target's labels */
	CU_ASSERT_STRING_EQUAL(get_label(find(b, "up", NULL, NULL), "job"), "node");
	h_free(&h);
}

static void test_limits(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	struct scrape_stats st;
	struct scrape_config *c = mk_cfg();

	c->sample_limit = 2;
	h_init(&h, c, NULL, NULL);
	b = h_scrape(&h, "a 1\nb 2\n", 1000, &st);
	CU_ASSERT_TRUE(st.up);
	b = h_scrape(&h, "a 1\nb 2\nc 3\n", 2000, &st);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "sample_limit"));
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	CU_ASSERT_PTR_NULL(find(b, "c", NULL, NULL));
	CU_ASSERT_TRUE(is_stale(find(b, "a", NULL, NULL)->values[0]));
	CU_ASSERT_EQUAL(find(b, "scrape_samples_scraped", NULL, NULL)->values[0], 3);
	h_free(&h);

	c = mk_cfg();
	c->label_value_length_limit = 13; /* = strlen(instance) */
	h_init(&h, c, NULL, NULL);
	b = h_scrape(&h, "a{v=\"short\"} 1\n", 1000, &st);
	CU_ASSERT_TRUE(st.up);
	b = h_scrape(&h, "a{v=\"short\"} 1\na{v=\"this is far too long\"} 1\n", 2000, &st);
	CU_ASSERT_FALSE(st.up);
	/* a cached over-limit series keeps failing the scrape */
	b = h_scrape(&h, "a{v=\"this is far too long\"} 1\n", 3000, &st);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	h_free(&h);

	c = mk_cfg();
	c->label_limit = 3; /* __name__, job, instance */
	h_init(&h, c, NULL, NULL);
	h_scrape(&h, "a 1\n", 1000, &st);
	if (!st.up)
		fprintf(stderr, "label_limit: %s\n", st.error);
	CU_ASSERT_TRUE(st.up);
	h_scrape(&h, "a{x=\"1\"} 1\n", 2000, &st);
	CU_ASSERT_FALSE(st.up);
	h_free(&h);
}

/* The cache leaves the target's labels out of an entry (they are put back
 * when the batch is built): the forwarded sets are whole, sorted and hash
 * as before, also for staleness markers, for series that lost a target
 * label to metric relabelling, and for series of more than 16 labels
 * (which keep their whole set). */
static void check_whole(const struct starling_series *s)
{
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_TRUE(sorted(s));
	CU_ASSERT_EQUAL(s->hash, starling_labels_hash(s->labels, s->n_labels));
}

/* The targets one thread scrapes share their label pairs (issue 12: the
 * targets of a job expose mostly the same pairs): a second target with
 * the same series adds no pair, its batches carry its own target labels
 * and hashes, and the store lives until the last user is gone, whichever
 * of the scratch and the targets goes first. */
static void test_cache_pairs_shared(void)
{
	const char *body = "# TYPE req_total counter\n"
			   "req_total{code=\"200\",path=\"/a\"} 1\n"
			   "req_total{code=\"500\",path=\"/a\"} 2\n"
			   "up_since{pod=\"p-1\"} 3\n";
	struct starling_label in2[] = {{"__address__", "10.0.0.2:9100"}, {"env", "prod"}};
	struct harness h;
	struct scrape_target *t2;
	struct scrape_result r = {0};
	struct scrape_stats st;
	const struct starling_series_batch *b;
	const struct starling_series *s;
	size_t pairs_one;
	uint64_t hash2;
	char err[256];

	h_init(&h, mk_cfg(), "env", "prod");
	h_scrape(&h, body, 1000, &st);
	CU_ASSERT_FATAL(h.t->cache.ps != NULL);
	pairs_one = h.t->cache.ps->pairs_n;
	CU_ASSERT_EQUAL(pairs_one, 6); /* 2 names, 2 codes, path, pod */
	CU_ASSERT_FATAL(scrape_target_new(h.cfg, in2, 2, &t2, err, sizeof(err)) == 0);
	r.status = 200;
	r.body = body;
	r.body_len = strlen(body);
	r.content_type = "text/plain; version=0.0.4";
	r.start_ms = 1000;
	mock_host_clear_forwarded(h.m);
	CU_ASSERT_EQUAL(scrape_process(&h.ctx, t2, &r, &st), 0);
	CU_ASSERT_EQUAL(st.added, 3);
	CU_ASSERT_PTR_EQUAL(t2->cache.ps, h.t->cache.ps);
	CU_ASSERT_EQUAL(h.t->cache.ps->pairs_n, pairs_one);
	b = mock_host_forwarded_batch(h.m, 0);
	s = find(b, "req_total", "code", "500");
	check_whole(s);
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.2:9100");
	hash2 = s->hash;
	/* the first target goes: the second's series keep their pairs */
	scrape_target_free(h.t);
	h.t = NULL;
	CU_ASSERT_EQUAL(t2->cache.ps->pairs_n - t2->cache.ps->pairs_dead, pairs_one);
	/* the scratch goes before the last target: the store stays with it */
	scrape_scratch_free(&h.scratch);
	scrape_scratch_init(&h.scratch);
	r.start_ms = 2000;
	mock_host_clear_forwarded(h.m);
	CU_ASSERT_EQUAL(scrape_process(&h.ctx, t2, &r, &st), 0);
	CU_ASSERT_EQUAL(st.added, 0);
	b = mock_host_forwarded_batch(h.m, 0);
	s = find(b, "req_total", "code", "500");
	check_whole(s);
	CU_ASSERT_EQUAL(s->hash, hash2);
	CU_ASSERT_STRING_EQUAL(get_label(s, "path"), "/a");
	CU_ASSERT_PTR_NULL(h.scratch.ps); /* t2 keeps its own store */
	scrape_target_free(t2);
	h_free(&h);
}

/* When a series leaves the cache (issue 12, series churn): Prometheus'
 * scrapeCache.iterDone (scrape/scrape.go) drops the entries not seen in a
 * successful scrape and keeps the cache after a failed one; a series that
 * comes back is a cache miss and counts in scrape_series_added again. The
 * staleness marker of a series that leaves carries exactly the label set
 * and hash of its last sample, also when its pairs are freed in the same
 * scrape (under ASan a marker built from freed pairs fails here). */
static void test_cache_leave(void)
{
	enum { N = 40 };
	struct harness h;
	const struct starling_series_batch *b;
	const struct starling_series *s;
	struct scrape_result r = {0};
	struct scrape_stats st;
	struct starling_label want[N][5];
	uint64_t hash[N];
	char body[N * 48 + 16], id[16];
	size_t len = 0;

	h_init(&h, mk_cfg(), "env", "prod");
	h_scrape(&h, "a 1\nb 2\n", 1000, &st);
	/* a failed scrape: both go stale and both stay cached */
	r.status = 500;
	r.start_ms = 2000;
	mock_host_clear_forwarded(h.m);
	CU_ASSERT(scrape_process(&h.ctx, h.t, &r, &st) < 0);
	CU_ASSERT_EQUAL(st.stale, 2);
	CU_ASSERT_EQUAL(h.t->cache.n, 2);
	/* the next good scrape hits the kept entry and drops the other
	 * without a second marker */
	b = h_scrape(&h, "a 2\n", 3000, &st);
	CU_ASSERT_EQUAL(st.added, 0);
	CU_ASSERT_EQUAL(st.stale, 0);
	CU_ASSERT_PTR_NULL(find(b, "b", NULL, NULL));
	CU_ASSERT_EQUAL(h.t->cache.n, 1);
	/* a series that flaps is new each time it comes back */
	h_scrape(&h, "a 3\nb 1\n", 4000, &st);
	CU_ASSERT_EQUAL(st.added, 1);
	h_scrape(&h, "a 4\n", 5000, &st);
	CU_ASSERT_EQUAL(st.stale, 1);
	CU_ASSERT_EQUAL(h.t->cache.n, 1);
	b = h_scrape(&h, "a 5\nb 2\n", 6000, &st);
	CU_ASSERT_EQUAL(st.added, 1);
	CU_ASSERT_EQUAL(find(b, "scrape_series_added", NULL, NULL)->values[0], 1);

	/* N series with values of their own leave at once: their pairs are
	 * freed in that scrape, after the markers went out */
	len = (size_t)snprintf(body, sizeof(body), "a 6\n");
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "pod{name=\"pod-%d\"} %d\n",
					i, i);
	b = h_scrape(&h, body, 7000, &st);
	CU_ASSERT_EQUAL(st.added, N);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "pod-%d", i);
		s = find(b, "pod", "name", id);
		check_whole(s);
		CU_ASSERT_FATAL(s->n_labels == 5); /* __name__ env instance job name */
		hash[i] = s->hash;
		for (size_t k = 0; k < 5; k++) {
			want[i][k].name = strdup(s->labels[k].name);
			want[i][k].value = strdup(s->labels[k].value);
		}
	}
	b = h_scrape(&h, "a 7\n", 8000, &st);
	CU_ASSERT_EQUAL(st.stale, N);
	CU_ASSERT_EQUAL(h.t->cache.n, 1);
	CU_ASSERT(h.t->cache.ps->pairs_dead < 16);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "pod-%d", i);
		s = find(b, "pod", "name", id);
		check_whole(s);
		CU_ASSERT_TRUE(is_stale(s->values[0]));
		CU_ASSERT_EQUAL(s->timestamps_ms[0], 8000);
		CU_ASSERT_EQUAL(s->hash, hash[i]);
		CU_ASSERT_EQUAL_FATAL(s->n_labels, 5);
		for (size_t k = 0; k < 5; k++) {
			CU_ASSERT_STRING_EQUAL(s->labels[k].name, want[i][k].name);
			CU_ASSERT_STRING_EQUAL(s->labels[k].value, want[i][k].value);
			free((char *)want[i][k].name);
			free((char *)want[i][k].value);
		}
	}
	/* one of them comes back: same label set and hash as before */
	b = h_scrape(&h, "a 8\npod{name=\"pod-3\"} 3\n", 9000, &st);
	CU_ASSERT_EQUAL(st.added, 1);
	s = find(b, "pod", "name", "pod-3");
	check_whole(s);
	CU_ASSERT_EQUAL(s->hash, hash[3]);
	CU_ASSERT_FALSE(is_stale(s->values[0]));
	h_free(&h);
}

static void test_cache_leaves_target_labels_out(void)
{
	static const char *const src[] = {"__name__"};
	struct starling_relabel_config rules[1] = {{0}};
	struct scrape_config *c = mk_cfg();
	const struct starling_series_batch *b;
	const struct starling_series *s;
	const struct cache_entry *e = NULL;
	char big[1024] = "wide{", err[128];
	struct scrape_stats st;
	struct harness h;
	size_t len = strlen(big);

	/* no_instance loses the target's instance label */
	rules[0].source_labels = src;
	rules[0].n_source_labels = 1;
	rules[0].regex = "no_instance";
	rules[0].action = "replace";
	rules[0].target_label = "instance";
	rules[0].replacement = "";
	CU_ASSERT_FATAL(
	    starling_relabel_rules_new(rules, 1, &c->metric_relabel, err, sizeof(err)) == 0);
	for (int i = 0; i < 18; i++)
		len += (size_t)snprintf(big + len, sizeof(big) - len, "%sl%02d=\"v\"", i ? "," : "",
					i);
	snprintf(big + len, sizeof(big) - len, "} 3\n");
	h_init(&h, c, "env", "prod");
	b = h_scrape(&h, "a{x=\"1\"} 1\nno_instance 2\n", 1000, &st);
	(void)h_scrape(&h, big, 1500, &st); /* a and no_instance go stale */
	b = h_scrape(&h, big, 2000, &st);
	s = find(b, "wide", "l17", "v");
	check_whole(s);
	CU_ASSERT_EQUAL(s->n_labels, 18 + 4);
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	b = h_scrape(&h, "a{x=\"1\"} 1\nno_instance 2\n", 3000, &st);
	s = find(b, "a", "x", "1");
	check_whole(s);
	CU_ASSERT_EQUAL(s->n_labels, 5);
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	CU_ASSERT_STRING_EQUAL(get_label(s, "job"), "node");
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	s = find(b, "no_instance", NULL, NULL);
	check_whole(s);
	CU_ASSERT_EQUAL(s->n_labels, 3);
	CU_ASSERT_PTR_NULL(get_label(s, "instance"));
	CU_ASSERT_STRING_EQUAL(get_label(s, "env"), "prod");
	/* wide vanished: its staleness marker carries the whole set */
	s = find(b, "wide", "l00", "v");
	check_whole(s);
	CU_ASSERT_TRUE(is_stale(s->values[0]));
	CU_ASSERT_EQUAL(s->n_labels, 18 + 4);
	/* a's entry stores __name__ and x only */
	for (size_t i = 0; i < h.t->cache.cap; i++)
		if (series_cache_at(&h.t->cache, i) &&
		    series_cache_at(&h.t->cache, i)->n_labels == 2)
			e = series_cache_at(&h.t->cache, i);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_EQUAL(__builtin_popcount(e->tl_present), 3);
	b = h_scrape(&h, "no_instance 2\n", 4000, &st);
	s = find(b, "a", "x", "1");
	check_whole(s);
	CU_ASSERT_TRUE(is_stale(s->values[0]));
	CU_ASSERT_STRING_EQUAL(get_label(s, "instance"), "10.0.0.1:9100");
	starling_relabel_rules_free(c->metric_relabel);
	h_free(&h);
}

static void test_metric_relabel(void)
{
	static const char *const src[] = {"__name__"};
	struct starling_relabel_config rules[2] = {{0}, {0}};
	struct scrape_config *c = mk_cfg();
	const struct starling_series_batch *b;
	const struct starling_series *s;
	struct scrape_stats st;
	struct harness h;
	char err[128];

	rules[0].source_labels = src;
	rules[0].n_source_labels = 1;
	rules[0].regex = "drop_.*";
	rules[0].action = "drop";
	rules[1].target_label = "added";
	rules[1].replacement = "yes";
	CU_ASSERT_FATAL(
	    starling_relabel_rules_new(rules, 2, &c->metric_relabel, err, sizeof(err)) == 0);
	h_init(&h, c, NULL, NULL);
	b = h_scrape(&h, "drop_me 1\nkeep_me 2\n", 1000, &st);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_PTR_NULL(find(b, "drop_me", NULL, NULL));
	s = find(b, "keep_me", NULL, NULL);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_STRING_EQUAL(get_label(s, "added"), "yes");
	CU_ASSERT_TRUE(sorted(s));
	CU_ASSERT_EQUAL(s->hash, starling_labels_hash(s->labels, s->n_labels));
	CU_ASSERT_EQUAL(find(b, "scrape_samples_scraped", NULL, NULL)->values[0], 2);
	CU_ASSERT_EQUAL(find(b, "scrape_samples_post_metric_relabeling", NULL, NULL)->values[0], 1);
	/* never applied to the synthetic series */
	CU_ASSERT_PTR_NULL(get_label(find(b, "up", NULL, NULL), "added"));
	/* a dropped series never gets a staleness marker */
	b = h_scrape(&h, "keep_me 3\n", 2000, &st);
	CU_ASSERT_EQUAL(st.stale, 0);
	CU_ASSERT_EQUAL(b->n_series, 1 + SCRAPE_N_REPORT);
	starling_relabel_rules_free(c->metric_relabel);
	h_free(&h);
}

static void test_extra_metrics(void)
{
	struct scrape_config *c = mk_cfg();
	const struct starling_series_batch *b;
	struct scrape_result r = {0};
	struct scrape_stats st;
	struct harness h;

	c->extra_metrics = true;
	c->sample_limit = 100;
	h_init(&h, c, NULL, NULL);
	b = h_scrape(&h, "a 1\n", 1000, &st);
	CU_ASSERT_EQUAL(b->n_series, 1 + SCRAPE_N_REPORT_MAX);
	CU_ASSERT_EQUAL(find(b, "scrape_timeout_seconds", NULL, NULL)->values[0], 10);
	CU_ASSERT_EQUAL(find(b, "scrape_sample_limit", NULL, NULL)->values[0], 100);
	CU_ASSERT_EQUAL(find(b, "scrape_body_size_bytes", NULL, NULL)->values[0], 4);
	r.error = -EFBIG;
	r.error_msg = "too big";
	r.start_ms = 2000;
	mock_host_clear_forwarded(h.m);
	scrape_process(&h.ctx, h.t, &r, &st);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_EQUAL(find(b, "scrape_body_size_bytes", NULL, NULL)->values[0], -1);
	CU_ASSERT_EQUAL(find(b, "up", NULL, NULL)->values[0], 0);
	h_free(&h);
}

static void test_end_of_run(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	struct scrape_stats st;

	h_init(&h, mk_cfg(), NULL, NULL);
	h_scrape(&h, "a 1\nb 2\n", 1000, &st);
	mock_host_clear_forwarded(h.m);
	CU_ASSERT_EQUAL(scrape_end_of_run(&h.ctx, h.t, 16000), 0);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_EQUAL(b->n_series, 2 + SCRAPE_N_REPORT);
	for (size_t i = 0; i < b->n_series; i++) {
		CU_ASSERT_TRUE(is_stale(b->series[i].values[0]));
		CU_ASSERT_EQUAL(b->series[i].timestamps_ms[0], 16000);
	}
	CU_ASSERT_PTR_NOT_NULL(find(b, "up", NULL, NULL));
	CU_ASSERT_EQUAL(h.t->cache.n, 0);
	h_free(&h);
}

static void test_openmetrics_and_fallback(void)
{
	struct harness h;
	const struct starling_series_batch *b;
	struct scrape_result r = {0};
	struct scrape_stats st;
	const char *om = "# TYPE a counter\na_total 3 1600000000.5\n# EOF\n";

	h_init(&h, mk_cfg(), NULL, NULL);
	r.status = 200;
	r.body = om;
	r.body_len = strlen(om);
	r.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
	r.start_ms = 1000;
	scrape_process(&h.ctx, h.t, &r, &st);
	CU_ASSERT_TRUE(st.up);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_EQUAL(find(b, "a_total", NULL, NULL)->timestamps_ms[0], 1600000000500);
	/* no Content-Type: Prometheus text fallback */
	mock_host_clear_forwarded(h.m);
	r.body = "x 1\n";
	r.body_len = 4;
	r.content_type = NULL;
	r.start_ms = 2000;
	scrape_process(&h.ctx, h.t, &r, &st);
	CU_ASSERT_TRUE(st.up);
	b = mock_host_forwarded_batch(h.m, 0);
	CU_ASSERT_EQUAL(find(b, "x", NULL, NULL)->values[0], 1);
	h_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Whole component against a tiny HTTP server.                               */

struct http_srv {
	int fd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	atomic_int hits;
	const char *body;
	pthread_mutex_t lock;
	char last_request[4096]; /* the last request's head */
};

static void *srv_main(void *arg)
{
	struct http_srv *s = arg;

	while (!atomic_load(&s->stop)) {
		char req[4096], hdr[256];
		int c = accept(s->fd, NULL, NULL);
		struct timeval tv = {10, 0};
		ssize_t got = 0, r;

		if (c < 0)
			continue;
		/* the accepted socket inherits the listener's 100 ms timeout (there
		 * so that accept() sees stop): a client descheduled that long
		 * between connect and write lost its request head, and the hit was
		 * counted with last_request unchanged */
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (got < (ssize_t)sizeof(req) - 1 &&
		       (r = read(c, req + got, sizeof(req) - 1 - (size_t)got)) > 0) {
			got += r;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		if (got > 0) {
			pthread_mutex_lock(&s->lock);
			memcpy(s->last_request, req, (size_t)got + 1);
			pthread_mutex_unlock(&s->lock);
		}
		atomic_fetch_add(&s->hits, 1); /* after last_request: tests wait on it */
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 strlen(s->body));
		if (write(c, hdr, strlen(hdr)) < 0 || write(c, s->body, strlen(s->body)) < 0)
			perror("write");
		close(c);
	}
	return NULL;
}

static int srv_start(struct http_srv *s, const char *body)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	struct timeval tv = {0, 100000};
	int one = 1;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->body = body;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 64))
		return -1;
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, srv_main, s);
}

static void srv_stop(struct http_srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* Own the targets whose key is even. */
static bool owns_even(void *arg, uint64_t key, unsigned replicas)
{
	(void)arg;
	(void)replicas;
	return key % 2 == 0;
}

struct collect {
	size_t n;
	uint64_t keys[64];
	bool owned[64];
	int health[64];
};

static void collect_emit(void *ctx, const struct starling_target_info *t)
{
	struct collect *c = ctx;

	if (c->n < 64) {
		c->keys[c->n] = t->key;
		c->owned[c->n] = t->owned_here;
		c->health[c->n] = t->health;
		c->n++;
	}
}

static char *targets_cfg(int port, int n, const char *extra)
{
	char *buf = malloc(8192);
	size_t len = 0;

	len += (size_t)snprintf(buf + len, 8192 - len, "targets = (");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, 8192 - len,
					"%s{ *address__ = \"127.0.0.1:%d\"; idx = \"%d\"; }",
					i ? "," : "", port, i);
	snprintf(buf + len, 8192 - len,
		 ");\nforward_to = [ \"x.y\" ];\nscrape_interval = \"200ms\";\n%s", extra);
	return buf;
}

/* Targets idx="0".."n-1" seen in forwarded up samples. */
static unsigned scraped_mask(struct mock_host *m, bool stale_only)
{
	unsigned mask = 0;

	for (size_t i = 0; i < mock_host_forwarded_batches(m); i++) {
		const struct starling_series_batch *b = mock_host_forwarded_batch(m, i);

		for (size_t j = 0; j < b->n_series; j++) {
			const char *n = get_label(&b->series[j], "__name__");
			const char *idx = get_label(&b->series[j], "idx");

			if (!n || !idx || strcmp(n, "up"))
				continue;
			if (stale_only && !is_stale(b->series[j].values[0]))
				continue;
			mask |= 1u << strtoul(idx, NULL, 10);
		}
	}
	return mask;
}

/* Whether every target's owned flag, and the reported count, match the
 * even-key rule of owns_even. */
static bool ownership_settled(const struct starling_component_type *type, void *inst,
			      struct mock_host *m)
{
	struct collect c = {0};
	size_t owned, total, want = 0;

	if (type->list_targets(inst, collect_emit, &c) || c.n != 8)
		return false;
	for (size_t i = 0; i < c.n; i++) {
		if (c.owned[i] != (c.keys[i] % 2 == 0))
			return false;
		want += c.owned[i];
	}
	mock_host_targets(m, &owned, &total);
	return total == 8 && owned == want;
}

/* Which of the 8 targets of targets_cfg(port, 8) have even keys (the
 * forwarded samples carry no key, so recompute them as the plugin does). */
static unsigned even_key_mask(int port)
{
	struct scrape_config *c = mk_cfg();
	unsigned want = 0;
	char err[256];

	c->interval_ms = 200;
	for (int i = 0; i < 8; i++) {
		char addr[32], idx[8];
		struct starling_label in[2] = {{"__address__", addr}, {"idx", idx}};
		struct scrape_target *t;

		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		snprintf(idx, sizeof(idx), "%d", i);
		CU_ASSERT_FATAL(scrape_target_new(c, in, 2, &t, err, sizeof(err)) == 0);
		if (t->key % 2 == 0)
			want |= 1u << i;
		scrape_target_free(t);
	}
	free_cfg(c);
	return want;
}

static void test_component_ownership(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	struct collect col = {0};
	char err[256], *cfg;
	void *inst;
	size_t owned, total;
	unsigned want = 0, got;

	/* a port where at least one target is owned (all 8 keys odd: 1 in 256) */
	for (int tries = 0;; tries++) {
		CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\nmetric_b{k=\"v\"} 2\n") == 0);
		if (even_key_mask(srv.port) || tries == 20)
			break;
		srv_stop(&srv);
	}
	cfg = targets_cfg(srv.port, 8, "clustering = { enabled = true; };");
	m = mock_host_new("prometheus.scrape.own", type->schema, cfg, err, sizeof(err));
	if (!m)
		fprintf(stderr, "mock: %s\n", err);
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	mock_host_set_owns(m, owns_even, NULL);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	/* The scrape thread decides ownership at each target's first slot:
	 * wait (bounded) until every target reports what owns_even says. */
	MOCK_WAIT_UNTIL(ownership_settled(type, inst, m), 30000);
	CU_ASSERT_EQUAL(type->list_targets(inst, collect_emit, &col), 0);
	CU_ASSERT_EQUAL(col.n, 8);
	for (size_t i = 0; i < col.n; i++) {
		CU_ASSERT_EQUAL(col.owned[i], col.keys[i] % 2 == 0);
		if (col.owned[i])
			want++;
	}
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 8);
	CU_ASSERT_EQUAL(owned, want);
	want = even_key_mask(srv.port);
	/* every owned target scraped (waited for), no other */
	MOCK_WAIT_UNTIL((scraped_mask(m, false) & want) == want, 30000);
	type->stop(inst);
	got = scraped_mask(m, false);
	CU_ASSERT_EQUAL(got, want);
	/* the request Prometheus/Alloy would send */
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, "GET /metrics HTTP/1.1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(srv.last_request, "\r\nAccept: " STARLING_EXPO_ACCEPT_HEADER "\r\n"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(srv.last_request, "\r\nX-Prometheus-Scrape-Timeout-Seconds: 0.2\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, "\r\nUser-Agent: Starling/"));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, "\r\nAccept-Encoding: gzip"));
	CU_ASSERT_NOT_EQUAL(want, 0);
	CU_ASSERT(mock_host_metric(m, "prometheus_forwarded_samples_total", NULL) > 0);
	CU_ASSERT_EQUAL(mock_host_metric(m, "starling_scrape_failures_total", NULL), 0);
	type->destroy(inst);
	mock_host_free(m);
	free(cfg);
	srv_stop(&srv);
}

static void test_component_update(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	char err[256], *cfg, *cfg2;
	void *inst;
	size_t owned, total;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	cfg = targets_cfg(srv.port, 3, "");
	m = mock_host_new("prometheus.scrape.upd", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	MOCK_WAIT_UNTIL(scraped_mask(m, false) == 7u, 30000);
	CU_ASSERT_EQUAL(scraped_mask(m, false), 7u);
	mock_host_clear_forwarded(m);

	/* drop target idx=2: it gets staleness markers, the others keep going */
	cfg2 = targets_cfg(srv.port, 2, "");
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg2, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 2);
	MOCK_WAIT_UNTIL(scraped_mask(m, true) == 4u && scraped_mask(m, false) == 7u, 30000);
	CU_ASSERT_EQUAL(scraped_mask(m, true), 4u);  /* only idx=2 went stale */
	CU_ASSERT_EQUAL(scraped_mask(m, false), 7u); /* 0 and 1 still scraped */
	/* idx=2 comes back at once, then is removed and given back before its
	 * markers were due: no staleness markers at all */
	free(cfg2);
	mock_host_clear_forwarded(m);
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), 0);
	MOCK_WAIT_UNTIL(scraped_mask(m, false) & 4u, 30000); /* idx=2 is back */
	cfg2 = targets_cfg(srv.port, 2, "");
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg2, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), 0);
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), 0);
	mock_host_clear_forwarded(m);
	/* two rounds of every target: a marker would have been due by then */
	MOCK_WAIT_UNTIL(scraped_mask(m, false) == 7u, 30000);
	{
		size_t n = mock_host_forwarded_batches(m);

		MOCK_WAIT_UNTIL(mock_host_forwarded_batches(m) >= n + 3, 30000);
	}
	CU_ASSERT_EQUAL(scraped_mask(m, true), 0u);
	CU_ASSERT_EQUAL(scraped_mask(m, false), 7u);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 3);
	CU_ASSERT_EQUAL(owned, 3);
	/* any other change: the host must re-create the instance */
	free(cfg2);
	cfg2 = targets_cfg(srv.port, 2, "job_name = \"other\";");
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg2, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), -EOPNOTSUPP);
	type->stop(inst);
	type->destroy(inst);
	mock_host_free(m);
	free(cfg);
	free(cfg2);
	srv_stop(&srv);
}

static void test_component_protocols(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	char err[256], *cfg;
	void *inst;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	cfg = targets_cfg(srv.port, 1,
			  "scrape_protocols = [ \"PrometheusText1.0.0\", \"PrometheusText0_0_4\" ];"
			  "scrape_timeout = \"150ms\"; enable_compression = false;"
			  "params = { module = \"a b\"; };"
			  "basic_auth = { username = \"u\"; password = \"p\"; };");
	m = mock_host_new("prometheus.scrape.proto", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	MOCK_WAIT_UNTIL(atomic_load(&srv.hits) >= 1, 30000);
	type->stop(inst);
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, "GET /metrics?module=a+b HTTP/1.1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
	    srv.last_request, "\r\nAccept: text/plain;version=1.0.0;escaping=underscores;q=0.3,"
			      "text/plain;version=0.0.4;q=0.2,*/*;q=0.1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(srv.last_request, "\r\nX-Prometheus-Scrape-Timeout-Seconds: 0.15\r\n"));
	CU_ASSERT_PTR_NULL(strstr(srv.last_request, "gzip"));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, "\r\nAuthorization: Basic dTpw\r\n"));
	type->destroy(inst);
	mock_host_free(m);
	free(cfg);
	srv_stop(&srv);
}

/* Multi-valued params (Alloy's `params`, a url.Values): every value is sent
 * in config order, names sorted (Go's url.Values.Encode); a target's
 * __param_<name> label replaces only the first value, as Prometheus'
 * Target.URL() does (scrape/target.go). */
static void test_component_multi_params(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	static const char *const extra[] = {"", "*param_module = \"icmp\"; "};
	static const char *const want[] = {
	    "GET /metrics?module=http_2xx&module=tcp&target=a+b HTTP/1.1\r\n",
	    "GET /metrics?module=icmp&module=tcp&target=a+b HTTP/1.1\r\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct http_srv srv;
		struct mock_host *m;
		char err[256], cfg[1024], tgt[128];
		void *inst;

		CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
		snprintf(tgt, sizeof(tgt), "{ *address__ = \"127.0.0.1:%d\"; %s}", srv.port,
			 extra[i]);
		snprintf(cfg, sizeof(cfg),
			 "targets = ( %s );\nforward_to = [ \"x.y\" ];\n"
			 "scrape_interval = \"200ms\";\n"
			 "params = { target = \"a b\"; module = [ \"http_2xx\", \"tcp\" ]; };\n",
			 tgt);
		m = mock_host_new("prometheus.scrape.mp", type->schema, cfg, err, sizeof(err));
		CU_ASSERT_FATAL(m != NULL);
		mock_host_set_quiet(m, true);
		CU_ASSERT_FATAL(type->create(mock_host_api(m), mock_host_self(m),
					     mock_host_config(m), &inst) == 0);
		CU_ASSERT_FATAL(type->start(inst) == 0);
		MOCK_WAIT_UNTIL(atomic_load(&srv.hits) >= 1, 30000);
		type->stop(inst);
		if (!strstr(srv.last_request, want[i]))
			fprintf(stderr, "\nrequest: %.120s\n", srv.last_request);
		CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_request, want[i]));
		type->destroy(inst);
		mock_host_free(m);
		srv_stop(&srv);
	}
	/* a value that is neither a string nor a list of strings */
	{
		struct mock_host *m;
		char err[256];
		void *inst = NULL;

		m = mock_host_new("prometheus.scrape.mp", type->schema,
				  "targets = ( { *address__ = \"127.0.0.1:1\"; } );\n"
				  "forward_to = [ \"x.y\" ];\nparams = { module = [ 1 ]; };\n",
				  err, sizeof(err));
		CU_ASSERT_FATAL(m != NULL);
		mock_host_set_quiet(m, true);
		CU_ASSERT_NOT_EQUAL(
		    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst),
		    0);
		mock_host_free(m);
	}
}

/* Issue 13, kill -9 of a target's owner: the cluster cuts the dead owner's
 * span at the time this node first suspected it, so once the death is
 * declared, slots from then on are this node's, retroactively (see
 * scrape_sched.h "Catch-up"). death_cut is that time; the predicate counts
 * the questions about the slot under watch. */
static _Atomic int64_t death_cut = INT64_MAX, watch_slot;
static atomic_int watch_asks;

static bool owns_after_cut(void *arg, uint64_t key, unsigned replicas, int64_t at)
{
	(void)arg;
	(void)key;
	(void)replicas;
	if (at == atomic_load(&watch_slot))
		atomic_fetch_add(&watch_asks, 1);
	return at >= atomic_load(&death_cut);
}

/* Timestamps of the forwarded up samples: earliest and latest. */
static void up_times(struct mock_host *m, int64_t *lo, int64_t *hi)
{
	*lo = INT64_MAX;
	*hi = INT64_MIN;
	for (size_t i = 0; i < mock_host_forwarded_batches(m); i++) {
		const struct starling_series_batch *b = mock_host_forwarded_batch(m, i);

		for (size_t j = 0; j < b->n_series; j++) {
			const char *n = get_label(&b->series[j], "__name__");

			if (!n || strcmp(n, "up") || !b->series[j].n_samples)
				continue;
			if (b->series[j].timestamps_ms[0] < *lo)
				*lo = b->series[j].timestamps_ms[0];
			if (b->series[j].timestamps_ms[0] > *hi)
				*hi = b->series[j].timestamps_ms[0];
		}
	}
}

/* One target at 1 h: its first slot s1 comes (the mock clock jumps to it)
 * while another node owns it, so it is skipped; then the owner is declared
 * dead, having been first suspected `cut_before_slot` ms before s1 (< 0:
 * after s1). */
static void catch_up_case(int64_t cut_before_slot)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	const int64_t iv = 3600 * 1000;
	struct http_srv srv;
	struct mock_host *m;
	struct collect col = {0};
	char err[256], cfg[512];
	int64_t now, s1, lo, hi, moved = 0;
	void *inst;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( { *address__ = \"127.0.0.1:%d\"; } );\n"
		 "forward_to = [ \"x.y\" ];\nscrape_interval = \"1h\";\n"
		 "clustering = { enabled = true; };",
		 srv.port);
	m = mock_host_new("prometheus.scrape.catchup", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	atomic_store(&death_cut, INT64_MAX); /* the other node owns every slot */
	atomic_store(&watch_asks, 0);
	mock_host_set_owns_at(m, owns_after_cut, NULL);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_EQUAL_FATAL(type->list_targets(inst, collect_emit, &col), 0);
	CU_ASSERT_EQUAL_FATAL(col.n, 1);
	now = mock_host_api(m)->now_ms();
	s1 = starling_scrape_next_slot(now, iv, starling_scrape_phase(col.keys[0], iv));
	atomic_store(&watch_slot, s1);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	/* s1 comes: skipped, owned elsewhere */
	moved = s1 - now + 5;
	mock_host_advance(m, moved);
	MOCK_WAIT_UNTIL(atomic_load(&watch_asks) >= 1, 30000);
	CU_ASSERT_EQUAL_FATAL(atomic_load(&watch_asks), 1);
	/* the owner is declared dead */
	atomic_store(&death_cut, s1 - cut_before_slot);
	mock_host_cluster_change(m, 2);
	if (cut_before_slot > 0) {
		/* scraped at once, as slot s1 */
		MOCK_WAIT_UNTIL(mock_host_metric(m, "starling_scrapes_total", NULL) >= 1, 30000);
		up_times(m, &lo, &hi);
		CU_ASSERT(lo >= s1 && hi < s1 + iv);
		CU_ASSERT_EQUAL(atomic_load(&srv.hits), 1);
		CU_ASSERT_EQUAL(mock_host_metric(m, "starling_scrape_catch_up_total", NULL), 1);
	} else {
		/* asked again about s1, which stays skipped; scraped at s2 */
		MOCK_WAIT_UNTIL(atomic_load(&watch_asks) >= 2, 30000);
		CU_ASSERT_EQUAL(atomic_load(&watch_asks), 2);
		mock_host_advance(m, iv);
		moved += iv;
		MOCK_WAIT_UNTIL(mock_host_metric(m, "starling_scrapes_total", NULL) >= 1, 30000);
		up_times(m, &lo, &hi);
		CU_ASSERT(lo >= s1 + iv);
		CU_ASSERT_EQUAL(mock_host_metric(m, "starling_scrape_catch_up_total", NULL), 0);
	}
	type->stop(inst);
	CU_ASSERT_EQUAL(mock_host_metric(m, "starling_scrapes_total", NULL), 1);
	mock_host_advance(m, -moved);
	type->destroy(inst);
	mock_host_free(m);
	srv_stop(&srv);
}

static void test_component_catch_up_after_death(void)
{
	/* the slot started 1 s after the suspicion: the dead owner scraped
	 * nothing then */
	catch_up_case(1000);
}

static void test_component_no_catch_up_before_suspicion(void)
{
	/* the slot started 1 s before the suspicion: the dead owner may have
	 * scraped it, so a catch-up could double it */
	catch_up_case(-1000);
}

/* The wall clock jumps back an hour: scraping goes on at the new slots. */
static void test_component_clock_back(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	char err[256], *cfg;
	void *inst;
	int hits;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	cfg = targets_cfg(srv.port, 2, "");
	m = mock_host_new("prometheus.scrape.clock", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	MOCK_WAIT_UNTIL(atomic_load(&srv.hits) >= 1, 30000);
	mock_host_advance(m, -3600 * 1000);
	hits = atomic_load(&srv.hits);
	MOCK_WAIT_UNTIL(atomic_load(&srv.hits) >= hits + 3, 30000);
	CU_ASSERT(atomic_load(&srv.hits) >= hits + 3);
	CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_WARN, "wall clock went back"), 1);
	type->stop(inst);
	mock_host_advance(m, 3600 * 1000);
	type->destroy(inst);
	mock_host_free(m);
	free(cfg);
	srv_stop(&srv);
}

static void test_component_bad_config(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	static const char *const bad[] = {
	    "targets = ( { job = \"x\"; } ); forward_to = [ \"a.b\" ];",
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"a.b\" ]; "
	    "scheme = \"gopher\";",
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"a.b\" ]; "
	    "scrape_protocols = [ \"PrometheusProtobuf\" ];",
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"a.b\" ]; "
	    "native_histogram_bucket_limit = -1;",
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"a.b\" ]; "
	    "native_histogram_min_bucket_factor = -2.0;",
	    "targets = ( { *address__ = \"h:1\"; } ); forward_to = [ \"a.b\" ]; "
	    "sample_limit = -1;",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256];
		struct mock_host *m =
		    mock_host_new("prometheus.scrape.bad", type->schema, bad[i], err, sizeof(err));
		void *inst = NULL;

		CU_ASSERT_FATAL(m != NULL);
		mock_host_set_quiet(m, true);
		CU_ASSERT(type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m),
				       &inst) == -EINVAL);
		CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_ERROR, NULL), 1);
		mock_host_free(m);
	}
}

/* ------------------------------------------------------------------------ */
/* Discovered targets (ABI 1.1 target sets).                                 */

/* Wait (10 s deadline) until scraped_mask(m, stale_only) covers `want`. */
static bool wait_mask(struct mock_host *m, bool stale_only, unsigned want)
{
	MOCK_WAIT_UNTIL((scraped_mask(m, stale_only) & want) == want, 30000);
	if ((scraped_mask(m, stale_only) & want) == want)
		return true;
	fprintf(stderr, "\nwanted mask %#x (stale %d), got %#x\n", want, (int)stale_only,
		scraped_mask(m, stale_only));
	return false;
}

/* Timestamp of the first forwarded up sample of target idx, or -1. */
static int64_t first_up_ts(struct mock_host *m, const char *idx)
{
	for (size_t i = 0; i < mock_host_forwarded_batches(m); i++) {
		const struct starling_series_batch *b = mock_host_forwarded_batch(m, i);
		const struct starling_series *s = find(b, "up", "idx", idx);

		if (s)
			return s->timestamps_ms[0];
	}
	return -1;
}

/* Value of the first forwarded sample `name` of target idx, or -1. */
static double first_value(struct mock_host *m, const char *name, const char *idx)
{
	for (size_t i = 0; i < mock_host_forwarded_batches(m); i++) {
		const struct starling_series *s =
		    find(mock_host_forwarded_batch(m, i), name, "idx", idx);

		if (s)
			return s->values[0];
	}
	return -1;
}

static void add_target(struct mock_targets *mt, int port, const char *idx)
{
	char addr[64], l_idx[32];

	snprintf(addr, sizeof(addr), "__address__=127.0.0.1:%d", port);
	snprintf(l_idx, sizeof(l_idx), "idx=%s", idx);
	mock_targets_add(mt, addr, l_idx, "__meta_src=disc", NULL);
}

/* The scraper follows a discovery component's set in place, like
 * Prometheus' scrapePool.sync (scrape/scrape.go): unchanged targets keep
 * their loop (series cache, slot), new ones start at their slot, vanished
 * ones get end-of-run staleness markers at their next slot; targets that
 * cannot be scraped (no __address__) are dropped and counted. Inline and
 * discovered targets are concatenated in config order. */
static void test_component_discovered(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	struct mock_targets *s1 = mock_targets_new(), *s2 = mock_targets_new();
	struct collect col = {0};
	char err[256], cfg[1024];
	void *inst;
	size_t owned, total;
	int64_t ts;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( \"discovery.file.a\",\n"
		 "            { *address__ = \"127.0.0.1:%d\"; idx = \"0\"; } );\n"
		 "forward_to = [ \"x.y\" ];\nscrape_interval = \"200ms\";\n",
		 srv.port);
	m = mock_host_new("prometheus.scrape.disc", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_TRUE(type->accepts & STARLING_ACCEPTS_TARGETS);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 1);

	/* the discovery set: idx 1 and 2, plus one without __address__ */
	add_target(s1, srv.port, "1");
	add_target(s1, srv.port, "2");
	mock_targets_add(s1, "idx=9", "job=nowhere", NULL);
	CU_ASSERT_EQUAL(
	    mock_host_deliver_targets(type, inst, "discovery.file.a", mock_targets_set(s1)), 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 3);
	CU_ASSERT_EQUAL(mock_host_metric(m, "starling_scrape_targets_dropped_total", NULL), 1);
	CU_ASSERT_EQUAL(mock_host_metric(m, "prometheus_scrape_targets_gauge", NULL), 3);
	CU_ASSERT_EQUAL(type->list_targets(inst, collect_emit, &col), 0);
	CU_ASSERT_EQUAL(col.n, 3);
	CU_ASSERT_TRUE(wait_mask(m, false, 7u));
	/* a discovered target scrapes at its own slot: k * interval + phase */
	{
		struct scrape_config *c = mk_cfg();
		char addr[32];
		struct starling_label in[3] = {
		    {"__address__", addr}, {"__meta_src", "disc"}, {"idx", "2"}};
		struct scrape_target *t;

		c->interval_ms = 200;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
		CU_ASSERT_FATAL(scrape_target_new(c, in, 3, &t, err, sizeof(err)) == 0);
		ts = first_up_ts(m, "2");
		CU_ASSERT_TRUE(ts > 0);
		CU_ASSERT_TRUE(((ts - t->phase_ms) % 200 + 200) % 200 < 100);
		scrape_target_free(t);
		free_cfg(c);
	}

	/* new set: 2 stays, 1 vanishes, 3 appears. 1 gets staleness markers
	 * (its last scrape's series), nobody else does; 3 is scraped */
	mock_host_clear_forwarded(m);
	add_target(s2, srv.port, "2");
	add_target(s2, srv.port, "3");
	CU_ASSERT_EQUAL(
	    mock_host_deliver_targets(type, inst, "discovery.file.a", mock_targets_set(s2)), 0);
	CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_INFO,
					    "targets updated: 2 kept, 1 added, 1 removed"),
			1);
	CU_ASSERT_TRUE(wait_mask(m, true, 1u << 1));
	CU_ASSERT_TRUE(wait_mask(m, false, 1u << 3 | 1u << 2 | 1u));
	CU_ASSERT_EQUAL(scraped_mask(m, true), 1u << 1);
	/* 2 kept its series cache (no series added), 3 is new (metric_a) */
	CU_ASSERT_EQUAL(first_value(m, "scrape_series_added", "2"), 0);
	CU_ASSERT_EQUAL(first_value(m, "scrape_series_added", "3"), 1);

	/* the source removed by a reload: one empty set; its targets go stale,
	 * the inline one stays */
	mock_host_clear_forwarded(m);
	CU_ASSERT_EQUAL(mock_host_deliver_targets(type, inst, "discovery.file.a", NULL), 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 1);
	CU_ASSERT_TRUE(wait_mask(m, true, 1u << 2 | 1u << 3));
	CU_ASSERT_EQUAL(scraped_mask(m, true), 1u << 2 | 1u << 3);

	/* an unsorted set is refused and changes nothing */
	{
		struct starling_label bad_l[] = {{"job", "x"}, {"__address__", "a:1"}};
		struct starling_target bad_t = {bad_l, 2};
		struct starling_target_set bad = {&bad_t, 1};

		CU_ASSERT_EQUAL(mock_host_deliver_targets(type, inst, "discovery.file.a", &bad),
				-EINVAL);
		mock_host_targets(m, &owned, &total);
		CU_ASSERT_EQUAL(total, 1);
	}
	type->stop(inst);
	type->destroy(inst);
	mock_targets_free(s1);
	mock_targets_free(s2);
	mock_host_free(m);
	srv_stop(&srv);
}

/* A reload keeps the latest set of a source still named; clustering
 * applies to discovered targets as to inline ones. */
static void test_component_discovered_update_cluster(void)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct http_srv srv;
	struct mock_host *m;
	struct mock_targets *s1 = mock_targets_new();
	struct collect col = {0};
	char err[256], cfg[1024];
	void *inst;
	size_t owned, total, want = 0;

	CU_ASSERT_FATAL(srv_start(&srv, "metric_a 1\n") == 0);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( \"discovery.file.a\" );\nforward_to = [ \"x.y\" ];\n"
		 "scrape_interval = \"200ms\";\nclustering = { enabled = true; };\n");
	m = mock_host_new("prometheus.scrape.disc2", type->schema, cfg, err, sizeof(err));
	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	mock_host_set_owns(m, owns_even, NULL);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	for (int i = 0; i < 8; i++) {
		char idx[8];

		snprintf(idx, sizeof(idx), "%d", i);
		add_target(s1, srv.port, idx);
	}
	/* before start(), as the host does right after it */
	CU_ASSERT_EQUAL(
	    mock_host_deliver_targets(type, inst, "discovery.file.a", mock_targets_set(s1)), 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	CU_ASSERT_EQUAL(type->list_targets(inst, collect_emit, &col), 0);
	CU_ASSERT_EQUAL(col.n, 8);
	for (size_t i = 0; i < col.n; i++) {
		CU_ASSERT_EQUAL(col.owned[i], col.keys[i] % 2 == 0);
		want += col.owned[i];
	}
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 8);
	CU_ASSERT_EQUAL(owned, want);

	/* a reload that changes only the inline part keeps the set */
	snprintf(cfg, sizeof(cfg),
		 "targets = ( \"discovery.file.a\", { *address__ = \"127.0.0.1:%d\"; "
		 "idx = \"9\"; } );\nforward_to = [ \"x.y\" ];\n"
		 "scrape_interval = \"200ms\";\nclustering = { enabled = true; };\n",
		 srv.port);
	CU_ASSERT_FATAL(mock_host_set_config(m, cfg, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(type->update(inst, mock_host_config(m)), 0);
	mock_host_targets(m, &owned, &total);
	CU_ASSERT_EQUAL(total, 9);
	CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_INFO,
					    "targets updated: 8 kept, 1 added, 0 removed"),
			1);
	type->stop(inst);
	type->destroy(inst);
	mock_targets_free(s1);
	mock_host_free(m);
	srv_stop(&srv);
}

/* The families (sorted, "a,b,") of a batch's metadata. */
static void md_families(const struct starling_series_batch *b, char *out, size_t len)
{
	const char *v[16];
	size_t n = 0, o = 0;

	for (size_t i = 0; i < b->n_metadata && n < 16; i++)
		v[n++] = b->metadata[i].family;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			const char *t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	out[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s,", v[i]);
}

/* honor_metadata (Alloy's argument; Prometheus' scrape loop with
 * AppendMetadata, scrape/scrape.go, appends a family's metadata when it is
 * first seen or changed): the metadata of a family goes with the scrape in
 * which it is new for the target or its TYPE/HELP/UNIT changed, besides
 * the once-a-minute full set. Without it only the full set goes, once a
 * minute. */
static void test_honor_metadata(void)
{
	static const char *const pages[] = {
	    "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# TYPE g gauge\ng 1\n",
	    /* unchanged */
	    "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n# TYPE g gauge\ng 1\n",
	    /* a_total's HELP changed, h is new, g unchanged */
	    "# HELP a_total A2.\n# TYPE a_total counter\na_total 3\n# TYPE g gauge\ng 1\n"
	    "# TYPE h gauge\nh 1\n",
	    /* g's TYPE changed */
	    "# HELP a_total A2.\n# TYPE a_total counter\na_total 4\n# TYPE g untyped\ng 1\n"
	    "# TYPE h gauge\nh 1\n",
	};
	static const char *const want_on[] = {"a_total,g,", "", "a_total,h,", "g,", "a_total,g,h,"};
	static const char *const want_off[] = {"a_total,g,", "", "", "", "a_total,g,h,"};

	for (int on = 0; on < 2; on++) {
		struct harness h;
		struct scrape_config *c = mk_cfg();
		struct scrape_stats st;
		char fams[128];

		c->honor_metadata = on;
		h_init(&h, c, NULL, NULL);
		for (size_t i = 0; i < 5; i++) {
			/* the fifth scrape is a minute after the first: the full set */
			int64_t ts = i < 4 ? 1000 + (int64_t)i * 1000 : 1000 + SCRAPE_METADATA_MS;
			const struct starling_series_batch *b =
			    h_scrape(&h, pages[i < 4 ? i : 3], ts, &st);

			md_families(b, fams, sizeof(fams));
			if (strcmp(fams, (on ? want_on : want_off)[i]))
				fprintf(stderr, "\nhonor_metadata=%d scrape %zu: metadata of %s\n",
					on, i, fams);
			CU_ASSERT_STRING_EQUAL(fams, (on ? want_on : want_off)[i]);
			if (on && i == 2)
				for (size_t k = 0; k < b->n_metadata; k++) {
					const struct starling_metadata *m = &b->metadata[k];

					if (!strcmp(m->family, "a_total")) {
						CU_ASSERT_STRING_EQUAL(m->help, "A2.");
						CU_ASSERT_EQUAL(m->type, STARLING_METRIC_COUNTER);
					} else {
						CU_ASSERT_STRING_EQUAL(m->family, "h");
						CU_ASSERT_EQUAL(m->type, STARLING_METRIC_GAUGE);
					}
				}
		}
		h_free(&h);
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	/* A test server writing to a client that gave up (a timeout on a loaded
	 * machine) must see EPIPE, not die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("prometheus_scrape", NULL, NULL);
	CU_add_test(s, "target labels and URL", test_target_labels_and_url);
	CU_add_test(s, "phase is node independent", test_phase_node_independent);
	CU_add_test(s, "series cache and staleness", test_cache_and_staleness);
	CU_add_test(s, "honor_metadata", test_honor_metadata);
	CU_add_test(s, "cache churn", test_cache_churn);
	CU_add_test(s, "cache after a burst", test_cache_after_burst);
	CU_add_test(s, "cache tables fitted", test_cache_tables_fitted);
	CU_add_test(s, "failed scrapes", test_failed_scrape);
	CU_add_test(s, "generation wraps at 8 bits", test_generation_wraps);
	CU_add_test(s, "series leave the cache with their marker", test_cache_leave);
	CU_add_test(s, "label pairs shared by the targets", test_cache_pairs_shared);
	CU_add_test(s, "honor_labels", test_honor_labels);
	CU_add_test(s, "cache leaves target labels out", test_cache_leaves_target_labels_out);
	CU_add_test(s, "sample and label limits", test_limits);
	CU_add_test(s, "metric relabelling", test_metric_relabel);
	CU_add_test(s, "extra_metrics", test_extra_metrics);
	CU_add_test(s, "end-of-run staleness", test_end_of_run);
	CU_add_test(s, "OpenMetrics and fallback", test_openmetrics_and_fallback);
	CU_add_test(s, "component: ownership filtering", test_component_ownership);
	CU_add_test(s, "component: target update", test_component_update);
	CU_add_test(s, "component: request headers", test_component_protocols);
	CU_add_test(s, "component: multi-valued params", test_component_multi_params);
	CU_add_test(s, "component: wall clock goes back", test_component_clock_back);
	CU_add_test(s, "component: catch-up after the owner's death",
		    test_component_catch_up_after_death);
	CU_add_test(s, "component: no catch-up of a slot before the suspicion",
		    test_component_no_catch_up_before_suspicion);
	CU_add_test(s, "component: bad config", test_component_bad_config);
	CU_add_test(s, "component: follows discovered targets", test_component_discovered);
	CU_add_test(s, "component: discovered targets, reload, clustering",
		    test_component_discovered_update_cluster);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
