/* UDP/TCP transport and threads for the engine; see net.h. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define MAX_CONNS	 128 /* memberlist maxPushPullRequests */
#define MAX_STREAM_BYTES (ML_MAX_PUSH_BYTES + 4096)
/* Bytes all incoming streams may hold before they are whole (and so before
 * a key could be checked): a push/pull of 10,000 members is ~2 MiB, so one
 * legitimate stream always fits, while 128 streams cannot pin 2.5 GiB. */
#define IN_STREAM_BUDGET (8u << 20)
#define IN_STREAM_MAX	 (4u << 20)

/* The UDP receive buffer: one per ml_net, used by its UDP thread alone
 * (not thread-local storage, which every thread of the process carries). */
#define UDP_BUF 65536

struct ml_net {
	int udp, tcp, stop_fd;
	uint8_t *udp_buf; /* UDP_BUF bytes */
	struct ml_net_ops ops;
	pthread_t udp_thr, tcp_thr, tick_thr;
	bool started;
	pthread_mutex_t mu; /* guards the fields below */
	pthread_cond_t cond;
	bool stopping, kicked;
	int inflight;
	size_t in_bytes;	  /* held by incoming streams (IN_STREAM_BUDGET) */
	uint64_t streams_refused; /* cut: over IN_STREAM_MAX or the budget */
	uint64_t rx_stream_failed;
	/* atomics: bumped from any thread, engine lock or not */
	uint64_t tx_failed, decoded;
};

/* Reserve (delta > 0) or release room for incoming stream bytes; false
 * (nothing reserved) when it does not fit. */
static bool in_budget(struct ml_net *n, size_t had, size_t now_len)
{
	bool ok = true;

	pthread_mutex_lock(&n->mu);
	if (now_len > IN_STREAM_MAX || n->in_bytes - had + now_len > IN_STREAM_BUDGET) {
		ok = false;
		n->streams_refused++;
	} else {
		n->in_bytes = n->in_bytes - had + now_len;
	}
	pthread_mutex_unlock(&n->mu);
	return ok;
}

uint64_t ml_net_streams_refused(struct ml_net *n)
{
	uint64_t v;

	pthread_mutex_lock(&n->mu);
	v = n->streams_refused;
	pthread_mutex_unlock(&n->mu);
	return v;
}

void ml_net_stats(struct ml_net *n, struct ml_net_stats *st)
{
	pthread_mutex_lock(&n->mu);
	st->streams_refused = n->streams_refused;
	st->rx_stream_failed = n->rx_stream_failed;
	st->open_streams = n->inflight;
	pthread_mutex_unlock(&n->mu);
	st->tx_failed = __atomic_load_n(&n->tx_failed, __ATOMIC_RELAXED);
	st->decoded = __atomic_load_n(&n->decoded, __ATOMIC_RELAXED);
}

int64_t ml_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static socklen_t to_sockaddr(const struct ml_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->len == 16) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(a->port);
	memcpy(&s4->sin_addr, a->ip, 4);
	return sizeof(*s4);
}

static void from_sockaddr(const struct sockaddr_storage *ss, struct ml_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		/* v4-mapped addresses stay v4 so they match alive messages */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(a->ip, (const uint8_t *)&s6->sin6_addr + 12, 4);
			a->len = 4;
		} else {
			memcpy(a->ip, &s6->sin6_addr, 16);
			a->len = 16;
		}
		a->port = ntohs(s6->sin6_port);
		return;
	}
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	memcpy(a->ip, &s4->sin_addr, 4);
	a->len = 4;
	a->port = ntohs(s4->sin_port);
}

