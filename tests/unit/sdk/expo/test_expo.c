/* Unit tests: exposition parser (sdk/lib/expo*.c). Inputs are written for
 * these tests; OpenMetrics cases are named after the categories of the
 * OpenMetrics parser test suite (protocols.md §2.2). */
#include <starling/expo.h>

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PROM STARLING_EXPO_PROMETHEUS
#define OM   STARLING_EXPO_OPENMETRICS

static uint64_t bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

/* Parse a whole document: returns the number of samples, or -1 with the
 * error position in *line / *col. Also runs series_labels on every sample
 * (as check-metrics does). */
static int run_n(const char *doc, size_t len, enum starling_expo_format fmt, unsigned flags,
		 unsigned *line, unsigned *col)
{
	struct starling_expo_parser *p = starling_expo_parser_new(fmt, flags);
	struct starling_expo_event ev;
	struct starling_lset ls;
	int n = 0, rc;

	starling_lset_init(&ls);
	starling_expo_reset(p, doc, len);
	while ((rc = starling_expo_next(p, &ev)) > 0) {
		if (rc == STARLING_EXPO_SAMPLE) {
			if (starling_expo_series_labels_flags(ev.series, ev.series_len, flags, &ls,
							      NULL)) {
				if (line)
					*line = ev.line;
				n = -1;
				goto out;
			}
			n++;
		}
	}
	if (rc < 0) {
		struct starling_expo_error e = starling_expo_error(p);

		if (line)
			*line = e.line;
		if (col)
			*col = e.col;
		n = -1;
	}
out:
	starling_lset_free(&ls);
	starling_expo_parser_free(p);
	return n;
}

static int run(const char *doc, enum starling_expo_format fmt, unsigned flags, unsigned *line,
	       unsigned *col)
{
	return run_n(doc, strlen(doc), fmt, flags, line, col);
}

/* ---------------------------------------------------------------- */

static void test_prom_events(void)
{
	static const char doc[] =
	    "# HELP http_requests_total The total \\\\ number\\n of \\\"requests\\\".\n"
	    "# TYPE http_requests_total counter\n"
	    "# just a comment\n"
	    "\n"
	    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
	    "  http_requests_total { method = \"post\" , code=\"400\" , }   3   1395066363000  \n"
	    "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
	    "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
	    "metric_without_timestamp_and_labels 12.47\n"
	    "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
	    "a NaN\n"
	    "b -Inf\n"
	    "c\t.5\n";
	struct starling_expo_parser *p = starling_expo_parser_new(PROM, 0);
	struct starling_expo_event ev;
	char help[128];

	starling_expo_reset(p, doc, sizeof(doc) - 1);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_HELP);
	CU_ASSERT_EQUAL(ev.family_len, strlen("http_requests_total"));
	starling_expo_unescape(ev.text, ev.text_len, PROM, true, help);
	/* Prometheus text HELP: only \\ and \n are escapes. */
	CU_ASSERT_STRING_EQUAL(help, "The total \\ number\n of \\\"requests\\\".");
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_TYPE);
	CU_ASSERT_EQUAL(ev.type, STARLING_METRIC_COUNTER);
	CU_ASSERT_EQUAL(ev.line, 2);

	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.line, 5);
	CU_ASSERT_EQUAL(ev.series_len, strlen("http_requests_total{method=\"post\",code=\"200\"}"));
	CU_ASSERT(memcmp(ev.series, "http_requests_total{method=\"post\",code=\"200\"}",
			 ev.series_len) == 0);
	CU_ASSERT_EQUAL(ev.name_len, strlen("http_requests_total"));
	CU_ASSERT_EQUAL(ev.value, 1027);
	CU_ASSERT(ev.has_timestamp);
	CU_ASSERT_EQUAL(ev.timestamp_ms, 1395066363000);

	/* Blanks everywhere and a trailing comma: series text kept as written. */
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT(memcmp(ev.series, "http_requests_total { method = \"post\" , code=\"400\" , }",
			 ev.series_len) == 0);
	CU_ASSERT_EQUAL(ev.value, 3);

	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_DOUBLE_EQUAL(ev.value, 1.458255915e9, 0);
	CU_ASSERT(!ev.has_timestamp);
	{
		struct starling_lset ls;

		starling_lset_init(&ls);
		CU_ASSERT_EQUAL(
		    starling_expo_series_labels(ev.series, ev.series_len, PROM, &ls, NULL), 0);
		CU_ASSERT_EQUAL(ls.n, 3);
		CU_ASSERT_STRING_EQUAL(ls.v[0].name, "__name__");
		CU_ASSERT_STRING_EQUAL(ls.v[0].value, "msdos_file_access_time_seconds");
		CU_ASSERT_STRING_EQUAL(ls.v[1].name, "error");
		CU_ASSERT_STRING_EQUAL(ls.v[1].value, "Cannot find file:\n\"FILE.TXT\"");
		CU_ASSERT_STRING_EQUAL(ls.v[2].name, "path");
		CU_ASSERT_STRING_EQUAL(ls.v[2].value, "C:\\DIR\\FILE.TXT");
		starling_lset_free(&ls);
	}
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.series_len, strlen("metric_without_timestamp_and_labels"));
	CU_ASSERT_DOUBLE_EQUAL(ev.value, 12.47, 0);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT(isinf(ev.value) && ev.value > 0);
	CU_ASSERT_EQUAL(ev.timestamp_ms, -3982045);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	/* Canonical NaN, never the staleness marker. */
	CU_ASSERT_EQUAL(bits(ev.value), UINT64_C(0x7ff8000000000001));
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT(isinf(ev.value) && ev.value < 0);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.value, 0.5);
	CU_ASSERT_EQUAL(ev.line, 12);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_END);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_END);

	/* The parser is reusable after reset. */
	starling_expo_reset(p, "x 1\n", 4);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.value, 1);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_END);
	starling_expo_parser_free(p);
}

static void test_prom_histogram_summary(void)
{
	static const char doc[] = "# TYPE rpc_duration_seconds summary\n"
				  "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
				  "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
				  "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
				  "rpc_duration_seconds_sum 1.7560473e+07\n"
				  "rpc_duration_seconds_count 2693\n"
				  "# TYPE http_request_duration_seconds histogram\n"
				  "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
				  "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
				  "http_request_duration_seconds_sum 53423\n"
				  "http_request_duration_seconds_count 144320\n";

	CU_ASSERT_EQUAL(run(doc, PROM, 0, NULL, NULL), 9);
}

