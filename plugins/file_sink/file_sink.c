/*
 * local.file_sink: appends received series as OpenMetrics-style text lines
 * to a file, with a size cap and rotation. See README.md for the format.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <starling/plugin.h>

#define WRITE_BUFFER (256 * 1024)

struct file_sink {
	const struct starling_host_api *api;
	starling_component *self;
	char *path;
	int64_t max_size;
	int64_t max_files;
	int64_t flush_ms;
	FILE *f;
	char *buf;
	int64_t size; /* bytes in the current file */
	starling_timer *flush_timer;
	starling_metric *m_samples, *m_stale, *m_bytes, *m_rotations, *m_errors, *m_profiles;
};

static const struct starling_config_key schema[] = {
    {.name = "path",
     .type = STARLING_CFG_STRING,
     .required = true,
     .help = "File to append to; a relative path is inside the component's state directory"},
    {.name = "max_size",
     .type = STARLING_CFG_BYTES,
     .default_value = "100MiB",
     .help = "Rotate when the file would grow beyond this size"},
    {.name = "max_files",
     .type = STARLING_CFG_INT,
     .default_value = "3",
     .help = "Rotated files kept (path.1 .. path.N); 0 keeps none"},
    {.name = "flush_interval",
     .type = STARLING_CFG_DURATION,
     .default_value = "5s",
     .help = "How often buffered lines are written to the file"},
    {0},
};

static int sink_open(struct file_sink *s)
{
	struct stat st;

	s->f = fopen(s->path, "a");
	if (!s->f)
		return -errno;
	if (setvbuf(s->f, s->buf, _IOFBF, WRITE_BUFFER)) {
		fclose(s->f);
		s->f = NULL;
		return -ENOMEM;
	}
	s->size = fstat(fileno(s->f), &st) == 0 ? (int64_t)st.st_size : 0;
	return 0;
}

static int sink_flush(struct file_sink *s)
{
	if (s->f && fflush(s->f)) {
		int e = errno;

		s->api->metric_add(s->m_errors, 1);
		s->api->log(s->self, STARLING_LOG_ERROR, "write %s: %s", s->path, strerror(e));
		s->api->set_health(s->self, false, strerror(e));
		return -e;
	}
	return 0;
}

static int sink_rotate(struct file_sink *s)
{
	size_t len = strlen(s->path) + 24;
	char *from = malloc(len), *to = malloc(len);
	int ret;

	if (!from || !to) {
		free(from);
		free(to);
		return -ENOMEM;
	}
	ret = sink_flush(s);
	fclose(s->f);
	s->f = NULL;
	if (s->max_files <= 0) {
		unlink(s->path);
	} else {
		snprintf(to, len, "%s.%lld", s->path, (long long)s->max_files);
		unlink(to);
		for (int64_t i = s->max_files - 1; i >= 1; i--) {
			snprintf(from, len, "%s.%lld", s->path, (long long)i);
			snprintf(to, len, "%s.%lld", s->path, (long long)(i + 1));
			rename(from, to);
		}
		snprintf(to, len, "%s.1", s->path);
		rename(s->path, to);
	}
	free(from);
	free(to);
	s->api->metric_add(s->m_rotations, 1);
	if (!ret)
		ret = sink_open(s);
	return ret;
}

