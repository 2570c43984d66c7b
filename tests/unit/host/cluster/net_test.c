/*
 * The real transport (net.c) decodes incoming packets and streams without
 * the engine's lock (issue 13): with the lock held by the test, an
 * encrypted, compressed join push/pull and an encrypted UDP packet are
 * still decrypted, decompressed and parsed (the transport's decoded counter
 * moves), and only applying them waits for the lock. A decoder still under
 * the lock would leave the counter at 0 until the test let go.
 * Ports: 127.0.0.1:0 (kernel-chosen).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mock_wait.h"
#include "cluster/engine.h"
#include "cluster/net.h"

static const char *const KEY = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

/* What the client engine (no sockets) hands its transport. */
static uint8_t cap_stream[1 << 20], cap_packet[65536];
static size_t cap_stream_len, cap_packet_len;
static uint64_t cap_stream_id;

static void cap_send_packet(void *ctx, const struct ml_addr *to, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)to;
	if (len <= sizeof(cap_packet)) {
		memcpy(cap_packet, buf, len);
		cap_packet_len = len;
	}
}

static void cap_send_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *buf,
			    size_t len, int64_t timeout)
{
	(void)ctx;
	(void)to;
	(void)timeout;
	if (len <= sizeof(cap_stream)) {
		memcpy(cap_stream, buf, len);
		cap_stream_len = len;
		cap_stream_id = id;
	}
}

static void noop_after(void *arg, int64_t now)
{
	(void)arg;
	(void)now;
}

static void noop_idle(void *arg)
{
	(void)arg;
}

static void config(struct ml_config *c, const char *name, const struct ml_addr *adv)
{
	char err[128];

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->advertise = *adv;
	ml_timing_preset("local", &c->timing);
	c->compress = true;
	c->seed = 7;
	CU_ASSERT_EQUAL_FATAL(ml_keyring_add_b64(&c->keys, KEY, err, sizeof(err)), 0);
}

static uint64_t decoded(struct ml_net *n)
{
	struct ml_net_stats st;

	ml_net_stats(n, &st);
	return st.decoded;
}

static void test_decode_outside_lock(void)
{
	pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
	struct ml_addr bind, bound, cli_addr;
	struct ml_net *net = NULL;
	struct ml_engine *srv, *cli;
	struct ml_config cs, cc;
	struct ml_transport cap = {NULL, cap_send_packet, cap_send_stream};
	char err[128];
	uint8_t reply[1 << 16];
	size_t got = 0;
	bool known = false;

	CU_ASSERT_EQUAL_FATAL(ml_addr_parse("127.0.0.1:0", &bind), 0);
	CU_ASSERT_EQUAL_FATAL(ml_net_open(&bind, &net, &bound, err, sizeof(err)), 0);
	config(&cs, "srv", &bound);
	struct ml_transport tr = ml_net_transport(net);

	srv = ml_new(&cs, &tr, ml_now_ms());
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	struct ml_net_ops ops = {.arg = NULL,
				 .lock = &lk,
				 .eng = &srv,
				 .after = noop_after,
				 .idle = noop_idle,
				 .tcp_timeout_ms = 10000};

	CU_ASSERT_EQUAL_FATAL(ml_net_start(net, &ops), 0);
	ml_addr_parse("127.0.0.1:9", &cli_addr);
	config(&cc, "cli", &cli_addr);
	cli = ml_new(&cc, &cap, ml_now_ms());
	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);

	/* 1. a join stream (encrypted, LZW-compressed push/pull) */
	ml_join(cli, &bound, ml_now_ms());
	CU_ASSERT_FATAL(cap_stream_len > 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(bound.port)};

	memcpy(&sa.sin_addr, bound.ip, 4);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	pthread_mutex_lock(&lk); /* the engine is busy from here on */
	uint64_t before = decoded(net);

	CU_ASSERT_EQUAL(write(fd, cap_stream, cap_stream_len), (ssize_t)cap_stream_len);
	MOCK_WAIT_UNTIL(decoded(net) > before, 20000);
	CU_ASSERT(decoded(net) > before);	/* decoded while we hold the lock */
	CU_ASSERT_EQUAL(ml_node_count(srv), 1); /* but not applied */
	pthread_mutex_unlock(&lk);
	/* applied once the lock is free: the reply comes back */
	int64_t end = mock_wait_now_ms() + 20000;

	while (mock_wait_now_ms() < end && ml_stream_complete(cli, reply, got) == -EAGAIN) {
		ssize_t r = read(fd, reply + got, sizeof(reply) - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	CU_ASSERT_EQUAL_FATAL(ml_stream_complete(cli, reply, got), 0);
	ml_stream_result(cli, cap_stream_id, reply, got, ml_now_ms());
	CU_ASSERT_EQUAL(ml_node_count(cli), 2);
	pthread_mutex_lock(&lk);
	CU_ASSERT_EQUAL(ml_node_count(srv), 2);
	pthread_mutex_unlock(&lk);

	/* 2. an encrypted UDP packet (cli's alive, sent straight to srv) */
	cap_packet_len = 0;
	ml_announce_self(cli);
	CU_ASSERT_FATAL(cap_packet_len > 0);
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);

	pthread_mutex_lock(&lk);
	before = decoded(net);
	uint64_t rx = ml_stats(srv)->rx_packets;

	CU_ASSERT_EQUAL(
	    sendto(ufd, cap_packet, cap_packet_len, 0, (struct sockaddr *)&sa, sizeof(sa)),
	    (ssize_t)cap_packet_len);
	MOCK_WAIT_UNTIL(decoded(net) > before, 20000);
	CU_ASSERT(decoded(net) > before);
	CU_ASSERT_EQUAL(ml_stats(srv)->rx_packets, rx); /* not applied yet */
	pthread_mutex_unlock(&lk);
	MOCK_WAIT_UNTIL((pthread_mutex_lock(&lk), known = ml_stats(srv)->rx_packets > rx,
			 pthread_mutex_unlock(&lk), known),
			20000);
	CU_ASSERT(known);
	close(ufd);

	ml_net_stop(net);
	ml_free(srv);
	ml_free(cli);
}

int main(void)
{
	CU_pSuite suite;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite("cluster_net", NULL, NULL);
	CU_add_test(suite, "decode_outside_engine_lock", test_decode_outside_lock);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
