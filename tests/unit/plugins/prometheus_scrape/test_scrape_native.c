/* Unit tests: prometheus.scrape over the protobuf format (native
 * histograms, their staleness markers, native_histogram_bucket_limit and
 * native_histogram_min_bucket_factor, exemplars) and a Prometheus-text page
 * without a trailing newline. Behaviour as Prometheus' scrape loop:
 * scrape/scrape.go (bucket limit fails the scrape), scrape/target.go
 * (bucketLimitAppender, maxSchemaAppender), tsdb/head_append.go (a stale
 * marker of a histogram series is a histogram with the stale NaN sum). */
#include <signal.h>
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stddef.h>

#include "metrics.pb-c.h"
#include "mock_host.h"
#include "scrape_component.h"
#include <starling/histogram.h>
#include <starling/labels.h>

/* What the receiver saw in the last batch. */
struct seen {
	size_t series, hists, stale_hists, exemplars;
	int32_t schema;
	size_t buckets;
	uint64_t count;
	char ex_label[64];
};

static int on_batch(void *arg, const struct starling_series_batch *b)
{
	struct seen *s = arg;

	memset(s, 0, sizeof(*s));
	s->series = b->n_series;
	for (size_t i = 0; b->ext && i < b->n_series; i++) {
		const struct starling_series_ext *x =
		    (const void *)((const char *)b->ext + i * b->ext_size);

		for (size_t k = 0; k < x->n_histograms; k++) {
			const struct starling_histogram *h = &x->histograms[k];
			uint64_t bits;

			memcpy(&bits, &h->sum, 8);
			if (bits == STARLING_STALE_NAN_BITS) {
				s->stale_hists++;
				continue;
			}
			s->hists++;
			s->schema = h->schema;
			s->buckets = h->n_positive + h->n_negative;
			s->count = h->count_int;
		}
		s->exemplars += x->n_exemplars;
		if (x->n_exemplars && x->exemplars[0].n_labels)
			snprintf(s->ex_label, sizeof(s->ex_label), "%s=%s",
				 x->exemplars[0].labels[0].name, x->exemplars[0].labels[0].value);
	}
	return 0;
}

/* A body with one native histogram (schema 3, 8 buckets at indexes 0..7,
 * one observation each) with a bucket exemplar, and a counter with an
 * exemplar. */