static void on_flush(void *arg)
{
	struct file_sink *s = arg;

	if (sink_flush(s) == 0)
		s->api->set_health(s->self, true, NULL);
}

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	struct file_sink *s = calloc(1, sizeof(*s));
	const char *path;
	int ret;

	if (!s)
		return -ENOMEM;
	s->api = api;
	s->self = self;
	if ((ret = api->config_string(cfg, "path", &path)) ||
	    (ret = api->config_bytes(cfg, "max_size", &s->max_size)) ||
	    (ret = api->config_int(cfg, "max_files", &s->max_files)) ||
	    (ret = api->config_duration_ms(cfg, "flush_interval", &s->flush_ms)))
		goto out_free;
	if (!path[0] || s->max_size < 4096 || s->max_files < 0 || s->max_files > 1000 ||
	    s->flush_ms < 10) {
		api->log(self, STARLING_LOG_ERROR,
			 "%s: need a non-empty path, max_size >= 4096, max_files 0..1000, "
			 "flush_interval >= 10ms",
			 api->config_where(cfg));
		ret = -EINVAL;
		goto out_free;
	}
	if (path[0] == '/') {
		s->path = strdup(path);
	} else {
		const char *dir = api->state_dir(self);

		if (!dir) {
			ret = -EIO;
			goto out_free;
		}
		if (asprintf(&s->path, "%s/%s", dir, path) < 0)
			s->path = NULL;
	}
	s->buf = malloc(WRITE_BUFFER);
	if (!s->path || !s->buf) {
		ret = -ENOMEM;
		goto out_free;
	}
	s->m_samples = api->metric_register(self, STARLING_SELF_COUNTER,
					    "starling_file_sink_samples_written_total",
					    "Samples appended to the file.", NULL);
	s->m_stale = api->metric_register(self, STARLING_SELF_COUNTER,
					  "starling_file_sink_stale_markers_written_total",
					  "Staleness markers appended to the file.", NULL);
	s->m_bytes = api->metric_register(self, STARLING_SELF_COUNTER,
					  "starling_file_sink_bytes_written_total",
					  "Bytes appended to the file.", NULL);
	s->m_rotations =
	    api->metric_register(self, STARLING_SELF_COUNTER, "starling_file_sink_rotations_total",
				 "Times the file was rotated.", NULL);
	s->m_errors =
	    api->metric_register(self, STARLING_SELF_COUNTER,
				 "starling_file_sink_write_errors_total", "Failed writes.", NULL);
	s->m_profiles = api->metric_register(self, STARLING_SELF_COUNTER,
					     "starling_file_sink_profiles_written_total",
					     "Profile summary lines appended to the file.", NULL);
	*out = s;
	return 0;
out_free:
	if (ret == -ENOENT || ret == -EINVAL)
		api->log(self, STARLING_LOG_ERROR, "invalid configuration at %s",
			 api->config_where(cfg));
	free(s->path);
	free(s->buf);
	free(s);
	return ret;
}

static int start(void *inst)
{
	struct file_sink *s = inst;
	int ret = sink_open(s);

	if (ret) {
		s->api->log(s->self, STARLING_LOG_ERROR, "open %s: %s", s->path, strerror(-ret));
		return ret;
	}
	s->flush_timer = s->api->timer_start(s->self, s->flush_ms, s->flush_ms, on_flush, s);
	if (!s->flush_timer) {
		fclose(s->f);
		s->f = NULL;
		return -ENOMEM;
	}
	s->api->log(s->self, STARLING_LOG_INFO, "writing to %s", s->path);
	return 0;
}

static int stop(void *inst)
{
	struct file_sink *s = inst;
	int ret;

	if (s->flush_timer) {
		s->api->timer_cancel(s->self, s->flush_timer);
		s->flush_timer = NULL;
	}
	ret = sink_flush(s);
	if (s->f && fclose(s->f) && !ret)
		ret = -errno;
	s->f = NULL;
	return ret;
}

static void destroy(void *inst)
{
	struct file_sink *s = inst;

	if (!s)
		return;
	if (s->f)
		fclose(s->f);
	free(s->path);
	free(s->buf);
	free(s);
}

