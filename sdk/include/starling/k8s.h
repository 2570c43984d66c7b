/*
 * Starling SDK Kubernetes client (static SDK library).
 *
 * What every component that reads the Kubernetes API shares:
 *
 *   connection  where the API server is and how to authenticate: a kubeconfig
 *               file (libyaml, honouring current-context), the in-cluster
 *               service account, or api_server + the SDK HTTP client
 *               arguments. Auth and TLS go through struct starling_http_auth.
 *   store       the objects of one or more collections, keyed by
 *               namespace/name (cJSON objects, pruned to what is read).
 *   client      LIST (paged) + WATCH from the list's resourceVersion with
 *               bookmarks; a 410 Gone (status or in-stream ERROR) re-lists;
 *               other failures back off 1 s .. 30 s. One client drives all
 *               of a component's collections on one thread.
 *   decoders    a LIST body and a stream of watch events (pure functions,
 *               fuzzed in tests/fuzz/).
 *   meta labels Prometheus' kubernetes_sd __meta_kubernetes_* label sets of
 *               the pod, service, endpoints, endpointslice and node roles.
 *
 * All functions return 0 or a negative errno unless stated otherwise. Nothing
 * here keeps global state. Since ABI 1.1 (the SDK library, not the host ABI).
 */
#ifndef STARLING_K8S_H
#define STARLING_K8S_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>
#include <starling/http.h>
#include <starling/relabel.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STARLING_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ------------------------------------------------------------------------ */
/* Connection.                                                               */

/* What a kubeconfig context resolves to. Every string may be NULL; owned. */
struct starling_k8s_kubeconfig {
	char *server;
	char *namespace; /* the context's namespace */
	char *ca_file, *ca_pem;
	char *cert_file, *cert_pem;
	char *key_file, *key_pem;
	char *token, *token_file;
	char *username, *password;
	char *server_name; /* cluster.tls-server-name */
	char *proxy_url;
	bool insecure_skip_verify;
};

/* Parse kubeconfig YAML text (libyaml) and resolve `context` (NULL: the
 * file's current-context) to its cluster and user. A context, cluster or
 * user that is named but cannot be found is an error (no credentials of
 * one entry are ever combined with another's server), as are exec and
 * auth-provider users (not supported). Relative file paths are made
 * relative to base_dir (the kubeconfig's directory; NULL: kept as is), as
 * client-go does; *-data fields are base64-decoded into the *_pem members.
 * On error -EINVAL with a message in err. Pure: reads no files. */
int starling_k8s_kubeconfig_parse(const char *text, size_t len, const char *base_dir,
				  const char *context, struct starling_k8s_kubeconfig *out,
				  char *err, size_t errlen);
void starling_k8s_kubeconfig_free(struct starling_k8s_kubeconfig *k);

/* A resolved connection: base URL, auth profile, and the namespace the
 * credentials belong to (kubeconfig context namespace or the service
 * account's; NULL if unknown). */
struct starling_k8s_conn {
	char *server; /* "https://host:port", no trailing slash */
	char *namespace;
	struct starling_http_auth *auth;
};

/* From a kubeconfig file (context NULL = current-context). */
int starling_k8s_conn_from_kubeconfig(const char *path, const char *context,
				      struct starling_k8s_conn *out, char *err, size_t errlen);

/* In-cluster, as client-go's InClusterConfig: KUBERNETES_SERVICE_HOST and
 * _PORT, the token (re-read when it rotates), ca.crt and namespace of
 * sa_dir (NULL: STARLING_K8S_SA_DIR). */
int starling_k8s_conn_in_cluster(const char *sa_dir, struct starling_k8s_conn *out, char *err,
				 size_t errlen);

/* From a component config node with the keys of STARLING_K8S_CONN_KEYS:
 * api_server (with the HTTP client arguments), or kubeconfig_file, or
 * neither (in-cluster). As Prometheus' kubernetes_sd_config: api_server and
 * kubeconfig_file are exclusive, and HTTP client arguments need
 * api_server. Messages carry the config position. */
int starling_k8s_conn_from_config(const struct starling_host_api *api, const starling_config *node,
				  struct starling_k8s_conn *out, char *err, size_t errlen);
void starling_k8s_conn_free(struct starling_k8s_conn *c);

/* clang-format off */
#define STARLING_K8S_CONN_KEYS                                                           \
	{ "api_server", STARLING_CFG_STRING, false, NULL,                                  \
	  "URL of the Kubernetes API server (default: in-cluster service account)",         \
	  NULL, 0 },                                                                        \
	{ "kubeconfig_file", STARLING_CFG_STRING, false, NULL,                             \
	  "kubeconfig file; its current-context is used", NULL, 0 },                        \
	STARLING_HTTP_CONFIG_KEYS