struct bad_case {
	const char *doc;
	unsigned line, col;
};

static void check_bad(const struct bad_case *c, size_t n, enum starling_expo_format fmt,
		      unsigned flags)
{
	for (size_t i = 0; i < n; i++) {
		unsigned line = 0, col = 0;
		int rc = run(c[i].doc, fmt, flags, &line, &col);

		if (rc != -1 || line != c[i].line || (c[i].col && col != c[i].col))
			fprintf(stderr, "\n  case %zu: rc=%d at %u:%u, want error at %u:%u: %s", i,
				rc, line, col, c[i].line, c[i].col, c[i].doc);
		CU_ASSERT_EQUAL(rc, -1);
		CU_ASSERT_EQUAL(line, c[i].line);
		if (c[i].col)
			CU_ASSERT_EQUAL(col, c[i].col);
	}
}

static void test_prom_bad(void)
{
	static const struct bad_case c[] = {
	    {"a 1", 1, 4}, /* last line without '\n' */
	    {"a 1\nb 2", 2, 4},
	    {"a 0x1p3\n", 1, 3}, /* hex float */
	    {"a 0x10\n", 1, 3},
	    {"a 1_000\n", 1, 3},		 /* '_' */
	    {"a 1 1.5\n", 1, 5},		 /* timestamp must be an integer */
	    {"a 1 9223372036854775808\n", 1, 5}, /* int64 overflow */
	    {"a 1 2 3\n", 1, 7},
	    {"a{b=c} 1\n", 1, 5},
	    {"a{b=\"c} 1\n", 1, 10},	      /* unterminated value */
	    {"a{b=\"c\" d=\"e\"} 1\n", 1, 9}, /* missing comma */
	    {"a{,} 1\n", 1, 3},
	    {"a{1=\"x\"} 1\n", 1, 3},
	    {"a{\"b\"=\"x\"} 1\n", 1, 3}, /* quoted names (text 1.0.0) */
	    {"{\"a.b\"} 1\n", 1, 1},
	    {"0a 1\n", 1, 1},
	    {"a-b 1\n", 1, 2},
	    {"a\n", 1, 2},
	    {"a \n", 1, 0},
	    {"a 1e400\n", 1, 3}, /* out of float64 range */
	    {"a -nan\n", 1, 3},
	    {"a .\n", 1, 3},
	    {"a 1e\n", 1, 3},
	    {"# TYPE a foo\n", 1, 10},
	    {"# TYPE a unknown\n", 1, 10}, /* OpenMetrics name, not 0.0.4 */
	    {"# TYPE a counter x\n", 1, 18},
	    {"# TYPE a\n", 1, 9},
	    {"# HELP 0a x\n", 1, 8},
	    {"ok 1\n# HELP a \xff\n", 2, 0},  /* HELP must be UTF-8 */
	    {"a{b=\"\xc3\x28\"} 1\n", 1, 0},  /* invalid UTF-8 label value */
	    {"a{b=\"1\",b=\"2\"} 1\n", 1, 0}, /* duplicate label name */
	    {"a{b=\"x\\\n\"} 1\n", 1, 0},
	};

	/* STRICT: next() itself reports every error with its position. */
	check_bad(c, sizeof(c) / sizeof(c[0]), PROM, STARLING_EXPO_STRICT);
	/* Scrape mode: next() skips the label grammar of lines that look
	 * regular, starling_expo_series_labels() (run on a cache miss)
	 * rejects them; either way the document fails on the same line. */
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		unsigned line = 0;

		CU_ASSERT_EQUAL(run(c[i].doc, PROM, 0, &line, NULL), -1);
		CU_ASSERT_EQUAL(line, c[i].line);
	}
}

/* The fast path must find the same series boundaries as the checking path
 * for tricky but valid lines ('}' and '"' inside values, blanks). */
static void test_prom_fast_vs_strict(void)
{
	static const char doc[] = "a{b=\"}\"} 1\n"
				  "a{b=\"} 1\"} 2\n"
				  "a{b=\"} 1 2\"} 3 4\n"
				  "a{b=\"x\\\"}\"} 5\n"
				  "a {b=\"x\"} 6\n"
				  "a{b=\"x\"}  7  8 \n"
				  "a{b=\"x\"}\t9\n"
				  "a{b=\"x\"} 1e3 -5\n"
				  "a{b=\"x\"} 0.000134616\n"
				  "a{b=\"x\"} 1.795704794206496e+09\n"
				  "a{b=\"x\"} 12345678901234567890\n"
				  "a{b=\"x\"} 7.3487e-05\n"
				  "b 1 -0\n";
	struct starling_expo_parser *f = starling_expo_parser_new(PROM, 0);
	struct starling_expo_parser *s = starling_expo_parser_new(PROM, STARLING_EXPO_STRICT);
	struct starling_expo_event ef, es;
	int rf, rs, n = 0;

	starling_expo_reset(f, doc, sizeof(doc) - 1);
	starling_expo_reset(s, doc, sizeof(doc) - 1);
	do {
		rf = starling_expo_next(f, &ef);
		rs = starling_expo_next(s, &es);
		CU_ASSERT_EQUAL(rf, rs);
		if (rf != STARLING_EXPO_SAMPLE || rs != STARLING_EXPO_SAMPLE)
			break;
		n++;
		CU_ASSERT_EQUAL(ef.series_len, es.series_len);
		CU_ASSERT(memcmp(ef.series, es.series, es.series_len) == 0);
		CU_ASSERT_EQUAL(ef.name_len, es.name_len);
		CU_ASSERT_EQUAL(bits(ef.value), bits(es.value));
		CU_ASSERT_EQUAL(ef.has_timestamp, es.has_timestamp);
		CU_ASSERT_EQUAL(ef.timestamp_ms, es.timestamp_ms);
		CU_ASSERT_EQUAL(ef.line, es.line);
	} while (1);
	CU_ASSERT_EQUAL(rf, STARLING_EXPO_END);
	CU_ASSERT_EQUAL(n, 13);
	starling_expo_parser_free(f);
	starling_expo_parser_free(s);
}

