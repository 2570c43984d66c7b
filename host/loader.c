/*
 * Plugin loader (libltdl lives here and nowhere else).
 */
#include "loader.h"
#include "crash.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ltdl.h>

static int ltdl_users;

struct plugin_registry *loader_registry_new(void)
{
	struct plugin_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (ltdl_users++ == 0 && lt_dlinit() != 0) {
		log_error("cannot initialise libltdl: %s", lt_dlerror());
		ltdl_users--;
		free(r);
		return NULL;
	}
	return r;
}

/* Refuse a path (file or its directory) that others could rewrite. */
static int check_perms(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: cannot stat: %s", what, strerror(errno));
		return -errno;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s is %s-writable: expected mode without group/other write, found %04o",
			 what, (st.st_mode & S_IWOTH) ? "world" : "group",
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Size of struct starling_config_key as ABI 1.0 defines it. */
#define CONFIG_KEY_MIN_SIZE                                                                        \
	(offsetof(struct starling_config_key, ref_accepts) +                                       \
	 sizeof(((struct starling_config_key *)0)->ref_accepts))

static const struct starling_config_key *key_at(const struct starling_config_key *a, size_t stride,
						size_t i)
{
	return (const struct starling_config_key *)((const char *)a + i * stride);
}

/* Copy a schema array written with another struct starling_config_key
 * stride (a plugin built against a different minor) into this host's
 * layout, children too. Every allocation is recorded in p->schemas. */
static int schema_normalise(struct loaded_plugin *p, const struct starling_config_key *in,
			    size_t stride, int depth, const struct starling_config_key **out,
			    char *err, size_t errlen)
{
	struct starling_config_key *copy, **ns;
	size_t n = 0;

	if (!in) {
		*out = NULL;
		return 0;
	}
	if (depth > 16) {
		snprintf(err, errlen, "schema: expected at most 16 nested groups, found more");
		return -ENOEXEC;
	}
	while (key_at(in, stride, n)->name) {
		if (++n > 4096) {
			snprintf(err, errlen, "schema: expected at most 4096 keys per group");
			return -ENOEXEC;
		}
	}
	copy = calloc(n + 1, sizeof(*copy));
	ns = realloc(p->schemas, (p->n_schemas + 1) * sizeof(*ns));
	if (ns)
		p->schemas = ns;
	if (!copy || !ns) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->schemas[p->n_schemas++] = copy;
	for (size_t i = 0; i < n; i++) {
		int ret;

		memcpy(&copy[i], key_at(in, stride, i),
		       stride < sizeof(copy[i]) ? stride : sizeof(copy[i]));
		ret = schema_normalise(p, copy[i].children, stride, depth + 1, &copy[i].children,
				       err, errlen);
		if (ret)
			return ret;
	}
	*out = copy;
	return 0;
}

static bool schema_uses_targets(const struct starling_config_key *k, int depth)
{
	for (; k && k->name && depth < 16; k++)
		if (k->type == STARLING_CFG_TARGETS || schema_uses_targets(k->children, depth + 1))
			return true;
	return false;
}

/* A type that uses a 1.1 feature the host must honour (a 1.0 host would
 * silently ignore it) while its plugin declares it runs on a 1.0 host. */
static const char *needs_1_1(const struct starling_component_type *t)
{
	if (t->receive_targets)
		return "receive_targets";
	if (t->accepts & STARLING_ACCEPTS_TARGETS)
		return "accepts targets";
	if (schema_uses_targets(t->schema, 0))
		return "a STARLING_CFG_TARGETS key";
	return NULL;
}

/* The directory part of path ("." when none). */
static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash) {
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
		if (!dir[0])
			snprintf(dir, len, "/");
	} else {
		snprintf(dir, len, ".");
	}
}

/* Load and check path into p. self: the file of the plugin p reloads (its
 * unloaded types are not duplicates), else NULL. */
