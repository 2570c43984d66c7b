/*
 * Starling plugin ABI.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * starling_plugin_entry(), returning a pointer to a constant
 * struct starling_plugin_descriptor. Everything else the plugin needs from the
 * daemon arrives through the host API table (struct starling_host_api) passed
 * to each component type's create() callback. Plugins import nothing from the
 * host binary: build them with -fvisibility=hidden -Wl,--no-undefined.
 *
 * Versioning (see sdk/ABI.md): a minor version only appends members at the end
 * of a struct; anything else bumps the major. The host copies
 * min(struct_size, sizeof) of every plugin-provided struct into a zeroed copy,
 * and a plugin checks a host API member with STARLING_API_HAS() before use.
 *
 * Every function in the host API table is thread-safe. Callbacks of one
 * component instance never run concurrently with each other, unless the type
 * sets STARLING_TYPE_REENTRANT_RECEIVE, in which case receive_series() and
 * receive_profile() may run concurrently with each other and with timers.
 */
#ifndef STARLING_PLUGIN_H
#define STARLING_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "STARLING" in ASCII, little-endian. Frozen forever. */
#define STARLING_PLUGIN_MAGIC UINT64_C(0x474e494c52415453)
#define STARLING_ABI_MAJOR    1
#define STARLING_ABI_MINOR    1
#define STARLING_ENTRY_SYMBOL "starling_plugin_entry"

#if defined(__GNUC__)
#define STARLING_EXPORT	      __attribute__((visibility("default")))
#define STARLING_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STARLING_EXPORT
#define STARLING_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------------ */
/* Opaque handles (owned by the host).                                       */

/* One running component instance, as the host sees it. */
typedef struct starling_component starling_component;
/* A node of the validated configuration tree of one instance. */
typedef struct starling_config starling_config;
/* A repeating or one-shot timer. */
typedef struct starling_timer starling_timer;
/* A self-metric registered by a component. */
typedef struct starling_metric starling_metric;

/* ------------------------------------------------------------------------ */
/* Data exchanged between components.                                        */

/* The Prometheus staleness marker: a NaN with this exact bit pattern. */
#define STARLING_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* One label. Strings are NUL-terminated and owned by the producer; they are
 * valid only for the duration of the receive callback. */
struct starling_label {
	const char *name;
	const char *value;
};

enum starling_metric_type {
	STARLING_METRIC_UNKNOWN = 0,
	STARLING_METRIC_COUNTER,
	STARLING_METRIC_GAUGE,
	STARLING_METRIC_HISTOGRAM,
	STARLING_METRIC_GAUGE_HISTOGRAM,
	STARLING_METRIC_SUMMARY,
	STARLING_METRIC_INFO,
	STARLING_METRIC_STATESET,
};

/* One series with one or more samples. Labels are sorted by name (byte
 * order), names unique, __name__ included. `hash` is XXH3-64 of the label set
 * as computed by starling_labels_hash() (sdk/include/starling/labels.h): equal
 * label sets have equal hashes, so a sink may key caches on it (and must
 * tolerate, by comparing labels, the negligible chance of a collision). */
struct starling_series {
	const struct starling_label *labels;
	size_t n_labels;
	uint64_t hash;
	const double *values;	      /* n_samples values; may hold the stale NaN */
	const int64_t *timestamps_ms; /* n_samples timestamps, ms since epoch */
	size_t n_samples;
};

/* Optional metadata for a metric family (by metric family name). */
struct starling_metadata {
	const char *family;
	enum starling_metric_type type;
	const char *help; /* may be NULL */
	const char *unit; /* may be NULL */
};

/* A batch of series. Everything it points to is owned by the producer and
 * valid only during the receive callback: a sink copies what it keeps. */
struct starling_series_batch {
	const struct starling_series *series;
	size_t n_series;
	const struct starling_metadata *metadata; /* may be NULL */
	size_t n_metadata;
	/* --- since 1.1 ---------------------------------------------------
	 * NULL, or n_series entries parallel to `series`, each ext_size bytes
	 * apart (the producer's sizeof(struct starling_series_ext), so the
	 * struct can grow): read element i as
	 * (const struct starling_series_ext *)((const char *)ext + i * ext_size)
	 * and only the members that fit in ext_size. A 1.0 producer's batch
	 * reaches a 1.1 receiver with ext NULL (the host zero-extends it). */
	const struct starling_series_ext *ext;
	size_t ext_size;
};

