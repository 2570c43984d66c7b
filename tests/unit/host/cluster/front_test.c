/*
 * The cluster front end through its public interface (cluster.h): single
 * node mode, config validation, a real one-node cluster on loopback with
 * view-change callbacks and wait_for_size/wait_timeout, a two-node cluster
 * with weights and replicas, a duplicate node name refused at start, and
 * hand-overs at announced times both ways (cluster_owners_at).
 * Ports: 127.0.0.1:0 (kernel-chosen).
 */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "cluster/cluster.h"
#include "cluster/mpack.h"
#include "cluster/wire.h"
#include "mock_wait.h"

/* Generous: a passing test returns as soon as its condition holds. */
#define WAIT_MS 30000

/* Set by on_view on whichever thread changes the view (the caller of
 * cluster_set_participant, or the cluster's own thread at wait_timeout). */
static int calls;
static uint64_t last_epoch;

static void on_view(void *arg, uint64_t epoch)
{
	(void)arg;
	__atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&last_epoch, epoch, __ATOMIC_SEQ_CST);
}

static uint64_t last_epoch_get(void)
{
	return __atomic_load_n(&last_epoch, __ATOMIC_SEQ_CST);
}

static void cfg_local(struct cluster_config *cfg, const char *name)
{
	cluster_config_defaults(cfg);
	cfg->enabled = true;
	snprintf(cfg->node_name, sizeof(cfg->node_name), "%s", name);
	snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1:0");
	snprintf(cfg->profile, sizeof(cfg->profile), "local");
	cfg->handover_ms = 0; /* joins and leaves at once, unless a test asks */
}

static void test_single_node_mode(void)
{
	struct cluster_config cfg;
	struct cluster *c;
	char err[256];

	cluster_config_defaults(&cfg);
	snprintf(cfg.node_name, sizeof(cfg.node_name), "solo");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(c, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(cluster_owns(c, 1, 1)); /* viewer owns nothing */
	cluster_on_view_change(c, on_view, NULL);
	calls = 0;
	cluster_set_participant(c);
	CU_ASSERT_EQUAL(calls, 1);
	for (uint64_t k = 0; k < 100; k++)
		CU_ASSERT(cluster_owns(c, k * 7919, 1));
	char *json = cluster_peers_json(c);
	cJSON *j = cJSON_Parse(json);

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(cJSON_GetArraySize(j), 1);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "state")->valuestring,
			       "participant");
	cJSON_Delete(j);
	free(json);
	cluster_leave(c, 100);
	CU_ASSERT_FALSE(cluster_owns(c, 1, 1));
	cluster_destroy(c);
}

/* A callback in flight when the host unregisters: cluster_on_view_change
 * must not return before it finished (the host frees its arg right after). */
static volatile int slow_started, slow_done;

static void on_view_slow(void *arg, uint64_t epoch)
{
	(void)arg;
	(void)epoch;
	__atomic_store_n(&slow_started, 1, __ATOMIC_SEQ_CST);
	usleep(300000);
	__atomic_store_n(&slow_done, 1, __ATOMIC_SEQ_CST);
}

static void *participate(void *arg)
{
	cluster_set_participant(arg);
	return NULL;
}

static void test_unregister_waits_for_callback(void)
{
	struct cluster_config cfg;
	struct cluster *c;
	pthread_t t;
	char err[256];

	cluster_config_defaults(&cfg);
	snprintf(cfg.node_name, sizeof(cfg.node_name), "solo");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(c, err, sizeof(err)), 0);
	cluster_on_view_change(c, on_view_slow, NULL);
	slow_started = slow_done = 0;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, participate, c), 0);
	MOCK_WAIT_UNTIL(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST), WAIT_MS);
	CU_ASSERT_EQUAL(slow_started, 1);
	cluster_on_view_change(c, NULL, NULL);
	CU_ASSERT_EQUAL(__atomic_load_n(&slow_done, __ATOMIC_SEQ_CST), 1);
	pthread_join(t, NULL);
	cluster_destroy(c);
}

