/*
 * discovery.file scan: expand the patterns, reread files that changed,
 * keep each file's last good groups when it turns bad, and publish the
 * flattened target set when it differs from the last one.
 *
 * Upstream behaviour followed (Prometheus discovery/file/file.go):
 * patterns are Go filepath.Glob patterns (a leading '.' is matched by '*'),
 * every file's groups get __meta_filepath (the path as the glob returned
 * it), a file that fails to read or parse keeps its previous groups and
 * counts prometheus_sd_file_read_errors_total, a file that vanished drops
 * its groups. Unlike Prometheus, a file whose stat (device, inode, size,
 * mtime, ctime) is unchanged since it was read, and whose mtime is not
 * within a second of that read (a write in the same timestamp tick could
 * hide), is not read again: its last result stands.
 */
#include "dfile.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <starling/relabel.h>

/* Files larger than this are refused (a read error), bounding memory. */
#define DFILE_MAX_BYTES (256u << 20)

bool dfile_pattern_ok(const char *p)
{
	/* ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
	const char *star = strchr(p, '*'), *dot = strrchr(p, '.');
	static const char *const ext[] = {"json", "yml", "yaml", "JSON", "YML", "YAML"};
	bool ext_ok = false;

	if (star && (strchr(star + 1, '*') || strchr(star + 1, '/')))
		return false;
	if (!dot || (star && dot < star))
		return false;
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (strcmp(dot + 1, ext[i]) == 0)
			ext_ok = true;
	return ext_ok;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file the patterns match, sorted, without repeats. */
static int list_files(struct dfile *d, char ***out, size_t *n_out)
{
	char **v = NULL;
	size_t n = 0, cap = 0, o = 0;

	for (size_t i = 0; i < d->n_patterns; i++) {
		glob_t g;
		int rc = glob(d->patterns[i], GLOB_PERIOD, NULL, &g);

		if (rc == GLOB_NOMATCH)
			continue;
		if (rc) {
			/* GLOB_ABORTED/NOSPACE: Prometheus logs and skips too */
			d->api->log(d->self, STARLING_LOG_ERROR, "expanding %s: %s", d->patterns[i],
				    rc == GLOB_NOSPACE ? "out of memory" : "read error");
			continue;
		}
		for (size_t j = 0; j < g.gl_pathc; j++) {
			if (n == cap) {
				char **nv;

				cap = cap ? cap * 2 : 16;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv)
					break;
				v = nv;
			}
			if (n < cap && (v[n] = strdup(g.gl_pathv[j])) != NULL)
				n++;
		}
		globfree(&g);
	}
	if (n)
		qsort(v, n, sizeof(*v), path_cmp);
	for (size_t i = 0; i < n; i++) {
		if (o && strcmp(v[o - 1], v[i]) == 0)
			free(v[i]);
		else
			v[o++] = v[i];
	}
	*out = v;
	*n_out = o;
	return 0;
}

static void file_free(struct dfile_file *f)
{
	free(f->path);
	starling_tgroups_free(&f->groups);
}

void dfile_files_free(struct dfile *d)
{
	for (size_t i = 0; i < d->n_files; i++)
		file_free(&d->files[i]);
	free(d->files);
	d->files = NULL;
	d->n_files = 0;
}

static bool yaml_name(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot && (strcasecmp(dot, ".yml") == 0 || strcasecmp(dot, ".yaml") == 0);
}

