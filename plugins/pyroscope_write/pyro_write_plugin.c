/* Entry point of the pyroscope_write plugin. */
#include <starling/plugin.h>

#include "pyro_write.h"

static const struct starling_component_type *const types[] = {&pyroscope_write_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "pyroscope_write",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
