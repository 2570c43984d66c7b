/*
 * Benchmark target server: N scrape targets, each serving a Prometheus text
 * payload (counters, gauges and 10-bucket histograms), gzip-compressed when
 * the client asks for it, plus a remote-write sink that answers 204 and
 * decodes (snappy + protobuf wire walk) and counts what it got. Cheap on
 * purpose: static bodies are built once, every target is served by one
 * libmicrohttpd daemon (2 threads) fed by one accept thread that polls all
 * listening sockets, so 10,000 targets cost 10,000 sockets, not threads.
 *
 * usage: targetsrv BASE_PORT N_TARGETS SINK_PORT [SERIES_PER_TARGET]
 * Prints "ready" on stdout once every socket listens. SIGTERM/SIGINT stop it
 * and print the sink's counts. Environment:
 *   TARGETSRV_REQUEST_LOG=FILE  every scrape is logged there as
 *                               "KEY UNIX_SECONDS" (ms precision), KEY being
 *                               BASE_PORT + target index (the port in the
 *                               default layout): each target's request log.
 *   TARGETSRV_HOSTS=X           (1-254) target i listens on
 *                               127.X.(i/250).(i%250+1):BASE_PORT instead of
 *                               127.0.0.1:BASE_PORT+i (10,000 targets without
 *                               10,000 ports; X keeps parallel runs apart).
 *   TARGETSRV_FIRST=K           this process serves targets K..K+N-1 (several
 *                               processes share 10,000 targets when one
 *                               would run out of file descriptors);
 *                               SINK_PORT 0 = no sink.
 *   TARGETSRV_EXACT=1           exactly SERIES series per target (default:
 *                               whole families, i.e. a few more).
 *   TARGETSRV_CHURN=PCT         PCT % of each target's series get a new label
 *                               value on every scrape of that target.
 *   TARGETSRV_SINK_LOG=FILE     one line per remote-write request: "ARRIVAL
 *                               SAMPLES TARGET_SAMPLES MIN_TS MAX_TS" (Unix
 *                               seconds with ms; the timestamps in ms).
 * Sink port: POST anything = remote write; GET /counts answers
 * "requests=N bytes=N series=N samples=N stale=N histograms=N
 * target_samples=N errors=N scrapes=N" (target_samples: samples of series
 * named bench_*, i.e. the targets' own series; scrapes: served by this
 * process' targets only); GET /counts?from=S&to=T adds
 * "window_target_samples=N", the target samples received so far whose
 * timestamps fall in the Unix seconds [S, T) (the last 4,096 s); GET /bomb?target=I&series=N
 * makes target I expose N extra series from its next scrape on (N=0 ends it).
 */
#include "rw_count.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <snappy-c.h>
#include <zlib.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct body {
	int key; /* BASE_PORT + index: the request log's key */
	char *plain;
	size_t plain_len;
	unsigned char *gz;
	size_t gz_len;
	int churn;	  /* series that change their label on every scrape */
	atomic_ulong gen; /* scrapes served: the churn generation */
	atomic_int bomb;  /* extra series exposed now (0: none) */
	atomic_ulong scrapes;
};

static struct body *bodies;
static int n_targets, base_port, first;
static int hosts_mode; /* 127.<hosts_mode>.y.z, 0: one port per target */
static atomic_ulong sink_requests, sink_bytes, sink_errors;
static struct rw_counts sink_counts;
/* target samples by the second of their timestamp (GET /counts?from=&to=),
 * a ring of TS_RING seconds; sec says which second a slot holds now */
#define TS_RING 4096
static struct {
	int64_t sec;
	uint64_t n;
} ts_ring[TS_RING];
static FILE *sink_log; /* TARGETSRV_SINK_LOG: one line per remote-write request */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop_flag;
static FILE *request_log;
static pthread_mutex_t request_log_lock = PTHREAD_MUTEX_INITIALIZER;

/* the bomb body, built once per size */
static pthread_mutex_t bomb_lock = PTHREAD_MUTEX_INITIALIZER;
static char *bomb_plain;
static unsigned char *bomb_gz;
static size_t bomb_plain_len, bomb_gz_len;
static int bomb_series;

