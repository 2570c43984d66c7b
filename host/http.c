/*
 * HTTP surface. Handlers only read runtime/cluster state through their
 * thread-safe interfaces; every request body is discarded except where an
 * endpoint needs it, and bad requests get 4xx, never a crash.
 */
#include "http.h"
#include "http_params.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <starling/labels.h>

#include "targets_page.h"
#include "targets_view.h"
#include "ui_html.h"
#include "units.h"

/* Connection handling (libmicrohttpd): slow or idle clients must not take
 * the API down. Handlers never block on a client (epoll, non-blocking I/O),
 * so threads are not the limit; connection slots are. Each client address
 * gets at most HTTP_PER_IP_LIMIT of HTTP_CONNECTION_LIMIT slots, so one host
 * opening hundreds of slow connections locks out only itself, and an idle
 * or trickling connection is closed after HTTP_IDLE_TIMEOUT_S without a
 * byte (a scrape or a UI request takes milliseconds). */
#define HTTP_THREADS	      4
#define HTTP_CONNECTION_LIMIT 1024
#define HTTP_PER_IP_LIMIT     32
#define HTTP_IDLE_TIMEOUT_S   10
#define MAX_REPLICAS	      16
#define MAX_LABELS	      64

struct http_server {
	struct MHD_Daemon *d;
	struct runtime *rt;
	struct cluster *cluster;
	double start_time;
};

static int marker;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *ctype,
			     char *body, size_t len, bool owned)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body,
					    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_405(struct MHD_Connection *conn, const char *allow)
{
	static const char body[] = "method not allowed\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
	return reply(conn, code, "text/plain; charset=utf-8", (char *)text, strlen(text), false);
}

static enum MHD_Result reply_fmt(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
    STARLING_PRINTF(3, 4);

static enum MHD_Result reply_fmt(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return reply(conn, code, "text/plain; charset=utf-8", s, (size_t)n, true);
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned code, char *json)
{
	if (!json)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(conn, code, "application/json", json, strlen(json), true);
}

static enum MHD_Result reply_json_error(struct MHD_Connection *conn, unsigned code, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(o, "error", msg);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return reply_json(conn, code, s);
}

static double read_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static long read_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}

void http_write_process_metrics(FILE *out, double start_time)
{
	struct rlimit rl;

	fprintf(out,
		"# HELP process_cpu_seconds_total Total user and system CPU time spent in "
		"seconds.\n# TYPE process_cpu_seconds_total counter\n"
		"process_cpu_seconds_total %.6f\n",
		read_cpu_seconds());
	fprintf(out,
		"# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		"# TYPE process_resident_memory_bytes gauge\n"
		"process_resident_memory_bytes %ld\n",
		read_rss_bytes());
	fprintf(out,
		"# HELP process_open_fds Number of open file descriptors.\n"
		"# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
		count_fds());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fprintf(out,
			"# HELP process_max_fds Maximum number of open file descriptors.\n"
			"# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
			(unsigned long long)rl.rlim_cur);
	fprintf(out,
		"# HELP process_start_time_seconds Start time of the process since unix "
		"epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
		"process_start_time_seconds %.3f\n",
		start_time);
	fprintf(out,
		"# HELP starling_build_info Build information.\n# TYPE starling_build_info "
		"gauge\nstarling_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n",
		STARLING_VERSION, STARLING_ABI_MAJOR, STARLING_ABI_MINOR);
}

static enum MHD_Result serve_metrics(struct http_server *s, struct MHD_Connection *conn)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	http_write_process_metrics(f, s->start_time);
	runtime_write_metrics(s->rt, f);
	if (s->cluster) {
		cluster_set_observers(s->cluster, runtime_cluster_observers(s->rt));
		cluster_write_metrics(s->cluster, f);
	}
	targets_view_write_metrics(f);
	if (fclose(f)) {
		free(buf);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len, true);
}

/* GET /targets (HTML) and /api/v0/targets (JSON; scope=local: this node's
 * own rows, what peers ask for). Filters: component, job, q, unhealthy. */
static enum MHD_Result serve_targets(struct http_server *s, struct MHD_Connection *conn, bool page)
{
	const char *scope = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "scope");
	const char *unh = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "unhealthy");
	struct targets_filter f = {
	    .component = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "component"),
	    .job = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "job"),
	    .q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "q"),
	    .unhealthy = unh && *unh && strcmp(unh, "0") && strcmp(unh, "false"),
	};
	bool local = !page && scope && !strcmp(scope, "local");
	cJSON *view = targets_view_build(s->rt, s->cluster, local, local ? NULL : &f);
	char *out;

	if (!view)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	if (page) {
		out = targets_page_html(view, &f);
		cJSON_Delete(view);
		if (!out)
			return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", out, strlen(out), true);
	}
	out = cJSON_PrintUnformatted(view);
	cJSON_Delete(view);
	return reply_json(conn, MHD_HTTP_OK, out);
}