static int gate(struct plugin_registry *r, const char *path, struct loaded_plugin *p,
		const char *self, char *err, size_t errlen)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const struct starling_plugin_descriptor *d;
	starling_plugin_entry_fn entry;
	lt_dlhandle h;
	struct stat st;
	int ret;

	/* Check and load the file the path finally names: through a symlink,
	 * the real file and the directory that holds it are what someone could
	 * rewrite (the link's own directory is checked too: whoever can write
	 * there can re-point the link). */
	if (!realpath(path, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return -ENOENT;
	}
	ret = check_perms(real, strcmp(real, path) ? "file (symlink target)" : "file", err, errlen);
	if (ret)
		return ret;
	dir_of(real, dir, sizeof(dir));
	ret = check_perms(dir, strcmp(real, path) ? "directory of the symlink target" : "directory",
			  err, errlen);
	if (ret)
		return ret;
	if (strcmp(real, path)) {
		dir_of(path, dir, sizeof(dir));
		ret = check_perms(dir, "directory", err, errlen);
		if (ret)
			return ret;
	}

	h = lt_dlopen(real);
	if (!h) {
		snprintf(err, errlen, "cannot load: %s", lt_dlerror());
		return -ENOEXEC;
	}
	p->handle = h;
	entry = (starling_plugin_entry_fn)(uintptr_t)lt_dlsym(h, STARLING_ENTRY_SYMBOL);
	if (!entry) {
		snprintf(err, errlen, "entry symbol: expected %s(), found none",
			 STARLING_ENTRY_SYMBOL);
		return -ENOEXEC;
	}
	crash_register_module(real, (const void *)(uintptr_t)entry);
	d = entry();
	if (!d) {
		snprintf(err, errlen, "descriptor: expected a pointer, found NULL");
		return -ENOEXEC;
	}
	if (d->magic != STARLING_PLUGIN_MAGIC) {
		snprintf(err, errlen, "magic: expected 0x%016" PRIx64 ", found 0x%016" PRIx64,
			 STARLING_PLUGIN_MAGIC, d->magic);
		return -ENOEXEC;
	}
	if (d->abi_major != STARLING_ABI_MAJOR) {
		snprintf(err, errlen, "ABI major: expected %u, found %" PRIu32, STARLING_ABI_MAJOR,
			 d->abi_major);
		return -ENOEXEC;
	}
	if (d->abi_minor > STARLING_ABI_MINOR) {
		snprintf(err, errlen,
			 "ABI minor: the plugin needs a host of ABI %" PRIu32 ".%" PRIu32
			 " or newer, this host is %u.%u",
			 d->abi_major, d->abi_minor, STARLING_ABI_MAJOR, STARLING_ABI_MINOR);
		return -ENOEXEC;
	}
	if (d->struct_size < STARLING_DESCRIPTOR_MIN_SIZE) {
		snprintf(err, errlen,
			 "descriptor struct_size: expected at least %zu, found %" PRIu32,
			 STARLING_DESCRIPTOR_MIN_SIZE, d->struct_size);
		return -ENOEXEC;
	}
	memset(&p->desc, 0, sizeof(p->desc));
	memcpy(&p->desc, d, d->struct_size < sizeof(p->desc) ? d->struct_size : sizeof(p->desc));
	if (p->desc.n_types == 0 || !p->desc.types || p->desc.n_types > 256) {
		snprintf(err, errlen, "types: expected 1..256 component types, found %zu",
			 p->desc.types ? p->desc.n_types : 0);
		return -ENOEXEC;
	}
	p->types = calloc(p->desc.n_types, sizeof(*p->types));
	if (!p->types) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->desc.n_types; i++) {
		const struct starling_component_type *t = p->desc.types[i];
		struct starling_component_type *copy;

		if (!t) {
			snprintf(err, errlen, "type %zu: expected a pointer, found NULL", i);
			return -ENOEXEC;
		}
		if (t->struct_size < STARLING_TYPE_MIN_SIZE) {
			snprintf(err, errlen,
				 "type %zu struct_size: expected at least %zu, found %" PRIu32, i,
				 STARLING_TYPE_MIN_SIZE, t->struct_size);
			return -ENOEXEC;
		}
		copy = calloc(1, sizeof(*copy));
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		memcpy(copy, t, t->struct_size < sizeof(*copy) ? t->struct_size : sizeof(*copy));
		p->types[p->n_types++] = copy;
		if (copy->schema_key_size && copy->schema_key_size < CONFIG_KEY_MIN_SIZE) {
			snprintf(err, errlen,
				 "type %zu schema_key_size: expected at least %zu, found %" PRIu32,
				 i, CONFIG_KEY_MIN_SIZE, copy->schema_key_size);
			return -ENOEXEC;
		}
		if (copy->schema_key_size && copy->schema_key_size != sizeof(*copy->schema)) {
			int ret = schema_normalise(p, copy->schema, copy->schema_key_size, 0,
						   &copy->schema, err, errlen);

			if (ret)
				return ret;
		}
		if (!copy->name || !copy->name[0] || !copy->create || !copy->destroy) {
			snprintf(err, errlen,
				 "type %zu: expected a name and create/destroy callbacks, found %s",
				 i, copy->name ? copy->name : "(no name)");
			return -ENOEXEC;
		}
		if (copy->accepts && !copy->receive_series &&
		    (copy->accepts & STARLING_ACCEPTS_SERIES)) {
			snprintf(err, errlen, "type %s: accepts series but has no receive_series",
				 copy->name);
			return -ENOEXEC;
		}
		if ((copy->accepts & STARLING_ACCEPTS_PROFILE) && !copy->receive_profile) {
			snprintf(err, errlen,
				 "type %s: accepts profiles but has no receive_profile",
				 copy->name);
			return -ENOEXEC;
		}
		if ((copy->accepts & STARLING_ACCEPTS_TARGETS) && !copy->receive_targets) {
			snprintf(err, errlen, "type %s: accepts targets but has no receive_targets",
				 copy->name);
			return -ENOEXEC;
		}
		if (p->desc.abi_minor < 1 && needs_1_1(copy)) {
			snprintf(err, errlen,
				 "type %s: uses %s (since ABI 1.1) but declares that it runs on "
				 "hosts from ABI %" PRIu32 ".%" PRIu32
				 " (use STARLING_DESCRIPTOR_HEAD_MIN(1))",
				 copy->name, needs_1_1(copy), p->desc.abi_major, p->desc.abi_minor);
			return -ENOEXEC;
		}
		for (size_t j = 0; j < r->n_types; j++) {
			if (self && r->type_files[j] == self)
				continue;
			if (!strcmp(r->types[j]->name, copy->name)) {
				snprintf(
				    err, errlen,
				    "component type %s: expected a new type, found one already "
				    "provided by %s (keeping that one)",
				    copy->name, r->type_files[j]);
				return -EEXIST;
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(p->types[j]->name, copy->name)) {
				snprintf(err, errlen,
					 "component type %s: declared twice in the same plugin",
					 copy->name);
				return -EEXIST;
			}
		}
	}
	return 0;
}