/* One profile: a label set plus raw pprof bytes (gzip-compressed or not). */
struct starling_profile {
	const struct starling_label *labels;
	size_t n_labels;
	const uint8_t *data;
	size_t len;
	int64_t start_ms; /* time range covered */
	int64_t end_ms;
};

/* --- since 1.1: exemplars, native histograms, target sets -------------- */

/* One exemplar attached to a series (OpenMetrics / protobuf exposition). */
struct starling_exemplar {
	const struct starling_label *labels; /* sorted by name */
	size_t n_labels;
	double value;
	int64_t timestamp_ms; /* meaningful only when has_timestamp */
	bool has_timestamp;
};

/* A span of consecutive native-histogram buckets: `offset` buckets after the
 * previous span's end (or from index 0 for the first), `length` buckets. */
struct starling_bucket_span {
	int32_t offset;
	uint32_t length;
};

/* Native histogram reset hints, as remote write 1.0 defines them. */
enum starling_histogram_reset_hint {
	STARLING_HISTOGRAM_RESET_UNKNOWN = 0,
	STARLING_HISTOGRAM_RESET_YES = 1,
	STARLING_HISTOGRAM_RESET_NO = 2,
	STARLING_HISTOGRAM_RESET_GAUGE = 3,
};

/* One native-histogram sample, shaped like remote write 1.0's Histogram.
 * Integer histograms (is_float false) use count_int, zero_count_int and
 * delta-encoded *_deltas; float histograms use count_float, zero_count_float
 * and absolute *_counts. A stale native histogram has sum equal to the stale
 * NaN (STARLING_STALE_NAN_BITS) and no buckets. */
struct starling_histogram {
	int64_t timestamp_ms;
	bool is_float;
	uint64_t count_int;
	double count_float;
	double sum;
	int32_t schema;
	double zero_threshold;
	uint64_t zero_count_int;
	double zero_count_float;
	const struct starling_bucket_span *negative_spans;
	size_t n_negative_spans;
	const int64_t *negative_deltas; /* integer histograms */
	const double *negative_counts;	/* float histograms */
	size_t n_negative;		/* entries in negative_deltas or _counts */
	const struct starling_bucket_span *positive_spans;
	size_t n_positive_spans;
	const int64_t *positive_deltas;
	const double *positive_counts;
	size_t n_positive;
	enum starling_histogram_reset_hint reset_hint;
};

/* What a series carries beyond float samples. A series may have float
 * samples, histogram samples, or both; a series with only histograms has
 * n_samples == 0 (a 1.0 sink sees an empty series and should skip it). */
struct starling_series_ext {
	const struct starling_exemplar *exemplars;
	size_t n_exemplars;
	const struct starling_histogram *histograms;
	size_t n_histograms;
	/* --- appended in 1.1 (read only when the batch's ext_size covers
	 * it) -----------------------------------------------------------------
	 * NULL, or n_labels byte lengths of the series' label values: a value
	 * may then hold NUL bytes (valid in both text formats, kept by
	 * Prometheus) and is exactly that long, a NUL still following it. A
	 * receiver reading values as C strings sees them cut at the first NUL;
	 * one that sends labels byte for byte (remote write) uses the lengths.
	 * The series' hash is starling_labels_hash_n() over the exact bytes,
	 * so `abc\0` and `abc` are different series. */
	const size_t *label_value_lens;
	/* NULL, or 2 * n_labels byte lengths: name i's at [2i], value i's at
	 * [2i + 1] (appended after label_value_lens; read only when ext_size
	 * covers it). A producer that knows them (prometheus.scrape, from its
	 * interned label pairs) spares receivers that need them (remote
	 * write encodes them) a strlen() per string. They are what strlen()
	 * would count; where label_value_lens is set too, the value lengths
	 * equal it (and it alone still says that values may hold NULs). */
	const uint32_t *label_lens;
};

/* One discovered target: a label set (__address__, __meta_*, ...). Labels are
 * sorted by name, names unique. */
struct starling_target {
	const struct starling_label *labels;
	size_t n_labels;
};

/* The whole current list of targets of one producer. */
struct starling_target_set {
	const struct starling_target *targets;
	size_t n_targets;
};

