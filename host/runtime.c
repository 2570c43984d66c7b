/*
 * Component runtime. Locking, outermost first:
 *   rt->ctl        serialises control (apply, tick, shutdown)
 *   rt->graph      rwlock: the instance list and every forward list; readers
 *                  are HTTP introspection and forward_series (glibc's default
 *                  rwlock prefers readers, so nested forwards cannot deadlock
 *                  behind a waiting writer)
 *   c->cb_lock     serialises one instance's callbacks
 *   rt->tlock      timers and the job queue
 *   c->lock        an instance's small mutable fields (health, metrics)
 * The control thread never holds a cb_lock while taking the graph write lock.
 */
#include "runtime.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#define BACKOFF_MIN_MS	      1000
#define BACKOFF_MAX_MS	      60000
#define SUBSCRIBE_DEBOUNCE_MS 1000
#define MAX_OWNERS	      16

enum inst_state {
	INST_NEW = 0, /* not created */
	INST_CREATED,
	INST_RUNNING,
	INST_STOPPED,
	INST_FAILED, /* create/start failed, waiting for retry */
};

static const char *const state_names[] = {"new", "created", "running", "stopped", "failed"};

enum cb_kind {
	CB_CREATE,
	CB_UPDATE,
	CB_START,
	CB_STOP,
	CB_DESTROY,
	CB_RECEIVE_SERIES,
	CB_RECEIVE_PROFILE,
	CB_TIMER,
	CB_LIST_TARGETS,
	CB_CLUSTER,
	CB_N
};

static const char *const cb_names[CB_N] = {
    "create",	      "update",		 "start", "stop",	  "destroy",
    "receive_series", "receive_profile", "timer", "list_targets", "cluster_change",
};

struct cb_stats {
	uint64_t calls;
	uint64_t errors;
	uint64_t nanos;
};

struct starling_metric {
	struct starling_metric *next;
	enum starling_self_metric_type type;
	char *name;
	char *help;
	char *labels;  /* already formatted: k="v",k2="v2" or "" */
	uint64_t bits; /* double, updated atomically */
};

struct starling_timer {
	struct runtime *rt;
	struct starling_component *owner;
	struct starling_timer *next_in_owner;
	starling_timer_fn fn;
	void *arg;
	int64_t due_ms; /* monotonic */
	int64_t period_ms;
	size_t heap_idx;
	bool in_heap;
	bool queued;
	bool running;
	bool cancelled;
	bool free_pending; /* free when the worker is done with it */
	bool internal;	   /* host-owned (cluster debounce) */
	pthread_t runner;
};

struct starling_component {
	struct runtime *rt;
	char *id;
	char *type_name;
	const struct starling_component_type *type;
	uint32_t built_minor; /* of the type's plugin: which host table it gets */
	struct cfg_doc *doc;
	const struct starling_config *cfg;
	char *canon;
	void *inst;
	bool created; /* create() succeeded, destroy() not yet called */
	enum inst_state state;
	bool stopping;
	pthread_mutex_t cb_lock;
	pthread_mutex_t lock;
	bool healthy;
	bool recv_failed; /* unhealthy because a receive failed (host-set) */
	char *health_msg;
	size_t owned, total;
	struct starling_component **fwd;
	size_t n_fwd;
	struct starling_metric *metrics;
	struct starling_timer *timers;
	char *state_path;
	starling_cluster_change_fn sub_fn;
	void *sub_arg;
	int64_t sub_last_ms;
	bool sub_pending;
	struct starling_timer *sub_timer;
	struct cb_stats stats[CB_N];
	unsigned failures;
	int64_t next_retry_ms;
	unsigned queued_jobs; /* timer jobs in the queue or running (tlock) */
	unsigned work_jobs;   /* work_submit jobs queued or running (tlock) */
	/* Reentrant types: receives hold it shared, update/stop exclusive. */
	pthread_rwlock_t recv_lock;
};

struct job {
	struct job *next;
	struct starling_timer *timer; /* or: */
	starling_timer_fn fn;
	void *arg;
	struct starling_component *owner; /* of a work_submit job */
};

struct runtime {
	struct cluster *cluster;
	char *state_dir;
	pthread_mutex_t ctl;
	pthread_rwlock_t graph;
	struct starling_component **insts; /* start order: receivers first */
	size_t n_insts;
	struct cfg_doc *doc;

	pthread_mutex_t tlock;
	pthread_cond_t tcond; /* timer thread wake-up */
	pthread_cond_t jcond; /* workers wake-up */
	pthread_cond_t done;  /* a timer stopped running */
	struct starling_timer **heap;
	size_t heap_len, heap_cap;
	struct job *jobs_head, *jobs_tail;
	bool quit;
	pthread_t timer_thread;
	pthread_t *workers;
	unsigned n_workers;

	runtime_reload_fn reload_fn;
	void *reload_arg;
	bool ready;
	/* Config load outcomes (atomics). */
	bool last_reload_ok;
	int64_t last_reload_ok_ms;
	uint64_t reloads_ok, reloads_failed;
};

/* ---- time ------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Added to the monotonic clock by runtime_clock_step (tests only). */
static int64_t clock_step_ms;

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000 + __atomic_load_n(&clock_step_ms, __ATOMIC_RELAXED);
}

static void stat_add(struct starling_component *c, enum cb_kind k, int64_t start_ns, int ret)
{
	__atomic_add_fetch(&c->stats[k].calls, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->stats[k].nanos, (uint64_t)(mono_ns() - start_ns), __ATOMIC_RELAXED);
	if (ret < 0)
		__atomic_add_fetch(&c->stats[k].errors, 1, __ATOMIC_RELAXED);
}

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

static void *timer_main(void *arg)
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
		t->fn(t->arg);
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

static void *worker_main(void *arg)
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

static struct starling_timer *timer_new(struct starling_component *c, int64_t first_ms,
					int64_t period_ms, starling_timer_fn fn, void *arg,
					bool internal, bool arm)
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
static void timer_rearm_locked(struct starling_timer *t, int64_t delay_ms)
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

static void api_timer_cancel(starling_component *c, starling_timer *t)
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
static void timers_cancel_all(struct starling_component *c)
{
	struct runtime *rt = c->rt;

	pthread_mutex_lock(&rt->tlock);
	for (struct starling_timer *t = c->timers; t; t = t->next_in_owner)
		timer_cancel_wait_locked(rt, t);
	pthread_mutex_unlock(&rt->tlock);
}

