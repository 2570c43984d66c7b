/* pyroscope.write: PushRequest encoding, answer classification, back-off, and
 * the component through the mock host against an in-test push endpoint
 * (libmicrohttpd) that decodes every request. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mock_host.h"
#include "mock_wait.h"
#include "pyro_write.h"

/* ---- a small protobuf reader for the checks ----------------------------- */

struct pb {
	const uint8_t *p, *end;
};

static int pb_next(struct pb *b, unsigned *field, const uint8_t **val, size_t *len)
{
	uint64_t tag = 0, n = 0;
	int s = 0;

	if (b->p >= b->end)
		return 0;
	do {
		if (b->p >= b->end || s > 63)
			return -1;
		tag |= (uint64_t)(*b->p & 0x7f) << s;
		s += 7;
	} while (*b->p++ & 0x80);
	if ((tag & 7) != 2)
		return -1; /* the push messages only use length-delimited fields */
	s = 0;
	do {
		if (b->p >= b->end || s > 63)
			return -1;
		n |= (uint64_t)(*b->p & 0x7f) << s;
		s += 7;
	} while (*b->p++ & 0x80);
	if (n > (uint64_t)(b->end - b->p))
		return -1;
	*field = (unsigned)(tag >> 3);
	*val = b->p;
	*len = (size_t)n;
	b->p += n;
	return 1;
}

#define MAXL 32
struct decoded {
	int n_series;
	char names[MAXL][64], values[MAXL][64];
	int n_labels;
	uint8_t raw[256];
	size_t raw_len;
	char id[64];
	int n_samples;
};

static int decode(const uint8_t *buf, size_t len, struct decoded *d)
{
	struct pb req = {buf, buf + len}, ser, lp, smp;
	const uint8_t *v, *v2, *v3;
	size_t l, l2, l3;
	unsigned f, f2, f3;
	int rc;

	memset(d, 0, sizeof(*d));
	while ((rc = pb_next(&req, &f, &v, &l)) > 0) {
		if (f != 1)
			return -1;
		d->n_series++;
		ser = (struct pb){v, v + l};
		while ((rc = pb_next(&ser, &f2, &v2, &l2)) > 0) {
			if (f2 == 1) {
				lp = (struct pb){v2, v2 + l2};
				while ((rc = pb_next(&lp, &f3, &v3, &l3)) > 0 &&
				       d->n_labels < MAXL) {
					char *dst = f3 == 1 ? d->names[d->n_labels]
							    : d->values[d->n_labels];

					snprintf(dst, 64, "%.*s", (int)l3, (const char *)v3);
				}
				if (rc < 0)
					return -1;
				d->n_labels++;
			} else if (f2 == 2) {
				d->n_samples++;
				smp = (struct pb){v2, v2 + l2};
				while ((rc = pb_next(&smp, &f3, &v3, &l3)) > 0) {
					if (f3 == 1 && l3 <= sizeof(d->raw)) {
						memcpy(d->raw, v3, l3);
						d->raw_len = l3;
					} else if (f3 == 2) {
						snprintf(d->id, sizeof(d->id), "%.*s", (int)l3,
							 (const char *)v3);
					}
				}
				if (rc < 0)
					return -1;
			} else {
				return -1;
			}
		}
		if (rc < 0)
			return -1;
	}
	return rc;
}

static const char *dlabel(const struct decoded *d, const char *name)
{
	for (int i = 0; i < d->n_labels; i++)
		if (!strcmp(d->names[i], name))
			return d->values[i];
	return NULL;
}

/* ---- pure functions ------------------------------------------------------ */

