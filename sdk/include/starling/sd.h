/*
 * Service discovery helpers for discovery.* plugins (static SDK library).
 *
 * struct starling_sd_groups keeps target groups keyed by their Source, as
 * Prometheus' discovery manager does (discovery/targetgroup/targetgroup.go):
 * setting a group replaces the previous group of that source, a group with
 * no targets deletes it, and the published set is the union of all groups,
 * ordered by source. Group labels are merged into every target; on a clash
 * the target's own label wins (Alloy internal/component/discovery/target.go).
 *
 * struct starling_sd_refresh runs a refresh-type discoverer the way
 * Prometheus' discovery/refresh/refresh.go does: refresh at start and then
 * every interval on a host worker thread (never two at once); a failed
 * refresh keeps the last groups and marks the component unhealthy until the
 * next success; the set is published (forward_targets) after the first
 * refresh, even when empty, and afterwards whenever it changed.
 */
#ifndef STARLING_SD_H
#define STARLING_SD_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct starling_sd_groups;

/* Since ABI 1.1. NULL on ENOMEM. */
struct starling_sd_groups *starling_sd_groups_new(void);
void starling_sd_groups_free(struct starling_sd_groups *g);

/* Replace the group `source` by `targets` (each a label set, any order),
 * with `group_labels` (may be NULL) added to each target where the target
 * has no label of that name. Every string is copied. n_targets == 0 removes
 * the group. Returns 1 when the stored set changed, 0 when it did not,
 * -EINVAL (a label with an empty or NULL name) or -ENOMEM (the group is
 * unchanged then). Thread-safe. Since ABI 1.1. */
int starling_sd_groups_set(struct starling_sd_groups *g, const char *source,
			   const struct starling_label *group_labels, size_t n_group_labels,
			   const struct starling_target *targets, size_t n_targets);

/* Drop every group whose source is not in `keep` (n_keep entries). Returns
 * 1 if any was dropped, else 0. Thread-safe. Since ABI 1.1. */
int starling_sd_groups_retain(struct starling_sd_groups *g, const char *const *keep, size_t n_keep);

/* Incremented by every change of the stored set. Thread-safe. Since 1.1. */
uint64_t starling_sd_groups_generation(struct starling_sd_groups *g);

/* Number of targets over all groups. Thread-safe. Since ABI 1.1. */
size_t starling_sd_groups_count(struct starling_sd_groups *g);

/* Publish the union through api->forward_targets when the host has it
 * (an older host: returns -EOPNOTSUPP and logs nothing). Labels of every
 * target are sorted by name. Thread-safe. Since ABI 1.1. */
int starling_sd_groups_publish(struct starling_sd_groups *g, const struct starling_host_api *api,
			       starling_component *self);

/* Emit every target for list_targets (health unknown, owner NULL). The
 * labels passed to emit are valid during the call. Thread-safe. Since 1.1. */
int starling_sd_groups_list(struct starling_sd_groups *g, starling_target_emit_fn emit, void *ctx);

/* ------------------------------------------------------------------------ */

/* One refresh: fill `g` (set the groups of every source it found; sources
 * it no longer reports should be dropped with starling_sd_groups_retain).
 * Return 0 on success; on failure a negative errno and a one-line reason in
 * err (no secrets). A failing refresh may still have updated some groups
 * (e.g. DNS names that did resolve). Runs on a host worker thread. */
typedef int (*starling_sd_refresh_fn)(void *arg, struct starling_sd_groups *g, char *err,
				      size_t errlen);

struct starling_sd_refresh;

/* interval_ms > 0. `g` stays the caller's (it must outlive the refresher).
 * Since ABI 1.1. */
struct starling_sd_refresh *starling_sd_refresh_new(const struct starling_host_api *api,
						    starling_component *self,
						    struct starling_sd_groups *g,
						    int64_t interval_ms, starling_sd_refresh_fn fn,
						    void *arg);
/* Start the timer (first refresh right away). From start(). */
int starling_sd_refresh_start(struct starling_sd_refresh *r);
/* Stop refreshing: cancels the timer; a refresh already running finishes
 * but publishes nothing. From stop(). */
void starling_sd_refresh_stop(struct starling_sd_refresh *r);
/* Free; no refresh may be running (the host drains work before destroy). */
void starling_sd_refresh_free(struct starling_sd_refresh *r);
/* True from stop() until the next start(): a long refresh should give up.
 * Thread-safe. */
bool starling_sd_refresh_stopping(struct starling_sd_refresh *r);
/* Refreshes and failed refreshes so far (for tests and metrics). */
void starling_sd_refresh_stats(struct starling_sd_refresh *r, uint64_t *runs, uint64_t *failures);

/* Component callbacks for a refresh-type discovery component whose instance
 * struct has a `struct starling_sd_refresh *` as its FIRST member (the
 * targets API lists the refresher's groups):
 *   .start = starling_sd_component_start, .stop = starling_sd_component_stop,
 *   .list_targets = starling_sd_component_list_targets */
int starling_sd_component_start(void *inst);
int starling_sd_component_stop(void *inst);
int starling_sd_component_list_targets(void *inst, starling_target_emit_fn emit, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* STARLING_SD_H */
