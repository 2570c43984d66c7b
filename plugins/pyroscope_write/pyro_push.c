/*
 * Pyroscope push API, the request side (grafana/pyroscope
 * api/push/v1/push.proto, Connect unary over HTTP):
 *
 *   PushRequest      { repeated RawProfileSeries series = 1; }
 *   RawProfileSeries { repeated LabelPair labels = 1; repeated RawSample samples = 2; }
 *   LabelPair        { string name = 1; string value = 2; }
 *   RawSample        { bytes raw_profile = 1; string ID = 2; }
 *
 * Encoded by hand: four length-delimited messages are simpler to write than
 * to generate, and the raw profile is copied exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pyro_write.h"

#define MAX_LABELS 256

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Tag byte + length + payload of a length-delimited field. */
static size_t field_len(size_t payload)
{
	return 1 + varint_len(payload) + payload;
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *s, size_t n)
{
	*p++ = (uint8_t)(field << 3 | 2);
	p = put_varint(p, n);
	if (n)
		memcpy(p, s, n);
	return p + n;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_label *)a)->name,
		      ((const struct starling_label *)b)->name);
}

static bool forwarded(const char *name)
{
	return strncmp(name, "__", 2) != 0 || strcmp(name, "__name__") == 0 ||
	       strcmp(name, "__delta__") == 0;
}

int pyro_push_encode(const struct starling_label *labels, size_t n,
		     const struct starling_label *ext, size_t n_ext, const uint8_t *data,
		     size_t len, const char *id, size_t headroom, uint8_t **out, size_t *out_len)
{
	struct starling_label *set;
	size_t k = 0, series = 0, sample, total, idlen = id ? strlen(id) : 0;
	uint8_t *buf, *p;

	*out = NULL;
	*out_len = 0;
	if (n + n_ext > MAX_LABELS)
		return -E2BIG;
	set = calloc(n + n_ext + 1, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < n_ext; i++)
		if (ext[i].value && ext[i].value[0])
			set[k++] = ext[i];
	for (size_t i = 0; i < n; i++) {
		bool shadowed = false;

		if (!labels[i].value || !labels[i].value[0] || !forwarded(labels[i].name))
			continue;
		for (size_t j = 0; j < n_ext && !shadowed; j++)
			shadowed = strcmp(ext[j].name, labels[i].name) == 0;
		if (!shadowed)
			set[k++] = labels[i];
	}
	qsort(set, k, sizeof(*set), label_cmp);

	for (size_t i = 0; i < k; i++)
		series +=
		    field_len(field_len(strlen(set[i].name)) + field_len(strlen(set[i].value)));
	sample = field_len(len) + (idlen ? field_len(idlen) : 0);
	series += field_len(sample);
	total = field_len(series);

	buf = malloc(headroom + total);
	if (!buf) {
		free(set);
		return -ENOMEM;
	}
	p = buf + headroom;
	*p++ = 1 << 3 | 2; /* PushRequest.series */
	p = put_varint(p, series);
	for (size_t i = 0; i < k; i++) {
		size_t nl = strlen(set[i].name), vl = strlen(set[i].value);

		*p++ = 1 << 3 | 2; /* RawProfileSeries.labels */
		p = put_varint(p, field_len(nl) + field_len(vl));
		p = put_bytes(p, 1, set[i].name, nl);
		p = put_bytes(p, 2, set[i].value, vl);
	}
	*p++ = 2 << 3 | 2; /* RawProfileSeries.samples */
	p = put_varint(p, sample);
	p = put_bytes(p, 1, data, len);
	if (idlen)
		p = put_bytes(p, 2, id, idlen);
	free(set);
	*out = buf;
	*out_len = (size_t)(p - buf) - headroom;
	return 0;
}

/* The "code" of a Connect error body, copied into code (empty if none). */
static void connect_code(const uint8_t *body, size_t len, char *code, size_t cap)
{
	const char *s = (const char *)body, *end = s + len, *q;
	size_t i = 0;

	code[0] = '\0';
	q = memmem(s, len, "\"code\"", 6);
	if (!q)
		return;
	q += 6;
	while (q < end && (*q == ' ' || *q == ':' || *q == '\t' || *q == '\n'))
		q++;
	if (q >= end || *q != '"')
		return;
	for (q++; q < end && *q != '"' && i + 1 < cap; q++)
		code[i++] = *q;
	code[i] = '\0';
}

enum pyro_outcome pyro_classify(int error, long status, const char *content_type,
				const uint8_t *body, size_t len)
{
	/* Alloy's shouldRetry (internal/component/pyroscope/write/write.go). */
	static const char *const retryable[] = {
	    "deadline_exceeded", "unknown", "resource_exhausted", "internal", "unavailable",
	    "data_loss",	 "aborted"};
	char code[32];

	if (error)
		return PYRO_RETRY; /* no answer: connection refused, timeout... */
	if (status >= 200 && status <= 299)
		return PYRO_SENT;
	if (body && len && content_type && strncasecmp(content_type, "application/json", 16) == 0) {
		connect_code(body, len, code, sizeof(code));
		if (code[0]) {
			for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++)
				if (strcmp(code, retryable[i]) == 0)
					return PYRO_RETRY;
			return PYRO_DROP;
		}
	}
	/* Without a Connect error body the status decides, through
	 * connect-go's HTTP-to-code table (protocol_connect.go
	 * connectHTTPToCode): 400 invalid_argument, 401 unauthenticated, 403
	 * permission_denied, 404 unimplemented and 412 failed_precondition are
	 * final; 408 deadline_exceeded, 413/431 resource_exhausted,
	 * 429/502/503/504 unavailable and every other status (unknown, e.g.
	 * 500, 405, 409) are retried. */
	switch (status) {
	case 400:
	case 401:
	case 403:
	case 404:
	case 412:
		return PYRO_DROP;
	default:
		return PYRO_RETRY;
	}
}

int64_t pyro_backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, int64_t retry_after_ms)
{
	int64_t d = min_ms > 0 ? min_ms : 1;

	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (retry_after_ms > d)
		d = retry_after_ms;
	return d;
}