static enum MHD_Result serve_owner(struct http_server *s, struct MHD_Connection *conn)
{
	const char *ks = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
	const char *ls = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "labels");
	const char *rs = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "replicas");
	struct starling_node_name names[MAX_REPLICAS];
	int64_t replicas = 1;
	uint64_t key;
	size_t n;
	cJSON *o, *arr;
	char buf[32];

	if (!s->cluster)
		return reply_json_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no cluster service");
	if (rs && (parse_int64(rs, &replicas) || replicas < 1 || replicas > MAX_REPLICAS))
		return reply_json_error(conn, MHD_HTTP_BAD_REQUEST,
					"replicas must be an integer from 1 to 16");
	if ((ks && ls) || (!ks && !ls))
		return reply_json_error(conn, MHD_HTTP_BAD_REQUEST,
					"give exactly one of key=<uint64> or labels=<JSON object>");
	if (ks) {
		if (http_parse_key(ks, &key))
			return reply_json_error(conn, MHD_HTTP_BAD_REQUEST,
						"key must be a decimal or 0x-hex uint64");
	} else {
		if (http_labels_key(ls, &key))
			return reply_json_error(conn, MHD_HTTP_BAD_REQUEST,
						"labels must be a JSON object of at most 64 "
						"string values");
	}
	n = cluster_owners(s->cluster, key, names, (size_t)replicas);
	o = cJSON_CreateObject();
	snprintf(buf, sizeof(buf), "0x%016" PRIx64, key);
	cJSON_AddStringToObject(o, "key", buf);
	snprintf(buf, sizeof(buf), "%" PRIu64, key);
	cJSON_AddStringToObject(o, "key_decimal", buf);
	cJSON_AddNumberToObject(o, "replicas", (double)replicas);
	cJSON_AddNumberToObject(o, "epoch", (double)cluster_epoch(s->cluster));
	arr = cJSON_AddArrayToObject(o, "owners");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(names[i].name));
	{
		char *out = cJSON_PrintUnformatted(o);

		cJSON_Delete(o);
		return reply_json(conn, MHD_HTTP_OK, out);
	}
}

/* POST /-/reload. The reload runs on the runtime's reload thread, never on
 * this HTTP thread: the connection is suspended (holding no thread) until
 * the outcome, or the runtime's wait bound, resumes it; other requests are
 * served meanwhile. Requests that arrive together share one reload. */
struct reload_wait {
	struct MHD_Connection *conn;
	int result;
	char *msg;
	bool answered;
};

static void reload_answered(void *arg, int result, const char *msg)
{
	struct reload_wait *w = arg;
	struct MHD_Connection *conn = w->conn;

	w->result = result;
	w->msg = msg ? strdup(msg) : NULL;
	__atomic_store_n(&w->answered, true, __ATOMIC_RELEASE);
	/* last touch: once resumed, the connection may finish and free w */
	MHD_resume_connection(conn);
}

