/* Entry point of the discovery_file plugin. */
#include <starling/plugin.h>

#include "dfile.h"

static const struct starling_component_type *const types[] = {&discovery_file_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "discovery_file",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
