/*
 * `starling check-metrics [--format auto|prometheus|openmetrics|protobuf] [--lenient]
 *                         [--metric-name-validation-scheme legacy|utf8] [FILE|-]`
 *
 * Runs the SDK exposition parser over a document. OpenMetrics is checked in
 * strict mode (the whole specification) unless --lenient asks for the rules
 * the scraper applies; every sample's label set is also parsed, so
 * duplicate label names and invalid UTF-8 are reported as a scrape would
 * reject them. `--metric-name-validation-scheme utf8` takes quoted UTF-8
 * names (`{"my.metric","utf-8.label"="v"}`) as prometheus.scrape does with
 * the argument of that name (in strict OpenMetrics with OpenMetrics'
 * grammar: no blanks inside the braces).
 */
#include "check_metrics.h"

#include <starling/expo.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: starling check-metrics [--format auto|prometheus|openmetrics|protobuf] "
		   "[--lenient]\n"
		   "                              [--metric-name-validation-scheme legacy|utf8] "
		   "[FILE|-]\n"
		   "  Exit 0 when the exposition is valid, 1 with LINE:COL: message for the\n"
		   "  first error, 2 on usage or I/O errors. auto = OpenMetrics when the\n"
		   "  document ends with a \"# EOF\" line, else Prometheus text 0.0.4.\n"
		   "  utf8 takes quoted UTF-8 metric and label names, as prometheus.scrape\n"
		   "  with metric_name_validation_scheme = \"utf8\" (default legacy).\n");
}

/* Read all of f; returns 0 or -errno. */
static int read_all(FILE *f, char **out, size_t *out_len)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	errno = 0;
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb;

			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				int err = errno ? errno : EIO;

				free(buf);
				return -err;
			}
			break;
		}
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* The parser's message, with a hint when a quoted name needs utf8. */
static void print_error(unsigned line, unsigned col, const char *msg, bool utf8)
{
	fprintf(stderr, "%u:%u: %s%s\n", line, col, msg,
		!utf8 && strstr(msg, "need UTF-8 names enabled")
		    ? " (--metric-name-validation-scheme utf8)"
		    : "");
}

static int check(const char *name, const char *buf, size_t len, enum starling_expo_format fmt,
		 bool lenient, bool utf8)
{
	unsigned flags =
	    (lenient ? 0 : STARLING_EXPO_STRICT) | (utf8 ? STARLING_EXPO_UTF8_NAMES : 0);
	size_t native = 0;
	struct starling_expo_parser *p;

	if (fmt == STARLING_EXPO_PROTOBUF)
		flags |= STARLING_EXPO_NATIVE_HISTOGRAMS | STARLING_EXPO_CLASSIC_HISTOGRAMS;
	p = starling_expo_parser_new(fmt, flags);
	struct starling_expo_event ev;
	struct starling_lset ls;
	size_t samples = 0, meta = 0;
	int rc, ret = 0;

	if (!p) {
		fprintf(stderr, "check-metrics: out of memory\n");
		return 2;
	}
	starling_lset_init(&ls);
	starling_expo_reset(p, buf, len);
	while ((rc = starling_expo_next(p, &ev)) > 0) {
		const char *err = NULL;
		int lrc;

		if (rc != STARLING_EXPO_SAMPLE && rc != STARLING_EXPO_HISTOGRAM) {
			meta++;
			continue;
		}
		if (rc == STARLING_EXPO_HISTOGRAM)
			native++;
		else
			samples++;
		for (size_t i = 0; i < ev.n_exemplars; i++) {
			if (starling_expo_exemplar_labels(ev.exemplars[i].labels,
							  ev.exemplars[i].labels_len, &ls, &err)) {
				fprintf(stderr, "%u:1: exemplar: %s\n", ev.line, err);
				ret = 1;
				goto out;
			}
		}
		lrc = starling_expo_series_labels_flags(ev.series, ev.series_len, flags, &ls, &err);
		if (lrc == -ENOMEM) {
			fprintf(stderr, "check-metrics: out of memory\n");
			ret = 2;
			goto out;
		}
		if (lrc == -EILSEQ) {
			fprintf(
			    stderr,
			    "%u:1: warning: NUL byte in a label value (valid; the scraper keeps "
			    "the exact bytes, sinks that read C strings see the value cut at "
			    "the NUL)\n",
			    ev.line);
			continue;
		}
		if (lrc) {
			/* Column of the series start (after any leading blanks). */
			const char *ls0 = ev.series;

			while (ls0 > buf && ls0[-1] != '\n')
				ls0--;
			print_error(ev.line, (unsigned)(ev.series - ls0) + 1, err, utf8);
			ret = 1;
			goto out;
		}
	}
	if (rc < 0) {
		struct starling_expo_error e = starling_expo_error(p);

		print_error(e.line, e.col, e.msg, utf8);
		ret = 1;
		goto out;
	}
	if (fmt == STARLING_EXPO_PROTOBUF) {
		printf("%s: valid protobuf exposition: %zu samples, %zu native histograms, %zu "
		       "metadata entries\n",
		       name, samples, native, meta);
		goto out;
	}
	printf("%s: valid %s%s: %zu samples, %zu metadata lines\n", name,
	       fmt == STARLING_EXPO_OPENMETRICS ? "OpenMetrics 1.0" : "Prometheus text 0.0.4",
	       fmt == STARLING_EXPO_OPENMETRICS && lenient ? " (lenient)" : "", samples, meta);
out:
	starling_lset_free(&ls);
	starling_expo_parser_free(p);
	return ret;
}