static size_t make_body(uint8_t *buf, bool with_hist)
{
	Io__Prometheus__Client__BucketSpan sp = IO__PROMETHEUS__CLIENT__BUCKET_SPAN__INIT, *sps[1];
	Io__Prometheus__Client__Histogram h = IO__PROMETHEUS__CLIENT__HISTOGRAM__INIT;
	Io__Prometheus__Client__Bucket bk = IO__PROMETHEUS__CLIENT__BUCKET__INIT, *bks[1];
	Io__Prometheus__Client__Exemplar ex = IO__PROMETHEUS__CLIENT__EXEMPLAR__INIT;
	Io__Prometheus__Client__Timestamp ts = IO__PROMETHEUS__CLIENT__TIMESTAMP__INIT;
	Io__Prometheus__Client__LabelPair xl = IO__PROMETHEUS__CLIENT__LABEL_PAIR__INIT, *xls[1];
	Io__Prometheus__Client__Counter c = IO__PROMETHEUS__CLIENT__COUNTER__INIT;
	Io__Prometheus__Client__Metric m1 = IO__PROMETHEUS__CLIENT__METRIC__INIT, *ms1[1];
	Io__Prometheus__Client__Metric m2 = IO__PROMETHEUS__CLIENT__METRIC__INIT, *ms2[1];
	Io__Prometheus__Client__MetricFamily f1 = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
	Io__Prometheus__Client__MetricFamily f2 = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
	int64_t d[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	const Io__Prometheus__Client__MetricFamily *fams[2] = {&f2, &f1};
	size_t len = 0;

	sp.has_offset = sp.has_length = 1;
	sp.offset = 0;
	sp.length = 8;
	sps[0] = &sp;
	xl.name = "trace_id";
	xl.value = "abc";
	xls[0] = &xl;
	ts.has_seconds = 1;
	ts.seconds = 1700000000;
	ex.n_label = 1;
	ex.label = xls;
	ex.has_value = 1;
	ex.value = 0.3;
	ex.timestamp = &ts;
	bk.has_upper_bound = 1;
	bk.upper_bound = 1;
	bk.has_cumulative_count = 1;
	bk.cumulative_count = 8;
	bk.exemplar = &ex;
	bks[0] = &bk;
	h.has_schema = 1;
	h.schema = 3;
	h.has_sample_count = 1;
	h.sample_count = 8;
	h.has_sample_sum = 1;
	h.sample_sum = 5;
	h.n_positive_span = 1;
	h.positive_span = sps;
	h.n_positive_delta = 8;
	h.positive_delta = d;
	h.n_bucket = 1;
	h.bucket = bks;
	m1.histogram = &h;
	ms1[0] = &m1;
	f1.name = "lat_seconds";
	f1.has_type = 1;
	f1.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM;
	f1.n_metric = 1;
	f1.metric = ms1;
	c.has_value = 1;
	c.value = 7;
	c.exemplar = &ex;
	m2.counter = &c;
	ms2[0] = &m2;
	f2.name = "req_total";
	f2.has_type = 1;
	f2.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER;
	f2.n_metric = 1;
	f2.metric = ms2;
	for (int i = 0; i < (with_hist ? 2 : 1); i++) {
		size_t n = io__prometheus__client__metric_family__get_packed_size(fams[i]);

		buf[len++] = (uint8_t)n; /* < 128 */
		len += io__prometheus__client__metric_family__pack(fams[i], buf + len);
	}
	return len;
}

struct rig {
	struct mock_host *m;
	struct scrape_config cfg;
	struct scrape_scratch scratch;
	struct scrape_target *t;
	struct scrape_ctx ctx;
	struct seen seen;
};

static void rig_init(struct rig *g)
{
	struct starling_label in[1] = {{"__address__", "10.0.0.1:9100"}};
	char err[256];

	memset(g, 0, sizeof(*g));
	g->m = mock_host_new("prometheus.scrape.t", NULL, "", err, sizeof(err));
	CU_ASSERT_FATAL(g->m != NULL);
	mock_host_set_quiet(g->m, true);
	mock_host_set_receiver(g->m, on_batch, &g->seen);
	g->cfg.job_name = "j";
	g->cfg.interval_ms = 15000;
	g->cfg.timeout_ms = 10000;
	g->cfg.metrics_path = "/metrics";
	g->cfg.scheme = "http";
	g->cfg.honor_timestamps = true;
	g->cfg.body_size_limit = SCRAPE_SAFETY_BODY_LIMIT;
	g->cfg.fallback_format = STARLING_EXPO_PROMETHEUS;
	g->cfg.native_histograms = true;
	g->cfg.nh_max_schema = 8;
	scrape_scratch_init(&g->scratch);
	CU_ASSERT_FATAL(scrape_target_new(&g->cfg, in, 1, &g->t, err, sizeof(err)) == 0);
	g->ctx.api = mock_host_api(g->m);
	g->ctx.self = mock_host_self(g->m);
	g->ctx.cfg = &g->cfg;
	g->ctx.scratch = &g->scratch;
}

static void rig_free(struct rig *g)
{
	scrape_target_free(g->t);
	scrape_scratch_free(&g->scratch);
	mock_host_free(g->m);
}

static int rig_scrape(struct rig *g, const void *body, size_t len, const char *ct, int64_t ts,
		      struct scrape_stats *st)
{
	struct scrape_result r = {0};

	r.status = 200;
	r.body = body;
	r.body_len = len;
	r.content_type = ct;
	r.start_ms = ts;
	return scrape_process(&g->ctx, g->t, &r, st);
}

#define PB_CT                                                                                      \
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "               \
	"encoding=delimited"

static void test_native_and_staleness(void)
{
	struct rig g;
	struct scrape_stats st;
	uint8_t buf[1024];
	size_t len;

	rig_init(&g);
	len = make_body(buf, true);
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 1000, &st), 0);
	CU_ASSERT(st.up);
	CU_ASSERT_EQUAL(g.seen.hists, 1);
	CU_ASSERT_EQUAL(g.seen.schema, 3);
	CU_ASSERT_EQUAL(g.seen.buckets, 8);
	CU_ASSERT_EQUAL(g.seen.count, 8);
	/* the counter's and the histogram's (bucket) exemplar */
	CU_ASSERT_EQUAL(g.seen.exemplars, 2);
	CU_ASSERT_STRING_EQUAL(g.seen.ex_label, "trace_id=abc");
	/* same timestamped exemplars again: not sent twice */
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 2000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.hists, 1);
	CU_ASSERT_EQUAL(g.seen.exemplars, 0);
	/* the histogram disappears: a stale histogram marker */
	len = make_body(buf, false);
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 3000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.hists, 0);
	CU_ASSERT_EQUAL(g.seen.stale_hists, 1);
	CU_ASSERT_EQUAL(st.stale, 1);
	/* end of run: the counter's marker is a float one */
	CU_ASSERT_EQUAL(scrape_end_of_run(&g.ctx, g.t, 4000), 0);
	CU_ASSERT_EQUAL(g.seen.stale_hists, 0);
	rig_free(&g);
}

