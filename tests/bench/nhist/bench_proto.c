/* Protobuf vs text parse throughput on the same registry (not a test; run
 * tests/bench/nhist/run). For each file: parse it whole, repeatedly, for at
 * least 0.3 s, 5 times, and report the best pass in MB/s and samples/s
 * (a native histogram counts as one sample, as in Prometheus). The series
 * text of every sample is also hashed (what the scrape cache does per
 * sample), and series_labels() runs once per distinct series on the first
 * pass only (cache misses).
 *
 *   bench_proto FORMAT FILE [FORMAT FILE...]   FORMAT: protobuf|openmetrics|prometheus */
#include <starling/expo.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static long pass(struct starling_expo_parser *p, const char *b, size_t len, uint64_t *sink)
{
	struct starling_expo_event ev;
	long n = 0;
	int rc;

	starling_expo_reset(p, b, len);
	while ((rc = starling_expo_next(p, &ev)) > 0) {
		if (rc != STARLING_EXPO_SAMPLE && rc != STARLING_EXPO_HISTOGRAM)
			continue;
		*sink ^= XXH3_64bits(ev.series, ev.series_len);
		n++;
	}
	return rc < 0 ? -1 : n;
}

int main(int argc, char **argv)
{
	uint64_t sink = 0;

	for (int a = 1; a + 1 < argc; a += 2) {
		enum starling_expo_format fmt =
		    !strcmp(argv[a], "protobuf")      ? STARLING_EXPO_PROTOBUF
		    : !strcmp(argv[a], "openmetrics") ? STARLING_EXPO_OPENMETRICS
						      : STARLING_EXPO_PROMETHEUS;
		struct starling_expo_parser *p =
		    starling_expo_parser_new(fmt, STARLING_EXPO_NATIVE_HISTOGRAMS);
		size_t len;
		char *b = slurp(argv[a + 1], &len);
		double best = 1e9;
		long n = 0;

		if (!b || !p) {
			fprintf(stderr, "cannot read %s\n", argv[a + 1]);
			return 1;
		}
		n = pass(p, b, len, &sink);
		if (n < 0) {
			fprintf(stderr, "%s: parse error: %s\n", argv[a + 1],
				starling_expo_error(p).msg);
			return 1;
		}
		for (int r = 0; r < 5; r++) {
			double t0 = now_s(), t;
			long iters = 0;

			do {
				pass(p, b, len, &sink);
				iters++;
				t = now_s() - t0;
			} while (t < 0.3);
			if (t / (double)iters < best)
				best = t / (double)iters;
		}
		printf("%-12s %-28s %9zu bytes %7ld samples %8.1f MB/s %7.2f M samples/s\n",
		       argv[a], argv[a + 1], len, n, (double)len / best / 1e6,
		       (double)n / best / 1e6);
		starling_expo_parser_free(p);
		free(b);
	}
	return sink == 42; /* keep the hashing */
}