static void test_encode(void)
{
	const struct starling_label in[] = {
	    {"service_name", "svc"}, {"__name__", "process_cpu"},
	    {"__address__", "h:1"},  {"__delta__", "false"},
	    {"env", "own"},	     {"empty", ""},
	    {"__meta_x", "y"},	     {"job", "j"},
	};
	const struct starling_label ext[] = {{"env", "prod"}, {"cluster", "c1"}};
	const uint8_t raw[] = {0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03};
	struct decoded d;
	uint8_t *buf;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(
	    pyro_push_encode(in, 8, ext, 2, raw, sizeof(raw), "id-1", 16, &buf, &len), 0);
	CU_ASSERT_EQUAL_FATAL(decode(buf + 16, len, &d), 0);
	free(buf);
	CU_ASSERT_EQUAL(d.n_series, 1);
	CU_ASSERT_EQUAL(d.n_samples, 1);
	CU_ASSERT_EQUAL(d.raw_len, sizeof(raw));
	CU_ASSERT_EQUAL(memcmp(d.raw, raw, sizeof(raw)), 0);
	CU_ASSERT_STRING_EQUAL(d.id, "id-1");
	/* __name__ and __delta__ kept, other "__" and empty labels dropped,
	 * external labels override, sorted by name */
	CU_ASSERT_EQUAL(d.n_labels, 6);
	CU_ASSERT_STRING_EQUAL(dlabel(&d, "__name__"), "process_cpu");
	CU_ASSERT_STRING_EQUAL(dlabel(&d, "__delta__"), "false");
	CU_ASSERT_STRING_EQUAL(dlabel(&d, "env"), "prod");
	CU_ASSERT_STRING_EQUAL(dlabel(&d, "cluster"), "c1");
	CU_ASSERT_PTR_NULL(dlabel(&d, "__address__"));
	CU_ASSERT_PTR_NULL(dlabel(&d, "__meta_x"));
	CU_ASSERT_PTR_NULL(dlabel(&d, "empty"));
	for (int i = 1; i < d.n_labels; i++)
		CU_ASSERT_TRUE(strcmp(d.names[i - 1], d.names[i]) < 0);

	/* a profile bigger than 127 and 16383 bytes: multi-byte lengths */
	{
		size_t big = 70000;
		uint8_t *data = malloc(big);
		struct pb b, s;
		const uint8_t *v;
		size_t l;
		unsigned f;
		bool found = false;

		CU_ASSERT_PTR_NOT_NULL_FATAL(data);
		for (size_t i = 0; i < big; i++)
			data[i] = (uint8_t)(i * 7);
		CU_ASSERT_EQUAL_FATAL(
		    pyro_push_encode(in, 2, NULL, 0, data, big, NULL, 0, &buf, &len), 0);
		b = (struct pb){buf, buf + len};
		CU_ASSERT_EQUAL_FATAL(pb_next(&b, &f, &v, &l), 1);
		CU_ASSERT_EQUAL(b.p, b.end);
		s = (struct pb){v, v + l};
		while (pb_next(&s, &f, &v, &l) > 0) {
			if (f == 2) {
				struct pb r = {v, v + l};

				CU_ASSERT_EQUAL(pb_next(&r, &f, &v, &l), 1);
				CU_ASSERT_EQUAL(f, 1);
				CU_ASSERT_EQUAL(l, big);
				CU_ASSERT_EQUAL(memcmp(v, data, big), 0);
				found = true;
			}
		}
		CU_ASSERT_TRUE(found);
		free(buf);
		free(data);
	}
}

