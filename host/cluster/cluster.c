/*
 * Cluster service front: configuration, node state in Serf tags, the
 * ownership view and its epochs, join/rejoin, leave, and the operator
 * surface (peers JSON, metrics). Membership itself is engine.c over net.c.
 */
#include "cluster.h"
#include "engine.h"
#include "net.h"
#include "ownership.h"
#include "tags.h"
#include "departed.h"
#include "timeline.h"
#include "log.h"
#include "units.h"

#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <xxhash.h>

#define MAX_JOIN_ADDRS 64
#define JOIN_RETRY_MS  2000
/* Longest the first join in cluster_start may block (bounded, so a dead
 * seed list never hangs startup). */
#define FIRST_JOIN_MAX_MS 3000
/* Log lines are produced with c->lock held (inside engine callbacks) and
 * written later without it, so a slow stderr never stalls the protocol. */
#define EVENT_MAX 256 /* a push/pull from a big cluster brings every member at once */
#define EVENT_LEN 256

struct peer_seen {
	char name[ML_NAME_MAX];
	char state[16];
	int64_t last_change; /* unix ms */
	char drift[128];     /* components whose ownership config differs from ours */
};

struct cluster {
	struct cluster_config cfg;
	char http[128]; /* advertised in the starling_http tag; "" = none */
	pthread_mutex_t lock;
	enum cluster_node_state state;
	int64_t own_from, own_until; /* our announced span (unix ms) */
	int64_t handover_ms;	     /* how far ahead joins and leaves are announced */
	struct timeline *tl;	     /* every participant's announced span */
	struct departed *gone;	     /* spans of members dead or left */
	uint64_t deaths_cut;	     /* participants declared dead: span ends at suspicion */
	struct ownership_view *view; /* participants owning now; NULL-safe */
	bool insecure;		     /* non-loopback bind without a key */
	char fp[CLUSTER_FP_MAX];     /* our configuration fingerprint */
	unsigned drifting;	     /* members whose fingerprint differs */
	uint64_t weights_refused;    /* members seen with a weight out of range */
	uint64_t streams_refused;    /* copied from net.c by the ticker */
	/* Alloy (ckit) metrics: peers' state changes seen (its
	 * state_change_message events), our own state changes announced,
	 * view callbacks as "updates" with their duration (DefBuckets),
	 * observers as counted by the host */
	uint64_t peer_state_changes, state_broadcasts;
	bool updating;
	uint64_t upd_buckets[11], upd_count;
	double upd_sum;
	unsigned observers;
	uint32_t first_incarnation;
	uint64_t epoch;
	uint64_t notified_epoch;
	cluster_view_fn view_fn;
	void *view_arg;
	pthread_mutex_t cb_lock; /* serialises view callbacks */

	/* clustering enabled */
	struct ml_engine *eng;
	struct ml_net *net;
	struct ml_timing timing;
	struct ml_keyring keys;
	struct ml_addr bind, advertise;
	bool running;
	uint64_t seen_version;
	int64_t last_recompute; /* monotonic ms */
	bool ready;		/* wait_for_size reached or timed out */
	int64_t start_ms;
	int64_t mono_to_unix; /* add to monotonic ms to get unix ms */
	int64_t next_join;
	/* joins resolve DNS, which may block: they run on their own thread so
	 * the ticker keeps probing and gossiping meanwhile */
	pthread_t join_thr;
	pthread_cond_t join_cond;
	bool join_thr_started, join_stop;
	unsigned joins_issued;
	bool joined_once;
	/* Lamport time of our last serf intent (unix ms); when the leave
	 * intent went out (monotonic ms) */
	int64_t serf_ltime, leave_intent_at;
	/* display state per member name, with an open-addressing index (a
	 * flood of names must not cost a scan per name) */
	struct peer_seen *seen;
	size_t n_seen, cap_seen;
	uint32_t *seen_idx; /* slot -> index + 1, 0 = empty */
	size_t cap_idx;	    /* power of two, > 2 * n_seen */
	uint64_t view_changes;
	/* join addresses of the last round, for the log */
	char join_tried[512];
	unsigned join_round_ok, join_round_failed, join_round_k;
	/* queued log lines (c->lock), written by flush_events() */
	struct {
		enum starling_log_level level;
		char msg[EVENT_LEN];
	} events[EVENT_MAX];
	unsigned n_events, events_lost;
	pthread_mutex_t log_lock; /* keeps flushed lines in order; guards out */
	char out[EVENT_MAX][EVENT_LEN];
};

static void serf_intent(struct cluster *c, int type);
static void serf_leave_intent(struct cluster *c);
#define SERF_INTENT_LEAVE 0
#define SERF_INTENT_JOIN  1

/* With c->lock held: queue one log line. */
static void queue_event(struct cluster *c, enum starling_log_level level, const char *fmt, ...)
    STARLING_PRINTF(3, 4);
static void queue_event(struct cluster *c, enum starling_log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > (int)log_get_level())
		return;
	if (c->n_events == EVENT_MAX) {
		c->events_lost++;
		return;
	}
	c->events[c->n_events].level = level;
	va_start(ap, fmt);
	vsnprintf(c->events[c->n_events].msg, EVENT_LEN, fmt, ap);
	va_end(ap);
	c->n_events++;
}

/* Without c->lock: write the queued log lines. */
static void flush_events(struct cluster *c)
{
	enum starling_log_level lv[EVENT_MAX];
	unsigned n, lost;

	pthread_mutex_lock(&c->log_lock);
	pthread_mutex_lock(&c->lock);
	n = c->n_events;
	lost = c->events_lost;
	for (unsigned i = 0; i < n; i++) {
		lv[i] = c->events[i].level;
		memcpy(c->out[i], c->events[i].msg, EVENT_LEN);
	}
	c->n_events = 0;
	c->events_lost = 0;
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++)
		log_msg(lv[i], "cluster", "%s", c->out[i]);
	if (lost)
		log_msg(STARLING_LOG_WARN, "cluster",
			"%u cluster log lines dropped (too many at once)", lost);
	pthread_mutex_unlock(&c->log_lock);
}

void cluster_config_defaults(struct cluster_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->bind, sizeof(cfg->bind), "0.0.0.0:7946");
	cfg->rejoin_interval_ms = 60000;
	cfg->max_join_peers = 5;
	snprintf(cfg->profile, sizeof(cfg->profile), "lan");
	cfg->weight = 1.0;
	cfg->handover_ms = -1;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cluster_config_release(struct cluster_config *cfg)
{
	free_strv(cfg->join, cfg->n_join);
	free_strv(cfg->secret_keys, cfg->n_secret_keys);
	cfg->join = cfg->secret_keys = NULL;
	cfg->n_join = cfg->n_secret_keys = 0;
}

static char **dup_strv(char **v, size_t n)
{
	char **out = calloc(n + 1, sizeof(*out));

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			free_strv(out, i);
			return NULL;
		}
	}
	return out;
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool valid_node_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= STARLING_NODE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

/* Display state of a member: memberlist state first, then its tag. */
static const char *member_state(const struct ml_node *n, struct member_tags *t)
{
	tags_decode(n->meta, n->meta_len, t);
	switch (n->state) {
	case ML_STATE_SUSPECT:
		return "suspect";
	case ML_STATE_DEAD:
		return "dead";
	case ML_STATE_LEFT:
		return "left";
	default:
		return cluster_state_name(t->state);
	}
}

/* ---- views ---- */

static bool view_equal(const struct ownership_view *a, const struct ownership_view *b)
{
	size_t na = a ? a->n : 0, nb = b ? b->n : 0;

	if (na != nb)
		return false;
	/* both sorted by name */
	for (size_t i = 0; i < na; i++)
		if (strcmp(a->members[i].name, b->members[i].name) ||
		    a->members[i].weight != b->members[i].weight)
			return false;
	return true;
}

/* With c->lock held: make a copy of v the view in force, with a new epoch. */
static void install_view(struct cluster *c, const struct ownership_view *v)
{
	size_t n = v ? v->n : 0;
	const char **names = calloc(n + 1, sizeof(*names));
	double *weights = calloc(n + 1, sizeof(*weights));
	struct ownership_view *nv = NULL;

	if (names && weights) {
		for (size_t i = 0; i < n; i++) {
			names[i] = v->members[i].name;
			weights[i] = v->members[i].weight;
		}
		nv = ownership_view_new(c->epoch + 1, names, weights, n);
	}
	free(names);
	free(weights);
	if (!nv)
		return;
	c->epoch++;
	c->view_changes++;
	ownership_view_free(c->view);
	c->view = nv;
}

/* With c->lock held: the view in force now follows the timeline (announced
 * joins and leaves take effect at their time, so this also runs from the
 * ticker). */
static void refresh_view(struct cluster *c)
{
	const struct ownership_view *v = c->tl ? timeline_view_at(c->tl, unix_ms(), NULL) : NULL;

	if (c->tl && !v)
		return; /* out of memory: keep the old view */
	if (!c->ready && c->cfg.wait_for_size > 0 && v && v->n >= (size_t)c->cfg.wait_for_size) {
		c->ready = true;
		queue_event(c, STARLING_LOG_INFO,
			    "%zu participants (wait_for_size %d): this node now owns targets", v->n,
			    c->cfg.wait_for_size);
	}
	if (!view_equal(c->view, v))
		install_view(c, v);
}

