/*
 * logfmt logger. Identical (level, component, message) lines repeated within
 * LOG_REPEAT_WINDOW_MS are suppressed; the next line printed after the window
 * carries repeated=N so an operator still sees how often it happened.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <xxhash.h>

#define LOG_REPEAT_WINDOW_MS 10000
#define LOG_SLOTS	     64

struct log_slot {
	uint64_t hash;
	int64_t first_ms; /* start of the current window */
	unsigned long suppressed;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum starling_log_level log_level = STARLING_LOG_INFO;
static struct log_slot log_slots[LOG_SLOTS];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *s, enum starling_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum starling_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = STARLING_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_set_level(enum starling_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum starling_log_level log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Quote a logfmt value: escape backslash, quote and control characters. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20) {
			fprintf(f, "\\x%02x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

void log_vmsg(enum starling_log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[2048];
	char ts[40];
	struct timespec now;
	struct tm tm;
	uint64_t h;
	struct log_slot *slot;
	unsigned long repeated = 0;
	int64_t t;

	if ((int)level > (int)log_get_level())
		return;
	if ((int)level < 0 || (int)level > 3)
		level = STARLING_LOG_ERROR;
	vsnprintf(msg, sizeof(msg), fmt, ap);

	h = XXH3_64bits(msg, strlen(msg)) ^ ((uint64_t)level << 56);
	if (component)
		h ^= XXH3_64bits(component, strlen(component)) * 31;
	t = mono_ms();

	pthread_mutex_lock(&log_lock);
	slot = &log_slots[h % LOG_SLOTS];
	if (slot->hash == h && t - slot->first_ms < LOG_REPEAT_WINDOW_MS) {
		slot->suppressed++;
		pthread_mutex_unlock(&log_lock);
		return;
	}
	if (slot->hash == h)
		repeated = slot->suppressed;
	slot->hash = h;
	slot->first_ms = t;
	slot->suppressed = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write() per line: a line never interleaves with another thread's
	 * or with the fatal-signal handler's (host/crash.c). */
	{
		char *line = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&line, &len);

		if (f) {
			fprintf(f, "ts=%s.%03ldZ level=%s", ts, now.tv_nsec / 1000000,
				level_names[level]);
			if (component) {
				fputs(" component=", f);
				put_quoted(f, component);
			}
			fputs(" msg=", f);
			put_quoted(f, msg);
			if (repeated)
				fprintf(f, " repeated=%lu", repeated);
			fputc('\n', f);
			if (fclose(f) == 0 && line)
				fwrite(line, 1, len, stderr);
			free(line);
		}
	}
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum starling_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}
