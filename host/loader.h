/*
 * Plugin loader: the only user of libltdl. Loads every *.so of a directory
 * on the main thread, before any worker thread exists (libltdl is not
 * thread-safe), gating each on magic, ABI major, ABI minor, struct sizes,
 * file permissions and duplicate component types. `run` then unloads the
 * plugins its configuration does not use; a reload (serialised, the only
 * other user of the loader then) loads one again when it names its type.
 */
#ifndef STARLING_HOST_LOADER_H
#define STARLING_HOST_LOADER_H

#include <stddef.h>

#include <starling/plugin.h>

#include "config.h"

struct loaded_plugin {
	char *file;
	struct starling_plugin_descriptor desc; /* zero-extended copy */
	struct starling_component_type **types; /* zero-extended copies */
	size_t n_types;
	/* Schema arrays copied to this host's struct starling_config_key stride
	 * (for types built with a different one), freed with the plugin. */
	struct starling_config_key **schemas;
	size_t n_schemas;
	void *handle; /* lt_dlhandle; NULL: unloaded (loader_unload_unused) */
};

struct plugin_registry {
	struct loaded_plugin *plugins;
	size_t n_plugins;
	/* All accepted component types, in load order, with the file each came
	 * from (same index). */
	const struct starling_component_type **types;
	const char **type_files;
	uint32_t *type_built_minor; /* descriptor built_minor of each type's plugin */
	size_t n_types;
	unsigned refused;
};

/* Size of the parts of each struct that ABI 1.0 defines: anything shorter
 * is refused. */
#define STARLING_DESCRIPTOR_MIN_SIZE                                                               \
	(offsetof(struct starling_plugin_descriptor, n_types) + sizeof(size_t))
#define STARLING_TYPE_MIN_SIZE                                                                     \
	(offsetof(struct starling_component_type, list_targets) +                                  \
	 sizeof(((struct starling_component_type *)0)->list_targets))

struct plugin_registry *loader_registry_new(void);
/* Load one file. Returns 0 when accepted; otherwise a negative errno and the
 * refusal (without the file name) in err. Also logs the refusal. */
int loader_load_file(struct plugin_registry *r, const char *path, char *err, size_t errlen);
/* Load every *.so in dir (sorted by name). Returns 0, or -errno when the
 * directory cannot be read (logged). Individual refusals are logged and
 * counted in r->refused. */
int loader_load_dir(struct plugin_registry *r, const char *dir);
/* The accepted types, for config validation. A type of an unloaded plugin
 * is loaded again when the validation looks it up (type_set.load: gated as
 * at start; on a refusal it counts as unknown, the reason logged). */
void loader_type_set(struct plugin_registry *r, struct type_set *out);
/* Unload the plugins none of whose types doc uses (validated): their
 * mapped code and libraries cost resident memory (issue 12: ~0.8 MB of
 * the daemon's RSS). Their types keep their names (unknown-type messages,
 * suggestions) and come back through loader_type_set()'s load. Main
 * thread, before any component runs. */
void loader_unload_unused(struct plugin_registry *r, const struct cfg_doc *doc);
/* Unloads everything; only at exit. */
void loader_registry_free(struct plugin_registry *r);

#endif