static void plugin_release(struct loaded_plugin *p)
{
	for (size_t i = 0; i < p->n_types; i++) {
		if (!p->handle && p->types[i]) /* unloaded: the name is ours */
			free((char *)p->types[i]->name);
		free(p->types[i]);
	}
	free(p->types);
	for (size_t i = 0; i < p->n_schemas; i++)
		free(p->schemas[i]);
	free(p->schemas);
	if (p->handle)
		lt_dlclose((lt_dlhandle)p->handle);
	free(p->file);
}

int loader_load_file(struct plugin_registry *r, const char *path, char *err, size_t errlen)
{
	struct loaded_plugin p = {0}, *np;
	const struct starling_component_type **nt;
	const char **nf;
	uint32_t *nm;
	int ret;

	ret = gate(r, path, &p, NULL, err, errlen);
	if (ret) {
		log_error("refusing plugin %s: %s", path, err);
		r->refused++;
		plugin_release(&p);
		return ret;
	}
	p.file = strdup(path);
	np = realloc(r->plugins, (r->n_plugins + 1) * sizeof(*np));
	nt = realloc(r->types, (r->n_types + p.n_types) * sizeof(*nt));
	nf = realloc(r->type_files, (r->n_types + p.n_types) * sizeof(*nf));
	if (np)
		r->plugins = np;
	if (nt)
		r->types = nt;
	if (nf)
		r->type_files = nf;
	nm = realloc(r->type_built_minor, (r->n_types + p.n_types) * sizeof(*nm));
	if (nm)
		r->type_built_minor = nm;
	if (!p.file || !np || !nt || !nf || !nm) {
		snprintf(err, errlen, "out of memory");
		plugin_release(&p);
		return -ENOMEM;
	}
	r->plugins[r->n_plugins++] = p;
	for (size_t i = 0; i < p.n_types; i++) {
		r->types[r->n_types] = p.types[i];
		r->type_files[r->n_types] = r->plugins[r->n_plugins - 1].file;
		r->type_built_minor[r->n_types] = p.desc.built_minor;
		r->n_types++;
	}
	log_debug("loaded plugin %s (%s %s, ABI %" PRIu32 ".%" PRIu32 " built, needs %" PRIu32
		  ".%" PRIu32 ", %zu component types)",
		  path, p.desc.name ? p.desc.name : "?", p.desc.version ? p.desc.version : "?",
		  p.desc.abi_major, p.desc.built_minor, p.desc.abi_major, p.desc.abi_minor,
		  p.n_types);
	return 0;
}

