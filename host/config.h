/*
 * The configuration model: libconfig is parsed into the host's own tree
 * (every node knows its file:line and key path), top-level settings and the
 * cluster group are decoded, each component is validated against the schema
 * its type declares (defaults filled in), and the component graph is resolved
 * (references, kinds, cycles, start order). Plugins see the tree only through
 * the getters at the bottom (used for the host API table).
 *
 * Nothing here is thread-safe on its own: a document is built on one thread
 * and is read-only afterwards (it may then be read from any thread).
 */
#ifndef STARLING_HOST_CONFIG_H
#define STARLING_HOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <starling/plugin.h>

#include "cluster/cluster.h"

enum cfg_kind {
	CFG_K_STRING = 1,
	CFG_K_INT,
	CFG_K_FLOAT,
	CFG_K_BOOL,
	CFG_K_GROUP,
	CFG_K_ARRAY, /* libconfig array [..] or list (..) */
};

/* One node. The opaque starling_config of the plugin ABI. */
struct starling_config {
	enum cfg_kind kind;
	char *name;  /* member name inside a group; NULL for list elements */
	char *where; /* "file:line" */
	char *path;  /* key path, "components.[1].targets.[0]" */
	char *s;
	int64_t i;
	double f;
	bool b;
	struct starling_config **children;
	size_t n_children;
	bool is_default; /* filled in from the schema */
};

/* Collected errors, each a full line "file:line: path: message". */
struct cfg_errors {
	char **msgs;
	size_t n;
};

void cfg_errors_add(struct cfg_errors *e, const char *fmt, ...) STARLING_PRINTF(2, 3);
void cfg_errors_free(struct cfg_errors *e);

/* One component instance as configured. */
struct cfg_component {
	char *id; /* "<type>.<name>" */
	char *type_name;
	char *name;
	struct starling_config *node;		    /* the component's group */
	const struct starling_component_type *type; /* after validation */
	uint32_t type_built_minor;		    /* its plugin's built_minor */
	size_t *forward;			    /* indices into doc->components of forward_to */
	size_t n_forward;
	/* Producers named by STARLING_CFG_TARGETS lists (indices into
	 * doc->components), in config order, without repeats. */
	size_t *target_sources;
	size_t n_target_sources;
	char *canon; /* canonical text of the config, to detect changes */
};

struct cfg_doc {
	char *file; /* "<embedded>" for the built-in default */
	struct starling_config *root;
	char *plugins_dir;
	char *state_dir;
	char *http_listen_addr;
	int64_t reload_timeout_ms; /* server.reload_timeout: how long POST /-/reload waits */
	enum starling_log_level log_level;
	struct cluster_config cluster;
	struct cfg_component *components;
	size_t n_components;
	size_t *order; /* receivers before producers; n_components entries */
	int refs;      /* reference count, see cfg_doc_ref */
};

/* The component types known to validation (from the loader). */
struct type_set {
	const struct starling_component_type *const *types;
	size_t n;
	/* The ABI minor each type's plugin was built with (descriptor
	 * built_minor), same index; NULL means every type is current. */
	const uint32_t *built_minor;
	/* A type whose plugin was unloaded (no create callback: only its name
	 * is known) is loaded again by load() when looked up; NULL: not. */
	const struct starling_component_type *(*load)(void *ctx,
						      const struct starling_component_type *t);
	void *load_ctx;
};

const struct starling_component_type *type_set_find(const struct type_set *ts, const char *name);
/* The built_minor of a type of the set (STARLING_ABI_MINOR when unknown). */
uint32_t type_set_built_minor(const struct type_set *ts, const struct starling_component_type *t);

/* Parse a file (or text, named `name` in messages) into a document: syntax,
 * top-level keys and the cluster group. Returns 0, or -EINVAL with errors in
 * errs. On a syntax error *out is NULL; on other errors *out is still set (so
 * that check-config can report component errors too) and the caller unrefs
 * it. */
/* Config files (and texts) larger than this are refused with -EFBIG before
 * libconfig sees them (its lexer is quadratic in a string's length). Files
 * pulled in with @include are not measured (libconfig 1.5 reads them). */
#define CFG_MAX_FILE_BYTES (1024 * 1024)

int cfg_doc_parse_file(const char *path, struct cfg_doc **out, struct cfg_errors *errs);
int cfg_doc_parse_string(const char *text, const char *name, struct cfg_doc **out,
			 struct cfg_errors *errs);

/* Command-line overrides. NULL members are not set. */
struct cfg_flag {
	char *key;   /* cluster key with '_' ("node_name") */
	char *value; /* NULL for a bare boolean flag */
};

struct cfg_overrides {
	const char *plugins_dir;
	const char *state_dir;
	const char *http_listen_addr;
	const char *log_level;
	struct cfg_flag *cluster;
	size_t n_cluster;
};

/* Apply flags on top of the file. Returns 0 or -EINVAL (errors in errs). */
int cfg_doc_apply_overrides(struct cfg_doc *doc, const struct cfg_overrides *ovr,
			    struct cfg_errors *errs);

/* Validate every component against its type's schema, fill defaults and
 * resolve the graph. Returns 0 or -EINVAL with every error found in errs. */
int cfg_doc_validate(struct cfg_doc *doc, const struct type_set *types, struct cfg_errors *errs);

struct cfg_doc *cfg_doc_ref(struct cfg_doc *doc);
void cfg_doc_unref(struct cfg_doc *doc);

/* Whether `key` is a cluster config key (with '_'). */
bool cfg_is_cluster_key(const char *key);

/* Canonical text of a subtree (malloc'd). */
char *cfg_canonical(const struct starling_config *node);

/* ---- getters (semantics of the host API table) ------------------------ */
const starling_config *cfg_lookup(const starling_config *node, const char *path);
size_t cfg_count(const starling_config *node);
const starling_config *cfg_child(const starling_config *node, size_t index);
const char *cfg_name(const starling_config *node);
int cfg_get_string(const starling_config *node, const char *path, const char **out);
int cfg_get_int(const starling_config *node, const char *path, int64_t *out);
int cfg_get_float(const starling_config *node, const char *path, double *out);
int cfg_get_bool(const starling_config *node, const char *path, bool *out);
int cfg_get_duration_ms(const starling_config *node, const char *path, int64_t *out);
int cfg_get_bytes(const starling_config *node, const char *path, int64_t *out);
const char *cfg_where(const starling_config *node);

/* The outermost node of the subtree at node whose "file:line" is the len
 * bytes at where (preorder), or NULL. */
const struct starling_config *cfg_find_where(const struct starling_config *node, const char *where,
					     size_t len);

/* Human name of a schema type ("duration"). */
const char *cfg_type_name(enum starling_config_type t);

#endif
