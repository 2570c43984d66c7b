/* Remote-write encoder: hand-encoded bytes decoded back with protobuf-c. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snappy-c.h>

#include <starling/remote_write.h>
#include "prompb.pb-c.h"

static uint64_t bits_of(double d)
{
	uint64_t b;

	memcpy(&b, &d, 8);
	return b;
}

static double stale_nan(void)
{
	uint64_t b = STARLING_STALE_NAN_BITS;
	double d;

	memcpy(&d, &b, 8);
	return d;
}

static void test_roundtrip(void)
{
	struct starling_label l1[] = {{"__name__", "http_requests_total"},
				      {"empty", ""},
				      {"job", "api"},
				      {"path", "/v1/\xc3\xa9t\xc3\xa9"}};
	struct starling_label l2[] = {{"__name__", "up"}, {"instance", "a:9100"}};
	double v1[] = {1.5, stale_nan(), -0.0, 1e300};
	int64_t t1[] = {1700000000000LL, 1700000001000LL, -5, 0};
	double v2[] = {1};
	int64_t t2[] = {42};
	struct starling_metadata md = {"http_requests_total", STARLING_METRIC_COUNTER, "Requests.",
				       "requests"};
	struct starling_rw_buf lb1 = {0}, lb2 = {0}, req = {0}, z = {0}, back = {0};
	Prometheus__WriteRequest *wr;

	CU_ASSERT_EQUAL(starling_rw_encode_labels(&lb1, l1, 4), 0);
	CU_ASSERT_EQUAL(starling_rw_encode_labels(&lb2, l2, 2), 0);
	CU_ASSERT_EQUAL(starling_rw_append_series(&req, lb1.data, lb1.len, v1, t1, 4), 0);
	CU_ASSERT_EQUAL(req.len, starling_rw_series_size(lb1.len, t1, 4));
	CU_ASSERT_EQUAL(starling_rw_append_series(&req, lb2.data, lb2.len, v2, t2, 1), 0);
	CU_ASSERT_EQUAL(starling_rw_append_metadata(&req, &md), 0);

	CU_ASSERT_EQUAL(starling_rw_snappy(req.data, req.len, &z), 0);
	CU_ASSERT_EQUAL(starling_rw_unsnappy(z.data, z.len, 0, &back), 0);
	CU_ASSERT_EQUAL_FATAL(back.len, req.len);
	CU_ASSERT_EQUAL(memcmp(back.data, req.data, req.len), 0);

	wr = prometheus__write_request__unpack(NULL, back.len, back.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(wr);
	CU_ASSERT_EQUAL_FATAL(wr->n_timeseries, 2);
	CU_ASSERT_EQUAL_FATAL(wr->timeseries[0]->n_labels, 3); /* empty value dropped */
	CU_ASSERT_STRING_EQUAL(wr->timeseries[0]->labels[0]->name, "__name__");
	CU_ASSERT_STRING_EQUAL(wr->timeseries[0]->labels[0]->value, "http_requests_total");
	CU_ASSERT_STRING_EQUAL(wr->timeseries[0]->labels[1]->name, "job");
	CU_ASSERT_STRING_EQUAL(wr->timeseries[0]->labels[2]->value, "/v1/\xc3\xa9t\xc3\xa9");
	CU_ASSERT_EQUAL_FATAL(wr->timeseries[0]->n_samples, 4);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(bits_of(wr->timeseries[0]->samples[i]->value), bits_of(v1[i]));
		CU_ASSERT_EQUAL(wr->timeseries[0]->samples[i]->timestamp, t1[i]);
	}
	/* the staleness marker's exact bit pattern survives */
	CU_ASSERT_EQUAL(bits_of(wr->timeseries[0]->samples[1]->value), STARLING_STALE_NAN_BITS);
	CU_ASSERT_EQUAL(wr->timeseries[1]->samples[0]->timestamp, 42);
	CU_ASSERT_EQUAL_FATAL(wr->n_metadata, 1);
	CU_ASSERT_EQUAL(wr->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
	CU_ASSERT_STRING_EQUAL(wr->metadata[0]->metric_family_name, "http_requests_total");
	CU_ASSERT_STRING_EQUAL(wr->metadata[0]->help, "Requests.");
	CU_ASSERT_STRING_EQUAL(wr->metadata[0]->unit, "requests");
	prometheus__write_request__free_unpacked(wr, NULL);

	starling_rw_buf_free(&lb1);
	starling_rw_buf_free(&lb2);
	starling_rw_buf_free(&req);
	starling_rw_buf_free(&z);
	starling_rw_buf_free(&back);
}

