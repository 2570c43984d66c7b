/*
 * What every scraping component repeats around its scrape engine (static
 * SDK library), used by prometheus.scrape, prometheus.operator.* and
 * pyroscope.scrape: the self-metrics they register, the scrape thread's
 * loop, the bookkeeping of owned targets, the common part of following a
 * discovery source's target set, and (for the Prometheus engine of
 * <starling/scrape.h>) the completion of a scrape and the end of a target
 * that left.
 *
 * Thread-safety: as the host API; the loop runs on the component's own
 * scrape thread. Memory: nothing is kept beyond the caller's structs.
 *
 * Since ABI 1.1 (the target-set helpers need a 1.1 host).
 */
#ifndef STARLING_SCRAPE_POOL_H
#define STARLING_SCRAPE_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <starling/http.h>
#include <starling/plugin.h>
#include <starling/target_set.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- config every scraper reads alike ----------------------------------- */

/* One URL query parameter of `params`. */
struct starling_scrape_param {
	char *name;
	char *value;
};

/* `scheme` (default "http"; "http" or "https", else -EINVAL with
 * "file:line: scheme must be http or https, not ..." in err). */
int starling_scrape_scheme(const struct starling_host_api *api, const starling_config *cfg,
			   char **out, char *err, size_t errlen);
/* The `params` map, sorted by name (NULL/0 when absent). A member may be a
 * string or a list of strings (schema key with STARLING_CFG_F_MULTI_VALUE):
 * one entry per value, the values of one name in their config order, as
 * Prometheus' url.Values (`module = ["a", "b"]` sends module=a&module=b). */
int starling_scrape_params(const struct starling_host_api *api, const starling_config *cfg,
			   struct starling_scrape_param **out, size_t *n_out, char *err,
			   size_t errlen);
void starling_scrape_params_free(struct starling_scrape_param *p, size_t n);
/* The strings of a string-list key at `path` (NULL/0 when absent); on
 * error what was read so far stays in *out and *n_out for the caller to free. */
int starling_scrape_string_list(const struct starling_host_api *api, const starling_config *cfg,
				const char *path, char ***out, size_t *n_out, char *err,
				size_t errlen);
void starling_scrape_strv_free(char **v, size_t n);
/* The `clustering` group: enabled, key_labels, exclude_labels. */
int starling_scrape_clustering(const struct starling_host_api *api, const starling_config *cfg,
			       bool *enabled, char ***key_labels, size_t *n_key_labels,
			       char ***exclude_labels, size_t *n_exclude_labels, char *err,
			       size_t errlen);

/* The self-metrics of a scraping component. */
struct starling_scrape_metrics {
	starling_metric *targets;   /* gauge: targets (scrape units) it has */
	starling_metric *owned;	    /* gauge: of those, scraped by this node */
	starling_metric *forwarded; /* counter: samples / profiles forwarded */
	starling_metric *scrapes;   /* counter: scrapes performed */
	starling_metric *failures;  /* counter: failed scrapes */
	starling_metric *missed;    /* counter: slots skipped, previous scrape still running */
	starling_metric *dropped;   /* counter: discovered targets that cannot be scraped */
	starling_metric *moved;	    /* counter: targets that moved to another node */
	starling_metric *catch_up;  /* counter: current slots caught up after an owner's death */
};

enum starling_scrape_kind {
	STARLING_SCRAPE_PROMETHEUS, /* prometheus_scrape_targets_gauge, starling_scrape_* ... */
	STARLING_SCRAPE_PYROSCOPE,  /* pyroscope_scrape_targets_gauge, starling_pyroscope_* ... */
};

/* Register the metrics under the names of `kind` (see the plugins'
 * READMEs). */
void starling_scrape_metrics_register(const struct starling_host_api *api, starling_component *self,
				      enum starling_scrape_kind kind,
				      struct starling_scrape_metrics *m);

/* The scrape thread: until *stopping, wait = schedule(arg, api->now_ms())
 * with lock held, then starling_scrape_wait(http, wait). */
void starling_scrape_loop(const struct starling_host_api *api, struct starling_http_client *http,
			  atomic_bool *stopping, pthread_mutex_t *lock,
			  int64_t (*schedule)(void *arg, int64_t now_ms), void *arg);

/* The component lock of a scraper: recursive, since a submit that fails at
 * once completes (and takes the lock) inside the schedule pass. */
void starling_scrape_lock_init(pthread_mutex_t *lock);

