/*
 * Fuzz the HTTP API's parameter parsers (host/http_params.c) with the bytes
 * a client controls: the owner query's key= and labels= (JSON), and the
 * component id path of /api/v0/components/<id>/targets, and the headers
 * the /-/reload CSRF check reads. The input is one
 * NUL-terminated string given to all three. Nothing may crash, leak or read
 * out of bounds; a bad value is only refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), id[512];
	uint64_t key;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)http_parse_key(s, &key);
	(void)http_labels_key(s, &key);
	(void)http_component_targets_path(s, id, sizeof(id));
	(void)http_reload_refusal(s, s, s, s);
	(void)http_reload_refusal(s, "127.0.0.1:12345", NULL, NULL);
	free(s);
	return 0;
}