/* With non-default values protobuf-c emits exactly the same bytes. */
static void test_same_bytes_as_protobuf_c(void)
{
	Prometheus__Label la = PROMETHEUS__LABEL__INIT, lb = PROMETHEUS__LABEL__INIT;
	Prometheus__Label *lab[] = {&la, &lb};
	Prometheus__Sample s = PROMETHEUS__SAMPLE__INIT;
	Prometheus__Sample *sam[] = {&s};
	Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
	Prometheus__TimeSeries *tss[] = {&ts};
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	struct starling_label l[] = {{"__name__", "x"}, {"a", "b"}};
	double v = 3.25;
	int64_t t = 1700000000123LL;
	struct starling_rw_buf lbuf = {0}, req = {0};
	uint8_t *ref;
	size_t n;

	la.name = "__name__";
	la.value = "x";
	lb.name = "a";
	lb.value = "b";
	s.value = v;
	s.timestamp = t;
	ts.labels = lab;
	ts.n_labels = 2;
	ts.samples = sam;
	ts.n_samples = 1;
	wr.timeseries = tss;
	wr.n_timeseries = 1;
	n = prometheus__write_request__get_packed_size(&wr);
	ref = malloc(n);
	prometheus__write_request__pack(&wr, ref);
	starling_rw_encode_labels(&lbuf, l, 2);
	starling_rw_append_series(&req, lbuf.data, lbuf.len, &v, &t, 1);
	CU_ASSERT_EQUAL_FATAL(req.len, n);
	CU_ASSERT_EQUAL(memcmp(req.data, ref, n), 0);
	free(ref);
	starling_rw_buf_free(&lbuf);
	starling_rw_buf_free(&req);
}

/* Label encoding (sdk/lib/remote_write.c copies a label under 128 bytes in
 * one pass and measures longer ones first): the same bytes as protobuf-c's
 * TimeSeries.labels for names and values of every length around the 128-byte
 * one-byte-length edge, a label with an empty value left out (Prometheus'
 * remote write drops empty labels), also through value_lens and a buffer
 * that must grow mid-label. */
static void test_label_lengths(void)
{
	static const size_t lens[] = {0,   1,	2,   60,  119, 120, 121, 122, 123,
				      124, 125, 126, 127, 128, 129, 200, 300};
	enum { NL = sizeof(lens) / sizeof(lens[0]) };
	char big[301];

	memset(big, 'v', 300);
	big[300] = 0;
	for (size_t a = 1; a < NL; a++) {
		for (size_t b = 0; b < NL; b++) {
			char name[301], value[301];
			Prometheus__Label la = PROMETHEUS__LABEL__INIT,
					  lx = PROMETHEUS__LABEL__INIT;
			Prometheus__Label *lab[2] = {&la, &lx};
			Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
			struct starling_label l[2];
			size_t vlens[2], n;
			struct starling_rw_buf out = {0}, out2 = {0};
			uint8_t ref[2048];

			memcpy(name, big, lens[a]);
			name[lens[a]] = 0;
			memcpy(value, big, lens[b]);
			value[lens[b]] = 0;
			l[0] = (struct starling_label){name, value};
			l[1] = (struct starling_label){"z", "last"};
			la.name = name;
			la.value = value;
			lx.name = "z";
			lx.value = "last";
			ts.labels = lens[b] ? lab : lab + 1;
			ts.n_labels = lens[b] ? 2 : 1;
			n = prometheus__time_series__pack(&ts, ref);
			/* start near the end of a small buffer: it grows mid-way */
			out.data = malloc(64);
			out.cap = 64;
			out.len = 50;
			memset(out.data, 0, 50);
			CU_ASSERT_EQUAL(starling_rw_encode_labels(&out, l, 2), 0);
			CU_ASSERT_EQUAL(out.len - 50, n);
			CU_ASSERT(out.len - 50 == n && !memcmp(out.data + 50, ref, n));
			vlens[0] = lens[b];
			vlens[1] = 4;
			CU_ASSERT_EQUAL(starling_rw_encode_labels_n(&out2, l, vlens, 2), 0);
			CU_ASSERT(out2.len == n && !memcmp(out2.data, ref, n));
			starling_rw_buf_free(&out);
			starling_rw_buf_free(&out2);
		}
	}
}