/* Read and parse path into *g (empty on error, message in err). */
static int read_groups(const char *path, const struct stat *st, struct starling_tgroups *g,
		       char *err, size_t errlen)
{
	char perr[256];
	FILE *fp;
	char *buf;
	size_t len;
	int rc;

	starling_tgroups_init(g);
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if ((uint64_t)st->st_size > DFILE_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %u MiB", path, DFILE_MAX_BYTES >> 20);
		return -EFBIG;
	}
	fp = fopen(path, "rb");
	if (!fp) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	/* The file may grow between stat and read: read up to the cap + 1. */
	buf = malloc((size_t)st->st_size + 1);
	if (!buf) {
		fclose(fp);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	len = fread(buf, 1, (size_t)st->st_size, fp);
	if (ferror(fp)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		fclose(fp);
		free(buf);
		return rc;
	}
	fclose(fp);
	buf[len] = '\0';
	perr[0] = '\0';
	rc = yaml_name(path) ? starling_tgroups_parse_yaml(g, buf, len, perr, sizeof(perr))
			     : starling_tgroups_parse_json(g, buf, len, perr, sizeof(perr));
	free(buf);
	if (rc) {
		unsigned long line;
		int used = 0;

		/* "line N: msg" from the parser becomes "path:N: msg" */
		if (sscanf(perr, "line %lu: %n", &line, &used) == 1 && used > 0)
			snprintf(err, errlen, "%s:%lu: %s", path, line, perr + used);
		else
			snprintf(err, errlen, "%s: %s", path, perr);
		return rc;
	}
	rc = starling_tgroups_set_label(g, "__meta_filepath", path);
	if (rc) {
		snprintf(err, errlen, "%s: cannot set __meta_filepath", path);
		starling_tgroups_free(g);
	}
	return rc;
}

static bool same_stat(const struct dfile_file *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Unchanged for sure: same stat, and not modified within a second of the
 * last read (a write in the same timestamp tick would leave stat as is). */
static bool unchanged(const struct dfile_file *f, const struct stat *st)
{
	return same_stat(f, st) && st->st_mtim.tv_sec < f->read_at_s - 1 &&
	       st->st_ctim.tv_sec < f->read_at_s - 1;
}

static size_t count_empty(const struct starling_tgroups *g)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++)
		for (size_t j = 0; j < g->v[i].n_targets; j++)
			n += g->v[i].addrs[g->v[i].addr_off[j]] == '\0';
	return n;
}