static void timers_free_all(struct starling_component *c)
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
	pthread_mutex_unlock(&rt->tlock);
}

/* ---- host API --------------------------------------------------------- */

static void api_log(starling_component *c, enum starling_log_level level, const char *fmt, ...)
    STARLING_PRINTF(3, 4);

static void api_log(starling_component *c, enum starling_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, c ? c->id : NULL, fmt, ap);
	va_end(ap);
}

static const char *api_component_id(starling_component *c)
{
	return c ? c->id : NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *api_state_dir(starling_component *c)
{
	char *p = NULL;
	int r;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->lock);
	if (!c->state_path) {
		if (asprintf(&p, "%s/%s", c->rt->state_dir, c->id) < 0) {
			p = NULL;
		} else if ((r = mkdir_p(p, 0750)) != 0) {
			log_msg(STARLING_LOG_ERROR, c->id, "cannot create state directory %s: %s",
				p, strerror(-r));
			free(p);
			p = NULL;
		}
		c->state_path = p;
	}
	p = c->state_path;
	pthread_mutex_unlock(&c->lock);
	return p;
}

static starling_timer *api_timer_start(starling_component *c, int64_t first_ms, int64_t period_ms,
				       starling_timer_fn fn, void *arg)
{
	if (!c || !fn)
		return NULL;
	return timer_new(c, first_ms, period_ms, fn, arg, false, true);
}

static int api_work_submit(starling_component *c, starling_timer_fn fn, void *arg)
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

static int64_t api_now_ms(void)
{
	return now_ms();
}

static int64_t api_monotonic_ms(void)
{
	return mono_ms();
}

static void set_health_locked(struct starling_component *c, bool healthy, const char *msg)
{
	c->healthy = healthy;
	free(c->health_msg);
	c->health_msg = msg ? strdup(msg) : NULL;
}

static void api_set_health(starling_component *c, bool healthy, const char *msg)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	set_health_locked(c, healthy, msg);
	__atomic_store_n(&c->recv_failed, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}

static void api_report_targets(starling_component *c, size_t owned, size_t total)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->owned = owned;
	c->total = total;
	pthread_mutex_unlock(&c->lock);
}

/* A failing receive marks the instance unhealthy (unless the plugin already
 * did); the next successful one clears what the host set. */
static void note_receive_result(struct starling_component *r, bool profile, int ret)
{
	char msg[160];

	if (ret >= 0 && !__atomic_load_n(&r->recv_failed, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&r->lock);
	if (ret < 0 && r->healthy) {
		snprintf(msg, sizeof(msg), "%s failed: %s",
			 profile ? "receive_profile" : "receive_series", strerror(-ret));
		set_health_locked(r, false, msg);
		__atomic_store_n(&r->recv_failed, true, __ATOMIC_RELAXED);
	} else if (ret >= 0 && r->recv_failed) {
		set_health_locked(r, true, NULL);
		__atomic_store_n(&r->recv_failed, false, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&r->lock);
	if (ret < 0)
		log_msg(STARLING_LOG_WARN, r->id, "%s failed: %s",
			profile ? "receive_profile" : "receive_series", strerror(-ret));
}

/* Deliver to one receiver. Graph read lock held by the caller. */
static int deliver(struct starling_component *r, const void *payload, bool profile)
{
	bool reentrant = r->type->flags & STARLING_TYPE_REENTRANT_RECEIVE;
	int64_t t0;
	int ret;

	if (!reentrant)
		pthread_mutex_lock(&r->cb_lock);
	else /* receives run concurrently, but never with update/stop */
		pthread_rwlock_rdlock(&r->recv_lock);
	if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != INST_RUNNING ||
	    __atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) {
		if (!reentrant)
			pthread_mutex_unlock(&r->cb_lock);
		else
			pthread_rwlock_unlock(&r->recv_lock);
		return -EAGAIN;
	}
	t0 = mono_ns();
	if (profile)
		ret = r->type->receive_profile ? r->type->receive_profile(r->inst, payload)
					       : -EOPNOTSUPP;
	else
		ret = r->type->receive_series ? r->type->receive_series(r->inst, payload)
					      : -EOPNOTSUPP;
	stat_add(r, profile ? CB_RECEIVE_PROFILE : CB_RECEIVE_SERIES, t0, ret);
	note_receive_result(r, profile, ret);
	if (!reentrant)
		pthread_mutex_unlock(&r->cb_lock);
	else
		pthread_rwlock_unlock(&r->recv_lock);
	return ret;
}

static int forward(starling_component *c, const void *payload, bool profile)
{
	struct runtime *rt;
	int first = 0;

	if (!c || !payload)
		return -EINVAL;
	rt = c->rt;
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < c->n_fwd; i++) {
		int r = deliver(c->fwd[i], payload, profile);

		if (r < 0 && !first)
			first = r;
	}
	pthread_rwlock_unlock(&rt->graph);
	return first;
}

static int api_forward_series(starling_component *c, const struct starling_series_batch *b)
{
	return forward(c, b, false);
}

/* A plugin built against ABI 1.0 hands over the 1.0 batch, which ends
 * before `ext`: receivers get a zero-extended copy. */
static int api_forward_series_1_0(starling_component *c, const struct starling_series_batch *b)
{
	struct starling_series_batch full = {0};

	if (!b)
		return -EINVAL;
	memcpy(&full, b, offsetof(struct starling_series_batch, ext));
	return forward(c, &full, false);
}

static int api_forward_profile(starling_component *c, const struct starling_profile *p)
{
	return forward(c, p, true);
}

