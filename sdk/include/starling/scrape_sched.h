/*
 * Scrape slot schedule and target reporting shared by the scrape plugins
 * (static SDK library): prometheus.scrape, pyroscope.scrape and
 * prometheus.operator.*.
 *
 * Every target scrapes at t = k * interval + (key mod interval) in wall-clock
 * ms. The slots depend only on the target key and the interval, never on the
 * node or on when it started, so when ownership of a target moves the new
 * owner scrapes it from the very next slot: no gap, no double scrape. A
 * component keeps next_due_ms per target, asks starling_scrape_owns() at each
 * slot, and after firing moves on with starling_scrape_slot_done().
 *
 * Memory: nothing is allocated and nothing is kept; the caller owns every
 * argument. Thread-safety: the slot functions are pure; the ownership and
 * list_targets helpers only call the host API, whose cluster functions may be
 * called from any thread. starling_scrape_wait() drives the HTTP client and
 * so must only be called by the one thread that runs it.
 *
 * Since ABI 1.0.
 */
#ifndef STARLING_SCRAPE_SCHED_H
#define STARLING_SCRAPE_SCHED_H

#include <starling/http.h>
#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest the scrape loop sleeps: a stop or a new target set is noticed at
 * least this often even without a wakeup. */
#define STARLING_SCRAPE_MAX_WAIT_MS 1000

/* The phase of a target in its interval: key mod interval (0 when the
 * interval is not positive). Pure. Since ABI 1.0. */
int64_t starling_scrape_phase(uint64_t key, int64_t interval_ms);

/* First slot k * interval + phase at or after now_ms (now_ms itself when the
 * interval is not positive). Holds for now_ms < phase and negative times.
 * Pure. Since ABI 1.0. */
int64_t starling_scrape_next_slot(int64_t now_ms, int64_t interval_ms, int64_t phase_ms);

/* The slot after due_ms, which has just fired at now_ms: due_ms + interval,
 * or, when the loop fell behind by more than that, the first slot after
 * now_ms (the missed slots are skipped, not caught up). Pure. Since ABI 1.0. */
int64_t starling_scrape_slot_done(int64_t due_ms, int64_t now_ms, int64_t interval_ms,
				  int64_t phase_ms);

/* How many ms the wall clock went back, judged by the earliest pending slot
 * (which is never more than one interval ahead while the clock runs
 * forward); 0 when it did not. When > 0 the caller re-places every target
 * with starling_scrape_next_slot(now_ms, ...). Pure. Since ABI 1.0. */
int64_t starling_scrape_clock_back(int64_t earliest_due_ms, int64_t now_ms, int64_t interval_ms);

/* Whether this node scrapes the target with this key in the slot starting
 * now: always without clustering, else the cluster service's answer (one
 * replica). Since ABI 1.0. */
bool starling_scrape_owns(const struct starling_host_api *api, starling_component *self,
			  bool clustering, uint64_t key);

/* Whether this node scrapes the target with this key in the slot that
 * starts at at_ms (wall clock): always without clustering, else whether it
 * is among the first `replicas` owners (0 counts as 1; all participants
 * when there are fewer) of the view in force at that time: the host's
 * cluster_owns_at, so hand-overs announced ahead take effect on the same
 * slot on every node (cluster_owns on a 1.0 host). Since ABI 1.1. */
bool starling_scrape_owns_at(const struct starling_host_api *api, starling_component *self,
			     bool clustering, unsigned replicas, uint64_t key, int64_t at_ms);

/*
 * Catch-up after an owner's death. The cluster ends a crashed member's span
 * when this node first suspected it (a failed probe came after the crash),
 * so once it is declared dead, the slots that started from then on are the
 * survivors', retroactively; every other change of a slot that has started
 * only takes it away from this node (a member joining), since the spans of
 * members that left or died are kept. A target that skipped its current
 * slot as owned elsewhere is therefore scraped at once, counted as that
 * slot, when a view change makes it this node's: the dead owner scraped
 * nothing then, and a slot that started before the suspicion stays skipped
 * (the dead owner may have scraped it). Graceful hand-overs never trigger
 * it: they take effect at announced slot times.
 */

/* No slot skipped. */
#define STARLING_SCRAPE_NO_SLOT INT64_MIN

/* Whether the cluster's view changed since *seen_epoch, which it updates
 * (the host's cluster_epoch; one mutex). False without clustering. Since
 * ABI 1.1. */
bool starling_scrape_view_changed(const struct starling_host_api *api, starling_component *self,
				  bool clustering, uint64_t *seen_epoch);

/* After a view change, for a target whose last slot *skipped was skipped as
 * owned elsewhere (STARLING_SCRAPE_NO_SLOT: none): true when that slot is
 * still the current one and at most half over (skipped <= now_ms <=
 * skipped + interval_ms / 2; later, the next slot is at most half an
 * interval away and no two scrapes of a target come closer than that) and
 * this node owns it now; the caller then scrapes it at once as that slot.
 * Clears *skipped when true or when the slot is past its half. Since ABI
 * 1.1. */
bool starling_scrape_catch_up(const struct starling_host_api *api, starling_component *self,
			      bool clustering, unsigned replicas, uint64_t key, int64_t *skipped,
			      int64_t interval_ms, int64_t now_ms);

/* Most owners a target may ask for (the host's cluster_owners limit). */
#define STARLING_SCRAPE_MAX_REPLICAS 16

/* Read a component's clustering.replicas (default 1) into *out: 0, or
 * -EINVAL with a message in err when it is outside 1..16. Since ABI 1.1. */
int starling_scrape_replicas(const struct starling_host_api *api, const starling_config *cfg,
			     unsigned *out, char *err, size_t errlen);

/* For list_targets: ti has labels, key and the last scrape's status filled
 * in; this sets owned_here and owner (the cluster's owner of ti->key, or this
 * node when it scrapes the target itself), reports the health as unknown on
 * a node that does not scrape the target, and calls emit(ctx, ti). The owner
 * string lives only during the call. Since ABI 1.0. */
void starling_scrape_emit_target(const struct starling_host_api *api, starling_component *self,
				 bool clustering, struct starling_target_info *ti,
				 starling_target_emit_fn emit, void *ctx);

/* As starling_scrape_emit_target, with owned_here meaning "among the first
 * `replicas` owners now". Since ABI 1.1. */
void starling_scrape_emit_target_n(const struct starling_host_api *api, starling_component *self,
				   bool clustering, unsigned replicas,
				   struct starling_target_info *ti, starling_target_emit_fn emit,
				   void *ctx);

/* One turn of the scrape loop's wait: drive the client for wait_ms, clamped
 * to 0..STARLING_SCRAPE_MAX_WAIT_MS; when the client cannot poll, sleep
 * instead (at least 10 ms) so the loop never spins. Since ABI 1.0. */
void starling_scrape_wait(struct starling_http_client *http, int64_t wait_ms);

#ifdef __cplusplus
}
#endif
#endif