static void test_bucket_settings(void)
{
	struct rig g;
	struct scrape_stats st;
	uint8_t buf[1024];
	size_t len = make_body(buf, true);

	/* min bucket factor 1.1 -> schema 2: 8 buckets 0..7 merge to 0..4 */
	rig_init(&g);
	g.cfg.nh_max_schema = starling_histogram_schema_for_factor(1.1);
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 1000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.schema, 2);
	CU_ASSERT_EQUAL(g.seen.buckets, 5);
	CU_ASSERT_EQUAL(g.seen.count, 8);
	rig_free(&g);
	/* bucket limit 3: schema 3 -> 2 (5 buckets) -> 1 (3 buckets: 0, 1, 2) */
	rig_init(&g);
	g.cfg.nh_bucket_limit = 3;
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 1000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.schema, 1);
	CU_ASSERT_EQUAL(g.seen.buckets, 3);
	rig_free(&g);
	/* a limit no schema can meet fails the scrape */
	rig_init(&g);
	g.cfg.nh_bucket_limit = 1;
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 1000, &st), -E2BIG);
	CU_ASSERT(!st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "native_histogram_bucket_limit"));
	CU_ASSERT_EQUAL(g.seen.hists, 0);
	rig_free(&g);
	/* native histograms off: the classic view of the same histogram */
	rig_init(&g);
	g.cfg.native_histograms = false;
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len, PB_CT, 1000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.hists, 0);
	/* req_total, lat_seconds_count/_sum/_bucket{1.0,+Inf}, 5 report series */
	CU_ASSERT_EQUAL(g.seen.series, 1 + 4 + 5);
	rig_free(&g);
}

static void test_bad_protobuf(void)
{
	struct rig g;
	struct scrape_stats st;
	uint8_t buf[1024];
	size_t len;

	rig_init(&g);
	len = make_body(buf, true);
	CU_ASSERT_EQUAL(rig_scrape(&g, buf, len - 3, PB_CT, 1000, &st), -EINVAL);
	CU_ASSERT(!st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "protobuf"));
	rig_free(&g);
}

static void test_text_without_final_newline(void)
{
	struct rig g;
	struct scrape_stats st;
	const char *body = "a 1\nb{x=\"y\"} 2";

	rig_init(&g);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, strlen(body), "text/plain; version=0.0.4", 1000, &st),
			0);
	CU_ASSERT(st.up);
	CU_ASSERT_EQUAL(st.scraped, 2);
	rig_free(&g);
}

/* A NUL byte in a label value is kept, as Prometheus keeps it: the inputs
 * of Prometheus' TestPromNullByteHandling (model/textparse/
 * promparse_test.go; TestOMNullByteHandling in openmetricsparse_test.go
 * has the same), where Prometheus' labels hold "abc\x00", "\x00ss" and
 * "\x00". The batch carries the exact bytes through
 * starling_series_ext.label_value_lens, the hash is over the exact bytes
 * (so abc\0 and abc are two series), and staleness markers keep them. */
/* Series i's ext in batch b, or NULL. */
static const struct starling_series_ext *ext_at(const struct starling_series_batch *b, size_t i)
{
	return b->ext ? (const void *)((const char *)b->ext + i * b->ext_size) : NULL;
}

struct nul_seen {
	size_t series, with_lens, stale;
	char got[512];
};

static int on_nul(void *arg, const struct starling_series_batch *b)
{
	struct nul_seen *n = arg;
	size_t o = 0;

	memset(n, 0, sizeof(*n));
	n->series = b->n_series;
	for (size_t i = 0; i < b->n_series; i++) {
		const struct starling_series *se = &b->series[i];
		const struct starling_series_ext *x = ext_at(b, i);
		const size_t *lens =
		    x && b->ext_size > offsetof(struct starling_series_ext, label_value_lens)
			? x->label_value_lens
			: NULL;
		uint64_t bits;

		if (!lens)
			continue;
		n->with_lens++;
		CU_ASSERT_EQUAL(se->hash, starling_labels_hash_n(se->labels, lens, se->n_labels));
		memcpy(&bits, &se->values[0], 8);
		n->stale += bits == STARLING_STALE_NAN_BITS;
		for (size_t j = 0; j < se->n_labels && o + 64 < sizeof(n->got); j++) {
			if (strcmp(se->labels[j].name, "a") && strcmp(se->labels[j].name, "b"))
				continue;
			o += (size_t)snprintf(n->got + o, sizeof(n->got) - o,
					      "%s=", se->labels[j].name);
			for (size_t k = 0; k < lens[j]; k++)
				o += (size_t)snprintf(n->got + o, sizeof(n->got) - o,
						      se->labels[j].value[k] ? "%c" : "\\0",
						      se->labels[j].value[k]);
			o += (size_t)snprintf(n->got + o, sizeof(n->got) - o, "(%zu);", lens[j]);
		}
	}
	return 0;
}

