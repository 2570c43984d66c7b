/*
 * Parsers of the HTTP API's request parameters (host/http.c), kept apart
 * from libmicrohttpd so that they are unit-tested and fuzzed
 * (tests/fuzz/fuzz_http_params.c): the cluster owner query's key= and
 * labels=, and the component id in /api/v0/components/<id>/targets.
 */
#ifndef STARLING_HOST_HTTP_PARAMS_H
#define STARLING_HOST_HTTP_PARAMS_H

#include <stddef.h>
#include <stdint.h>

/* At most this many labels in labels=. */
#define HTTP_MAX_LABELS 64

/* key=: a decimal or 0x-hex uint64 with at least one digit, nothing else
 * (no sign, no blanks, no overflow). 0 or -EINVAL. */
int http_parse_key(const char *s, uint64_t *out);

/* labels=: a JSON object of at most HTTP_MAX_LABELS string values, turned
 * into the target key the scrape components use (starling_target_key).
 * 0 or -EINVAL. */
int http_labels_key(const char *json, uint64_t *out);

/* The part of the path after "/api/v0/components/": "<id>/targets" with a
 * non-empty id shorter than cap. Copies the id into id. 0 or -ENOENT. */
int http_component_targets_path(const char *rest, char *id, size_t cap);

/* POST /-/reload from a browser on another site must not work (CSRF): a
 * cross-origin request carries Origin (every current browser sends it on a
 * POST), and an HTML form can only send the Content-Types
 * application/x-www-form-urlencoded, multipart/form-data and text/plain.
 * So a reload is refused when Origin is present and names another host than
 * Host, or Sec-Fetch-Site says cross-site/same-site, or the Content-Type is
 * one a form can send. `curl -X POST` (no Origin, no Content-Type) and
 * requests with a JSON or custom body type are accepted. origin, host,
 * fetch_site and content_type may be NULL (header absent). Returns NULL when
 * allowed, else the reason (static text). */
const char *http_reload_refusal(const char *origin, const char *host, const char *fetch_site,
				const char *content_type);

#endif