/* Two-step reference: labels blob, then the series entry around it. */
static int two_step(struct starling_rw_buf *out, const struct starling_label *l,
		    const size_t *vlens, size_t n, const double *v, const int64_t *ts, size_t ns)
{
	struct starling_rw_buf lb = {0};
	int r = starling_rw_encode_labels_n(&lb, l, vlens, n);

	if (!r)
		r = starling_rw_append_series(out, lb.data, lb.len, v, ts, ns);
	starling_rw_buf_free(&lb);
	return r;
}

/* starling_rw_append_series_labels (labels encoded in place, lengths from
 * label_lens, value_lens or strlen) writes the bytes of encode + append:
 * name and value lengths around the one-byte message limit (128), empty
 * and NULL values (skipped), a value with a NUL byte (value_lens), more
 * labels than it keeps on the stack, several samples, an empty name. */
static void test_series_labels_same_bytes(void)
{
	static const size_t lens[] = {0, 1, 3, 7, 8, 16, 17, 60, 120, 123, 124, 125, 200};
	enum { NL = sizeof(lens) / sizeof(lens[0]), MANY = 40 };
	char big[201], names[MANY][8];
	double v[3] = {1.5, -2, 1e300};
	int64_t ts[3] = {1, 1700000000000, 127};

	memset(big, 'x', 200);
	big[200] = 0;
	for (size_t a = 1; a < NL; a++) {
		for (size_t b = 0; b < NL; b++) {
			char name[201], value[201];
			struct starling_label l[3];
			uint32_t ll[6];
			struct starling_rw_buf ref = {0}, got = {0};

			memcpy(name, big, lens[a]);
			name[lens[a]] = 0;
			memcpy(value, big, lens[b]);
			value[lens[b]] = 0;
			l[0] = (struct starling_label){"__name__", "m"};
			l[1] = (struct starling_label){name, value};
			l[2] = (struct starling_label){"z", b % 2 ? NULL : "last"};
			for (size_t i = 0; i < 3; i++) {
				ll[2 * i] = (uint32_t)strlen(l[i].name);
				ll[2 * i + 1] = l[i].value ? (uint32_t)strlen(l[i].value) : 0;
			}
			for (size_t ns = 1; ns <= 3; ns += 2) {
				CU_ASSERT_EQUAL(two_step(&ref, l, NULL, 3, v, ts, ns), 0);
				CU_ASSERT_EQUAL(starling_rw_append_series_labels(
						    &got, l, NULL, NULL, 3, v, ts, ns),
						0);
				CU_ASSERT(got.len == ref.len &&
					  !memcmp(got.data, ref.data, ref.len));
				CU_ASSERT_EQUAL(starling_rw_append_series_labels(&got, l, ll, NULL,
										 3, v, ts, ns),
						0);
				CU_ASSERT(got.len == 2 * ref.len &&
					  !memcmp(got.data + ref.len, ref.data, ref.len));
				ref.len = got.len = 0;
			}
			starling_rw_buf_free(&ref);
			starling_rw_buf_free(&got);
		}
	}
	{
		/* value_lens wins over label_lens: a NUL byte sent as is */
		static const struct starling_label l[] = {{"__name__", "m"}, {"a", "ab\0c"}};
		static const size_t vl[] = {1, 4};
		static const uint32_t ll[] = {8, 1, 1, 2};
		struct starling_rw_buf ref = {0}, got = {0};

		CU_ASSERT_EQUAL(two_step(&ref, l, vl, 2, v, ts, 1), 0);
		CU_ASSERT_EQUAL(starling_rw_append_series_labels(&got, l, ll, vl, 2, v, ts, 1), 0);
		CU_ASSERT(got.len == ref.len && !memcmp(got.data, ref.data, ref.len));
		CU_ASSERT_PTR_NOT_NULL(memmem(got.data, got.len, "ab\0c", 4));
		starling_rw_buf_free(&ref);
		starling_rw_buf_free(&got);
	}
	{
		/* more labels than kept on the stack, with and without lengths */
		struct starling_label l[MANY];
		uint32_t ll[2 * MANY];
		struct starling_rw_buf ref = {0}, got = {0};

		for (int i = 0; i < MANY; i++) {
			snprintf(names[i], sizeof(names[i]), "l%02d", i);
			l[i] = (struct starling_label){names[i], i % 3 ? names[i] : ""};
			ll[2 * i] = 3;
			ll[2 * i + 1] = i % 3 ? 3 : 0;
		}
		CU_ASSERT_EQUAL(two_step(&ref, l, NULL, MANY, v, ts, 2), 0);
		CU_ASSERT_EQUAL(
		    starling_rw_append_series_labels(&got, l, NULL, NULL, MANY, v, ts, 2), 0);
		CU_ASSERT_EQUAL(starling_rw_append_series_labels(&got, l, ll, NULL, MANY, v, ts, 2),
				0);
		CU_ASSERT(got.len == 2 * ref.len && !memcmp(got.data, ref.data, ref.len) &&
			  !memcmp(got.data + ref.len, ref.data, ref.len));
		starling_rw_buf_free(&ref);
		starling_rw_buf_free(&got);
	}
	{
		/* an empty name: -EINVAL, nothing appended */
		static const struct starling_label l[] = {{"__name__", "m"}, {"", "v"}};
		struct starling_rw_buf got = {0};

		CU_ASSERT_EQUAL(starling_rw_append_series_labels(&got, l, NULL, NULL, 2, v, ts, 1),
				-EINVAL);
		CU_ASSERT_EQUAL(got.len, 0);
		starling_rw_buf_free(&got);
	}
}