static void test_config_errors(void)
{
	struct cluster_config cfg;
	struct cluster *c = NULL;
	char err[256];
	char *bad_key[] = {"bm90LWEta2V5"};

	cfg_local(&cfg, "has space");
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "node_name"));
	cfg_local(&cfg, "ok");
	snprintf(cfg.profile, sizeof(cfg.profile), "moon");
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "profile"));
	cfg_local(&cfg, "ok");
	cfg.secret_keys = bad_key;
	cfg.n_secret_keys = 1;
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "secret_keys[0]"));
	cfg_local(&cfg, "ok");
	snprintf(cfg.bind, sizeof(cfg.bind), "nonsense");
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bind"));
}

/* Port a started node actually listens on, from its peers JSON. */
static int self_port(struct cluster *c)
{
	char *json = cluster_peers_json(c);
	cJSON *j = cJSON_Parse(json);
	int port = 0;
	cJSON *p;

	cJSON_ArrayForEach(p, j)
	{
		if (cJSON_IsTrue(cJSON_GetObjectItem(p, "is_self"))) {
			const char *a = cJSON_GetObjectItem(p, "address")->valuestring;

			port = atoi(strrchr(a, ':') + 1);
		}
	}
	cJSON_Delete(j);
	free(json);
	return port;
}

static int count_state(struct cluster *c, const char *state)
{
	char *json = cluster_peers_json(c);
	cJSON *j = cJSON_Parse(json), *p;
	int n = 0;

	cJSON_ArrayForEach(p, j) n +=
	    strcmp(cJSON_GetObjectItem(p, "state")->valuestring, state) == 0;
	cJSON_Delete(j);
	free(json);
	return n;
}

static bool wait_for(struct cluster *c, const char *state, int want)
{
	MOCK_WAIT_UNTIL(count_state(c, state) == want, WAIT_MS);
	return count_state(c, state) == want;
}

static void test_wait_for_size_timeout(void)
{
	struct cluster_config cfg;
	struct cluster *c;
	char err[256];

	cfg_local(&cfg, "waiter");
	cfg.wait_for_size = 2;
	/* long enough that a loaded machine checks "owns nothing yet" first */
	cfg.wait_timeout_ms = 1500;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(c, err, sizeof(err)), 0);
	cluster_on_view_change(c, on_view, NULL);
	calls = 0;
	cluster_set_participant(c);
	CU_ASSERT(calls >= 1);
	/* a participant alone, below wait_for_size: owns nothing yet */
	CU_ASSERT_FALSE(cluster_owns(c, 42, 1));
	uint64_t e0 = cluster_epoch(c);

	/* wait_timeout passed: owns everything, and the epoch told us (the
	 * cluster's thread does it: waited for, not a fixed 700 ms) */
	MOCK_WAIT_UNTIL(cluster_owns(c, 42, 1) && cluster_epoch(c) > e0 &&
			    last_epoch_get() == cluster_epoch(c),
			WAIT_MS);
	CU_ASSERT(cluster_owns(c, 42, 1));
	CU_ASSERT(cluster_epoch(c) > e0);
	CU_ASSERT_EQUAL(last_epoch_get(), cluster_epoch(c));
	FILE *m = tmpfile();

	cluster_write_metrics(c, m);
	rewind(m);
	char line[256];
	bool ready = false;

	while (fgets(line, sizeof(line), m))
		ready |= strcmp(line, "cluster_ready 1\n") == 0;
	fclose(m);
	CU_ASSERT(ready);
	cluster_leave(c, 500);
	cluster_destroy(c);
}