/* ------------------------------------------------------------------------ */
/* Configuration schema.                                                     */
enum starling_config_type {
	STARLING_CFG_STRING = 1,
	STARLING_CFG_INT,   /* int64 */
	STARLING_CFG_FLOAT, /* double; an integer literal is accepted */
	STARLING_CFG_BOOL,
	STARLING_CFG_DURATION,	  /* string such as "15s", "1m30s", "250ms" */
	STARLING_CFG_BYTES,	  /* string such as "10MiB", "512KB", or an int */
	STARLING_CFG_STRING_LIST, /* [ "a", "b" ] */
	STARLING_CFG_GROUP,	  /* { key = value; ... } with `children` schema */
	STARLING_CFG_GROUP_LIST,  /* ( { ... }, { ... } ) each with `children` */
	STARLING_CFG_MAP,	  /* { any_key = "string"; ... } */
	STARLING_CFG_MAP_LIST,	  /* ( { any_key = "string"; ... }, ... ) */
	STARLING_CFG_REF_LIST,	  /* [ "type.name", ... ] component references */
	/* since 1.1: a list whose elements are inline targets (maps, as
	 * MAP_LIST) or strings naming components that produce target sets
	 * ( "discovery.file.nodes", { __address__ = "h:9100"; } ). The host
	 * checks every named component exists and produces targets, wires it
	 * to this instance and delivers its sets through receive_targets(). A
	 * type using it must declare a minimum host minor of 1. */
	STARLING_CFG_TARGETS,
};

/* One key of a schema. Arrays of keys end with an entry whose name is NULL. */
struct starling_config_key {
	const char *name;
	enum starling_config_type type;
	bool required;
	/* Default as it would be written in the file, without quotes, e.g. "15s",
	 * "true", "10". NULL means no default. Not used for groups and lists. */
	const char *default_value;
	const char *help;
	/* For GROUP and GROUP_LIST: the schema of the members. */
	const struct starling_config_key *children;
	/* For REF_LIST: the payload kind the referenced components must accept	 *
	 * (STARLING_ACCEPTS_* bits). */
	uint32_t ref_accepts;
	/* Growing this struct (since 1.1): append members; a component type
	 * states the size it was built with in schema_key_size and the host
	 * walks schema arrays with that stride. */
	/* --- appended in 1.1 (0 when the type's schema_key_size does not
	 * cover it) ---------------------------------------------------------
	 * STARLING_CFG_F_* bits. */
	uint32_t flags;
};

/* MAP and MAP_LIST keys: a member's value may be a string or a list of
 * strings ( params = { module = [ "http_2xx", "tcp" ]; target = "x"; } ),
 * like Prometheus' url.Values. A list value has config_count() elements,
 * each read with config_child() + config_string(); config_string() on the
 * list itself returns -EINVAL. Without the flag only strings are accepted.
 * A host that predates the flag refuses list values ("expected string"). */
#define STARLING_CFG_F_MULTI_VALUE (1u << 0)

/* ------------------------------------------------------------------------ */
/* Host API table, passed to create(). Append-only.                          */

enum starling_log_level {
	STARLING_LOG_ERROR = 0,
	STARLING_LOG_WARN = 1,
	STARLING_LOG_INFO = 2,
	STARLING_LOG_DEBUG = 3,
};

enum starling_self_metric_type {
	STARLING_SELF_COUNTER = 1,
	STARLING_SELF_GAUGE = 2,
};

/* What a component reports about one of its targets, for
 * GET /api/v0/components/{id}/targets and the web UI. */
enum starling_target_health {
	STARLING_TARGET_UNKNOWN = 0,
	STARLING_TARGET_UP,
	STARLING_TARGET_DOWN,
};

struct starling_target_info {
	const struct starling_label *labels; /* discovered/relabelled target labels */
	size_t n_labels;
	uint64_t key;	   /* target key used for ownership */
	const char *owner; /* node name that owns it (NULL: unknown) */
	bool owned_here;
	int64_t last_scrape_ms; /* 0 if never */
	int64_t last_duration_us;
	enum starling_target_health health;
	const char *last_error; /* NULL or "" when healthy */
};

typedef void (*starling_target_emit_fn)(void *ctx, const struct starling_target_info *t);

/* Longest node name the cluster service hands out, NUL included. */
#define STARLING_NODE_NAME_MAX 128

struct starling_node_name {
	char name[STARLING_NODE_NAME_MAX];
};

typedef void (*starling_timer_fn)(void *arg);
typedef void (*starling_cluster_change_fn)(void *arg, uint64_t epoch);

struct starling_host_api {
	/* Frozen head. */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t struct_size; /* sizeof(struct starling_host_api) in the host */

	/* --- logging (since 1.0) ---------------------------------------- */
	/* Log one line. The host adds time, level and component="<id>" and
	 * rate-limits identical repeated messages. */
	void (*log)(starling_component *self, enum starling_log_level level, const char *fmt, ...)
	    STARLING_PRINTF(3, 4);

