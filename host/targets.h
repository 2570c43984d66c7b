/*
 * Target sets between components (ABI 1.1): the latest set of every producer
 * and, per receiver, which producer's latest set it has not been handed yet.
 *
 * A producer publishes its whole list (targets_publish: validated, copied
 * into one refcounted block, which replaces the producer's previous set).
 * Every receiver whose sources name that producer is then "kicked": the
 * runtime arranges, on a host thread serialised with the receiver's
 * callbacks, a call of targets_rx_run(), which hands over the latest set of
 * each source not yet delivered. Publishing twice before the run hands over
 * only the second set (coalescing); the latest is never skipped.
 *
 * Nothing here knows about instances or threads beyond the kick callback,
 * so the bookkeeping is testable on its own (tests/unit/host/test_targets.c).
 * Every function is thread-safe. Lock order: the hub's lock is taken before
 * whatever kick() takes; kick() must not call back into the hub.
 */
#ifndef STARLING_HOST_TARGETS_H
#define STARLING_HOST_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include <starling/plugin.h>

struct targets_hub;
struct targets_rx;

typedef void (*targets_kick_fn)(void *arg);
typedef int (*targets_recv_fn)(void *ctx, const char *source,
			       const struct starling_target_set *set);

struct targets_hub *targets_hub_new(void);
/* Every receiver must have been freed. */
void targets_hub_free(struct targets_hub *h);

/* Validate and copy `set` (the caller's again on return) as the latest set
 * of `producer` ("<type>.<name>") and kick its receivers. Returns 0, -EINVAL
 * (NULL set or strings, a target whose labels are not sorted by name with
 * unique, non-empty names) or -ENOMEM; on error the previous set stays. */
int targets_publish(struct targets_hub *h, const char *producer,
		    const struct starling_target_set *set);
/* The producer is gone (removed, or re-created as another type): drop its
 * set; each receiver that was handed one gets one empty set. */
void targets_forget(struct targets_hub *h, const char *producer);
/* Targets in the producer's latest set; -1 if it has published none. */
long targets_count(struct targets_hub *h, const char *producer);

/* A receiver instance `id`; kick(arg) must lead to targets_rx_run() soon. */
struct targets_rx *targets_rx_new(struct targets_hub *h, const char *id, targets_kick_fn kick,
				  void *arg);
void targets_rx_free(struct targets_rx *rx);
/* The receiver's producers, in the order sets are to be handed over. A
 * source that leaves the list after it handed over a set gets one empty set
 * (so a receiver drops what a producer removed by a reload had found). New
 * sources hand over their latest set. Returns 0 or -ENOMEM (list unchanged). */
int targets_rx_set_sources(struct targets_rx *rx, const char *const *ids, size_t n);
/* The instance was (re-)started: it has been handed nothing yet. Pending
 * empty sets of departed sources are dropped. Does not kick. */
void targets_rx_restart(struct targets_rx *rx);
/* Hand over, one call of fn per source, every set not handed over yet
 * (latest only). Returns how many were handed over. fn runs without the
 * hub's lock; `set` is valid during the call. */
size_t targets_rx_run(struct targets_rx *rx, targets_recv_fn fn, void *ctx);
/* Whether a run would hand anything over. */
bool targets_rx_pending(struct targets_rx *rx);

#endif