static void log_request(int key)
{
	struct timespec ts;

	if (!request_log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&request_log_lock);
	fprintf(request_log, "%d %lld.%03ld\n", key, (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	fflush(request_log);
	pthread_mutex_unlock(&request_log_lock);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void append(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap *= 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->len += (size_t)n;
}

/* Series in families: counters x 8, gauges x 8, histograms x 4 groups x
 * (10 buckets + +Inf + sum + count). exact: stop at series_goal (a
 * histogram group that does not fit becomes gauges). */
static void build_text(struct sbuf *b, int target, int series_goal, bool exact)
{
	int made = 0;
	static const char *le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
				   "0.5",   "1",    "2.5",   "5",    "+Inf"};

	for (int f = 0; made < series_goal; f++) {
		int kind = f % 3, per = exact ? series_goal - made : 8;

		if (kind == 2 && exact && series_goal - made < 13)
			kind = 1;
		if (per > 8)
			per = 8;
		if (kind == 0) {
			append(b,
			       "# HELP bench_requests_%d_total Requests handled by handler family "
			       "%d.\n"
			       "# TYPE bench_requests_%d_total counter\n",
			       f, f, f);
			for (int s = 0; s < per; s++, made++)
				append(b,
				       "bench_requests_%d_total{code=\"%d\",handler=\"/api/v1/item/"
				       "%d\",method=\"GET\"} %d\n",
				       f, 200 + s, s, 1000 * target + f * 13 + s);
		} else if (kind == 1) {
			append(
			    b,
			    "# HELP bench_temperature_%d_celsius Temperature of sensor group %d.\n"
			    "# TYPE bench_temperature_%d_celsius gauge\n",
			    f, f, f);
			for (int s = 0; s < per; s++, made++)
				append(
				    b,
				    "bench_temperature_%d_celsius{sensor=\"s%d\",zone=\"zone-%d\"} "
				    "%d.%d\n",
				    f, s, target % 7, 20 + s, f % 10);
		} else {
			append(b,
			       "# HELP bench_latency_%d_seconds Latency of operation group %d.\n"
			       "# TYPE bench_latency_%d_seconds histogram\n",
			       f, f, f);
			for (int s = 0; s < 4 && (!exact || series_goal - made >= 13); s++) {
				for (int i = 0; i < 11; i++, made++)
					append(b,
					       "bench_latency_%d_seconds_bucket{op=\"op%d\",le=\"%"
					       "s\"} "
					       "%d\n",
					       f, s, le[i], (i + 1) * 10 + target);
				append(b, "bench_latency_%d_seconds_sum{op=\"op%d\"} %d.25\n", f, s,
				       17 + target);
				append(b, "bench_latency_%d_seconds_count{op=\"op%d\"} %d\n", f, s,
				       110 + target);
				made += 2;
			}
		}
	}
}

static unsigned char *gzip_buf(const char *in, size_t len, int level, size_t *out_len)
{
	z_stream zs = {0};
	unsigned char *out;
	uLong bound;

	deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	bound = deflateBound(&zs, (uLong)len);
	out = malloc(bound);
	if (!out)
		abort();
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	deflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static void build_body(struct body *b, int target, int series_goal, bool exact, int churn_pct)
{
	struct sbuf s = {malloc(1 << 16), 0, 1 << 16};

	s.p[0] = 0;
	b->churn = churn_pct > 0 ? series_goal * churn_pct / 100 : 0;
	build_text(&s, target, series_goal - b->churn, exact || b->churn);
	b->plain = s.p;
	b->plain_len = s.len;
	if (!b->churn)
		b->gz = gzip_buf(s.p, s.len, 6, &b->gz_len);
}

static void build_bomb(int series)
{
	struct sbuf s = {malloc(1 << 20), 0, 1 << 20};

	free(bomb_plain);
	free(bomb_gz);
	append(&s, "# TYPE bench_bomb_series gauge\n");
	for (int i = 0; i < series; i++)
		append(&s, "bench_bomb_series{id=\"%d\",shard=\"shard-%d\"} %d\n", i, i % 64, i);
	bomb_plain = s.p;
	bomb_plain_len = s.len;
	bomb_gz = gzip_buf(s.p, s.len, 1, &bomb_gz_len);
	bomb_series = series;
	fprintf(stderr, "bomb body: %d series, %zu bytes (%zu gzip)\n", series, s.len, bomb_gz_len);
}

/* Index of the target a connection came to, from its local address. */
static int target_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int i;

	if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&sa, &len))
		return -1;
	if (hosts_mode) {
		uint32_t a = ntohl(sa.sin_addr.s_addr);
		i = (int)((a >> 8) & 0xff) * 250 + (int)(a & 0xff) - 1 - first;
	} else {
		i = ntohs(sa.sin_port) - base_port - first;
	}
	return i >= 0 && i < n_targets ? i : -1;
}