/* ---- display state per member, indexed by name ---- */

static size_t seen_slot(const struct cluster *c, const char *name)
{
	return (size_t)XXH3_64bits(name, strlen(name)) & (c->cap_idx - 1);
}

static struct peer_seen *seen_find(const struct cluster *c, const char *name)
{
	if (!c->cap_idx)
		return NULL;
	for (size_t s = seen_slot(c, name);; s = (s + 1) & (c->cap_idx - 1)) {
		uint32_t i = c->seen_idx[s];

		if (!i)
			return NULL;
		if (strcmp(c->seen[i - 1].name, name) == 0)
			return &c->seen[i - 1];
	}
}

/* Room for one more entry: the array doubles, the index stays under half
 * full (amortised O(1) per new name). */
static bool seen_reserve(struct cluster *c)
{
	if (c->n_seen == c->cap_seen) {
		size_t cap = c->cap_seen ? c->cap_seen * 2 : 16;
		struct peer_seen *ns = realloc(c->seen, cap * sizeof(*ns));

		if (!ns)
			return false;
		c->seen = ns;
		c->cap_seen = cap;
	}
	if (2 * (c->n_seen + 1) > c->cap_idx) {
		size_t cap = c->cap_idx ? c->cap_idx * 2 : 32;
		uint32_t *ni = calloc(cap, sizeof(*ni));

		if (!ni)
			return false;
		free(c->seen_idx);
		c->seen_idx = ni;
		c->cap_idx = cap;
		for (size_t i = 0; i < c->n_seen; i++) {
			size_t s = seen_slot(c, c->seen[i].name);

			while (ni[s])
				s = (s + 1) & (cap - 1);
			ni[s] = (uint32_t)(i + 1);
		}
	}
	return true;
}

/* With c->lock held: remember when each member's display state changed, and
 * log the change. Our own state is logged by set_state(). */
static void note_seen(struct cluster *c, const struct ml_node *m, const char *state, int64_t when)
{
	const char *name = m->name;
	bool self = strcmp(name, c->cfg.node_name) == 0;
	struct peer_seen *p = seen_find(c, name);
	char addr[64];

	if (p && strcmp(p->state, state) == 0)
		return;
	if (!self && (!strcmp(state, "viewer") || !strcmp(state, "participant") ||
		      !strcmp(state, "terminating")))
		c->peer_state_changes++;
	ml_addr_format(&m->addr, addr, sizeof(addr));
	if (p) {
		if (!self)
			queue_event(c, STARLING_LOG_INFO, "member %s (%s) is now %s (was %s)", name,
				    addr, state, p->state);
		snprintf(p->state, sizeof(p->state), "%s", state);
		p->last_change = when;
		return;
	}
	if (!seen_reserve(c))
		return;
	if (!self)
		queue_event(c, STARLING_LOG_INFO, "member %s (%s) joined as %s", name, addr, state);
	p = &c->seen[c->n_seen];
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->state, sizeof(p->state), "%s", state);
	p->last_change = when;
	{
		size_t s = seen_slot(c, name);

		while (c->seen_idx[s])
			s = (s + 1) & (c->cap_idx - 1);
		c->seen_idx[s] = (uint32_t)(c->n_seen + 1);
	}
	c->n_seen++;
}

static int64_t seen_change(const struct cluster *c, const char *name)
{
	const struct peer_seen *p = seen_find(c, name);

	return p ? p->last_change : 0;
}

/* With c->lock held: compare a member's configuration fingerprint with
 * ours; log when that changes. */
static void note_drift(struct cluster *c, const struct ml_node *m, const struct member_tags *t)
{
	struct peer_seen *p = seen_find(c, m->name);
	char d[sizeof(p->drift)] = "";

	if (!p)
		return;
	if (t->starling && strcmp(m->name, c->cfg.node_name) &&
	    (m->state == ML_STATE_ALIVE || m->state == ML_STATE_SUSPECT))
		tags_fp_diff(c->fp, t->fp, d, sizeof(d));
	if (!strcmp(d, p->drift))
		return;
	if (d[0])
		queue_event(c, STARLING_LOG_WARN,
			    "configuration drift: member %s decides ownership from a different "
			    "configuration of %s (targets may be doubled or unscraped)",
			    m->name, d);
	else if (t->starling && (m->state == ML_STATE_ALIVE || m->state == ML_STATE_SUSPECT))
		queue_event(c, STARLING_LOG_INFO, "member %s has the same configuration again",
			    m->name);
	snprintf(p->drift, sizeof(p->drift), "%s", d);
}

/* Members gone (dead or left) keep their spans this long after they ended
 * (longer than any scrape interval: removing a span changes the owners of
 * the slots it covered), at most this many. */
#define GONE_KEEP_MS (3600 * 1000)
#define GONE_MAX     1024

/* With c->lock held: the span a member owns by (false: none). A member
 * declared dead or gone owns until this node first saw it down (see
 * departed.h), so slots from then on are the survivors', retroactively. */
static bool member_span(struct cluster *c, const struct ml_node *m, const struct member_tags *t,
			struct timeline_member *out)
{
	int64_t until;

	if (t->state == CLUSTER_STATE_PARTICIPANT)
		until = TIMELINE_NEVER;
	else if (t->state == CLUSTER_STATE_TERMINATING && t->until != TIMELINE_NEVER)
		until = t->until;
	else
		return false;
	/* suspects keep their targets until declared dead: no flapping */
	if (m->state == ML_STATE_DEAD || m->state == ML_STATE_LEFT)
		until = departed_until(until, m->down_since + c->mono_to_unix);
	*out = (struct timeline_member){m->name, t->weight, t->from, until};
	return true;
}

/* With c->lock held: rebuild the timeline of participants' spans if
 * membership changed, then the view in force now. */
static void recompute(struct cluster *c, int64_t now)
{
	size_t n = ml_node_count(c->eng), k = 0;
	struct timeline_member *tm;
	uint64_t refused = 0;
	unsigned drifting = 0;

	if (ml_version(c->eng) == c->seen_version)
		return;
	c->seen_version = ml_version(c->eng);
	if (!c->gone)
		c->gone = departed_new(GONE_MAX, GONE_KEEP_MS);
	departed_expire(c->gone, now + c->mono_to_unix);
	tm = calloc(n + 1, sizeof(*tm));
	if (!tm)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct ml_node *m = ml_node_at(c->eng, i);
		struct member_tags t;
		struct timeline_member span;
		const char *st = member_state(m, &t);

		note_seen(c, m, st, now + c->mono_to_unix);
		note_drift(c, m, &t);
		drifting += seen_find(c, m->name) && seen_find(c, m->name)->drift[0];
		refused += t.weight_refused;
		if (!member_span(c, m, &t, &span))
			continue;
		if (m->state == ML_STATE_DEAD || m->state == ML_STATE_LEFT) {
			if (departed_note(c->gone, span.name, span.weight, span.from, span.until) &&
			    m->state == ML_STATE_DEAD)
				c->deaths_cut++;
		} else {
			departed_forget(c->gone, m->name, t.from); /* a death refuted */
			tm[k++] = span;
		}
	}
	/* then the gone ones (kept after the engine forgets them) */
	if (departed_count(c->gone)) {
		struct timeline_member *all =
		    realloc(tm, (k + departed_count(c->gone)) * sizeof(*tm));

		if (!all) {
			free(tm);
			return;
		}
		tm = all;
		for (size_t i = 0; i < departed_count(c->gone); i++)
			tm[k++] = *departed_at(c->gone, i);
	}
	c->weights_refused = refused;
	c->drifting = drifting;
	if (!timeline_equal(c->tl, tm, k)) {
		struct timeline *nt = timeline_new(tm, k);

		if (nt) {
			timeline_free(c->tl);
			c->tl = nt;
		}
	}
	free(tm);
	refresh_view(c);
}

/* After every packet and tick. A burst of packets (a push/pull, a flood of
 * new names) rebuilds the views at most every RECOMPUTE_MIN_MS; the ticker
 * calls this at least every 100 ms, so nothing waits longer than that. */
#define RECOMPUTE_MIN_MS 20
static void after_engine(void *arg, int64_t now)
{
	struct cluster *c = arg;

	if (ml_version(c->eng) == c->seen_version || now - c->last_recompute < RECOMPUTE_MIN_MS)
		return;
	c->last_recompute = now;
	recompute(c, now);
}

/* ---- join ---- */

static int add_addrinfo(const char *host, uint16_t port, struct ml_addr *out, int n, int max)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char ps[8];

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res))
		return n;
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		struct ml_addr a = {0};

		if (ai->ai_family == AF_INET) {
			memcpy(a.ip, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
			a.len = 4;
		} else if (ai->ai_family == AF_INET6) {
			memcpy(a.ip, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
			a.len = 16;
		} else {
			continue;
		}
		a.port = port;
		bool dup = false;

		for (int i = 0; i < n; i++)
			dup |= ml_addr_eq(&out[i], &a);
		if (!dup)
			out[n++] = a;
	}
	freeaddrinfo(res);
	return n;
}

