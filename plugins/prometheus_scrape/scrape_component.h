/*
 * The prometheus.scrape component type (scrape_component.c). The scrape
 * engine it drives (targets, series cache, staleness) is the SDK's
 * <starling/scrape.h>.
 */
#ifndef PROMETHEUS_SCRAPE_COMPONENT_H
#define PROMETHEUS_SCRAPE_COMPONENT_H

#include <starling/scrape.h>

extern const struct starling_component_type prometheus_scrape_type;

#endif
