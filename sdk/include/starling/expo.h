/*
 * Exposition-format parser: Prometheus text 0.0.4 and OpenMetrics 1.0
 * (static SDK library).
 *
 * Zero-copy pull parser over a response body: starling_expo_next() yields
 * one event per sample or metadata line with pointer+length slices into the
 * caller's buffer, nothing is allocated per line and nothing is unescaped
 * until asked. The intended scrape loop:
 *
 *     starling_expo_reset(p, body, body_len);
 *     while ((rc = starling_expo_next(p, &ev)) > 0) {
 *             if (rc != STARLING_EXPO_SAMPLE)
 *                     continue;                   // or keep metadata
 *             e = cache_lookup(ev.series, ev.series_len);   // raw bytes key
 *             if (!e) {                            // miss: parse labels once
 *                     starling_expo_series_labels(ev.series, ev.series_len,
 *                                                 fmt, &lset, NULL);
 *                     ...relabel, insert
 *             }
 *             append(e, ev.value, ev.has_timestamp ? ev.timestamp_ms : now);
 *     }
 *     if (rc < 0) -> scrape failed: starling_expo_error(p)
 *
 * A document is all or nothing (as in Prometheus): samples yielded before an
 * error must be discarded by the caller when next() finally fails, or when
 * starling_expo_series_labels() fails on a new series (see
 * STARLING_EXPO_STRICT).
 *
 * OpenMetrics `foo_created` lines are yielded as ordinary samples (what
 * Prometheus does unless start-timestamp ingestion is on); exemplars are
 * validated and flagged (has_exemplar) but not returned.
 *
 * The protobuf format (STARLING_EXPO_PROTOBUF: delimited
 * io.prometheus.client.MetricFamily messages, decoded with protobuf-c in
 * expo_proto.c) goes through the same calls: each classic series comes out
 * as a SAMPLE whose series text is generated in Prometheus text syntax
 * (`name{a="b",le="0.5"}`, le/quantile formatted as Prometheus'
 * protobuf parser does), so a cache keyed on series text and
 * starling_expo_series_labels() work unchanged; native histograms come out
 * as STARLING_EXPO_HISTOGRAM events when STARLING_EXPO_NATIVE_HISTOGRAMS is
 * set. For protobuf, event slices stay valid only until the next call.
 *
 */
#ifndef STARLING_EXPO_H
#define STARLING_EXPO_H

#include <starling/plugin.h>
#include <starling/relabel.h>