/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Object store.                                                             */

/* `src` tags the watch an object came from, so that a re-list of one watch
 * replaces only its own objects. */
struct starling_k8s_item {
	cJSON *obj;
	int src;
	uint64_t hash; /* of namespace and name */
};

/* Items in an array (iterate v[0..n)), indexed by namespace/name. Zero it
 * to initialise. Not thread-safe. */
struct starling_k8s_store {
	struct starling_k8s_item *v;
	size_t n, cap;
	uint32_t *slots;
	size_t n_slots;
};

/* Takes ownership of obj (also on error). Replaces the object with the same
 * namespace/name. -EINVAL when metadata.name is missing. */
int starling_k8s_store_put(struct starling_k8s_store *s, cJSON *obj, int src);
/* Removes the object with obj's namespace/name; 0 or -ENOENT. */
int starling_k8s_store_del(struct starling_k8s_store *s, const cJSON *obj);
/* Removes every object of src (src < 0: all, and frees the arrays). */
void starling_k8s_store_clear(struct starling_k8s_store *s, int src);
/* ns NULL or "" for cluster-scoped objects (nodes, namespaces). */
const cJSON *starling_k8s_store_get(const struct starling_k8s_store *s, const char *ns,
				    const char *name);

/* What the meta labels read of each kind; the rest (managedFields, most
 * of a pod's spec and status) is dropped to save memory. */
enum starling_k8s_kind {
	STARLING_K8S_OTHER = 0,
	STARLING_K8S_POD,
};
void starling_k8s_prune(cJSON *obj, enum starling_k8s_kind kind);

/* ------------------------------------------------------------------------ */
/* Decoders.                                                                 */

/* A LIST response: items (a cJSON array, owned; never NULL on success),
 * metadata.resourceVersion and metadata.continue (owned, continue may be
 * NULL). -EINVAL with a message when the body is not a Kubernetes list. */
struct starling_k8s_list {
	cJSON *items;
	char *resource_version;
	char *cont;
};
int starling_k8s_list_decode(const char *body, size_t len, struct starling_k8s_list *out, char *err,
			     size_t errlen);
void starling_k8s_list_free(struct starling_k8s_list *l);

enum starling_k8s_event_type {
	STARLING_K8S_ADDED = 1,
	STARLING_K8S_MODIFIED,
	STARLING_K8S_DELETED,
	STARLING_K8S_BOOKMARK,
	STARLING_K8S_ERROR,
};

/* One watch event. The callback may take `object` (set it to NULL); what it
 * leaves is freed after it returns. For ERROR, code and message come from
 * the Status object (code 410: the resourceVersion expired). */
struct starling_k8s_event {
	enum starling_k8s_event_type type;
	cJSON *object;
	const char *resource_version; /* of the object, NULL if absent */
	int code;
	const char *message;
};

typedef int (*starling_k8s_event_fn)(void *arg, struct starling_k8s_event *ev);

/* Newline-delimited watch events arriving in arbitrary chunks. Zero it to
 * initialise; line_limit 0 means 16 MiB. */
struct starling_k8s_event_decoder {
	char *buf;
	size_t len, cap;
	size_t line_limit;
};

/* Feed a chunk; fn runs for each complete event. Returns 0, fn's first
 * non-zero return, or -EINVAL (unparsable event, err says why) / -EFBIG (a
 * line over the limit) / -ENOMEM; after an error the decoder must be reset. */
int starling_k8s_events_feed(struct starling_k8s_event_decoder *d, const char *data, size_t len,
			     starling_k8s_event_fn fn, void *arg, char *err, size_t errlen);
void starling_k8s_events_reset(struct starling_k8s_event_decoder *d);
void starling_k8s_events_free(struct starling_k8s_event_decoder *d);

/* ------------------------------------------------------------------------ */
/* List + watch client.                                                      */

struct starling_k8s_client;

struct starling_k8s_callbacks {
	/* A store changed (a list replaced a watch's objects, or an event).
	 * watch = the index starling_k8s_watch_add() returned. */
	void (*changed)(void *arg, int watch);
	/* A failure (already retried with back-off) or a note; WARN lines are
	 * the failures to count. */
	void (*log)(void *arg, enum starling_log_level level, const char *msg);
	void *arg;
};

/* conn must outlive the client. Not thread-safe: one thread drives it. */
int starling_k8s_client_new(const struct starling_k8s_conn *conn,
			    const struct starling_k8s_callbacks *cb,
			    struct starling_k8s_client **out);