static int so_filter(const struct dirent *e)
{
	size_t l = strlen(e->d_name);

	return l > 3 && !strcmp(e->d_name + l - 3, ".so") && e->d_name[0] != '.';
}

int loader_load_dir(struct plugin_registry *r, const char *dir)
{
	struct dirent **list;
	int n;

	n = scandir(dir, &list, so_filter, alphasort);
	if (n < 0) {
		int e = errno;

		log_error("cannot read plugins directory %s: %s", dir, strerror(e));
		return -e;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		char err[512];

		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		loader_load_file(r, path, err, sizeof(err));
		free(list[i]);
	}
	free(list);
	return 0;
}

/* type_set.load: load the plugin of unloaded type t again; the type (the
 * same struct, now whole) or NULL. */
static const struct starling_component_type *reload_type(void *ctx,
							 const struct starling_component_type *t)
{
	struct plugin_registry *r = ctx;
	struct loaded_plugin *p = NULL, q = {0};
	char err[512];

	for (size_t i = 0; i < r->n_plugins && !p; i++)
		for (size_t j = 0; j < r->plugins[i].n_types; j++)
			if (r->plugins[i].types[j] == t && !r->plugins[i].handle)
				p = &r->plugins[i];
	if (!p)
		return NULL;
	if (gate(r, p->file, &q, p->file, err, sizeof(err))) {
		log_error("cannot load plugin %s again for component type %s: %s", p->file, t->name,
			  err);
		plugin_release(&q);
		return NULL;
	}
	/* each unloaded type takes the loaded one of its name (the structs
	 * stay where the type set points) */
	for (size_t j = 0; j < p->n_types; j++) {
		struct starling_component_type *u = p->types[j];

		for (size_t k = 0; k < q.n_types; k++) {
			if (!q.types[k] || strcmp(q.types[k]->name, u->name))
				continue;
			free((char *)u->name);
			*u = *q.types[k];
			free(q.types[k]);
			q.types[k] = NULL;
			break;
		}
	}
	for (size_t k = 0; k < q.n_types; k++)
		free(q.types[k]); /* not in the registry (the file changed) */
	free(q.types);
	p->desc = q.desc;
	p->schemas = q.schemas;
	p->n_schemas = q.n_schemas;
	p->handle = q.handle;
	log_info("loaded plugin %s again (component type %s)", p->file, t->name);
	return t->create ? t : NULL;
}

void loader_type_set(struct plugin_registry *r, struct type_set *out)
{
	out->types = r->types;
	out->n = r->n_types;
	out->built_minor = r->type_built_minor;
	out->load = reload_type;
	out->load_ctx = r;
}

void loader_unload_unused(struct plugin_registry *r, const struct cfg_doc *doc)
{
	for (size_t i = 0; i < r->n_plugins; i++) {
		struct loaded_plugin *p = &r->plugins[i];
		char **names;
		bool used = false;
		void *entry;

		if (!p->handle)
			continue;
		for (size_t k = 0; k < doc->n_components && !used; k++)
			for (size_t j = 0; j < p->n_types && !used; j++)
				used = doc->components[k].type == p->types[j];
		if (used || !(names = calloc(p->n_types, sizeof(*names))))
			continue;
		for (size_t j = 0; j < p->n_types; j++)
			if (!(names[j] = strdup(p->types[j]->name)))
				used = true;
		if (used) { /* out of memory: keep it loaded */
			for (size_t j = 0; j < p->n_types; j++)
				free(names[j]);
			free(names);
			continue;
		}
		/* only the name is left: no create callback marks it unloaded */
		for (size_t j = 0; j < p->n_types; j++) {
			memset(p->types[j], 0, sizeof(*p->types[j]));
			p->types[j]->name = names[j];
		}
		free(names);
		for (size_t j = 0; j < p->n_schemas; j++)
			free(p->schemas[j]);
		free(p->schemas);
		p->schemas = NULL;
		p->n_schemas = 0;
		entry = lt_dlsym((lt_dlhandle)p->handle, STARLING_ENTRY_SYMBOL);
		if (entry)
			crash_forget_module(entry);
		lt_dlclose((lt_dlhandle)p->handle);
		p->handle = NULL;
		log_debug("unloaded plugin %s (no component of its types configured)", p->file);
	}
}

void loader_registry_free(struct plugin_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_plugins; i++)
		plugin_release(&r->plugins[i]);
	free(r->plugins);
	free(r->types);
	free(r->type_files);
	free(r->type_built_minor);
	free(r);
	if (--ltdl_users == 0)
		lt_dlexit();
}
