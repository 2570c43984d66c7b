/*
 * The HTTP surface (libmicrohttpd, internal thread pool): /metrics, /-/ready,
 * /-/healthy, POST /-/reload, /api/v0/..., and the web UI at /.
 */
#ifndef STARLING_HOST_HTTP_H
#define STARLING_HOST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "runtime.h"

struct http_server;

/* Listen on addr ("host:port") and serve. Returns 0 or -errno with a
 * message in err. start_time is the process start (seconds since epoch). */
int http_start(struct http_server **out, const char *addr, struct runtime *rt,
	       struct cluster *cluster, double start_time, char *err, size_t errlen);
void http_stop(struct http_server *s);

/* Process metrics (process_*), exposed for tests. */
void http_write_process_metrics(FILE *out, double start_time);

#endif