	/* --- identity (since 1.0) --------------------------------------- */
	/* "<type>.<name>". Owned by the host, valid for the instance's life. */
	const char *(*component_id)(starling_component *self);
	/* Per-instance directory under the state directory, created on first
	 * call (e.g. /var/lib/starling/prometheus.remote_write.default).
	 * Owned by the host; NULL on failure. */
	const char *(*state_dir)(starling_component *self);

	/* --- configuration (since 1.0) ------------------------------------
	 * `node` is the instance's config (as passed to create/update) or a
	 * node obtained from config_lookup/config_child. `path` is a dotted
	 * path of group members below it ("clustering.enabled"); NULL or ""
	 * means the node itself. Getters return 0, -ENOENT when the key is
	 * absent and has no default, -EINVAL on a type mismatch. Strings are
	 * owned by the host and valid until the instance is destroyed or
	 * updated. */
	const starling_config *(*config_lookup)(const starling_config *node, const char *path);
	/* Elements of a list or members of a group/map; 0 for scalars. */
	size_t (*config_count)(const starling_config *node);
	const starling_config *(*config_child)(const starling_config *node, size_t index);
	/* The member name of a node inside a group or map, NULL for list elements. */
	const char *(*config_name)(const starling_config *node);
	int (*config_string)(const starling_config *node, const char *path, const char **out);
	int (*config_int)(const starling_config *node, const char *path, int64_t *out);
	int (*config_float)(const starling_config *node, const char *path, double *out);
	int (*config_bool)(const starling_config *node, const char *path, bool *out);
	int (*config_duration_ms)(const starling_config *node, const char *path, int64_t *out);
	int (*config_bytes)(const starling_config *node, const char *path, int64_t *out);
	/* "file:line" of a node, for error messages. Owned by the host. */
	const char *(*config_where)(const starling_config *node);

	/* --- time, timers and work (since 1.0) ----------------------------- */
	int64_t (*now_ms)(void);       /* wall clock, ms since the epoch */
	int64_t (*monotonic_ms)(void); /* monotonic clock */
	/* Run fn(arg) after first_ms, then every period_ms (0: once). Timer
	 * callbacks of one instance are serialised with its other callbacks.
	 * Returns NULL on failure. Cancelled automatically at stop(). */
	starling_timer *(*timer_start)(starling_component *self, int64_t first_ms,
				       int64_t period_ms, starling_timer_fn fn, void *arg);
	/* Cancel; waits for a running callback unless called from it. */
	void (*timer_cancel)(starling_component *self, starling_timer *timer);
	/* Run fn(arg) once on a host worker thread, not serialised with the
	 * instance's callbacks. For blocking work (HTTP, disk). */
	int (*work_submit)(starling_component *self, starling_timer_fn fn, void *arg);

	/* --- data (since 1.0) --------------------------------------------
	 * Push to every component named in this instance's forward_to. Runs
	 * the receivers synchronously on the calling thread; the batch is the
	 * caller's again when the call returns. Returns 0 or the first
	 * negative errno a receiver returned (the others still got it). */
	int (*forward_series)(starling_component *self, const struct starling_series_batch *batch);
	int (*forward_profile)(starling_component *self, const struct starling_profile *profile);

	/* --- self-metrics (since 1.0) -------------------------------------
	 * Register a metric shown on /metrics with component_id="<id>" plus
	 * the given constant labels ("k=v,k2=v2" or NULL). Registering the
	 * same name+labels twice returns the same handle. Freed with the
	 * instance. */
	starling_metric *(*metric_register)(starling_component *self,
					    enum starling_self_metric_type type, const char *name,
					    const char *help, const char *labels);
	void (*metric_add)(starling_metric *m, double delta);
	void (*metric_set)(starling_metric *m, double value);

	/* --- health (since 1.0) ------------------------------------------ */
	/* Mark the instance healthy (msg NULL) or unhealthy with a reason. */
	void (*set_health)(starling_component *self, bool healthy, const char *msg);
	/* Report target counts for /api/v0/components. */
	void (*report_targets)(starling_component *self, size_t owned, size_t total);