static bool valid_metric_name(const char *s)
{
	if (!s || !*s ||
	    (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && *s != '_' && *s != ':'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return false;
	return true;
}

/* Label pairs -> k="v",k2="v2" (values escaped). NULL on bad input. */
static char *format_label_array(const struct starling_label *l, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	bool bad = false;

	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n && !bad; i++) {
		const char *k = l[i].name, *v = l[i].value;

		if (!k || !v || !valid_metric_name(k) || strchr(k, ':') ||
		    !strcmp(k, "component_id")) {
			bad = true;
			break;
		}
		fprintf(f, "%s%s=\"", i ? "," : "", k);
		for (; *v; v++) {
			if (*v == '"' || *v == '\\')
				fputc('\\', f);
			if (*v == '\n')
				fputs("\\n", f);
			else
				fputc(*v, f);
		}
		fputc('"', f);
	}
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The 1.0 form "k=v,k2=v2" -> k="v",k2="v2". NULL on bad input. */
static char *format_labels(const char *in)
{
	struct starling_label pairs[64];
	size_t n = 0;
	char *copy, *tok, *next, *out;

	if (!in || !*in)
		return strdup("");
	copy = strdup(in);
	if (!copy)
		return NULL;
	for (tok = copy; tok && *tok; tok = next) {
		char *eq;

		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		eq = strchr(tok, '=');
		if (!eq || n == sizeof(pairs) / sizeof(pairs[0])) {
			free(copy);
			return NULL;
		}
		*eq = '\0';
		pairs[n].name = tok;
		pairs[n++].value = eq + 1;
	}
	out = format_label_array(pairs, n);
	free(copy);
	return out;
}

/* Register (or find) a metric whose label text is fl (taken over). */
static starling_metric *metric_register_formatted(starling_component *c,
						  enum starling_self_metric_type type,
						  const char *name, const char *help, char *fl)
{
	struct starling_metric *m;

	pthread_mutex_lock(&c->lock);
	for (m = c->metrics; m; m = m->next) {
		if (!strcmp(m->name, name) && !strcmp(m->labels, fl)) {
			pthread_mutex_unlock(&c->lock);
			free(fl);
			return m;
		}
	}
	m = calloc(1, sizeof(*m));
	if (m) {
		m->type = type;
		m->name = strdup(name);
		m->help = strdup(help ? help : "");
		m->labels = fl;
		if (!m->name || !m->help) {
			free(m->name);
			free(m->help);
			free(m);
			m = NULL;
			free(fl);
		} else {
			m->next = c->metrics;
			c->metrics = m;
		}
	} else {
		free(fl);
	}
	pthread_mutex_unlock(&c->lock);
	return m;
}

static bool metric_args_ok(starling_component *c, enum starling_self_metric_type type,
			   const char *name)
{
	if (!c || !valid_metric_name(name) ||
	    (type != STARLING_SELF_COUNTER && type != STARLING_SELF_GAUGE)) {
		log_msg(STARLING_LOG_ERROR, c ? c->id : NULL, "refusing self-metric \"%s\"",
			name ? name : "(null)");
		return false;
	}
	return true;
}

static starling_metric *api_metric_register(starling_component *c,
					    enum starling_self_metric_type type, const char *name,
					    const char *help, const char *labels)
{
	char *fl;

	if (!metric_args_ok(c, type, name))
		return NULL;
	fl = format_labels(labels);
	if (!fl) {
		log_msg(STARLING_LOG_ERROR, c->id, "self-metric %s: invalid labels \"%s\"", name,
			labels);
		return NULL;
	}
	return metric_register_formatted(c, type, name, help, fl);
}

static starling_metric *api_metric_register_labels(starling_component *c,
						   enum starling_self_metric_type type,
						   const char *name, const char *help,
						   const struct starling_label *labels,
						   size_t n_labels)
{
	char *fl;

	if (!metric_args_ok(c, type, name))
		return NULL;
	fl = format_label_array(labels, labels ? n_labels : 0);
	if (!fl) {
		log_msg(STARLING_LOG_ERROR, c->id, "self-metric %s: invalid labels", name);
		return NULL;
	}
	return metric_register_formatted(c, type, name, help, fl);
}

static double bits_to_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static void api_metric_add(starling_metric *m, double delta)
{
	uint64_t old, nv;

	if (!m)
		return;
	old = __atomic_load_n(&m->bits, __ATOMIC_RELAXED);
	do {
		nv = double_to_bits(bits_to_double(old) + delta);
	} while (!__atomic_compare_exchange_n(&m->bits, &old, nv, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

static void api_metric_set(starling_metric *m, double value)
{
	if (m)
		__atomic_store_n(&m->bits, double_to_bits(value), __ATOMIC_RELAXED);
}

static bool api_cluster_owns(starling_component *c, uint64_t key, unsigned replicas)
{
	if (!c || !c->rt->cluster)
		return false;
	if (replicas > MAX_OWNERS)
		replicas = MAX_OWNERS;
	return cluster_owns(c->rt->cluster, key, replicas);
}

static size_t api_cluster_owners(starling_component *c, uint64_t key,
				 struct starling_node_name *out, size_t n)
{
	if (!c || !c->rt->cluster || !out)
		return 0;
	if (n > MAX_OWNERS)
		n = MAX_OWNERS;
	return cluster_owners(c->rt->cluster, key, out, n);
}

static uint64_t api_cluster_epoch(starling_component *c)
{
	if (!c || !c->rt->cluster)
		return 0;
	return cluster_epoch(c->rt->cluster);
}

static void api_cluster_self(starling_component *c, struct starling_node_name *out)
{
	if (!out)
		return;
	snprintf(out->name, sizeof(out->name), "%s",
		 c && c->rt->cluster ? cluster_self_name(c->rt->cluster) : "");
}

static void deliver_view_change(void *arg)
{
	struct starling_component *c = arg;
	starling_cluster_change_fn fn;
	void *farg;

	pthread_mutex_lock(&c->lock);
	c->sub_pending = false;
	c->sub_last_ms = mono_ms();
	fn = c->sub_fn;
	farg = c->sub_arg;
	pthread_mutex_unlock(&c->lock);
	if (fn)
		fn(farg, cluster_epoch(c->rt->cluster));
}

static int api_cluster_subscribe(starling_component *c, starling_cluster_change_fn fn, void *arg)
{
	struct starling_timer *t;
	bool need_timer;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	c->sub_fn = fn;
	c->sub_arg = arg;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->rt->tlock);
	need_timer = fn && !c->sub_timer;
	pthread_mutex_unlock(&c->rt->tlock);
	if (!need_timer)
		return 0;
	t = timer_new(c, 0, 0, deliver_view_change, c, true, false);
	if (!t)
		return -ENOMEM;
	/* sub_timer is read and cleared under tlock (see on_view_change and
	 * timers_free_all). */
	pthread_mutex_lock(&c->rt->tlock);
	c->sub_timer = t;
	pthread_mutex_unlock(&c->rt->tlock);
	return 0;
}

/* From a cluster thread: schedule each subscriber, at most once a second. */
static void on_view_change(void *arg, uint64_t epoch)
{
	struct runtime *rt = arg;

	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		int64_t delay;

		pthread_mutex_lock(&c->lock);
		if (!c->sub_fn || c->sub_pending) {
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		c->sub_pending = true;
		delay = c->sub_last_ms ? c->sub_last_ms + SUBSCRIBE_DEBOUNCE_MS - mono_ms() : 0;
		pthread_mutex_unlock(&c->lock);
		/* Read sub_timer under tlock: a re-created instance frees it there. */
		pthread_mutex_lock(&rt->tlock);
		if (c->sub_timer)
			timer_rearm_locked(c->sub_timer, delay);
		pthread_mutex_unlock(&rt->tlock);
	}
	pthread_rwlock_unlock(&rt->graph);
	log_debug("cluster view changed: epoch %llu", (unsigned long long)epoch);
}

static const struct starling_host_api host_api = {
    .abi_major = STARLING_ABI_MAJOR,
    .abi_minor = STARLING_ABI_MINOR,
    .struct_size = sizeof(struct starling_host_api),
    .log = api_log,
    .component_id = api_component_id,
    .state_dir = api_state_dir,
    .config_lookup = cfg_lookup,
    .config_count = cfg_count,
    .config_child = cfg_child,
    .config_name = cfg_name,
    .config_string = cfg_get_string,
    .config_int = cfg_get_int,
    .config_float = cfg_get_float,
    .config_bool = cfg_get_bool,
    .config_duration_ms = cfg_get_duration_ms,
    .config_bytes = cfg_get_bytes,
    .config_where = cfg_where,
    .now_ms = api_now_ms,
    .monotonic_ms = api_monotonic_ms,
    .timer_start = api_timer_start,
    .timer_cancel = api_timer_cancel,
    .work_submit = api_work_submit,
    .forward_series = api_forward_series,
    .forward_profile = api_forward_profile,
    .metric_register = api_metric_register,
    .metric_add = api_metric_add,
    .metric_set = api_metric_set,
    .set_health = api_set_health,
    .report_targets = api_report_targets,
    .cluster_owns = api_cluster_owns,
    .cluster_owners = api_cluster_owners,
    .cluster_epoch = api_cluster_epoch,
    .cluster_self = api_cluster_self,
    .cluster_subscribe = api_cluster_subscribe,
    .metric_register_labels = api_metric_register_labels,
};

/* The table handed to plugins built against ABI 1.0: the same functions,
 * except those that read a struct that has grown since. */
static struct starling_host_api host_api_1_0;
static pthread_once_t host_api_1_0_once = PTHREAD_ONCE_INIT;

static void host_api_1_0_init(void)
{
	host_api_1_0 = host_api;
	host_api_1_0.forward_series = api_forward_series_1_0;
}

const struct starling_host_api *runtime_host_api(uint32_t built_minor)
{
	if (built_minor >= 1)
		return &host_api;
	pthread_once(&host_api_1_0_once, host_api_1_0_init);
	return &host_api_1_0;
}

/* ---- lifecycle (rt->ctl held) ----------------------------------------- */

/* Exclusive against every callback of c, including reentrant receives. */
static void lifecycle_lock(struct starling_component *c)
{
	pthread_mutex_lock(&c->cb_lock);
	if (c->type->flags & STARLING_TYPE_REENTRANT_RECEIVE)
		pthread_rwlock_wrlock(&c->recv_lock);
}

static void lifecycle_unlock(struct starling_component *c)
{
	if (c->type->flags & STARLING_TYPE_REENTRANT_RECEIVE)
		pthread_rwlock_unlock(&c->recv_lock);
	pthread_mutex_unlock(&c->cb_lock);
}

static void set_state(struct starling_component *c, enum inst_state s)
{
	__atomic_store_n(&c->state, s, __ATOMIC_RELEASE);
}

static struct starling_component *inst_new(struct runtime *rt, struct cfg_doc *doc,
					   const struct cfg_component *cc)
{
	struct starling_component *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rt = rt;
	c->id = strdup(cc->id);
	c->type_name = strdup(cc->type_name);
	c->canon = strdup(cc->canon);
	if (!c->id || !c->type_name || !c->canon) {
		free(c->id);
		free(c->type_name);
		free(c->canon);
		free(c);
		return NULL;
	}
	c->type = cc->type;
	c->built_minor = cc->type_built_minor;
	c->doc = cfg_doc_ref(doc);
	c->cfg = cc->node;
	c->healthy = false;
	c->health_msg = strdup("not started");
	pthread_mutex_init(&c->cb_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_rwlockattr_t a;

		/* Writer preference so a busy sink cannot starve update/stop. */
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&c->recv_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	return c;
}

static void metrics_free(struct starling_component *c)
{
	struct starling_metric *m, *next;

	pthread_mutex_lock(&c->lock);
	for (m = c->metrics; m; m = next) {
		next = m->next;
		free(m->name);
		free(m->help);
		free(m->labels);
		free(m);
	}
	c->metrics = NULL;
	c->sub_fn = NULL;
	c->sub_pending = false;
	pthread_mutex_unlock(&c->lock);
}

static void fail(struct starling_component *c, const char *what, int ret)
{
	char msg[256];
	int64_t backoff = BACKOFF_MIN_MS;

	for (unsigned i = 0; i < c->failures && backoff < BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	c->failures++;
	c->next_retry_ms = mono_ms() + backoff;
	snprintf(msg, sizeof(msg), "%s failed: %s (retry in %llds)", what, strerror(-ret),
		 (long long)(backoff / 1000));
	log_msg(STARLING_LOG_ERROR, c->id, "%s", msg);
	api_set_health(c, false, msg);
	set_state(c, INST_FAILED);
}

/* Destroy the plugin instance (not the struct). */
static void inst_teardown(struct starling_component *c)
{
	int64_t t0;

	timers_free_all(c);
	/* Since ABI 1.1 the host drains an instance's work_submit jobs
	 * (queued ones still run) before destroy(). */
	pthread_mutex_lock(&c->rt->tlock);
	while (c->work_jobs)
		pthread_cond_wait(&c->rt->done, &c->rt->tlock);
	pthread_mutex_unlock(&c->rt->tlock);
	if (c->created) {
		pthread_mutex_lock(&c->cb_lock);
		t0 = mono_ns();
		c->type->destroy(c->inst);
		stat_add(c, CB_DESTROY, t0, 0);
		c->inst = NULL;
		c->created = false;
		pthread_mutex_unlock(&c->cb_lock);
	}
	metrics_free(c);
}

static void inst_stop(struct starling_component *c)
{
	int64_t t0;
	int ret = 0;

	if (c->state != INST_RUNNING)
		return;
	/* No new timer runs or deliveries from here on. */
	__atomic_store_n(&c->stopping, true, __ATOMIC_RELEASE);
	timers_cancel_all(c);
	lifecycle_lock(c);
	if (c->type->stop) {
		t0 = mono_ns();
		ret = c->type->stop(c->inst);
		stat_add(c, CB_STOP, t0, ret);
	}
	set_state(c, INST_STOPPED);
	lifecycle_unlock(c);
	if (ret < 0)
		log_msg(STARLING_LOG_WARN, c->id, "stop failed: %s", strerror(-ret));
	api_set_health(c, false, "stopped");
}

/* create + start; on failure tear down and schedule a retry. */
static int inst_bring_up(struct starling_component *c)
{
	int64_t t0;
	int ret;

	__atomic_store_n(&c->stopping, false, __ATOMIC_RELEASE);
	lifecycle_lock(c);
	t0 = mono_ns();
	ret = c->type->create(runtime_host_api(c->built_minor), c, c->cfg, &c->inst);
	stat_add(c, CB_CREATE, t0, ret);
	if (ret < 0) {
		c->inst = NULL;
		lifecycle_unlock(c);
		metrics_free(c);
		timers_free_all(c);
		fail(c, "create", ret);
		return ret;
	}
	c->created = true;
	set_state(c, INST_CREATED);
	/* Healthy unless start (or the plugin) says otherwise. */
	api_set_health(c, true, NULL);
	set_state(c, INST_RUNNING);
	if (c->type->start) {
		t0 = mono_ns();
		ret = c->type->start(c->inst);
		stat_add(c, CB_START, t0, ret);
	}
	lifecycle_unlock(c);
	if (ret < 0) {
		/* A failed start is not stopped, only destroyed. */
		__atomic_store_n(&c->stopping, true, __ATOMIC_RELEASE);
		timers_cancel_all(c);
		set_state(c, INST_CREATED);
		inst_teardown(c);
		fail(c, "start", ret);
		return ret;
	}
	c->failures = 0;
	log_msg(STARLING_LOG_DEBUG, c->id, "started");
	return 0;
}

static void inst_free(struct starling_component *c)
{
	struct runtime *rt;

	if (!c)
		return;
	/* Workers may still hold queued timer jobs that point at c. */
	rt = c->rt;
	pthread_mutex_lock(&rt->tlock);
	while (c->queued_jobs)
		pthread_cond_wait(&rt->done, &rt->tlock);
	pthread_mutex_unlock(&rt->tlock);
	pthread_mutex_destroy(&c->cb_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_rwlock_destroy(&c->recv_lock);
	cfg_doc_unref(c->doc);
	free(c->fwd);
	free(c->health_msg);
	free(c->state_path);
	free(c->id);
	free(c->type_name);
	free(c->canon);
	free(c);
}

static struct starling_component *find_in(struct starling_component **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && !strcmp(v[i]->id, id))
			return v[i];
	return NULL;
}

/* Forward lists from doc for every instance in v (graph write lock held). */
static void rewire_locked(struct runtime *rt, struct cfg_doc *doc)
{
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		const struct cfg_component *cc = NULL;
		struct starling_component **nf = NULL;
		size_t n = 0;

		for (size_t j = 0; j < doc->n_components; j++)
			if (!strcmp(doc->components[j].id, c->id))
				cc = &doc->components[j];
		if (cc && cc->n_forward) {
			nf = calloc(cc->n_forward, sizeof(*nf));
			for (size_t k = 0; nf && k < cc->n_forward; k++) {
				struct starling_component *t = find_in(
				    rt->insts, rt->n_insts, doc->components[cc->forward[k]].id);

				if (t)
					nf[n++] = t;
			}
		}
		free(c->fwd);
		c->fwd = nf;
		c->n_fwd = n;
	}
}

int runtime_apply(struct runtime *rt, struct cfg_doc *doc)
{
	struct starling_component **nv, **old;
	size_t n_old;
	size_t n = doc->n_components;
	unsigned kept = 0, changed = 0, added = 0, removed = 0;

	pthread_mutex_lock(&rt->ctl);
	nv = calloc(n ? n : 1, sizeof(*nv));
	if (!nv) {
		pthread_mutex_unlock(&rt->ctl);
		return -ENOMEM;
	}
	/* A private copy: rt->insts stays readable by HTTP threads until the
	 * new list is published, so it must not be modified in place. */
	n_old = rt->n_insts;
	old = calloc(n_old ? n_old : 1, sizeof(*old));
	if (!old) {
		free(nv);
		pthread_mutex_unlock(&rt->ctl);
		return -ENOMEM;
	}
	if (n_old)
		memcpy(old, rt->insts, n_old * sizeof(*old));

	/* Match by id; a changed type is a removal plus an addition. */
	for (size_t k = 0; k < n; k++) {
		const struct cfg_component *cc = &doc->components[doc->order[k]];
		struct starling_component *c = find_in(old, n_old, cc->id);

		if (c && c->type == cc->type) {
			nv[k] = c;
			for (size_t i = 0; i < n_old; i++)
				if (old[i] == c)
					old[i] = NULL;
		} else {
			nv[k] = inst_new(rt, doc, cc);
			if (!nv[k])
				log_error("out of memory creating %s", cc->id);
		}
	}

	/* Publish the new list: removed instances get no more deliveries. */
	pthread_rwlock_wrlock(&rt->graph);
	{
		size_t m = 0;

		for (size_t k = 0; k < n; k++)
			if (nv[k])
				nv[m++] = nv[k];
		free(rt->insts);
		rt->insts = nv;
		rt->n_insts = m;
		/* Keep the old wiring but drop edges to removed instances. */
		for (size_t i = 0; i < rt->n_insts; i++) {
			struct starling_component *c = rt->insts[i];
			size_t w = 0;

			for (size_t j = 0; j < c->n_fwd; j++)
				if (find_in(rt->insts, rt->n_insts, c->fwd[j]->id) == c->fwd[j])
					c->fwd[w++] = c->fwd[j];
			c->n_fwd = w;
		}
	}
	pthread_rwlock_unlock(&rt->graph);

	/* Stop removed ones, producers first (reverse of their start order). */
	for (size_t i = n_old; i-- > 0;) {
		if (!old[i])
			continue;
		inst_stop(old[i]);
	}
	for (size_t i = n_old; i-- > 0;) {
		if (!old[i])
			continue;
		log_msg(STARLING_LOG_INFO, old[i]->id, "removed");
		inst_teardown(old[i]);
		inst_free(old[i]);
		removed++;
	}
	free(old);

	/* Bring up in start order (receivers first). */
	pthread_rwlock_wrlock(&rt->graph);
	rewire_locked(rt, doc);
	pthread_rwlock_unlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		const struct cfg_component *cc = NULL;

		for (size_t j = 0; j < doc->n_components; j++)
			if (!strcmp(doc->components[j].id, c->id))
				cc = &doc->components[j];
		if (!cc)
			continue;
		if (c->doc == doc && c->state == INST_NEW) {
			added++;
			inst_bring_up(c);
			continue;
		}
		if (!strcmp(c->canon, cc->canon)) {
			kept++;
			continue;
		}
		changed++;
		{
			char *canon = strdup(cc->canon), *old_canon;
			struct cfg_doc *old_doc;
			int ret = -EOPNOTSUPP;
			int64_t t0;

			if (!canon)
				continue;
			if (c->state == INST_RUNNING && c->type->update) {
				lifecycle_lock(c);
				t0 = mono_ns();
				ret = c->type->update(c->inst, cc->node);
				stat_add(c, CB_UPDATE, t0, ret == -EOPNOTSUPP ? 0 : ret);
				lifecycle_unlock(c);
				if (ret < 0 && ret != -EOPNOTSUPP)
					log_msg(STARLING_LOG_WARN, c->id,
						"update failed (%s); re-creating", strerror(-ret));
			}
			if (ret < 0) {
				inst_stop(c);
				inst_teardown(c);
			}
			/* HTTP readers use c->cfg under the graph read lock. */
			pthread_rwlock_wrlock(&rt->graph);
			old_canon = c->canon;
			old_doc = c->doc;
			c->canon = canon;
			c->doc = cfg_doc_ref(doc);
			c->cfg = cc->node;
			pthread_rwlock_unlock(&rt->graph);
			free(old_canon);
			cfg_doc_unref(old_doc);
			if (ret < 0) {
				set_state(c, INST_NEW);
				c->failures = 0;
				inst_bring_up(c);
			}
			log_msg(STARLING_LOG_INFO, c->id, "%s",
				ret < 0 ? "re-created with the new configuration" : "updated");
		}
	}
	cfg_doc_unref(rt->doc);
	rt->doc = cfg_doc_ref(doc);
	pthread_mutex_unlock(&rt->ctl);
	log_info("configuration applied: %zu components (%u added, %u changed, %u unchanged, %u "
		 "removed)",
		 rt->n_insts, added, changed, kept, removed);
	return 0;
}

void runtime_clock_step(struct runtime *rt, int64_t ms)
{
	__atomic_add_fetch(&clock_step_ms, ms, __ATOMIC_RELAXED);
	pthread_mutex_lock(&rt->tlock);
	pthread_cond_broadcast(&rt->tcond);
	pthread_mutex_unlock(&rt->tlock);
}

void runtime_tick(struct runtime *rt)
{
	int64_t now = mono_ms();

	pthread_mutex_lock(&rt->ctl);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		if (c->state == INST_FAILED && now >= c->next_retry_ms) {
			log_msg(STARLING_LOG_INFO, c->id, "retrying (attempt %u)", c->failures + 1);
			inst_bring_up(c);
		}
	}
	pthread_mutex_unlock(&rt->ctl);
}

int runtime_create(struct runtime **out, struct cluster *cluster, const char *state_dir,
		   unsigned workers)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	pthread_condattr_t ca;

	if (!rt)
		return -ENOMEM;
	rt->cluster = cluster;
	rt->state_dir = strdup(state_dir);
	if (!rt->state_dir) {
		free(rt);
		return -ENOMEM;
	}
	pthread_mutex_init(&rt->ctl, NULL);
	pthread_rwlock_init(&rt->graph, NULL);
	pthread_mutex_init(&rt->tlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->tcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&rt->jcond, NULL);
	pthread_cond_init(&rt->done, NULL);
	rt->n_workers = workers ? workers : RUNTIME_DEFAULT_WORKERS;
	rt->workers = calloc(rt->n_workers, sizeof(*rt->workers));
	if (!rt->workers || pthread_create(&rt->timer_thread, NULL, timer_main, rt)) {
		free(rt->workers);
		free(rt->state_dir);
		free(rt);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < rt->n_workers; i++) {
		if (pthread_create(&rt->workers[i], NULL, worker_main, rt)) {
			rt->n_workers = i;
			break;
		}
	}
	if (cluster)
		cluster_on_view_change(cluster, on_view_change, rt);
	*out = rt;
	return 0;
}

void runtime_shutdown(struct runtime *rt)
{
	struct starling_component **v;
	size_t n;

	pthread_mutex_lock(&rt->ctl);
	runtime_set_ready(rt, false);
	for (size_t i = rt->n_insts; i-- > 0;)
		inst_stop(rt->insts[i]);
	pthread_rwlock_wrlock(&rt->graph);
	v = rt->insts;
	n = rt->n_insts;
	rt->insts = NULL;
	rt->n_insts = 0;
	pthread_rwlock_unlock(&rt->graph);
	for (size_t i = n; i-- > 0;) {
		inst_teardown(v[i]);
		inst_free(v[i]);
	}
	free(v);
	pthread_mutex_unlock(&rt->ctl);

	pthread_mutex_lock(&rt->tlock);
	if (!rt->quit) {
		rt->quit = true;
		pthread_cond_broadcast(&rt->tcond);
		pthread_cond_broadcast(&rt->jcond);
		pthread_mutex_unlock(&rt->tlock);
		pthread_join(rt->timer_thread, NULL);
		for (unsigned i = 0; i < rt->n_workers; i++)
			pthread_join(rt->workers[i], NULL);
	} else {
		pthread_mutex_unlock(&rt->tlock);
	}
}

void runtime_destroy(struct runtime *rt)
{
	if (!rt)
		return;
	runtime_shutdown(rt);
	if (rt->cluster)
		cluster_on_view_change(rt->cluster, NULL, NULL);
	cfg_doc_unref(rt->doc);
	free(rt->heap);
	free(rt->workers);
	free(rt->state_dir);
	pthread_mutex_destroy(&rt->ctl);
	pthread_rwlock_destroy(&rt->graph);
	pthread_mutex_destroy(&rt->tlock);
	pthread_cond_destroy(&rt->tcond);
	pthread_cond_destroy(&rt->jcond);
	pthread_cond_destroy(&rt->done);
	free(rt);
}

void runtime_set_reload_handler(struct runtime *rt, runtime_reload_fn fn, void *arg)
{
	rt->reload_fn = fn;
	rt->reload_arg = arg;
}

int runtime_reload(struct runtime *rt, char **msg)
{
	*msg = NULL;
	if (!rt->reload_fn)
		return -ENOTSUP;
	return rt->reload_fn(rt->reload_arg, msg);
}

void runtime_note_reload(struct runtime *rt, bool ok)
{
	__atomic_store_n(&rt->last_reload_ok, ok, __ATOMIC_RELAXED);
	if (ok) {
		__atomic_store_n(&rt->last_reload_ok_ms, now_ms(), __ATOMIC_RELAXED);
		__atomic_add_fetch(&rt->reloads_ok, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&rt->reloads_failed, 1, __ATOMIC_RELAXED);
	}
}

bool runtime_ready(struct runtime *rt)
{
	return __atomic_load_n(&rt->ready, __ATOMIC_ACQUIRE);
}

void runtime_set_ready(struct runtime *rt, bool ready)
{
	__atomic_store_n(&rt->ready, ready, __ATOMIC_RELEASE);
}

/* ---- introspection ------------------------------------------------------ */

struct metric_line {
	const char *name;
	const char *help;
	const char *type;
	char *labels;
	double value;
};

static int line_cmp(const void *a, const void *b)
{
	const struct metric_line *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void print_value(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN", out);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else
		fprintf(out, "%.17g", v);
}

static void json_escape_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void runtime_write_metrics(struct runtime *rt, FILE *out)
{
	static const char *const fixed[][3] = {
	    {"starling_component_healthy", "gauge",
	     "Whether the component is healthy (1) or not (0)."},
	    {"starling_component_up", "gauge", "Whether the component is running (1)."},
	    {"starling_component_callback_calls_total", "counter",
	     "Callbacks of the component run by the host."},
	    {"starling_component_callback_errors_total", "counter",
	     "Callbacks of the component that returned an error."},
	    {"starling_component_callback_duration_seconds_total", "counter",
	     "Time spent in callbacks of the component."},
	    {"starling_component_targets", "gauge",
	     "Targets of the component (owned here or total)."},
	};
	struct metric_line *lines = NULL;
	size_t n = 0, cap = 0;

	fprintf(out,
		"# HELP starling_config_last_reload_successful Whether the last configuration load "
		"succeeded.\n# TYPE starling_config_last_reload_successful gauge\n"
		"starling_config_last_reload_successful %d\n"
		"# HELP starling_config_last_reload_success_timestamp_seconds Time of the last "
		"successful configuration load.\n"
		"# TYPE starling_config_last_reload_success_timestamp_seconds gauge\n"
		"starling_config_last_reload_success_timestamp_seconds %.3f\n"
		"# HELP starling_config_reloads_total Configuration loads by result.\n"
		"# TYPE starling_config_reloads_total counter\n"
		"starling_config_reloads_total{result=\"success\"} %llu\n"
		"starling_config_reloads_total{result=\"failure\"} %llu\n",
		__atomic_load_n(&rt->last_reload_ok, __ATOMIC_RELAXED) ? 1 : 0,
		(double)__atomic_load_n(&rt->last_reload_ok_ms, __ATOMIC_RELAXED) / 1000.0,
		(unsigned long long)__atomic_load_n(&rt->reloads_ok, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&rt->reloads_failed, __ATOMIC_RELAXED));
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fixed[f][0], fixed[f][2], fixed[f][0],
			fixed[f][1]);
		for (size_t i = 0; i < rt->n_insts; i++) {
			struct starling_component *c = rt->insts[i];
			const char *id = c->id;

			switch (f) {
			case 0:
				pthread_mutex_lock(&c->lock);
				fprintf(out, "%s{component_id=\"%s\",type=\"%s\"} %d\n",
					fixed[f][0], id, c->type_name, c->healthy ? 1 : 0);
				pthread_mutex_unlock(&c->lock);
				break;
			case 1:
				fprintf(out, "%s{component_id=\"%s\"} %d\n", fixed[f][0], id,
					__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) ==
					    INST_RUNNING);
				break;
			case 2:
			case 3:
			case 4:
				for (int k = 0; k < CB_N; k++) {
					uint64_t calls =
					    __atomic_load_n(&c->stats[k].calls, __ATOMIC_RELAXED);

					if (!calls)
						continue;
					fprintf(out, "%s{component_id=\"%s\",callback=\"%s\"} ",
						fixed[f][0], id, cb_names[k]);
					if (f == 2)
						fprintf(out, "%llu\n", (unsigned long long)calls);
					else if (f == 3)
						fprintf(out, "%llu\n",
							(unsigned long long)__atomic_load_n(
							    &c->stats[k].errors, __ATOMIC_RELAXED));
					else
						fprintf(out, "%.9f\n",
							(double)__atomic_load_n(&c->stats[k].nanos,
										__ATOMIC_RELAXED) /
							    1e9);
				}
				break;
			case 5:
				pthread_mutex_lock(&c->lock);
				fprintf(out, "%s{component_id=\"%s\",scope=\"owned\"} %zu\n",
					fixed[f][0], id, c->owned);
				fprintf(out, "%s{component_id=\"%s\",scope=\"total\"} %zu\n",
					fixed[f][0], id, c->total);
				pthread_mutex_unlock(&c->lock);
				break;
			}
		}
	}
	/* Plugin self-metrics, grouped by name so HELP/TYPE appear once. */
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		pthread_mutex_lock(&c->lock);
		for (struct starling_metric *m = c->metrics; m; m = m->next) {
			char *lbl = NULL;
			size_t len = 0;
			FILE *f;

			if (n == cap) {
				size_t nc = cap ? cap * 2 : 32;
				struct metric_line *nl = realloc(lines, nc * sizeof(*nl));

				if (!nl)
					break;
				lines = nl;
				cap = nc;
			}
			f = open_memstream(&lbl, &len);
			if (!f)
				break;
			fputs("component_id=\"", f);
			json_escape_label(f, c->id);
			fputc('"', f);
			if (m->labels[0])
				fprintf(f, ",%s", m->labels);
			fclose(f);
			lines[n].name = m->name;
			lines[n].help = m->help;
			lines[n].type = m->type == STARLING_SELF_COUNTER ? "counter" : "gauge";
			lines[n].labels = lbl;
			lines[n].value =
			    bits_to_double(__atomic_load_n(&m->bits, __ATOMIC_RELAXED));
			n++;
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (n)
		qsort(lines, n, sizeof(*lines), line_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(lines[i].name, lines[i - 1].name)) {
			fprintf(out, "# HELP %s ", lines[i].name);
			for (const char *h = lines[i].help; *h; h++) {
				if (*h == '\\')
					fputs("\\\\", out);
				else if (*h == '\n')
					fputs("\\n", out);
				else
					fputc(*h, out);
			}
			fprintf(out, "\n# TYPE %s %s\n", lines[i].name, lines[i].type);
		}
		fprintf(out, "%s{%s} ", lines[i].name, lines[i].labels);
		print_value(out, lines[i].value);
		fputc('\n', out);
		free(lines[i].labels);
	}
	pthread_rwlock_unlock(&rt->graph);
	free(lines);
}

