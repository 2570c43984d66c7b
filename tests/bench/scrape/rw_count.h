/*
 * Counting what a remote-write request carries, for the benchmark sink: a
 * walk over the protobuf wire format of an (already snappy-decoded)
 * prometheus.WriteRequest that counts series, float samples, staleness
 * markers and native histograms without building any message. Field
 * numbers as in Prometheus' prompb/types.proto and remote.proto:
 * WriteRequest.timeseries = 1; TimeSeries.labels = 1, samples = 2,
 * histograms = 4; Label.name = 1, value = 2; Sample.value = 1 (double).
 * A series whose __name__ starts with the given prefix counts its samples
 * in target_samples too (the targets' own series, not the scrapers'
 * synthetic up/scrape_* series). When on_target is set it is called once
 * per such sample with the sample's timestamp (Sample.timestamp = 2, ms), so
 * the sink can count samples by the time they were scraped, not by the time
 * their request arrived. Malformed input returns -1, never reads out of
 * bounds (tests/fuzz/fuzz_rw_count.c).
 */
#ifndef STARLING_BENCH_RW_COUNT_H
#define STARLING_BENCH_RW_COUNT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rw_counts {
	uint64_t series, samples, stale, histograms, target_samples;
	void (*on_target)(void *arg, int64_t ts_ms); /* optional */
	void *arg;
};

/* Prometheus' staleness marker (value.StaleNaN) */
#define RW_STALE_NAN_BITS 0x7ff0000000000002ULL

static inline int rw_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* Reads one field header; for length-delimited fields sets *sub and *sub_len,
 * for varints and 64-bit fields sets *fixed, skips 32-bit ones. Returns the
 * field number, or -1. */
static inline int rw_field(const uint8_t **p, const uint8_t *end, const uint8_t **sub,
			   size_t *sub_len, uint64_t *fixed)
{
	uint64_t key, v;

	if (rw_varint(p, end, &key))
		return -1;
	switch (key & 7) {
	case 0:
		if (rw_varint(p, end, &v))
			return -1;
		*fixed = v;
		break;
	case 1:
		if (end - *p < 8)
			return -1;
		memcpy(fixed, *p, 8);
		*p += 8;
		break;
	case 2:
		if (rw_varint(p, end, &v) || v > (uint64_t)(end - *p))
			return -1;
		*sub = *p;
		*sub_len = (size_t)v;
		*p += v;
		break;
	case 5:
		if (end - *p < 4)
			return -1;
		*p += 4;
		break;
	default:
		return -1;
	}
	if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return -1;
	return (int)(key >> 3);
}

/* One Sample message: its value's bits (value = 1) and timestamp (= 2). */
static inline int rw_sample(const uint8_t *q, size_t n, uint64_t *bits, uint64_t *ts)
{
	const uint8_t *qend = q + n;

	*bits = *ts = 0;
	while (q < qend) {
		const uint8_t *s = NULL;
		size_t sl = 0;
		uint64_t fx = 0;
		int g = rw_field(&q, qend, &s, &sl, &fx);

		if (g < 0)
			return -1;
		if (g == 1)
			*bits = fx;
		else if (g == 2)
			*ts = fx;
	}
	return 0;
}

static inline int rw_count_series(const uint8_t *p, size_t n, const char *prefix,
				  struct rw_counts *c)
{
	const uint8_t *end = p + n, *sub = NULL;
	size_t sub_len = 0, plen = strlen(prefix);
	uint64_t fixed = 0, samples = 0;
	int f, ours = 0;

	while (p < end) {
		if ((f = rw_field(&p, end, &sub, &sub_len, &fixed)) < 0)
			return -1;
		if (f == 1) { /* Label: is it __name__ with our prefix? */
			const uint8_t *q = sub, *qend = sub + sub_len, *name = NULL, *val = NULL;
			size_t name_len = 0, val_len = 0;
			int g;

			while (q < qend) {
				const uint8_t *s = NULL;
				size_t sl = 0;

				if ((g = rw_field(&q, qend, &s, &sl, &fixed)) < 0)
					return -1;
				if (g == 1)
					name = s, name_len = sl;
				else if (g == 2)
					val = s, val_len = sl;
			}
			if (name && name_len == 8 && !memcmp(name, "__name__", 8) && val &&
			    val_len >= plen && !memcmp(val, prefix, plen))
				ours = 1;
		} else if (f == 2) { /* Sample */
			uint64_t bits, ts;

			if (rw_sample(sub, sub_len, &bits, &ts))
				return -1;
			if (bits == RW_STALE_NAN_BITS)
				c->stale++;
			else
				samples++;
		} else if (f == 4) {
			c->histograms++;
		}
	}
	c->series++;
	c->samples += samples;
	if (ours)
		c->target_samples += samples;
	if (ours && c->on_target) /* second walk: the timestamps of the counted samples */
		for (p = end - n; p < end;) {
			uint64_t bits, ts;

			if ((f = rw_field(&p, end, &sub, &sub_len, &fixed)) < 0 ||
			    (f == 2 && rw_sample(sub, sub_len, &bits, &ts)))
				return -1; /* cannot happen: the first walk accepted it */
			if (f == 2 && bits != RW_STALE_NAN_BITS)
				c->on_target(c->arg, (int64_t)ts);
		}
	return 0;
}

/* Counts one decoded WriteRequest into *c (added to what is there). */
static inline int rw_count(const uint8_t *p, size_t n, const char *prefix, struct rw_counts *c)
{
	const uint8_t *end = p + n, *sub = NULL;
	size_t sub_len = 0;
	uint64_t fixed = 0;
	int f;

	while (p < end) {
		if ((f = rw_field(&p, end, &sub, &sub_len, &fixed)) < 0)
			return -1;
		if (f == 1 && rw_count_series(sub, sub_len, prefix, c))
			return -1;
	}
	return 0;
}

#endif