int ml_net_open(const struct ml_addr *bind_addr, struct ml_net **out, struct ml_addr *bound,
		char *err, size_t errlen)
{
	struct ml_net *n = calloc(1, sizeof(*n));
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, rc;
	char as[64];

	if (!n)
		return -ENOMEM;
	n->udp_buf = malloc(UDP_BUF);
	if (!n->udp_buf) {
		free(n);
		return -ENOMEM;
	}
	n->udp = n->tcp = n->stop_fd = -1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cond, NULL);
	ml_addr_format(bind_addr, as, sizeof(as));
	sl = to_sockaddr(bind_addr, &ss);
	n->tcp = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	n->udp = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->tcp < 0 || n->udp < 0 || n->stop_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(n->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(n->tcp, (struct sockaddr *)&ss, sl) || listen(n->tcp, 128)) {
		rc = -errno;
		snprintf(err, errlen, "cannot bind TCP %s: %s", as, strerror(errno));
		goto fail;
	}
	/* port 0: use the TCP port for UDP too */
	sl = sizeof(ss);
	getsockname(n->tcp, (struct sockaddr *)&ss, &sl);
	if (bind(n->udp, (struct sockaddr *)&ss, sl)) {
		rc = -errno;
		snprintf(err, errlen, "cannot bind UDP %s: %s", as, strerror(errno));
		goto fail;
	}
	int bufsz = 2 * 1024 * 1024;

	setsockopt(n->udp, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	/* ICMP errors for our datagrams on the error queue (udp_main): a port
	 * unreachable names a crashed member on a live host (best effort) */
	if (ss.ss_family == AF_INET6)
		setsockopt(n->udp, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	setsockopt(n->udp, IPPROTO_IP, IP_RECVERR, &one, sizeof(one)); /* also v4-mapped */
	from_sockaddr(&ss, bound);
	*out = n;
	return 0;
fail:
	ml_net_stop(n);
	return rc;
}

static void send_packet(void *ctx, const struct ml_addr *to, const uint8_t *buf, size_t len)
{
	struct ml_net *n = ctx;
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(to, &ss);

	/* best effort, like UDP itself; never blocks the engine. With
	 * IP_RECVERR an ICMP error for an earlier datagram is also reported
	 * by the next send, which then sends nothing: send once more */
	for (int tries = 0; tries < 2; tries++) {
		if (sendto(n->udp, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss,
			   sl) >= 0)
			return;
		if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH &&
		    errno != EHOSTDOWN)
			break;
	}
	__atomic_fetch_add(&n->tx_failed, 1, __ATOMIC_RELAXED);
}

static bool is_stopping(struct ml_net *n)
{
	bool s;

	pthread_mutex_lock(&n->mu);
	s = n->stopping;
	pthread_mutex_unlock(&n->mu);
	return s;
}

/* Wait for fd to be ready for events, or the deadline, or stop. */
static int wait_fd(struct ml_net *n, int fd, short events, int64_t deadline)
{
	struct pollfd p[2] = {{fd, events, 0}, {n->stop_fd, POLLIN, 0}};
	int64_t left = deadline - ml_now_ms();

	if (left <= 0)
		return -ETIMEDOUT;
	int rc = poll(p, 2, (int)left);

	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	if (p[1].revents)
		return -ECANCELED;
	return 0;
}

static int write_all(struct ml_net *n, int fd, const uint8_t *p, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return -errno;
			int rc = wait_fd(n, fd, POLLOUT, deadline);

			if (rc)
				return rc;
			continue;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Append everything readable now to buf (waiting for at least one byte):
 * 0 on data, -EPIPE at EOF. Draining before returning keeps the number of
 * re-parses of a long stream small. */
static int read_some(struct ml_net *n, int fd, struct mp_buf *buf, int64_t deadline)
{
	uint8_t tmp[16384];
	bool got = false;

	for (;;) {
		ssize_t r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);

		if (r > 0) {
			if (buf->len + (size_t)r > MAX_STREAM_BYTES)
				return -EMSGSIZE;
			mp_put(buf, tmp, (size_t)r);
			if (buf->oom)
				return -ENOMEM;
			got = true;
			continue;
		}
		if (got)
			return 0;
		if (r == 0)
			return -EPIPE;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int rc = wait_fd(n, fd, POLLIN, deadline);

		if (rc)
			return rc;
	}
}