static enum MHD_Result queue(struct MHD_Connection *c, int code, const char *type, void *data,
			     size_t len, enum MHD_ResponseMemoryMode mode, bool gz)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
	enum MHD_Result ret;

	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	ret = MHD_queue_response(c, (unsigned)code, r);
	MHD_destroy_response(r);
	return ret;
}

static const char text_type[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result serve_target(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version, const char *upload,
				    size_t *upload_len, void **state)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	bool gz = ae && strstr(ae, "gzip");
	struct body *b;
	int i, bomb;

	(void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_len;
	if (!*state) { /* first call: headers only */
		i = target_of(c);
		if (i < 0)
			return MHD_NO;
		*state = &bodies[i];
		log_request(bodies[i].key);
		return MHD_YES;
	}
	b = *state;
	atomic_fetch_add(&b->scrapes, 1);
	bomb = atomic_load(&b->bomb);
	if (bomb) {
		pthread_mutex_lock(&bomb_lock);
		if (bomb_series != bomb)
			build_bomb(bomb);
		pthread_mutex_unlock(&bomb_lock);
		/* the body is rebuilt only for another size, which the test
		 * never asks for while a scrape of the old one runs */
		if (gz)
			return queue(c, 200, text_type, bomb_gz, bomb_gz_len,
				     MHD_RESPMEM_PERSISTENT, true);
		return queue(c, 200, text_type, bomb_plain, bomb_plain_len, MHD_RESPMEM_PERSISTENT,
			     false);
	}
	if (b->churn) {
		unsigned long g = atomic_fetch_add(&b->gen, 1);
		struct sbuf s = {malloc(b->plain_len + 64 * (size_t)b->churn + 256), 0,
				 b->plain_len + 64 * (size_t)b->churn + 256};

		memcpy(s.p, b->plain, b->plain_len);
		s.len = b->plain_len;
		append(&s, "# TYPE bench_churn_info gauge\n");
		for (int k = 0; k < b->churn; k++)
			append(&s, "bench_churn_info{pod=\"pod-%lu-%d\"} %d\n", g, k, k);
		if (gz) {
			size_t zl;
			unsigned char *z = gzip_buf(s.p, s.len, 1, &zl);

			free(s.p);
			return queue(c, 200, text_type, z, zl, MHD_RESPMEM_MUST_FREE, true);
		}
		return queue(c, 200, text_type, s.p, s.len, MHD_RESPMEM_MUST_FREE, false);
	}
	if (gz)
		return queue(c, 200, text_type, b->gz, b->gz_len, MHD_RESPMEM_PERSISTENT, true);
	return queue(c, 200, text_type, b->plain, b->plain_len, MHD_RESPMEM_PERSISTENT, false);
}

struct upload {
	char *p;
	size_t len, cap;
};

struct ts_span {
	int64_t min, max;
};

/* rw_counts.on_target, called under sink_lock */
static void count_ts(void *arg, int64_t ts_ms)
{
	struct ts_span *sp = arg;
	int64_t sec = ts_ms >= 0 ? ts_ms / 1000 : -((-ts_ms + 999) / 1000);
	size_t k = (size_t)(sec & (TS_RING - 1));

	if (ts_ring[k].sec != sec) {
		ts_ring[k].sec = sec;
		ts_ring[k].n = 0;
	}
	ts_ring[k].n++;
	if (ts_ms < sp->min)
		sp->min = ts_ms;
	if (ts_ms > sp->max)
		sp->max = ts_ms;
}

static void sink_count(const struct upload *u)
{
	size_t ulen;
	char *raw;
	struct ts_span span = {INT64_MAX, INT64_MIN};
	struct rw_counts one = {.on_target = count_ts, .arg = &span};

	if (snappy_uncompressed_length(u->p, u->len, &ulen) != SNAPPY_OK || ulen > (256u << 20) ||
	    !(raw = malloc(ulen ? ulen : 1))) {
		atomic_fetch_add(&sink_errors, 1);
		return;
	}
	pthread_mutex_lock(&sink_lock);
	if (snappy_uncompress(u->p, u->len, raw, &ulen) != SNAPPY_OK ||
	    rw_count((const uint8_t *)raw, ulen, "bench_", &one)) {
		atomic_fetch_add(&sink_errors, 1);
	} else {
		if (sink_log) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			fprintf(sink_log, "%lld.%03ld %llu %llu %lld %lld\n", (long long)now.tv_sec,
				now.tv_nsec / 1000000, (unsigned long long)one.samples,
				(unsigned long long)one.target_samples,
				(long long)(one.target_samples ? span.min : 0),
				(long long)(one.target_samples ? span.max : 0));
			fflush(sink_log);
		}
		sink_counts.series += one.series;
		sink_counts.samples += one.samples;
		sink_counts.stale += one.stale;
		sink_counts.histograms += one.histograms;
		sink_counts.target_samples += one.target_samples;
	}
	pthread_mutex_unlock(&sink_lock);
	free(raw);
}

