/* Unit tests: protobuf exposition decoder (sdk/lib/expo_proto.c), native
 * histogram helpers (sdk/lib/histogram.c) and the remote-write encoding of
 * histograms and exemplars (sdk/lib/remote_write.c). Bodies are built here
 * with the protobuf-c code generated from sdk/lib/metrics.proto.
 * Expected series follow Prometheus' protobuf parser
 * (model/textparse/protobufparse.go: _count, _sum, then buckets, +Inf
 * synthesized, le/quantile via formatOpenMetricsFloat); the bucket math
 * follows model/histogram/generic.go (targetIdx) and scrape/target.go
 * (pickSchema). */
#include <starling/expo.h>
#include <starling/histogram.h>
#include <starling/remote_write.h>

#include <CUnit/Basic.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.pb-c.h"
#include "prompb.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily MF;
typedef Io__Prometheus__Client__Metric M;

/* ---- body builder -------------------------------------------------------- */

struct body {
	uint8_t buf[8192];
	size_t len;
};

static void add_family(struct body *b, const MF *mf)
{
	size_t n = io__prometheus__client__metric_family__get_packed_size(mf);
	uint64_t v = n;

	while (v >= 0x80) {
		b->buf[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->buf[b->len++] = (uint8_t)v;
	b->len += io__prometheus__client__metric_family__pack(mf, b->buf + b->len);
}

/* Events of a body as text lines "S <series> <value>", "H <series> c=<count>
 * z=<zero> s=<schema> p=<n_pos>", "T <family> <type>", "X <exemplar labels>
 * <value>"; returns 0, or -1 with the error message in err. */
static int decode(const struct body *b, unsigned flags, char *out, size_t cap, char *err,
		  size_t errlen)
{
	struct starling_expo_parser *p = starling_expo_parser_new(STARLING_EXPO_PROTOBUF, flags);
	struct starling_expo_event ev;
	struct starling_lset ls;
	size_t len = 0;
	int rc;

	out[0] = '\0';
	starling_lset_init(&ls);
	starling_expo_reset(p, (const char *)b->buf, b->len);
	while ((rc = starling_expo_next(p, &ev)) > 0) {
		if (rc == STARLING_EXPO_TYPE)
			len += (size_t)snprintf(out + len, cap - len, "T %.*s %d\n",
						(int)ev.family_len, ev.family, (int)ev.type);
		if (rc == STARLING_EXPO_SAMPLE) {
			len += (size_t)snprintf(out + len, cap - len, "S %.*s %g\n",
						(int)ev.series_len, ev.series, ev.value);
			CU_ASSERT_EQUAL(starling_expo_series_labels(ev.series, ev.series_len,
								    STARLING_EXPO_PROMETHEUS, &ls,
								    NULL),
					0);
		}
		if (rc == STARLING_EXPO_HISTOGRAM)
			len += (size_t)snprintf(out + len, cap - len,
						"H %.*s c=%llu z=%llu s=%d p=%zu\n",
						(int)ev.series_len, ev.series,
						(unsigned long long)ev.histogram->count_int,
						(unsigned long long)ev.histogram->zero_count_int,
						ev.histogram->schema, ev.histogram->n_positive);
		for (size_t i = 0; i < ev.n_exemplars; i++) {
			CU_ASSERT_EQUAL(starling_expo_exemplar_labels(ev.exemplars[i].labels,
								      ev.exemplars[i].labels_len,
								      &ls, NULL),
					0);
			len += (size_t)snprintf(out + len, cap - len, "X %.*s %g\n",
						(int)ev.exemplars[i].labels_len,
						ev.exemplars[i].labels, ev.exemplars[i].value);
		}
	}
	if (rc < 0)
		snprintf(err, errlen, "%s", starling_expo_error(p).msg);
	starling_lset_free(&ls);
	starling_expo_parser_free(p);
	return rc < 0 ? -1 : 0;
}

/* ---- classic series ------------------------------------------------------ */

static void test_classic(void)
{
	Io__Prometheus__Client__LabelPair lp = IO__PROMETHEUS__CLIENT__LABEL_PAIR__INIT, *lps[1];
	Io__Prometheus__Client__LabelPair xl = IO__PROMETHEUS__CLIENT__LABEL_PAIR__INIT, *xls[1];
	Io__Prometheus__Client__Exemplar ex = IO__PROMETHEUS__CLIENT__EXEMPLAR__INIT;
	Io__Prometheus__Client__Counter ctr = IO__PROMETHEUS__CLIENT__COUNTER__INIT;
	Io__Prometheus__Client__Histogram h = IO__PROMETHEUS__CLIENT__HISTOGRAM__INIT;
	Io__Prometheus__Client__Bucket bk[6], *bks[6];
	Io__Prometheus__Client__Summary su = IO__PROMETHEUS__CLIENT__SUMMARY__INIT;
	Io__Prometheus__Client__Quantile q = IO__PROMETHEUS__CLIENT__QUANTILE__INIT, *qs[1];
	M m1 = IO__PROMETHEUS__CLIENT__METRIC__INIT, m2 = IO__PROMETHEUS__CLIENT__METRIC__INIT;
	M m3 = IO__PROMETHEUS__CLIENT__METRIC__INIT, *ms1[1], *ms2[1], *ms3[1];
	MF f1 = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
	MF f2 = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
	MF f3 = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
	static const double bounds[6] = {0.005, 1, 1e6, 123456, 1e-5, 100};
	static struct body b;
	char out[4096], err[256];

	lp.name = "path";
	lp.value = "/a\"b\\c";
	lps[0] = &lp;
	xl.name = "trace_id";
	xl.value = "t1";
	xls[0] = &xl;
	ex.n_label = 1;
	ex.label = xls;
	ex.has_value = 1;
	ex.value = 0.5;
	ctr.has_value = 1;
	ctr.value = 42;
	ctr.exemplar = &ex;
	m1.n_label = 1;
	m1.label = lps;
	m1.counter = &ctr;
	ms1[0] = &m1;
	f1.name = "req_total";
	f1.help = "Requests";
	f1.has_type = 1;
	f1.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER;
	f1.n_metric = 1;
	f1.metric = ms1;

	for (int i = 0; i < 6; i++) {
		io__prometheus__client__bucket__init(&bk[i]);
		bk[i].has_upper_bound = 1;
		bk[i].upper_bound = bounds[i];
		bk[i].has_cumulative_count = 1;
		bk[i].cumulative_count = (uint64_t)i + 1;
		bks[i] = &bk[i];
	}
	h.has_sample_count = 1;
	h.sample_count = 7;
	h.has_sample_sum = 1;
	h.sample_sum = 3.5;
	h.n_bucket = 6;
	h.bucket = bks;
	m2.histogram = &h;
	ms2[0] = &m2;
	f2.name = "lat_seconds";
	f2.has_type = 1;
	f2.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM;
	f2.n_metric = 1;
	f2.metric = ms2;

	q.has_quantile = 1;
	q.quantile = 0.5;
	q.has_value = 1;
	q.value = 9;
	qs[0] = &q;
	su.n_quantile = 1;
	su.quantile = qs;
	su.has_sample_count = 1;
	su.sample_count = 3;
	su.has_sample_sum = 1;
	su.sample_sum = 27;
	m3.summary = &su;
	ms3[0] = &m3;
	f3.name = "size_bytes";
	f3.has_type = 1;
	f3.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__SUMMARY;
	f3.n_metric = 1;
	f3.metric = ms3;

	b.len = 0;
	add_family(&b, &f1);
	add_family(&b, &f2);
	add_family(&b, &f3);
	CU_ASSERT_EQUAL_FATAL(decode(&b, 0, out, sizeof(out), err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(out, "T req_total 1\n"
				    "S req_total{path=\"/a\\\"b\\\\c\"} 42\n"
				    "X {trace_id=\"t1\"} 0.5\n"
				    "T lat_seconds 3\n"
				    "S lat_seconds_count 7\n"
				    "S lat_seconds_sum 3.5\n"
				    "S lat_seconds_bucket{le=\"0.005\"} 1\n"
				    "S lat_seconds_bucket{le=\"1.0\"} 2\n"
				    "S lat_seconds_bucket{le=\"1e+06\"} 3\n"
				    "S lat_seconds_bucket{le=\"123456.0\"} 4\n"
				    "S lat_seconds_bucket{le=\"1e-05\"} 5\n"
				    "S lat_seconds_bucket{le=\"100.0\"} 6\n"
				    "S lat_seconds_bucket{le=\"+Inf\"} 7\n"
				    "T size_bytes 5\n"
				    "S size_bytes_count 3\n"
				    "S size_bytes_sum 27\n"
				    "S size_bytes{quantile=\"0.5\"} 9\n");
}

/* ---- native histograms --------------------------------------------------- */

static Io__Prometheus__Client__BucketSpan sp[3], *sps[3];
static int64_t deltas[8];
static Io__Prometheus__Client__Histogram nh;
static M nm, *nms[1];
static MF nf;

/* A native histogram, schema 3: spans {-2,2},{1,3} deltas 1,1,-1,2,0. */
static void native_setup(void)
{
	static const int64_t d[5] = {1, 1, -1, 2, 0};

	io__prometheus__client__histogram__init(&nh);
	io__prometheus__client__metric__init(&nm);
	io__prometheus__client__metric_family__init(&nf);
	for (int i = 0; i < 3; i++) {
		io__prometheus__client__bucket_span__init(&sp[i]);
		sps[i] = &sp[i];
	}
	sp[0].has_offset = sp[0].has_length = sp[1].has_offset = sp[1].has_length = 1;
	sp[0].offset = -2;
	sp[0].length = 2;
	sp[1].offset = 1;
	sp[1].length = 3;
	memcpy(deltas, d, sizeof(d));
	nh.has_schema = 1;
	nh.schema = 3;
	nh.has_zero_threshold = 1;
	nh.zero_threshold = 1e-9;
	nh.has_zero_count = 1;
	nh.zero_count = 2;
	nh.has_sample_count = 1;
	nh.sample_count = 12; /* buckets 1,2,1,3,3 = 10, + zero 2 */
	nh.has_sample_sum = 1;
	nh.sample_sum = 4.25;
	nh.n_positive_span = 2;
	nh.positive_span = sps;
	nh.n_positive_delta = 5;
	nh.positive_delta = deltas;
	nm.histogram = &nh;
	nms[0] = &nm;
	nf.name = "rpc_seconds";
	nf.has_type = 1;
	nf.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM;
	nf.n_metric = 1;
	nf.metric = nms;
}

static void test_native(void)
{
	static struct body b;
	char out[4096], err[256];

	native_setup();
	b.len = 0;
	add_family(&b, &nf);
	/* native only */
	CU_ASSERT_EQUAL_FATAL(
	    decode(&b, STARLING_EXPO_NATIVE_HISTOGRAMS, out, sizeof(out), err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(out, "T rpc_seconds 3\nH rpc_seconds c=12 z=2 s=3 p=5\n");
	/* classic view only: count, sum, synthesized +Inf */
	CU_ASSERT_EQUAL_FATAL(decode(&b, 0, out, sizeof(out), err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(out,
			       "T rpc_seconds 3\nS rpc_seconds_count 12\n"
			       "S rpc_seconds_sum 4.25\nS rpc_seconds_bucket{le=\"+Inf\"} 12\n");
	/* both */
	CU_ASSERT_EQUAL_FATAL(
	    decode(&b, STARLING_EXPO_NATIVE_HISTOGRAMS | STARLING_EXPO_CLASSIC_HISTOGRAMS, out,
		   sizeof(out), err, sizeof(err)),
	    0);
	CU_ASSERT_STRING_EQUAL(out, "T rpc_seconds 3\nH rpc_seconds c=12 z=2 s=3 p=5\n"
				    "S rpc_seconds_count 12\nS rpc_seconds_sum 4.25\n"
				    "S rpc_seconds_bucket{le=\"+Inf\"} 12\n");
}

/* Bad input: each fails the document with a message naming the problem. */
static void expect_bad(const struct body *b, const char *needle)
{
	char out[4096], err[256] = "";

	CU_ASSERT_EQUAL(
	    decode(b, STARLING_EXPO_NATIVE_HISTOGRAMS, out, sizeof(out), err, sizeof(err)), -1);
	if (!strstr(err, needle)) {
		fprintf(stderr, "\nerror \"%s\" lacks \"%s\"\n", err, needle);
		CU_FAIL("error message");
	}
}

static void test_bad(void)
{
	static struct body b;

	/* truncated length prefix */
	b.len = 1;
	b.buf[0] = 0x80;
	expect_bad(&b, "truncated length prefix");
	/* length beyond the body */
	b.len = 3;
	b.buf[0] = 0x7f;
	b.buf[1] = 0x0a;
	b.buf[2] = 0x00;
	expect_bad(&b, "claims 127 bytes");
	/* impossible length (more than 2^31) */
	memcpy(b.buf, "\xff\xff\xff\xff\x7f", 5);
	b.len = 5;
	expect_bad(&b, "claims");
	/* not a MetricFamily (wire type 7 is invalid) */
	memcpy(b.buf, "\x02\x0f\x00", 3);
	b.len = 3;
	expect_bad(&b, "not a valid MetricFamily");
	/* a truncated family */
	native_setup();
	b.len = 0;
	add_family(&b, &nf);
	b.len -= 2;
	b.buf[0] = (uint8_t)(b.len - 1);
	expect_bad(&b, "not a valid MetricFamily");
	/* spans cover 5 buckets, 4 deltas given */
	native_setup();
	nh.n_positive_delta = 4;
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "positive spans cover 5 buckets but 4 are given");
	/* negative bucket count */
	native_setup();
	deltas[2] = -3;
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "positive bucket 3 has a negative count");
	/* negative offset after the first span */
	native_setup();
	sp[1].offset = -1;
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "negative offset");
	/* more observations in buckets than the count */
	native_setup();
	nh.sample_count = 5;
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "observations in buckets");
	/* schema out of range */
	native_setup();
	nh.schema = 9;
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "schema 9 out of range");
	/* invalid names */
	native_setup();
	nf.name = "a-b";
	b.len = 0;
	add_family(&b, &nf);
	expect_bad(&b, "invalid metric family name");
}

/* ---- histogram helpers --------------------------------------------------- */

static void test_reduce(void)
{
	/* schema 1, buckets at indexes -1, 0, 1, 2, 3, 6 with counts 1..6 */
	struct starling_bucket_span spans[2] = {{-1, 5}, {2, 1}};
	int64_t d[6] = {1, 1, 1, 1, 1, 1};
	struct starling_histogram h = {0};
	size_t n;

	h.schema = 1;
	h.positive_spans = spans;
	h.n_positive_spans = 2;
	h.positive_deltas = d;
	h.n_positive = 6;
	CU_ASSERT_EQUAL(starling_histogram_buckets(&h), 6);
	/* to schema 0: idx -> ((idx - 1) >> 1) + 1: -1->0, 0->0, 1->1, 2->1,
	 * 3->2, 6->3; counts 1+2, 3+4, 5, 6 */
	CU_ASSERT_EQUAL(starling_histogram_reduce(&h, 0), 0);
	CU_ASSERT_EQUAL(h.schema, 0);
	CU_ASSERT_EQUAL(h.n_positive_spans, 1);
	CU_ASSERT_EQUAL(spans[0].offset, 0);
	CU_ASSERT_EQUAL(spans[0].length, 4);
	CU_ASSERT_EQUAL(h.n_positive, 4);
	CU_ASSERT_EQUAL(d[0], 3);
	CU_ASSERT_EQUAL(d[1], 4);  /* 7 - 3 */
	CU_ASSERT_EQUAL(d[2], -2); /* 5 - 7 */
	CU_ASSERT_EQUAL(d[3], 1);  /* 6 - 5 */
	n = starling_histogram_buckets(&h);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(starling_histogram_reduce(&h, 0), -EINVAL);
	CU_ASSERT_EQUAL(starling_histogram_reduce(&h, -5), -EINVAL);
	/* float histogram, gap kept as a new span */
	{
		struct starling_bucket_span fs[2] = {{1, 2}, {5, 2}};
		double c[4] = {1, 2, 3, 4};
		struct starling_histogram f = {0};

		f.is_float = true;
		f.schema = 2;
		f.positive_spans = fs;
		f.n_positive_spans = 2;
		f.positive_counts = c;
		f.n_positive = 4;
		/* schema 2 -> 1: 1->1, 2->1, 8->4, 9->5 */
		CU_ASSERT_EQUAL(starling_histogram_reduce(&f, 1), 0);
		CU_ASSERT_EQUAL(f.n_positive_spans, 2);
		CU_ASSERT_EQUAL(fs[0].offset, 1);
		CU_ASSERT_EQUAL(fs[0].length, 1);
		CU_ASSERT_EQUAL(fs[1].offset, 2);
		CU_ASSERT_EQUAL(fs[1].length, 2);
		CU_ASSERT_EQUAL(f.n_positive, 3);
		CU_ASSERT_DOUBLE_EQUAL(c[0], 3, 0);
		CU_ASSERT_DOUBLE_EQUAL(c[1], 3, 0);
		CU_ASSERT_DOUBLE_EQUAL(c[2], 4, 0);
	}
	/* Prometheus' documented factor -> schema table (configuration.md) */
	{
		static const struct {
			double f;
			int s;
		} t[] = {{65536, -4}, {256, -3},  {16, -2},   {4, -1},	 {2, 0},
			 {1.4, 1},    {1.1, 2},	  {1.09, 3},  {1.04, 4}, {1.02, 5},
			 {1.01, 6},   {1.005, 7}, {1.002, 8}, {0, 8},	 {1e9, -4}};

		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			CU_ASSERT_EQUAL(starling_histogram_schema_for_factor(t[i].f), t[i].s);
	}
}

/* ---- remote write encoding ------------------------------------------------ */

static void test_rw_ext(void)
{
	struct starling_label l = {"__name__", "h"}, el = {"trace_id", "x"};
	struct starling_bucket_span spans[2] = {{-2, 2}, {1, 1}};
	int64_t d[3] = {1, -1, 3};
	struct starling_histogram h = {0};
	struct starling_exemplar ex = {&el, 1, 0.25, 1700, true};
	struct starling_rw_buf lb = {0}, req = {0};
	Prometheus__WriteRequest *wr;
	Prometheus__Histogram *ph;
	double stale;
	uint64_t sb = STARLING_STALE_NAN_BITS;

	memcpy(&stale, &sb, 8);
	h.timestamp_ms = 1234;
	h.count_int = 5;
	h.sum = 2.5;
	h.schema = -1;
	h.zero_threshold = 0.001;
	h.zero_count_int = 1;
	h.positive_spans = spans;
	h.n_positive_spans = 2;
	h.positive_deltas = d;
	h.n_positive = 3;
	h.reset_hint = STARLING_HISTOGRAM_RESET_GAUGE;
	CU_ASSERT_EQUAL(starling_rw_encode_labels(&lb, &l, 1), 0);
	CU_ASSERT_EQUAL(
	    starling_rw_append_series_ext(&req, lb.data, lb.len, NULL, NULL, 0, &ex, 1, &h, 1), 0);
	CU_ASSERT_EQUAL(req.len, starling_rw_series_ext_size(lb.len, NULL, 0, &ex, 1, &h, 1));
	/* a float histogram whose count is 0 still reads as float; a stale one */
	{
		struct starling_histogram f = {0};

		f.is_float = true;
		f.timestamp_ms = 99;
		f.sum = stale;
		CU_ASSERT_EQUAL(starling_rw_append_series_ext(&req, lb.data, lb.len, NULL, NULL, 0,
							      NULL, 0, &f, 1),
				0);
	}
	wr = prometheus__write_request__unpack(NULL, req.len, req.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(wr);
	CU_ASSERT_EQUAL_FATAL(wr->n_timeseries, 2);
	CU_ASSERT_EQUAL(wr->timeseries[0]->n_samples, 0);
	CU_ASSERT_EQUAL_FATAL(wr->timeseries[0]->n_exemplars, 1);
	CU_ASSERT_EQUAL(wr->timeseries[0]->exemplars[0]->timestamp, 1700);
	CU_ASSERT_DOUBLE_EQUAL(wr->timeseries[0]->exemplars[0]->value, 0.25, 0);
	CU_ASSERT_STRING_EQUAL(wr->timeseries[0]->exemplars[0]->labels[0]->value, "x");
	CU_ASSERT_EQUAL_FATAL(wr->timeseries[0]->n_histograms, 1);
	ph = wr->timeseries[0]->histograms[0];
	CU_ASSERT_EQUAL(ph->count_case, PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT);
	CU_ASSERT_EQUAL(ph->count_int, 5);
	CU_ASSERT_EQUAL(ph->schema, -1);
	CU_ASSERT_EQUAL(ph->zero_count_int, 1);
	CU_ASSERT_EQUAL(ph->timestamp, 1234);
	CU_ASSERT_EQUAL(ph->reset_hint, PROMETHEUS__HISTOGRAM__RESET_HINT__GAUGE);
	CU_ASSERT_EQUAL_FATAL(ph->n_positive_spans, 2);
	CU_ASSERT_EQUAL(ph->positive_spans[0]->offset, -2);
	CU_ASSERT_EQUAL(ph->positive_spans[1]->length, 1);
	CU_ASSERT_EQUAL_FATAL(ph->n_positive_deltas, 3);
	CU_ASSERT_EQUAL(ph->positive_deltas[1], -1);
	ph = wr->timeseries[1]->histograms[0];
	CU_ASSERT_EQUAL(ph->count_case, PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT);
	CU_ASSERT_EQUAL(memcmp(&ph->sum, &sb, 8), 0);
	prometheus__write_request__free_unpacked(wr, NULL);
	starling_rw_buf_free(&lb);
	starling_rw_buf_free(&req);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("expo_proto", NULL, NULL);
	CU_add_test(s, "classic series from protobuf", test_classic);
	CU_add_test(s, "native histograms", test_native);
	CU_add_test(s, "bad bodies", test_bad);
	CU_add_test(s, "bucket reduction and schema for factor", test_reduce);
	CU_add_test(s, "remote write histograms and exemplars", test_rw_ext);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