static void test_classify(void)
{
	const uint8_t unav[] = "{\"code\":\"unavailable\",\"message\":\"x\"}";
	const uint8_t inval[] = "{\"code\": \"invalid_argument\"}";
	const uint8_t exh[] = "{\"code\":\"resource_exhausted\"}";

	CU_ASSERT_EQUAL(pyro_classify(0, 200, "application/proto", NULL, 0), PYRO_SENT);
	CU_ASSERT_EQUAL(pyro_classify(-ECONNREFUSED, 0, NULL, NULL, 0), PYRO_RETRY);
	CU_ASSERT_EQUAL(pyro_classify(-ETIMEDOUT, 0, NULL, NULL, 0), PYRO_RETRY);
	/* Statuses without a Connect error body go through connect-go's
	 * connectHTTPToCode (protocol_connect.go) and then Alloy's shouldRetry
	 * (internal/component/pyroscope/write/write.go). */
	CU_ASSERT_EQUAL(pyro_classify(0, 503, NULL, NULL, 0), PYRO_RETRY); /* unavailable */
	CU_ASSERT_EQUAL(pyro_classify(0, 502, NULL, NULL, 0), PYRO_RETRY); /* unavailable */
	CU_ASSERT_EQUAL(pyro_classify(0, 500, "text/plain", (const uint8_t *)"x", 1),
			PYRO_RETRY);					   /* unknown */
	CU_ASSERT_EQUAL(pyro_classify(0, 408, NULL, NULL, 0), PYRO_RETRY); /* deadline_exceeded */
	CU_ASSERT_EQUAL(pyro_classify(0, 413, NULL, NULL, 0), PYRO_RETRY); /* resource_exhausted */
	CU_ASSERT_EQUAL(pyro_classify(0, 431, NULL, NULL, 0), PYRO_RETRY); /* resource_exhausted */
	CU_ASSERT_EQUAL(pyro_classify(0, 429, NULL, NULL, 0), PYRO_RETRY); /* unavailable */
	CU_ASSERT_EQUAL(pyro_classify(0, 405, NULL, NULL, 0), PYRO_RETRY); /* unknown */
	CU_ASSERT_EQUAL(pyro_classify(0, 409, NULL, NULL, 0), PYRO_RETRY); /* unknown */
	CU_ASSERT_EQUAL(pyro_classify(0, 400, NULL, NULL, 0), PYRO_DROP);  /* invalid_argument */
	CU_ASSERT_EQUAL(pyro_classify(0, 401, NULL, NULL, 0), PYRO_DROP);  /* unauthenticated */
	CU_ASSERT_EQUAL(pyro_classify(0, 403, NULL, NULL, 0), PYRO_DROP);  /* permission_denied */
	CU_ASSERT_EQUAL(pyro_classify(0, 404, NULL, NULL, 0), PYRO_DROP);  /* unimplemented */
	CU_ASSERT_EQUAL(pyro_classify(0, 412, NULL, NULL, 0), PYRO_DROP);  /* failed_precondition */
	/* a Connect error code decides over the status */
	CU_ASSERT_EQUAL(pyro_classify(0, 503, "application/json", unav, sizeof(unav) - 1),
			PYRO_RETRY);
	CU_ASSERT_EQUAL(pyro_classify(0, 400, "application/json", inval, sizeof(inval) - 1),
			PYRO_DROP);
	CU_ASSERT_EQUAL(pyro_classify(0, 409, "application/json",
				      (const uint8_t *)"{\"code\":\"aborted\"}", 18),
			PYRO_RETRY);
	CU_ASSERT_EQUAL(pyro_classify(0, 429, "application/json", exh, sizeof(exh) - 1),
			PYRO_RETRY);
	CU_ASSERT_EQUAL(pyro_classify(0, 500, "application/json",
				      (const uint8_t *)"{\"code\":\"permission_denied\"}", 29),
			PYRO_DROP);
}

static void test_backoff(void)
{
	CU_ASSERT_EQUAL(pyro_backoff_ms(1, 500, 300000, -1), 500);
	CU_ASSERT_EQUAL(pyro_backoff_ms(2, 500, 300000, -1), 1000);
	CU_ASSERT_EQUAL(pyro_backoff_ms(5, 500, 300000, -1), 8000);
	CU_ASSERT_EQUAL(pyro_backoff_ms(30, 500, 300000, -1), 300000);
	CU_ASSERT_EQUAL(pyro_backoff_ms(1, 500, 300000, 7000), 7000);
}

