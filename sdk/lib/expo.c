/*
 * Exposition parser: line grammar of Prometheus text 0.0.4 and OpenMetrics
 * 1.0, numbers, content-type negotiation, series-to-labels (see
 * starling/expo.h). The strict OpenMetrics semantics live in expo_om.c.
 *
 * Speed matters here: this runs over every scraped byte. Every line inside
 * the parse region ends with '\n', so the scanners stop on that byte
 * instead of checking bounds, and character classes are table lookups.
 */
#include "expo_internal.h"

#include <starling/labels.h>
#include "relabel_lset.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Character classes. */
#define C_NAME1	 0x01 /* metric name first char: [a-zA-Z_:] */
#define C_NAME	 0x02 /* metric name char: [a-zA-Z0-9_:] */
#define C_LNAME1 0x04 /* label name first char: [a-zA-Z_] */
#define C_LNAME	 0x08 /* label name char: [a-zA-Z0-9_] */
#define C_BLANK	 0x10 /* ' ' or '\t' */
#define C_TOKEND 0x20 /* ends a value token in text format: ' ', '\t', '\n' */
#define C_LVSTOP 0x40 /* stops a label-value scan: '"', '\\', '\n' */

static unsigned char cclass[256];

static void init_classes(void)
{
	for (int c = 0; c < 256; c++) {
		unsigned char f = 0;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		bool digit = c >= '0' && c <= '9';

		if (alpha || c == '_' || c == ':')
			f |= C_NAME1 | C_NAME;
		if (digit)
			f |= C_NAME;
		if (alpha || c == '_')
			f |= C_LNAME1 | C_LNAME;
		if (digit)
			f |= C_LNAME;
		if (c == ' ' || c == '\t')
			f |= C_BLANK | C_TOKEND;
		if (c == '\n')
			f |= C_TOKEND | C_LVSTOP;
		if (c == '"' || c == '\\')
			f |= C_LVSTOP;
		cclass[c] = f;
	}
}

/* Filled once; the table is constant afterwards, so concurrent parsers only
 * read it. __attribute__((constructor)) keeps the hot path free of a check. */
__attribute__((constructor)) static void expo_init(void)
{
	init_classes();
}

#define IS(c, f) (cclass[(unsigned char)(c)] & (f))

/* Whether s starts with lit. Stops at the first difference, so inside the
 * parse region it never reads past the line's '\n'. */
static bool lit_prefix(const char *s, const char *lit)
{
	for (; *lit; s++, lit++)
		if (*s != *lit)
			return false;
	return true;
}

/* Skip label-value bytes up to the next '"', '\\' or '\n'. 16 bytes at a
 * time while they fit before `limit` (the end of the parse region, whose
 * last byte is '\n', so the scalar tail always stops). */
static inline const char *skip_lvalue(const char *s, const char *limit)
{
#ifdef __SSE2__
	const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), n = _mm_set1_epi8('\n');

	while (limit - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)),
				 _mm_cmpeq_epi8(v, n)));

		if (m)
			return s + __builtin_ctz(m);
		s += 16;
	}
#endif
	while (!IS(*s, C_LVSTOP))
		s++;
	return s;
}

/* Skip metric-name bytes [a-zA-Z0-9_:] (vectorised like skip_lvalue). */
static inline const char *skip_name(const char *s, const char *limit)
{
#ifdef __SSE2__
	const __m128i a1 = _mm_set1_epi8('a' - 1), z1 = _mm_set1_epi8('z' + 1);
	const __m128i d1 = _mm_set1_epi8('0' - 1), c1 = _mm_set1_epi8(':' + 1);
	const __m128i us = _mm_set1_epi8('_'), bit = _mm_set1_epi8(0x20);

	while (limit - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i lo = _mm_or_si128(v, bit);
		__m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lo, a1), _mm_cmpgt_epi8(z1, lo));
		__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, d1), _mm_cmpgt_epi8(c1, v));
		__m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, us));
		unsigned m = ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;

		if (m)
			return s + __builtin_ctz(m);
		s += 16;
	}
#endif
	while (IS(*s, C_NAME))
		s++;
	return s;
}

/* ------------------------------------------------------------------------ */
/* Errors.                                                                   */

static int vfail(struct starling_expo_parser *p, unsigned line, unsigned col, const char *fmt,
		 va_list ap)
{
	if (p->state == -1)
		return -EINVAL;
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	p->err.line = line;
	p->err.col = col;
	p->err.msg = p->msg;
	p->state = -1;
	return -EINVAL;
}

int expo_fail(struct starling_expo_parser *p, const char *at, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(p, p->line, (unsigned)(at - p->line_start) + 1, fmt, ap);
	va_end(ap);
	return rc;
}

