/*
 * Rendezvous (highest-random-weight) ownership over XXH3-64, private to
 * host/cluster/. A view is an immutable snapshot of the participants.
 */
#ifndef STARLING_HOST_CLUSTER_OWNERSHIP_H
#define STARLING_HOST_CLUSTER_OWNERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ownership_member {
	const char *name;   /* owned by the view */
	uint64_t name_seed; /* XXH3-64 of name, precomputed */
	double weight;	    /* > 0 */
};

struct ownership_view {
	uint64_t epoch;
	size_t n;
	bool weighted;			  /* some weight differs from 1.0: use the log method */
	struct ownership_member *members; /* sorted by name */
};

/* Build a view from names and weights (weights NULL = all 1.0). Copies the
 * names. Returns NULL on allocation failure. */
struct ownership_view *ownership_view_new(uint64_t epoch, const char *const *names,
					  const double *weights, size_t n);
void ownership_view_free(struct ownership_view *v);

/* Score of key on member m: higher wins. In a weighted view every member
 * uses the logarithmic method (score = -w / ln(u)), so a member of weight 2
 * owns twice the keys of one of weight 1; in an unweighted view the score is
 * the 53-bit hash itself (same order, no log). */
double ownership_score(const struct ownership_view *v, const struct ownership_member *m,
		       uint64_t key);

/* Indices of the top n owners of key, best first; returns how many. */
size_t ownership_owners(const struct ownership_view *v, uint64_t key, size_t *out, size_t n);

#endif
