/*
 * discovery.file watcher: one inotify descriptor watching the directory of
 * every pattern ("." when the pattern has none), as Prometheus watches them
 * with fsnotify (discovery/file/file.go). Any event starts a scan; events
 * that keep coming within DEBOUNCE_MS of each other (an editor writing a
 * file in several steps) are folded into one scan, at most MAX_DELAY_MS
 * after the first. A directory that cannot be watched (missing, no
 * permission) counts prometheus_sd_file_watcher_errors_total once and is
 * tried again at every scan; refresh_interval polling covers the gap.
 */
#include "dfile.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS  20
#define MAX_DELAY_MS 250
#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |        \
	 IN_DELETE_SELF | IN_MOVE_SELF)

struct dfile_watch {
	struct dfile *d;
	int ifd, efd;
	char **dirs;
	bool *failed; /* the last add failed (already counted) */
	size_t n_dirs;
	pthread_t thread;
	bool running;
};

static char *pattern_dir(const char *p)
{
	const char *slash = strrchr(p, '/');

	if (!slash)
		return strdup(".");
	if (slash == p)
		return strdup("/");
	return strndup(p, (size_t)(slash - p));
}

/* Read and discard pending events; true if there were any. */
static bool drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r > 0) {
			any = true;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return any;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watch_main(void *arg)
{
	struct dfile_watch *w = arg;
	struct pollfd p[2] = {{.fd = w->ifd, .events = POLLIN}, {.fd = w->efd, .events = POLLIN}};

	for (;;) {
		int64_t first;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!drain(w->ifd))
			continue;
		/* fold a burst of events into one scan */
		first = mono_ms();
		for (;;) {
			int64_t left = first + MAX_DELAY_MS - mono_ms();
			int r;

			if (left <= 0)
				break;
			r = poll(p, 2, (int)(left < DEBOUNCE_MS ? left : DEBOUNCE_MS));
			if (r <= 0 || p[1].revents)
				break;
			drain(w->ifd);
		}
		if (p[1].revents)
			break;
		dfile_scan(w->d);
	}
	return NULL;
}

void dfile_watch_retry(struct dfile *d, struct dfile_watch *w)
{
	for (size_t i = 0; i < w->n_dirs; i++) {
		/* Adding a watched directory again is a no-op that returns its
		 * descriptor; a directory deleted and created again gets a new
		 * watch. */
		int wd = inotify_add_watch(w->ifd, w->dirs[i], WATCH_MASK);

		if (wd >= 0) {
			if (w->failed[i])
				d->api->log(d->self, STARLING_LOG_INFO, "watching %s", w->dirs[i]);
			w->failed[i] = false;
		} else if (!w->failed[i]) {
			w->failed[i] = true;
			d->api->metric_add(d->m_watch_errors, 1);
			d->api->log(d->self, STARLING_LOG_WARN,
				    "cannot watch %s: %s (polling every refresh_interval)",
				    w->dirs[i], strerror(errno));
		}
	}
}

static void watch_free(struct dfile_watch *w)
{
	for (size_t i = 0; i < w->n_dirs; i++)
		free(w->dirs[i]);
	free(w->dirs);
	free(w->failed);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->efd >= 0)
		close(w->efd);
	free(w);
}

struct dfile_watch *dfile_watch_start(struct dfile *d)
{
	struct dfile_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->d = d;
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->dirs = calloc(d->n_patterns ? d->n_patterns : 1, sizeof(*w->dirs));
	w->failed = calloc(d->n_patterns ? d->n_patterns : 1, sizeof(*w->failed));
	if (w->ifd < 0 || w->efd < 0 || !w->dirs || !w->failed) {
		d->api->metric_add(d->m_watch_errors, 1);
		d->api->log(d->self, STARLING_LOG_WARN,
			    "inotify unavailable (%s): polling every refresh_interval only",
			    strerror(errno));
		watch_free(w);
		return NULL;
	}
	for (size_t i = 0; i < d->n_patterns; i++) {
		char *dir = pattern_dir(d->patterns[i]);
		bool dup = false;

		for (size_t j = 0; dir && j < w->n_dirs && !dup; j++)
			dup = strcmp(w->dirs[j], dir) == 0;
		if (!dir || dup)
			free(dir);
		else
			w->dirs[w->n_dirs++] = dir;
	}
	dfile_watch_retry(d, w);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		d->api->log(d->self, STARLING_LOG_WARN,
			    "cannot start the watcher thread: polling every refresh_interval only");
		watch_free(w);
		return NULL;
	}
	w->running = true;
	return w;
}

void dfile_watch_stop(struct dfile_watch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (w->running) {
		while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(w->thread, NULL);
	}
	watch_free(w);
}