void starling_k8s_client_free(struct starling_k8s_client *c);

/* Keep the collection at `path` ("/api/v1/pods",
 * "/api/v1/namespaces/ns/pods") in `store`, its objects tagged with the
 * returned index (>= 0). Selectors may be NULL. kind says how to prune. */
int starling_k8s_watch_add(struct starling_k8s_client *c, const char *what, const char *path,
			   const char *label_selector, const char *field_selector,
			   struct starling_k8s_store *store, enum starling_k8s_kind kind);

/* Start due requests, then drive transfers for up to timeout_ms (less when
 * a retry is due). Callbacks run here. */
int starling_k8s_run(struct starling_k8s_client *c, int timeout_ms);
/* Make a blocked run() return soon. Thread-safe. */
void starling_k8s_wakeup(struct starling_k8s_client *c);
/* Abort transfers; the next run() lists every collection again. */
void starling_k8s_reset(struct starling_k8s_client *c);

/* Every collection listed at least once. */
bool starling_k8s_synced(const struct starling_k8s_client *c);
/* Watch `watch` (an index from starling_k8s_watch_add): listed at least
 * once (a stopped watch reads as listed); its last request failed. An
 * unknown index reads as neither. */
void starling_k8s_watch_status(const struct starling_k8s_client *c, int watch, bool *listed,
			       bool *failing);
/* Stop (enabled false) or resume a watch. A stopped watch makes no new
 * requests (one in flight is dropped at its next byte), counts neither for
 * synced nor for healthy, and its objects leave its store (changed() is
 * called); resuming lists again from scratch. */
void starling_k8s_watch_enable(struct starling_k8s_client *c, int watch, bool enabled);
/* Number of watches added so far. */
size_t starling_k8s_watch_count(const struct starling_k8s_client *c);
/* Listed and the last request of each did not fail; else false with the
 * latest failure in why. */
bool starling_k8s_healthy(const struct starling_k8s_client *c, char *why, size_t cap);

struct starling_k8s_stats {
	uint64_t lists;	 /* complete LISTs */
	uint64_t events; /* watch events applied */
	uint64_t errors; /* failed requests and unparsable responses */
	uint64_t relists_410;
};
void starling_k8s_stats(const struct starling_k8s_client *c, struct starling_k8s_stats *out);

/* ------------------------------------------------------------------------ */
/* Meta labels (Prometheus discovery/kubernetes/ *.go).                        */

enum starling_k8s_role {
	STARLING_K8S_ROLE_POD = 0,
	STARLING_K8S_ROLE_SERVICE,
	STARLING_K8S_ROLE_ENDPOINTS,
	STARLING_K8S_ROLE_ENDPOINTSLICE,
	STARLING_K8S_ROLE_NODE,
};

/* Parse "pod", "service", ...; -EINVAL if unknown. */
int starling_k8s_role_parse(const char *s, enum starling_k8s_role *out);

/* Lookups and scratch of the target builders. Stores may be NULL. */
struct starling_k8s_meta {
	const struct starling_k8s_store *pods;	     /* endpoints(lice): backing pods */
	const struct starling_k8s_store *services;   /* endpoints(lice) */
	const struct starling_k8s_store *nodes;	     /* attach_metadata.node */
	const struct starling_k8s_store *namespaces; /* attach_metadata.namespace */
	bool attach_node, attach_namespace;
	/* scratch, owned: init/free with the functions below */
	struct starling_lset group, target;
	char buf[512];
	void *seen; /* endpoints: pods seen */
	size_t n_seen, seen_cap;
};

void starling_k8s_meta_init(struct starling_k8s_meta *m);
void starling_k8s_meta_free(struct starling_k8s_meta *m);

/* Called once per target: its labels (__address__, __meta_kubernetes_*,
 * plus `instance` for nodes), sorted. The set is scratch: copy what you
 * keep. A non-zero return stops the enumeration and is returned. */
typedef int (*starling_k8s_target_fn)(void *arg, const struct starling_lset *target);

/* Every target Prometheus' `role` builds from obj, in its order. */
int starling_k8s_targets(struct starling_k8s_meta *m, enum starling_k8s_role role, const cJSON *obj,
			 starling_k8s_target_fn fn, void *arg);

/* Replace any character outside [a-zA-Z0-9_] with '_' (Prometheus'
 * strutil.SanitizeLabelName); writes at most cap bytes incl. NUL. */
void starling_k8s_sanitize(const char *in, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* STARLING_K8S_H */