/* SRV lookup with res_query; the answer is parsed by hand because the
 * ns_* parser lives in libresolv, which the host does not link. */
static int resolve_srv(const char *name, struct ml_addr *out, int n, int max)
{
	unsigned char ans[4096];
	int len = res_query(name, C_IN, T_SRV, ans, sizeof(ans));
	const unsigned char *p, *end;
	int qd, an;

	if (len < 12 || len > (int)sizeof(ans))
		return n;
	end = ans + len;
	qd = ans[4] << 8 | ans[5];
	an = ans[6] << 8 | ans[7];
	p = ans + 12;
	for (int i = 0; i < qd; i++) {
		int s = dn_skipname(p, end);

		if (s < 0 || end - p < s + 4)
			return n;
		p += s + 4;
	}
	for (int i = 0; i < an && n < max; i++) {
		char target[NS_MAXDNAME];
		int s = dn_skipname(p, end);
		int type, rdlen;

		if (s < 0 || end - p < s + 10)
			return n;
		p += s;
		type = p[0] << 8 | p[1];
		rdlen = p[8] << 8 | p[9];
		p += 10;
		if (end - p < rdlen)
			return n;
		if (type == T_SRV && rdlen >= 7 &&
		    dn_expand(ans, end, p + 6, target, sizeof(target)) >= 0)
			n = add_addrinfo(target, (uint16_t)(p[4] << 8 | p[5]), out, n, max);
		p += rdlen;
	}
	return n;
}

/* Resolve one join entry: "host:port", "host" (port 7946), "dnssrv+name". */
static int resolve_join(const char *entry, struct ml_addr *out, int n, int max)
{
	char host[256];
	const char *colon;
	uint16_t port = 7946;
	struct ml_addr a;

	if (strncmp(entry, "dnssrv+", 7) == 0)
		return resolve_srv(entry + 7, out, n, max);
	if (strncmp(entry, "dns+", 4) == 0)
		entry += 4;
	if (ml_addr_parse(entry, &a) == 0) {
		if (n < max)
			out[n++] = a;
		return n;
	}
	colon = strrchr(entry, ':');
	if (colon && !strchr(colon, ']')) {
		long p = strtol(colon + 1, NULL, 10);

		if (p > 0 && p < 65536)
			port = (uint16_t)p;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - entry), entry);
	} else {
		snprintf(host, sizeof(host), "%s", entry);
	}
	return add_addrinfo(host, port, out, n, max);
}

/* Without c->lock: resolve the join list, then (locked) start joins with
 * a random subset. Returns how many joins were issued. */
static unsigned issue_joins(struct cluster *c)
{
	struct ml_addr addrs[MAX_JOIN_ADDRS];
	char unresolved[256] = "";
	size_t ul = 0;
	int n = 0, k;

	for (size_t i = 0; i < c->cfg.n_join; i++) {
		int before = n;

		n = resolve_join(c->cfg.join[i], addrs, n, MAX_JOIN_ADDRS);
		if (n == before && n < MAX_JOIN_ADDRS && ul < sizeof(unresolved))
			ul += (size_t)snprintf(unresolved + ul, sizeof(unresolved) - ul, "%s%s",
					       ul ? " " : "", c->cfg.join[i]);
	}
	pthread_mutex_lock(&c->lock);
	if (unresolved[0])
		queue_event(c, STARLING_LOG_WARN, "join: no address for %s", unresolved);
	/* never join ourselves */
	for (int i = 0; i < n;) {
		if (ml_addr_eq(&addrs[i], &c->advertise))
			addrs[i] = addrs[--n];
		else
			i++;
	}
	/* the log names what was tried, in a stable order (so that the
	 * logger's repeat suppression works across retries) */
	{
		size_t tl = 0;

		c->join_tried[0] = 0;
		for (int i = 0; i < n && tl < sizeof(c->join_tried); i++) {
			char a[64];

			ml_addr_format(&addrs[i], a, sizeof(a));
			tl += (size_t)snprintf(c->join_tried + tl, sizeof(c->join_tried) - tl,
					       "%s%s", tl ? " " : "", a);
		}
	}
	for (int i = n - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		struct ml_addr t = addrs[i];

		addrs[i] = addrs[j];
		addrs[j] = t;
	}
	k = c->cfg.max_join_peers > 0 && n > c->cfg.max_join_peers ? c->cfg.max_join_peers : n;
	int64_t now = ml_now_ms();

	for (int i = 0; i < k; i++)
		ml_join(c->eng, &addrs[i], now);
	c->joins_issued += (unsigned)k;
	{
		const char *conflict;

		ml_join_status(c->eng, &c->join_round_ok, &c->join_round_failed, &conflict);
		c->join_round_k = (unsigned)k;
	}
	pthread_mutex_unlock(&c->lock);
	return (unsigned)k;
}

/* Join thread: retry every JOIN_RETRY_MS until some peer answered, then
 * every rejoin_interval (re-resolving names), which heals partitions. */