static void test_two_nodes_and_duplicate_name(void)
{
	struct cluster_config ca, cb, cd;
	struct cluster *a, *b, *d;
	char err[256], join[64];
	char *joinv[1] = {join};

	cfg_local(&ca, "alpha");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&ca, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(a, err, sizeof(err)), 0);
	cluster_set_participant(a);
	/* a DNS name: resolves to all its addresses (127.0.0.1, maybe ::1) */
	snprintf(join, sizeof(join), "localhost:%d", self_port(a));

	cfg_local(&cb, "beta");
	cb.join = joinv;
	cb.n_join = 1;
	cb.weight = 3.0;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cb, &b, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(b, err, sizeof(err)), 0);
	cluster_set_participant(b);
	CU_ASSERT_FATAL(wait_for(a, "participant", 2));
	CU_ASSERT_FATAL(wait_for(b, "participant", 2));

	/* identical answers on both; beta (weight 3) owns ~3/4 */
	unsigned beta = 0;

	for (uint64_t k = 0; k < 4000; k++) {
		struct starling_node_name oa[2], ob[2];
		uint64_t key = (k + 1) * 0x9e3779b97f4a7c15ull;

		CU_ASSERT_EQUAL(cluster_owners(a, key, oa, 2), 2);
		CU_ASSERT_EQUAL(cluster_owners(b, key, ob, 2), 2);
		CU_ASSERT_STRING_EQUAL(oa[0].name, ob[0].name);
		CU_ASSERT_STRING_EQUAL(oa[1].name, ob[1].name);
		CU_ASSERT(cluster_owns(a, key, 2) && cluster_owns(b, key, 2));
		CU_ASSERT(cluster_owns(a, key, 1) != cluster_owns(b, key, 1));
		beta += strcmp(oa[0].name, "beta") == 0;
	}
	CU_ASSERT(beta > 2800 && beta < 3200);

	/* a third node that claims the name "alpha" is refused, not hung */
	cfg_local(&cd, "alpha");
	cd.join = joinv;
	cd.n_join = 1;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cd, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(d, err, sizeof(err)), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "already used"));
	cluster_destroy(d);

	/* a stream that stalls is cut at the TCP timeout (local: 1 s) */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)self_port(a))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char ch;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CU_ASSERT_EQUAL(write(fd, "\x06\x83", 2), 2); /* a push/pull that never ends */
	struct timeval tv = {5, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CU_ASSERT_EQUAL(read(fd, &ch, 1), 0); /* closed by the node, not our timeout */
	close(fd);

	/* graceful leave of beta: alpha owns everything again at once */
	cluster_leave(b, 2000);
	CU_ASSERT(wait_for(a, "participant", 1));
	CU_ASSERT(cluster_owns(a, 12345, 1));
	cluster_destroy(b);
	cluster_leave(a, 500);
	cluster_destroy(a);
}

/* A member's announced span from a node's peers JSON (0 when absent). */
static int64_t span_of(struct cluster *c, const char *name, const char *field)
{
	char *json = cluster_peers_json(c);
	cJSON *j = cJSON_Parse(json), *p;
	int64_t v = 0;

	cJSON_ArrayForEach(p, j)
	{
		cJSON *f = cJSON_GetObjectItem(p, field);

		if (strcmp(cJSON_GetObjectItem(p, "name")->valuestring, name) == 0 &&
		    cJSON_IsNumber(f))
			v = (int64_t)f->valuedouble;
	}
	cJSON_Delete(j);
	free(json);
	return v;
}

static int64_t wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

#define HKEYS 2000
static uint64_t hkey(unsigned k)
{
	return (k + 1) * 0x9e3779b97f4a7c15ull;
}

/* Both nodes give the same single owner for every key at time at; returns
 * how many keys `name` owns then. */
static unsigned agree_at(struct cluster *a, struct cluster *b, int64_t at, const char *name)
{
	unsigned n = 0;

	for (unsigned k = 0; k < HKEYS; k++) {
		struct starling_node_name oa, ob;

		CU_ASSERT_EQUAL(cluster_owners_at(a, hkey(k), at, &oa, 1), 1);
		CU_ASSERT_EQUAL(cluster_owners_at(b, hkey(k), at, &ob, 1), 1);
		CU_ASSERT_STRING_EQUAL(oa.name, ob.name);
		/* exactly one of the two says "mine" for the slot at `at` */
		CU_ASSERT(cluster_owns_at(a, hkey(k), 1, at) != cluster_owns_at(b, hkey(k), 1, at));
		n += strcmp(oa.name, name) == 0;
	}
	return n;
}

/* Issue 13: a joining node owns from its announced time and the old owner
 * stops at that same time; a leaving node owns until its announced
 * hand-over time and the others start then. Both nodes answer the same for
 * any slot time once they have heard the announcement, so no slot is
 * scraped twice or not at all. */