#ifdef __cplusplus
extern "C" {
#endif

enum starling_expo_format {
	STARLING_EXPO_PROMETHEUS = 1,  /* text/plain; version=0.0.4 */
	STARLING_EXPO_OPENMETRICS = 2, /* application/openmetrics-text; version=1.0.0 */
	/* application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
	 * encoding=delimited */
	STARLING_EXPO_PROTOBUF = 3,
};

/* The protobuf media type and its Accept-header entry (native-histograms.md
 * section 1). */
#define STARLING_EXPO_PROTOBUF_MEDIA                                                               \
	"application/"                                                                             \
	"vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

/* Parser flags. */
/* Check everything inside starling_expo_next():
 * - OpenMetrics: the whole OpenMetrics 1.0 specification (families,
 *   type-specific suffixes and values, histogram buckets, exemplar
 *   placement, metadata placement, ordering, label sets, UTF-8...).
 * - Prometheus text: the label grammar of every line too.
 * Without it (the scrape path) next() checks the line grammar, values,
 * timestamps, metadata and `# EOF`, like Prometheus' scrape parsers, but in
 * Prometheus text it may skip the label part of regular-looking lines:
 * that part is checked by starling_expo_series_labels(), which the caller
 * MUST run on every series text it has not seen before and treat a failure
 * as a failed scrape (a cache hit means the same bytes were checked
 * before). check-metrics uses STRICT. */
#define STARLING_EXPO_STRICT (1u << 0)
/* Protobuf: a histogram with native buckets comes out as one
 * STARLING_EXPO_HISTOGRAM event (and its classic series only with
 * STARLING_EXPO_CLASSIC_HISTOGRAMS too). Without it every histogram comes
 * out as classic series (_count, _sum, _bucket; +Inf synthesized). */
#define STARLING_EXPO_NATIVE_HISTOGRAMS	 (1u << 1)
#define STARLING_EXPO_CLASSIC_HISTOGRAMS (1u << 2)
/* UTF-8 metric and label names (Prometheus 3, metric_name_validation_scheme
 * "utf8"): quoted names in the text formats, `{"my.metric",
 * "utf-8.label"="v"} 1` and `# TYPE "my.metric" counter` (not in STRICT
 * OpenMetrics), and any UTF-8 name in protobuf (its series text then uses
 * the quoted form). Without it such names fail the document as before. */
#define STARLING_EXPO_UTF8_NAMES (1u << 3)

/* The Accept header Alloy's prometheus.scrape sends by default (protocols.md
 * §2.3). Since ABI 1.0. */
#define STARLING_EXPO_ACCEPT_HEADER                                                                \
	"application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"                   \
	"application/openmetrics-text;version=0.0.1;q=0.5,"                                        \
	"text/plain;version=1.0.0;escaping=underscores;q=0.4,"                                     \
	"text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

/* Pick the parser for a response Content-Type header value (ct may be NULL
 * or not NUL-terminated: len bytes). application/openmetrics-text (any
 * version) gives OPENMETRICS; text/plain gives PROMETHEUS; anything else
 * (missing, unknown, protobuf) gives the fallback Alloy uses,
 * scrape_fallback_protocol = PrometheusText0.0.4, and sets *fallback to true
 * (fallback may be NULL). Media type matching is case-insensitive and
 * ignores parameters and blanks. application/vnd.google.protobuf with
 * proto=io.prometheus.client.MetricFamily and encoding=delimited gives
 * PROTOBUF. Pure, thread-safe. Since ABI 1.0. */
enum starling_expo_format starling_expo_format_from_content_type(const char *ct, size_t len,
								 bool *fallback);

/* What starling_expo_next() returns (> 0), 0 at the end, < 0 on error. */
enum starling_expo_kind {
	STARLING_EXPO_END = 0,
	STARLING_EXPO_SAMPLE = 1,
	STARLING_EXPO_HELP,
	STARLING_EXPO_TYPE,
	STARLING_EXPO_UNIT,
	STARLING_EXPO_HISTOGRAM, /* protobuf native histogram: ev.histogram */
};

/* One exemplar of an event: the label part as text ("{a=\"b\"}", parse it
 * with starling_expo_exemplar_labels()), value and optional timestamp. */
struct starling_expo_exemplar {
	const char *labels;
	size_t labels_len;
	double value;
	bool has_timestamp;
	int64_t timestamp_ms;
};

/* One event. All pointers are slices into the body passed to reset() and
 * stay valid as long as that buffer does. */
struct starling_expo_event {
	enum starling_expo_kind kind;
	unsigned line; /* 1-based line of this event */

	/* SAMPLE: the series text exactly as in the body: the metric name and,
	 * if present, the label part up to and including '}' (blanks inside
	 * kept as written; Prometheus text allows blanks before '{'). */
	const char *series;
	size_t series_len;
	size_t name_len; /* the metric name is series[0, name_len) */
	double value;	 /* NaN is canonicalised to 0x7ff8000000000001 */
	bool has_timestamp;
	int64_t timestamp_ms; /* text: as written; OpenMetrics: seconds * 1000 truncated */
	bool has_exemplar;    /* an exemplar followed (see exemplars) */
	/* SAMPLE / HISTOGRAM: the exemplars (OpenMetrics: at most one;
	 * protobuf: a counter's or bucket's, or a native histogram's). */
	const struct starling_expo_exemplar *exemplars;
	size_t n_exemplars;
	/* HISTOGRAM: the native histogram (series = name and labels, no
	 * suffix; timestamp_ms of the sample left 0, use has_timestamp /
	 * timestamp_ms of the event). Validated: spans match the bucket
	 * counts, no negative count, schema -4..8. */
	const struct starling_histogram *histogram;

	/* HELP / TYPE / UNIT: family name and, for HELP/UNIT, the text as
	 * written (still escaped; see starling_expo_unescape()). An empty
	 * OpenMetrics HELP/UNIT has text_len 0. */
	const char *family;
	size_t family_len;
	enum starling_metric_type type; /* TYPE: the type; untyped/unknown = UNKNOWN */
	const char *text;
	size_t text_len;
};

/* Opaque parser. Create once per scrape loop (or thread) and reset() per
 * body: steady-state parsing does not allocate (strict OpenMetrics mode
 * keeps per-document tables that are reused). Not thread-safe; one parser
 * per thread. */
struct starling_expo_parser;

/* Returns NULL on ENOMEM. flags: STARLING_EXPO_*. Owned by the caller.
 * Since ABI 1.0. */
struct starling_expo_parser *starling_expo_parser_new(enum starling_expo_format format,
						      unsigned flags);
/* Free (NULL is fine). Since ABI 1.0. */
void starling_expo_parser_free(struct starling_expo_parser *p);

/* Start parsing body[0, len). The parser reads but never writes the buffer
 * and does not need a NUL terminator; the buffer must outlive the events.
 * set_format() switches format/flags for the next reset() (e.g. after
 * starling_expo_format_from_content_type()). Since ABI 1.0. */
void starling_expo_reset(struct starling_expo_parser *p, const char *body, size_t len);
void starling_expo_set_format(struct starling_expo_parser *p, enum starling_expo_format format,
			      unsigned flags);

/* Next event into *ev: returns its kind (> 0), STARLING_EXPO_END (0) at a
 * valid end of document (OpenMetrics: after `# EOF`), or -EINVAL on a
 * syntax/semantic error (then see starling_expo_error(); further calls keep
 * returning the same error). Plain comments (text format) are skipped.
 * Since ABI 1.0. */
int starling_expo_next(struct starling_expo_parser *p, struct starling_expo_event *ev);

/* The first error: 1-based line and byte column, and a message (owned by
 * the parser, valid until the next reset). Since ABI 1.0. */
struct starling_expo_error {
	unsigned line;
	unsigned col;
	const char *msg;
};
struct starling_expo_error starling_expo_error(const struct starling_expo_parser *p);

/* Parse a series slice (an event's series/series_len) into ls: clears ls,
 * adds `__name__` and every label with unescaped values, sorted by name
 * (starling_lset order: `__name__` at its byte-order position). Labels with
 * an empty value are dropped (Prometheus semantics). Returns 0, -EINVAL
 * (malformed text or a duplicate label name; a message in err if non-NULL,
 * static string), -EILSEQ (a label value holds a NUL byte: valid in both
 * text formats, but not representable in a struct starling_label; the
 * scraper drops such a series and keeps the rest of the page), -ENOMEM.
 * Since ABI 1.0. */
int starling_expo_series_labels(const char *series, size_t len, enum starling_expo_format format,
				struct starling_lset *ls, const char **err);

/* Go's strconv.FormatFloat(f, 'g', -1, 64), with ".0" appended when the
 * result has neither '.' nor 'e' (Prometheus' formatOpenMetricsFloat, used
 * for le and quantile label values). Writes a NUL-terminated string of at
 * most 39 chars; returns its length. Pure. */
size_t starling_expo_format_float(double f, char out[40]);

/* As starling_expo_series_labels, with parser flags: STARLING_EXPO_UTF8_NAMES
 * also takes quoted names (`{"my.metric", "a.b"="v"}`). */
int starling_expo_series_labels_flags(const char *series, size_t len, unsigned flags,
				      struct starling_lset *ls, const char **err);

/* Parse an exemplar's label part ("{...}", possibly "{}") into ls, as
 * starling_expo_series_labels() does without a metric name. */
int starling_expo_exemplar_labels(const char *text, size_t len, struct starling_lset *ls,
				  const char **err);

/* Unescape a label value or HELP text slice into out (capacity >= len + 1
 * always suffices; NUL-terminated). Label values and OpenMetrics HELP: \\,
 * \" and \n; Prometheus-text HELP (help = true, format = PROMETHEUS): only
 * \\ and \n. Any other backslash sequence is kept as written. Returns the
 * output length. Pure. Since ABI 1.0. */
size_t starling_expo_unescape(const char *in, size_t len, enum starling_expo_format format,
			      bool help, char *out);

/* Detect the format of a whole document for `check-metrics --format auto`:
 * OPENMETRICS when the last line is exactly `# EOF` (optionally followed by
 * one '\n'), else PROMETHEUS. Pure. Since ABI 1.0. */
enum starling_expo_format starling_expo_detect(const char *body, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* STARLING_EXPO_H */
