/*
 * prometheus.operator.podmonitors / .servicemonitors internals, shared by the
 * plugin's source files and its unit tests. Not an SDK interface.
 *
 *   operator_gen.c        Kubernetes objects -> scrape jobs and target label
 *                         sets (Prometheus Operator / Alloy config generation
 *                         and Prometheus kubernetes_sd meta labels); pure
 *   operator_component.c  config, list+watch of the API server, scraping
 *
 * The scraping itself is the SDK's scrape engine (<starling/scrape.h>, which
 * prometheus.scrape uses too): each monitor endpoint becomes one struct
 * scrape_config, each discovered target one struct scrape_target.
 */
#ifndef PROMETHEUS_OPERATOR_H
#define PROMETHEUS_OPERATOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>
#include <starling/relabel.h>

#include <starling/scrape.h>

enum op_kind {
	OP_POD_MONITORS = 0,
	OP_SERVICE_MONITORS,
};

/* Objects of one resource collection, keyed by namespace/name. `src` tags
 * the watch an object came from, so that a re-list of one watch replaces
 * only its own objects. */
struct op_item {
	cJSON *obj;
	int src;
	uint64_t hash; /* of namespace and name */
};

/* Items in an array (iterate v[0..n)), indexed by an open-addressing
 * table of item positions + 1 (0 = empty slot). */
struct op_store {
	struct op_item *v;
	size_t n, cap;
	uint32_t *slots;
	size_t n_slots; /* power of two, or 0 */
};

/* Takes ownership of obj (also on error). Replaces the object with the same
 * namespace/name. -EINVAL when metadata.name is missing. */
int op_store_put(struct op_store *s, cJSON *obj, int src);
/* Removes the object with obj's namespace/name; 0 or -ENOENT. */
int op_store_del(struct op_store *s, const cJSON *obj);
/* Removes every object of src (src < 0: all). */
void op_store_clear(struct op_store *s, int src);
const cJSON *op_store_get(const struct op_store *s, const char *ns, const char *name);

/* What discovery sees of the cluster. */
struct op_cluster {
	struct op_store monitors;
	struct op_store pods;
	struct op_store endpoints;
	struct op_store services;
	struct op_store endpointslices;
};

void op_cluster_free(struct op_cluster *c);

/* Drop the fields target generation never reads (managedFields; for pods
 * also everything in spec/status but containers, nodeName, phase, IPs and
 * conditions, and per container all but name, image and ports). */
void op_prune(cJSON *obj, bool is_pod);

/* Label selector of the component's `selector` block, on monitor labels. */
enum op_sel_op { OP_SEL_IN, OP_SEL_NOT_IN, OP_SEL_EXISTS, OP_SEL_DOES_NOT_EXIST };

struct op_sel_expr {
	char *key;
	enum op_sel_op op;
	char **values;
	size_t n_values;
};

struct op_selector {
	struct starling_label *match_labels; /* owned strings */
	size_t n_match_labels;
	struct op_sel_expr *exprs;
	size_t n_exprs;
};

void op_selector_free(struct op_selector *s);
/* labels: a JSON object of string values (metadata.labels) or NULL. */
bool op_selector_matches(const struct op_selector *s, const cJSON *labels);
/* Parse an operator name ("In", "NotIn", "Exists", "DoesNotExist"). */
int op_sel_op_parse(const char *s, enum op_sel_op *out);

/* Component-wide settings the generated jobs inherit. */
struct op_defaults {
	enum op_kind kind;
	int64_t interval_ms;   /* scrape.default_scrape_interval */
	int64_t timeout_ms;    /* scrape.default_scrape_timeout */
	uint64_t sample_limit; /* scrape.default_sample_limit, 0 = none */
	bool clustering;
	/* ServiceMonitors: targets from EndpointSlices instead of Endpoints. */
	bool endpointslice;
	/* Component `rule` blocks, applied before the generated rules. */
	const struct starling_relabel_rules *rules;
};

/* One scrape job: one endpoint of one monitor. Immutable once built and
 * shared by reference count (targets keep their job alive). */
struct op_job {
	atomic_int refs;
	uint64_t fingerprint; /* of the monitor object and the index */
	uint64_t monitor_fp;  /* op_monitor_fingerprint() of its monitor */
	char *monitor;	      /* "<namespace>/<name>" */
	/* Namespaces its targets may live in (namespaceSelector); 0 = any. */
	char **namespaces;
	size_t n_namespaces;
	struct scrape_config cfg;	      /* cfg.job_name = the job name */
	struct starling_relabel_rules *rules; /* generated + endpoint relabelings */
	/* The monitor's spec.selector (a copy), to skip objects it cannot
	 * select before relabelling: the keep/drop rules it becomes decide
	 * the same for every label value Kubernetes allows. */
	cJSON *selector;
};

void op_job_get(struct op_job *j);
void op_job_put(struct op_job *j);

/* Go duration ("1m30s", "500ms") to ms. -EINVAL if malformed. */
int op_parse_duration(const char *s, int64_t *ms);

/* Hash of a monitor's namespace, name and spec: equal hashes, same jobs. */
uint64_t op_monitor_fingerprint(const cJSON *monitor);

/* Turn one monitor object (PodMonitor or ServiceMonitor, per d->kind) into
 * its jobs, one per endpoint. On error -EINVAL with a message. The array
 * and the references are the caller's. */
int op_jobs_from_monitor(const struct op_defaults *d, const cJSON *monitor, struct op_job ***out,
			 size_t *n_out, char *err, size_t errlen);

/* Called for each target of a job that survives relabelling: labels are
 * the final input labels (no __meta_*, no __tmp*), sorted. */
typedef int (*op_target_fn)(void *arg, struct op_job *job, const struct starling_lset *labels);

/* Working memory of op_job_targets(), reused across calls. */
struct op_gen_scratch {
	struct starling_lset base;
	struct starling_lset cand; /* meta labels of the current candidate */
	struct starling_lset ls;   /* the candidate being relabelled */
	struct starling_relabel_scratch rs;
	char buf[512];
	struct op_job **jobs; /* the jobs that may select the current object */
	size_t jobs_cap;
};

void op_gen_scratch_init(struct op_gen_scratch *s);
void op_gen_scratch_free(struct op_gen_scratch *s);

/* Enumerate the targets of a job: the pod role (PodMonitor) or the
 * endpoints role (ServiceMonitor) meta labels of every object in the job's
 * namespaces, then the component rules and the job's rules. Returns 0, the
 * first non-zero return of fn, or -ENOMEM. */
int op_job_targets(const struct op_defaults *d, struct op_job *job, const struct op_cluster *c,
		   struct op_gen_scratch *s, op_target_fn fn, void *arg);

/* Same for several jobs at once: each candidate's meta labels are built once
 * (what a rebuild with many monitors needs). Targets come out object by
 * object, not job by job. */
int op_targets(const struct op_defaults *d, struct op_job *const *jobs, size_t n_jobs,
	       const struct op_cluster *c, struct op_gen_scratch *s, op_target_fn fn, void *arg);

/* Replace any character outside [a-zA-Z0-9_] with '_' (Prometheus'
 * strutil.SanitizeLabelName); writes at most cap bytes incl. NUL. */
void op_sanitize(const char *in, char *out, size_t cap);

/* --- operator_component.c ---------------------------------------------- */

extern const struct starling_component_type prometheus_operator_podmonitors_type;
extern const struct starling_component_type prometheus_operator_servicemonitors_type;

#endif