static void test_handover_both_ways(void)
{
	struct cluster_config ca, cb;
	struct cluster *a, *b;
	char err[256], join[64];
	char *joinv[1] = {join};
	int64_t from, until, t0;

	cfg_local(&ca, "alpha");
	ca.handover_ms = 3000;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&ca, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(a, err, sizeof(err)), 0);
	cluster_set_participant(a);
	CU_ASSERT(cluster_owns(a, 1, 1)); /* alone: nobody to hand over from */
	snprintf(join, sizeof(join), "127.0.0.1:%d", self_port(a));

	cfg_local(&cb, "beta");
	cb.handover_ms = 3000;
	cb.join = joinv;
	cb.n_join = 1;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cb, &b, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(b, err, sizeof(err)), 0);
	t0 = wall_ms();
	cluster_set_participant(b);
	CU_ASSERT_FATAL(wait_for(a, "participant", 2));
	from = span_of(a, "beta", "owns_from");
	CU_ASSERT_EQUAL(from, span_of(b, "beta", "owns_from"));
	CU_ASSERT(from >= t0 + 3000 && from <= wall_ms() + 3000);
	/* before beta's start alpha owns every slot, from it they share */
	CU_ASSERT_EQUAL(agree_at(a, b, from - 1, "alpha"), HKEYS);
	unsigned beta = HKEYS - agree_at(a, b, from, "alpha");

	CU_ASSERT(beta > HKEYS / 3 && beta < 2 * HKEYS / 3);
	CU_ASSERT_EQUAL(agree_at(a, b, from + 60000, "beta"), beta);

	/* beta leaves: it keeps its keys until the announced time */
	while (wall_ms() < from) /* (its join must have come due) */
		usleep(20000);
	t0 = wall_ms();
	until = cluster_announce_leave(b);
	CU_ASSERT(until >= t0 + 3000);
	CU_ASSERT_FATAL(wait_for(a, "terminating", 1));
	CU_ASSERT_EQUAL(span_of(a, "beta", "owns_until"), until);
	CU_ASSERT_EQUAL(agree_at(a, b, until - 1, "beta"), beta);
	CU_ASSERT_EQUAL(agree_at(a, b, until, "alpha"), HKEYS);
	/* the view in force follows the clock: alpha owns all once it passed */
	MOCK_WAIT_UNTIL(wall_ms() > until && cluster_owns(a, hkey(0), 1) &&
			    cluster_owns(a, hkey(1), 1) && cluster_owns(a, hkey(2), 1),
			WAIT_MS);
	for (unsigned k = 0; k < HKEYS; k++)
		CU_ASSERT(cluster_owns(a, hkey(k), 1));
	cluster_leave(b, 2000);
	cluster_destroy(b);
	cluster_leave(a, 500);
	cluster_destroy(a);
}

static int count_members(struct cluster *c);

/* How many of the HKEYS keys `name` owns at time at, as c sees it. */
static unsigned owned_by(struct cluster *c, int64_t at, const char *name)
{
	unsigned n = 0;

	for (unsigned k = 0; k < HKEYS; k++) {
		struct starling_node_name o;

		if (cluster_owners_at(c, hkey(k), at, &o, 1) == 1 && strcmp(o.name, name) == 0)
			n++;
	}
	return n;
}

static uint64_t metric_of(struct cluster *c, const char *name)
{
	char *buf = NULL, *p;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t v = UINT64_MAX;

	cluster_write_metrics(c, f);
	fclose(f);
	for (p = buf; p && (p = strstr(p, name)); p += strlen(name))
		if (p[strlen(name)] == ' ' && (p == buf || p[-1] == '\n'))
			v = strtoull(p + strlen(name) + 1, NULL, 10);
	free(buf);
	return v;
}

/* A UDP port free on 127.0.0.1 a moment ago (the node binds UDP and TCP). */
static int free_udp_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port = 0;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A node that started alone (its join address did not answer yet) and is
 * joined later by the join thread's retry sends serf's join intent then,
 * straight to every member: the one it sent on becoming a participant went
 * to nobody directly (gossip carries it to some members later), and a serf
 * agent that still holds its previous life as "leaving" turns it alive
 * only on a join intent with a newer Lamport time (serf/serf.go
 * handleNodeJoinIntent). */
