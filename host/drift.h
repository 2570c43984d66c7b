/*
 * Configuration drift: the fingerprint of the configuration that decides
 * ownership, which every node advertises in its cluster tags so that peers
 * can compare (host/cluster/ does the comparing).
 */
#ifndef STARLING_HOST_DRIFT_H
#define STARLING_HOST_DRIFT_H

#include "config.h"

/* "id:hash,id:hash" (ids sorted, hash = 8 hex digits of XXH3 over the
 * parts that decide which node scrapes what: targets and their discovery
 * sources, interval, job name, clustering block, operator selectors) for
 * every component with clustering.enabled = true; "" when none. When the
 * list would not fit in max bytes, "#" and one hash over all. malloc'd
 * (NULL on allocation failure). */
char *drift_fingerprint(const struct cfg_doc *d, size_t max);

#endif