static void test_nul_in_label_value(void)
{
	struct rig g;
	struct scrape_stats st;
	struct nul_seen n;
	static const char body[] = "null_byte_metric{a=\"abc\0\"} 1\n"
				   "a{b=\"\0ss\"} 1\n"
				   "a{b=\"\0\"} 1\n"
				   "null_byte_metric{a=\"abc\"} 2\n"
				   "b 2\n";
	static const char want[] = "a=abc\\0(4);b=\\0ss(3);b=\\0(1);";

	rig_init(&g);
	mock_host_set_receiver(g.m, on_nul, &n);
	for (int i = 0; i < 2; i++) { /* the second time from the series cache */
		CU_ASSERT_EQUAL(rig_scrape(&g, body, sizeof(body) - 1, "text/plain; version=0.0.4",
					   1000 + i * 1000, &st),
				0);
		CU_ASSERT(st.up);
		CU_ASSERT_EQUAL(st.scraped, 5);
		CU_ASSERT_EQUAL(st.post_relabel, 5);
		CU_ASSERT_EQUAL(n.series, 5 + 5);
		CU_ASSERT_EQUAL(n.with_lens, 3);
		CU_ASSERT_STRING_EQUAL(n.got, want);
	}
	/* the same in OpenMetrics */
	{
		static const char om[] = "null_byte_metric{a=\"abc\0\"} 1\n"
					 "a{b=\"\0ss\"} 1\n"
					 "a{b=\"\0\"} 1\n"
					 "null_byte_metric{a=\"abc\"} 2\n"
					 "b 2\n# EOF\n";

		CU_ASSERT_EQUAL(rig_scrape(&g, om, sizeof(om) - 1,
					   "application/openmetrics-text; version=1.0.0", 3000,
					   &st),
				0);
		CU_ASSERT_EQUAL(n.with_lens, 3);
		CU_ASSERT_STRING_EQUAL(n.got, want);
	}
	/* gone: staleness markers with the exact bytes */
	CU_ASSERT_EQUAL(rig_scrape(&g, "b 3\n", 4, "text/plain; version=0.0.4", 4000, &st), 0);
	CU_ASSERT_EQUAL(n.with_lens, 3);
	CU_ASSERT_EQUAL(n.stale, 3);
	/* in the cache's order */
	CU_ASSERT_PTR_NOT_NULL(strstr(n.got, "a=abc\\0(4);"));
	CU_ASSERT_PTR_NOT_NULL(strstr(n.got, "b=\\0ss(3);"));
	CU_ASSERT_PTR_NOT_NULL(strstr(n.got, "b=\\0(1);"));
	rig_free(&g);
}

/* Every series whose labels come from the series cache or the target
 * (samples, staleness markers, the scrape's own up/scrape_* series)
 * carries the byte lengths of its label names and values
 * (starling_series_ext.label_lens, which spare remote write a strlen()
 * per string): equal to strlen(), and to label_value_lens where a value
 * holds a NUL byte. */
struct lens_seen {
	size_t series, with_lens, bad;
};

static int on_lens(void *arg, const struct starling_series_batch *b)
{
	struct lens_seen *n = arg;

	memset(n, 0, sizeof(*n));
	n->series = b->n_series;
	for (size_t i = 0; i < b->n_series; i++) {
		const struct starling_series *se = &b->series[i];
		const struct starling_series_ext *x = ext_at(b, i);
		const uint32_t *ll =
		    x && b->ext_size >= offsetof(struct starling_series_ext, label_lens) +
					    sizeof(x->label_lens)
			? x->label_lens
			: NULL;

		if (!ll)
			continue;
		n->with_lens++;
		for (size_t j = 0; j < se->n_labels; j++) {
			size_t vl = x->label_value_lens ? x->label_value_lens[j]
							: strlen(se->labels[j].value);

			n->bad += ll[2 * j] != strlen(se->labels[j].name) || ll[2 * j + 1] != vl;
		}
	}
	return 0;
}

static void test_label_lens(void)
{
	struct rig g;
	struct scrape_stats st;
	struct lens_seen n;
	static const char body[] = "# TYPE http_requests_total counter\n"
				   "http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 1\n"
				   "http_requests_total{code=\"500\",handler=\"/\"} 2\n"
				   "nul{a=\"x\0yz\",instance=\"mine\"} 3\n"
				   "up_too 4\n";

	rig_init(&g);
	mock_host_set_receiver(g.m, on_lens, &n);
	for (int i = 0; i < 2; i++) { /* parsed, then from the series cache */
		CU_ASSERT_EQUAL(rig_scrape(&g, body, sizeof(body) - 1, "text/plain; version=0.0.4",
					   1000 + i * 1000, &st),
				0);
		CU_ASSERT_EQUAL(st.scraped, 4);
		CU_ASSERT_EQUAL(n.series, 4 + 5); /* and up, scrape_* */
		CU_ASSERT_EQUAL(n.with_lens, n.series);
		CU_ASSERT_EQUAL(n.bad, 0);
	}
	/* staleness markers */
	CU_ASSERT_EQUAL(rig_scrape(&g, "up_too 5\n", 9, "text/plain; version=0.0.4", 3000, &st), 0);
	CU_ASSERT_EQUAL(st.stale, 3);
	CU_ASSERT_EQUAL(n.with_lens, n.series);
	CU_ASSERT_EQUAL(n.bad, 0);
	CU_ASSERT_EQUAL(scrape_end_of_run(&g.ctx, g.t, 4000), 0);
	CU_ASSERT(n.series > 0);
	CU_ASSERT_EQUAL(n.with_lens, n.series);
	CU_ASSERT_EQUAL(n.bad, 0);
	rig_free(&g);
}

/* UTF-8 names (metric_name_validation_scheme = "utf8"): quoted names in
 * Prometheus text and OpenMetrics, any UTF-8 name in protobuf. */
static char utf8_seen[512];