static void test_late_join_intent(void)
{
	struct cluster_config ca, cb;
	struct cluster *a = NULL, *b = NULL;
	char err[256], join[64];
	char *joinv[1] = {join};
	uint64_t t_a = 0;

	/* the port was free a moment ago, but an outgoing connection on this
	 * busy machine may take it before a binds it: then another port */
	for (int attempt = 0; attempt < 5 && !a; attempt++) {
		int port = free_udp_port();
		struct timeval tv;

		CU_ASSERT_FATAL(port > 0);
		snprintf(join, sizeof(join), "127.0.0.1:%d", port);
		cfg_local(&cb, "late");
		cb.join = joinv;
		cb.n_join = 1;
		CU_ASSERT_EQUAL_FATAL(cluster_create(&cb, &b, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL_FATAL(cluster_start(b, err, sizeof(err)), 0);
		cluster_set_participant(b);
		CU_ASSERT_EQUAL(count_state(b, "participant"), 1); /* alone */
		/* b's intent from when it became a participant (Lamport time =
		 * unix ms then) is older than t_a: let the clock move on */
		gettimeofday(&tv, NULL);
		t_a = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 + 5;
		MOCK_WAIT_UNTIL((uint64_t)wall_ms() >= t_a, WAIT_MS);
		cfg_local(&ca, "early");
		snprintf(ca.bind, sizeof(ca.bind), "127.0.0.1:%d", port);
		CU_ASSERT_EQUAL_FATAL(cluster_create(&ca, &a, err, sizeof(err)), 0);
		if (cluster_start(a, err, sizeof(err)) != 0) {
			fprintf(stderr, "port %d: %s; trying another\n", port, err);
			cluster_destroy(a);
			a = NULL;
			cluster_destroy(b);
			b = NULL;
		}
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(metric_of(a, "cluster_serf_join_intents_received_total"), 0);
	cluster_set_participant(a);
	/* b retries every 2 s; the intent follows its first answered join */
#define NEWEST_JOIN_INTENT metric_of(a, "cluster_serf_join_intent_last_ltime")
	MOCK_WAIT_UNTIL(NEWEST_JOIN_INTENT != UINT64_MAX && NEWEST_JOIN_INTENT >= t_a, WAIT_MS);
	CU_ASSERT(NEWEST_JOIN_INTENT != UINT64_MAX && NEWEST_JOIN_INTENT >= t_a);
#undef NEWEST_JOIN_INTENT
	CU_ASSERT(metric_of(a, "cluster_serf_join_intents_received_total") >= 1);
	CU_ASSERT(wait_for(a, "participant", 2));
	CU_ASSERT(wait_for(b, "participant", 2));
	cluster_leave(b, 500);
	cluster_destroy(b);
	cluster_leave(a, 500);
	cluster_destroy(a);
}

/* Issue 13, kill -9: a crashed member's span ends when each survivor first
 * suspected it (a failed probe came after the crash), so once it is
 * declared dead the slots from then on are the survivors', retroactively,
 * while earlier slots keep their owner; and that past stays as it is after
 * the member table forgets the dead member (GossipToTheDeadTime, local
 * profile 15 s; memberlist state.go). */
static void test_crash_cuts_span(void)
{
	struct cluster_config cfg[3];
	struct cluster *n[3];
	const char *names[3] = {"alpha", "beta", "gamma"};
	char err[256], join[64];
	char *joinv[1] = {join};
	int64_t alive_at, crashed, declared;
	unsigned g;

	for (int i = 0; i < 3; i++) {
		cfg_local(&cfg[i], names[i]);
		if (i) {
			cfg[i].join = joinv;
			cfg[i].n_join = 1;
		}
		CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg[i], &n[i], err, sizeof(err)), 0);
		CU_ASSERT_EQUAL_FATAL(cluster_start(n[i], err, sizeof(err)), 0);
		cluster_set_participant(n[i]);
		if (!i)
			snprintf(join, sizeof(join), "127.0.0.1:%d", self_port(n[0]));
	}
	for (int i = 0; i < 3; i++)
		CU_ASSERT_FATAL(wait_for(n[i], "participant", 3));
	alive_at = wall_ms();
	g = owned_by(n[0], alive_at, "gamma");
	CU_ASSERT(g > HKEYS / 5 && g < HKEYS / 2);
	CU_ASSERT_EQUAL(owned_by(n[1], alive_at, "gamma"), g);
	/* gamma's span began when it became a participant, at most at alive_at;
	 * on a fast machine all of the above takes under a millisecond, so let
	 * the clock pass alive_at before the crash, else crashed - 1 can fall
	 * before gamma's span (seen: 0 of 675 keys at crashed - 1) */
	MOCK_WAIT_UNTIL(wall_ms() > alive_at + 5, WAIT_MS);
	/* kill -9: gamma stops answering, says nothing */
	cluster_destroy(n[2]);
	crashed = wall_ms();
	CU_ASSERT_FATAL(wait_for(n[0], "dead", 1));
	CU_ASSERT_FATAL(wait_for(n[1], "dead", 1));
	declared = wall_ms();
	/* gamma's closed port answered the survivors' packets with ICMP port
	 * unreachable (IP_RECVERR, net.c): each probed it at once at least
	 * once before declaring it dead */
	CU_ASSERT(metric_of(n[0], "cluster_unreachable_probes_total") >= 1);
	CU_ASSERT(metric_of(n[1], "cluster_unreachable_probes_total") >= 1);
	/* the local profile's suspicion lasts at least 3 s (3 x log10(3) x 1 s,
	 * at least 1) before the declaration; the span ended where it began */
	CU_ASSERT(declared - crashed > 3000);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(owned_by(n[i], alive_at, "gamma"), g);
		CU_ASSERT_EQUAL(owned_by(n[i], crashed - 1, "gamma"), g);
		CU_ASSERT_EQUAL(owned_by(n[i], declared - 2500, "gamma"), 0);
		CU_ASSERT_EQUAL(owned_by(n[i], declared, "gamma"), 0);
		CU_ASSERT_EQUAL(metric_of(n[i], "cluster_owner_deaths_total"), 1);
	}
	/* the engine forgets gamma; the past keeps its owners */
	MOCK_WAIT_UNTIL(count_members(n[0]) == 2, WAIT_MS);
	CU_ASSERT_EQUAL(count_members(n[0]), 2);
	CU_ASSERT_EQUAL(owned_by(n[0], alive_at, "gamma"), g);
	CU_ASSERT_EQUAL(owned_by(n[0], wall_ms(), "gamma"), 0);
	cluster_leave(n[1], 500);
	cluster_destroy(n[1]);
	cluster_leave(n[0], 500);
	cluster_destroy(n[0]);
}

