/* Private to sdk/lib/expo*.c: parser state shared by the line grammar
 * (expo.c) and the OpenMetrics strict-mode checks (expo_om.c). */
#ifndef STARLING_EXPO_INTERNAL_H
#define STARLING_EXPO_INTERNAL_H

#include <starling/expo.h>

struct expo_om;
struct expo_proto;

struct starling_expo_parser {
	enum starling_expo_format fmt;
	unsigned flags;
	const char *buf;
	const char *pos;
	/* Lines are parsed only inside [buf, stop): stop is just past the last
	 * '\n', so every line in that region ends with '\n' and the scanners use
	 * it as a sentinel instead of bounds checks. */
	const char *stop;
	const char *end;
	const char *line_start;
	unsigned line;
	int state; /* 0 running, 1 finished, -1 failed */
	bool eof_seen;
	struct starling_expo_error err;
	char msg[256];
	struct expo_om *om;		  /* strict OpenMetrics state, allocated on demand */
	struct expo_proto *proto;	  /* protobuf decoder state, on demand */
	struct starling_expo_exemplar ex; /* the OpenMetrics exemplar of the event */
};

/* As starling_expo_series_labels_flags(), but a label value may hold NUL
 * bytes (valid in both text formats): each comes out as the byte 0xff,
 * which a valid UTF-8 value cannot otherwise hold, so the set stays made
 * of C strings; the scraper turns 0xff back into NUL with the value's
 * length (struct starling_series_ext.label_value_lens). */
int expo_series_labels_nul_ff(const char *series, size_t len, unsigned flags,
			      struct starling_lset *ls, const char **err);

/* Record the first error at byte `at` of the current line. Returns -EINVAL. */
int expo_fail(struct starling_expo_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, at an explicit line and column. */
int expo_fail_at(struct starling_expo_parser *p, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Number syntax shared by both formats (Go ParseFloat minus hex and '_',
 * which is the OpenMetrics `number` rule too). 0 or -EINVAL. */
int expo_parse_float(const char *s, const char *e, double *out);
/* OpenMetrics realnumber (no inf/nan). */
int expo_parse_real(const char *s, const char *e, double *out);
/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool expo_utf8_valid(const char *s, size_t len);
size_t expo_utf8_count(const char *s, size_t len);

/* Strict OpenMetrics checks (expo_om.c). */
struct expo_om *expo_om_new(void);
void expo_om_free(struct expo_om *om);
void expo_om_reset(struct expo_om *om);
/* A metadata line; `at` is the start of the family name. */
int expo_om_meta(struct starling_expo_parser *p, const struct starling_expo_event *ev,
		 const char *at);
/* A sample line (already grammar-checked); ts_s is the timestamp in
 * seconds when ev->has_timestamp. */
int expo_om_sample(struct starling_expo_parser *p, const struct starling_expo_event *ev,
		   double ts_s);
/* `# EOF` reached. */
int expo_om_finish(struct starling_expo_parser *p);

/* Protobuf exposition (expo_proto.c). */
int expo_proto_next(struct starling_expo_parser *p, struct starling_expo_event *ev);
void expo_proto_free(struct expo_proto *x);
void expo_proto_reset(struct expo_proto *x);
/* The parameters after the protobuf media type (";proto=...;encoding=...")
 * name MetricFamily and delimited encoding. */
bool expo_proto_params_ok(const char *s, size_t len);

#endif
