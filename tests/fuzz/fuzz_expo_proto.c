/* libFuzzer target: the protobuf exposition decoder (sdk/lib/expo_proto.c)
 * with native and classic histograms on, every series text and exemplar
 * label set parsed as the scraper would, and a bucket reduction of every
 * native histogram (on a copy) as native_histogram_bucket_limit would do.
 * Seeds: tests/fuzz/corpus-expo-proto (a client_golang 1.14 body). */
#include <starling/expo.h>
#include <starling/histogram.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *dup_bytes(const void *src, size_t n)
{
	void *d = malloc(n + 1);

	if (d && n)
		memcpy(d, src, n);
	return d;
}

static void reduce_copy(const struct starling_histogram *h)
{
	struct starling_histogram c = *h;
	size_t vs = h->is_float ? sizeof(double) : sizeof(int64_t);
	void *ps = dup_bytes(h->positive_spans, h->n_positive_spans * sizeof(*h->positive_spans));
	void *ns = dup_bytes(h->negative_spans, h->n_negative_spans * sizeof(*h->negative_spans));
	void *pv = dup_bytes(h->is_float ? (const void *)h->positive_counts
					 : (const void *)h->positive_deltas,
			     h->n_positive * vs);
	void *nv = dup_bytes(h->is_float ? (const void *)h->negative_counts
					 : (const void *)h->negative_deltas,
			     h->n_negative * vs);

	if (ps && ns && pv && nv) {
		c.positive_spans = ps;
		c.negative_spans = ns;
		c.positive_deltas = pv;
		c.positive_counts = pv;
		c.negative_deltas = nv;
		c.negative_counts = nv;
		while (c.schema > STARLING_HISTOGRAM_SCHEMA_MIN &&
		       starling_histogram_buckets(&c) > 2)
			starling_histogram_reduce(&c, c.schema - 1);
	}
	free(ps);
	free(ns);
	free(pv);
	free(nv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct starling_expo_parser *p;
	struct starling_expo_event ev;
	struct starling_lset ls;
	int rc;

	unsigned flags = STARLING_EXPO_NATIVE_HISTOGRAMS | STARLING_EXPO_CLASSIC_HISTOGRAMS;

	/* inputs whose length is odd also take UTF-8 names */
	if (size & 1)
		flags |= STARLING_EXPO_UTF8_NAMES;
	if (!p)
		p = starling_expo_parser_new(STARLING_EXPO_PROTOBUF, flags);
	starling_expo_set_format(p, STARLING_EXPO_PROTOBUF, flags);
	starling_lset_init(&ls);
	starling_expo_reset(p, (const char *)data, size);
	while ((rc = starling_expo_next(p, &ev)) > 0) {
		if (rc == STARLING_EXPO_SAMPLE || rc == STARLING_EXPO_HISTOGRAM)
			starling_expo_series_labels_flags(ev.series, ev.series_len, flags, &ls,
							  NULL);
		for (size_t i = 0; i < ev.n_exemplars; i++)
			starling_expo_exemplar_labels(ev.exemplars[i].labels,
						      ev.exemplars[i].labels_len, &ls, NULL);
		if (rc == STARLING_EXPO_HISTOGRAM)
			reduce_copy(ev.histogram);
	}
	starling_lset_free(&ls);
	return 0;
}