static void *join_main(void *arg)
{
	struct cluster *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->join_stop) {
		int64_t now = ml_now_ms();

		if (c->running && !c->joined_once) {
			unsigned ok, failed;
			const char *conflict;

			ml_join_status(c->eng, &ok, &failed, &conflict);
			if (ok) {
				/* We started alone and a retry reached a peer: the
				 * join intent sent when we became a participant went
				 * to nobody, and a serf agent may still hold our
				 * previous life as "leaving" (see serf_intent). */
				c->joined_once = true;
				c->next_join = c->cfg.rejoin_interval_ms > 0
						   ? now + c->cfg.rejoin_interval_ms
						   : INT64_MAX;
				queue_event(c, STARLING_LOG_INFO,
					    "joined the cluster (started alone, a retry reached a "
					    "peer)");
				bool leaving = c->state == CLUSTER_STATE_TERMINATING;

				pthread_mutex_unlock(&c->lock);
				if (!leaving)
					serf_intent(c, SERF_INTENT_JOIN);
				flush_events(c);
				pthread_mutex_lock(&c->lock);
				continue;
			}
		}
		if (c->running && now >= c->next_join) {
			unsigned ok, failed;
			const char *conflict;

			ml_join_status(c->eng, &ok, &failed, &conflict);
			if (ok)
				c->joined_once = true;
			/* every join of the last round failed (pending ones are not
			 * counted, they are reported next round) */
			if (c->join_round_k && ok == c->join_round_ok &&
			    failed - c->join_round_failed >= c->join_round_k)
				queue_event(c,
					    c->joined_once ? STARLING_LOG_INFO : STARLING_LOG_WARN,
					    "join: none of %u peers answered (addresses: %s); %s",
					    c->join_round_k, c->join_tried,
					    c->joined_once ? "retrying at the next rejoin_interval"
							   : "still alone, retrying every 2 s");
			c->join_round_k = 0;
			if (!c->joined_once)
				c->next_join = now + JOIN_RETRY_MS;
			else
				c->next_join = c->cfg.rejoin_interval_ms > 0
						   ? now + c->cfg.rejoin_interval_ms
						   : INT64_MAX;
			pthread_mutex_unlock(&c->lock);
			issue_joins(c);
			flush_events(c);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		int64_t wait = c->next_join - now;
		struct timespec ts;

		if (wait > 1000)
			wait = 1000;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->join_cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void stop_join_thread(struct cluster *c)
{
	if (!c->join_thr_started)
		return;
	pthread_mutex_lock(&c->lock);
	c->join_stop = true;
	pthread_cond_broadcast(&c->join_cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->join_thr, NULL);
	c->join_thr_started = false;
}

/* prometheus.DefBuckets, as ckit's cluster_node_update_duration_seconds */
static const double upd_bounds[11] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

/* Without c->lock: one view callback (ckit: one cluster-state update) took
 * secs. */
static void note_update(struct cluster *c, double secs)
{
	pthread_mutex_lock(&c->lock);
	c->updating = false;
	for (int i = 0; i < 11; i++)
		if (secs <= upd_bounds[i])
			c->upd_buckets[i]++;
	c->upd_count++;
	c->upd_sum += secs;
	pthread_mutex_unlock(&c->lock);
}

void cluster_set_observers(struct cluster *c, unsigned n)
{
	pthread_mutex_lock(&c->lock);
	c->observers = n;
	pthread_mutex_unlock(&c->lock);
}

/* Ticker thread, no lock held: readiness timeout and view-change
 * callbacks. */
static void idle(void *arg)
{
	struct cluster *c = arg;
	int64_t now = ml_now_ms();
	cluster_view_fn fn;
	void *fa;
	uint64_t epoch;

	pthread_mutex_lock(&c->lock);
	if (!c->ready && c->cfg.wait_timeout_ms > 0 &&
	    now - c->start_ms >= c->cfg.wait_timeout_ms) {
		c->ready = true;
		c->epoch++; /* what this node owns changed */
		queue_event(c, STARLING_LOG_WARN,
			    "wait_timeout passed below wait_for_size %d participants: this node "
			    "now owns targets anyway",
			    c->cfg.wait_for_size);
	}
	if (c->eng)
		refresh_view(c); /* an announced join or leave came due */
	if (c->net)
		c->streams_refused = ml_net_streams_refused(c->net);
	pthread_mutex_unlock(&c->lock);
	flush_events(c);

	pthread_mutex_lock(&c->cb_lock);
	pthread_mutex_lock(&c->lock);
	fn = c->view_fn;
	fa = c->view_arg;
	epoch = c->epoch;
	bool changed = epoch != c->notified_epoch;

	c->notified_epoch = epoch;
	if (changed && fn)
		c->updating = true;
	pthread_mutex_unlock(&c->lock);
	if (changed && fn) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		fn(fa, epoch);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		note_update(c, (double)(t1.tv_sec - t0.tv_sec) +
				   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	pthread_mutex_unlock(&c->cb_lock);
}

/* ---- lifecycle ---- */

static bool addr_is_loopback(const struct ml_addr *a)
{
	static const uint8_t v6_lo[16] = {[15] = 1};

	return (a->len == 4 && a->ip[0] == 127) || (a->len == 16 && !memcmp(a->ip, v6_lo, 16));
}

/* The keyring from cluster.secret_keys_file: one base64 key a line (blank
 * lines and # comments skipped), the first the primary; the file must not be
 * readable by group or others, as ssh insists for private keys. */
static int load_keyring_file(struct cluster *c, char *err, size_t errlen)
{
	const char *path = c->cfg.secret_keys_file;
	char line[256];
	struct stat st;
	int lineno = 0, rc = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "cluster.secret_keys_file %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (fstat(fileno(f), &st) || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "cluster.secret_keys_file %s: readable by group or others (mode %03o): "
			 "chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
		fclose(f);
		return -EPERM;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		char kerr[160], *s = line, *e;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		if (!*s || *s == '#')
			continue;
		if (ml_keyring_add_b64(&c->keys, s, kerr, sizeof(kerr))) {
			snprintf(err, errlen, "cluster.secret_keys_file %s:%d: %s", path, lineno,
				 kerr);
			rc = -EINVAL;
		}
	}
	fclose(f);
	if (!rc && c->keys.n == 0) {
		snprintf(err, errlen, "cluster.secret_keys_file %s: no key in it", path);
		rc = -EINVAL;
	}
	return rc;
}

int cluster_create(const struct cluster_config *cfg, struct cluster **out, char *err, size_t errlen)
{
	struct cluster *c = calloc(1, sizeof(*c));
	int rc = -EINVAL;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->cfg = *cfg;
	c->cfg.join = dup_strv(cfg->join, cfg->n_join);
	c->cfg.secret_keys = dup_strv(cfg->secret_keys, cfg->n_secret_keys);
	if (!c->cfg.join || !c->cfg.secret_keys) {
		free_strv(c->cfg.join, c->cfg.join ? cfg->n_join : 0);
		free_strv(c->cfg.secret_keys, c->cfg.secret_keys ? cfg->n_secret_keys : 0);
		free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->cb_lock, NULL);
	pthread_mutex_init(&c->log_lock, NULL);
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->join_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!c->cfg.node_name[0] &&
	    gethostname(c->cfg.node_name, sizeof(c->cfg.node_name) - 1) != 0)
		snprintf(c->cfg.node_name, sizeof(c->cfg.node_name), "localhost");
	if (!(c->cfg.weight >= WEIGHT_MIN && c->cfg.weight <= WEIGHT_MAX))
		c->cfg.weight = 1.0; /* config.c refuses it; here for direct callers */
	c->own_from = TIMELINE_ALWAYS;
	c->own_until = TIMELINE_NEVER;
	c->ready = c->cfg.wait_for_size <= 1;
	if (!cfg->enabled) {
		*out = c;
		return 0;
	}
	if (!valid_node_name(c->cfg.node_name)) {
		snprintf(err, errlen,
			 "cluster.node_name \"%s\": must be 1-%d printable characters "
			 "without spaces or quotes",
			 c->cfg.node_name, STARLING_NODE_NAME_MAX - 1);
		goto fail;
	}
	if (ml_timing_preset(c->cfg.profile, &c->timing)) {
		snprintf(err, errlen, "cluster.profile \"%s\": expected lan, wan or local",
			 c->cfg.profile);
		goto fail;
	}
	/* Announced joins and leaves must reach every node before they take
	 * effect: a few gossip rounds of a large cluster, plus clock skew. */
	c->handover_ms =
	    c->cfg.handover_ms >= 0 ? c->cfg.handover_ms : c->timing.gossip_interval * 10;
	if (strlen(c->cfg.name) > ML_LABEL_MAX) {
		snprintf(err, errlen, "cluster.name is longer than %d bytes", ML_LABEL_MAX);
		goto fail;
	}
	for (size_t i = 0; i < c->cfg.n_secret_keys; i++) {
		char kerr[160];

		if (ml_keyring_add_b64(&c->keys, c->cfg.secret_keys[i], kerr, sizeof(kerr))) {
			snprintf(err, errlen, "cluster.secret_keys[%zu]: %s", i, kerr);
			goto fail;
		}
	}
	if (c->cfg.secret_keys_file[0] && load_keyring_file(c, err, errlen))
		goto fail;
	if (ml_addr_parse(c->cfg.bind, &c->bind)) {
		snprintf(err, errlen, "cluster.bind \"%s\": expected IP:port", c->cfg.bind);
		goto fail;
	}
	if (c->cfg.advertise[0] && ml_addr_parse(c->cfg.advertise, &c->advertise)) {
		snprintf(err, errlen, "cluster.advertise \"%s\": expected IP:port",
			 c->cfg.advertise);
		goto fail;
	}
	if (c->cfg.max_join_peers < 0) {
		snprintf(err, errlen, "cluster.max_join_peers must be >= 0");
		goto fail;
	}
	c->insecure = c->keys.n == 0 && !addr_is_loopback(&c->bind);
	if (c->cfg.require_encryption && c->keys.n == 0) {
		snprintf(err, errlen,
			 "cluster.require_encryption is set but there is no key "
			 "(cluster.secret_keys_file or cluster.secret_keys): refusing to start");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	cluster_destroy(c);
	return rc;
}

/* Whether interface name is in the comma list (empty or "all": any). */
static bool iface_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!list[0] || !strcmp(list, "all"))
		return true;
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !memcmp(p, name, n))
			return true;
		p += l + (e != NULL);
	}
	return false;
}

/* An address peers can reach when bound to the wildcard address: the first
 * non-loopback IPv4 address of the listed interfaces (Alloy's
 * --cluster.advertise-interfaces; none listed: any interface). */
static void pick_advertise(struct ml_addr *a, const char *ifaces)
{
	struct ifaddrs *ifs, *i;
	static const uint8_t zero[16];

	if (memcmp(a->ip, zero, a->len))
		return;
	a->len = 4;
	memcpy(a->ip, (uint8_t[]){127, 0, 0, 1}, 4);
	if (getifaddrs(&ifs))
		return;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    !iface_listed(ifaces, i->ifa_name))
			continue;
		const uint8_t *ip = (const uint8_t *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr;

		if (ip[0] == 127)
			continue;
		memcpy(a->ip, ip, 4);
		break;
	}
	freeifaddrs(ifs);
}