static const char *health_word(struct starling_component *c)
{
	enum inst_state s = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);

	if (s == INST_FAILED)
		return "failed";
	if (s != INST_RUNNING)
		return "stopped";
	return c->healthy ? "healthy" : "unhealthy";
}

char *runtime_components_json(struct runtime *rt)
{
	cJSON *arr = cJSON_CreateArray();
	char *out;

	if (!arr)
		return NULL;
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		cJSON *o = cJSON_CreateObject(), *fw;

		if (!o)
			break;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", c->id);
		cJSON_AddStringToObject(o, "type", c->type_name);
		pthread_mutex_lock(&c->lock);
		cJSON_AddStringToObject(o, "health", health_word(c));
		cJSON_AddStringToObject(o, "state",
					state_names[__atomic_load_n(&c->state, __ATOMIC_ACQUIRE)]);
		cJSON_AddStringToObject(o, "message", c->health_msg ? c->health_msg : "");
		cJSON_AddNumberToObject(o, "owned_targets", (double)c->owned);
		cJSON_AddNumberToObject(o, "total_targets", (double)c->total);
		pthread_mutex_unlock(&c->lock);
		cJSON_AddBoolToObject(o, "has_targets", c->type->list_targets != NULL);
		cJSON_AddStringToObject(o, "config_where", cfg_where(c->cfg));
		fw = cJSON_AddArrayToObject(o, "forward_to");
		for (size_t k = 0; fw && k < c->n_fwd; k++)
			cJSON_AddItemToArray(fw, cJSON_CreateString(c->fwd[k]->id));
	}
	pthread_rwlock_unlock(&rt->graph);
	out = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return out;
}