/* A block built fragment by fragment is the block snappy builds from the
 * whole input, byte for byte, and decodes to the input: sizes around the
 * fragment size, compressible and incompressible data, and empty input. */
static void test_snappy_fragments(void)
{
	static const size_t sizes[] = {0, 1, 100, 65535, 65536, 65537, 131072, 200000, 1000000};
	size_t max = 1000000;
	uint8_t *in = malloc(max);
	uint32_t x = 12345;

	CU_ASSERT_FATAL(in != NULL);
	for (size_t i = 0; i < max; i++) {
		x = x * 1103515245u + 12345u;
		/* runs of text-like bytes with some noise */
		in[i] = (i / 700) % 3 ? (uint8_t)("series_total{job=\"a\"} "[i % 22])
				      : (uint8_t)(x >> 24);
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct starling_rw_buf whole = {0}, frag = {0}, back = {0};
		size_t n = sizes[k], len;
		uint8_t *data = NULL;

		CU_ASSERT_EQUAL(starling_rw_snappy(in, n, &whole), 0);
		for (size_t off = 0; off < n; off += STARLING_RW_SNAPPY_BLOCK) {
			size_t m =
			    n - off < STARLING_RW_SNAPPY_BLOCK ? n - off : STARLING_RW_SNAPPY_BLOCK;

			CU_ASSERT_EQUAL(starling_rw_snappy_fragment(in + off, m, &frag), 0);
		}
		len = starling_rw_snappy_finish(&frag, n, &data);
		CU_ASSERT_EQUAL_FATAL(len, whole.len);
		CU_ASSERT_EQUAL(memcmp(data, whole.data, len), 0);
		CU_ASSERT_EQUAL(starling_rw_unsnappy(data, len, 0, &back), 0);
		CU_ASSERT_EQUAL_FATAL(back.len, n);
		CU_ASSERT(n == 0 || memcmp(back.data, in, n) == 0);
		starling_rw_buf_free(&whole);
		starling_rw_buf_free(&frag);
		starling_rw_buf_free(&back);
	}
	free(in);
}

/* Buffers sized to what they hold (issue 12): a request body fits its
 * payload within 1/16 and is reallocated only when it is smaller or over a
 * quarter larger; the block buffer a batch is compressed into settles at
 * 1.25x what it needs, not the next power of two. */