/* Send n fake "alive" members (names prefix-00000...) to port as compound
 * UDP packets, each member a participant advertising `weight`. */
static void flood_members(int port, const char *prefix, int n, const char *weight)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	uint8_t ip[4] = {127, 0, 0, 3};
	struct mp_buf meta;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	mp_init(&meta);
	mp_put_byte(&meta, 0xff);
	mp_w_map(&meta, 2);
	mp_w_str(&meta, "starling_state");
	mp_w_str(&meta, "participant");
	mp_w_str(&meta, "starling_weight");
	mp_w_str(&meta, weight);
	for (int i = 0; i < n;) {
		struct mp_buf msgs[16], pkt;
		struct ml_bytes parts[16];
		int k = 0;

		for (; k < 16 && i < n; k++, i++) {
			char name[64];
			struct ml_alive a = {.incarnation = 1,
					     .addr = {ip, 4},
					     .port = (uint16_t)(10000 + i % 50000),
					     .meta = {meta.p, (uint32_t)meta.len},
					     .vsn = {1, 5, 2, 2, 5, 5},
					     .n_vsn = 6};

			snprintf(name, sizeof(name), "%s-%05d", prefix, i);
			a.node = (struct ml_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
			mp_init(&msgs[k]);
			ml_enc_alive(&msgs[k], &a);
			parts[k] = (struct ml_bytes){msgs[k].p, (uint32_t)msgs[k].len};
		}
		mp_init(&pkt);
		ml_compound_make(&pkt, parts, k);
		sendto(fd, pkt.p, pkt.len, 0, (struct sockaddr *)&sa, sizeof(sa));
		mp_free(&pkt);
		for (int j = 0; j < k; j++)
			mp_free(&msgs[j]);
		if (i % 1600 == 0)
			usleep(2000); /* let the socket buffer drain */
	}
	mp_free(&meta);
	close(fd);
}

static int64_t cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static int count_members(struct cluster *c)
{
	char *json = cluster_peers_json(c);
	cJSON *j = cJSON_Parse(json);
	int n = cJSON_GetArraySize(j);

	cJSON_Delete(j);
	free(json);
	return n;
}

/* Issue 14 fault 3: 10,000 fake members from one sender used to cost a
 * linear scan per member per view change (and one realloc per name): one
 * core pinned for minutes. Now they are taken in seconds, the node keeps
 * answering, and a weight of 1e6 is refused (counted with weight 1). */
