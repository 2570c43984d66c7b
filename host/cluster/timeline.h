/*
 * Ownership over time, private to host/cluster/: each participant owns keys
 * during an announced span [from, until) of wall-clock ms (a joining node's
 * start time, a leaving node's hand-over time), so every node that has heard
 * the announcements computes the same owners for a slot from the slot's own
 * time, whenever it asks. A timeline is an immutable snapshot of the spans;
 * the views between two consecutive span ends are built on first use and
 * kept until the timeline is freed. A name may have several spans (a
 * member's earlier life that ended, beside its current one); it owns
 * wherever one of them covers the time, once.
 *
 * Not thread-safe: the cluster service calls it under its lock.
 */
#ifndef STARLING_HOST_CLUSTER_TIMELINE_H
#define STARLING_HOST_CLUSTER_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ownership.h"

#define TIMELINE_ALWAYS INT64_MIN /* from: owning since forever */
#define TIMELINE_NEVER	INT64_MAX /* until: no end announced */

struct timeline_member {
	const char *name; /* copied by timeline_new */
	double weight;	  /* > 0 */
	int64_t from;	  /* unix ms, or TIMELINE_ALWAYS */
	int64_t until;	  /* unix ms, or TIMELINE_NEVER; until <= from: never owns */
};

struct timeline;

/* Copy n members (any order). NULL on allocation failure. */
struct timeline *timeline_new(const struct timeline_member *m, size_t n);
void timeline_free(struct timeline *tl);

/* Whether tl holds exactly these members and spans (order free). */
bool timeline_equal(const struct timeline *tl, const struct timeline_member *m, size_t n);

/* The view of the members owning at time t (epoch 0); owned by tl, valid
 * until timeline_free. NULL only on allocation failure. *next (optional)
 * gets the first time after t at which the set changes (TIMELINE_NEVER if
 * none). */
const struct ownership_view *timeline_view_at(struct timeline *tl, int64_t t, int64_t *next);

/* The announced spans, for display. */
size_t timeline_count(const struct timeline *tl);
const struct timeline_member *timeline_member_at(const struct timeline *tl, size_t i);

#endif