struct emit_ctx {
	cJSON *arr;
};

static void emit_target(void *ctx, const struct starling_target_info *t)
{
	struct emit_ctx *e = ctx;
	cJSON *o, *l;
	char key[24];

	if (!t)
		return;
	o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddItemToArray(e->arr, o);
	l = cJSON_AddObjectToObject(o, "labels");
	for (size_t i = 0; l && t->labels && i < t->n_labels; i++)
		if (t->labels[i].name && t->labels[i].value)
			cJSON_AddStringToObject(l, t->labels[i].name, t->labels[i].value);
	snprintf(key, sizeof(key), "0x%016llx", (unsigned long long)t->key);
	cJSON_AddStringToObject(o, "key", key);
	if (t->owner)
		cJSON_AddStringToObject(o, "owner", t->owner);
	else
		cJSON_AddNullToObject(o, "owner");
	cJSON_AddBoolToObject(o, "owned_here", t->owned_here);
	cJSON_AddNumberToObject(o, "last_scrape_ms", (double)t->last_scrape_ms);
	cJSON_AddNumberToObject(o, "last_duration_seconds", (double)t->last_duration_us / 1e6);
	cJSON_AddStringToObject(o, "health",
				t->health == STARLING_TARGET_UP	    ? "up"
				: t->health == STARLING_TARGET_DOWN ? "down"
								    : "unknown");
	cJSON_AddStringToObject(o, "last_error", t->last_error ? t->last_error : "");
}