struct out_stream {
	struct ml_net *n;
	uint64_t id;
	struct ml_addr to;
	uint8_t *buf;
	size_t len;
	int64_t timeout;
};

static void thread_done(struct ml_net *n)
{
	pthread_mutex_lock(&n->mu);
	n->inflight--;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
}

static void *out_stream_main(void *arg)
{
	struct out_stream *s = arg;
	struct ml_net *n = s->n;
	int64_t deadline = ml_now_ms() + s->timeout;
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(&s->to, &ss);
	struct mp_buf in;
	bool ok = false;
	int fd, rc;

	mp_init(&in);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto report;
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)
		goto report;
	if (wait_fd(n, fd, POLLOUT, deadline))
		goto report;
	int soerr = 0;
	socklen_t el = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) || soerr)
		goto report;
	if (write_all(n, fd, s->buf, s->len, deadline))
		goto report;
	for (;;) {
		rc = read_some(n, fd, &in, deadline);
		if (rc && rc != -EPIPE)
			break;
		/* thread-safe: reads only the engine's immutable config */
		int c = ml_stream_complete(*n->ops.eng, in.p, in.len);

		if (c == 0) {
			ok = true;
			break;
		}
		if (c != -EAGAIN || rc == -EPIPE)
			break;
	}
report:
	if (fd >= 0)
		close(fd);
	/* decrypt, decompress and parse the reply before taking the lock */
	struct ml_inbound *dec = NULL;

	if (ok && ml_decode_stream(*n->ops.eng, in.p, in.len, &dec) == 0)
		__atomic_fetch_add(&n->decoded, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(n->ops.lock);
	if (!is_stopping(n)) {
		int64_t now = ml_now_ms();

		ml_apply_stream_result(*n->ops.eng, s->id, dec, now);
		n->ops.after(n->ops.arg, now);
	}
	pthread_mutex_unlock(n->ops.lock);
	ml_inbound_free(dec);
	mp_free(&in);
	free(s->buf);
	free(s);
	thread_done(n);
	return NULL;
}

static bool spawn(struct ml_net *n, void *(*fn)(void *), void *arg)
{
	pthread_attr_t at;
	pthread_t t;
	bool ok;

	pthread_mutex_lock(&n->mu);
	if (n->stopping || n->inflight >= MAX_CONNS) {
		pthread_mutex_unlock(&n->mu);
		return false;
	}
	n->inflight++;
	pthread_mutex_unlock(&n->mu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	ok = pthread_create(&t, &at, fn, arg) == 0;
	pthread_attr_destroy(&at);
	if (!ok)
		thread_done(n);
	return ok;
}

static void send_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *buf,
			size_t len, int64_t timeout)
{
	struct ml_net *n = ctx;
	struct out_stream *s = calloc(1, sizeof(*s));

	if (s)
		s->buf = malloc(len);
	if (!s || !s->buf) {
		if (s)
			free(s);
		return; /* the engine expires the pending stream */
	}
	memcpy(s->buf, buf, len);
	s->n = n;
	s->id = id;
	s->to = *to;
	s->len = len;
	s->timeout = timeout;
	if (!spawn(n, out_stream_main, s)) {
		free(s->buf);
		free(s);
	}
}

struct ml_transport ml_net_transport(struct ml_net *n)
{
	return (struct ml_transport){
	    .ctx = n, .send_packet = send_packet, .send_stream = send_stream};
}

struct in_conn {
	struct ml_net *n;
	int fd;
	struct ml_addr from;
	int64_t timeout;
};

