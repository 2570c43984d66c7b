/* Entry point of the prometheus_scrape plugin. */
#include <starling/plugin.h>

#include "scrape_component.h"

static const struct starling_component_type *const types[] = {&prometheus_scrape_type};

static const struct starling_plugin_descriptor descriptor = {
    /* receive_targets and a STARLING_CFG_TARGETS key: needs a 1.1 host */
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "prometheus_scrape",
    .version = STARLING_VERSION,
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
