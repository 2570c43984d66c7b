/*
 * The component runtime's timers (a min-heap on the monotonic clock, one
 * timer thread) and its worker pool, which runs timer callbacks and
 * work_submit jobs. Locking: see runtime_internal.h.
 */
#include "runtime_internal.h"

#include <errno.h>
#include <stdlib.h>

/* ---- timer heap (rt->tlock held) ---------------------------------------- */

static void heap_swap(struct runtime *rt, size_t a, size_t b)
{
	struct starling_timer *t = rt->heap[a];

	rt->heap[a] = rt->heap[b];
	rt->heap[b] = t;
	rt->heap[a]->heap_idx = a;
	rt->heap[b]->heap_idx = b;
}

static void heap_up(struct runtime *rt, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (rt->heap[p]->due_ms <= rt->heap[i]->due_ms)
			break;
		heap_swap(rt, i, p);
		i = p;
	}
}

static void heap_down(struct runtime *rt, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < rt->heap_len && rt->heap[l]->due_ms < rt->heap[m]->due_ms)
			m = l;
		if (r < rt->heap_len && rt->heap[r]->due_ms < rt->heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(rt, i, m);
		i = m;
	}
}

static int heap_push(struct runtime *rt, struct starling_timer *t)
{
	if (rt->heap_len == rt->heap_cap) {
		size_t cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
		struct starling_timer **nh = realloc(rt->heap, cap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		rt->heap = nh;
		rt->heap_cap = cap;
	}
	t->heap_idx = rt->heap_len;
	rt->heap[rt->heap_len++] = t;
	t->in_heap = true;
	heap_up(rt, t->heap_idx);
	return 0;
}

static void heap_remove(struct runtime *rt, struct starling_timer *t)
{
	size_t i = t->heap_idx;

	if (!t->in_heap)
		return;
	t->in_heap = false;
	rt->heap_len--;
	if (i == rt->heap_len)
		return;
	rt->heap[i] = rt->heap[rt->heap_len];
	rt->heap[i]->heap_idx = i;
	heap_down(rt, i);
	heap_up(rt, i);
}

static void enqueue_job(struct runtime *rt, struct job *j)
{
	j->next = NULL;
	if (rt->jobs_tail)
		rt->jobs_tail->next = j;
	else
		rt->jobs_head = j;
	rt->jobs_tail = j;
	pthread_cond_signal(&rt->jcond);
}

int64_t runtime_clock_step_ms;

void runtime_clock_step(struct runtime *rt, int64_t ms)
{
	__atomic_add_fetch(&runtime_clock_step_ms, ms, __ATOMIC_RELAXED);
	pthread_mutex_lock(&rt->tlock);
	pthread_cond_broadcast(&rt->tcond);
	pthread_mutex_unlock(&rt->tlock);
}

void *timer_main(void *arg)
{
	struct runtime *rt = arg;

	pthread_mutex_lock(&rt->tlock);
	while (!rt->quit) {
		struct starling_timer *t;
		int64_t now = mono_ms();
		struct job *j;

		if (!rt->heap_len) {
			pthread_cond_wait(&rt->tcond, &rt->tlock);
			continue;
		}
		t = rt->heap[0];
		if (t->due_ms > now) {
			struct timespec ts;
			int64_t wait = t->due_ms - now;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&rt->tcond, &rt->tlock, &ts);
			continue;
		}
		heap_remove(rt, t);
		j = calloc(1, sizeof(*j));
		if (!j) {
			/* Try again shortly rather than lose the timer. */
			t->due_ms = now + 100;
			heap_push(rt, t);
			continue;
		}
		j->timer = t;
		t->queued = true;
		t->owner->queued_jobs++;
		enqueue_job(rt, j);
	}
	pthread_mutex_unlock(&rt->tlock);
	return NULL;
}

static void run_timer(struct runtime *rt, struct starling_timer *t)
{
	struct starling_component *c = t->owner;
	bool run, free_it = false;
	int64_t t0;

	/* Take the instance's callback lock before marking the timer running,
	 * so a callback of the same instance may cancel it without waiting. */
	pthread_mutex_lock(&c->cb_lock);
	pthread_mutex_lock(&rt->tlock);
	t->queued = false;
	run = !t->cancelled && !__atomic_load_n(&c->stopping, __ATOMIC_ACQUIRE);
	if (run) {
		t->running = true;
		t->runner = pthread_self();
	} else {
		free_it = t->free_pending;
	}
	pthread_mutex_unlock(&rt->tlock);

	if (run) {
		t0 = mono_ns();
		CB_RUN(c, t->internal ? "cluster_change" : "timer", t->fn(t->arg));
		if (!t->own_stats)
			stat_add(c, t->internal ? CB_CLUSTER : CB_TIMER, t0, 0);
		pthread_mutex_lock(&rt->tlock);
		t->running = false;
		if (t->free_pending) {
			free_it = true;
		} else if (t->period_ms > 0 && !t->cancelled) {
			int64_t now = mono_ms();

			t->due_ms += t->period_ms;
			if (t->due_ms <= now) /* fell behind: skip missed runs, keep phase */
				t->due_ms += ((now - t->due_ms) / t->period_ms + 1) * t->period_ms;
			if (heap_push(rt, t) == 0)
				pthread_cond_signal(&rt->tcond);
		}
		pthread_mutex_unlock(&rt->tlock);
	}
	pthread_mutex_unlock(&c->cb_lock);

	/* Only now may the instance be freed (inst_free waits for this). */
	pthread_mutex_lock(&rt->tlock);
	c->queued_jobs--;
	pthread_cond_broadcast(&rt->done);
	pthread_mutex_unlock(&rt->tlock);
	if (free_it)
		free(t);
}