/* Bring file f (new or known) up to date with the disk. */
static void refresh_file(struct dfile *d, struct dfile_file *f)
{
	const struct starling_host_api *api = d->api;
	struct starling_tgroups g;
	struct stat st;
	char old_err[sizeof(f->err)];
	bool again, same;
	int rc;

	f->seen = true;
	memcpy(old_err, f->err, sizeof(old_err));
	if (stat(f->path, &st) != 0) {
		rc = -errno;
		again = false;
		snprintf(f->err, sizeof(f->err), "%s: %s", f->path, strerror(-rc));
		/* Matched by the glob but gone or unreadable now: an error,
		 * last groups kept (the next scan drops it if it is gone). */
		goto bad;
	}
	if (f->read_at_s && unchanged(f, &st))
		return;
	/* read before and not changed since, as far as stat can tell: a file
	 * written less than a second ago is read again on every scan */
	same = f->read_at_s && same_stat(f, &st);
	again = f->bad && same;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
	f->read_at_s = api->now_ms() / 1000;
	if (f->m_mtime)
		api->metric_set(f->m_mtime,
				(double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
	rc = read_groups(f->path, &st, &g, f->err, sizeof(f->err));
	if (rc && again && strcmp(old_err, f->err) == 0)
		return; /* the same bad file read again: counted already */
	if (rc)
		goto bad;
	starling_tgroups_free(&f->groups);
	f->groups = g;
	if (f->bad)
		api->log(d->self, STARLING_LOG_INFO, "%s: read again successfully", f->path);
	f->bad = false;
	f->err[0] = '\0';
	{
		size_t empty = count_empty(&f->groups);

		/* counted once per version of the file, not per read */
		if (empty && !(same && empty == f->empty)) {
			api->metric_add(d->m_dropped, (double)empty);
			api->log(d->self, STARLING_LOG_WARN,
				 "%s: %zu target(s) without an address dropped", f->path, empty);
		}
		f->empty = empty;
	}
	return;
bad:
	f->bad = true;
	api->metric_add(d->m_read_errors, 1);
	api->log(d->self, STARLING_LOG_ERROR, "%s (keeping its last good targets)", f->err);
}

/* Merge the new file list into d->files (both sorted by path). */
static int update_files(struct dfile *d, char **paths, size_t n)
{
	struct dfile_file *v = calloc(n ? n : 1, sizeof(*v));
	size_t i = 0, j = 0, o = 0;

	if (!v)
		return -ENOMEM;
	while (i < d->n_files || j < n) {
		int c = i >= d->n_files ? 1 : j >= n ? -1 : strcmp(d->files[i].path, paths[j]);

		if (c < 0) { /* vanished: its groups go */
			if (d->files[i].m_mtime)
				d->api->metric_set(d->files[i].m_mtime, 0);
			file_free(&d->files[i++]);
		} else if (c == 0) {
			v[o++] = d->files[i++];
			free(paths[j++]);
		} else {
			struct starling_label l = {"filename", paths[j]};

			v[o].path = paths[j++];
			starling_tgroups_init(&v[o].groups);
			if (STARLING_API_HAS(d->api, metric_register_labels))
				v[o].m_mtime = d->api->metric_register_labels(
				    d->self, STARLING_SELF_GAUGE,
				    "prometheus_sd_file_mtime_seconds",
				    "Modification time of a file read by discovery.file", &l, 1);
			o++;
		}
	}
	free(d->files);
	d->files = v;
	d->n_files = o;
	return 0;
}

static void publish(struct dfile *d)
{
	const struct starling_host_api *api = d->api;
	struct starling_target_set set;
	uint64_t h;
	int rc = 0;

	starling_target_builder_clear(&d->out);
	for (size_t i = 0; i < d->n_files && !rc; i++)
		rc = starling_target_builder_add(&d->out, &d->files[i].groups);
	if (rc) {
		api->log(d->self, STARLING_LOG_ERROR, "out of memory building the target set");
		return;
	}
	starling_target_builder_view(&d->out, &set);
	h = starling_target_set_hash(&set);
	if (d->published && h == d->out_hash)
		return;
	rc = api->forward_targets(d->self, &set);
	if (rc) {
		api->log(d->self, STARLING_LOG_ERROR, "publishing %zu targets: %s", set.n_targets,
			 strerror(-rc));
		return;
	}
	d->published = true;
	d->out_hash = h;
	api->metric_set(d->m_targets, (double)set.n_targets);
	api->metric_add(d->m_updates, 1);
	api->log(d->self, STARLING_LOG_DEBUG, "published %zu targets", set.n_targets);
}

static void set_health(struct dfile *d)
{
	for (size_t i = 0; i < d->n_files; i++)
		if (d->files[i].bad) {
			d->api->set_health(d->self, false, d->files[i].err);
			return;
		}
	d->api->set_health(d->self, true, NULL);
}

void dfile_scan(struct dfile *d)
{
	const struct starling_host_api *api = d->api;
	int64_t t0 = api->monotonic_ms();
	char **paths = NULL;
	size_t n = 0;

	pthread_mutex_lock(&d->mu);
	if (d->watch)
		dfile_watch_retry(d, d->watch);
	list_files(d, &paths, &n);
	if (update_files(d, paths, n)) {
		for (size_t i = 0; i < n; i++)
			free(paths[i]);
		api->log(d->self, STARLING_LOG_ERROR, "out of memory listing files");
	} else {
		for (size_t i = 0; i < d->n_files; i++)
			refresh_file(d, &d->files[i]);
		publish(d);
		set_health(d);
	}
	free(paths);
	api->metric_add(d->m_scan_sum, (double)(api->monotonic_ms() - t0) / 1000.0);
	api->metric_add(d->m_scan_count, 1);
	pthread_mutex_unlock(&d->mu);
}