static void test_member_flood(void)
{
	struct cluster_config ca;
	struct cluster *a;
	char err[256];
	int64_t t0, cpu0;
	int n = 0;

	cfg_local(&ca, "target");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&ca, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(a, err, sizeof(err)), 0);
	cluster_set_participant(a);
	t0 = wall_ms();
	cpu0 = cpu_ms();
	/* UDP may drop some: send until 10,000 are in, for at most ~60 s of
	 * waiting (the O(n^2) cost took minutes for half of them). The time
	 * taken (wall and CPU) is printed, not asserted: timings belong in
	 * tests/bench. */
	for (int round = 0; round < 12 && n < 10001; round++) {
		flood_members(self_port(a), "fake", 10000, "1e6");
		for (int i = 0; i < 200 && (n = count_members(a)) < 10001; i++)
			usleep(50000);
	}
	printf("%d members after %lld ms, %lld ms of CPU ", n, (long long)(wall_ms() - t0),
	       (long long)(cpu_ms() - cpu0));
	CU_ASSERT_EQUAL(n, 10001);

	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	cluster_write_metrics(a, m);
	fclose(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "cluster_members_weight_refused 10000\n"));
	free(buf);
	cluster_leave(a, 200);
	cluster_destroy(a);
}

/* Issue 13, a closed door: keys from a 0600 file (others refused), and
 * require_encryption refuses to start without one; a bind beyond loopback
 * without a key is flagged in the metrics and the peers JSON. */
static void test_keyring_file_and_require_encryption(void)
{
	struct cluster_config cfg;
	struct cluster *c;
	char err[256], path[] = "/tmp/starling-keys-XXXXXX";
	int fd = mkstemp(path);
	const char *keys = "# primary first\nQUJDREVGR0hJSktMTU5PUA==\n\n"
			   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL((size_t)write(fd, keys, strlen(keys)), strlen(keys));
	close(fd);
	cfg_local(&cfg, "keyed");
	cfg.require_encryption = true;
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "require_encryption"));
	snprintf(cfg.secret_keys_file, sizeof(cfg.secret_keys_file), "%s", path);
	chmod(path, 0640);
	CU_ASSERT_EQUAL(cluster_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
	chmod(path, 0600);
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(c, err, sizeof(err)), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	cluster_write_metrics(c, m);
	fclose(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "cluster_insecure 0\n"));
	free(buf);
	cluster_leave(c, 100);
	cluster_destroy(c);
	unlink(path);

	/* the wildcard address without a key: flagged, still starts */
	cfg_local(&cfg, "open");
	snprintf(cfg.bind, sizeof(cfg.bind), "0.0.0.0:0");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cluster_start(c, err, sizeof(err)), 0);
	m = open_memstream(&buf, &len);
	cluster_write_metrics(c, m);
	fclose(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "cluster_insecure 1\n"));
	free(buf);
	char *json = cluster_peers_json(c);

	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"insecure\":true"));
	free(json);
	cluster_leave(c, 100);
	cluster_destroy(c);
}

/* Start a node with keys/label, joining join (may be NULL). */
static struct cluster *start_node(const char *name, char **keys, size_t nkeys, const char *label,
				  const char *join)
{
	struct cluster_config cfg;
	struct cluster *c;
	char err[256], jbuf[64];
	char *jv[1] = {jbuf};

	cfg_local(&cfg, name);
	cfg.secret_keys = keys;
	cfg.n_secret_keys = nkeys;
	snprintf(cfg.name, sizeof(cfg.name), "%s", label);
	if (join) {
		snprintf(jbuf, sizeof(jbuf), "%s", join);
		cfg.join = jv;
		cfg.n_join = 1;
	}
	if (cluster_create(&cfg, &c, err, sizeof(err)) || cluster_start(c, err, sizeof(err))) {
		fprintf(stderr, "start %s: %s\n", name, err);
		return NULL;
	}
	cluster_set_participant(c);
	return c;
}

static long metric(struct cluster *c, const char *name)
{
	FILE *m = tmpfile();
	char line[512];
	long v = -1;

	cluster_write_metrics(c, m);
	rewind(m);
	while (fgets(line, sizeof(line), m))
		if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ' ')
			v = strtol(line + strlen(name) + 1, NULL, 10);
	fclose(m);
	return v;
}

