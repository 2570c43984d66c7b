/* Entry point of the discovery_kubernetes plugin. */
#include <starling/plugin.h>

#include "kubernetes.h"

static const struct starling_component_type *const types[] = {
    &discovery_kubernetes_type,
};

static const struct starling_plugin_descriptor descriptor = {
    /* produces target sets: forward_targets, since 1.1 */
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "discovery_kubernetes",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