int cluster_start(struct cluster *c, char *err, size_t errlen)
{
	struct ml_config mc;
	struct ml_addr bound;
	int rc;

	if (!c->cfg.enabled)
		return 0;
	rc = ml_net_open(&c->bind, &c->net, &bound, err, errlen);
	if (rc)
		return rc;
	if (!c->cfg.advertise[0]) {
		c->advertise = bound;
		pick_advertise(&c->advertise, c->cfg.advertise_interfaces);
	} else if (c->advertise.port == 0) {
		c->advertise.port = bound.port;
	}
	memset(&mc, 0, sizeof(mc));
	snprintf(mc.name, sizeof(mc.name), "%s", c->cfg.node_name);
	mc.advertise = c->advertise;
	mc.timing = c->timing;
	snprintf(mc.label, sizeof(mc.label), "%s", c->cfg.name);
	mc.keys = c->keys;
	mc.meta_len = tags_encode(c->state, c->cfg.weight, c->http, c->own_from, c->own_until,
				  c->fp, mc.meta, sizeof(mc.meta));
	mc.seed = (uint64_t)unix_ms() ^ (uint64_t)getpid() << 32;
	mc.compress = true; /* as serf (memberlist EnableCompression) */
	/* A restarted node must beat what peers remember of its previous life
	 * (memberlist drops an alive message whose incarnation is not newer,
	 * and a refutation takes a push/pull round): start from 8 per second
	 * of wall clock since 2020, more than a life of a few seconds bumps. */
	mc.incarnation = (uint32_t)((unix_ms() / 1000 - 1577836800) * 8);
	c->start_ms = ml_now_ms();
	c->mono_to_unix = unix_ms() - c->start_ms;
	struct ml_transport tr = ml_net_transport(c->net);

	c->eng = ml_new(&mc, &tr, c->start_ms);
	if (!c->eng) {
		ml_net_stop(c->net);
		c->net = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->first_incarnation = ml_self(c->eng)->incarnation;
	struct ml_net_ops ops = {.arg = c,
				 .lock = &c->lock,
				 .eng = &c->eng,
				 .after = after_engine,
				 .idle = idle,
				 .tcp_timeout_ms = c->timing.tcp_timeout};

	pthread_mutex_lock(&c->lock);
	recompute(c, c->start_ms);
	c->running = true;
	c->next_join = INT64_MAX; /* first join below; join_main() takes over */
	pthread_mutex_unlock(&c->lock);
	rc = ml_net_start(c->net, &ops);
	if (rc) {
		snprintf(err, errlen, "cannot start threads");
		return rc;
	}
	if (c->cfg.n_join) {
		unsigned issued = issue_joins(c), ok = 0, failed = 0;
		const char *conflict = "";
		int64_t deadline = ml_now_ms() + FIRST_JOIN_MAX_MS;

		while (issued && ml_now_ms() < deadline) {
			pthread_mutex_lock(&c->lock);
			ml_join_status(c->eng, &ok, &failed, &conflict);
			pthread_mutex_unlock(&c->lock);
			if (conflict[0] || ok + failed >= issued)
				break;
			usleep(10000);
		}
		pthread_mutex_lock(&c->lock);
		ml_join_status(c->eng, &ok, &failed, &conflict);
		char cbuf[256];

		snprintf(cbuf, sizeof(cbuf), "%s", conflict);
		c->joined_once = ok > 0;
		c->next_join =
		    ml_now_ms() + (ok ? (c->cfg.rejoin_interval_ms > 0 ? c->cfg.rejoin_interval_ms
								       : INT64_MAX / 2)
				      : JOIN_RETRY_MS);
		pthread_mutex_unlock(&c->lock);
		if (cbuf[0]) {
			snprintf(err, errlen, "%s; pick another cluster.node_name", cbuf);
			pthread_mutex_lock(&c->lock);
			c->running = false;
			pthread_mutex_unlock(&c->lock);
			ml_net_stop(c->net);
			c->net = NULL;
			return -EEXIST;
		}
		if (ok) /* a serf agent holding our previous life as "leaving" */
			serf_intent(c, SERF_INTENT_JOIN);
		pthread_mutex_lock(&c->lock);
		if (ok)
			queue_event(c, STARLING_LOG_INFO,
				    "joined the cluster through %u of %u peers", ok, issued);
		else if (!issued)
			queue_event(c, STARLING_LOG_INFO,
				    "no join address other than ourselves; starting alone");
		else
			queue_event(
			    c, STARLING_LOG_WARN,
			    "join: none of %u peers answered (addresses: %s); starting alone "
			    "and retrying every %d s",
			    issued, c->join_tried, JOIN_RETRY_MS / 1000);
		/* the next round reports again only about its own joins */
		c->join_round_k = 0;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&c->join_thr, NULL, join_main, c) == 0) {
			c->join_thr_started = true;
		} else {
			pthread_mutex_lock(&c->lock);
			queue_event(c, STARLING_LOG_ERROR,
				    "cannot start the join thread: no retries, no rejoin");
			pthread_mutex_unlock(&c->lock);
		}
	}
	{
		char a[64];

		ml_addr_format(&c->advertise, a, sizeof(a));
		pthread_mutex_lock(&c->lock);
		queue_event(c, STARLING_LOG_INFO,
			    "node %s listening on %s (advertised %s), profile %s%s",
			    c->cfg.node_name, c->cfg.bind, a, c->cfg.profile,
			    c->keys.n ? ", encrypted" : "");
		if (c->insecure)
			queue_event(c, STARLING_LOG_WARN,
				    "the cluster port %s is reachable beyond loopback without "
				    "encryption: anyone who reaches it can join and take over "
				    "targets; set cluster.secret_keys_file (and "
				    "require_encryption = true)",
				    c->cfg.bind);
		pthread_mutex_unlock(&c->lock);
	}
	flush_events(c);
	return 0;
}

/* With c->lock held: whether a participant other than us owns at time t
 * (someone to hand over to or from). */
static bool others_own_at(struct cluster *c, int64_t t)
{
	const struct ownership_view *v = c->tl ? timeline_view_at(c->tl, t, NULL) : NULL;

	for (size_t i = 0; v && i < v->n; i++)
		if (strcmp(v->members[i].name, c->cfg.node_name))
			return true;
	return false;
}

/* Announce a new state with our span (from, until in unix ms). */
static void set_state(struct cluster *c, enum cluster_node_state st, int64_t from, int64_t until)
{
	uint8_t meta[ML_META_MAX];
	size_t len;

	pthread_mutex_lock(&c->lock);
	if (c->state != st)
		queue_event(c, STARLING_LOG_INFO, "this node is now %s (was %s)",
			    cluster_state_name(st), cluster_state_name(c->state));
	c->state = st;
	c->own_from = from;
	c->own_until = until;
	if (c->eng && c->running) {
		len =
		    tags_encode(st, c->cfg.weight, c->http, from, until, c->fp, meta, sizeof(meta));
		ml_set_meta(c->eng, meta, len, ml_now_ms());
		c->state_broadcasts++;
		ml_announce_self(c->eng);
		c->seen_version = 0;
		recompute(c, ml_now_ms());
	}
	pthread_mutex_unlock(&c->lock);
	if (c->net)
		ml_net_kick(c->net);
	flush_events(c);
}

static void set_single_view(struct cluster *c, bool participant)
{
	const char *name = c->cfg.node_name;
	struct ownership_view *v =
	    ownership_view_new(0, &name, &c->cfg.weight, participant ? 1 : 0);

	pthread_mutex_lock(&c->lock);
	if (v)
		install_view(c, v);
	pthread_mutex_unlock(&c->lock);
	ownership_view_free(v);
}

static void notify_now(struct cluster *c)
{
	cluster_view_fn fn;
	void *arg;
	uint64_t epoch;
	bool changed;

	pthread_mutex_lock(&c->cb_lock);
	pthread_mutex_lock(&c->lock);
	fn = c->view_fn;
	arg = c->view_arg;
	epoch = c->epoch;
	changed = epoch != c->notified_epoch;
	c->notified_epoch = epoch;
	pthread_mutex_unlock(&c->lock);
	if (changed && fn)
		fn(arg, epoch);
	pthread_mutex_unlock(&c->cb_lock);
}

void cluster_set_participant(struct cluster *c)
{
	if (!c->cfg.enabled) {
		c->state = CLUSTER_STATE_PARTICIPANT;
		set_single_view(c, true);
	} else {
		int64_t now = unix_ms(), from = now;

		/* Others own our future targets now: they hand them over at an
		 * announced time, far enough ahead for the news to reach every
		 * node, so that no slot is scraped twice. Alone, start now. */
		pthread_mutex_lock(&c->lock);
		if (others_own_at(c, now))
			from = now + c->handover_ms;
		pthread_mutex_unlock(&c->lock);
		set_state(c, CLUSTER_STATE_PARTICIPANT, from, TIMELINE_NEVER);
		if (c->eng && c->running)
			serf_intent(c, SERF_INTENT_JOIN); /* also after our alive */
		if (from > now) {
			pthread_mutex_lock(&c->lock);
			queue_event(c, STARLING_LOG_INFO,
				    "taking over targets in %" PRId64 " ms (at %" PRId64 ")",
				    from - now, from);
			pthread_mutex_unlock(&c->lock);
			flush_events(c);
		}
	}
	notify_now(c);
}

void cluster_set_fingerprint(struct cluster *c, const char *fp)
{
	enum cluster_node_state st;
	int64_t from, until;

	pthread_mutex_lock(&c->lock);
	if (!strcmp(c->fp, fp ? fp : "")) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	snprintf(c->fp, sizeof(c->fp), "%s", fp && strlen(fp) < sizeof(c->fp) ? fp : "#?");
	st = c->state;
	from = c->own_from;
	until = c->own_until;
	c->seen_version = 0; /* compare every member again */
	pthread_mutex_unlock(&c->lock);
	if (c->cfg.enabled && c->eng && c->running)
		set_state(c, st, from, until); /* re-announce our tags */
}

int64_t cluster_announce_leave(struct cluster *c)
{
	int64_t now = unix_ms(), until = now;

	if (!c->cfg.enabled || !c->eng || !c->running)
		return now;
	pthread_mutex_lock(&c->lock);
	if (c->state == CLUSTER_STATE_TERMINATING) {
		until = c->own_until;
		pthread_mutex_unlock(&c->lock);
		return until;
	}
	/* Hand over at an agreed time: peers take our targets from then on,
	 * we keep scraping until then. Nobody to hand to: stop now. */
	if (c->own_from != TIMELINE_ALWAYS && c->own_from > now)
		until = now; /* our join never came due: the old owners just keep going */
	else if (c->state == CLUSTER_STATE_PARTICIPANT && others_own_at(c, now + c->handover_ms))
		until = now + c->handover_ms;
	pthread_mutex_unlock(&c->lock);
	set_state(c, CLUSTER_STATE_TERMINATING, c->own_from, until);
	serf_leave_intent(c);
	notify_now(c);
	pthread_mutex_lock(&c->lock);
	queue_event(c, STARLING_LOG_INFO, "handing over targets in %" PRId64 " ms (at %" PRId64 ")",
		    until - now, until);
	pthread_mutex_unlock(&c->lock);
	flush_events(c);
	return until;
}

