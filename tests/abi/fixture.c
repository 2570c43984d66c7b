/*
 * ABI gate fixture plugins: one source built several times with different
 * FIXTURE_* definitions (see CMakeLists.txt), each exercising one check of the
 * loader.
 */
#include <stddef.h>
#include <stdint.h>

#include <starling/plugin.h>

#ifndef FIXTURE_MAGIC
#define FIXTURE_MAGIC STARLING_PLUGIN_MAGIC
#endif
#ifndef FIXTURE_MAJOR
#define FIXTURE_MAJOR STARLING_ABI_MAJOR
#endif
#ifndef FIXTURE_MINOR
#define FIXTURE_MINOR STARLING_ABI_MINOR
#endif
#ifndef FIXTURE_TYPE_NAME
#define FIXTURE_TYPE_NAME "abi.good"
#endif
#ifndef FIXTURE_TYPE_SIZE
#define FIXTURE_TYPE_SIZE sizeof(struct starling_component_type)
#endif

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	*out = NULL;
	return 0;
}

static void destroy(void *inst)
{
}

#ifdef FIXTURE_TARGETS
static int receive_targets(void *inst, const char *source, const struct starling_target_set *set)
{
	return 0;
}
#endif

#ifdef FIXTURE_KEY_PAD
/* A schema built against a "future" header whose struct starling_config_key
 * is FIXTURE_KEY_PAD bytes longer: the host must walk it with the stride the
 * type states and see the same keys. */
struct padded_key {
	struct starling_config_key k;
	char future[FIXTURE_KEY_PAD];
};

static const struct padded_key inner_schema[] = {
    {.k = {.name = "gamma", .type = STARLING_CFG_INT, .default_value = "7", .help = "g"},
     .future = "xxxxxxxxxxxxxxx"},
    {.k = {.name = NULL}},
};

static const struct padded_key schema[] = {
    {.k = {.name = "alpha", .type = STARLING_CFG_STRING, .default_value = "a", .help = "a"},
     .future = "xxxxxxxxxxxxxxx"},
    {.k = {.name = "beta", .type = STARLING_CFG_GROUP, .help = "b", .children = &inner_schema[0].k},
     .future = "xxxxxxxxxxxxxxx"},
    {.k = {.name = NULL}},
};
#endif

/* A component type from a "future" plugin can be longer than this host's:
 * the host copies only what it knows. */
struct bigger_type {
	struct starling_component_type t;
	uint64_t future_member;
};

static const struct bigger_type fixture_type = {
    .t =
	{
	    .struct_size = FIXTURE_TYPE_SIZE,
	    .name = FIXTURE_TYPE_NAME,
	    .help = "ABI fixture",
	    .create = create,
	    .destroy = destroy,
#ifdef FIXTURE_TARGETS
	    .accepts = STARLING_ACCEPTS_TARGETS,
	    .receive_targets = receive_targets,
#endif
#ifdef FIXTURE_KEY_PAD
	    .schema = &schema[0].k,
	    .schema_key_size = sizeof(struct padded_key),
#endif
	},
    .future_member = 42,
};

static const struct starling_component_type *const types[] = {&fixture_type.t};

/* A descriptor from a "future" plugin: the 1.0 struct followed by a member
 * this host does not know (the host must copy only what it knows). */
struct bigger_descriptor {
	struct starling_plugin_descriptor d;
	uint64_t future_member;
};

static const struct bigger_descriptor descriptor = {
    .d =
	{
	    .magic = FIXTURE_MAGIC,
	    .abi_major = FIXTURE_MAJOR,
	    .abi_minor = FIXTURE_MINOR,
#ifdef FIXTURE_SIZE
	    .struct_size = FIXTURE_SIZE,
#else
	    .struct_size = sizeof(struct starling_plugin_descriptor),
#endif
	    .name = "abi_fixture",
	    .version = "1",
	    .types = types,
	    .n_types = 1,
	    .built_minor = STARLING_ABI_MINOR,
	},
    .future_member = 42,
};

#ifndef FIXTURE_NO_ENTRY
STARLING_PLUGIN(descriptor.d)
#else
/* Exported, but not under the entry symbol name. */
STARLING_EXPORT const struct starling_plugin_descriptor *starling_plugin_entry_v0(void);
STARLING_EXPORT const struct starling_plugin_descriptor *starling_plugin_entry_v0(void)
{
	return &descriptor.d;
}
#endif
