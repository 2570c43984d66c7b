/*
 * Prometheus Remote Write 1.0 encoder (static SDK library).
 *
 * Hand-encodes the protobuf wire bytes of prometheus.WriteRequest so that the
 * hot path allocates nothing per sample: a sink encodes a series' labels once
 * (starling_rw_encode_labels), caches the blob keyed by starling_series.hash,
 * and then appends samples as "cached bytes + value + timestamp"
 * (starling_rw_append_series). The body is then compressed with the snappy
 * block format (starling_rw_snappy) and POSTed with the STARLING_RW_* headers.
 *
 * Buffers are owned by the caller (struct starling_rw_buf, grown with
 * realloc). No function keeps state: all are thread-safe on distinct buffers.
 * All return 0 or a negative errno. Since ABI 1.0.
 */
#ifndef STARLING_REMOTE_WRITE_H
#define STARLING_REMOTE_WRITE_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The request headers Remote Write 1.0 requires (users cannot override
 * them; User-Agent is set separately). */
#define STARLING_RW_CONTENT_TYPE     "Content-Type: application/x-protobuf"
#define STARLING_RW_CONTENT_ENCODING "Content-Encoding: snappy"
#define STARLING_RW_VERSION_HEADER   "X-Prometheus-Remote-Write-Version: 0.1.0"

/* A growable byte buffer. Zero-initialise; free with starling_rw_buf_free. */
struct starling_rw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Make room for `extra` more bytes. */
int starling_rw_buf_reserve(struct starling_rw_buf *b, size_t extra);
/* Empty b and give it room for n bytes, within n + n/16 (+ 64): a buffer
 * sized to one payload at a time (a remote-write request body), not
 * doubled like starling_rw_buf_reserve's (issue 12: ~1/4 of such a
 * buffer was unused on average). Reallocates only when b is smaller, or
 * over a quarter larger. */
int starling_rw_buf_fit(struct starling_rw_buf *b, size_t n);
void starling_rw_buf_free(struct starling_rw_buf *b);

/* Append the `labels` fields of a TimeSeries (each: tag 0x0a, length, Label
 * message) for the given label set, in the order given (callers pass them
 * sorted by name). Labels with an empty value are skipped (an empty value
 * means "absent" in Prometheus). -EINVAL for an empty name. */
int starling_rw_encode_labels(struct starling_rw_buf *out, const struct starling_label *labels,
			      size_t n);
/* The same with the values' byte lengths (value_lens NULL: strlen), for
 * values that hold NUL bytes (struct starling_series_ext.label_value_lens):
 * the bytes are sent exactly. */
int starling_rw_encode_labels_n(struct starling_rw_buf *out, const struct starling_label *labels,
				const size_t *value_lens, size_t n);

/* Append one WriteRequest.timeseries entry with float samples only, its
 * labels encoded in place: the same bytes as starling_rw_encode_labels_n()
 * into a blob and starling_rw_append_series() of it, without the blob.
 * label_lens: NULL (strlen) or the byte lengths of name i at [2i] and of
 * value i at [2i + 1] (struct starling_series_ext.label_lens); value_lens
 * (NULL or one per label) wins over label_lens for the values. -EINVAL for
 * an empty name (nothing appended then). */
int starling_rw_append_series_labels(struct starling_rw_buf *req,
				     const struct starling_label *labels,
				     const uint32_t *label_lens, const size_t *value_lens,
				     size_t n_labels, const double *values,
				     const int64_t *timestamps_ms, size_t n);

/* Append one WriteRequest.timeseries entry: the pre-encoded labels blob (from
 * starling_rw_encode_labels) plus n samples. Values are copied bit for bit,
 * so the staleness marker survives. */
int starling_rw_append_series(struct starling_rw_buf *req, const uint8_t *labels, size_t labels_len,
			      const double *values, const int64_t *timestamps_ms, size_t n);

/* As starling_rw_append_series, plus the series' exemplars
 * (TimeSeries.exemplars, each with its timestamp) and native histograms
 * (TimeSeries.histograms, remote write 1.0's Histogram: integer ones with
 * count_int/zero_count_int/deltas, float ones with count_float/
 * zero_count_float/counts, the oneof members always written). Labels with
 * an empty value are skipped. Since ABI 1.1. */
int starling_rw_append_series_ext(struct starling_rw_buf *req, const uint8_t *labels,
				  size_t labels_len, const double *values,
				  const int64_t *timestamps_ms, size_t n,
				  const struct starling_exemplar *ex, size_t n_ex,
				  const struct starling_histogram *h, size_t n_h);
size_t starling_rw_series_ext_size(size_t labels_len, const int64_t *timestamps_ms, size_t n,
				   const struct starling_exemplar *ex, size_t n_ex,
				   const struct starling_histogram *h, size_t n_h);

/* A snappy block built piece by piece, so that a large request never sits
 * uncompressed in memory: snappy compresses its input in independent
 * 64 KiB fragments, so compressing each full STARLING_RW_SNAPPY_BLOCK of
 * the input in turn (starling_rw_snappy_fragment, the last one shorter)
 * and prefixing the block's length (starling_rw_snappy_finish) gives the
 * bytes starling_rw_snappy gives for the whole input. out starts empty;
 * its first STARLING_RW_SNAPPY_HEADROOM bytes are kept for the length.
 * finish returns the block's length and points *data at it inside out (0
 * when out of memory). */
#define STARLING_RW_SNAPPY_BLOCK    65536
#define STARLING_RW_SNAPPY_HEADROOM 10
int starling_rw_snappy_fragment(const uint8_t *in, size_t len, struct starling_rw_buf *out);
size_t starling_rw_snappy_finish(struct starling_rw_buf *out, size_t total, uint8_t **data);

/* Append one WriteRequest.metadata entry (MetricMetadata). */
int starling_rw_append_metadata(struct starling_rw_buf *req, const struct starling_metadata *md);

/* Encoded size of one TimeSeries entry, for batching decisions. */
size_t starling_rw_series_size(size_t labels_len, const int64_t *timestamps_ms, size_t n);

/* Snappy block format: replace out's contents with the compressed `in`. */
int starling_rw_snappy(const uint8_t *in, size_t len, struct starling_rw_buf *out);
/* Inverse; -EBADMSG on corrupt input, -EFBIG if it would exceed limit
 * (0 = none). */
int starling_rw_unsnappy(const uint8_t *in, size_t len, size_t limit, struct starling_rw_buf *out);

#ifdef __cplusplus
}
#endif
#endif
