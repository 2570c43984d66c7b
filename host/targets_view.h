/*
 * The cluster-wide targets view (GET /api/v0/targets and the /targets page):
 * every target of every component that lists targets, each with its
 * owner's view of it (last scrape, duration, health, last error). Rows this
 * node does not scrape are filled in from the owner's own answer to
 * GET /api/v0/targets?scope=local, fetched from the HTTP address the owner
 * advertises in the cluster (starling_http tag) and from nowhere else. A
 * fetch is bounded in time (TARGETS_VIEW_FETCH_MS for all owners together,
 * in parallel) and size (TARGETS_VIEW_MAX_BYTES); a slow, huge or malformed
 * answer is cut, counted and shown as "no answer".
 *
 * Thread-safe: each call builds its own view.
 */
#ifndef STARLING_HOST_TARGETS_VIEW_H
#define STARLING_HOST_TARGETS_VIEW_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cluster/cluster.h"
#include "runtime.h"

#define TARGETS_VIEW_FETCH_MS  2000
#define TARGETS_VIEW_MAX_BYTES (4 << 20)

/* Filters, from the query string; NULL / false = no filter. */
struct targets_filter {
	const char *component; /* exact component id */
	const char *job;       /* exact job label */
	const char *q;	       /* substring of labels, owner, error (case-insensitive) */
	bool unhealthy;	       /* only rows whose health is not "up" */
};

/* Build the view: {"node", "generated_ms", "nodes":[...], "jobs":[...],
 * "components":[...], "targets":[...]}. local_only: this node's own rows
 * only, nothing fetched (the answer peers ask for). Rows are sorted by job,
 * instance, component; nodes by name. NULL on no memory. */
cJSON *targets_view_build(struct runtime *rt, struct cluster *cl, bool local_only,
			  const struct targets_filter *f);

/* An owner's answer (untrusted bytes) as {"targets":[...]} in *out (the
 * caller deletes it): 0, or -EBADMSG when it is not that shape. */
int targets_view_parse_answer(const char *body, size_t len, cJSON **out);

/* Copy the owner's view of row (matched by "component" and "key") from
 * answer into row: last scrape, duration, health, last error; "view" becomes
 * "owner". Fields of the wrong type are ignored. False when the owner does
 * not list the target. */
bool targets_view_fill_row(cJSON *row, const cJSON *answer);

/* starling_targets_view_* counters in Prometheus text format. */
void targets_view_write_metrics(FILE *out);

#endif
