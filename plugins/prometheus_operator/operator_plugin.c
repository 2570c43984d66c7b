/* Entry point of the prometheus_operator plugin. */
#include <starling/plugin.h>

#include "operator.h"

static const struct starling_component_type *const types[] = {
    &prometheus_operator_podmonitors_type,
    &prometheus_operator_servicemonitors_type,
};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "prometheus_operator",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 2,
};

STARLING_PLUGIN(descriptor)
