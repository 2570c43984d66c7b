/*
 * Fuzz the reader of OAuth2 token endpoint answers (untrusted bytes from
 * the network): any status and body must give a token or an error message,
 * never a crash, a leak or a header with a line break in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_oauth2 *o;
	struct starling_http_oauth2_settings s = {
	    .client_id = "c", .client_secret = "s", .token_url = "http://127.0.0.1:1/token"};
	char err[256], *body, *h = NULL;
	long status;

	if (!o && http_oauth2_new(&s, &o, err, sizeof(err)))
		abort();
	if (size < 1)
		return 0;
	status = data[0] < 128 ? 200 : 400 + data[0] % 200;
	body = malloc(size);
	memcpy(body, data + 1, size - 1);
	if (http_oauth2_parse_token(o, status, body, size - 1, err, sizeof(err)) == 0) {
		/* the cached header is well-formed */
		if (http_oauth2_header(o, 1, &h, err, sizeof(err)) == 0) {
			if (strpbrk(h, "\r\n") || strncmp(h, "Authorization: ", 15))
				abort();
			free(h);
		}
	}
	free(body);
	return 0;
}