static void put_escaped(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void put_value(FILE *f, double v)
{
	char buf[40];
	double back;

	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	/* Shortest form that reads back to the same double. */
	snprintf(buf, sizeof(buf), "%.15g", v);
	back = strtod(buf, NULL);
	if (back != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, f);
}

static bool is_stale(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits == STARLING_STALE_NAN_BITS;
}

/* Series name and labels once into a small buffer: "name{a="b"}". */
static char *series_text(const struct starling_series *se, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	const char *name = NULL;
	bool first = true;

	if (!f)
		return NULL;
	for (size_t i = 0; i < se->n_labels; i++)
		if (se->labels[i].name && !strcmp(se->labels[i].name, "__name__"))
			name = se->labels[i].value;
	fputs(name ? name : "", f);
	fputc('{', f);
	for (size_t i = 0; i < se->n_labels; i++) {
		const struct starling_label *l = &se->labels[i];

		if (!l->name || !l->value || !strcmp(l->name, "__name__"))
			continue;
		fprintf(f, "%s%s=\"", first ? "" : ",", l->name);
		put_escaped(f, l->value);
		fputc('"', f);
		first = false;
	}
	fputc('}', f);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int receive_series(void *inst, const struct starling_series_batch *b)
{
	struct file_sink *s = inst;
	uint64_t samples = 0, stale = 0;
	int64_t written = 0;

	if (!s->f)
		return -EIO;
	for (size_t i = 0; i < b->n_series; i++) {
		const struct starling_series *se = &b->series[i];
		size_t len = 0;
		char *head = series_text(se, &len);

		if (!head)
			return -ENOMEM;
		for (size_t k = 0; k < se->n_samples; k++) {
			long before = ftell(s->f);
			long after;

			if (s->size + (int64_t)len + 64 > s->max_size && s->size > 0) {
				int ret = sink_rotate(s);

				if (ret) {
					free(head);
					s->api->log(s->self, STARLING_LOG_ERROR, "rotate %s: %s",
						    s->path, strerror(-ret));
					s->api->metric_add(s->m_errors, 1);
					return ret;
				}
				before = ftell(s->f);
			}
			fwrite(head, 1, len, s->f);
			fputc(' ', s->f);
			put_value(s->f, se->values[k]);
			fprintf(s->f, " %lld", (long long)se->timestamps_ms[k]);
			if (is_stale(se->values[k])) {
				fputs(" # stale", s->f);
				stale++;
			} else {
				samples++;
			}
			fputc('\n', s->f);
			after = ftell(s->f);
			if (before >= 0 && after >= before) {
				s->size += after - before;
				written += after - before;
			}
		}
		free(head);
	}
	if (ferror(s->f)) {
		clearerr(s->f);
		s->api->metric_add(s->m_errors, 1);
		s->api->set_health(s->self, false, "write error");
		return -EIO;
	}
	s->api->metric_add(s->m_samples, (double)samples);
	s->api->metric_add(s->m_stale, (double)stale);
	s->api->metric_add(s->m_bytes, (double)written);
	return 0;
}

static int receive_profile(void *inst, const struct starling_profile *p)
{
	struct file_sink *s = inst;
	struct starling_series se = {.labels = p->labels, .n_labels = p->n_labels};
	size_t len = 0;
	char *head;
	int n;

	if (!s->f)
		return -EIO;
	head = series_text(&se, &len);
	if (!head)
		return -ENOMEM;
	n = fprintf(s->f, "# profile %s bytes=%zu start_ms=%lld end_ms=%lld\n", head, p->len,
		    (long long)p->start_ms, (long long)p->end_ms);
	free(head);
	if (n < 0)
		return -EIO;
	s->size += n;
	s->api->metric_add(s->m_profiles, 1);
	s->api->metric_add(s->m_bytes, n);
	return 0;
}

static const struct starling_component_type file_sink_type = {
    STARLING_TYPE_HEAD,
    .name = "local.file_sink",
    .help = "Append received series to a local file (OpenMetrics-style lines), with rotation",
    .accepts = STARLING_ACCEPTS_SERIES | STARLING_ACCEPTS_PROFILE,
    .schema = schema,
    .create = create,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .receive_series = receive_series,
    .receive_profile = receive_profile,
};

static const struct starling_component_type *const types[] = {&file_sink_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD, .name = "file_sink", .version = STARLING_VERSION,
    .types = types,	      .n_types = 1,
};

STARLING_PLUGIN(descriptor)