static void test_buffer_sizes(void)
{
	struct starling_rw_buf b = {0}, frag = {0};
	uint8_t *in = calloc(1, 5 * STARLING_RW_SNAPPY_BLOCK), *data;
	size_t cap;

	CU_ASSERT_FATAL(in != NULL);
	CU_ASSERT_EQUAL(starling_rw_buf_fit(&b, 150000), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT(b.cap >= 150000 && b.cap <= 150000 + 150000 / 16 + 64);
	cap = b.cap;
	b.len = 7;
	CU_ASSERT_EQUAL(starling_rw_buf_fit(&b, 140000), 0); /* within a quarter: kept */
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(b.cap, cap);
	CU_ASSERT_EQUAL(starling_rw_buf_fit(&b, 100000), 0); /* much smaller: refitted */
	CU_ASSERT(b.cap >= 100000 && b.cap <= 100000 + 100000 / 16 + 64);
	CU_ASSERT_EQUAL(starling_rw_buf_fit(&b, 200000), 0); /* larger: grown */
	CU_ASSERT(b.cap >= 200000 && b.cap <= 200000 + 200000 / 16 + 64);
	memset(b.data, 1, 200000);
	starling_rw_buf_free(&b);
	/* five 64 KiB zero fragments, twice: the buffer does not grow again */
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 5; k++)
			CU_ASSERT_EQUAL(
			    starling_rw_snappy_fragment(in + k * STARLING_RW_SNAPPY_BLOCK,
							STARLING_RW_SNAPPY_BLOCK, &frag),
			    0);
		CU_ASSERT(starling_rw_snappy_finish(&frag, 5 * STARLING_RW_SNAPPY_BLOCK, &data) >
			  0);
		if (round == 0)
			cap = frag.cap;
		CU_ASSERT_EQUAL(frag.cap, cap);
		/* the last fragment's worst case plus a quarter at most */
		CU_ASSERT(frag.cap <=
			  (frag.len + snappy_max_compressed_length(STARLING_RW_SNAPPY_BLOCK)) * 5 /
			      4);
		frag.len = 0;
	}
	starling_rw_buf_free(&frag);
	free(in);
}

static void test_bad_input(void)
{
	struct starling_rw_buf out = {0};
	struct starling_label bad[] = {{"", "v"}};
	struct starling_metadata md = {NULL, 0, NULL, NULL};
	uint8_t big[64];

	CU_ASSERT_EQUAL(
	    starling_rw_unsnappy((const uint8_t *)"\xff\xff\xff\xff\xff\xff", 6, 0, &out),
	    -EBADMSG);
	CU_ASSERT_EQUAL(starling_rw_encode_labels(&out, bad, 1), -EINVAL);
	CU_ASSERT_EQUAL(starling_rw_append_metadata(&out, &md), -EINVAL);
	memset(big, 'a', sizeof(big));
	starling_rw_snappy(big, sizeof(big), &out);
	{
		struct starling_rw_buf o2 = {0};

		CU_ASSERT_EQUAL(starling_rw_unsnappy(out.data, out.len, 10, &o2), -EFBIG);
		starling_rw_buf_free(&o2);
	}
	starling_rw_buf_free(&out);
}

/* Not a pass/fail figure: prints the encoder's cost per sample. */
static void test_speed(void)
{
	struct starling_label l[] = {{"__name__", "node_cpu_seconds_total"},
				     {"cpu", "3"},
				     {"instance", "10.0.0.5:9100"},
				     {"job", "node"},
				     {"mode", "idle"}};
	struct starling_rw_buf lbuf = {0}, req = {0}, z = {0};
	struct timespec a, b;
	double v = 12345.67, secs;
	int64_t t = 1700000000000LL;
	const int n = 2000000;

	starling_rw_encode_labels(&lbuf, l, 5);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		if (req.len > (1u << 20)) {
			starling_rw_snappy(req.data, req.len, &z);
			req.len = 0;
		}
		v += 1;
		starling_rw_append_series(&req, lbuf.data, lbuf.len, &v, &t, 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("\n    encode+snappy: %.1f ns/sample (%d samples)\n", secs * 1e9 / n, n);
	CU_ASSERT_TRUE(secs < 20);
	starling_rw_buf_free(&lbuf);
	starling_rw_buf_free(&req);
	starling_rw_buf_free(&z);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("remote_write", NULL, NULL);
	CU_add_test(s, "roundtrip_protobuf_c_snappy_stale", test_roundtrip);
	CU_add_test(s, "same_bytes_as_protobuf_c", test_same_bytes_as_protobuf_c);
	CU_add_test(s, "label_lengths", test_label_lengths);
	CU_add_test(s, "series_labels_same_bytes", test_series_labels_same_bytes);
	CU_add_test(s, "bad_input", test_bad_input);
	CU_add_test(s, "snappy_fragments_same_block", test_snappy_fragments);
	CU_add_test(s, "buffer_sizes", test_buffer_sizes);
	CU_add_test(s, "speed", test_speed);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