int expo_fail_at(struct starling_expo_parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(p, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Numbers.                                                                  */

static const double pow10_exact[] = {
    1e0,  1e1,	1e2,  1e3,  1e4,  1e5,	1e6,  1e7,  1e8,  1e9,	1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static bool ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n && lit[i]; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return false;
	}
	return i == n && lit[i] == '\0';
}

/* Decimal syntax [+-](digits[.digits*]|.digits)([eE][+-]digits)?. Exact
 * fast path (Clinger) when the mantissa fits 2^53 and the power of ten is
 * within 1e22; otherwise strtod on a NUL-terminated copy, which rounds
 * correctly. */
static int parse_decimal(const char *s, const char *e, double *out)
{
	const char *p = s;
	bool neg = false, any = false, trunc = false;
	uint64_t mant = 0;
	int nd = 0;
	long exp10 = 0;

	if (p < e && (*p == '+' || *p == '-')) {
		neg = *p == '-';
		p++;
	}
	while (p < e && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		any = true;
		if (mant == 0 && d == 0) {
			/* leading zero */
		} else if (nd < 19) {
			mant = mant * 10 + d;
			nd++;
		} else {
			exp10++;
			trunc = true;
		}
		p++;
	}
	if (p < e && *p == '.') {
		p++;
		while (p < e && *p >= '0' && *p <= '9') {
			unsigned d = (unsigned)(*p - '0');

			any = true;
			if (mant == 0 && d == 0) {
				exp10--;
			} else if (nd < 19) {
				mant = mant * 10 + d;
				nd++;
				exp10--;
			} else {
				trunc = true;
			}
			p++;
		}
	}
	if (!any)
		return -EINVAL;
	if (p < e && (*p == 'e' || *p == 'E')) {
		bool eneg = false;
		long ev = 0;
		bool edig = false;

		p++;
		if (p < e && (*p == '+' || *p == '-')) {
			eneg = *p == '-';
			p++;
		}
		while (p < e && *p >= '0' && *p <= '9') {
			if (ev < 100000)
				ev = ev * 10 + (*p - '0');
			edig = true;
			p++;
		}
		if (!edig)
			return -EINVAL;
		exp10 += eneg ? -ev : ev;
	}
	if (p != e)
		return -EINVAL;

	if (mant == 0) {
		*out = neg ? -0.0 : 0.0;
		return 0;
	}
	if (!trunc && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
		double v = (double)mant;

		v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
		*out = neg ? -v : v;
		return 0;
	}

	char tmp[512];
	size_t n = (size_t)(e - s);
	char *cp = tmp;
	double v;

	if (n >= sizeof(tmp)) {
		cp = malloc(n + 1);
		if (!cp)
			return -ENOMEM;
	}
	memcpy(cp, s, n);
	cp[n] = '\0';
	v = strtod(cp, NULL);
	if (cp != tmp)
		free(cp);
	if (isinf(v))
		return -ERANGE; /* Go's ParseFloat: out of range is an error */
	*out = v;
	return 0;
}

int expo_parse_float(const char *s, const char *e, double *out)
{
	const char *p = s;
	size_t n = (size_t)(e - s);

	if (n == 0)
		return -EINVAL;
	/* Special values: [+-]inf, [+-]infinity, nan (case-insensitive; no
	 * sign on NaN), as Go's ParseFloat and the OpenMetrics ABNF. */
	if (*p == '+' || *p == '-')
		p++;
	if (p < e && (*p == 'i' || *p == 'I' || *p == 'n' || *p == 'N')) {
		size_t m = (size_t)(e - p);

		if (ieq(p, m, "inf") || ieq(p, m, "infinity")) {
			*out = *s == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		if (p == s && ieq(p, m, "nan")) {
			union {
				uint64_t u;
				double d;
			} nan = {.u = UINT64_C(0x7ff8000000000001)};

			*out = nan.d;
			return 0;
		}
		return -EINVAL;
	}
	return parse_decimal(s, e, out);
}

int expo_parse_real(const char *s, const char *e, double *out)
{
	return parse_decimal(s, e, out);
}

/* Prometheus text timestamps: Go ParseInt(s, 10, 64). */
static int parse_int64(const char *s, const char *e, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	uint64_t v = 0;
	uint64_t lim;

	if (p < e && (*p == '+' || *p == '-')) {
		neg = *p == '-';
		p++;
	}
	if (p == e)
		return -EINVAL;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < e; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (lim - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* UTF-8.                                                                    */

static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		n = 2;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		n = 3;
		cp = c & 0x0f;
	} else if (c < 0xf5) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool expo_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n;

#ifdef __SSE2__
		/* Mostly ASCII: 16 bytes with no high bit at a time. */
		while (len - i >= 16 &&
		       !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(u + i))))
			i += 16;
		if (i >= len)
			break;
#endif

		if (u[i] < 0x80) {
			i++;
			continue;
		}
		n = utf8_seq(u + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

bool starling_utf8_valid(const char *s, size_t len)
{
	return expo_utf8_valid(s, len);
}

size_t expo_utf8_count(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Content type, detection, unescaping.                                      */

static bool media_is(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n == l && ieq(s, n, lit);
}

enum starling_expo_format starling_expo_format_from_content_type(const char *ct, size_t len,
								 bool *fallback)
{
	size_t a = 0, b;

	if (fallback)
		*fallback = false;
	if (ct) {
		while (a < len && (ct[a] == ' ' || ct[a] == '\t'))
			a++;
		b = a;
		while (b < len && ct[b] != ';')
			b++;
		while (b > a && (ct[b - 1] == ' ' || ct[b - 1] == '\t'))
			b--;
		if (media_is(ct + a, b - a, "application/openmetrics-text"))
			return STARLING_EXPO_OPENMETRICS;
		if (media_is(ct + a, b - a, "text/plain"))
			return STARLING_EXPO_PROMETHEUS;
		if (media_is(ct + a, b - a, "application/vnd.google.protobuf") &&
		    expo_proto_params_ok(ct + b, len - b))
			return STARLING_EXPO_PROTOBUF;
	}
	if (fallback)
		*fallback = true;
	return STARLING_EXPO_PROMETHEUS;
}

enum starling_expo_format starling_expo_detect(const char *body, size_t len)
{
	size_t n = len;

	if (n && body[n - 1] == '\n')
		n--;
	if (n >= 5 && memcmp(body + n - 5, "# EOF", 5) == 0 && (n == 5 || body[n - 6] == '\n'))
		return STARLING_EXPO_OPENMETRICS;
	return STARLING_EXPO_PROMETHEUS;
}

size_t starling_expo_unescape(const char *in, size_t len, enum starling_expo_format format,
			      bool help, char *out)
{
	bool quote = !(help && format == STARLING_EXPO_PROMETHEUS);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '\\' && i + 1 < len) {
			char d = in[i + 1];

			if (d == '\\' || d == 'n' || (d == '"' && quote)) {
				out[o++] = d == 'n' ? '\n' : d;
				i++;
				continue;
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

/* ------------------------------------------------------------------------ */
/* Series text to labels (cache-miss path: bounds-checked, not sentinel).    */

static const char *skip_blanks(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static int parse_labels(const char *series, size_t len, struct starling_lset *ls, const char **err,
			bool named, bool utf8, bool nul_ff);

int starling_expo_series_labels(const char *series, size_t len, enum starling_expo_format format,
				struct starling_lset *ls, const char **err)
{
	(void)format;
	return parse_labels(series, len, ls, err, true, false, false);
}

int starling_expo_series_labels_flags(const char *series, size_t len, unsigned flags,
				      struct starling_lset *ls, const char **err)
{
	return parse_labels(series, len, ls, err, true, flags & STARLING_EXPO_UTF8_NAMES, false);
}

int expo_series_labels_nul_ff(const char *series, size_t len, unsigned flags,
			      struct starling_lset *ls, const char **err)
{
	return parse_labels(series, len, ls, err, true, flags & STARLING_EXPO_UTF8_NAMES, true);
}

int starling_expo_exemplar_labels(const char *text, size_t len, struct starling_lset *ls,
				  const char **err)
{
	return parse_labels(text, len, ls, err, false, true, false);
}

/* A scratch buffer that starts as the caller's stack array STACK: makes
 * room for NEED bytes (old contents are not kept). 0, or -ENOMEM with the
 * buffer unchanged. */
static int scratch_fit(char **buf, size_t *cap, char *stack, size_t need)
{
	char *nb;

	if (need <= *cap)
		return 0;
	nb = malloc(need);
	if (!nb)
		return -ENOMEM;
	if (*buf != stack)
		free(*buf);
	*buf = nb;
	*cap = need;
	return 0;
}

static int parse_labels(const char *series, size_t len, struct starling_lset *ls, const char **err,
			bool named, bool utf8, bool nul_ff)
{
	const char *s = series, *e = series + len, *n0;
	char stackbuf[256], nstack[256];
	char *vbuf = stackbuf, *nbuf = nstack;
	size_t vcap = sizeof(stackbuf), ncap = sizeof(nstack);
	int rc = -EINVAL;
	const char *why = "malformed series";
	/* {"my.metric", ...}: the (quoted, UTF-8) metric name inside braces */
	bool need_name = false;

	starling_lset_clear(ls);
	if (!named) {
		if (s == e || *s != '{')
			goto out;
		goto labels;
	}
	if (s < e && *s == '{' && utf8) {
		need_name = true;
		goto labels;
	}
	if (s == e || !IS(*s, C_NAME1)) {
		why = "invalid metric name";
		goto out;
	}
	n0 = s;
	while (s < e && IS(*s, C_NAME))
		s++;
	rc = lset_append_checked(ls, "__name__", 8, n0, (size_t)(s - n0));
	if (rc)
		goto out;
	rc = -EINVAL;
	s = skip_blanks(s, e);
	if (s == e)
		goto finish;
	if (*s != '{')
		goto out;
labels:
	s++;
	for (;;) {
		const char *l0, *l1, *v0;
		size_t vlen;

		s = skip_blanks(s, e);
		if (s < e && *s == '}') {
			s++;
			break;
		}
		if (s < e && *s == '"' && utf8) {
			/* A quoted UTF-8 name (text 1.0.0 / OpenMetrics with
			 * escaping=allow-utf-8): a label name, or the metric
			 * name when no '=' follows. */
			const char *q0 = ++s, *t;
			bool qesc = false;
			size_t qlen;

			while (s < e && *s != '"' && *s != '\n') {
				if (*s == '\\' && s + 1 < e) {
					qesc = true;
					s++;
				}
				s++;
			}
			if (s >= e || *s != '"') {
				why = "unterminated quoted name";
				goto out;
			}
			qlen = (size_t)(s - q0);
			s++;
			if (scratch_fit(&nbuf, &ncap, nstack, qlen + 1) < 0) {
				rc = -ENOMEM;
				goto out;
			}
			if (qesc)
				qlen = starling_expo_unescape(q0, qlen, STARLING_EXPO_PROMETHEUS,
							      false, nbuf);
			else
				memcpy(nbuf, q0, qlen);
			nbuf[qlen] = '\0';
			if (!qlen || strlen(nbuf) != qlen || !expo_utf8_valid(nbuf, qlen)) {
				why = "invalid quoted name";
				goto out;
			}
			t = skip_blanks(s, e);
			if (t < e && (*t == ',' || *t == '}')) {
				if (!need_name) {
					why = "unexpected quoted metric name";
					goto out;
				}
				need_name = false;
				rc = lset_append_checked(ls, "__name__", 8, nbuf, qlen);
				if (rc)
					goto out;
				rc = -EINVAL;
				s = t + 1;
				if (*t == '}')
					break;
				continue;
			}
			l0 = nbuf;
			l1 = nbuf + qlen;
		} else if (s == e || !IS(*s, C_LNAME1)) {
			why = "invalid label name";
			goto out;
		} else {
			l0 = s;
			while (s < e && IS(*s, C_LNAME))
				s++;
			l1 = s;
		}
		s = skip_blanks(s, e);
		if (s == e || *s != '=')
			goto out;
		s = skip_blanks(s + 1, e);
		if (s == e || *s != '"')
			goto out;
		v0 = ++s;
		/* One pass over the value: its end, escapes, NUL bytes and
		 * non-ASCII bytes. Values without escapes are copied straight
		 * from the body. */
		{
			bool esc = false, high = false, nul = false;
			const char *val = v0;

			while (s < e && *s != '"') {
				unsigned char c = (unsigned char)*s;

				if (c == '\n')
					break;
				if (c == '\\') {
					esc = true;
					if (s + 1 == e || s[1] == '\n')
						break;
					c = (unsigned char)*++s;
				}
				nul |= c == 0;
				high |= c >= 0x80;
				s++;
			}
			if (s >= e || *s != '"') {
				why = "unterminated label value";
				goto out;
			}
			vlen = (size_t)(s - v0);
			if (nul && !nul_ff) {
				why = "NUL byte in label value";
				rc = -EILSEQ;
				goto out;
			}
			if (esc || nul) {
				if (scratch_fit(&vbuf, &vcap, stackbuf, vlen + 1) < 0) {
					rc = -ENOMEM;
					goto out;
				}
				if (esc)
					vlen = starling_expo_unescape(
					    v0, vlen, STARLING_EXPO_PROMETHEUS, false, vbuf);
				else
					memcpy(vbuf, v0, vlen);
				val = vbuf;
			}
			if (high && !expo_utf8_valid(val, vlen)) {
				why = "invalid UTF-8 in label value";
				goto out;
			}
			/* nul_ff: a NUL byte becomes 0xff, which valid UTF-8
			 * never holds, so the value fits a C string and the
			 * byte can be told apart again (expo_internal.h) */
			for (size_t k = 0; nul && k < vlen; k++)
				if (!vbuf[k])
					vbuf[k] = (char)0xff;
			rc = lset_append_checked(ls, l0, (size_t)(l1 - l0), val, vlen);
			if (rc)
				goto out;
		}
		rc = -EINVAL;
		s = skip_blanks(s + 1, e);
		if (s < e && *s == ',') {
			s++;
			continue;
		}
		if (s < e && *s == '}') {
			s++;
			break;
		}
		goto out;
	}
	if (skip_blanks(s, e) != e)
		goto out;
	if (need_name) {
		why = "missing metric name";
		goto out;
	}
finish:
	rc = starling_lset_finish(ls);
	if (rc == -EEXIST) {
		why = "duplicate label name";
		rc = -EINVAL;
	}
out:
	if (vbuf != stackbuf)
		free(vbuf);
	if (nbuf != nstack)
		free(nbuf);
	if (rc && err)
		*err = rc == -ENOMEM ? "out of memory" : why;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Parser object.                                                            */

struct starling_expo_parser *starling_expo_parser_new(enum starling_expo_format format,
						      unsigned flags)
{
	struct starling_expo_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->fmt = format;
	p->flags = flags;
	starling_expo_reset(p, "", 0);
	return p;
}

void starling_expo_parser_free(struct starling_expo_parser *p)
{
	if (!p)
		return;
	expo_om_free(p->om);
	expo_proto_free(p->proto);
	free(p);
}

void starling_expo_set_format(struct starling_expo_parser *p, enum starling_expo_format format,
			      unsigned flags)
{
	p->fmt = format;
	p->flags = flags;
}

void starling_expo_reset(struct starling_expo_parser *p, const char *body, size_t len)
{
	const char *nl;

	p->buf = body;
	p->pos = body;
	p->end = body + len;
	nl = len ? memrchr(body, '\n', len) : NULL;
	p->stop = nl ? nl + 1 : body;
	p->line_start = body;
	p->line = 1;
	p->state = 0;
	p->eof_seen = false;
	p->err.line = 0;
	p->err.col = 0;
	p->err.msg = NULL;
	p->msg[0] = '\0';
	if (p->om)
		expo_om_reset(p->om);
	if (p->proto)
		expo_proto_reset(p->proto);
}

struct starling_expo_error starling_expo_error(const struct starling_expo_parser *p)
{
	struct starling_expo_error e = p->err;

	if (!e.msg)
		e.msg = "";
	return e;
}

/* ------------------------------------------------------------------------ */
/* Prometheus text 0.0.4.                                                    */

static const char *prom_blanks(const char *s)
{
	while (IS(*s, C_BLANK))
		s++;
	return s;
}

/* A quoted name at s ('"'); returns the byte after the closing quote or
 * NULL. Lines end with '\n' (the sentinel). */
static const char *skip_quoted(const char *s)
{
	for (s++;; s++) {
		if (*s == '"')
			return s + 1;
		if (*s == '\n')
			return NULL;
		if (*s == '\\' && s[1] != '\n')
			s++;
	}
}

/* Label part after '{'; returns the byte after '}' or NULL (error set).
 * With STARLING_EXPO_UTF8_NAMES, names may be quoted, and when the line
 * starts with '{' (`braced`) one bare quoted string is the metric name. */
static const char *prom_labels(struct starling_expo_parser *p, const char *s, bool braced)
{
	bool utf8 = p->flags & STARLING_EXPO_UTF8_NAMES;

	for (;;) {
		s = prom_blanks(s);
		if (*s == '}') {
			if (braced)
				expo_fail(p, s, "missing metric name");
			return braced ? NULL : s + 1;
		}
		if (*s == '"' && utf8) {
			const char *q = skip_quoted(s), *t;

			if (!q) {
				expo_fail(p, s, "unterminated quoted name");
				return NULL;
			}
			t = prom_blanks(q);
			if ((*t == ',' || *t == '}') && braced) {
				braced = false; /* the metric name */
				s = *t == ',' ? t + 1 : t;
				if (*t == '}')
					return t + 1;
				continue;
			}
			s = q;
		} else if (!IS(*s, C_LNAME1)) {
			if (*s == '"')
				expo_fail(p, s, "quoted label names need UTF-8 names enabled");
			else
				expo_fail(p, s, "invalid label name");
			return NULL;
		} else {
			while (IS(*s, C_LNAME))
				s++;
		}
		s = prom_blanks(s);
		if (*s != '=') {
			expo_fail(p, s, "expected '=' after label name");
			return NULL;
		}
		s = prom_blanks(s + 1);
		if (*s != '"') {
			expo_fail(p, s, "expected '\"' to start the label value");
			return NULL;
		}
		s++;
		for (;;) {
			s = skip_lvalue(s, p->stop);
			if (*s == '"')
				break;
			if (*s == '\\' && s[1] != '\n') {
				s += 2;
				continue;
			}
			expo_fail(p, s, "unterminated label value");
			return NULL;
		}
		s = prom_blanks(s + 1);
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == '}') {
			if (braced) {
				expo_fail(p, s, "missing metric name");
				return NULL;
			}
			return s + 1;
		}
		expo_fail(p, s, "expected ',' or '}' after label value");
		return NULL;
	}
}

static int prom_type(const char *s, size_t n, enum starling_metric_type *t)
{
	switch (n) {
	case 5:
		if (memcmp(s, "gauge", 5) == 0) {
			*t = STARLING_METRIC_GAUGE;
			return 0;
		}
		break;
	case 7:
		if (memcmp(s, "counter", 7) == 0) {
			*t = STARLING_METRIC_COUNTER;
			return 0;
		}
		if (memcmp(s, "summary", 7) == 0) {
			*t = STARLING_METRIC_SUMMARY;
			return 0;
		}
		if (memcmp(s, "untyped", 7) == 0) {
			*t = STARLING_METRIC_UNKNOWN;
			return 0;
		}
		break;
	case 9:
		if (memcmp(s, "histogram", 9) == 0) {
			*t = STARLING_METRIC_HISTOGRAM;
			return 0;
		}
		break;
	}
	return -EINVAL;
}

/* End of the line at s (its '\n'), noting whether any byte has the high
 * bit set, so that mostly-ASCII HELP text is scanned once. */
static inline const char *line_end_ascii(const char *s, const char *limit, bool *high)
{
#ifdef __SSE2__
	const __m128i n = _mm_set1_epi8('\n');

	while (limit - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		unsigned mn = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, n));
		unsigned mh = (unsigned)_mm_movemask_epi8(v);

		if (mn) {
			unsigned before = mn & (0u - mn); /* lowest '\n' bit */

			if (mh & (before - 1))
				*high = true;
			return s + __builtin_ctz(mn);
		}
		if (mh)
			*high = true;
		s += 16;
	}
#endif
	while (*s != '\n') {
		if ((unsigned char)*s & 0x80)
			*high = true;
		s++;
	}
	return s;
}

/* A '#' line: HELP/TYPE give an event (return 1), other comments 0. */
static int prom_comment(struct starling_expo_parser *p, const char *s,
			struct starling_expo_event *ev)
{
	const char *f0, *w0;
	bool help;

	s = prom_blanks(s + 1);
	if (lit_prefix(s, "HELP") && IS(s[4], C_BLANK))
		help = true;
	else if (lit_prefix(s, "TYPE") && IS(s[4], C_BLANK))
		help = false;
	else
		return 0; /* an ordinary comment */
	s = prom_blanks(s + 4);
	if (*s == '"' && (p->flags & STARLING_EXPO_UTF8_NAMES)) {
		/* quoted UTF-8 family name, kept as written inside the quotes */
		const char *q = skip_quoted(s);

		if (!q)
			return expo_fail(p, s, "unterminated quoted name in %s",
					 help ? "HELP" : "TYPE");
		ev->family = s + 1;
		ev->family_len = (size_t)(q - s - 2);
		s = q;
	} else {
		if (*s == '"')
			return expo_fail(p, s, "quoted metric names need UTF-8 names enabled");
		if (!IS(*s, C_NAME1))
			return expo_fail(p, s, "invalid metric name in %s", help ? "HELP" : "TYPE");
		f0 = s;
		s = skip_name(s, p->stop);
		ev->family = f0;
		ev->family_len = (size_t)(s - f0);
	}
	ev->type = STARLING_METRIC_UNKNOWN;
	if (help) {
		const char *nl;

		if (*s != '\n' && !IS(*s, C_BLANK))
			return expo_fail(p, s, "invalid metric name in HELP");
		bool high = false;

		s = prom_blanks(s);
		nl = line_end_ascii(s, p->stop, &high);
		ev->kind = STARLING_EXPO_HELP;
		ev->text = s;
		ev->text_len = (size_t)(nl - s);
		if (high && !expo_utf8_valid(s, ev->text_len))
			return expo_fail(p, s, "invalid UTF-8 in HELP text");
		p->pos = nl + 1;
		return 1;
	}
	if (!IS(*s, C_BLANK))
		return expo_fail(p, s, "expected a type after the metric name in TYPE");
	s = prom_blanks(s);
	w0 = s;
	while (!IS(*s, C_TOKEND))
		s++;
	if (prom_type(w0, (size_t)(s - w0), &ev->type))
		return expo_fail(p, w0, "invalid metric type \"%.*s\"", (int)(s - w0), w0);
	s = prom_blanks(s);
	if (*s != '\n')
		return expo_fail(p, s, "unexpected text after the metric type");
	p->pos = s + 1;
	ev->kind = STARLING_EXPO_TYPE;
	ev->text = NULL;
	ev->text_len = 0;
	return 1;
}

/* Find the first '}' or '\n' (vectorised; see skip_lvalue). */
static inline const char *find_rbrace_or_nl(const char *s, const char *limit)
{
#ifdef __SSE2__
	const __m128i rb = _mm_set1_epi8('}'), n = _mm_set1_epi8('\n');

	while (limit - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_cmpeq_epi8(v, rb), _mm_cmpeq_epi8(v, n)));

		if (m)
			return s + __builtin_ctz(m);
		s += 16;
	}
#endif
	while (*s != '}' && *s != '\n')
		s++;
	return s;
}

/* The value shapes exporters write ([-]digits[.digits][e[+-]digits] with a
 * mantissa of at most 19 digits and an exact power of ten), parsed in one
 * pass. Returns the end of the number, or NULL for the general parser. */
static inline const char *fast_number(const char *s, double *out)
{
	const char *p = s, *d0;
	bool neg = *p == '-';
	uint64_t mant = 0;
	int nd = 0, frac = 0, e = 0;
	double v;

	p += neg;
	d0 = p;
	while ((unsigned)(*p - '0') < 10) {
		if (++nd > 19)
			return NULL;
		mant = mant * 10 + (unsigned)(*p++ - '0');
	}
	if (p == d0)
		return NULL;
	if (*p == '.') {
		const char *f0 = ++p;

		while ((unsigned)(*p - '0') < 10) {
			if (++nd > 19)
				return NULL;
			mant = mant * 10 + (unsigned)(*p++ - '0');
		}
		frac = (int)(p - f0);
	}
	if (*p == 'e' || *p == 'E') {
		bool eneg;
		const char *e0;

		p++;
		eneg = *p == '-';
		p += *p == '-' || *p == '+';
		e0 = p;
		while ((unsigned)(*p - '0') < 10 && p - e0 < 4)
			e = e * 10 + (*p++ - '0');
		if (p == e0)
			return NULL;
		if (eneg)
			e = -e;
	}
	if (!IS(*p, C_TOKEND) || mant > (UINT64_C(1) << 53))
		return NULL;
	e -= frac;
	if (e < -22 || e > 22)
		return NULL;
	v = (double)mant;
	v = e >= 0 ? v * pow10_exact[e] : v / pow10_exact[-e];
	*out = neg ? -v : v;
	return p;
}

/* Scrape-path fast line: name, '{' right after it, labels up to the first
 * '}', one space, value, optional one-space timestamp, '\n'. The label part
 * is not checked here (starling_expo_series_labels() does it on a cache
 * miss). Any deviation returns 0 and the line is parsed again by the
 * checking path, which also produces the error message; in particular a '}'
 * inside a quoted value always leaves a '"' where the value should be. */
static int prom_sample_fast(struct starling_expo_parser *p, const char *s,
			    struct starling_expo_event *ev)
{
	const char *n0 = s;
	int64_t ts = 0;
	bool has_ts = false;

	s = skip_name(s, p->stop);
	ev->name_len = (size_t)(s - n0);
	if (*s == '{') {
		s = find_rbrace_or_nl(s + 1, p->stop);
		if (*s != '}')
			return 0;
		s++;
	}
	if (*s != ' ')
		return 0;
	ev->series_len = (size_t)(s - n0);
	s = fast_number(s + 1, &ev->value);
	if (!s)
		return 0;
	if (*s == ' ') {
		const char *t0 = ++s;
		bool neg = *s == '-';

		s += neg;
		while ((unsigned)(*s - '0') < 10 && s - t0 < 18)
			ts = ts * 10 + (*s++ - '0');
		if (s == t0 + neg)
			return 0;
		if (neg)
			ts = -ts;
		has_ts = true;
	}
	if (*s != '\n')
		return 0;
	ev->kind = STARLING_EXPO_SAMPLE;
	ev->series = n0;
	ev->has_timestamp = has_ts;
	ev->timestamp_ms = ts;
	ev->has_exemplar = false;
	p->pos = s + 1;
	p->line++;
	return 1;
}

static int prom_next(struct starling_expo_parser *p, struct starling_expo_event *ev)
{
	for (;;) {
		const char *s = p->pos, *n0, *t0;
		int rc;

		if (s >= p->stop) {
			if (p->stop != p->end) {
				p->line_start = p->stop;
				return expo_fail(p, p->end, "last line must end with a newline");
			}
			p->state = 1;
			return STARLING_EXPO_END;
		}
		p->line_start = s;
		ev->line = p->line;
		s = prom_blanks(s);
		if (*s == '\n') {
			p->pos = s + 1;
			p->line++;
			continue;
		}
		if (*s == '#') {
			rc = prom_comment(p, s, ev);
			if (rc < 0)
				return rc;
			p->line++;
			if (rc)
				return ev->kind; /* prom_comment set p->pos */
			s = memchr(s, '\n', (size_t)(p->stop - s));
			p->pos = s + 1;
			continue;
		}
		if (*s == '{' && (p->flags & STARLING_EXPO_UTF8_NAMES)) {
			/* {"my.metric", ...} */
			n0 = s;
			ev->kind = STARLING_EXPO_SAMPLE;
			ev->series = n0;
			ev->name_len = 0;
			s = prom_labels(p, s + 1, true);
			if (!s)
				return -EINVAL;
			goto value;
		}
		if (!IS(*s, C_NAME1)) {
			if (*s == '{')
				return expo_fail(p, s,
						 "quoted metric names need UTF-8 names enabled");
			return expo_fail(p, s, "invalid metric name");
		}
		if (!(p->flags & STARLING_EXPO_STRICT) && prom_sample_fast(p, s, ev))
			return STARLING_EXPO_SAMPLE;
		n0 = s;
		s = skip_name(s, p->stop);
		ev->kind = STARLING_EXPO_SAMPLE;
		ev->series = n0;
		ev->name_len = (size_t)(s - n0);
		t0 = prom_blanks(s);
		if (*t0 == '{') {
			s = prom_labels(p, t0 + 1, false);
			if (!s)
				return -EINVAL;
		}
	value:
		ev->series_len = (size_t)(s - n0);
		if (!IS(*s, C_BLANK)) {
			if (*s == '\n')
				return expo_fail(p, s, "missing value");
			return expo_fail(p, s, "unexpected character after metric name");
		}
		s = prom_blanks(s);
		t0 = s;
		while (!IS(*s, C_TOKEND))
			s++;
		if (t0 == s)
			return expo_fail(p, s, "missing value");
		rc = expo_parse_float(t0, s, &ev->value);
		if (rc)
			return expo_fail(p, t0, "invalid value \"%.*s\"", (int)(s - t0), t0);
		s = prom_blanks(s);
		ev->has_timestamp = false;
		ev->timestamp_ms = 0;
		ev->has_exemplar = false;
		if (*s != '\n') {
			t0 = s;
			while (!IS(*s, C_TOKEND))
				s++;
			if (parse_int64(t0, s, &ev->timestamp_ms))
				return expo_fail(p, t0, "invalid timestamp \"%.*s\"", (int)(s - t0),
						 t0);
			ev->has_timestamp = true;
			s = prom_blanks(s);
			if (*s != '\n')
				return expo_fail(p, s, "unexpected text after timestamp");
		}
		p->pos = s + 1;
		p->line++;
		return STARLING_EXPO_SAMPLE;
	}
}

/* ------------------------------------------------------------------------ */
/* OpenMetrics 1.0 line grammar.                                             */

/* Labels after '{' with OpenMetrics rules: no blanks, no trailing comma.
 * If ncp is non-NULL, count code points of names + raw values (exemplar
 * length limit). Returns the byte after '}' or NULL. */
static const char *om_labels(struct starling_expo_parser *p, const char *s, size_t *ncp,
			     bool braced)
{
	bool utf8 = p->flags & STARLING_EXPO_UTF8_NAMES;

	if (*s == '}' && !braced)
		return s + 1;
	for (;;) {
		const char *l0 = s, *v0;

		if (*s == '"' && utf8) {
			/* a quoted name (Prometheus' openmetricslex.l: no blanks
			 * inside the braces, even with quoted names) */
			const char *q = skip_quoted(s);

			if (!q) {
				expo_fail(p, s, "unterminated quoted name");
				return NULL;
			}
			if (braced && (*q == ',' || *q == '}')) {
				braced = false; /* the metric name */
				if (*q == '}')
					return q + 1;
				s = q + 1;
				if (*s == '}') {
					expo_fail(p, s, "trailing comma in label set");
					return NULL;
				}
				continue;
			}
			s = q;
		} else if (!IS(*s, C_LNAME1)) {
			if (*s == '"')
				expo_fail(p, s, "quoted label names need UTF-8 names enabled");
			else
				expo_fail(p, s,
					  braced ? "missing metric name" : "invalid label name");
			return NULL;
		} else {
			while (IS(*s, C_LNAME))
				s++;
		}
		if (braced) {
			expo_fail(p, l0, "missing metric name");
			return NULL;
		}
		if (*s != '=') {
			expo_fail(p, s, "expected '=' after label name");
			return NULL;
		}
		if (s[1] != '"') {
			expo_fail(p, s + 1, "expected '\"' to start the label value");
			return NULL;
		}
		if (ncp)
			*ncp += *l0 == '"' ? expo_utf8_count(l0 + 1, (size_t)(s - l0 - 2))
					   : (size_t)(s - l0);
		s += 2;
		v0 = s;
		for (;;) {
			s = skip_lvalue(s, p->stop);
			if (*s == '"')
				break;
			if (*s == '\\' && s[1] != '\n') {
				s += 2;
				continue;
			}
			expo_fail(p, s, "unterminated label value");
			return NULL;
		}
		if (ncp) {
			/* Code points of the unescaped value. */
			size_t n = expo_utf8_count(v0, (size_t)(s - v0));

			for (const char *q = v0; q < s; q++)
				if (*q == '\\') {
					n--;
					q++;
				}
			*ncp += n;
		}
		s++;
		if (*s == ',') {
			s++;
			if (*s == '}') {
				expo_fail(p, s, "trailing comma in label set");
				return NULL;
			}
			continue;
		}
		if (*s == '}')
			return s + 1;
		expo_fail(p, s, "expected ',' or '}' after label value");
		return NULL;
	}
}

/* Token up to ' ' or '\n'. */
static const char *om_token(const char *s)
{
	while (*s != ' ' && *s != '\n')
		s++;
	return s;
}

static int om_type(const char *s, size_t n, enum starling_metric_type *t)
{
	static const struct {
		const char *name;
		enum starling_metric_type type;
	} types[] = {
	    {"counter", STARLING_METRIC_COUNTER},
	    {"gauge", STARLING_METRIC_GAUGE},
	    {"histogram", STARLING_METRIC_HISTOGRAM},
	    {"gaugehistogram", STARLING_METRIC_GAUGE_HISTOGRAM},
	    {"stateset", STARLING_METRIC_STATESET},
	    {"info", STARLING_METRIC_INFO},
	    {"summary", STARLING_METRIC_SUMMARY},
	    {"unknown", STARLING_METRIC_UNKNOWN},
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0) {
			*t = types[i].type;
			return 0;
		}
	}
	return -EINVAL;
}

/* HELP text: escaped-string (any '\\' escape but a raw newline), UTF-8. */
static int om_check_help(struct starling_expo_parser *p, const char *s, const char *nl)
{
	if (!expo_utf8_valid(s, (size_t)(nl - s)))
		return expo_fail(p, s, "invalid UTF-8 in HELP text");
	if (nl > s && nl[-1] == '\r')
		return expo_fail(p, nl - 1, "carriage return at end of line");
	for (const char *q = s; q < nl; q++) {
		if (*q == '\\') {
			if (q + 1 == nl)
				return expo_fail(p, q, "backslash at end of HELP text");
			q++;
		}
	}
	return 0;
}

/* The `# EOF` line at s (the '#'). */
static int om_eof(struct starling_expo_parser *p, const char *s)
{
	const char *after = s + 5; /* past "# EOF" */

	if (after < p->end && *after == '\n')
		after++;
	if (after != p->end)
		return expo_fail(p, s + 5, "text after # EOF");
	p->eof_seen = true;
	p->pos = p->end;
	if (p->om && (p->flags & STARLING_EXPO_STRICT)) {
		int rc = expo_om_finish(p);

		if (rc)
			return rc;
	}
	p->state = 1;
	return STARLING_EXPO_END;
}

static int om_meta(struct starling_expo_parser *p, const char *s, struct starling_expo_event *ev)
{
	const char *w = s + 2, *f0, *nl;
	enum starling_expo_kind kind;

	if (lit_prefix(w, "TYPE "))
		kind = STARLING_EXPO_TYPE;
	else if (lit_prefix(w, "HELP "))
		kind = STARLING_EXPO_HELP;
	else if (lit_prefix(w, "UNIT "))
		kind = STARLING_EXPO_UNIT;
	else
		return expo_fail(p, w, "expected TYPE, HELP, UNIT or EOF after '# '");
	s = w + 5;
	if (*s == '"' && (p->flags & STARLING_EXPO_UTF8_NAMES)) {
		const char *q = skip_quoted(s);

		if (!q)
			return expo_fail(p, s, "unterminated quoted name");
		f0 = s + 1;
		s = q;
		ev->family_len = (size_t)(q - f0 - 1);
	} else {
		if (*s == '"')
			return expo_fail(p, s, "quoted metric names need UTF-8 names enabled");
		if (!IS(*s, C_NAME1))
			return expo_fail(p, s, "invalid metric name");
		f0 = s;
		while (IS(*s, C_NAME))
			s++;
		ev->family_len = (size_t)(s - f0);
	}
	ev->kind = kind;
	ev->family = f0;
	ev->type = STARLING_METRIC_UNKNOWN;
	ev->text = NULL;
	ev->text_len = 0;
	if (*s != ' ') {
		if (*s == '\n')
			return expo_fail(p, s, "expected ' ' and a value after the metric name");
		return expo_fail(p, s, "invalid metric name");
	}
	s++;
	nl = memchr(s, '\n', (size_t)(p->stop - s));
	if (kind == STARLING_EXPO_TYPE) {
		if (om_type(s, (size_t)(nl - s), &ev->type))
			return expo_fail(p, s, "invalid metric type \"%.*s\"", (int)(nl - s), s);
	} else if (kind == STARLING_EXPO_HELP) {
		if (om_check_help(p, s, nl))
			return -EINVAL;
		ev->text = s;
		ev->text_len = (size_t)(nl - s);
	} else {
		for (const char *q = s; q < nl; q++)
			if (!IS(*q, C_NAME))
				return expo_fail(p, q, "invalid character in unit");
		ev->text = s;
		ev->text_len = (size_t)(nl - s);
	}
	p->pos = nl + 1;
	if (p->flags & STARLING_EXPO_STRICT) {
		int rc = expo_om_meta(p, ev, f0);

		if (rc)
			return rc;
	}
	p->line++;
	return kind;
}

static int om_sample(struct starling_expo_parser *p, const char *s, struct starling_expo_event *ev)
{
	const char *n0 = s, *t0;
	double ts_s = 0;
	/* quoted UTF-8 names: the lenient scraper takes them with the
	 * Prometheus-text label scanner (blanks allowed, as Prometheus'
	 * scrape does not check them either); strict mode with OpenMetrics'
	 * own grammar (om_labels) */
	bool utf8 = p->flags & STARLING_EXPO_UTF8_NAMES;
	bool strict = p->flags & STARLING_EXPO_STRICT;

	ev->kind = STARLING_EXPO_SAMPLE;
	ev->series = n0;
	if (*s == '{' && utf8) {
		ev->name_len = 0;
		s = strict ? om_labels(p, s + 1, NULL, true) : prom_labels(p, s + 1, true);
		if (!s)
			return -EINVAL;
	} else {
		if (!IS(*s, C_NAME1)) {
			if (*s == '{')
				return expo_fail(p, s,
						 "quoted metric names need UTF-8 names enabled");
			return expo_fail(p, s, "invalid metric name");
		}
		s = skip_name(s, p->stop);
		ev->name_len = (size_t)(s - n0);
		if (*s == '{') {
			s = utf8 && !strict ? prom_labels(p, s + 1, false)
					    : om_labels(p, s + 1, NULL, false);
			if (!s)
				return -EINVAL;
		}
	}
	ev->series_len = (size_t)(s - n0);
	if (*s != ' ') {
		if (*s == '\n')
			return expo_fail(p, s, "missing value");
		return expo_fail(p, s, "unexpected character after metric name");
	}
	t0 = ++s;
	s = om_token(s);
	if (t0 == s)
		return expo_fail(p, s, "missing value (or more than one space)");
	if (expo_parse_float(t0, s, &ev->value))
		return expo_fail(p, t0, "invalid value \"%.*s\"", (int)(s - t0), t0);
	ev->has_timestamp = false;
	ev->timestamp_ms = 0;
	ev->has_exemplar = false;
	if (*s == ' ' && s[1] != '#') {
		t0 = ++s;
		s = om_token(s);
		if (t0 == s)
			return expo_fail(p, s, "trailing space (or missing timestamp)");
		if (expo_parse_real(t0, s, &ts_s))
			return expo_fail(p, t0, "invalid timestamp \"%.*s\"", (int)(s - t0), t0);
		{
			double ms = ts_s * 1000.0;

			/* int64(ts*1000) like Prometheus, clamped instead of
			 * wrapping for timestamps beyond year 292 million. */
			if (ms >= 9.2233720368547758e18)
				ev->timestamp_ms = INT64_MAX;
			else if (ms <= -9.2233720368547758e18)
				ev->timestamp_ms = INT64_MIN;
			else
				ev->timestamp_ms = (int64_t)ms;
		}
		ev->has_timestamp = true;
	}
	if (*s == ' ') {
		size_t ncp = 0;
		double ev_value, ev_ts = 0;
		const char *ex0, *ex1;
		bool has_ex_ts = false;

		/* Exemplar: " # {labels} value [timestamp]". */
		if (s[1] != '#' || s[2] != ' ')
			return expo_fail(p, s + 1, "expected \"# \" to start an exemplar");
		s += 3;
		if (*s != '{')
			return expo_fail(p, s, "expected '{' to start the exemplar labels");
		t0 = ex0 = s;
		s = om_labels(p, s + 1, &ncp, false);
		if (!s)
			return -EINVAL;
		ex1 = s;
		/* Over 128 code points breaks OpenMetrics (strict); Prometheus'
		 * scraper only drops such an exemplar (tsdb/exemplar.go
		 * ErrExemplarLabelLength), so the lenient parser passes it on
		 * and the scraper drops it. */
		if (ncp > 128 && (p->flags & STARLING_EXPO_STRICT))
			return expo_fail(
			    p, t0, "exemplar labels are %zu code points long, more than 128", ncp);
		if (*s != ' ')
			return expo_fail(p, s, "expected ' ' and a value after exemplar labels");
		t0 = ++s;
		s = om_token(s);
		if (expo_parse_float(t0, s, &ev_value))
			return expo_fail(p, t0, "invalid exemplar value \"%.*s\"", (int)(s - t0),
					 t0);
		if (*s == ' ') {
			t0 = ++s;
			s = om_token(s);
			if (expo_parse_real(t0, s, &ev_ts))
				return expo_fail(p, t0, "invalid exemplar timestamp \"%.*s\"",
						 (int)(s - t0), t0);
			has_ex_ts = true;
		}
		ev->has_exemplar = true;
		p->ex.labels = ex0;
		p->ex.labels_len = (size_t)(ex1 - ex0);
		p->ex.value = ev_value;
		p->ex.has_timestamp = has_ex_ts;
		p->ex.timestamp_ms = has_ex_ts ? (int64_t)(ev_ts * 1000.0) : 0;
		ev->exemplars = &p->ex;
		ev->n_exemplars = 1;
	}
	if (*s != '\n')
		return expo_fail(p, s, "unexpected text at end of line");
	p->pos = s + 1;
	if (p->flags & STARLING_EXPO_STRICT) {
		int rc = expo_om_sample(p, ev, ts_s);

		if (rc)
			return rc;
	}
	p->line++;
	return STARLING_EXPO_SAMPLE;
}

static int om_next(struct starling_expo_parser *p, struct starling_expo_event *ev)
{
	const char *s = p->pos;

	if ((p->flags & STARLING_EXPO_STRICT) && !p->om) {
		p->om = expo_om_new();
		if (!p->om)
			return expo_fail_at(p, 1, 1, "out of memory");
	}
	p->line_start = s;
	ev->line = p->line;
	if (s >= p->stop) {
		/* Only a final line without '\n' is left: it must be "# EOF". */
		if (p->end - s == 5 && memcmp(s, "# EOF", 5) == 0)
			return om_eof(p, s);
		if (s == p->end)
			return expo_fail(p, s, "missing # EOF at the end");
		if (p->end - s > 5 && memcmp(s, "# EOF", 5) == 0)
			return expo_fail(p, s + 5, "text after # EOF");
		return expo_fail(p, p->end, "last line must end with a newline or be # EOF");
	}
	if (*s == '#') {
		if (lit_prefix(s, "# EOF\n"))
			return om_eof(p, s);
		if (lit_prefix(s, "# EOF"))
			return expo_fail(p, s + 5, "text after # EOF");
		if (s[1] != ' ')
			return expo_fail(p, s + 1, "comments are not allowed in OpenMetrics");
		return om_meta(p, s, ev);
	}
	if (*s == '\n')
		return expo_fail(p, s, "empty line");
	return om_sample(p, s, ev);
}

int starling_expo_next(struct starling_expo_parser *p, struct starling_expo_event *ev)
{
	if (p->state == -1)
		return -EINVAL;
	if (p->state == 1)
		return STARLING_EXPO_END;
	ev->exemplars = NULL;
	ev->n_exemplars = 0;
	ev->histogram = NULL;
	if (p->fmt == STARLING_EXPO_PROTOBUF)
		return expo_proto_next(p, ev);
	if (p->fmt == STARLING_EXPO_OPENMETRICS)
		return om_next(p, ev);
	return prom_next(p, ev);
}
