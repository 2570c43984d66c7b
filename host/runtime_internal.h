/*
 * Internal to the component runtime (host/runtime*.c): the instance, timer
 * and runtime structures shared by its files. Not part of runtime.h, the
 * module's interface.
 *
 * Locking, outermost first:
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
#ifndef STARLING_HOST_RUNTIME_INTERNAL_H
#define STARLING_HOST_RUNTIME_INTERNAL_H

#include "crash.h"
#include "reload_queue.h"
#include "runtime.h"
#include "targets.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum inst_state {
	INST_NEW = 0, /* not created */
	INST_CREATED,
	INST_RUNNING,
	INST_STOPPED,
	INST_FAILED, /* create/start failed, waiting for retry */
};

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
	CB_RECEIVE_TARGETS,
	CB_N
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
	bool own_stats;	   /* its callback records its own statistics */
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
	char *last_error; /* the plugin's last error log line (c->lock) */
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
	struct targets_rx *trx;		      /* receivers of target sets only */
	struct starling_timer *targets_timer; /* delivers them (tlock) */
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

	bool validate_only; /* runtime_create_validator: no threads, no mkdir */

	struct reload_queue *reloads; /* runs reloads on its own thread */
	int64_t reload_wait_ms;	      /* how long a caller waits for the outcome */
	bool ready;
	/* Config load outcomes (atomics). */
	bool last_reload_ok;
	int64_t last_reload_ok_ms;
	uint64_t reloads_ok, reloads_failed;
	struct targets_hub *targets; /* latest target set per producer */
};

/* ---- time ------------------------------------------------------------- */

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Added to the monotonic clock by runtime_clock_step (tests only). */
extern int64_t runtime_clock_step_ms;

static inline int64_t mono_ms(void)
{
	return mono_ns() / 1000000 + __atomic_load_n(&runtime_clock_step_ms, __ATOMIC_RELAXED);
}

/* Run `call`, plugin callback `name` of component c, with the thread's
 * crash context set: a fatal signal inside it is reported naming both
 * (crash.c). */
#define CB_RUN(c, name, call)                                                                      \
	do {                                                                                       \
		struct crash_ctx crash_prev_ = crash_enter((c) ? (c)->id : NULL, (name));          \
		call;                                                                              \
		crash_leave(crash_prev_);                                                          \
	} while (0)

static inline void stat_add(struct starling_component *c, enum cb_kind k, int64_t start_ns, int ret)
{
	__atomic_add_fetch(&c->stats[k].calls, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->stats[k].nanos, (uint64_t)(mono_ns() - start_ns), __ATOMIC_RELAXED);
	if (ret < 0)
		__atomic_add_fetch(&c->stats[k].errors, 1, __ATOMIC_RELAXED);
}

/* ---- timers and the worker pool (runtime_timers.c) ---------------------- */

void *timer_main(void *arg);
void *worker_main(void *arg);
struct starling_timer *timer_new(struct starling_component *c, int64_t first_ms, int64_t period_ms,
				 starling_timer_fn fn, void *arg, bool internal, bool arm);
/* Re-arm an internal one-shot timer (rt->tlock held). */
void timer_rearm_locked(struct starling_timer *t, int64_t delay_ms);
/* At stop: cancel every timer of c and wait for running ones. */
void timers_cancel_all(struct starling_component *c);
void timers_free_all(struct starling_component *c);
starling_timer *api_timer_start(starling_component *c, int64_t first_ms, int64_t period_ms,
				starling_timer_fn fn, void *arg);
void api_timer_cancel(starling_component *c, starling_timer *t);
int api_work_submit(starling_component *c, starling_timer_fn fn, void *arg);

/* ---- host API (runtime_api.c) ------------------------------------------- */

void set_health_locked(struct starling_component *c, bool healthy, const char *msg);
void api_set_health(starling_component *c, bool healthy, const char *msg);
/* From a cluster thread: schedule each subscriber, at most once a second. */
void on_view_change(void *arg, uint64_t epoch);
double bits_to_double(uint64_t b);

/* ---- target sets (runtime_targets.c) ------------------------------------ */

int api_forward_targets(starling_component *c, const struct starling_target_set *set);
int runtime_targets_init(struct runtime *rt);
void runtime_targets_release(struct runtime *rt);
int runtime_targets_inst_new(struct starling_component *c);
void runtime_targets_inst_free(struct starling_component *c);
void runtime_targets_started(struct starling_component *c);
void runtime_targets_removed(struct starling_component *c);
void runtime_targets_rewire(struct runtime *rt, const struct cfg_doc *doc);
/* Targets in c's latest published set; -1 if none. */
long runtime_targets_count(struct starling_component *c);

/* ---- lifecycle (runtime.c) ---------------------------------------------- */

struct starling_component *find_in(struct starling_component **v, size_t n, const char *id);

#endif