static void *in_conn_main(void *arg)
{
	struct in_conn *c = arg;
	struct ml_net *n = c->n;
	int64_t deadline = ml_now_ms() + c->timeout;
	struct mp_buf in;
	size_t held = 0;

	bool good = false;

	mp_init(&in);
	for (;;) {
		uint8_t *reply = NULL;
		size_t rlen = 0;
		int rc = read_some(n, c->fd, &in, deadline), hr;
		struct ml_inbound *dec = NULL;

		if (rc && rc != -EPIPE)
			break; /* timeout (stalled stream), error or stop */
		if (!in_budget(n, held, in.len))
			break;
		held = in.len;
		/* Decrypt, decompress and parse without the engine lock (the
		 * decoder reads only immutable config): a large or slow
		 * stream must not stall probing and gossip. Only applying the
		 * result takes the lock. */
		hr = ml_decode_stream(*n->ops.eng, in.p, in.len, &dec);
		if (hr == -EAGAIN && rc != -EPIPE)
			continue;
		if (hr)
			break; /* cut short, or out of memory */
		__atomic_fetch_add(&n->decoded, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(n->ops.lock);
		if (is_stopping(n)) {
			pthread_mutex_unlock(n->ops.lock);
			ml_inbound_free(dec);
			break;
		}
		int64_t now = ml_now_ms();

		hr = ml_apply_stream(*n->ops.eng, &c->from, dec, &reply, &rlen, now);
		n->ops.after(n->ops.arg, now);
		pthread_mutex_unlock(n->ops.lock);
		ml_inbound_free(dec);
		good = hr == 0;
		if (hr == 0 && reply)
			write_all(n, c->fd, reply, rlen, deadline);
		free(reply);
		break;
	}
	if (!good) {
		pthread_mutex_lock(&n->mu);
		n->rx_stream_failed++;
		pthread_mutex_unlock(&n->mu);
	}
	close(c->fd);
	in_budget(n, held, 0);
	mp_free(&in);
	free(c);
	thread_done(n);
	return NULL;
}

static void *tcp_main(void *arg)
{
	struct ml_net *n = arg;

	for (;;) {
		struct pollfd p[2] = {{n->tcp, POLLIN, 0}, {n->stop_fd, POLLIN, 0}};

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(n->tcp, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			continue;
		struct in_conn *c = calloc(1, sizeof(*c));

		if (!c) {
			close(fd);
			continue;
		}
		c->n = n;
		c->fd = fd;
		from_sockaddr(&ss, &c->from);
		c->timeout = n->ops.tcp_timeout_ms > 0 ? n->ops.tcp_timeout_ms : 10000;
		if (!spawn(n, in_conn_main, c)) {
			close(fd);
			free(c);
		}
	}
	return NULL;
}

/* Drain the socket's error queue; for each ICMP port unreachable (a
 * closed port: the process there is gone), hint the engine. */
static void udp_errors(struct ml_net *n)
{
	for (;;) {
		struct sockaddr_storage ss;
		char ctl[512], byte;
		struct iovec iov = {&byte, 1};
		struct msghdr mh = {.msg_name = &ss,
				    .msg_namelen = sizeof(ss),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};
		bool refused = false;
		struct ml_addr to;

		memset(&ss, 0, sizeof(ss));
		if (recvmsg(n->udp, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			const struct sock_extended_err *ee = (const void *)CMSG_DATA(c);

			if ((c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) &&
			    (c->cmsg_level != IPPROTO_IPV6 || c->cmsg_type != IPV6_RECVERR))
				continue;
			/* port unreachable: ICMP 3/3, ICMPv6 1/4 */
			if ((ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_type == 3 &&
			     ee->ee_code == 3) ||
			    (ee->ee_origin == SO_EE_ORIGIN_ICMP6 && ee->ee_type == 1 &&
			     ee->ee_code == 4))
				refused = true;
		}
		if (!refused || mh.msg_namelen == 0)
			continue;
		from_sockaddr(&ss, &to);
		pthread_mutex_lock(n->ops.lock);
		int64_t now = ml_now_ms();

		ml_hint_unreachable(*n->ops.eng, &to, now);
		n->ops.after(n->ops.arg, now);
		pthread_mutex_unlock(n->ops.lock);
		ml_net_kick(n);
	}
}

static void *udp_main(void *arg)
{
	struct ml_net *n = arg;
	uint8_t *buf = n->udp_buf;

	for (;;) {
		struct pollfd p[2] = {{n->udp, POLLIN, 0}, {n->stop_fd, POLLIN, 0}};

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents & POLLERR)
			udp_errors(n);
		if (!(p[0].revents & POLLIN))
			continue;
		for (;;) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			ssize_t r = recvfrom(n->udp, buf, UDP_BUF, MSG_DONTWAIT,
					     (struct sockaddr *)&ss, &sl);
			struct ml_addr from;

			if (r < 0 && (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
				      errno == ENETUNREACH || errno == EHOSTDOWN))
				continue; /* an ICMP error reported here: the datagram waits */
			if (r < 0)
				break;
			from_sockaddr(&ss, &from);
			/* decrypt, check, decompress and split without the lock */
			struct ml_inbound *dec = ml_decode_packet(*n->ops.eng, buf, (size_t)r);

			if (!dec)
				continue;
			__atomic_fetch_add(&n->decoded, 1, __ATOMIC_RELAXED);
			pthread_mutex_lock(n->ops.lock);
			int64_t now = ml_now_ms();

			ml_apply_packet(*n->ops.eng, &from, dec, now);
			n->ops.after(n->ops.arg, now);
			pthread_mutex_unlock(n->ops.lock);
			ml_inbound_free(dec);
		}
	}
	return NULL;
}

static void *tick_main(void *arg)
{
	struct ml_net *n = arg;

	for (;;) {
		int64_t now, next;

		pthread_mutex_lock(n->ops.lock);
		now = ml_now_ms();
		next = ml_tick(*n->ops.eng, now);
		n->ops.after(n->ops.arg, now);
		pthread_mutex_unlock(n->ops.lock);
		n->ops.idle(n->ops.arg);

		/* sleep until the engine's next deadline, at most 100 ms (the
		 * front end's join/ready timers are checked at that pace) */
		if (next > now + 100)
			next = now + 100;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t wait_ms = next - ml_now_ms();

		if (wait_ms < 1)
			wait_ms = 1;
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&n->mu);
		while (!n->stopping && !n->kicked) {
			if (pthread_cond_timedwait(&n->cond, &n->mu, &ts) == ETIMEDOUT)
				break;
		}
		n->kicked = false;
		bool stop = n->stopping;

		pthread_mutex_unlock(&n->mu);
		if (stop)
			break;
	}
	return NULL;
}

