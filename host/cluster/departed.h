/*
 * Spans of members that are gone, private to host/cluster/: a member
 * declared dead or that left keeps the span it owned by, [from, until),
 * after the engine forgets it (memberlist reaps the dead after
 * GossipToTheDeadTime), so that the owners of a past slot never change when
 * a member leaves the member table. The owners of a slot that has started
 * then change only because a death cut a member's span short (the span of a
 * crashed member ends when this node first suspected it) or because a
 * member was added (which only takes keys away); the scrapers rely on that
 * to catch up, at once, the current slot of a target whose owner died
 * (see README "Failover").
 *
 * Bounded: at most cap spans (the one that ended first goes when full), and
 * a span is dropped keep_ms after it ended.
 *
 * Not thread-safe: the cluster service calls it under its lock.
 */
#ifndef STARLING_HOST_CLUSTER_DEPARTED_H
#define STARLING_HOST_CLUSTER_DEPARTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timeline.h"

/* The end of a gone member's span, from its announced span and down (unix
 * ms): when this node first saw it not alive (suspected it, or heard it
 * dead or left, whichever came first). A crashed member stopped before
 * then, since a failed probe came after the crash: its span ends at
 * min(until, down). A member that left kept owning until its announced
 * hand-over time (its leave comes after it), or until its leave arrived
 * when it announced none or left before that time: min(until, down) too,
 * where down is when its leave (or an earlier suspicion) reached us. */
int64_t departed_until(int64_t until, int64_t down);

struct departed;

/* NULL on allocation failure. */
struct departed *departed_new(size_t cap, int64_t keep_ms);
void departed_free(struct departed *d);

/* Keep (or update) the span of a gone member's life, told apart by name and
 * from. A span that owns at no time (until <= from) is not kept. True when
 * the span is new. */
bool departed_note(struct departed *d, const char *name, double weight, int64_t from,
		   int64_t until);
/* That life is back (a death refuted): forget its span. */
void departed_forget(struct departed *d, const char *name, int64_t from);
/* Drop the spans that ended more than keep_ms before now (unix ms). */
void departed_expire(struct departed *d, int64_t now);

size_t departed_count(const struct departed *d);
/* The i-th span; name valid until the next call that changes d. */
const struct timeline_member *departed_at(const struct departed *d, size_t i);

#endif