static void test_prom_good_edge(void)
{
	CU_ASSERT_EQUAL(run("", PROM, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL(run("\n\n   \n# comment\n#\n", PROM, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL(run("a{} 1\n", PROM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(run("a{b=\"}\"} 1\n", PROM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(run("a{b=\"# x\"} 1\n", PROM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(run("a:b_c 1\n", PROM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(run("a\t1\t-5\n", PROM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(
	    run("a 1e+06\nb 5.\nc +.5E-3\nd Infinity\ne -inf\nf 007\n", PROM, 0, NULL, NULL), 6);
	/* A zero-length value in a label is "no label". */
	{
		struct starling_lset ls;

		starling_lset_init(&ls);
		CU_ASSERT_EQUAL(
		    starling_expo_series_labels("m{a=\"\",b=\"x\"}", 13, PROM, &ls, NULL), 0);
		CU_ASSERT_EQUAL(ls.n, 2);
		CU_ASSERT_STRING_EQUAL(ls.v[1].name, "b");
		starling_lset_free(&ls);
	}
}

/* starling_expo_series_labels() is the cache-miss check of the scrape
 * path: it must reject everything the checking parser rejects. */
static void test_series_labels(void)
{
	static const struct {
		const char *s;
		size_t len;	    /* 0: strlen */
		const char *labels; /* NULL: must fail */
	} c[] = {
	    {"m", 0, "__name__=m"},
	    {"m{}", 0, "__name__=m"},
	    {"m { a = \"1\" , }", 0, "__name__=m,a=1"},
	    {"m{b=\"x\\\"y\",a=\"\\\\n\"}", 0, "__name__=m,a=\\n,b=x\"y"},
	    {"m{a=\"\xc3\xa9\"}", 0, "__name__=m,a=\xc3\xa9"},
	    {"m{a=\"x\\", 0, NULL},	  /* backslash at the end */
	    {"m{a=\"x\\\ny\"}", 0, NULL}, /* backslash + raw newline */
	    {"m{a=\"x\ny\"}", 0, NULL},	  /* raw newline */
	    {"m{a=\"x\0y\"}", 10, NULL},  /* NUL byte */
	    {"m{a=\"\xff\"}", 0, NULL},	  /* invalid UTF-8 */
	    {"m{a=\"1\"} ", 0, "__name__=m,a=1"},
	    {"m{a=\"1\"} x", 0, NULL}, /* text after '}' */
	    {"m{a=\"1\"", 0, NULL},
	    {"m{a=1}", 0, NULL},
	    {"m{a=\"1\" b=\"2\"}", 0, NULL},
	    {"m{a=\"1\",a=\"2\"}", 0, NULL},
	    {"m{__name__=\"x\"}", 0, NULL}, /* duplicates the name */
	    {"1m", 0, NULL},
	    {"m.x", 0, NULL},
	    {"", 0, NULL},
	};
	struct starling_lset ls;
	char got[256];

	starling_lset_init(&ls);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const char *err = NULL;
		size_t len = c[i].len ? c[i].len : strlen(c[i].s);
		int rc = starling_expo_series_labels(c[i].s, len, PROM, &ls, &err);
		size_t o = 0;

		got[0] = '\0';
		for (size_t j = 0; rc == 0 && j < ls.n; j++)
			o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s", j ? "," : "",
					      ls.v[j].name, ls.v[j].value);
		if ((rc == 0) != (c[i].labels != NULL) ||
		    (c[i].labels && strcmp(got, c[i].labels) != 0))
			fprintf(stderr, "\n  case %zu: rc=%d {%s} err=%s", i, rc, got,
				err ? err : "");
		CU_ASSERT_EQUAL(rc == 0, c[i].labels != NULL);
		if (c[i].labels && rc == 0)
			CU_ASSERT_STRING_EQUAL(got, c[i].labels);
		if (rc)
			CU_ASSERT_PTR_NOT_NULL(err);
	}
	starling_lset_free(&ls);
}

static void test_numbers(void)
{
	static const struct {
		const char *text;
		double v;
	} good[] = {
	    {"0", 0},
	    {"-0", -0.0},
	    {"1", 1},
	    {"0.1", 0.1},
	    {"1.5e3", 1500},
	    {".5", 0.5},
	    {"5.", 5},
	    {"+3", 3},
	    {"1E-2", 0.01},
	    {"123456789012345678901234567890", 1.2345678901234568e29},
	    {"0.30000000000000004", 0.30000000000000004},
	    {"1.7976931348623157e308", 1.7976931348623157e308},
	    {"4.9e-324", 4.9e-324},
	    {"0000000000000000000000000000000000000000001.2e-1", 0.12},
	    {"9007199254740993", 9007199254740992.0}, /* rounds to even */
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct starling_expo_parser *p = starling_expo_parser_new(PROM, 0);
		struct starling_expo_event ev;

		snprintf(buf, sizeof(buf), "m %s\n", good[i].text);
		starling_expo_reset(p, buf, strlen(buf));
		CU_ASSERT_EQUAL_FATAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
		if (bits(ev.value) != bits(good[i].v))
			fprintf(stderr, "\n  %s -> %.17g, want %.17g", good[i].text, ev.value,
				good[i].v);
		CU_ASSERT_EQUAL(bits(ev.value), bits(good[i].v));
		starling_expo_parser_free(p);
	}
}

static void test_content_type(void)
{
	bool fb;

	CU_ASSERT_EQUAL(starling_expo_format_from_content_type(
			    "application/openmetrics-text; version=1.0.0; charset=utf-8", 57, &fb),
			OM);
	CU_ASSERT(!fb);
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type(
			    "Application/OpenMetrics-Text;version=0.0.1", 42, &fb),
			OM);
	CU_ASSERT_EQUAL(
	    starling_expo_format_from_content_type("text/plain; version=0.0.4", 25, &fb), PROM);
	CU_ASSERT(!fb);
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type(" text/plain ", 12, &fb), PROM);
	CU_ASSERT(!fb);
	/* Missing, unknown or protobuf: Alloy's fallback, PrometheusText0.0.4. */
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type(NULL, 0, &fb), PROM);
	CU_ASSERT(fb);
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type("", 0, &fb), PROM);
	CU_ASSERT(fb);
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type("application/json", 16, &fb), PROM);
	CU_ASSERT(fb);
	{
		const char *pb = "application/vnd.google.protobuf;proto=io.prometheus.client."
				 "MetricFamily;encoding=delimited";

		/* the media type client_golang answers with (spaces after ';') */
		const char *pb2 = "application/vnd.google.protobuf; "
				  "proto=io.prometheus.client.MetricFamily; encoding=delimited";
		/* another message type or encoding is not ours */
		const char *pb3 = "application/vnd.google.protobuf;proto=io.prometheus.client."
				  "MetricFamily;encoding=text";

		CU_ASSERT_EQUAL(starling_expo_format_from_content_type(pb, strlen(pb), &fb),
				STARLING_EXPO_PROTOBUF);
		CU_ASSERT(!fb);
		CU_ASSERT_EQUAL(starling_expo_format_from_content_type(pb2, strlen(pb2), &fb),
				STARLING_EXPO_PROTOBUF);
		CU_ASSERT(!fb);
		CU_ASSERT_EQUAL(starling_expo_format_from_content_type(pb3, strlen(pb3), &fb),
				PROM);
		CU_ASSERT(fb);
	}
	/* Not NUL-terminated: only len bytes count. */
	CU_ASSERT_EQUAL(starling_expo_format_from_content_type("text/plainXYZ", 10, &fb), PROM);
	CU_ASSERT(!fb);
	CU_ASSERT_STRING_EQUAL(STARLING_EXPO_ACCEPT_HEADER,
			       "application/openmetrics-text;version=1.0.0;escaping=underscores;"
			       "q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/"
			       "plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;"
			       "version=0.0.4;q=0.3,*/*;q=0.2");

	CU_ASSERT_EQUAL(starling_expo_detect("a 1\n# EOF\n", 10), OM);
	CU_ASSERT_EQUAL(starling_expo_detect("a 1\n# EOF", 9), OM);
	CU_ASSERT_EQUAL(starling_expo_detect("# EOF", 5), OM);
	CU_ASSERT_EQUAL(starling_expo_detect("a 1\n", 4), PROM);
	CU_ASSERT_EQUAL(starling_expo_detect("a 1\n# EOF\n\n", 11), PROM);
	CU_ASSERT_EQUAL(starling_expo_detect("a 1\nx# EOF\n", 11), PROM);
	CU_ASSERT_EQUAL(starling_expo_detect("", 0), PROM);
}

static void test_unescape(void)
{
	char out[64];

	starling_expo_unescape("a\\\\b\\nc\\\"d\\ze", 13, PROM, false, out);
	CU_ASSERT_STRING_EQUAL(out, "a\\b\nc\"d\\ze");
	starling_expo_unescape("a\\\"b", 4, OM, true, out);
	CU_ASSERT_STRING_EQUAL(out, "a\"b");
	starling_expo_unescape("a\\\"b", 4, PROM, true, out);
	CU_ASSERT_STRING_EQUAL(out, "a\\\"b");
	CU_ASSERT_EQUAL(starling_expo_unescape("x\\", 2, OM, false, out), 2);
}

/* ---------------------------------------------------------------- */
/* OpenMetrics.                                                      */

static void test_om_events(void)
{
	static const char doc[] = "# TYPE a counter\n"
				  "# UNIT a_s s\n"
				  "# HELP a he\\\"lp\n"
				  "a_total{foo=\"} foo # bar # \"} 1 1.5e3 # {id=\"x\"} 0.5 1.25\n"
				  "b 2 0.0015\n"
				  "c 3 -1.5\n"
				  "# EOF";
	struct starling_expo_parser *p = starling_expo_parser_new(OM, 0);
	struct starling_expo_event ev;
	char help[32];

	starling_expo_reset(p, doc, sizeof(doc) - 1);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_TYPE);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_UNIT);
	CU_ASSERT_EQUAL(ev.text_len, 1);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_HELP);
	starling_expo_unescape(ev.text, ev.text_len, OM, true, help);
	CU_ASSERT_STRING_EQUAL(help, "he\"lp");
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT(memcmp(ev.series, "a_total{foo=\"} foo # bar # \"}", ev.series_len) == 0);
	CU_ASSERT_EQUAL(ev.series_len, strlen("a_total{foo=\"} foo # bar # \"}"));
	CU_ASSERT_EQUAL(ev.value, 1);
	CU_ASSERT(ev.has_timestamp);
	CU_ASSERT_EQUAL(ev.timestamp_ms, 1500000); /* seconds -> ms */
	CU_ASSERT(ev.has_exemplar);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.timestamp_ms, 1); /* 1.5 ms truncated like Prometheus */
	CU_ASSERT(!ev.has_exemplar);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.timestamp_ms, -1500);
	CU_ASSERT_EQUAL(starling_expo_next(p, &ev), STARLING_EXPO_END);
	starling_expo_parser_free(p);
}

struct om_case {
	const char *name;
	const char *doc;
	bool ok;
};

/* Own inputs, one or more per category of the OpenMetrics parser suite. */
static const struct om_case om_cases[] = {
    /* EOF */
    {"simple", "a 1\n# EOF\n", true},
    {"no_newline_after_eof", "# TYPE a gauge\na 1\n# EOF", true},
    {"only_eof", "# EOF\n", true},
    {"bad_no_eof", "a 1\n", false},
    {"bad_empty", "", false},
    {"bad_text_after_eof_0", "a 1\n# EOF\nx", false},
    {"bad_text_after_eof_1", "a 1\n# EOFx", false},
    {"bad_text_after_eof_2", "a 1\n# EOF\n\n", false},
    {"bad_eof_lower", "a 1\n# eof\n", false},
    /* whitespace and lines */
    {"bad_blank_line", "a 1\n\nb 1\n# EOF\n", false},
    {"bad_bom",
     "\xef\xbb\xbf"
     "a 1\n# EOF\n",
     false},
    {"bad_cr", "a 1\r\n# EOF\n", false},
    {"bad_value_two_spaces", "a  1\n# EOF\n", false},
    {"bad_value_trailing_space", "a 1 \n# EOF\n", false},
    {"bad_value_tab", "a 1\t\n# EOF\n", false},
    {"bad_leading_space", " a 1\n# EOF\n", false},
    {"bad_comment", "# a comment\n# EOF\n", false},
    {"bad_hash_no_space", "a 1\n#a 1\n# EOF\n", false},
    {"bad_metadata_keyword", "# FOO a b\n# EOF\n", false},
    /* names, labels, escaping */
    {"bad_metric_name_digit", "1a 1\n# EOF\n", false},
    {"bad_metric_name_dot", "a.b 1\n# EOF\n", false},
    {"bad_label_name", "a{1=\"x\"} 1\n# EOF\n", false},
    {"bad_dup_label", "a{x=\"1\",x=\"2\"} 1\n# EOF\n", false},
    {"bad_missing_eq", "a{x\"1\"} 1\n# EOF\n", false},
    {"bad_missing_value_label", "a{x=} 1\n# EOF\n", false},
    {"bad_single_quotes", "a{x='1'} 1\n# EOF\n", false},
    {"bad_unquoted", "a{x=1} 1\n# EOF\n", false},
    {"bad_trailing_comma", "a{x=\"1\",} 1\n# EOF\n", false},
    {"bad_double_comma", "a{x=\"1\",,y=\"2\"} 1\n# EOF\n", false},
    {"bad_missing_comma", "a{x=\"1\"y=\"2\"} 1\n# EOF\n", false},
    {"bad_space_in_labels", "a{x=\"1\", y=\"2\"} 1\n# EOF\n", false},
    {"bad_no_space_after_labels", "a{x=\"1\"}1\n# EOF\n", false},
    {"escaping", "a{x=\"q\\\"n\\nb\\\\z\\z\"} 1\n# EOF\n", true},
    {"hash_in_label", "a{x=\"} # {y=\\\"z\\\"} 1\"} 1\n# EOF\n", true},
    {"braces_in_label", "a{x=\"{}\"} 1\n# EOF\n", true},
    {"empty_braces", "a{} 1\n# EOF\n", true},
    {"empty_label_value", "a{x=\"\"} 1\n# EOF\n", true},
    {"bad_utf8_label", "a{x=\"\xff\"} 1\n# EOF\n", false},
    {"utf8_label", "a{x=\"\xe2\x98\x83\"} 1\n# EOF\n", true},
    /* numbers */
    {"leading_zeros", "a 0001.5e-0001\n# EOF\n", true},
    {"nan_inf", "a NaN\nb +Inf\nc -inf\nd Infinity\ne nan\n# EOF\n", true},
    {"bad_value_hex", "a 0x1\n# EOF\n", false},
    {"bad_value_hexfloat", "a 0x1p-3\n# EOF\n", false},
    {"bad_value_octal", "a 0o7\n# EOF\n", false},
    {"bad_value_binary", "a 0b1\n# EOF\n", false},
    {"bad_value_underscore", "a 1_0\n# EOF\n", false},
    {"bad_value_word", "a x\n# EOF\n", false},
    {"bad_value_missing", "a\n# EOF\n", false},
    {"uint64_counter", "# TYPE a counter\na_total 18446744073709551615\n# EOF\n", true},
    /* timestamps (seconds) */
    {"timestamps",
     "a{i=\"1\"} 1 000\na{i=\"2\"} 1 0.0\na{i=\"3\"} 1 1.5e3\n"
     "a{i=\"4\"} 1 12345678901234567890.123\n# EOF\n",
     true},
    {"bad_timestamp_nan", "a 1 NaN\n# EOF\n", false},
    {"bad_timestamp_inf", "a 1 +Inf\n# EOF\n", false},
    {"bad_timestamp_word", "a 1 z\n# EOF\n", false},
    {"bad_timestamp_dots", "a 1 1.1.1\n# EOF\n", false},
    {"bad_timestamp_hex", "a 1 0x1p-3\n# EOF\n", false},
    {"duplicate_timestamps", "# TYPE a gauge\na 1 0\na 2 0\na 3 0.1\n# EOF\n", true},
    {"bad_timestamp_backwards", "a 1 2\na 1 1\n# EOF\n", false},
    {"bad_timestamp_mixed_0", "a 1\na 1 1\n# EOF\n", false},
    {"bad_timestamp_mixed_1", "a 1 1\na 1\n# EOF\n", false},
    {"bad_duplicate_sample", "a 1\na 2\n# EOF\n", false},
    /* metadata */
    {"type_help_switched", "# HELP a h\n# TYPE a counter\na_total 1\n# EOF\n", true},
    {"empty_help", "# HELP a \n# EOF\n", true},
    {"empty_unit", "# UNIT a \n# EOF\n", true},
    {"unit_gauge", "# TYPE a_bytes gauge\n# UNIT a_bytes bytes\na_bytes 1\n# EOF\n", true},
    {"help_escaping", "# HELP a \\x \\\\ \\n \\\"\n# EOF\n", true},
    {"bad_help_no_space", "# HELP a\n# EOF\n", false},
    {"bad_help_no_name", "# HELP \n# EOF\n", false},
    {"bad_help_trailing_backslash", "# HELP a x\\\n# EOF\n", false},
    {"bad_type_missing", "# TYPE a\n# EOF\n", false},
    {"bad_type_untyped", "# TYPE a untyped\n# EOF\n", false},
    {"bad_type_trailing_space", "# TYPE a gauge \n# EOF\n", false},
    {"bad_type_unknown_word", "# TYPE a meh\n# EOF\n", false},
    {"bad_unit_not_suffix", "# UNIT a seconds\n# EOF\n", false},
    {"bad_unit_trailing_space", "# UNIT a_s s \n# EOF\n", false},
    {"bad_unit_info", "# TYPE a_u info\n# UNIT a_u u\n# EOF\n", false},
    {"bad_unit_stateset", "# UNIT a_u u\n# TYPE a_u stateset\n# EOF\n", false},
    {"bad_repeated_help", "# HELP a x\n# HELP a x\n# EOF\n", false},
    {"bad_repeated_type", "# TYPE a gauge\n# TYPE a gauge\n# EOF\n", false},
    {"bad_repeated_unit", "# UNIT a_s s\n# UNIT a_s s\n# EOF\n", false},
    {"bad_metadata_after_samples", "# TYPE a gauge\na 1\n# HELP a x\n# EOF\n", false},
    {"bad_type_after_samples", "a 1\n# TYPE a gauge\n# EOF\n", false},
    /* families */
    {"bad_interleaved_families", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n", false},
    {"bad_clash_created",
     "# TYPE a_created gauge\na_created 1\n# TYPE a counter\n"
     "a_total 1\n# EOF\n",
     false},
    {"bad_clash_total", "# TYPE a counter\na_total 1\n# TYPE a_total gauge\n# EOF\n", false},
    {"bad_interleaved_metrics",
     "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 2\n"
     "# EOF\n",
     false},
    {"bad_type_suffix", "# TYPE a counter\na 1\n# EOF\n", false},
    /* counter */
    {"counter", "# TYPE a counter\na_total 1\na_created 1600000000.5\n# EOF\n", true},
    {"bad_counter_created_only", "# TYPE a counter\na_created 1\n# EOF\n", false},
    {"bad_help_crlf", "# HELP a x\r\n# EOF\n", false},
    {"bad_counter_nan", "# TYPE a counter\na_total NaN\n# EOF\n", false},
    {"bad_counter_negative", "# TYPE a counter\na_total -1\n# EOF\n", false},
    /* histogram */
    {"histogram",
     "# TYPE a histogram\na_bucket{le=\"0.5\"} 1\na_bucket{le=\"1e+06\"} 2\n"
     "a_bucket{le=\"+Inf\"} 3\na_count 3\na_sum 2.5\na_created 1\n# EOF\n",
     true},
    {"histogram_no_sum_count", "# TYPE a histogram\na_bucket{le=\"+Inf\"} 3\n# EOF\n", true},
    {"negative_bucket_histogram",
     "# TYPE a histogram\na_bucket{le=\"-1\"} 1\n"
     "a_bucket{le=\"+Inf\"} 2\n# EOF\n",
     true},
    {"bad_hist_no_inf", "# TYPE a histogram\na_bucket{le=\"1\"} 1\n# EOF\n", false},
    {"bad_hist_sum_only", "# TYPE a histogram\na_sum 1\n# EOF\n", false},
    {"bad_hist_count_without_sum",
     "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\n"
     "# EOF\n",
     false},
    {"bad_hist_count_mismatch",
     "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 2\n"
     "a_sum 1\n# EOF\n",
     false},
    {"bad_hist_order",
     "# TYPE a histogram\na_bucket{le=\"2\"} 1\na_bucket{le=\"1\"} 1\n"
     "a_bucket{le=\"+Inf\"} 1\n# EOF\n",
     false},
    {"bad_hist_decreasing",
     "# TYPE a histogram\na_bucket{le=\"1\"} 2\n"
     "a_bucket{le=\"+Inf\"} 1\n# EOF\n",
     false},
    {"bad_hist_le_INF", "# TYPE a histogram\na_bucket{le=\"+INF\"} 1\n# EOF\n", false},
    {"bad_hist_no_le", "# TYPE a histogram\na_bucket 1\n# EOF\n", false},
    {"bad_hist_negative_bucket_sum",
     "# TYPE a histogram\na_bucket{le=\"-1\"} 1\n"
     "a_bucket{le=\"+Inf\"} 1\na_count 1\na_sum 0\n# EOF\n",
     false},
    {"bad_hist_sum_negative",
     "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\n"
     "a_sum -1\n# EOF\n",
     false},
    {"bad_hist_bucket_nan", "# TYPE a histogram\na_bucket{le=\"+Inf\"} NaN\n# EOF\n", false},
    {"gaugehistogram",
     "# TYPE a gaugehistogram\na_bucket{le=\"-1\"} 1\n"
     "a_bucket{le=\"+Inf\"} 2\na_gcount 2\na_gsum -3\n# EOF\n",
     true},
    {"bad_gh_gcount_only",
     "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 2\na_gcount 2\n"
     "# EOF\n",
     false},
    {"bad_gh_negative_gsum",
     "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 2\n"
     "a_gcount 2\na_gsum -1\n# EOF\n",
     false},
    {"gh_then_unknown_a_count",
     "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 2\na_count 2\n"
     "# EOF\n",
     true}, /* a_count is another family */
    /* summary */
    {"summary",
     "# TYPE a summary\na_count 1\na_sum 2\na{quantile=\"0.5\"} 0.7\n"
     "a{quantile=\"1\"} NaN\n# EOF\n",
     true},
    {"bad_summary_no_quantile", "# TYPE a summary\na 1\n# EOF\n", false},
    {"bad_summary_quantile_range", "# TYPE a summary\na{quantile=\"1.5\"} 1\n# EOF\n", false},
    {"bad_summary_quantile_nan", "# TYPE a summary\na{quantile=\"NaN\"} 1\n# EOF\n", false},
    {"bad_summary_count_negative", "# TYPE a summary\na_count -1\n# EOF\n", false},
    {"bad_summary_negative_quantile_value",
     "# TYPE a summary\na{quantile=\"0.5\"} -1\n"
     "# EOF\n",
     false},
    /* info, stateset */
    {"info", "# TYPE a info\na_info{v=\"1.0\"} 1\n# EOF\n", true},
    {"bad_info_value", "# TYPE a info\na_info{v=\"1.0\"} 2\n# EOF\n", false},
    {"bad_info_name", "# TYPE a info\na 1\n# EOF\n", false},
    {"stateset", "# TYPE a stateset\na{a=\"x\"} 1\na{a=\"y\"} 0\n# EOF\n", true},
    {"bad_stateset_value", "# TYPE a stateset\na{a=\"x\"} 2\n# EOF\n", false},
    {"bad_stateset_no_label", "# TYPE a stateset\na 1\n# EOF\n", false},
    /* exemplars */
    {"counter_exemplar", "# TYPE a counter\na_total 1 # {t=\"x\"} 1 1\n# EOF\n", true},
    {"counter_exemplar_empty", "# TYPE a counter\na_total 1 # {} 1\n# EOF\n", true},
    {"hist_exemplar", "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1 # {t=\"x\"} 0.5\n# EOF\n", true},
    {"bad_exemplar_no_braces", "# TYPE a counter\na_total 1 # t=\"x\" 1\n# EOF\n", false},
    {"bad_exemplar_no_space", "# TYPE a counter\na_total 1 #{} 1\n# EOF\n", false},
    {"bad_exemplar_no_value", "# TYPE a counter\na_total 1 # {}\n# EOF\n", false},
    {"bad_exemplar_trailing_space", "# TYPE a counter\na_total 1 # {} 1 \n# EOF\n", false},
    {"bad_exemplar_ts_nan", "# TYPE a counter\na_total 1 # {} 1 NaN\n# EOF\n", false},
    {"bad_exemplar_hash_only", "# TYPE a counter\na_total 1 #\n# EOF\n", false},
    {"bad_exemplar_gauge", "# TYPE a gauge\na 1 # {} 1\n# EOF\n", false},
    {"bad_exemplar_created", "# TYPE a counter\na_created 1 # {} 1\n# EOF\n", false},
    {"bad_exemplar_hist_sum",
     "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\n"
     "a_sum 1 # {} 1\n# EOF\n",
     false},
    {"bad_exemplar_unknown", "a 1 # {} 1\n# EOF\n", false},
};

/* 128 code points of exemplar labels are allowed, 129 are not: built at run
 * time ("a" + "=" value of n chars). */
static void test_om_exemplar_length(void)
{
	char doc[1024], val[600];
	const char *snow = "\xe2\x98\x83"; /* 3 bytes, one code point */

	for (int n = 127; n <= 128; n++) {
		memset(val, 'x', (size_t)n);
		val[n] = '\0';
		snprintf(doc, sizeof(doc), "# TYPE a counter\na_total 1 # {a=\"%s\"} 1\n# EOF\n",
			 val);
		CU_ASSERT_EQUAL(run(doc, OM, STARLING_EXPO_STRICT, NULL, NULL), n == 127 ? 1 : -1);
	}
	/* Wide characters count once. */
	for (int i = 0; i < 127; i++)
		memcpy(val + 3 * i, snow, 3);
	val[3 * 127] = '\0';
	snprintf(doc, sizeof(doc), "# TYPE a counter\na_total 1 # {a=\"%s\"} 1\n# EOF\n", val);
	CU_ASSERT_EQUAL(run(doc, OM, STARLING_EXPO_STRICT, NULL, NULL), 1);
}

static void test_om_suite(void)
{
	for (size_t i = 0; i < sizeof(om_cases) / sizeof(om_cases[0]); i++) {
		const struct om_case *c = &om_cases[i];
		unsigned line = 0, col = 0;
		int rc = run(c->doc, OM, STARLING_EXPO_STRICT, &line, &col);

		if ((rc >= 0) != c->ok)
			fprintf(stderr, "\n  %s: got %s (at %u:%u)", c->name,
				rc >= 0 ? "valid" : "invalid", line, col);
		CU_ASSERT_EQUAL(rc >= 0, c->ok);
	}
}

/* Without STRICT the OpenMetrics parser applies the grammar only (as the
 * scrape path does), so semantic errors pass but syntax errors do not. */
static void test_om_lenient(void)
{
	/* Byte 0 is valid UTF-8: allowed in HELP (suite case null_byte). */
	static const char nul[] = "# TYPE a counter\n# HELP a he\0lp\n# EOF\n";

	CU_ASSERT_EQUAL(run_n(nul, sizeof(nul) - 1, OM, STARLING_EXPO_STRICT, NULL, NULL), 0);
	CU_ASSERT_EQUAL(run("# TYPE a histogram\na_bucket{le=\"1\"} 1\n# EOF\n", OM, 0, NULL, NULL),
			1);
	CU_ASSERT_EQUAL(run("# TYPE a counter\na_total -1\n# EOF\n", OM, 0, NULL, NULL), 1);
	CU_ASSERT_EQUAL(run("a 1\n", OM, 0, NULL, NULL), -1);
	CU_ASSERT_EQUAL(run("a  1\n# EOF\n", OM, 0, NULL, NULL), -1);
	CU_ASSERT_EQUAL(run("a 1 # {} x\n# EOF\n", OM, 0, NULL, NULL), -1);
}

static void test_om_positions(void)
{
	static const struct bad_case c[] = {
	    {"a 1\n\n# EOF\n", 2, 1},
	    {"a  1\n# EOF\n", 1, 3},
	    {"a 1\n# EOF\nx", 2, 6},
	    {"a{x=\"1\",} 1\n# EOF\n", 1, 9},
	    {"# TYPE a counter\na_total -1\n# EOF\n", 2, 9},
	    {"# TYPE a gauge\na 1\n# HELP a x\n# EOF\n", 3, 1},
	    {"a 1\n", 2, 1},
	};

	check_bad(c, sizeof(c) / sizeof(c[0]), OM, STARLING_EXPO_STRICT);
}

/* Quoted UTF-8 names in strict mode (check-metrics with
 * --metric-name-validation-scheme utf8), as the scraper takes them with
 * metric_name_validation_scheme "utf8". Forms from Prometheus'
 * model/textparse/openmetricsparse_test.go and promparse_test.go (UTF-8
 * cases): `{"my.metric","utf-8.label"="v"}`, `# TYPE "my.metric" gauge`;
 * OpenMetrics allows no blanks inside the braces (openmetricslex.l). */
static void test_utf8_names_strict(void)
{
	const unsigned U = STARLING_EXPO_STRICT | STARLING_EXPO_UTF8_NAMES;
	static const char om1[] = "# TYPE \"my.metric\" gauge\n# HELP \"my.metric\" Help.\n"
				  "{\"my.metric\",\"utf-8.label\"=\"v\"} 1\n"
				  "# TYPE \"my.counter\" counter\n{\"my.counter_total\"} 3 # "
				  "{\"trace.id\"=\"x\"} 1\n{\"my.counter_created\"} 1700000000\n"
				  "# TYPE a gauge\na{\"a.b\"=\"c\",d=\"e\"} 1\n# EOF\n";
	static const char prom1[] = "# TYPE \"my.metric\" gauge\n"
				    "{\"my.metric\", \"utf-8.label\"=\"v\"} 1\n"
				    "a{\"a.b\"=\"c\"} 2\n";
	static const struct bad_case om_bad[] = {
	    /* blanks inside the braces: Prometheus text only */
	    {"{\"my.metric\", \"utf-8.label\"=\"v\"} 1\n# EOF\n", 1, 14},
	    /* a counter sample without _total */
	    {"# TYPE \"c.c\" counter\n{\"c.c\"} 1\n# EOF\n", 2, 1},
	    /* a quoted string followed by '=' is a label: no metric name */
	    {"{\"a.b\"=\"c\"} 1\n# EOF\n", 1, 2},
	    {"{\"m\",} 1\n# EOF\n", 1, 6},
	    {"{\"m} 1\n# EOF\n", 1, 2},
	};
	struct starling_expo_parser *p;
	struct starling_expo_event ev;
	struct starling_lset ls;
	int rc;

	CU_ASSERT_EQUAL(run(om1, OM, U, NULL, NULL), 4);
	CU_ASSERT_EQUAL(run(prom1, PROM, U, NULL, NULL), 2);
	check_bad(om_bad, sizeof(om_bad) / sizeof(om_bad[0]), OM, U);
	/* without the flag (legacy), strict mode refuses them as before */
	CU_ASSERT_EQUAL(run(om1, OM, STARLING_EXPO_STRICT, NULL, NULL), -1);
	CU_ASSERT_EQUAL(run(prom1, PROM, STARLING_EXPO_STRICT, NULL, NULL), -1);

	/* the labels check-metrics and the scraper get */
	starling_lset_init(&ls);
	p = starling_expo_parser_new(OM, U);
	starling_expo_reset(p, om1, sizeof(om1) - 1);
	while ((rc = starling_expo_next(p, &ev)) > 0 && rc != STARLING_EXPO_SAMPLE)
		;
	CU_ASSERT_EQUAL_FATAL(rc, STARLING_EXPO_SAMPLE);
	CU_ASSERT_EQUAL(ev.line, 3);
	CU_ASSERT_EQUAL(starling_expo_series_labels_flags(ev.series, ev.series_len, U, &ls, NULL),
			0);
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&ls, "__name__"), "my.metric");
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&ls, "utf-8.label"), "v");
	starling_expo_parser_free(p);
	starling_lset_free(&ls);
}