/* serf's member intents (serf/messages.go): type 0 leave, 1 join, each a
 * msgpack {LTime, Node}. serf marks a member "left" (not "failed") only if
 * its leave intent came before its dead message (serf.go handleNodeLeave),
 * and a member it holds as "leaving" turns alive again only on a join
 * intent with a newer Lamport time (handleNodeJoinIntent; a newer alive
 * message alone is a mere update, handleNodeUpdate). serf relays leave
 * intents but not join intents about known members, and gossip reaches
 * each agent only with some probability: both go straight to every live
 * member besides being gossiped. The Lamport time must beat every earlier
 * intent for this name, across restarts too: wall-clock milliseconds,
 * strictly increasing within a life. */
static void serf_intent(struct cluster *c, int type)
{
	struct mp_buf b;
	int64_t now = unix_ms();

	pthread_mutex_lock(&c->lock);
	c->serf_ltime = now > c->serf_ltime ? now : c->serf_ltime + 1;
	mp_init(&b);
	mp_put_byte(&b, (uint8_t)type);
	mp_w_map(&b, 2);
	mp_w_str(&b, "LTime");
	mp_w_uint(&b, (uint64_t)c->serf_ltime);
	mp_w_str(&b, "Node");
	mp_w_str(&b, c->cfg.node_name);
	char key[ML_NAME_MAX + 16];

	snprintf(key, sizeof(key), "\x01serf-%s:%s", type == SERF_INTENT_LEAVE ? "leave" : "join",
		 c->cfg.node_name);
	if (!b.oom) {
		ml_broadcast_user(c->eng, key, b.p, b.len, ml_now_ms());
		ml_send_user_direct(c->eng, b.p, b.len);
	}
	if (type == SERF_INTENT_LEAVE)
		c->leave_intent_at = ml_now_ms();
	pthread_mutex_unlock(&c->lock);
	mp_free(&b);
}

static void serf_leave_intent(struct cluster *c)
{
	serf_intent(c, SERF_INTENT_LEAVE);
}

/* Wait (bounded) until our queued broadcasts have been gossiped. */
static void wait_broadcasts(struct cluster *c, int64_t deadline)
{
	while (ml_now_ms() < deadline) {
		bool done;

		pthread_mutex_lock(&c->lock);
		done = ml_pending_broadcasts(c->eng) == 0 || ml_alive_peers(c->eng) == 0;
		pthread_mutex_unlock(&c->lock);
		if (done)
			return;
		usleep(20000);
	}
}

void cluster_leave(struct cluster *c, int64_t timeout_ms)
{
	int64_t start = ml_now_ms();

	if (timeout_ms <= 0)
		timeout_ms = 5000;
	if (!c->cfg.enabled || !c->eng || !c->running) {
		c->state = CLUSTER_STATE_TERMINATING;
		set_single_view(c, false);
		notify_now(c);
		return;
	}
	stop_join_thread(c); /* no rejoining while we leave */
	/* 1. announce terminating (unless cluster_announce_leave did): peers
	 * drop us from ownership at once */
	pthread_mutex_lock(&c->lock);
	bool announced = c->state == CLUSTER_STATE_TERMINATING;
	pthread_mutex_unlock(&c->lock);
	if (!announced) {
		set_state(c, CLUSTER_STATE_TERMINATING, c->own_from, unix_ms());
		serf_leave_intent(c);
		notify_now(c);
	}
	wait_broadcasts(c, start + timeout_ms / 2);
	/* serf's agents handle gossip in last-in, first-out order (memberlist
	 * net.go getNextMessage): a dead message right behind the leave intent
	 * may be handled first, and serf then logs a failure. Leave two gossip
	 * intervals between them. */
	pthread_mutex_lock(&c->lock);
	int64_t gap_until = ml_alive_peers(c->eng)
				? c->leave_intent_at + 2 * c->timing.gossip_interval
				: 0; /* alone: nobody to order for */
	pthread_mutex_unlock(&c->lock);
	while (ml_now_ms() < gap_until && ml_now_ms() < start + timeout_ms / 2)
		usleep(10000);
	/* 2. graceful leave: a dead message about ourselves, from ourselves */
	pthread_mutex_lock(&c->lock);
	ml_leave(c->eng, ml_now_ms());
	pthread_mutex_unlock(&c->lock);
	ml_net_kick(c->net);
	wait_broadcasts(c, start + timeout_ms);
	pthread_mutex_lock(&c->lock);
	c->running = false;
	queue_event(c, STARLING_LOG_INFO, "left the cluster after %" PRId64 " ms",
		    ml_now_ms() - start);
	pthread_mutex_unlock(&c->lock);
	ml_net_stop(c->net);
	c->net = NULL;
	flush_events(c);
}

void cluster_destroy(struct cluster *c)
{
	if (!c)
		return;
	stop_join_thread(c);
	if (c->net) {
		pthread_mutex_lock(&c->lock);
		c->running = false;
		pthread_mutex_unlock(&c->lock);
		ml_net_stop(c->net);
	}
	flush_events(c);
	ml_free(c->eng);
	ownership_view_free(c->view);
	timeline_free(c->tl);
	departed_free(c->gone);
	free(c->seen);
	free(c->seen_idx);
	free_strv(c->cfg.join, c->cfg.n_join);
	free_strv(c->cfg.secret_keys, c->cfg.n_secret_keys);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->cb_lock);
	pthread_mutex_destroy(&c->log_lock);
	pthread_cond_destroy(&c->join_cond);
	free(c);
}

/* ---- ownership ---- */

/* With c->lock held: the view for a slot at unix ms `at` (INT64_MIN: the
 * view in force now). */
static const struct ownership_view *view_for(struct cluster *c, int64_t at)
{
	const struct ownership_view *v;

	if (c->eng)
		recompute(c, ml_now_ms()); /* what a packet burst left for later */
	if (!c->tl)
		return c->view;
	/* "now" too is read from the timeline, so that the answer never lags
	 * the clock (the ticker moves c->view and the epoch a little later) */
	v = timeline_view_at(c->tl, at == INT64_MIN ? unix_ms() : at, NULL);
	return v ? v : c->view;
}

static size_t owners_at(struct cluster *c, uint64_t key, int64_t at, struct starling_node_name *out,
			size_t n)
{
	size_t idx[16], k = 0;

	pthread_mutex_lock(&c->lock);
	if (c->ready || !c->cfg.enabled) {
		const struct ownership_view *v = view_for(c, at);

		k = ownership_owners(v, key, idx, n);
		for (size_t i = 0; i < k; i++)
			snprintf(out[i].name, sizeof(out[i].name), "%s", v->members[idx[i]].name);
	}
	pthread_mutex_unlock(&c->lock);
	return k;
}

static bool owns_at(struct cluster *c, uint64_t key, unsigned replicas, int64_t at)
{
	struct starling_node_name names[16];
	size_t k = owners_at(c, key, at, names, replicas ? replicas : 1);

	for (size_t i = 0; i < k; i++)
		if (strcmp(names[i].name, c->cfg.node_name) == 0)
			return true;
	return false;
}

size_t cluster_owners(struct cluster *c, uint64_t key, struct starling_node_name *out, size_t n)
{
	return owners_at(c, key, INT64_MIN, out, n);
}

bool cluster_owns(struct cluster *c, uint64_t key, unsigned replicas)
{
	return owns_at(c, key, replicas, INT64_MIN);
}

size_t cluster_owners_at(struct cluster *c, uint64_t key, int64_t at_ms,
			 struct starling_node_name *out, size_t n)
{
	return owners_at(c, key, at_ms, out, n);
}

bool cluster_owns_at(struct cluster *c, uint64_t key, unsigned replicas, int64_t at_ms)
{
	return owns_at(c, key, replicas, at_ms);
}

uint64_t cluster_epoch(struct cluster *c)
{
	uint64_t e;

	pthread_mutex_lock(&c->lock);
	e = c->epoch;
	pthread_mutex_unlock(&c->lock);
	return e;
}

const char *cluster_self_name(struct cluster *c)
{
	return c->cfg.node_name;
}

/* Takes cb_lock so that, once this returns, no callback with the old
 * (fn, arg) is still running: the caller may free the old arg right away
 * (the runtime unregisters with NULL before it is destroyed). */
void cluster_on_view_change(struct cluster *c, cluster_view_fn fn, void *arg)
{
	pthread_mutex_lock(&c->cb_lock);
	pthread_mutex_lock(&c->lock);
	c->view_fn = fn;
	c->view_arg = arg;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->cb_lock);
}