static void test_keyring_and_label(void)
{
	/* key rotation: a and b list the same two keys in another order (each
	 * encrypts with its first, decrypts with any) */
	char *ka[] = {"QUJDREVGR0hJSktMTU5PUA==", "MDEyMzQ1Njc4OWFiY2RlZg=="};
	char *kb[] = {"MDEyMzQ1Njc4OWFiY2RlZg==", "QUJDREVGR0hJSktMTU5PUA=="};
	char *kx[] = {"eHh4eHh4eHh4eHh4eHh4eA=="};
	char join[64];
	struct cluster *a, *b, *x, *l;

	a = start_node("ka", ka, 2, "prod", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	snprintf(join, sizeof(join), "127.0.0.1:%d", self_port(a));
	b = start_node("kb", kb, 2, "prod", join);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT(wait_for(a, "participant", 2));
	CU_ASSERT(wait_for(b, "participant", 2));
	/* wrong key: its join is dropped (counted), it starts alone */
	x = start_node("kx", kx, 1, "prod", join);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_EQUAL(count_state(x, "participant"), 1);
	/* right key, other cluster name (label): foreign, dropped */
	l = start_node("kl", ka, 2, "staging", join);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL(count_state(l, "participant"), 1);
	/* a counts the refused joins on its own threads: wait for the counts
	 * (a fixed 300 ms before), then a still has only its one peer */
	MOCK_WAIT_UNTIL(metric(a, "cluster_packets_dropped_total{reason=\"decrypt_failed\"}") >=
				1 &&
			    metric(a, "cluster_packets_dropped_total{reason=\"wrong_label\"}") >= 1,
			WAIT_MS);
	CU_ASSERT(metric(a, "cluster_packets_dropped_total{reason=\"decrypt_failed\"}") >= 1);
	CU_ASSERT(metric(a, "cluster_packets_dropped_total{reason=\"wrong_label\"}") >= 1);
	CU_ASSERT_EQUAL(count_state(a, "participant"), 2);
	cluster_destroy(l);
	cluster_destroy(x);
	cluster_destroy(b);
	cluster_destroy(a);
}

static void test_ipv6(void)
{
	struct cluster_config ca, cb;
	struct cluster *a, *b;
	char err[256], join[64];
	char *jv[1] = {join};

	cfg_local(&ca, "v6a");
	snprintf(ca.bind, sizeof(ca.bind), "[::1]:0");
	if (cluster_create(&ca, &a, err, sizeof(err)) || cluster_start(a, err, sizeof(err))) {
		printf("\n  no IPv6 loopback here (%s): skipped\n", err);
		return;
	}
	cluster_set_participant(a);
	snprintf(join, sizeof(join), "[::1]:%d", self_port(a));
	cfg_local(&cb, "v6b");
	snprintf(cb.bind, sizeof(cb.bind), "[::1]:0");
	cb.join = jv;
	cb.n_join = 1;
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cb, &b, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(b, err, sizeof(err)), 0);
	cluster_set_participant(b);
	CU_ASSERT(wait_for(a, "participant", 2));
	char *json = cluster_peers_json(a);

	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"address\":\"[::1]:"));
	free(json);
	cluster_destroy(b);
	cluster_destroy(a);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("cluster_front", NULL, NULL);
	CU_add_test(s, "single_node_mode", test_single_node_mode);
	CU_add_test(s, "config_errors", test_config_errors);
	CU_add_test(s, "unregister_waits_for_callback", test_unregister_waits_for_callback);
	CU_add_test(s, "wait_for_size_timeout", test_wait_for_size_timeout);
	CU_add_test(s, "two_nodes_weights_duplicate_name", test_two_nodes_and_duplicate_name);
	CU_add_test(s, "handover_both_ways", test_handover_both_ways);
	CU_add_test(s, "crash_cuts_span", test_crash_cuts_span);
	CU_add_test(s, "late_join_intent", test_late_join_intent);
	CU_add_test(s, "member_flood", test_member_flood);
	CU_add_test(s, "keyring_file_require_encryption", test_keyring_file_and_require_encryption);
	CU_add_test(s, "keyring_rotation_wrong_key_wrong_label", test_keyring_and_label);
	CU_add_test(s, "ipv6_loopback", test_ipv6);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