/* from < to (Unix seconds): also window_target_samples, the target samples
 * received so far whose timestamps fall in [from, to) */
static int counts_text(char *out, size_t cap, int64_t from, int64_t to)
{
	unsigned long scrapes = 0;
	unsigned long long window = 0;
	struct rw_counts c;
	int n;

	for (int i = 0; i < n_targets; i++)
		scrapes += atomic_load(&bodies[i].scrapes);
	pthread_mutex_lock(&sink_lock);
	c = sink_counts;
	for (int64_t sec = from; sec < to && to - from <= TS_RING; sec++)
		if (ts_ring[sec & (TS_RING - 1)].sec == sec)
			window += ts_ring[sec & (TS_RING - 1)].n;
	pthread_mutex_unlock(&sink_lock);
	n = snprintf(out, cap,
		     "requests=%lu bytes=%lu series=%llu samples=%llu stale=%llu "
		     "histograms=%llu target_samples=%llu errors=%lu scrapes=%lu",
		     atomic_load(&sink_requests), atomic_load(&sink_bytes),
		     (unsigned long long)c.series, (unsigned long long)c.samples,
		     (unsigned long long)c.stale, (unsigned long long)c.histograms,
		     (unsigned long long)c.target_samples, atomic_load(&sink_errors), scrapes);
	if (from < to && n >= 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, " window_target_samples=%llu", window);
	if (n >= 0 && (size_t)n + 1 < cap) {
		out[n++] = '\n';
		out[n] = 0;
	}
	return n;
}

static enum MHD_Result serve_sink(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	struct upload *u = *state;
	char text[512];
	int n;

	(void)cls, (void)version;
	if (!u) {
		*state = u = calloc(1, sizeof(*u));
		return u ? MHD_YES : MHD_NO;
	}
	if (*upload_len) {
		if (u->len + *upload_len > (64u << 20))
			return MHD_NO;
		if (u->len + *upload_len > u->cap) {
			size_t cap = (u->len + *upload_len) * 2;
			char *p = realloc(u->p, cap);

			if (!p)
				return MHD_NO;
			u->p = p, u->cap = cap;
		}
		memcpy(u->p + u->len, upload, *upload_len);
		u->len += *upload_len;
		atomic_fetch_add(&sink_bytes, *upload_len);
		*upload_len = 0;
		return MHD_YES;
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/counts")) {
		const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
		const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");

		n = counts_text(text, sizeof(text), f ? strtoll(f, NULL, 10) : 0,
				t ? strtoll(t, NULL, 10) : 0);
		return queue(c, 200, "text/plain", text, (size_t)n, MHD_RESPMEM_MUST_COPY, false);
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/bomb")) {
		const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target");
		const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "series");
		int i = t ? atoi(t) : -1, series = s ? atoi(s) : 0;

		if (i < 0 || i >= n_targets || series < 0)
			return queue(c, 400, "text/plain", "bad target or series\n", 21,
				     MHD_RESPMEM_PERSISTENT, false);
		if (series) { /* built here, so the first bomb scrape is not slow */
			pthread_mutex_lock(&bomb_lock);
			if (bomb_series != series)
				build_bomb(series);
			pthread_mutex_unlock(&bomb_lock);
		}
		atomic_store(&bodies[i].bomb, series);
		return queue(c, 200, "text/plain", "ok\n", 3, MHD_RESPMEM_PERSISTENT, false);
	}
	atomic_fetch_add(&sink_requests, 1);
	sink_count(u);
	return queue(c, 204, NULL, "", 0, MHD_RESPMEM_PERSISTENT, false);
}

static void sink_done(void *cls, struct MHD_Connection *c, void **state,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *state;

	(void)cls, (void)c, (void)toe;
	if (u) {
		free(u->p);
		free(u);
	}
	*state = NULL;
}

