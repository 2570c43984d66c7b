/*
 * Mock host API for plugin unit tests: every member of struct
 * starling_host_api implemented in-process, no daemon needed.
 *
 *   struct mock_host *m = mock_host_new("prometheus.remote_write.t",
 *                                       type->schema, "endpoint = ( { url = \"...\"; } );",
 *                                       err, sizeof(err));
 *   void *inst;
 *   type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst);
 *
 * - Config: parsed from a libconfig string (the body of one component group);
 *   getters apply the schema defaults like the host does. Durations accept
 *   "1h2m3s4ms", bytes accept "10MiB", "512KB", "1GB" or integers.
 * - Forwards: forward_series/forward_profile deep-copy what they get; read it
 *   back with mock_host_forwarded_*() or chain a receiver.
 * - Timers never fire on their own: mock_host_advance(m, ms) moves the mock
 *   clock (now_ms/monotonic_ms are real time + a manual offset) and fires the
 *   due timers in order on the calling thread; mock_host_fire_timers() fires
 *   every live timer once.
 * - Metrics: readable by name (+ label string) with mock_host_metric();
 *   metric_register_labels() arrays are kept in the "k=v,k2=v2" form too.
 * - Target sets (ABI 1.1): forward_targets() checks the set like the host
 *   (-EINVAL unless labels are sorted and unique) and keeps a deep copy of
 *   the latest one (mock_host_last_targets()); a receiver may be chained.
 *   mock_host_deliver_targets() calls a type's receive_targets() on the
 *   calling thread; build sets with mock_targets_new()/mock_targets_add().
 * - work_submit runs fn on a new thread; mock_host_free() joins them.
 * - Cluster: one node "mock-node" that owns every key unless an owns
 *   predicate is set (by slot time with mock_host_set_owns_at);
 *   mock_host_cluster_change() sets the epoch and calls the subscriber.
 *
 * Thread-safe like the real host. The clock offset is process-wide.
 */
#ifndef STARLING_MOCK_HOST_H
#define STARLING_MOCK_HOST_H

#include <starling/plugin.h>

struct mock_host;

/* schema may be NULL (then no defaults). config_text may be NULL or "". */
struct mock_host *mock_host_new(const char *component_id, const struct starling_config_key *schema,
				const char *config_text, char *err, size_t errlen);
/* Replace the config (for update() tests); old strings stay valid until free. */
int mock_host_set_config(struct mock_host *m, const char *config_text, char *err, size_t errlen);
void mock_host_free(struct mock_host *m);

const struct starling_host_api *mock_host_api(struct mock_host *m);
starling_component *mock_host_self(struct mock_host *m);
const starling_config *mock_host_config(struct mock_host *m);

/* Directory state_dir() returns (created if missing). Default: a fresh
 * mkdtemp directory under /tmp, removed by nobody (tests clean up). */
void mock_host_set_state_dir(struct mock_host *m, const char *dir);

/* Sum of the values of registered metrics called `name` whose label string
 * contains `labels_substr` (NULL: any). NAN if none is registered. */
double mock_host_metric(struct mock_host *m, const char *name, const char *labels_substr);

/* Logging: lines are printed to stderr (unless quiet) and kept. */
void mock_host_set_quiet(struct mock_host *m, bool quiet);
/* Number of kept log lines at or below `level` containing substr (NULL: any). */
size_t mock_host_log_count(struct mock_host *m, enum starling_log_level level, const char *substr);

/* Timers and clock. */
void mock_host_advance(struct mock_host *m, int64_t ms);
size_t mock_host_fire_timers(struct mock_host *m);
size_t mock_host_timer_count(struct mock_host *m);

/* Forwards. */
typedef int (*mock_host_receiver_fn)(void *arg, const struct starling_series_batch *b);
void mock_host_set_receiver(struct mock_host *m, mock_host_receiver_fn fn, void *arg);
size_t mock_host_forwarded_batches(struct mock_host *m);
size_t mock_host_forwarded_samples(struct mock_host *m);
/* Deep copy of the i-th forwarded batch, owned by the mock. */
const struct starling_series_batch *mock_host_forwarded_batch(struct mock_host *m, size_t i);
size_t mock_host_forwarded_profiles(struct mock_host *m);
void mock_host_clear_forwarded(struct mock_host *m);

/* Health. *msg (when msg is not NULL) is the last message, valid until
 * mock_host_free() even if the component sets another one meanwhile. */
bool mock_host_healthy(struct mock_host *m, const char **msg);
void mock_host_targets(struct mock_host *m, size_t *owned, size_t *total);

/* Cluster. */
typedef bool (*mock_host_owns_fn)(void *arg, uint64_t key, unsigned replicas);
void mock_host_set_owns(struct mock_host *m, mock_host_owns_fn fn, void *arg);
/* Ownership by slot time (cluster_owns_at, ABI 1.1); when set it answers
 * both cluster_owns_at and cluster_owns (at now_ms). Without it,
 * cluster_owns_at answers as cluster_owns, whatever the time. */
typedef bool (*mock_host_owns_at_fn)(void *arg, uint64_t key, unsigned replicas, int64_t at_ms);
void mock_host_set_owns_at(struct mock_host *m, mock_host_owns_at_fn fn, void *arg);
/* Set the epoch and call the subscriber (if any) synchronously. */
void mock_host_cluster_change(struct mock_host *m, uint64_t epoch);

/* Target sets. fn, if set, is called synchronously by forward_targets()
 * with this instance's id as the source (the real host delivers later, on
 * its own thread, and may skip intermediate sets). */
typedef void (*mock_host_targets_fn)(void *arg, const char *source,
				     const struct starling_target_set *set);
void mock_host_set_targets_receiver(struct mock_host *m, mock_host_targets_fn fn, void *arg);
/* How many sets forward_targets() accepted so far. */
size_t mock_host_forwarded_target_sets(struct mock_host *m);
/* Deep copy of the latest accepted set, owned by the mock (NULL if none);
 * valid until mock_host_free(), even after the next forward_targets(). */
const struct starling_target_set *mock_host_last_targets(struct mock_host *m);
/* Call type->receive_targets(inst, source, set) on the calling thread (so
 * serialised with mock timers, which also fire on the test thread). A NULL
 * set delivers an empty one (what the host sends when a reload removes the
 * source). -EOPNOTSUPP if the type has no receive_targets. */
int mock_host_deliver_targets(const struct starling_component_type *type, void *inst,
			      const char *source, const struct starling_target_set *set);
/* The value of label `name` of a target, NULL if absent. */
const char *mock_target_label(const struct starling_target *t, const char *name);

/* A target set builder:
 *   struct mock_targets *mt = mock_targets_new();
 *   mock_targets_add(mt, "__address__=127.0.0.1:9100", "job=node", NULL);
 *   mock_host_deliver_targets(type, inst, "discovery.file.x", mock_targets_set(mt));
 *   mock_targets_free(mt);
 * Labels are "name=value" strings (split at the first '='), sorted by the
 * builder; a repeated name keeps the last value. */
struct mock_targets;
struct mock_targets *mock_targets_new(void);
void mock_targets_add(struct mock_targets *mt, const char *label, ...) __attribute__((sentinel));
const struct starling_target_set *mock_targets_set(struct mock_targets *mt);
void mock_targets_free(struct mock_targets *mt);

/* Wait for every work_submit() thread started so far. */
void mock_host_wait_work(struct mock_host *m);

#endif