static int on_utf8(void *arg, const struct starling_series_batch *b)
{
	size_t len = 0;

	(void)arg;
	utf8_seen[0] = '\0';
	for (size_t i = 0; i < b->n_series; i++) {
		const struct starling_series *se = &b->series[i];
		bool report = false;

		for (size_t j = 0; j < se->n_labels; j++)
			report |= !strcmp(se->labels[j].name, "__name__") &&
				  (!strncmp(se->labels[j].value, "up", 2) ||
				   !strncmp(se->labels[j].value, "scrape_", 7));
		if (report)
			continue;
		for (size_t j = 0; j < se->n_labels; j++)
			if (strcmp(se->labels[j].name, "job") &&
			    strcmp(se->labels[j].name, "instance"))
				len += (size_t)snprintf(utf8_seen + len, sizeof(utf8_seen) - len,
							"%s=%s ", se->labels[j].name,
							se->labels[j].value);
		len += (size_t)snprintf(utf8_seen + len, sizeof(utf8_seen) - len, "| ");
	}
	return 0;
}

static void test_utf8_names(void)
{
	struct rig g;
	struct scrape_stats st;
	const char *text = "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"utf-8.label\"=\"v\"} 1\n"
			   "plain{\"a.b\"=\"c\"} 2\n";
	const char *om = "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"utf-8.label\"=\"v\"} 1\n"
			 "# EOF\n";

	rig_init(&g);
	mock_host_set_receiver(g.m, on_utf8, NULL);
	/* legacy (default): the page fails */
	CU_ASSERT_EQUAL(rig_scrape(&g, text, strlen(text), "text/plain; version=1.0.0", 1000, &st),
			-EINVAL);
	g.cfg.utf8_names = true;
	CU_ASSERT_EQUAL(rig_scrape(&g, text, strlen(text), "text/plain; version=1.0.0", 2000, &st),
			0);
	CU_ASSERT_STRING_EQUAL(utf8_seen,
			       "__name__=my.metric utf-8.label=v | __name__=plain a.b=c | ");
	CU_ASSERT_EQUAL(
	    rig_scrape(&g, om, strlen(om),
		       "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8", 3000,
		       &st),
	    0);
	/* the plain series is gone: its staleness marker comes too */
	CU_ASSERT_STRING_EQUAL(utf8_seen,
			       "__name__=my.metric utf-8.label=v | __name__=plain a.b=c | ");
	rig_free(&g);
	/* protobuf: a family named my.metric with a label utf-8.label */
	{
		Io__Prometheus__Client__LabelPair lp = IO__PROMETHEUS__CLIENT__LABEL_PAIR__INIT,
						  *lps[1];
		Io__Prometheus__Client__Gauge ga = IO__PROMETHEUS__CLIENT__GAUGE__INIT;
		Io__Prometheus__Client__Metric mm = IO__PROMETHEUS__CLIENT__METRIC__INIT, *ms[1];
		Io__Prometheus__Client__MetricFamily f =
		    IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
		uint8_t buf[256];
		size_t n;

		lp.name = "utf-8.label";
		lp.value = "v\"q";
		lps[0] = &lp;
		ga.has_value = 1;
		ga.value = 4;
		mm.n_label = 1;
		mm.label = lps;
		mm.gauge = &ga;
		ms[0] = &mm;
		f.name = "my.metric";
		f.has_type = 1;
		f.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE;
		f.n_metric = 1;
		f.metric = ms;
		n = io__prometheus__client__metric_family__get_packed_size(&f);
		buf[0] = (uint8_t)n;
		io__prometheus__client__metric_family__pack(&f, buf + 1);
		rig_init(&g);
		mock_host_set_receiver(g.m, on_utf8, NULL);
		CU_ASSERT_EQUAL(rig_scrape(&g, buf, n + 1, PB_CT, 1000, &st), -EINVAL);
		g.cfg.utf8_names = true;
		CU_ASSERT_EQUAL(rig_scrape(&g, buf, n + 1, PB_CT, 2000, &st), 0);
		CU_ASSERT_STRING_EQUAL(utf8_seen, "__name__=my.metric utf-8.label=v\"q | ");
		rig_free(&g);
	}
}

/* An OpenMetrics exemplar whose labels exceed 128 code points: Prometheus
 * drops that exemplar and keeps the scrape (tsdb/exemplar.go
 * ErrExemplarLabelLength, logged by scrape/scrape.go). */
static void test_long_exemplar(void)
{
	struct rig g;
	struct scrape_stats st;
	char body[512], val[200];

	memset(val, 'x', 130);
	val[130] = '\0';
	rig_init(&g);
	snprintf(body, sizeof(body),
		 "# TYPE a counter\na_total 1 # {t=\"%s\"} 1 1.5\n# TYPE b counter\n"
		 "b_total 2 # {t=\"ok\"} 1 1.5\n# EOF\n",
		 val);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, strlen(body),
				   "application/openmetrics-text; version=1.0.0", 1000, &st),
			0);
	CU_ASSERT(st.up);
	CU_ASSERT_EQUAL(g.seen.exemplars, 1);
	CU_ASSERT_STRING_EQUAL(g.seen.ex_label, "t=ok");
	rig_free(&g);
}