int runtime_targets_json(struct runtime *rt, const char *id, char **out)
{
	struct starling_component *c;
	struct emit_ctx e;
	cJSON *root;
	int ret = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&rt->graph);
	c = find_in(rt->insts, rt->n_insts, id);
	if (!c) {
		pthread_rwlock_unlock(&rt->graph);
		return -ENOENT;
	}
	root = cJSON_CreateObject();
	e.arr = root ? cJSON_AddArrayToObject(root, "targets") : NULL;
	if (!e.arr) {
		pthread_rwlock_unlock(&rt->graph);
		cJSON_Delete(root);
		return -ENOMEM;
	}
	cJSON_AddStringToObject(root, "component_id", c->id);
	if (c->type->list_targets) {
		pthread_mutex_lock(&c->cb_lock);
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == INST_RUNNING) {
			int64_t t0 = mono_ns();

			ret = c->type->list_targets(c->inst, emit_target, &e);
			stat_add(c, CB_LIST_TARGETS, t0, ret);
		}
		pthread_mutex_unlock(&c->cb_lock);
	}
	pthread_rwlock_unlock(&rt->graph);
	if (ret < 0)
		cJSON_AddStringToObject(root, "error", strerror(-ret));
	*out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return *out ? 0 : -ENOMEM;
}