/* ---- operator surface ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

char *cluster_peers_json(struct cluster *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	pthread_mutex_lock(&c->lock);
	if (c->eng)
		recompute(c, ml_now_ms()); /* drift and states as of now */
	if (!c->eng) {
		fprintf(f, "[{\"name\":");
		json_str(f, c->cfg.node_name);
		fprintf(f,
			",\"address\":\"\",\"state\":\"%s\",\"is_self\":true,"
			"\"last_change\":0}]",
			cluster_state_name(c->state));
	} else {
		size_t n = ml_node_count(c->eng);

		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			const struct ml_node *m = ml_node_at(c->eng, i);
			struct member_tags t;
			const char *st = member_state(m, &t);
			char as[64];

			ml_addr_format(&m->addr, as, sizeof(as));
			fprintf(f, "%s{\"name\":", i ? "," : "");
			json_str(f, m->name);
			if (c->insecure && !strcmp(m->name, c->cfg.node_name))
				fprintf(f, ",\"insecure\":true");
			const struct peer_seen *ps = seen_find(c, m->name);

			if (ps && ps->drift[0]) {
				fprintf(f, ",\"config_drift\":");
				json_str(f, ps->drift);
			}
			fprintf(f,
				",\"address\":\"%s\",\"state\":\"%s\",\"is_self\":%s,"
				"\"last_change\":%" PRId64 ",\"incarnation\":%u,\"weight\":%g,"
				"\"http\":",
				as, st, strcmp(m->name, c->cfg.node_name) ? "false" : "true",
				seen_change(c, m->name), m->incarnation, t.weight);
			json_str(f, t.http);
			fputs(",\"tags\":", f);
			json_str(f, t.text);
			if (t.from != TIMELINE_ALWAYS)
				fprintf(f, ",\"owns_from\":%" PRId64, t.from);
			if (t.until != TIMELINE_NEVER)
				fprintf(f, ",\"owns_until\":%" PRId64, t.until);
			fputc('}', f);
		}
		fputc(']', f);
	}
	pthread_mutex_unlock(&c->lock);
	fclose(f);
	return buf;
}

/* The metrics of Alloy's clustering (grafana/ckit metrics.go, node.go and
 * internal/gossiphttp/metrics.go) that the older block below lacked, with
 * ckit's names, types, help and labels (cluster_name = the memberlist
 * label, ckit's --cluster.name). README "Alloy's surface" says how each
 * maps here. */
static void write_alloy_metrics(struct cluster *c, FILE *out, const struct ml_stats *st,
				const struct ml_net_stats *ns, uint32_t lamport,
				uint64_t peer_changes, uint64_t state_bc, bool updating,
				unsigned observers, const uint64_t *upd_b, uint64_t upd_count,
				double upd_sum)
{
	const struct {
		const char *event;
		uint64_t v;
	} ev[] = {
	    {"state_change_message", peer_changes},
	    {"unknown_message", st->ev_user_other},
	    {"get_local_state", st->ev_local_state},
	    {"merge_remote_state", st->ev_merge},
	    {"node_join", st->ev_join},
	    {"node_leave", st->ev_leave},
	    {"node_update", st->ev_update},
	    {"node_conflict", st->ev_conflict},
	};

	fprintf(out,
		"# HELP cluster_node_lamport_time The current lamport time of the node.\n"
		"# TYPE cluster_node_lamport_time gauge\ncluster_node_lamport_time %u\n",
		lamport);
#define CN(mname, type, help)                                                                      \
	do {                                                                                       \
		fprintf(out, "# HELP " mname " " help "\n# TYPE " mname " " type "\n" mname        \
			     "{cluster_name=");                                                    \
		json_str(out, c->cfg.name);                                                        \
	} while (0)
	CN("cluster_node_update_observers", "gauge",
	   "Number of internal observers waiting for changes to cluster state.");
	fprintf(out, "} %u\n", observers);
	CN("cluster_node_updating", "gauge",
	   "1 if the node is currently processing a change to the cluster state.");
	fprintf(out, "} %d\n", updating ? 1 : 0);
	fprintf(out, "# HELP cluster_node_update_duration_seconds Histogram of the latency it took "
		     "to process a change to the cluster state.\n"
		     "# TYPE cluster_node_update_duration_seconds histogram\n");
	for (int i = 0; i <= 11; i++) {
		fprintf(out, "cluster_node_update_duration_seconds_bucket{cluster_name=");
		json_str(out, c->cfg.name);
		if (i < 11)
			fprintf(out, ",le=\"%g\"} %" PRIu64 "\n", upd_bounds[i], upd_b[i]);
		else
			fprintf(out, ",le=\"+Inf\"} %" PRIu64 "\n", upd_count);
	}
	fprintf(out, "cluster_node_update_duration_seconds_sum{cluster_name=");
	json_str(out, c->cfg.name);
	fprintf(out, "} %.9f\ncluster_node_update_duration_seconds_count{cluster_name=", upd_sum);
	json_str(out, c->cfg.name);
	fprintf(out, "} %" PRIu64 "\n", upd_count);
	fprintf(out, "# HELP cluster_node_gossip_received_events_total Total number of gossip "
		     "messages handled by the node.\n"
		     "# TYPE cluster_node_gossip_received_events_total counter\n");
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		fprintf(out, "cluster_node_gossip_received_events_total{cluster_name=");
		json_str(out, c->cfg.name);
		fprintf(out, ",event=\"%s\"} %" PRIu64 "\n", ev[i].event, ev[i].v);
	}
	fprintf(out, "# HELP cluster_node_gossip_broadcasts_total Total number of gossip messages "
		     "broadcasted by the node.\n"
		     "# TYPE cluster_node_gossip_broadcasts_total counter\n"
		     "cluster_node_gossip_broadcasts_total{cluster_name=");
	json_str(out, c->cfg.name);
	fprintf(out, ",event=\"state_change_message\"} %" PRIu64 "\n", state_bc);
#undef CN
#define T(name, type, help, v)                                                                     \
	fprintf(out, "# HELP " name " " help "\n# TYPE " name " " type "\n" name " %" PRIu64 "\n", \
		(uint64_t)(v))
	T("cluster_transport_tx_packets_failed_total", "counter",
	  "Total number of failed gossip transport packets", ns->tx_failed);
	T("cluster_transport_streams", "gauge", "Current number of gossip transport data streams",
	  ns->open_streams > 0 ? ns->open_streams : 0);
	T("cluster_transport_stream_rx_packets_total", "counter",
	  "Total number of gossip transport stream packets read", st->rx_streams);
	T("cluster_transport_stream_rx_packets_failed_total", "counter",
	  "Total number of gossip transport stream packets failed to read", ns->rx_stream_failed);
	T("cluster_transport_stream_tx_packets_total", "counter",
	  "Total number of gossip transport stream packets written", st->tx_streams);
	T("cluster_transport_stream_tx_packets_failed_total", "counter",
	  "Total number of failed gossip transport stream packets", st->stream_failures);
#undef T
}