int ml_net_start(struct ml_net *n, const struct ml_net_ops *ops)
{
	pthread_condattr_t ca;

	n->ops = *ops;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&n->cond);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&n->udp_thr, NULL, udp_main, n))
		return -EAGAIN;
	if (pthread_create(&n->tcp_thr, NULL, tcp_main, n)) {
		ml_net_stop(n);
		return -EAGAIN;
	}
	if (pthread_create(&n->tick_thr, NULL, tick_main, n)) {
		ml_net_stop(n);
		return -EAGAIN;
	}
	n->started = true;
	return 0;
}

void ml_net_kick(struct ml_net *n)
{
	pthread_mutex_lock(&n->mu);
	n->kicked = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
}

void ml_net_stop(struct ml_net *n)
{
	uint64_t one = 1;

	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
	if (n->stop_fd >= 0)
		(void)!write(n->stop_fd, &one, sizeof(one));
	if (n->started) {
		pthread_join(n->udp_thr, NULL);
		pthread_join(n->tcp_thr, NULL);
		pthread_join(n->tick_thr, NULL);
	}
	/* detached stream threads see stop_fd and finish promptly */
	pthread_mutex_lock(&n->mu);
	while (n->inflight > 0)
		pthread_cond_wait(&n->cond, &n->mu);
	pthread_mutex_unlock(&n->mu);
	if (n->udp >= 0)
		close(n->udp);
	if (n->tcp >= 0)
		close(n->tcp);
	if (n->stop_fd >= 0)
		close(n->stop_fd);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->mu);
	free(n->udp_buf);
	free(n);
}
