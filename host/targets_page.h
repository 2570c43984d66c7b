/*
 * The /targets page: the cluster-wide targets view (targets_view.h) as
 * server-rendered HTML, so its tables need no JavaScript. Filters are a
 * plain GET form, so every filter and component has a URL to share and the
 * controls are keyboard-accessible; a small inline script only keeps the
 * "12 s ago" times ticking. No external assets.
 */
#ifndef STARLING_HOST_TARGETS_PAGE_H
#define STARLING_HOST_TARGETS_PAGE_H

#include <cjson/cJSON.h>

#include "targets_view.h"

/* The page for view (built with filter f). malloc'd; NULL on no memory. */
char *targets_page_html(const cJSON *view, const struct targets_filter *f);

#endif