static int listen_socket(uint32_t addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(addr);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct acceptor {
	int epfd;
	struct MHD_Daemon *d;
};

/* Accepts on every target socket and hands the connection to the daemon. */
static void *accept_loop(void *arg)
{
	struct acceptor *a = arg;
	struct epoll_event ev[256];

	while (!stop_flag) {
		int n = epoll_wait(a->epfd, ev, 256, 200);

		for (int k = 0; k < n; k++) {
			for (;;) {
				struct sockaddr_storage ss;
				socklen_t sl = sizeof(ss);
				int fd = accept4((int)ev[k].data.u32, (struct sockaddr *)&ss, &sl,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0) {
					if (errno == EMFILE || errno == ENFILE)
						usleep(10000);
					break;
				}
				/* on failure MHD closes fd */
				MHD_add_connection(a->d, fd, (struct sockaddr *)&ss, sl);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int sink_port, series = 1000, churn = 0;
	bool exact;
	struct MHD_Daemon *d, *sink = NULL;
	struct acceptor acc;
	pthread_t th;
	char text[512];

	if (argc < 4) {
		fprintf(stderr, "usage: %s BASE_PORT N_TARGETS SINK_PORT [SERIES]\n", argv[0]);
		return 2;
	}
	base_port = (int)strtol(argv[1], NULL, 10);
	n_targets = (int)strtol(argv[2], NULL, 10);
	sink_port = (int)strtol(argv[3], NULL, 10);
	if (argc > 4)
		series = (int)strtol(argv[4], NULL, 10);
	hosts_mode = getenv("TARGETSRV_HOSTS") ? atoi(getenv("TARGETSRV_HOSTS")) : 0;
	exact = getenv("TARGETSRV_EXACT") && atoi(getenv("TARGETSRV_EXACT"));
	if (getenv("TARGETSRV_FIRST"))
		first = atoi(getenv("TARGETSRV_FIRST"));
	if (getenv("TARGETSRV_CHURN"))
		churn = atoi(getenv("TARGETSRV_CHURN"));
	if (n_targets < 1 || first < 0 || hosts_mode < 0 || hosts_mode > 254 ||
	    (hosts_mode && first + n_targets > 250 * 250)) {
		fprintf(stderr, "bad N_TARGETS\n");
		return 2;
	}
	if (getenv("TARGETSRV_REQUEST_LOG")) {
		request_log = fopen(getenv("TARGETSRV_REQUEST_LOG"), "a");
		if (!request_log) {
			perror("TARGETSRV_REQUEST_LOG");
			return 1;
		}
	}
	if (getenv("TARGETSRV_SINK_LOG")) {
		sink_log = fopen(getenv("TARGETSRV_SINK_LOG"), "a");
		if (!sink_log) {
			perror("TARGETSRV_SINK_LOG");
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	bodies = calloc((size_t)n_targets, sizeof(*bodies));
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				 MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC,
			     0, NULL, NULL, serve_target, NULL, MHD_OPTION_THREAD_POOL_SIZE,
			     (unsigned)2, MHD_OPTION_CONNECTION_LIMIT, (unsigned)200000,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "cannot start the target daemon\n");
		return 1;
	}
	acc.d = d;
	acc.epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < n_targets; i++) {
		int t = first + i;
		uint32_t addr = hosts_mode ? (127u << 24 | (uint32_t)hosts_mode << 16 |
					      (uint32_t)(t / 250) << 8 | (uint32_t)(t % 250 + 1))
					   : 0x7f000001;
		int port = hosts_mode ? base_port : base_port + t, fd;
		struct epoll_event ev = {.events = EPOLLIN};

		build_body(&bodies[i], t, series, exact, churn);
		bodies[i].key = base_port + t;
		fd = listen_socket(addr, port);
		if (fd < 0) {
			fprintf(stderr, "cannot listen on %u.%u.%u.%u:%d: %s\n", addr >> 24,
				(addr >> 16) & 255, (addr >> 8) & 255, addr & 255, port,
				strerror(errno));
			return 1;
		}
		ev.data.u32 = (uint32_t)fd;
		epoll_ctl(acc.epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	if (sink_port) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)sink_port)};

		sa.sin_addr.s_addr = htonl(0x7f000001);
		sink = MHD_start_daemon(
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)sink_port, NULL,
		    NULL, serve_sink, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
		    sink_done, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	}
	if (sink_port && !sink) {
		fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", sink_port);
		return 1;
	}
	if (pthread_create(&th, NULL, accept_loop, &acc)) {
		fprintf(stderr, "cannot start the accept thread\n");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fprintf(stderr, "body %zu bytes (%zu gzip)%s\n", bodies[0].plain_len, bodies[0].gz_len,
		churn ? " static part; churned series added per scrape" : "");
	printf("ready\n");
	fflush(stdout);
	while (!stop_flag)
		pause();
	pthread_join(th, NULL);
	counts_text(text, sizeof(text), 0, 0);
	printf("sink_%s", text);
	if (sink)
		MHD_stop_daemon(sink);
	MHD_stop_daemon(d);
	return 0;
}
