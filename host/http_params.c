/*
 * Parsers of the HTTP API's request parameters (see http_params.h).
 */
#include "http_params.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