static enum MHD_Result start_reload(struct http_server *s, struct MHD_Connection *conn,
				    void **con_cls)
{
	struct reload_wait *w;
	const char *csrf = http_reload_refusal(
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site"),
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
	int r;

	if (csrf) {
		log_msg(STARLING_LOG_WARN, "http", "POST /-/reload: %s", csrf);
		return reply_fmt(conn, MHD_HTTP_FORBIDDEN, "%s\n", csrf);
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	w->conn = conn;
	*con_cls = w; /* freed by request_completed */
	/* Suspended before the request is queued, so the answer can never
	 * resume a connection that is not suspended yet. */
	MHD_suspend_connection(conn);
	r = runtime_reload_submit(s->rt, reload_answered, w);
	if (r)
		reload_answered(w, r, NULL);
	return MHD_YES;
}

static enum MHD_Result finish_reload(struct http_server *s, struct MHD_Connection *conn,
				     struct reload_wait *w)
{
	if (!__atomic_load_n(&w->answered, __ATOMIC_ACQUIRE))
		return MHD_YES; /* not ours to answer yet */
	switch (w->result) {
	case 0:
		return reply_text(conn, MHD_HTTP_OK, "configuration reloaded\n");
	case -EINVAL:
		return reply_fmt(conn, MHD_HTTP_BAD_REQUEST,
				 "reload refused, running configuration kept:\n%s\n",
				 w->msg ? w->msg : "invalid configuration");
	case -ETIMEDOUT:
		return reply_fmt(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				 "reload still running after %.3gs; its outcome will be logged and "
				 "shown by starling_config_last_reload_successful\n",
				 (double)runtime_reload_wait(s->rt) / 1000.0);
	case -ECANCELED:
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "shutting down: reload not run\n");
	default:
		return reply_fmt(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "reload failed: %s\n",
				 w->msg ? w->msg : strerror(-w->result));
	}
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct reload_wait *w = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (w && (void *)w != (void *)&marker) {
		free(w->msg);
		free(w);
	}
	*con_cls = NULL;
}

static enum MHD_Result route(struct http_server *s, struct MHD_Connection *conn, const char *url,
			     const char *method, void **con_cls)
{
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	bool post = !strcmp(method, "POST");
	static const char comp_prefix[] = "/api/v0/components/";

	if (!strcmp(url, "/-/reload"))
		return post ? start_reload(s, conn, con_cls) : reply_405(conn, "POST");
	if (!get)
		return reply_405(conn, "GET, HEAD");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(s, conn);
	if (!strcmp(url, "/-/healthy"))
		return reply_text(conn, MHD_HTTP_OK, "Starling is Healthy.\n");
	if (!strcmp(url, "/-/ready")) {
		if (runtime_ready(s->rt))
			return reply_text(conn, MHD_HTTP_OK, "Starling is Ready.\n");
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Starling is not ready.\n");
	}
	if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8",
			     (char *)starling_ui_html, strlen(starling_ui_html), false);
	if (!strcmp(url, "/targets"))
		return serve_targets(s, conn, true);
	if (!strcmp(url, "/api/v0/targets"))
		return serve_targets(s, conn, false);
	if (!strcmp(url, "/api/v0/components") || !strcmp(url, "/api/v0/components/"))
		return reply_json(conn, MHD_HTTP_OK, runtime_components_json(s->rt));
	if (!strncmp(url, comp_prefix, sizeof(comp_prefix) - 1)) {
		char idbuf[512];
		char *out = NULL;
		int r;

		if (http_component_targets_path(url + sizeof(comp_prefix) - 1, idbuf,
						sizeof(idbuf)))
			return reply_json_error(conn, MHD_HTTP_NOT_FOUND, "not found");
		r = runtime_targets_json(s->rt, idbuf, &out);
		if (r == -ENOENT)
			return reply_json_error(conn, MHD_HTTP_NOT_FOUND, "unknown component");
		if (r)
			return reply_json_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, strerror(-r));
		return reply_json(conn, MHD_HTTP_OK, out);
	}
	if (!strcmp(url, "/api/v0/cluster/peers")) {
		char *j = s->cluster ? cluster_peers_json(s->cluster) : NULL;

		if (!j)
			return reply_json_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
						"no cluster service");
		return reply_json(conn, MHD_HTTP_OK, j);
	}
	if (!strcmp(url, "/api/v0/cluster/owner"))
		return serve_owner(s, conn);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	if (!*con_cls) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* Request bodies are not used by any endpoint: discard. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*con_cls != (void *)&marker)
		return finish_reload(cls, conn, *con_cls);
	return route(cls, conn, url, method, con_cls);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) STARLING_PRINTF(2, 0);

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	log_vmsg(STARLING_LOG_DEBUG, "http", fmt, ap);
}

int http_start(struct http_server **out, const char *addr, struct runtime *rt,
	       struct cluster *cluster, double start_time, char *err, size_t errlen)
{
	struct http_server *s;
	struct addrinfo hints = {0}, *res = NULL;
	char host[256], port[8];
	unsigned p;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
	unsigned conn_limit = HTTP_CONNECTION_LIMIT;
	struct rlimit rl;
	int r;

	/* leave descriptors for the rest of the daemon (scrapes, segments) */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 2 * (rlim_t)conn_limit)
		conn_limit = rl.rlim_cur > 256 ? (unsigned)(rl.rlim_cur / 2) : 128;

	if (parse_hostport(addr, host, sizeof(host), &p)) {
		snprintf(err, errlen, "invalid listen address \"%s\"", addr);
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%u", p);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		freeaddrinfo(res);
		return -ENOMEM;
	}
	s->rt = rt;
	s->cluster = cluster;
	s->start_time = start_time;
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, (uint16_t)p, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
				res->ai_addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)conn_limit,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
				MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	freeaddrinfo(res);
	if (!s->d) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
			 addr);
		free(s);
		return -EADDRINUSE;
	}
	*out = s;
	return 0;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