/* NUL bytes: the inputs of Prometheus' TestPromNullByteHandling
 * (model/textparse/promparse_test.go) and TestOMNullByteHandling
 * (openmetricsparse_test.go), through the scraper's (lenient) parser.
 * Where Prometheus accepts the page (a NUL inside a quoted label value) so
 * do we: next() yields the sample and the label parser answers -EILSEQ
 * (valid; the scraper then parses it with expo_series_labels_nul_ff()
 * and keeps the exact bytes); where Prometheus fails the page (a NUL outside
 * a quoted value) so do we. A Prometheus-text page gets the final newline
 * the scraper appends when it is missing. */
static void test_nul_bytes_upstream(void)
{
	static const struct {
		const char *doc;
		size_t len;
		enum starling_expo_format fmt;
		bool accepted;
	} c[] = {
#define NB(lit, fmt, ok) {lit, sizeof(lit) - 1, fmt, ok}
	    NB("null_byte_metric{a=\"abc\0\"} 1", PROM, true),
	    NB("a{b=\"\0ss\"} 1\n", PROM, true),
	    NB("a{b=\"\0\"} 1\n", PROM, true),
	    NB("a{b=\0\"ssss\"} 1\n", PROM, false),
	    NB("a{b=\"\0", PROM, false),
	    NB("a{b\0=\"hiih\"}\t1", PROM, false),
	    NB("a\0{b=\"ddd\"} 1", PROM, false),
	    NB("a 0 1\0", PROM, false),
	    NB("null_byte_metric{a=\"abc\0\"} 1\n# EOF\n", OM, true),
	    NB("a{b=\"\0ss\"} 1\n# EOF\n", OM, true),
	    NB("a{b=\"\0\"} 1\n# EOF\n", OM, true),
	    NB("a{b=\"\0\"} 1\n# EOF", OM, true),
	    NB("a{b=\0\"ssss\"} 1\n# EOF\n", OM, false),
	    NB("a{b=\"\0", OM, false),
	    NB("a{b\0=\"hiih\"}\t1", OM, false),
	    NB("a\0{b=\"ddd\"} 1", OM, false),
#undef NB
	};
	struct starling_lset ls;

	starling_lset_init(&ls);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct starling_expo_parser *p = starling_expo_parser_new(c[i].fmt, 0);
		struct starling_expo_event ev;
		char doc[64];
		size_t len = c[i].len;
		int rc, samples = 0, nul = 0;

		memcpy(doc, c[i].doc, len);
		if (c[i].fmt == PROM && doc[len - 1] != '\n')
			doc[len++] = '\n';
		starling_expo_reset(p, doc, len);
		while ((rc = starling_expo_next(p, &ev)) > 0) {
			int lrc;

			if (rc != STARLING_EXPO_SAMPLE)
				continue;
			lrc = starling_expo_series_labels(ev.series, ev.series_len, c[i].fmt, &ls,
							  NULL);
			if (lrc == -EILSEQ)
				nul++;
			else if (lrc) {
				rc = -1;
				break;
			}
			samples++;
		}
		if ((rc == 0) != c[i].accepted || (c[i].accepted && (samples != 1 || nul != 1)))
			fprintf(stderr, "\n  NUL case %zu: rc=%d samples=%d nul=%d, want %s", i, rc,
				samples, nul, c[i].accepted ? "accepted" : "refused");
		CU_ASSERT_EQUAL(rc == 0, c[i].accepted);
		if (c[i].accepted) {
			CU_ASSERT_EQUAL(samples, 1);
			CU_ASSERT_EQUAL(nul, 1);
		}
		starling_expo_parser_free(p);
	}
	starling_lset_free(&ls);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("expo", NULL, NULL);
	CU_add_test(s, "prometheus text events", test_prom_events);
	CU_add_test(s, "prometheus histogram and summary", test_prom_histogram_summary);
	CU_add_test(s, "prometheus bad inputs with line:col", test_prom_bad);
	CU_add_test(s, "prometheus edge cases", test_prom_good_edge);
	CU_add_test(s, "prometheus fast path equals checking path", test_prom_fast_vs_strict);
	CU_add_test(s, "series text to labels", test_series_labels);
	CU_add_test(s, "number parsing is exact", test_numbers);
	CU_add_test(s, "content type, Accept header, detection", test_content_type);
	CU_add_test(s, "unescape", test_unescape);
	CU_add_test(s, "openmetrics events", test_om_events);
	CU_add_test(s, "openmetrics strict suite", test_om_suite);
	CU_add_test(s, "openmetrics exemplar length", test_om_exemplar_length);
	CU_add_test(s, "openmetrics lenient", test_om_lenient);
	CU_add_test(s, "openmetrics error positions", test_om_positions);
	CU_add_test(s, "utf-8 names in strict mode", test_utf8_names_strict);
	CU_add_test(s, "NUL bytes: Prometheus' own cases", test_nul_bytes_upstream);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