/* The cache's entries move when its store is compacted after a scrape
 * (scrape.h, issue 12); the exemplar keys, kept by entry, move with them:
 * a timestamped exemplar still goes downstream once, not again. */
static void test_exemplars_after_compaction(void)
{
	enum { N = 100 };
	struct rig g;
	struct scrape_stats st;
	const char *ct = "application/openmetrics-text; version=1.0.0";
	char *body = malloc(N * 64 + 16);
	size_t len = 0;

	CU_ASSERT_FATAL(body != NULL);
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(body + len, 64,
					"# TYPE c%d counter\nc%d_total 1 # {t=\"%d\"} 1 1.5\n", i,
					i, i);
	len += (size_t)snprintf(body + len, 16, "# EOF\n");
	rig_init(&g);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, len, ct, 1000, &st), 0);
	CU_ASSERT(st.up);
	CU_ASSERT_EQUAL(g.seen.exemplars, N);
	/* grown in blocks, compacted into one exact block in scrape order;
	 * the keys follow the move */
	CU_ASSERT_EQUAL(g.t->cache.st.n_blk, 1);
	CU_ASSERT(g.t->cache.st.ordered);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, len, ct, 2000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.series, N + SCRAPE_N_REPORT);
	CU_ASSERT_EQUAL(g.seen.exemplars, 0);
	CU_ASSERT(g.t->cache.st.ordered);
	CU_ASSERT_EQUAL(g.t->cache.st.n_blk, 1);
	CU_ASSERT_EQUAL(g.t->cache.st.held, g.t->cache.st.live);
	CU_ASSERT_EQUAL(g.t->cache.ex_n, N);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, len, ct, 2500, &st), 0);
	CU_ASSERT_EQUAL(g.seen.exemplars, 0);
	/* a new exemplar of one series goes */
	memcpy(strstr(body, "c7_total 1 # {t=\"7\"} 1 1.5"), "c7_total 1 # {t=\"7\"} 1 2.5", 26);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, len, ct, 3000, &st), 0);
	CU_ASSERT_EQUAL(g.seen.exemplars, 1);
	CU_ASSERT_STRING_EQUAL(g.seen.ex_label, "t=7");
	free(body);
	rig_free(&g);
}

/* le / quantile values as Prometheus 3 normalizes them in text formats */
static char norm_seen[256];

static int on_norm(void *arg, const struct starling_series_batch *b)
{
	size_t len = 0;

	(void)arg;
	norm_seen[0] = '\0';
	for (size_t i = 0; i < b->n_series; i++)
		for (size_t j = 0; j < b->series[i].n_labels; j++) {
			const struct starling_label *l = &b->series[i].labels[j];

			if (!strcmp(l->name, "le") || !strcmp(l->name, "quantile"))
				len += (size_t)snprintf(norm_seen + len, sizeof(norm_seen) - len,
							"%s=%s ", l->name, l->value);
		}
	return 0;
}

static void test_text_le_normalized(void)
{
	struct rig g;
	struct scrape_stats st;
	const char *body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
			   "h_count 1\nh_sum 1\n# TYPE s summary\ns{quantile=\"0.50\"} 2\n"
			   "# TYPE g gauge\ng{le=\"1\"} 3\n";

	rig_init(&g);
	mock_host_set_receiver(g.m, on_norm, NULL);
	CU_ASSERT_EQUAL(rig_scrape(&g, body, strlen(body), "text/plain; version=0.0.4", 1000, &st),
			0);
	CU_ASSERT_STRING_EQUAL(norm_seen, "le=1.0 le=+Inf quantile=0.5 le=1 ");
	rig_free(&g);
}

/* ---- per-target settings (component with a free, closed port) ---------- */

static int closed_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd); /* nothing listens there now: scrapes fail at once */
	return port;
}

