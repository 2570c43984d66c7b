/*
 * discovery.kubernetes internals, shared by the plugin's files and its unit
 * tests. Not an SDK interface.
 *
 *   kubernetes_targets.c    role -> collections to watch, selector rules,
 *                           building the whole target set (pure)
 *   kubernetes_component.c  config, the discovery thread, publishing
 */
#ifndef DISCOVERY_KUBERNETES_H
#define DISCOVERY_KUBERNETES_H

#include <stdbool.h>
#include <stddef.h>

#include <starling/k8s.h>
#include <starling/plugin.h>

#define DK_ROLES 5

struct dk_selector {
	bool set;
	char *label, *field;
};

struct dk_config {
	enum starling_k8s_role role;
	char **namespaces; /* none: all */
	size_t n_namespaces;
	struct dk_selector sel[DK_ROLES]; /* by enum starling_k8s_role */
	bool attach_node, attach_namespace;
};

int dk_config_add_namespace(struct dk_config *c, const char *ns);
void dk_config_free(struct dk_config *c);
/* Each selector's role must be one Prometheus allows for c->role. */
int dk_check_selectors(const struct dk_config *c, char *err, size_t errlen);

/* The collections a role reads. */
struct dk_cluster {
	struct starling_k8s_store main; /* objects of the role */
	struct starling_k8s_store pods, services, nodes, namespaces;
};

void dk_cluster_free(struct dk_cluster *cl);

/* Register the watches c->role needs with client (Prometheus
 * discovery/kubernetes/kubernetes.go Run: per namespace for namespaced
 * kinds, selectors of their own role, nodes/namespaces for
 * attach_metadata). */
int dk_watches(const struct dk_config *c, struct starling_k8s_client *client, struct dk_cluster *cl,
	       char *err, size_t errlen);
/* Point the meta builder at the lookups. */
void dk_meta_setup(const struct dk_config *c, const struct dk_cluster *cl,
		   struct starling_k8s_meta *m);

/* The built set: labels as offsets into one buffer until handed out. */
struct dk_label_off {
	size_t name, value;
};

struct dk_targets {
	size_t *first; /* per target: index of its first label */
	size_t n, cap;
	struct dk_label_off *labels;
	size_t n_labels, labels_cap;
	char *buf;
	size_t len, buf_cap;
	/* what dk_targets_set() hands out */
	struct starling_target *v;
	struct starling_label *lv;
};

/* Rebuild out from every object of cl->main. */
int dk_build(const struct dk_config *c, const struct dk_cluster *cl, struct starling_k8s_meta *m,
	     struct dk_targets *out);
/* The set as the ABI wants it; valid until the next dk_build. */
void dk_targets_set(struct dk_targets *t, struct starling_target_set *set);
void dk_targets_free(struct dk_targets *t);

extern const struct starling_component_type discovery_kubernetes_type;

#endif
