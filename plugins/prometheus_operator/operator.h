/*
 * prometheus.operator.podmonitors / .servicemonitors internals, shared by the
 * plugin's source files and its unit tests. Not an SDK interface.
 *
 *   operator_gen.c        Kubernetes objects -> scrape jobs and target label
 *                         sets (Prometheus Operator / Alloy config generation
 *                         over the SDK's kubernetes_sd meta labels); pure
 *   operator_component.c  config, list+watch (the SDK Kubernetes client),
 *                         scraping
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
#include <starling/k8s.h>
#include <starling/relabel.h>

#include <starling/scrape.h>

enum op_kind {
	OP_POD_MONITORS = 0,
	OP_SERVICE_MONITORS,
};

/* What discovery sees of the cluster. */
struct op_cluster {
	struct starling_k8s_store monitors;
	struct starling_k8s_store pods;
	struct starling_k8s_store endpoints;
	struct starling_k8s_store services;
	struct starling_k8s_store endpointslices;
	struct starling_k8s_store nodes; /* only when a monitor attaches node metadata */
	struct starling_k8s_store secrets, configmaps; /* referenced by endpoints */
};

void op_cluster_free(struct op_cluster *c);

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

/* Secrets and ConfigMaps for the per-endpoint HTTP settings (operator_auth.c). */
struct op_secrets {
	const struct starling_k8s_store *secrets, *configmaps;
	/* Told about every Secret (secret true) or ConfigMap an endpoint
	 * references, so that the component can watch it. May be NULL. */
	void (*want)(void *arg, bool secret, const char *ns, const char *name);
	/* An endpoint left out for bad HTTP settings (message has no secret
	 * values). May be NULL. */
	void (*skipped)(void *arg, const char *monitor, size_t endpoint, const char *msg);
	void *arg;
	bool allow_files; /* allow_arbitrary_file_access: tlsConfig *File keys */
};

/* Component-wide settings the generated jobs inherit. */
struct op_defaults {
	enum op_kind kind;
	int64_t interval_ms;   /* scrape.default_scrape_interval */
	int64_t timeout_ms;    /* scrape.default_scrape_timeout */
	uint64_t sample_limit; /* scrape.default_sample_limit, 0 = none */
	bool clustering;
	unsigned replicas; /* clustering.replicas */
	/* ServiceMonitors: targets from EndpointSlices instead of Endpoints. */
	bool endpointslice;
	/* Component `rule` blocks, applied before the generated rules. */
	const struct starling_relabel_rules *rules;
	/* NULL: no Secrets or ConfigMaps known (endpoints needing one are
	 * skipped). */
	const struct op_secrets *secrets;
};

/* One scrape job: one endpoint of one monitor. Immutable once built and
 * shared by reference count (targets keep their job alive). */
struct op_job {
	atomic_int refs;
	uint64_t fingerprint; /* of the monitor object and the index */
	uint64_t monitor_fp;  /* op_monitor_job_fp() of its monitor */
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
	/* spec.attachMetadata.node: node labels on the targets (needs the
	 * nodes watch, which the component adds when a job wants it). */
	bool attach_node;
	/* spec.targetLimit (0: none) and, set at each target generation, the
	 * job's target count when it exceeds the limit (0: within it). Read
	 * by the scrape thread. */
	uint64_t target_limit;
	atomic_size_t over_limit;
};

void op_job_get(struct op_job *j);
void op_job_put(struct op_job *j);

/* Go duration ("1m30s", "500ms") to ms. -EINVAL if malformed. */
int op_parse_duration(const char *s, int64_t *ms);

/* Hash of a monitor's namespace, name and spec: equal hashes, same jobs. */
uint64_t op_monitor_fingerprint(const cJSON *monitor);

/* op_monitor_fingerprint() combined with the Secrets/ConfigMaps the monitor
 * references: what op_job.monitor_fp holds. */
uint64_t op_monitor_job_fp(const struct op_defaults *d, const cJSON *monitor);

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
	struct starling_k8s_meta meta; /* builds each candidate's meta labels */
	struct starling_lset ls;       /* the candidate being relabelled */
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

/* --- operator_auth.c --------------------------------------------------- */

/* The HTTP settings of one monitor endpoint (basicAuth, bearerTokenSecret,
 * authorization, tlsConfig, proxyUrl, followRedirects, enableHttp2) with
 * the Secret/ConfigMap values of namespace ns. *out stays NULL when the
 * endpoint sets none. -EINVAL with a message naming the field and the
 * reference (never a value) when a reference is missing or malformed. */
int op_endpoint_auth(const struct op_secrets *sc, const char *ns, const cJSON *ep,
		     struct starling_http_auth **out, char *err, size_t errlen);

/* Hash over the Secrets/ConfigMaps a monitor's endpoints reference (their
 * data, or their absence): part of the job fingerprint, so that a changed
 * Secret re-builds the jobs. */
uint64_t op_monitor_refs_fp(const struct op_secrets *sc, const cJSON *monitor, enum op_kind kind);

/* Call fn for every Secret (secret true) / ConfigMap the monitor's
 * endpoints reference, with the monitor's namespace. */
void op_monitor_refs(const cJSON *monitor, enum op_kind kind,
		     void (*fn)(void *arg, bool secret, const char *ns, const char *name),
		     void *arg);

/* --- operator_component.c ---------------------------------------------- */

extern const struct starling_component_type prometheus_operator_podmonitors_type;
extern const struct starling_component_type prometheus_operator_servicemonitors_type;

#endif
