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

static const struct starling_component_type fixture_type = {
    .struct_size = FIXTURE_TYPE_SIZE,
    .name = FIXTURE_TYPE_NAME,
    .help = "ABI fixture",
    .create = create,
    .destroy = destroy,
};

static const struct starling_component_type *const types[] = {&fixture_type};

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
