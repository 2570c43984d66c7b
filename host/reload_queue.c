/*
 * The reload queue (reload_queue.h): a runner thread that runs reloads one
 * at a time, and a deadline thread that answers requests whose bound passed
 * while their run is still waiting or in progress. A request sits in one of
 * two lists, `next` (for the next run) or `current` (the run in progress);
 * whoever unlinks it under the lock answers it, so it is answered once.
 */
#include "reload_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct reload_req {
	struct reload_req *next;
	reload_done_fn done;
	void *arg;
	int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */
};

struct reload_queue {
	pthread_mutex_t lock;
	pthread_cond_t wake_runner;
	pthread_cond_t wake_deadlines;
	struct reload_req *next;    /* answered by the next run */
	struct reload_req *current; /* answered by the run in progress */
	bool want;		    /* a run was asked for */
	bool stop;
	reload_run_fn run;
	void *arg;
	pthread_t runner, deadlines;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer_all(struct reload_req *list, int result, const char *msg)
{
	while (list) {
		struct reload_req *n = list->next;

		if (list->done)
			list->done(list->arg, result, msg);
		free(list);
		list = n;
	}
}

static void *runner_main(void *arg)
{
	struct reload_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct reload_req *done;
		char *msg = NULL;
		int r;

		while (!q->want && !q->stop)
			pthread_cond_wait(&q->wake_runner, &q->lock);
		if (q->stop)
			break;
		q->want = false;
		q->current = q->next;
		q->next = NULL;
		pthread_mutex_unlock(&q->lock);

		r = q->run(q->arg, &msg);

		pthread_mutex_lock(&q->lock);
		done = q->current;
		q->current = NULL;
		pthread_mutex_unlock(&q->lock);
		answer_all(done, r, msg);
		free(msg);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Unlinks the requests of *list whose deadline is at or before now onto
 * *expired; returns the earliest remaining deadline (or INT64_MAX). */
static int64_t take_expired(struct reload_req **list, int64_t now, struct reload_req **expired)
{
	int64_t earliest = INT64_MAX;

	while (*list) {
		struct reload_req *r = *list;

		if (r->deadline_ms && r->deadline_ms <= now) {
			*list = r->next;
			r->next = *expired;
			*expired = r;
			continue;
		}
		if (r->deadline_ms && r->deadline_ms < earliest)
			earliest = r->deadline_ms;
		list = &r->next;
	}
	return earliest;
}

static void *deadlines_main(void *arg)
{
	struct reload_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		struct reload_req *expired = NULL;
		int64_t now = mono_ms(), a, b, earliest;

		a = take_expired(&q->next, now, &expired);
		b = take_expired(&q->current, now, &expired);
		earliest = a < b ? a : b;
		if (expired) {
			pthread_mutex_unlock(&q->lock);
			answer_all(expired, -ETIMEDOUT, NULL);
			pthread_mutex_lock(&q->lock);
			continue;
		}
		if (earliest == INT64_MAX) {
			pthread_cond_wait(&q->wake_deadlines, &q->lock);
		} else {
			struct timespec ts = {.tv_sec = earliest / 1000,
					      .tv_nsec = (earliest % 1000) * 1000000L};

			pthread_cond_timedwait(&q->wake_deadlines, &q->lock, &ts);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int reload_queue_start(struct reload_queue **out, reload_run_fn run, void *arg)
{
	struct reload_queue *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q)
		return -ENOMEM;
	q->run = run;
	q->arg = arg;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake_runner, NULL);
	pthread_cond_init(&q->wake_deadlines, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&q->runner, NULL, runner_main, q)) {
		free(q);
		return -EAGAIN;
	}
	if (pthread_create(&q->deadlines, NULL, deadlines_main, q)) {
		pthread_mutex_lock(&q->lock);
		q->stop = true;
		pthread_cond_signal(&q->wake_runner);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->runner, NULL);
		free(q);
		return -EAGAIN;
	}
	*out = q;
	return 0;
}

int reload_queue_submit(struct reload_queue *q, int64_t timeout_ms, reload_done_fn done, void *arg)
{
	struct reload_req *r;

	if (!q)
		return -ECANCELED;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->done = done;
	r->arg = arg;
	if (timeout_ms > 0)
		r->deadline_ms = mono_ms() + timeout_ms;
	pthread_mutex_lock(&q->lock);
	if (q->stop) {
		pthread_mutex_unlock(&q->lock);
		free(r);
		return -ECANCELED;
	}
	r->next = q->next;
	q->next = r;
	q->want = true;
	pthread_cond_signal(&q->wake_runner);
	if (r->deadline_ms)
		pthread_cond_signal(&q->wake_deadlines);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int result;
	char *msg;
};

static void sync_done(void *arg, int result, const char *msg)
{
	struct sync_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->result = result;
	w->msg = msg ? strdup(msg) : NULL;
	w->done = true;
	pthread_cond_signal(&w->cond);
	/* the waiter may free w as soon as the lock is released */
	pthread_mutex_unlock(&w->lock);
}

int reload_queue_run(struct reload_queue *q, int64_t timeout_ms, char **msg)
{
	struct sync_wait w = {.done = false};
	int r;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	r = reload_queue_submit(q, timeout_ms, sync_done, &w);
	if (!r) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		r = w.result;
		if (msg)
			*msg = w.msg;
		else
			free(w.msg);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return r;
}

void reload_queue_stop(struct reload_queue *q)
{
	struct reload_req *left;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->wake_runner);
	pthread_cond_signal(&q->wake_deadlines);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->runner, NULL); /* a run in progress answers its own */
	pthread_join(q->deadlines, NULL);
	left = q->next;
	q->next = NULL;
	answer_all(left, -ECANCELED, NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->wake_runner);
	pthread_cond_destroy(&q->wake_deadlines);
	free(q);
}
