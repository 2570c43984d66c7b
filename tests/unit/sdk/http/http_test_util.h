/* Helpers shared by the SDK HTTP client tests. */
#ifndef STARLING_HTTP_TEST_UTIL_H
#define STARLING_HTTP_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <starling/http.h>

/* Whole file (up to 64 KiB) as a NUL-terminated string; "" if unreadable.
 * Caller frees. */
char *http_test_slurp(const char *path);

/* In the existing directory `dir`, with openssl: ca.crt/ca.key, a server
 * certificate srv.crt/srv.key for "starling.test" signed by the CA and, if
 * `client`, a client certificate cli.crt/cli.key. 0 or -1. */
int http_test_make_certs(const char *dir, bool client);

/* rm -rf dir (complains on stderr when it cannot). */
void http_test_rm_dir(const char *dir);

/* starling_http_auth_from_config() over a config text holding the keys of
 * STARLING_HTTP_CONFIG_KEYS (through the mock host). */
int http_test_auth_from(const char *cfg, struct starling_http_auth **a, char *err, size_t errlen);

#endif