	/* --- cluster service (since 1.0) ----------------------------------
	 * Ownership by rendezvous hashing among participants. With clustering
	 * disabled in the daemon, this node is the only participant. */
	/* Whether this node is among the first `replicas` owners of key.
	 * False while this node is not a participant (or below
	 * wait_for_size). */
	bool (*cluster_owns)(starling_component *self, uint64_t key, unsigned replicas);
	/* The first n owners of key, best first; returns how many were written
	 * (fewer when there are fewer participants). */
	size_t (*cluster_owners)(starling_component *self, uint64_t key,
				 struct starling_node_name *out, size_t n);
	/* Monotonic view epoch: changes whenever the set of participants (or
	 * their weights) changes. */
	uint64_t (*cluster_epoch)(starling_component *self);
	/* This node's name (copied into out). */
	void (*cluster_self)(starling_component *self, struct starling_node_name *out);
	/* Call fn(arg, epoch) after the view changes, debounced to at most
	 * once per second, on a host thread, serialised with the instance's
	 * callbacks. One subscription per instance; NULL fn unsubscribes. */
	int (*cluster_subscribe)(starling_component *self, starling_cluster_change_fn fn,
				 void *arg);

	/* --- self-metrics with label arrays (since 1.1) --------------------
	 * As metric_register, with the constant labels as n_labels name/value
	 * pairs (a value may hold any byte but NUL: commas, quotes, newlines
	 * are escaped by the host). Names must be valid label names other
	 * than "component_id". The arrays are the caller's again on return. */
	starling_metric *(*metric_register_labels)(starling_component *self,
						   enum starling_self_metric_type type,
						   const char *name, const char *help,
						   const struct starling_label *labels,
						   size_t n_labels);

	/* --- target sets (since 1.1) ---------------------------------------
	 * Publish this instance's whole current list of targets. The host
	 * copies it (the set is the caller's again when the call returns),
	 * keeps it as this producer's latest set, and hands it to every
	 * receiver: components whose STARLING_CFG_TARGETS list names this one
	 * and components in this one's forward_to that accept targets.
	 * Delivery is asynchronous and coalesced (a receiver may skip
	 * intermediate sets, never the latest), on a host thread, serialised
	 * with the receiver's callbacks; a receiver that starts or is
	 * re-created later gets the latest set right after its start().
	 * Returns 0, -EINVAL (a target whose labels are not sorted and
	 * unique) or -ENOMEM. */
	int (*forward_targets)(starling_component *self, const struct starling_target_set *set);

	/* --- ownership at a slot's time (since 1.1) ------------------------
	 * As cluster_owns / cluster_owners, for the view in force at wall-clock
	 * time at_ms (normally the start of the slot being scheduled).
	 * Membership changes that nodes announce ahead (a leaving node's
	 * hand-over time, a joining node's start time) take effect at the
	 * announced time on every node, so old and new owners agree on whose
	 * each slot is; other changes (a node declared dead) take effect when
	 * this node learns of them. */
	bool (*cluster_owns_at)(starling_component *self, uint64_t key, unsigned replicas,
				int64_t at_ms);
	size_t (*cluster_owners_at)(starling_component *self, uint64_t key, int64_t at_ms,
				    struct starling_node_name *out, size_t n);
};

/* True when the host's table has member `fn` and it is non-NULL. */
#define STARLING_API_HAS(api, fn)                                                                  \
	((api) != NULL &&                                                                          \
	 (api)->struct_size >= offsetof(struct starling_host_api, fn) + sizeof((api)->fn) &&       \
	 (api)->fn != NULL)

/* ------------------------------------------------------------------------ */
/* Component types.                                                          */

/* What a component accepts (a sink's receiver kinds). */
#define STARLING_ACCEPTS_SERIES	 (1u << 0)
#define STARLING_ACCEPTS_PROFILE (1u << 1)
#define STARLING_ACCEPTS_TARGETS (1u << 2) /* since 1.1 */
/* Type flags. */
#define STARLING_TYPE_REENTRANT_RECEIVE (1u << 0)

/* The callbacks. `inst` is whatever create() stored in *out_inst. All return
 * 0 or a negative errno; on failure they log why through the API. */
struct starling_component_type {
	uint32_t struct_size;			  /* sizeof(struct starling_component_type) */
	const char *name;			  /* "prometheus.scrape" */
	const char *help;			  /* one line */
	uint32_t flags;				  /* STARLING_TYPE_* */
	uint32_t accepts;			  /* STARLING_ACCEPTS_*; 0 for pure producers */
	const struct starling_config_key *schema; /* ends with name == NULL */