/* ---- fake push endpoint -------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static char base_url[64];
static pthread_mutex_t rx_lock = PTHREAD_MUTEX_INITIALIZER;
static int script[16];
static size_t n_script;
static int requests, accepted, bad_shape;
static char last_path[128], last_tenant[64], last_auth[64];
static struct decoded last;

struct upload {
	uint8_t *data;
	size_t len;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	struct upload *up = *con_cls;
	struct MHD_Response *resp;
	const char *ct, *cpv, *tenant;
	enum MHD_Result ret;
	int status = 200;
	/* Connect error bodies, as Pyroscope answers */
	static const char unav[] = "{\"code\":\"unavailable\",\"message\":\"scripted\"}";
	static const char inval[] = "{\"code\":\"invalid_argument\",\"message\":\"scripted\"}";
	const char *err;

	if (!up) {
		*con_cls = calloc(1, sizeof(*up));
		return MHD_YES;
	}
	if (*upload_size) {
		up->data = realloc(up->data, up->len + *upload_size);
		memcpy(up->data + up->len, upload_data, *upload_size);
		up->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	cpv = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connect-Protocol-Version");
	tenant = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Scope-OrgID");
	snprintf(last_auth, sizeof(last_auth), "%s",
		 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization") ?: "");
	pthread_mutex_lock(&rx_lock);
	requests++;
	snprintf(last_path, sizeof(last_path), "%s", url);
	snprintf(last_tenant, sizeof(last_tenant), "%s", tenant ? tenant : "");
	if (strcmp(method, "POST") || strcmp(url, PYRO_PUSH_PATH) || !ct ||
	    strcmp(ct, "application/proto") || !cpv || strcmp(cpv, "1"))
		bad_shape++;
	if (n_script) {
		status = script[0];
		memmove(script, script + 1, --n_script * sizeof(int));
	}
	if (status == 200) {
		if (decode(up->data, up->len, &last))
			bad_shape++;
		else
			accepted++;
	}
	pthread_mutex_unlock(&rx_lock);
	free(up->data);
	free(up);
	*con_cls = NULL;
	if (status == 200) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Type", "application/proto");
	} else {
		err = status / 100 == 4 ? inval : unav;
		resp = MHD_create_response_from_buffer(strlen(err), (void *)err,
						       MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Type", "application/json");
	}
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void rx_reset(const int *st, size_t n)
{
	pthread_mutex_lock(&rx_lock);
	if (n)
		memcpy(script, st, n * sizeof(*st));
	n_script = n;
	requests = accepted = bad_shape = 0;
	pthread_mutex_unlock(&rx_lock);
}

static int rx_get(int *v)
{
	int r;

	pthread_mutex_lock(&rx_lock);
	r = *v;
	pthread_mutex_unlock(&rx_lock);
	return r;
}

static int suite_init(void)
{
	const union MHD_DaemonInfo *info;

	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
				   MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
	if (!daemon_)
		return -1;
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u/", info->port);
	return 0;
}

static int suite_clean(void)
{
	MHD_stop_daemon(daemon_);
	return 0;
}

/* ---- the component -------------------------------------------------------- */

struct inst {
	struct mock_host *m;
	void *in;
};

static int start(struct inst *t, const char *extra)
{
	char cfg[1024], err[256];
	int rc;

	snprintf(cfg, sizeof(cfg),
		 "external_labels = { cluster = \"c1\"; };\n"
		 "endpoint = ( { url = \"%s\"; min_backoff_period = \"50ms\";"
		 " max_backoff_period = \"200ms\"; headers = { X-Scope-OrgID = \"t1\"; };"
		 " bearer_token = \"tok\"; } );\n%s",
		 base_url, extra ? extra : "");
	t->m =
	    mock_host_new("pyroscope.write.t", pyroscope_write_type.schema, cfg, err, sizeof(err));
	if (!t->m)
		return -EINVAL;
	mock_host_set_quiet(t->m, true);
	rc = pyroscope_write_type.create(mock_host_api(t->m), mock_host_self(t->m),
					 mock_host_config(t->m), &t->in);
	if (rc)
		return rc;
	return pyroscope_write_type.start(t->in);
}

static void finish(struct inst *t)
{
	pyroscope_write_type.stop(t->in);
	pyroscope_write_type.destroy(t->in);
	mock_host_free(t->m);
}

static int send_one(struct inst *t, const char *svc)
{
	const struct starling_label l[] = {{"__name__", "memory"}, {"service_name", svc}};
	static const uint8_t data[] = {0x1f, 0x8b, 0x08, 0x00, 0xaa, 0xbb};
	struct starling_profile p = {l, 2, data, sizeof(data), 1000, 2000};

	return pyroscope_write_type.receive_profile(t->in, &p);
}

static double metric(struct inst *t, const char *name, const char *labels)
{
	double v = mock_host_metric(t->m, name, labels);

	return v != v ? 0 : v; /* NAN: not registered */
}

/* Generous: a passing test returns as soon as its condition holds. */
#define WAIT_MS 30000

/* Wait until metric >= want. */
static bool wait_metric(struct inst *t, const char *name, const char *labels, double want)
{
	MOCK_WAIT_UNTIL(metric(t, name, labels) >= want, WAIT_MS);
	return metric(t, name, labels) >= want;
}

static void test_push_shape_and_labels(void)
{
	struct inst t;

	rx_reset(NULL, 0);
	CU_ASSERT_EQUAL_FATAL(start(&t, NULL), 0);
	CU_ASSERT_EQUAL(send_one(&t, "svc-a"), 0);
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_sent_profiles_total", NULL, 1));
	CU_ASSERT_EQUAL(rx_get(&accepted), 1);
	CU_ASSERT_EQUAL(rx_get(&bad_shape), 0);
	pthread_mutex_lock(&rx_lock);
	CU_ASSERT_STRING_EQUAL(last_path, PYRO_PUSH_PATH);
	CU_ASSERT_STRING_EQUAL(last_tenant, "t1");
	CU_ASSERT_STRING_EQUAL(last_auth, "Bearer tok");
	CU_ASSERT_STRING_EQUAL(dlabel(&last, "service_name"), "svc-a");
	CU_ASSERT_STRING_EQUAL(dlabel(&last, "__name__"), "memory");
	CU_ASSERT_STRING_EQUAL(dlabel(&last, "cluster"), "c1");
	CU_ASSERT_EQUAL(last.raw_len, 6);
	/* RawSample.ID is sent empty, as Alloy does (pyroscope/write/write.go
	 * fills only RawProfile). */
	CU_ASSERT_EQUAL(strlen(last.id), 0);
	pthread_mutex_unlock(&rx_lock);
	/* added after sent_profiles_total on the sender's thread: wait for it
	 * (asserted at once before) */
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_sent_bytes_total", NULL, 7));
	finish(&t);
}

static void test_retry_503_then_delivered(void)
{
	const int st[] = {503, 503};
	struct inst t;

	rx_reset(st, 2);
	CU_ASSERT_EQUAL_FATAL(start(&t, NULL), 0);
	CU_ASSERT_EQUAL(send_one(&t, "svc-r"), 0);
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_sent_profiles_total", NULL, 1));
	CU_ASSERT_EQUAL(rx_get(&requests), 3);
	CU_ASSERT_EQUAL(rx_get(&accepted), 1);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_retries_total", NULL), 2, 0.1);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_dropped_profiles_total", NULL), 0, 0.1);
	finish(&t);
}

