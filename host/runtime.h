/*
 * The component runtime: instances of component types, wired by the
 * validated configuration; the host API table handed to plugins; timers and
 * a small worker pool; forwarding; self-metrics; health and retry; reload
 * by difference; graceful stop.
 *
 * Control functions (runtime_apply, runtime_tick, runtime_shutdown) are
 * serialised internally and may be called from any thread; introspection
 * functions are thread-safe.
 */
#ifndef STARLING_HOST_RUNTIME_H
#define STARLING_HOST_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster/cluster.h"
#include "config.h"

struct runtime;

/* Worker threads default to this many. */
#define RUNTIME_DEFAULT_WORKERS 4

/* Creates the timer thread and the worker pool. state_dir is copied. */
int runtime_create(struct runtime **out, struct cluster *cluster, const char *state_dir,
		   unsigned workers);

/* Make the running graph match doc (validated), as one transaction. First
 * every new and changed instance is created (the plugin's create(), which
 * the ABI keeps free of threads and I/O) while the running graph is left
 * alone. If any create() fails, nothing changes: -EINVAL, and errs gets one
 * "FILE:LINE: key.path: message" line per failure, in the plugin's own
 * words. Otherwise unchanged instances keep running, changed ones are
 * updated in place (type has update()) or replaced by their new instance,
 * removed ones are stopped (producers first) and the new instances started
 * (receivers first); a failing start() does not fail the apply (the
 * instance is marked failed and retried). Takes its own reference on doc. */
int runtime_apply_checked(struct runtime *rt, struct cfg_doc *doc, struct cfg_errors *errs);
/* runtime_apply_checked, logging the errors. */
int runtime_apply(struct runtime *rt, struct cfg_doc *doc);

/* The dry run of check-config: create() and destroy() each component of
 * doc, reporting failures as runtime_apply_checked does. Returns 0 or
 * -EINVAL. */
int runtime_validate(struct runtime *rt, struct cfg_doc *doc, struct cfg_errors *errs);

/* A runtime for runtime_validate alone: no threads, and state directories
 * are named but not created. Free with runtime_destroy. */
int runtime_create_validator(struct runtime **out, const char *state_dir);

/* Retry failed components whose back-off has passed. Call about every
 * 500 ms from the main loop. */
void runtime_tick(struct runtime *rt);

/* Tests only: step the runtime's monotonic clock (timers, back-offs,
 * debounce, the plugins' monotonic_ms) forward by ms, process-wide, and wake
 * the timer thread, so that tests never sleep waiting for a delay. */
void runtime_clock_step(struct runtime *rt, int64_t ms);

/* Stop every component (producers first), then the threads. */
void runtime_shutdown(struct runtime *rt);
void runtime_destroy(struct runtime *rt);

/* Reloads run on the runtime's own reload thread (reload_queue.h), never
 * on the thread that asks: fn, installed by main, loads and applies the
 * file and returns 0 or -errno with a malloc'd message in *msg. Requests
 * made before a run starts share it; one made during a run gets the next.
 * Returns 0 or -errno (the thread could not start). */
typedef int (*runtime_reload_fn)(void *arg, char **msg);
int runtime_set_reload_handler(struct runtime *rt, runtime_reload_fn fn, void *arg);

/* How long a caller waits for a reload's outcome (default
 * RUNTIME_RELOAD_WAIT_MS); past it the caller gets -ETIMEDOUT while the
 * reload goes on (its outcome is logged and in the reload metrics). */
#define RUNTIME_RELOAD_WAIT_MS 30000
void runtime_set_reload_wait(struct runtime *rt, int64_t ms);
int64_t runtime_reload_wait(struct runtime *rt);

/* Ask for a reload without blocking. done (from the reload thread, once)
 * gets 0, -EINVAL with the refusal's lines in msg, -ETIMEDOUT after the
 * wait bound, or -ECANCELED at shutdown; done == NULL: nobody waits
 * (SIGHUP). Returns 0, or -errno without calling done. */
typedef void (*runtime_reload_done_fn)(void *arg, int result, const char *msg);
int runtime_reload_submit(struct runtime *rt, runtime_reload_done_fn done, void *arg);

/* Ask for a reload and wait for its outcome (at most the wait bound): 0 or
 * -errno with a malloc'd message in *msg (or NULL). */
int runtime_reload(struct runtime *rt, char **msg);

/* Record the outcome of a configuration load (startup or reload) for the
 * starling_config_last_reload_* metrics. */
void runtime_note_reload(struct runtime *rt, bool ok);

bool runtime_ready(struct runtime *rt);
void runtime_set_ready(struct runtime *rt, bool ready);

/* Component and self-metrics in Prometheus text format. */
void runtime_write_metrics(struct runtime *rt, FILE *out);
/* Components subscribed to cluster view changes. */
unsigned runtime_cluster_observers(struct runtime *rt);
/* JSON array for GET /api/v0/components (malloc'd). */
char *runtime_components_json(struct runtime *rt);
/* JSON for GET /api/v0/components/{id}/targets. Returns 0, -ENOENT for an
 * unknown id, -ENOTSUP when the type has no list_targets. */
int runtime_targets_json(struct runtime *rt, const char *id, char **out);

/* The host API table for a plugin built against ABI 1.<built_minor>. */
const struct starling_host_api *runtime_host_api(uint32_t built_minor);

#endif
