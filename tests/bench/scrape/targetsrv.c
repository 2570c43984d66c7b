/*
 * Benchmark target server: N scrape targets on consecutive loopback ports,
 * each serving a fixed Prometheus text payload (about 1,000 series:
 * counters, gauges and 10-bucket histograms), gzip-compressed when the client
 * asks for it, plus a remote-write sink that answers 204 and counts what it
 * got. Cheap on purpose: bodies are built once, so the scrapers are what is
 * measured.
 *
 * usage: targetsrv BASE_PORT N_TARGETS SINK_PORT [SERIES_PER_TARGET]
 * Prints "ready" on stdout once every socket listens. SIGTERM/SIGINT stop it
 * and print "sink_requests=N sink_bytes=N". With TARGETSRV_REQUEST_LOG=FILE
 * every scrape is logged there as "PORT UNIX_SECONDS" (ms precision): each
 * target's own request log, which the cluster hand-off tests count slots in.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <zlib.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct body {
	int port;
	char *plain;
	size_t plain_len;
	unsigned char *gz;
	size_t gz_len;
};

static struct body *bodies;
static atomic_ulong sink_requests, sink_bytes;
static volatile sig_atomic_t stop_flag;
static FILE *request_log;
static pthread_mutex_t request_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_request(int port)
{
	struct timespec ts;

	if (!request_log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&request_log_lock);
	fprintf(request_log, "%d %lld.%03ld\n", port, (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	fflush(request_log);
	pthread_mutex_unlock(&request_log_lock);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < *cap - *len)
			break;
		*cap *= 2;
		*buf = realloc(*buf, *cap);
		if (!*buf)
			return -1;
	}
	*len += (size_t)n;
	return 0;
}

/* ~1,000 series: 40 counter families x 8 series, 30 gauges x 8, 4 histograms
 * x 8 series x (10 buckets + +Inf + sum + count). */
static void build_body(struct body *b, int target, int series_goal)
{
	size_t cap = 1 << 17, len = 0;
	char *buf = malloc(cap);
	int made = 0;
	static const char *le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
				   "0.5",   "1",    "2.5",   "5",    "+Inf"};

	buf[0] = 0;
	for (int f = 0; made < series_goal; f++) {
		int kind = f % 3;

		if (kind == 0) {
			append(&buf, &len, &cap,
			       "# HELP bench_requests_%d_total Requests handled by handler family "
			       "%d.\n"
			       "# TYPE bench_requests_%d_total counter\n",
			       f, f, f);
			for (int s = 0; s < 8; s++, made++)
				append(&buf, &len, &cap,
				       "bench_requests_%d_total{code=\"%d\",handler=\"/api/v1/item/"
				       "%d\",method=\"GET\"} %d\n",
				       f, 200 + s, s, 1000 * target + f * 13 + s);
		} else if (kind == 1) {
			append(
			    &buf, &len, &cap,
			    "# HELP bench_temperature_%d_celsius Temperature of sensor group %d.\n"
			    "# TYPE bench_temperature_%d_celsius gauge\n",
			    f, f, f);
			for (int s = 0; s < 8; s++, made++)
				append(&buf, &len, &cap,
				       "bench_temperature_%d_celsius{sensor=\"s%d\",zone=\"zone-%"
				       "d\"} %d.%d\n",
				       f, s, target % 7, 20 + s, f % 10);
		} else {
			append(&buf, &len, &cap,
			       "# HELP bench_latency_%d_seconds Latency of operation group %d.\n"
			       "# TYPE bench_latency_%d_seconds histogram\n",
			       f, f, f);
			for (int s = 0; s < 4; s++) {
				for (int i = 0; i < 11; i++, made++)
					append(&buf, &len, &cap,
					       "bench_latency_%d_seconds_bucket{op=\"op%d\",le=\"%"
					       "s\"} %d\n",
					       f, s, le[i], (i + 1) * 10 + target);
				append(&buf, &len, &cap,
				       "bench_latency_%d_seconds_sum{op=\"op%d\"} %d.25\n", f, s,
				       17 + target);
				append(&buf, &len, &cap,
				       "bench_latency_%d_seconds_count{op=\"op%d\"} %d\n", f, s,
				       110 + target);
				made += 2;
			}
		}
	}
	b->plain = buf;
	b->plain_len = len;

	z_stream zs = {0};
	deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	b->gz = malloc(deflateBound(&zs, len));
	zs.next_in = (unsigned char *)buf;
	zs.avail_in = (uInt)len;
	zs.next_out = b->gz;
	zs.avail_out = (uInt)deflateBound(&zs, len);
	deflate(&zs, Z_FINISH);
	b->gz_len = zs.total_out;
	deflateEnd(&zs);
}

static enum MHD_Result serve_target(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version, const char *upload,
				    size_t *upload_len, void **state)
{
	struct body *b = cls;
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	int gz = ae && strstr(ae, "gzip");
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!*state) { /* first call: headers only */
		*state = (void *)1;
		log_request(b->port);
		return MHD_YES;
	}
	if (gz)
		r = MHD_create_response_from_buffer(b->gz_len, b->gz, MHD_RESPMEM_PERSISTENT);
	else
		r = MHD_create_response_from_buffer(b->plain_len, b->plain, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_sink(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!*state) {
		*state = (void *)1;
		return MHD_YES;
	}
	if (*upload_len) {
		atomic_fetch_add(&sink_bytes, *upload_len);
		*upload_len = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&sink_requests, 1);
	r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Daemon *listen_on(int port, MHD_AccessHandlerCallback cb, void *cls)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	sa.sin_addr.s_addr = htonl(0x7f000001);
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port,
				NULL, NULL, cb, cls, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
}

int main(int argc, char **argv)
{
	int base, n, sink_port, series = 1000;
	struct MHD_Daemon **d, *sink;

	if (argc < 4) {
		fprintf(stderr, "usage: %s BASE_PORT N_TARGETS SINK_PORT [SERIES]\n", argv[0]);
		return 2;
	}
	base = (int)strtol(argv[1], NULL, 10);
	n = (int)strtol(argv[2], NULL, 10);
	sink_port = (int)strtol(argv[3], NULL, 10);
	if (argc > 4)
		series = (int)strtol(argv[4], NULL, 10);
	if (getenv("TARGETSRV_REQUEST_LOG")) {
		request_log = fopen(getenv("TARGETSRV_REQUEST_LOG"), "a");
		if (!request_log) {
			perror("TARGETSRV_REQUEST_LOG");
			return 1;
		}
	}
	bodies = calloc((size_t)n, sizeof(*bodies));
	d = calloc((size_t)n, sizeof(*d));
	for (int i = 0; i < n; i++) {
		build_body(&bodies[i], i, series);
		bodies[i].port = base + i;
		d[i] = listen_on(base + i, serve_target, &bodies[i]);
		if (!d[i]) {
			fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", base + i);
			return 1;
		}
	}
	sink = listen_on(sink_port, serve_sink, NULL);
	if (!sink) {
		fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", sink_port);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fprintf(stderr, "body %zu bytes (%zu gzip)\n", bodies[0].plain_len, bodies[0].gz_len);
	printf("ready\n");
	fflush(stdout);
	while (!stop_flag)
		pause();
	printf("sink_requests=%lu sink_bytes=%lu\n", atomic_load(&sink_requests),
	       atomic_load(&sink_bytes));
	for (int i = 0; i < n; i++)
		MHD_stop_daemon(d[i]);
	MHD_stop_daemon(sink);
	return 0;
}
