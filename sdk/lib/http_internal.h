/* Private to the SDK HTTP client files (sdk/lib/http*.c). */
#ifndef STARLING_HTTP_INTERNAL_H
#define STARLING_HTTP_INTERNAL_H

#include <starling/http.h>

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

struct file_cache {
	char *value;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct starling_http_auth {
	struct starling_http_auth_settings s; /* strings owned; authorization
					       * credentials are kept in
					       * bearer_token(_file) */
	char *auth_type;		      /* "Bearer" or authorization.type */
	pthread_mutex_t lock;		      /* the file caches */
	struct file_cache token;
	struct file_cache password;
};

/* Current password and bearer token (either may come back NULL), freshly
 * read from their files when those changed. Caller frees both. */
int http_auth_secrets(const struct starling_http_auth *a, char **password, char **token);

/* Bytes of response buffers the client keeps between requests (the
 * inflate buffer and the pooled wire buffers), for tests: after any
 * response they stay within a few MiB however large it was. */
size_t http_client_retained_bytes(struct starling_http_client *c);

#endif