/* The scrape thread's life, around starling_scrape_loop():
 * starling_scrape_http_new() makes its HTTP client (a failure is logged);
 * starling_scrape_thread_spawn() starts fn(arg), or logs, frees the client
 * (*http = NULL) and returns -errno; starling_scrape_thread_join() sets
 * *stopping, wakes the client, joins the thread and frees the client, which
 * cancels what is in flight (completion callbacks see *stopping). */
int starling_scrape_http_new(const struct starling_host_api *api, starling_component *self,
			     struct starling_http_client **http);
int starling_scrape_thread_spawn(const struct starling_host_api *api, starling_component *self,
				 struct starling_http_client **http, pthread_t *thread,
				 void *(*fn)(void *), void *arg);
void starling_scrape_thread_join(struct starling_http_client **http, pthread_t thread,
				 atomic_bool *stopping);

/* A target's ownership at its slot changed from *was to now: adjusts
 * *owned (under lock, when not NULL), the owned gauge and the host's target
 * counts (total), and sets *was. No-op when unchanged. */
void starling_scrape_owned_changed(const struct starling_host_api *api, starling_component *self,
				   const struct starling_scrape_metrics *m, pthread_mutex_t *lock,
				   size_t *owned, size_t total, bool *was, bool now);

/* The ownership gauge and the host's target counts after a cluster change
 * or a new target list. */
void starling_scrape_report(const struct starling_host_api *api, starling_component *self,
			    const struct starling_scrape_metrics *m, size_t owned, size_t total);

/* receive_targets' first half: keep `set` as the latest set of `source`
 * in tl; a refused set (invalid, no memory) is logged and its error
 * returned. */
int starling_scrape_take_set(const struct starling_host_api *api, starling_component *self,
			     struct starling_target_list *tl, const char *source,
			     const struct starling_target_set *set);

/* After rebuilding the targets from a target list: count `dropped`
 * discovered targets and log them with the first reason. */
void starling_scrape_note_dropped(const struct starling_host_api *api, starling_component *self,
				  const struct starling_scrape_metrics *m, size_t dropped,
				  const char *first_reason);

/* An index of items by a 64-bit hash (open addressing), so that following
 * a new target list matches it against the current one in O(n) instead of
 * comparing every pair. Items are the caller's; equal keys may repeat
 * (collisions are told apart by eq()). */
struct starling_scrape_index {
	uint64_t *keys;
	void **items; /* NULL: empty; STARLING_SCRAPE_INDEX_GONE: taken */
	size_t cap;
};

/* Room for n items; returns 0 or -ENOMEM. */
int starling_scrape_index_init(struct starling_scrape_index *ix, size_t n);
void starling_scrape_index_free(struct starling_scrape_index *ix);
/* Add item under key (at most n items in all). */
void starling_scrape_index_add(struct starling_scrape_index *ix, uint64_t key, void *item);
/* The first item under key with eq(item, arg) true, or NULL; `take`
 * removes it from the index. */
void *starling_scrape_index_find(struct starling_scrape_index *ix, uint64_t key,
				 bool (*eq)(const void *item, const void *arg), const void *arg,
				 bool take);

/* --- the Prometheus engine (<starling/scrape.h>) ------------------------- */

struct scrape_ctx;
struct scrape_target;
struct scrape_stats;

/* A finished scrape of t, on the scrape thread: ignored (in_flight
 * cleared, returns 1) once *stopping; else scrape_complete() under lock
 * (its result returned, *st filled) and starling_scrape_account(). */
struct starling_http_response;
int starling_scrape_finish(struct scrape_ctx *ctx, struct scrape_target *t,
			   const struct starling_http_response *resp, pthread_mutex_t *lock,
			   atomic_bool *stopping, const struct starling_scrape_metrics *m,
			   struct scrape_stats *st);

/* Account a finished scrape (scrape_complete()'s rc and stats): scrapes,
 * forwarded samples, failures, and a warning naming the target. */
void starling_scrape_account(const struct starling_host_api *api, starling_component *self,
			     const struct starling_scrape_metrics *m, const struct scrape_target *t,
			     int rc, const struct scrape_stats *st);

/* A target that left: false while it must wait (a scrape in flight, or
 * before its retire_ms, lowering *wait to the time left); true once done:
 * its end-of-run staleness markers went out at retire_ms if this node
 * scraped it (Prometheus' endOfRunStaleness, scrape/scrape.go), and the
 * caller frees it. */
bool starling_scrape_retire_step(struct scrape_ctx *ctx, struct scrape_target *t, int64_t now_ms,
				 int64_t *wait);

#ifdef __cplusplus
}
#endif
#endif
