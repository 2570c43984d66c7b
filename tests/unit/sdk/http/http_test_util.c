/* Helpers shared by the SDK HTTP client tests (see http_test_util.h). */
#include "http_test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "mock_host.h"

char *http_test_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);

	if (!f || !buf)
		return buf;
	if (fread(buf, 1, 65535, f) == 0)
		buf[0] = 0;
	fclose(f);
	return buf;
}

int http_test_make_certs(const char *dir, bool client)
{
	char cmd[3072];
	int n = snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout ca.key -out ca.crt -days 2 -subj /CN=starling-test-ca >/dev/null 2>&1 && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout srv.key -out srv.csr -subj /CN=starling.test >/dev/null 2>&1 && "
	    "printf 'subjectAltName=DNS:starling.test\\n' > ext.cnf && "
	    "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	    "-out srv.crt -days 2 -extfile ext.cnf >/dev/null 2>&1",
	    dir);

	if (client)
		snprintf(
		    cmd + n, sizeof(cmd) - (size_t)n,
		    " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		    "-keyout cli.key -out cli.csr -subj /CN=starling-client >/dev/null 2>&1 && "
		    "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		    "-out cli.crt -days 2 >/dev/null 2>&1");
	return system(cmd) ? -1 : 0;
}

void http_test_rm_dir(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

static const struct starling_config_key http_keys[] = {STARLING_HTTP_CONFIG_KEYS, {NULL}};

int http_test_auth_from(const char *cfg, struct starling_http_auth **a, char *err, size_t errlen)
{
	struct mock_host *m = mock_host_new("t.http", http_keys, cfg, err, errlen);
	int r;

	if (!m)
		return -1;
	r = starling_http_auth_from_config(mock_host_api(m), mock_host_config(m), a, err, errlen);
	mock_host_free(m);
	return r;
}