int cmd_check_metrics(int argc, char **argv)
{
	const char *format = "auto", *path = NULL;
	enum starling_expo_format fmt;
	bool lenient = false, utf8 = false;
	const char *scheme = "legacy";
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--format") == 0) {
			if (++i >= argc) {
				usage(stderr);
				return 2;
			}
			format = argv[i];
		} else if (strncmp(a, "--format=", 9) == 0) {
			format = a + 9;
		} else if (strcmp(a, "--lenient") == 0) {
			lenient = true;
		} else if (strcmp(a, "--metric-name-validation-scheme") == 0) {
			if (++i >= argc) {
				usage(stderr);
				return 2;
			}
			scheme = argv[i];
		} else if (strncmp(a, "--metric-name-validation-scheme=", 32) == 0) {
			scheme = a + 32;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "check-metrics: unknown option %s\n", a);
			usage(stderr);
			return 2;
		} else if (path) {
			fprintf(stderr, "check-metrics: more than one file given\n");
			usage(stderr);
			return 2;
		} else {
			path = a;
		}
	}
	if (strcmp(format, "auto") != 0 && strcmp(format, "prometheus") != 0 &&
	    strcmp(format, "openmetrics") != 0 && strcmp(format, "protobuf") != 0) {
		fprintf(stderr,
			"check-metrics: unknown format \"%s\" (auto, prometheus, openmetrics, "
			"protobuf)\n",
			format);
		return 2;
	}
	if (strcmp(scheme, "utf8") == 0) {
		utf8 = true;
	} else if (strcmp(scheme, "legacy") != 0) {
		fprintf(stderr,
			"check-metrics: unknown metric name validation scheme \"%s\" (legacy, "
			"utf8)\n",
			scheme);
		return 2;
	}
	if (!path || strcmp(path, "-") == 0) {
		path = "-";
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (!f) {
			fprintf(stderr, "check-metrics: %s: %s\n", path, strerror(errno));
			return 2;
		}
	}
	rc = read_all(f, &buf, &len);
	if (f != stdin)
		fclose(f);
	if (rc) {
		fprintf(stderr, "check-metrics: %s: %s\n", path, strerror(-rc));
		return 2;
	}
	if (strcmp(format, "prometheus") == 0)
		fmt = STARLING_EXPO_PROMETHEUS;
	else if (strcmp(format, "openmetrics") == 0)
		fmt = STARLING_EXPO_OPENMETRICS;
	else if (strcmp(format, "protobuf") == 0)
		fmt = STARLING_EXPO_PROTOBUF;
	else
		fmt = starling_expo_detect(buf, len);
	rc = check(path, buf, len, fmt, lenient, utf8);
	free(buf);
	return rc;
}