void cluster_write_metrics(struct cluster *c, FILE *out)
{
	static const char *const states[] = {"viewer",	"participant", "terminating",
					     "suspect", "dead",	       "left"};
	unsigned counts[6] = {0};
	struct ml_stats st;
	int health = 0;
	uint64_t rx_failed = 0;
	size_t alive_peers = 0;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&c->lock);
	if (c->eng)
		recompute(c, ml_now_ms()); /* what a packet burst left for later */
	if (c->eng) {
		for (size_t i = 0; i < ml_node_count(c->eng); i++) {
			struct member_tags t;
			const char *s = member_state(ml_node_at(c->eng, i), &t);

			for (int j = 0; j < 6; j++)
				if (strcmp(s, states[j]) == 0)
					counts[j]++;
			/* memberlist NumMembers: not dead or left, us included */
			alive_peers += ml_node_at(c->eng, i)->state == ML_STATE_ALIVE ||
				       ml_node_at(c->eng, i)->state == ML_STATE_SUSPECT;
		}
		st = *ml_stats(c->eng);
		health = ml_health_score(c->eng);
		for (int i = 0; i < ML_DROP__N; i++)
			rx_failed += st.dropped[i];
	} else {
		counts[c->state]++;
	}
	/* our incarnation counted from this run's first: it ticks with each
	 * state we announce and jumps past any claim about us we refute */
	uint32_t lamport =
	    c->eng && ml_self(c->eng) ? ml_self(c->eng)->incarnation - c->first_incarnation + 1 : 0;
	uint64_t peer_changes = c->peer_state_changes, state_bc = c->state_broadcasts;
	uint64_t upd_b[11], upd_count = c->upd_count;
	double upd_sum = c->upd_sum;
	bool updating = c->updating;
	unsigned observers = c->observers;
	struct ml_net_stats ns;

	memcpy(upd_b, c->upd_buckets, sizeof(upd_b));
	memset(&ns, 0, sizeof(ns));
	uint64_t epoch = c->epoch, changes = c->view_changes, refused = c->weights_refused;
	int64_t handover = c->handover_ms;
	uint64_t streams_refused = c->streams_refused, deaths_cut = c->deaths_cut;
	unsigned drifting = c->drifting;
	size_t owners = c->view ? c->view->n : 0;
	bool ready = c->ready || !c->cfg.enabled;
	const char *me = cluster_state_name(c->state);

	pthread_mutex_unlock(&c->lock);
	if (c->net)
		ml_net_stats(c->net, &ns); /* its own lock */

	write_alloy_metrics(c, out, &st, &ns, lamport, peer_changes, state_bc, updating, observers,
			    upd_b, upd_count, upd_sum);
	fprintf(out,
		"# HELP cluster_node_info Information about this cluster node.\n"
		"# TYPE cluster_node_info gauge\ncluster_node_info{state=\"%s\",name=",
		me);
	json_str(out, c->cfg.node_name);
	fprintf(out, "} 1\n# HELP cluster_node_peers Number of members by state.\n"
		     "# TYPE cluster_node_peers gauge\n");
	for (int j = 0; j < 6; j++)
		fprintf(out, "cluster_node_peers{state=\"%s\"} %u\n", states[j], counts[j]);
	fprintf(out,
		"# HELP cluster_node_gossip_health_score Lifeguard local health (0 is best).\n"
		"# TYPE cluster_node_gossip_health_score gauge\n"
		"cluster_node_gossip_health_score %d\n"
		"# HELP cluster_node_gossip_proto_version memberlist protocol version spoken.\n"
		"# TYPE cluster_node_gossip_proto_version gauge\n"
		"cluster_node_gossip_proto_version 2\n"
		"# HELP cluster_node_gossip_alive_peers How many alive gossip peers a node has, "
		"including the local node.\n"
		"# TYPE cluster_node_gossip_alive_peers gauge\n"
		"cluster_node_gossip_alive_peers %zu\n"
		"# HELP cluster_view_epoch Current ownership view epoch.\n"
		"# TYPE cluster_view_epoch gauge\ncluster_view_epoch %" PRIu64 "\n"
		"# HELP cluster_view_changes_total Ownership view changes.\n"
		"# TYPE cluster_view_changes_total counter\ncluster_view_changes_total %" PRIu64
		"\n"
		"# HELP cluster_view_participants Participants that own keys.\n"
		"# TYPE cluster_view_participants gauge\ncluster_view_participants %zu\n"
		"# HELP cluster_ready Whether wait_for_size is satisfied.\n"
		"# TYPE cluster_ready gauge\ncluster_ready %d\n"
		"# HELP cluster_ready_for_traffic Alloy's name for cluster_ready.\n"
		"# TYPE cluster_ready_for_traffic gauge\ncluster_ready_for_traffic %d\n"
		"# HELP cluster_minimum_size The configured wait_for_size.\n"
		"# TYPE cluster_minimum_size gauge\ncluster_minimum_size %d\n"
		"# HELP cluster_members_weight_refused Members advertising a weight outside "
		"0.01..100 (counted with weight 1).\n"
		"# TYPE cluster_members_weight_refused gauge\ncluster_members_weight_refused "
		"%" PRIu64 "\n"
		"# HELP cluster_config_drift Members whose ownership-deciding configuration "
		"differs from this node's.\n"
		"# TYPE cluster_config_drift gauge\ncluster_config_drift %u\n"
		"# HELP cluster_insecure 1 when the cluster port is bound beyond loopback "
		"without encryption.\n"
		"# TYPE cluster_insecure gauge\ncluster_insecure %d\n"
		"# HELP cluster_handover_delay_seconds How far ahead joins and leaves are "
		"announced.\n"
		"# TYPE cluster_handover_delay_seconds gauge\ncluster_handover_delay_seconds %g\n",
		health, alive_peers, epoch, changes, owners, ready ? 1 : 0, ready ? 1 : 0,
		c->cfg.wait_for_size, refused, drifting, c->insecure ? 1 : 0,
		(double)handover / 1000.0);
#define CTR(name, help, v)                                                                         \
	fprintf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %" PRIu64 "\n",  \
		(uint64_t)(v))
	CTR("cluster_transport_rx_packets_total", "Packets received.", st.rx_packets);
	CTR("cluster_transport_tx_packets_total", "Packets sent.", st.tx_packets);
	CTR("cluster_transport_rx_bytes_total", "Packet bytes received.", st.rx_bytes);
	CTR("cluster_transport_tx_bytes_total", "Packet bytes sent.", st.tx_bytes);
	CTR("cluster_transport_rx_packets_failed_total", "Packets and streams dropped as bad.",
	    rx_failed);
	CTR("cluster_transport_streams_rx_total", "Streams accepted.", st.rx_streams);
	CTR("cluster_transport_streams_tx_total", "Streams opened.", st.tx_streams);
	CTR("cluster_transport_stream_rx_bytes_total", "Stream bytes received.",
	    st.rx_stream_bytes);
	CTR("cluster_transport_stream_tx_bytes_total", "Stream bytes sent.", st.tx_stream_bytes);
	CTR("cluster_transport_stream_failures_total", "Streams that failed or timed out.",
	    st.stream_failures);
	CTR("cluster_gossip_messages_total", "Gossip messages piggybacked or sent.",
	    st.gossip_msgs);
	CTR("cluster_pushpull_total", "Full state exchanges.", st.pushpulls);
	CTR("cluster_backlog_pushpull_total",
	    "Extra push/pulls started while the gossip backlog exceeded 2 s (mass joins).",
	    st.backlog_syncs);
	CTR("cluster_suspicions_total", "Members this node started suspecting.", st.suspicions);
	CTR("cluster_refutations_total", "Times this node refuted a claim about itself.",
	    st.refutations);
	CTR("cluster_deaths_declared_total", "Members declared dead after suspicion.",
	    st.deaths_declared);
	CTR("cluster_owner_deaths_total",
	    "Owning members seen dead, their slots from when this node first suspected them "
	    "handed to the survivors.",
	    deaths_cut);
	CTR("cluster_name_conflicts_total", "Members seen claiming an existing name.",
	    st.name_conflicts);
	CTR("cluster_unreachable_probes_total",
	    "Members probed ahead of their turn because their port answered ICMP port "
	    "unreachable.",
	    st.unreachable_hints);
	CTR("cluster_indirect_probes_total", "Probes that needed indirect pings.",
	    st.indirect_probes);
	CTR("cluster_tcp_fallback_probes_total", "TCP fallback pings sent.", st.tcp_fallbacks);
	CTR("cluster_transport_streams_refused_total",
	    "Incoming streams cut for holding too much before they were whole.", streams_refused);
	CTR("cluster_serf_leave_intents_relayed_total",
	    "serf leave intents passed on (as serf agents do).", st.intents_relayed);
	CTR("cluster_serf_join_intents_received_total",
	    "serf join intents received (sent by a member that (re)joined).", st.join_intents_seen);
	fprintf(
	    out,
	    "# HELP cluster_serf_join_intent_last_ltime Newest Lamport time among the serf join "
	    "intents received (Starling sends unix milliseconds).\n"
	    "# TYPE cluster_serf_join_intent_last_ltime gauge\n"
	    "cluster_serf_join_intent_last_ltime %" PRIu64 "\n",
	    st.join_intent_ltime);
#undef CTR
	fprintf(out,
		"# HELP cluster_probes_total Direct probes by result.\n"
		"# TYPE cluster_probes_total counter\n"
		"cluster_probes_total{result=\"ok\"} %" PRIu64 "\n"
		"cluster_probes_total{result=\"failed\"} %" PRIu64 "\n",
		st.probes_ok, st.probes_failed);
	fprintf(out,
		"# HELP cluster_packets_dropped_total Packets and streams dropped, by reason.\n"
		"# TYPE cluster_packets_dropped_total counter\n");
	for (int i = 0; i < ML_DROP__N; i++)
		fprintf(out, "cluster_packets_dropped_total{reason=\"%s\"} %" PRIu64 "\n",
			ml_drop_names[i], st.dropped[i]);
}

void cluster_set_http_addr(struct cluster *c, const char *addr)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->http, sizeof(c->http), "%s",
		 addr && strlen(addr) < sizeof(c->http) ? addr : "");
	pthread_mutex_unlock(&c->lock);
}

int cluster_member_http(struct cluster *c, const char *name, char *out, size_t len)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; c->eng && i < ml_node_count(c->eng); i++) {
		const struct ml_node *m = ml_node_at(c->eng, i);
		struct member_tags t;
		const char *st;
		char host[256], gossip[64], *colon;
		unsigned port;

		if (strcmp(m->name, name))
			continue;
		st = member_state(m, &t);
		if (!strcmp(st, "dead") || !strcmp(st, "left")) {
			ret = -EHOSTDOWN;
			break;
		}
		if (!t.http[0] || parse_hostport(t.http, host, sizeof(host), &port)) {
			ret = -EADDRNOTAVAIL;
			break;
		}
		/* A wildcard listen address is reached at the member's gossip IP. */
		if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
			ml_addr_format(&m->addr, gossip, sizeof(gossip));
			colon = strrchr(gossip, ':');
			if (colon)
				*colon = 0;
			snprintf(out, len, "%s:%u", gossip, port);
		} else {
			snprintf(out, len, "%s", t.http);
		}
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}
