/*
 * pyroscope.scrape internals, shared by the plugin's source files and its
 * unit tests (tests/unit/plugins/pyroscope_scrape). Not an SDK interface.
 *
 *   pyro_target.c  profile types, target labels, URL, ownership key, phase,
 *                  response validation (pure functions, no I/O)
 *   pyro_scrape.c  config, lifecycle, the scrape thread, clustering
 */
#ifndef PYROSCOPE_SCRAPE_H
#define PYROSCOPE_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <starling/http.h>
#include <starling/plugin.h>
#include <starling/scrape_pool.h>
#include <starling/scrape_sched.h>

/* Largest profile accepted from a target. Go heap profiles of big services
 * are a few MB; this only stops a runaway target from eating memory. */
#define PYRO_BODY_LIMIT ((size_t)64 << 20)

/* One profile type of profiling_config (Alloy's profile.<name> block). */
struct pyro_profile_type {
	char *name; /* becomes __name__ */
	char *path;
	bool enabled;
	bool delta; /* ask the target for a ?seconds=N delta (CPU) */
	/* Cumulative profile we turn into deltas ourselves (Alloy: the
	 * built-in memory, mutex and block types); sent with __delta__="false". */
	bool client_delta;
};

/* Settings that apply to every target; immutable while the thread runs. */
struct pyro_config {
	char *job_name;
	int64_t interval_ms;
	int64_t timeout_ms;
	int64_t delta_seconds; /* ?seconds= of delta profiles */
	char *scheme;
	char *path_prefix;
	struct starling_scrape_param *params; /* sorted by name */
	size_t n_params;
	struct pyro_profile_type *types;
	size_t n_types;
	struct starling_http_auth *auth; /* may be NULL */
	bool clustering;
	unsigned replicas; /* clustering.replicas */
	char **key_labels;
	size_t n_key_labels;
	char **exclude_labels;
	size_t n_exclude_labels;
};

/* One (input target x enabled profile type): what gets scraped. */
struct pyro_target {
	struct starling_label *labels; /* forwarded labels, sorted, __name__ incl. */
	size_t n_labels;
	char *strings; /* storage of the label strings */
	char *url;
	uint64_t key;	  /* ownership key of the input target */
	int64_t phase_ms; /* starling_scrape_phase(key, interval) */
	int64_t timeout_ms;
	bool delta;
	bool client_delta;
	char *type_name;		/* profile type, for pyro_delta_apply */
	void *owner;			/* the component instance */
	struct pyro_delta *delta_state; /* previous totals (scrape thread) */
	int64_t prev_scrape_ms;

	/* Scrape thread only. */
	int64_t next_due_ms;
	int64_t scrape_start_ms;
	int64_t skipped_slot; /* skipped as owned elsewhere (STARLING_SCRAPE_NO_SLOT) */
	bool in_flight;
	bool owned;

	/* Status for list_targets (component lock). */
	int64_t last_scrape_ms;
	int64_t last_duration_us;
	enum starling_target_health health;
	char last_error[200];
};

/* The built-in profile types with Alloy's defaults (name, path, enabled,
 * delta); the strings are literals. */
struct pyro_builtin {
	const char *name;
	const char *path;
	bool enabled;
	bool delta;
};
extern const struct pyro_builtin pyro_builtins[];
extern const size_t pyro_n_builtins;

/* service_name as Alloy infers it when the target has none: pod annotation,
 * <namespace>/<container>, docker container, swarm service, "unspecified".
 * Returns a pointer into `in` or a literal; *alloc is set (caller frees) when
 * the name had to be assembled. */
const char *pyro_service_name(const struct starling_label *in, size_t n, char **alloc);

/* Build the scrape unit for input labels `in` (n pairs, any order) and
 * profile type pt: Alloy's populateLabels for pyroscope (job, __scheme__,
 * __profile_path_prefix__, __profile_path__, __name__, default port,
 * instance, service_name), then every "__" label except __name__ dropped.
 * -EINVAL with a message in err for a bad target. */
int pyro_target_new(const struct pyro_config *cfg, const struct pyro_profile_type *pt,
		    const struct starling_label *in, size_t n, struct pyro_target **out, char *err,
		    size_t errlen);
void pyro_target_free(struct pyro_target *t);

/* The instrumentation scope put on profiles without one (Alloy's value). */
#define PYRO_SCOPE_NAME "com.grafana.alloy/pyroscope.scrape"

/* Value of label `name` in a sorted or unsorted set, NULL if absent. */
const char *pyro_label(const struct starling_label *l, size_t n, const char *name);
/* The profile name sent as __name__ for a profile type (godeltaprof_memory
 * -> memory, ...; other names unchanged). */
const char *pyro_public_name(const char *type_name);

/* Whether a response is a profile Alloy would accept (validate.go): 2xx,
 * non-empty, Content-Type application/octet-stream, body gzip or protobuf.
 * 0, or -EBADMSG / -EPROTO with the reason in err. */
int pyro_validate(long status, const char *content_type, const uint8_t *body, size_t len, char *err,
		  size_t errlen);

/* --- pyro_delta.c ------------------------------------------------------- */

struct pyro_delta;

/* Turn cumulative profile `in` (gzip or not) of profile type `type`
 * ("memory", "mutex", "block") into the delta since the previous call with
 * the same *state, gzip-compressed into *out (caller frees). The first call
 * (*state NULL) records the baseline and returns 1 with no output. 0 on
 * success; -EBADMSG (malformed) or -ENOMEM with a reason in err, leaving
 * *state as it was. */
int pyro_delta_apply(struct pyro_delta **state, const char *type, const uint8_t *in, size_t len,
		     uint8_t **out, size_t *out_len, char *err, size_t errlen);
void pyro_delta_free(struct pyro_delta *d);

extern const struct starling_component_type pyroscope_scrape_type;

#endif
