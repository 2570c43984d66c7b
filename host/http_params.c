/*
 * Parsers of the HTTP API's request parameters (see http_params.h).
 */
#include "http_params.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <starling/labels.h>

int http_parse_key(const char *s, uint64_t *out)
{
	const char *digits = s;
	char *end;
	unsigned long long v;
	int base = 10;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		digits = s + 2;
		base = 16;
	}
	/* strtoull would take a sign or blanks, and "0x" alone as 0 */
	if (!(base == 16 ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits)))
		return -EINVAL;
	errno = 0;
	v = strtoull(digits, &end, base);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int http_labels_key(const char *json, uint64_t *out)
{
	cJSON *j = json ? cJSON_Parse(json) : NULL, *it;
	struct starling_label labels[HTTP_MAX_LABELS];
	size_t nl = 0;
	bool bad = !cJSON_IsObject(j);

	if (!bad) {
		cJSON_ArrayForEach(it, j)
		{
			if (!cJSON_IsString(it) || nl == HTTP_MAX_LABELS || !it->string) {
				bad = true;
				break;
			}
			labels[nl].name = it->string;
			labels[nl].value = it->valuestring;
			nl++;
		}
	}
	if (!bad)
		*out = starling_target_key(labels, nl, NULL, 0, NULL, 0);
	cJSON_Delete(j);
	return bad ? -EINVAL : 0;
}

int http_component_targets_path(const char *rest, char *id, size_t cap)
{
	const char *slash = strchr(rest, '/');

	if (!slash || strcmp(slash, "/targets") || slash == rest || (size_t)(slash - rest) >= cap)
		return -ENOENT;
	memcpy(id, rest, (size_t)(slash - rest));
	id[slash - rest] = '\0';
	return 0;
}

/* "scheme://host[:port]" -> does host[:port] equal host_hdr (case-blind)? */
static bool origin_matches_host(const char *origin, const char *host_hdr)
{
	const char *p = strstr(origin, "://");

	if (!p || !host_hdr)
		return false;
	p += 3;
	return strcasecmp(p, host_hdr) == 0;
}

/* The media type of a Content-Type value is one an HTML form can send. */
static bool form_content_type(const char *ct)
{
	static const char *const form[] = {"application/x-www-form-urlencoded",
					   "multipart/form-data", "text/plain"};

	while (*ct == ' ' || *ct == '\t')
		ct++;
	for (size_t i = 0; i < sizeof(form) / sizeof(form[0]); i++) {
		size_t n = strlen(form[i]);

		if (!strncasecmp(ct, form[i], n) &&
		    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t'))
			return true;
	}
	return false;
}

const char *http_reload_refusal(const char *origin, const char *host, const char *fetch_site,
				const char *content_type)
{
	if (origin && strcmp(origin, "null") && !origin_matches_host(origin, host))
		return "cross-origin reload refused (Origin is another site)";
	if (origin && !strcmp(origin, "null"))
		return "cross-origin reload refused (Origin: null)";
	if (fetch_site &&
	    (!strcasecmp(fetch_site, "cross-site") || !strcasecmp(fetch_site, "same-site")))
		return "cross-origin reload refused (Sec-Fetch-Site)";
	if (content_type && form_content_type(content_type))
		return "reload refused: a form-encoded or text/plain body is what a cross-site "
		       "HTML form sends; POST without a body (curl -X POST) or with "
		       "Content-Type: application/json";
	return NULL;
}