	/* Validate cfg and allocate. Must not start threads or I/O. */
	int (*create)(const struct starling_host_api *api, starling_component *self,
		      const starling_config *cfg, void **out_inst);
	/* Apply a changed config to a running instance. -EOPNOTSUPP makes the
	 * host stop, destroy and re-create it instead. May be NULL. */
	int (*update)(void *inst, const starling_config *cfg);
	int (*start)(void *inst);
	/* Stop all activity; must return within a few seconds. */
	int (*stop)(void *inst);
	void (*destroy)(void *inst);
	/* Sinks: receive a batch (see struct starling_series_batch). */
	int (*receive_series)(void *inst, const struct starling_series_batch *batch);
	int (*receive_profile)(void *inst, const struct starling_profile *profile);
	/* Optional: emit each target (for the targets API). */ int (*list_targets)(
	    void *inst, starling_target_emit_fn emit, void *ctx);

	/* --- since 1.1 ----------------------------------------------------- */
	/* The payload kinds this type forwards (STARLING_ACCEPTS_* bits). A
	 * STARLING_CFG_TARGETS list may name only components whose type has
	 * STARLING_ACCEPTS_TARGETS here. */
	uint32_t produces;
	/* sizeof(struct starling_config_key) as this type was built (0: the
	 * 1.0 size): the stride of `schema` and of every `children` array. */
	uint32_t schema_key_size;
	/* Receivers of target sets (accepts & STARLING_ACCEPTS_TARGETS): the
	 * latest whole set of the producer `source` ("<type>.<name>"). A
	 * source that a reload removes delivers one empty set. The set is
	 * owned by the host and valid during the call. */
	int (*receive_targets)(void *inst, const char *source,
			       const struct starling_target_set *set);
};

/* The descriptor a plugin's entry point returns. */
struct starling_plugin_descriptor {
	/* Frozen head: checked in this order by the loader. */
	uint64_t magic; /* STARLING_PLUGIN_MAGIC */
	uint32_t abi_major;
	/* STARLING_ABI_MAJOR the plugin was built with */ /* The lowest host minor this plugin
							    * needs (since 1.1; a 1.0 plugin put
							    * the header's minor here, which was
							    * 0). A host with a lower minor
							    * refuses the plugin; a newer host
							    * runs it. */
	uint32_t abi_minor;
	uint32_t struct_size; /* sizeof(struct starling_plugin_descriptor) */

	const char *name;    /* plugin name, e.g. "prometheus_scrape" */
	const char *version; /* plugin version string */
	const struct starling_component_type *const *types; /* n_types entries */
	size_t n_types;

	/* --- since 1.1 ----------------------------------------------------- */
	/* STARLING_ABI_MINOR of the header the plugin was built with (absent,
	 * so 0, in 1.0 plugins). The host reads every struct the plugin hands
	 * it as that minor defines it. */
	uint32_t built_minor;
};

typedef const struct starling_plugin_descriptor *(*starling_plugin_entry_fn)(void);

/* Fill the frozen head (and built_minor) in a plugin's descriptor
 * initialiser. `min_minor` is the lowest host minor the plugin needs: the
 * highest "since 1.x" of anything it uses without a STARLING_API_HAS check
 * (component type members such as receive_targets, STARLING_CFG_TARGETS). */
#define STARLING_DESCRIPTOR_HEAD_MIN(min_minor)                                                    \
	.magic = STARLING_PLUGIN_MAGIC, .abi_major = STARLING_ABI_MAJOR, .abi_minor = (min_minor), \
	.struct_size = sizeof(struct starling_plugin_descriptor),                                  \
	.built_minor = STARLING_ABI_MINOR

/* A plugin that needs nothing beyond ABI 1.0 (it may still use later host
 * API members behind STARLING_API_HAS). */
#define STARLING_DESCRIPTOR_HEAD STARLING_DESCRIPTOR_HEAD_MIN(0)

/* Fill a component type's size members (struct_size, schema_key_size). */
#define STARLING_TYPE_HEAD                                                                         \
	.struct_size = sizeof(struct starling_component_type),                                     \
	.schema_key_size = sizeof(struct starling_config_key)
/* Declare the entry point: STARLING_PLUGIN(descriptor_variable); */
#define STARLING_PLUGIN(desc)                                                                      \
	STARLING_EXPORT const struct starling_plugin_descriptor *starling_plugin_entry(void);      \
	STARLING_EXPORT const struct starling_plugin_descriptor *starling_plugin_entry(void)       \
	{                                                                                          \
		return &(desc);                                                                    \
	}

#ifdef __cplusplus
}
#endif
#endif /* STARLING_PLUGIN_H */
