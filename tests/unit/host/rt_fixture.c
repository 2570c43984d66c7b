/* Shared helpers of the runtime tests: see rt_fixture.h. */
#include "rt_fixture.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

static pthread_mutex_t jlock = PTHREAD_MUTEX_INITIALIZER;
static char journal[16384];

void note(const char *fmt, ...)
{
	va_list ap;
	size_t len;

	pthread_mutex_lock(&jlock);
	len = strlen(journal);
	va_start(ap, fmt);
	vsnprintf(journal + len, sizeof(journal) - len, fmt, ap);
	va_end(ap);
	len = strlen(journal);
	if (len + 2 <= sizeof(journal)) {
		journal[len] = ' ';
		journal[len + 1] = '\0';
	}
	pthread_mutex_unlock(&jlock);
}

void journal_reset(void)
{
	pthread_mutex_lock(&jlock);
	journal[0] = '\0';
	pthread_mutex_unlock(&jlock);
}

bool journal_empty(void)
{
	bool r;

	pthread_mutex_lock(&jlock);
	r = journal[0] == '\0';
	pthread_mutex_unlock(&jlock);
	return r;
}

long journal_pos(const char *s)
{
	const char *p;
	long r;

	pthread_mutex_lock(&jlock);
	p = strstr(journal, s);
	r = p ? (long)(p - journal) : -1;
	pthread_mutex_unlock(&jlock);
	return r;
}

bool journal_has(const char *s)
{
	return journal_pos(s) >= 0;
}

int journal_count(const char *s)
{
	int n = 0;

	pthread_mutex_lock(&jlock);
	for (const char *p = journal; (p = strstr(p, s)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&jlock);
	return n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool journal_wait(const char *s)
{
	int64_t deadline = mono_ms() + 30000; /* generous: returns once it is there */

	while (journal_pos(s) < 0) {
		struct timespec ts = {0, 1000000};

		if (mono_ms() > deadline) {
			pthread_mutex_lock(&jlock);
			fprintf(stderr, "\ntimed out waiting for \"%s\"; journal: %s\n", s,
				journal);
			pthread_mutex_unlock(&jlock);
			return false;
		}
		nanosleep(&ts, NULL);
	}
	return true;
}

struct cfg_doc *rt_doc_from(const char *text, const struct type_set *types)
{
	struct cfg_errors errs = {0};
	struct cfg_doc *d = NULL;

	CU_ASSERT_EQUAL(cfg_doc_parse_string(text, "test", &d, &errs), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(cfg_doc_validate(d, types, &errs), 0);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	cfg_errors_free(&errs);
	return d;
}

struct cluster *rt_single_node(void)
{
	struct cluster_config cc;
	struct cluster *c = NULL;
	char err[128];

	cluster_config_defaults(&cc);
	snprintf(cc.node_name, sizeof(cc.node_name), "n1");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cc, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(c, err, sizeof(err)), 0);
	return c;
}
