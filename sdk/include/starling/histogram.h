/*
 * Native histogram helpers (static SDK library): bucket counting,
 * resolution reduction and the schema a minimum bucket factor allows, as
 * Prometheus applies native_histogram_bucket_limit and
 * native_histogram_min_bucket_factor on ingest (scrape/target.go,
 * model/histogram/generic.go; see native-histograms.md section 4).
 */
#ifndef STARLING_HISTOGRAM_H
#define STARLING_HISTOGRAM_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STARLING_HISTOGRAM_SCHEMA_MIN (-4)
#define STARLING_HISTOGRAM_SCHEMA_MAX 8

/* Buckets in both spans (= n_positive + n_negative of a valid histogram). */
size_t starling_histogram_buckets(const struct starling_histogram *h);

/* Merge buckets down to schema `target` (< h->schema, >= -4): bucket i
 * goes to ((i - 1) >> (schema - target)) + 1 and counts are summed; spans,
 * deltas (integer histograms) or counts (float ones) are rewritten IN
 * PLACE, so the span and value arrays h points to must be writable (cast
 * away const: the caller owns them). Returns 0 or -EINVAL (target out of
 * range or not below the schema). */
int starling_histogram_reduce(struct starling_histogram *h, int32_t target);

/* The largest schema whose bucket growth factor is at least `factor`
 * (Prometheus pickSchema: factor <= 1 means 1.00271, i.e. schema 8),
 * clamped to -4..8. */
int32_t starling_histogram_schema_for_factor(double factor);

#ifdef __cplusplus
}
#endif
#endif