/* up samples per target idx seen so far. */
static void count_up(struct mock_host *m, unsigned counts[4])
{
	memset(counts, 0, 4 * sizeof(counts[0]));
	for (size_t i = 0; i < mock_host_forwarded_batches(m); i++) {
		const struct starling_series_batch *b = mock_host_forwarded_batch(m, i);

		for (size_t j = 0; j < b->n_series; j++) {
			const char *n = NULL, *idx = NULL;

			for (size_t k = 0; k < b->series[j].n_labels; k++) {
				if (!strcmp(b->series[j].labels[k].name, "__name__"))
					n = b->series[j].labels[k].value;
				if (!strcmp(b->series[j].labels[k].name, "idx"))
					idx = b->series[j].labels[k].value;
			}
			if (n && idx && !strcmp(n, "up") && idx[0] >= '0' && idx[0] < '4')
				counts[idx[0] - '0']++;
		}
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *start_component(const char *cfg, struct mock_host **mp)
{
	const struct starling_component_type *type = &prometheus_scrape_type;
	char err[256];
	void *inst = NULL;
	struct mock_host *m =
	    mock_host_new("prometheus.scrape.p", type->schema, cfg, err, sizeof(err));

	CU_ASSERT_FATAL(m != NULL);
	mock_host_set_quiet(m, true);
	CU_ASSERT_FATAL(
	    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) == 0);
	CU_ASSERT_FATAL(type->start(inst) == 0);
	*mp = m;
	return inst;
}

static void stop_component(void *inst, struct mock_host *m)
{
	prometheus_scrape_type.stop(inst);
	prometheus_scrape_type.destroy(inst);
	mock_host_free(m);
}

/* The Accept header of one scrape: a listening socket answers the first
 * request with an empty 200 and keeps its Accept line. */
struct accept_probe {
	int fd, port;
	char accept[1024];
	pthread_t th;
};

static void *probe_main(void *arg)
{
	struct accept_probe *a = arg;
	char req[4096] = ""; /* strstr() before the first read: was uninitialised */
	size_t len = 0;
	int c = accept(a->fd, NULL, NULL);
	const char *h, *e;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n\r\n";

	if (c < 0)
		return NULL;
	while (len < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		ssize_t n = read(c, req + len, sizeof(req) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
	}
	h = strcasestr(req, "\r\nAccept: ");
	if (h && (e = strstr(h + 2, "\r\n")))
		snprintf(a->accept, sizeof(a->accept), "%.*s", (int)(e - h - 10), h + 10);
	if (write(c, resp, sizeof(resp) - 1) < 0)
		a->accept[0] = '\0';
	close(c);
	return NULL;
}

static void probe_accept(const char *extra, char *out, size_t len)
{
	struct accept_probe a = {0};
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	struct mock_host *m;
	char cfg[1024];
	void *inst;

	a.fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(bind(a.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			listen(a.fd, 4) == 0);
	getsockname(a.fd, (struct sockaddr *)&sa, &sl);
	a.port = ntohs(sa.sin_port);
	pthread_create(&a.th, NULL, probe_main, &a);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( { *address__ = \"127.0.0.1:%d\"; } ); forward_to = [ \"x.y\" ];"
		 "scrape_interval = \"100ms\"; %s",
		 a.port, extra);
	inst = start_component(cfg, &m);
	pthread_join(a.th, NULL); /* returns once the first scrape was answered */
	stop_component(inst, m);
	close(a.fd);
	snprintf(out, len, "%s", a.accept);
}

/* Accept headers as Prometheus' acceptHeader() builds them
 * (scrape/scrape.go; native-histograms.md section 3). */
static void test_accept_headers(void)
{
	char got[1024];

	probe_accept("scrape_native_histograms = true;", got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(
	    got, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		 "encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;"
		 "escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
		 "text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;"
		 "q=0.2,*/*;q=0.1");
	probe_accept(
	    "metric_name_validation_scheme = \"utf8\"; enable_protobuf_negotiation = true;", got,
	    sizeof(got));
	CU_ASSERT_STRING_EQUAL(
	    got, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		 "encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;"
		 "escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
		 "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;"
		 "q=0.2,*/*;q=0.1");
	probe_accept("scrape_protocols = [ \"PrometheusText0.0.4\", \"PrometheusProto\" ];", got,
		     sizeof(got));
	CU_ASSERT_STRING_EQUAL(got,
			       "text/plain;version=0.0.4;q=0.3,application/vnd.google.protobuf;"
			       "proto=io.prometheus.client.MetricFamily;encoding=delimited;"
			       "q=0.2,*/*;q=0.1");
}

/* Two targets with their own __scrape_interval__ keep their own cadence
 * (Prometheus: the target labels override the job's interval). */
static void test_per_target_interval(void)
{
	struct mock_host *m;
	unsigned c[4];
	char cfg[1024];
	int port = closed_port();
	void *inst;
	int64_t deadline;

	snprintf(
	    cfg, sizeof(cfg),
	    "targets = ( { *address__ = \"127.0.0.1:%d\"; idx = \"0\"; "
	    "*scrape_interval__ = \"100ms\"; *scrape_timeout__ = \"50ms\"; },"
	    "{ *address__ = \"127.0.0.1:%d\"; idx = \"1\"; *scrape_interval__ = \"400ms\"; } );"
	    "forward_to = [ \"x.y\" ]; scrape_interval = \"1s\"; scrape_timeout = \"50ms\";",
	    port, port);
	inst = start_component(cfg, &m);
	deadline = mono_ms() + 30000;
	do {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
		count_up(m, c);
	} while (c[0] < 12 && mono_ms() < deadline);
	stop_component(inst, m);
	/* 12 slots of 100 ms are 1.1-1.2 s: 3 or 4 slots of 400 ms on an idle
	 * machine. A loaded one may miss some of the short slots (a 150 ms
	 * stall costs a 100 ms slot, not a 400 ms one), so the bound is the
	 * ratio, with room for half of the short slots missed: not "at most 5
	 * long slots", which assumed the short ones kept pace. */
	CU_ASSERT(c[0] >= 12);
	CU_ASSERT(c[1] >= 2);
	CU_ASSERT(c[0] >= 2 * c[1]);
	/* a timeout over the target's interval is refused like Prometheus */
	{
		struct scrape_config cf = {0};
		struct starling_label in[2] = {{"__address__", "h:1"},
					       {"__scrape_interval__", "1s"}};
		struct scrape_target *t = NULL;
		char err[256];
		int64_t ms;

		cf.job_name = "j";
		cf.metrics_path = "/m";
		cf.scheme = "http";
		cf.interval_ms = 60000;
		cf.timeout_ms = 10000;
		CU_ASSERT_EQUAL(scrape_target_new(&cf, in, 2, &t, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "scrape timeout cannot be greater"));
		in[1].value = "1m30s";
		CU_ASSERT_EQUAL(scrape_target_new(&cf, in, 2, &t, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(t->interval_ms, 90000);
		{
			char th[64];

			scrape_timeout_header(t->timeout_ms, th, sizeof(th));
			CU_ASSERT_STRING_EQUAL(th, "X-Prometheus-Scrape-Timeout-Seconds: 10");
		}
		scrape_target_free(t);
		in[1].value = "5x";
		CU_ASSERT_EQUAL(scrape_target_new(&cf, in, 2, &t, err, sizeof(err)), -EINVAL);
		CU_ASSERT_EQUAL(scrape_parse_duration("1h2m3s4ms", &ms), 0);
		CU_ASSERT_EQUAL(ms, 3723004);
		CU_ASSERT_EQUAL(scrape_parse_duration("2d", &ms), 0);
		CU_ASSERT_EQUAL(ms, 172800000);
		CU_ASSERT_EQUAL(scrape_parse_duration("3s1m", &ms), -EINVAL);
		CU_ASSERT_EQUAL(scrape_parse_duration("", &ms), -EINVAL);
		CU_ASSERT_EQUAL(scrape_parse_duration("1.5s", &ms), -EINVAL);
	}
}

/* Over target_limit every target fails without a request, up 0 and the
 * reason (Prometheus scrapePool.sync: errTargetLimit); the failures also go
 * to scrape_failure_log_file as JSON lines. */
static void test_target_limit_and_failure_log(void)
{
	struct mock_host *m;
	unsigned c[4];
	char cfg[1024], path[] = "/tmp/starling-scrape-failures-XXXXXX", line[2048];
	int port = closed_port(), fd = mkstemp(path);
	void *inst;
	int64_t deadline;
	FILE *f;
	int lines = 0, limit_lines = 0;

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	snprintf(cfg, sizeof(cfg),
		 "targets = ( { *address__ = \"127.0.0.1:%d\"; idx = \"0\"; },"
		 "{ *address__ = \"127.0.0.1:%d\"; idx = \"1\"; },"
		 "{ *address__ = \"127.0.0.1:%d\"; idx = \"2\"; } );"
		 "forward_to = [ \"x.y\" ]; scrape_interval = \"100ms\"; target_limit = 2;"
		 "scrape_failure_log_file = \"%s\";",
		 port, port, port, path);
	inst = start_component(cfg, &m);
	deadline = mono_ms() + 30000;
	do {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
		count_up(m, c);
	} while ((c[0] < 2 || c[1] < 2 || c[2] < 2) && mono_ms() < deadline);
	stop_component(inst, m);
	CU_ASSERT(c[0] >= 2 && c[1] >= 2 && c[2] >= 2);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		limit_lines +=
		    strstr(line, "\"err\":\"target_limit exceeded (number of targets: 3, "
				 "limit: 2)\"") != NULL &&
		    strstr(line, "\"msg\":\"Scrape failed\"") != NULL &&
		    strstr(line, "\"idx\":") != NULL;
	}
	fclose(f);
	unlink(path);
	CU_ASSERT(lines >= 6);
	CU_ASSERT_EQUAL(limit_lines, lines);
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
	s = CU_add_suite("prometheus_scrape_native", NULL, NULL);
	CU_add_test(s, "native histograms, exemplars, staleness", test_native_and_staleness);
	CU_add_test(s, "bucket limit and min bucket factor", test_bucket_settings);
	CU_add_test(s, "bad protobuf body", test_bad_protobuf);
	CU_add_test(s, "Prometheus text without a final newline", test_text_without_final_newline);
	CU_add_test(s, "le and quantile normalized in text", test_text_le_normalized);
	CU_add_test(s, "NUL byte in a label value", test_nul_in_label_value);
	CU_add_test(s, "label lengths of forwarded series", test_label_lens);
	CU_add_test(s, "UTF-8 metric and label names", test_utf8_names);
	CU_add_test(s, "exemplar over 128 code points dropped", test_long_exemplar);
	CU_add_test(s, "exemplar keys after store compaction", test_exemplars_after_compaction);
	CU_add_test(s, "per-target __scrape_interval__ / __scrape_timeout__",
		    test_per_target_interval);
	CU_add_test(s, "Accept headers (protobuf first, escaping)", test_accept_headers);
	CU_add_test(s, "target_limit and scrape_failure_log_file",
		    test_target_limit_and_failure_log);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