void *worker_main(void *arg)
{
	struct runtime *rt = arg;

	pthread_mutex_lock(&rt->tlock);
	for (;;) {
		struct job *j;

		while (!rt->jobs_head && !rt->quit)
			pthread_cond_wait(&rt->jcond, &rt->tlock);
		if (!rt->jobs_head && rt->quit)
			break;
		j = rt->jobs_head;
		rt->jobs_head = j->next;
		if (!rt->jobs_head)
			rt->jobs_tail = NULL;
		pthread_mutex_unlock(&rt->tlock);
		if (j->timer)
			run_timer(rt, j->timer);
		else
			j->fn(j->arg);
		pthread_mutex_lock(&rt->tlock);
		if (j->owner && --j->owner->work_jobs == 0)
			pthread_cond_broadcast(&rt->done);
		free(j);
	}
	pthread_mutex_unlock(&rt->tlock);
	return NULL;
}

struct starling_timer *timer_new(struct starling_component *c, int64_t first_ms, int64_t period_ms,
				 starling_timer_fn fn, void *arg, bool internal, bool arm)
{
	struct runtime *rt = c->rt;
	struct starling_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->rt = rt;
	t->owner = c;
	t->fn = fn;
	t->arg = arg;
	t->internal = internal;
	t->period_ms = period_ms > 0 ? period_ms : 0;
	pthread_mutex_lock(&rt->tlock);
	t->due_ms = mono_ms() + (first_ms > 0 ? first_ms : 0);
	t->next_in_owner = c->timers;
	c->timers = t;
	if (arm && heap_push(rt, t)) {
		c->timers = t->next_in_owner;
		pthread_mutex_unlock(&rt->tlock);
		free(t);
		return NULL;
	}
	pthread_cond_signal(&rt->tcond);
	pthread_mutex_unlock(&rt->tlock);
	return t;
}

/* Re-arm an internal one-shot timer (rt->tlock held). */
void timer_rearm_locked(struct starling_timer *t, int64_t delay_ms)
{
	struct runtime *rt = t->rt;

	if (t->cancelled || t->in_heap || t->queued)
		return;
	t->due_ms = mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	if (heap_push(rt, t) == 0)
		pthread_cond_signal(&rt->tcond);
}

/* Mark cancelled and wait for a run in progress (unless it is us). */
static void timer_cancel_wait_locked(struct runtime *rt, struct starling_timer *t)
{
	t->cancelled = true;
	heap_remove(rt, t);
	while (t->running && !pthread_equal(t->runner, pthread_self()))
		pthread_cond_wait(&rt->done, &rt->tlock);
}

void api_timer_cancel(starling_component *c, starling_timer *t)
{
	struct runtime *rt;
	struct starling_timer **pp;

	if (!c || !t)
		return;
	rt = c->rt;
	pthread_mutex_lock(&rt->tlock);
	timer_cancel_wait_locked(rt, t);
	for (pp = &c->timers; *pp; pp = &(*pp)->next_in_owner) {
		if (*pp == t) {
			*pp = t->next_in_owner;
			break;
		}
	}
	if (t->queued || t->running) {
		t->free_pending = true;
		pthread_mutex_unlock(&rt->tlock);
		return;
	}
	pthread_mutex_unlock(&rt->tlock);
	free(t);
}

/* At stop: cancel every timer of c and wait for running ones. The handles
 * stay valid (a plugin may still cancel them in stop()) until free. */
void timers_cancel_all(struct starling_component *c)
{
	struct runtime *rt = c->rt;

	pthread_mutex_lock(&rt->tlock);
	for (struct starling_timer *t = c->timers; t; t = t->next_in_owner)
		timer_cancel_wait_locked(rt, t);
	pthread_mutex_unlock(&rt->tlock);
}

void timers_free_all(struct starling_component *c)
{
	struct runtime *rt = c->rt;
	struct starling_timer *t, *next;

	pthread_mutex_lock(&rt->tlock);
	for (t = c->timers; t; t = next) {
		next = t->next_in_owner;
		timer_cancel_wait_locked(rt, t);
		if (t->queued)
			t->free_pending = true;
		else
			free(t);
	}
	c->timers = NULL;
	c->sub_timer = NULL;
	c->targets_timer = NULL;
	pthread_mutex_unlock(&rt->tlock);
}

starling_timer *api_timer_start(starling_component *c, int64_t first_ms, int64_t period_ms,
				starling_timer_fn fn, void *arg)
{
	if (!c || !fn)
		return NULL;
	return timer_new(c, first_ms, period_ms, fn, arg, false, true);
}

int api_work_submit(starling_component *c, starling_timer_fn fn, void *arg)
{
	struct runtime *rt;
	struct job *j;

	if (!c || !fn)
		return -EINVAL;
	rt = c->rt;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->owner = c;
	pthread_mutex_lock(&rt->tlock);
	if (rt->quit) {
		pthread_mutex_unlock(&rt->tlock);
		free(j);
		return -ESHUTDOWN;
	}
	c->work_jobs++;
	enqueue_job(rt, j);
	pthread_mutex_unlock(&rt->tlock);
	return 0;
}
