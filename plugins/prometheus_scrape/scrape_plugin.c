/* Entry point of the prometheus_scrape plugin. */
#include <starling/plugin.h>

#include "scrape.h"

static const struct starling_component_type *const types[] = {&prometheus_scrape_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "prometheus_scrape",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
