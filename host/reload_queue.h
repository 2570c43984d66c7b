/*
 * The reload queue: configuration reloads run on a thread of their own,
 * never on the thread that asks for one (an HTTP thread, the signal loop).
 * Requests made before a run starts share that run (coalesced); a request
 * made while a run is in progress gets the next run, since the file may
 * have changed after the running one read it. Every request is answered
 * exactly once: with the run's outcome, or with -ETIMEDOUT when its bound
 * passes first (the run goes on; its outcome is logged and counted), or
 * with -ECANCELED when the queue stops.
 */
#ifndef STARLING_HOST_RELOAD_QUEUE_H
#define STARLING_HOST_RELOAD_QUEUE_H

#include <stdint.h>

struct reload_queue;

/* One reload: 0, or -errno with a malloc'd message in *msg (may be NULL). */
typedef int (*reload_run_fn)(void *arg, char **msg);
/* The answer to one request, called once from a queue thread; msg is only
 * valid during the call. */
typedef void (*reload_done_fn)(void *arg, int result, const char *msg);

/* Starts the runner and the deadline threads. */
int reload_queue_start(struct reload_queue **out, reload_run_fn run, void *arg);

/* Ask for a reload. done (may be NULL: nobody waits) is called with the
 * outcome, or with -ETIMEDOUT after timeout_ms (<= 0: no bound). Returns 0,
 * or -ECANCELED/-ENOMEM without calling done. */
int reload_queue_submit(struct reload_queue *q, int64_t timeout_ms, reload_done_fn done, void *arg);

/* Submit and wait (for callers that may block): 0 or -errno, with a
 * malloc'd message in *msg when the reload was refused. */
int reload_queue_run(struct reload_queue *q, int64_t timeout_ms, char **msg);

/* Lets a running reload finish, answers every waiting request with
 * -ECANCELED and joins the threads. NULL is fine. */
void reload_queue_stop(struct reload_queue *q);

#endif
