/* Native histogram helpers (see starling/histogram.h). */
#include <starling/histogram.h>

#include <errno.h>
#include <math.h>

size_t starling_histogram_buckets(const struct starling_histogram *h)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_positive_spans; i++)
		n += h->positive_spans[i].length;
	for (size_t i = 0; i < h->n_negative_spans; i++)
		n += h->negative_spans[i].length;
	return n;
}

/* One side: walk the buckets by absolute index, merge, rewrite in place.
 * The output never has more spans or buckets than the input read so far,
 * so writing behind the reader is safe. */
static void reduce_side(struct starling_bucket_span *spans, size_t *n_spans, int64_t *deltas,
			double *counts, size_t *n_vals, int shift)
{
	size_t si, vi = 0, so = 0, vo = 0, n_in_spans = *n_spans;
	int64_t in_prev = 0, out_prev = 0, acc_i = 0;
	double acc_f = 0;
	int32_t idx = 0, cur = 0;
	bool have = false;

	for (si = 0; si < n_in_spans; si++) {
		uint32_t len = spans[si].length;

		idx += spans[si].offset;
		for (uint32_t k = 0; k < len; k++, idx++, vi++) {
			int32_t nidx = ((idx - 1) >> shift) + 1;
			int64_t ci = 0;
			double cf = 0;

			if (deltas) {
				in_prev += deltas[vi];
				ci = in_prev;
			} else {
				cf = counts[vi];
			}
			if (have && nidx == cur) {
				acc_i += ci;
				acc_f += cf;
				continue;
			}
			if (have) { /* flush the bucket at `cur` */
				if (deltas) {
					deltas[vo] = acc_i - out_prev;
					out_prev = acc_i;
				} else {
					counts[vo] = acc_f;
				}
				vo++;
			}
			/* place nidx: extend the last span or open a new one */
			if (have && nidx == cur + 1) {
				spans[so - 1].length++;
			} else {
				int32_t prev_end = have ? cur + 1 : 0;

				spans[so].offset = nidx - prev_end;
				spans[so].length = 1;
				so++;
			}
			cur = nidx;
			have = true;
			acc_i = ci;
			acc_f = cf;
		}
	}
	if (have) {
		if (deltas)
			deltas[vo] = acc_i - out_prev;
		else
			counts[vo] = acc_f;
		vo++;
	}
	*n_spans = so;
	*n_vals = vo;
}

int starling_histogram_reduce(struct starling_histogram *h, int32_t target)
{
	int shift;

	if (target < STARLING_HISTOGRAM_SCHEMA_MIN || target >= h->schema)
		return -EINVAL;
	shift = h->schema - target;
	reduce_side((struct starling_bucket_span *)h->positive_spans, &h->n_positive_spans,
		    h->is_float ? NULL : (int64_t *)h->positive_deltas,
		    h->is_float ? (double *)h->positive_counts : NULL, &h->n_positive, shift);
	reduce_side((struct starling_bucket_span *)h->negative_spans, &h->n_negative_spans,
		    h->is_float ? NULL : (int64_t *)h->negative_deltas,
		    h->is_float ? (double *)h->negative_counts : NULL, &h->n_negative, shift);
	h->schema = target;
	return 0;
}

int32_t starling_histogram_schema_for_factor(double factor)
{
	double s;

	if (!(factor > 1))
		factor = 1.00271;
	s = floor(-log2(log2(factor)));
	if (s > STARLING_HISTOGRAM_SCHEMA_MAX)
		return STARLING_HISTOGRAM_SCHEMA_MAX;
	if (s < STARLING_HISTOGRAM_SCHEMA_MIN)
		return STARLING_HISTOGRAM_SCHEMA_MIN;
	return (int32_t)s;
}
