/* Entry point of the discovery_relabel plugin. */
#include <starling/plugin.h>

#include "drelabel.h"

static const struct starling_component_type *const types[] = {&discovery_relabel_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "discovery_relabel",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