static void test_400_dropped(void)
{
	const int st[] = {400};
	struct inst t;

	rx_reset(st, 1);
	CU_ASSERT_EQUAL_FATAL(start(&t, NULL), 0);
	CU_ASSERT_EQUAL(send_one(&t, "svc-x"), 0);
	CU_ASSERT_TRUE(
	    wait_metric(&t, "pyroscope_write_dropped_profiles_total", "reason=rejected", 1));
	CU_ASSERT_EQUAL(rx_get(&requests), 1);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_retries_total", NULL), 0, 0.1);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_sent_profiles_total", NULL), 0, 0.1);
	/* the next profile goes through; a retry goes back to the front of the
	 * queue, so had svc-x been retried it would have gone first (no fixed
	 * "longer than the back-off" sleep needed) */
	CU_ASSERT_EQUAL(send_one(&t, "svc-y"), 0);
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_sent_profiles_total", NULL, 1));
	CU_ASSERT_EQUAL(rx_get(&requests), 2);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_retries_total", NULL), 0, 0.1);
	CU_ASSERT_TRUE(mock_host_log_count(t.m, STARLING_LOG_WARN, "rejected") >= 1);
	finish(&t);
}

static void test_retries_exhausted(void)
{
	const int st[] = {503, 503, 503, 503, 503};
	struct inst t;
	char cfg[256];

	rx_reset(st, 5);
	snprintf(cfg, sizeof(cfg),
		 "endpoint = ( { url = \"%s\"; min_backoff_period = \"10ms\";"
		 " max_backoff_retries = 2; } );",
		 base_url);
	t.m = mock_host_new("pyroscope.write.t", pyroscope_write_type.schema, cfg, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t.m);
	mock_host_set_quiet(t.m, true);
	CU_ASSERT_EQUAL_FATAL(pyroscope_write_type.create(mock_host_api(t.m), mock_host_self(t.m),
							  mock_host_config(t.m), &t.in),
			      0);
	CU_ASSERT_EQUAL_FATAL(pyroscope_write_type.start(t.in), 0);
	CU_ASSERT_EQUAL(send_one(&t, "svc"), 0);
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_dropped_profiles_total",
				   "reason=retries_exhausted", 1));
	CU_ASSERT_EQUAL(rx_get(&requests), 3); /* first try + 2 retries */
	finish(&t);
}

