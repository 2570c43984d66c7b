/*
 * discovery.file: Prometheus file_sd as an Alloy-style component. See
 * README.md. Three parts: the component (config, lifecycle, metrics), the
 * scan (glob, read, parse, publish) and the watcher (inotify thread).
 */
#ifndef DFILE_H
#define DFILE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <starling/plugin.h>
#include <starling/targetgroup.h>

extern const struct starling_component_type discovery_file_type;

/* What we know of one file the patterns matched. */
struct dfile_file {
	char *path;
	struct starling_tgroups groups; /* last good groups (kept on errors) */
	bool bad;			/* the last read failed */
	bool seen;			/* matched by the current scan */
	char err[320];			/* the last error, for health */
	/* stat of the last read, to skip unchanged files */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int64_t read_at_s; /* wall clock of the last read */
	size_t empty;	   /* targets without an address in groups (counted once) */
	starling_metric *m_mtime;
};

struct dfile_watch; /* dfile_watch.c */

struct dfile {
	const struct starling_host_api *api;
	starling_component *self;
	char **patterns;
	size_t n_patterns;
	int64_t refresh_ms;

	/* Guards everything below: scans run from the refresh timer, the
	 * watcher thread and start(). */
	pthread_mutex_t mu;
	struct dfile_file *files; /* sorted by path */
	size_t n_files;
	struct starling_target_builder out; /* the last published set */
	uint64_t out_hash;
	bool published;

	struct dfile_watch *watch;
	starling_timer *timer;

	starling_metric *m_read_errors, *m_watch_errors, *m_scan_sum, *m_scan_count, *m_targets,
	    *m_dropped, *m_updates;
};

/* Check one `files` pattern like Prometheus (one '*' at most, in the last
 * path segment; .json/.yml/.yaml in any of the three spellings). */
bool dfile_pattern_ok(const char *pattern);
/* Rescan every pattern, reread changed files and publish if the target
 * set changed (or was never published). Takes d->mu. */
void dfile_scan(struct dfile *d);
/* Free the per-file state. */
void dfile_files_free(struct dfile *d);

/* Watch each pattern's directory; on any change call dfile_scan() from a
 * thread of our own. Returns NULL when inotify is unavailable (polling
 * still works); errors are logged and counted. */
struct dfile_watch *dfile_watch_start(struct dfile *d);
/* Add watches for directories that could not be watched before. */
void dfile_watch_retry(struct dfile *d, struct dfile_watch *w);
void dfile_watch_stop(struct dfile_watch *w);

#endif