static void test_queue_full_and_shutdown(void)
{
	struct inst t;
	int rc1, rc2, rc3;

	/* nobody listens on port 1: every push fails and backs off */
	t.m = mock_host_new("pyroscope.write.t", pyroscope_write_type.schema,
			    "max_queued_profiles = 2;\n"
			    "endpoint = ( { url = \"http://127.0.0.1:1\";"
			    " min_backoff_period = \"10s\"; } );",
			    NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t.m);
	mock_host_set_quiet(t.m, true);
	CU_ASSERT_EQUAL_FATAL(pyroscope_write_type.create(mock_host_api(t.m), mock_host_self(t.m),
							  mock_host_config(t.m), &t.in),
			      0);
	CU_ASSERT_EQUAL_FATAL(pyroscope_write_type.start(t.in), 0);
	CU_ASSERT_EQUAL(send_one(&t, "a"), 0);
	CU_ASSERT_TRUE(wait_metric(&t, "pyroscope_write_retries_total", NULL, 1));
	rc1 = send_one(&t, "b");
	rc2 = send_one(&t, "c");
	rc3 = send_one(&t, "d");
	CU_ASSERT_EQUAL(rc1, 0);
	CU_ASSERT_EQUAL(rc2, -ENOBUFS);
	CU_ASSERT_EQUAL(rc3, -ENOBUFS);
	CU_ASSERT_DOUBLE_EQUAL(
	    metric(&t, "pyroscope_write_dropped_profiles_total", "reason=queue_full"), 2, 0.1);
	/* stop: the two queued ones cannot go anywhere: counted, not lost */
	pyroscope_write_type.stop(t.in);
	CU_ASSERT_DOUBLE_EQUAL(
	    metric(&t, "pyroscope_write_dropped_profiles_total", "reason=shutdown"), 2, 0.1);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_dropped_profiles_total", NULL), 4, 0.1);
	pyroscope_write_type.destroy(t.in);
	mock_host_free(t.m);
}

static void test_stop_drains(void)
{
	struct inst t;

	rx_reset(NULL, 0);
	CU_ASSERT_EQUAL_FATAL(start(&t, NULL), 0);
	for (int i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(send_one(&t, "drain"), 0);
	pyroscope_write_type.stop(t.in);
	CU_ASSERT_EQUAL(rx_get(&accepted), 50);
	CU_ASSERT_DOUBLE_EQUAL(metric(&t, "pyroscope_write_sent_profiles_total", NULL), 50, 0.1);
	pyroscope_write_type.destroy(t.in);
	mock_host_free(t.m);
}

static void test_config_errors(void)
{
	static const char *const bad[] = {
	    "endpoint = ( { url = \"ftp://x\"; } );",
	    "endpoint = ( { url = \"http://x\"; remote_timeout = \"0s\"; } );",
	    "endpoint = ( { url = \"http://x\"; max_backoff_retries = -1; } );",
	    "endpoint = ( { url = \"http://x\"; headers = { Content-Type = \"a\"; }; } );",
	    "max_queued_profiles = 0; endpoint = ( { url = \"http://x\"; } );",
	    "endpoint = ( );",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mock_host *m = mock_host_new("pyroscope.write.t",
						    pyroscope_write_type.schema, bad[i], NULL, 0);
		void *in = NULL;

		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		mock_host_set_quiet(m, true);
		CU_ASSERT_TRUE(pyroscope_write_type.create(mock_host_api(m), mock_host_self(m),
							   mock_host_config(m), &in) < 0);
		CU_ASSERT_TRUE(mock_host_log_count(m, STARLING_LOG_ERROR, NULL) >= 1);
		mock_host_free(m);
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("pyroscope_write_pure", NULL, NULL);
	CU_add_test(s, "encode_push_request", test_encode);
	CU_add_test(s, "classify_answers", test_classify);
	CU_add_test(s, "backoff", test_backoff);
	s = CU_add_suite("pyroscope_write", suite_init, suite_clean);
	CU_add_test(s, "push_shape_and_labels", test_push_shape_and_labels);
	CU_add_test(s, "retry_503_then_delivered", test_retry_503_then_delivered);
	CU_add_test(s, "400_dropped_and_counted", test_400_dropped);
	CU_add_test(s, "retries_exhausted", test_retries_exhausted);
	CU_add_test(s, "queue_full_and_shutdown", test_queue_full_and_shutdown);
	CU_add_test(s, "stop_drains_queue", test_stop_drains);
	CU_add_test(s, "config_errors", test_config_errors);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
