/*
 * Preparing configuration text for libconfig: natural "__" names and
 * @include files (see config_source.h).
 */
#include "config_source.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define INCLUDE_DEPTH_MAX 10
#define SOURCE_MAX_BYTES  (16 << 20)

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '*' || c == '-';
}

static char *read_all(const char *path, size_t *len, int *err)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		*err = -errno;
		return NULL;
	}
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > SOURCE_MAX_BYTES + 8192 || !(nb = realloc(buf, cap))) {
				*err = cap > SOURCE_MAX_BYTES + 8192 ? -EFBIG : -ENOMEM;
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		*err = -EIO;
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int prepare_text(struct cfg_source *src, const char *in, size_t len, const char *name,
			const char *include_dir, int depth, FILE *out, struct cfg_errors *errs);

/* Prepare the included file `file` into a memfd; its alias is in *alias. */
static int prepare_include(struct cfg_source *src, const char *file, const char *from,
			   unsigned line, const char *include_dir, int depth, const char **alias,
			   struct cfg_errors *errs)
{
	struct cfg_source_include *inc, *ni;
	char *path = NULL, *text, *out = NULL;
	size_t len = 0, olen = 0;
	FILE *f;
	int r = 0, fd;

	if (depth >= INCLUDE_DEPTH_MAX) {
		cfg_errors_add(errs, "%s:%u: @include \"%s\": nested too deeply (%d levels)", from,
			       line, file, INCLUDE_DEPTH_MAX);
		return -ELOOP;
	}
	if (file[0] == '/' || !include_dir)
		path = strdup(file);
	else if (asprintf(&path, "%s/%s", include_dir, file) < 0)
		path = NULL;
	if (!path)
		return -ENOMEM;
	text = read_all(path, &len, &r);
	if (!text) {
		cfg_errors_add(errs, "%s:%u: @include \"%s\": cannot read %s: %s", from, line, file,
			       path, strerror(-r));
		free(path);
		return r;
	}
	f = open_memstream(&out, &olen);
	if (!f) {
		free(text);
		free(path);
		return -ENOMEM;
	}
	r = prepare_text(src, text, len, path, include_dir, depth + 1, f, errs);
	fclose(f);
	free(text);
	if (r) {
		free(out);
		free(path);
		return r;
	}
	fd = memfd_create("starling-include", MFD_CLOEXEC);
	if (fd < 0 || write(fd, out, olen) != (ssize_t)olen) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		free(out);
		free(path);
		return r ? r : -EIO;
	}
	free(out);
	ni = realloc(src->incs, (src->n_incs + 1) * sizeof(*ni));
	if (!ni) {
		close(fd);
		free(path);
		return -ENOMEM;
	}
	src->incs = ni;
	inc = &ni[src->n_incs];
	inc->fd = fd;
	inc->name = path;
	if (asprintf(&inc->alias, "/proc/self/fd/%d", fd) < 0) {
		close(fd);
		free(path);
		return -ENOMEM;
	}
	src->n_incs++;
	*alias = inc->alias;
	return 0;
}

/* Copy in to out: "__name" setting names become "*name", @include lines
 * point at prepared copies. Strings, comments and line breaks are kept. */
static int prepare_text(struct cfg_source *src, const char *in, size_t len, const char *name,
			const char *include_dir, int depth, FILE *out, struct cfg_errors *errs)
{
	unsigned line = 1;
	bool line_start = true; /* only blanks so far on this line */
	size_t i = 0;

	while (i < len) {
		char c = in[i];

		if (c == '"') { /* a string, escapes included */
			size_t j = i + 1;

			while (j < len && in[j] != '"') {
				if (in[j] == '\\' && j + 1 < len)
					j++;
				if (in[j] == '\n')
					line++;
				j++;
			}
			if (j < len)
				j++;
			fwrite(in + i, 1, j - i, out);
			i = j;
			line_start = false;
			continue;
		}
		if (c == '#' || (c == '/' && i + 1 < len && in[i + 1] == '/')) {
			const char *nl = memchr(in + i, '\n', len - i);
			size_t j = nl ? (size_t)(nl - in) : len;

			fwrite(in + i, 1, j - i, out);
			i = j;
			continue;
		}
		if (c == '/' && i + 1 < len && in[i + 1] == '*') {
			size_t j = i + 2;

			while (j + 1 < len && !(in[j] == '*' && in[j + 1] == '/')) {
				if (in[j] == '\n')
					line++;
				j++;
			}
			j = j + 1 < len ? j + 2 : len;
			fwrite(in + i, 1, j - i, out);
			i = j;
			continue;
		}
		if (c == '@' && line_start && len - i > 8 && !strncmp(in + i, "@include", 8)) {
			size_t j = i + 8, s;
			const char *alias = NULL;
			char *file;
			int r;

			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j >= len || in[j] != '"') {
				fwrite(in + i, 1, j - i, out); /* libconfig reports it */
				i = j;
				line_start = false;
				continue;
			}
			s = ++j;
			while (j < len && in[j] != '"' && in[j] != '\n')
				j++;
			if (j >= len || in[j] != '"') {
				fwrite(in + i, 1, j - i, out);
				i = j;
				line_start = false;
				continue;
			}
			file = strndup(in + s, j - s);
			if (!file)
				return -ENOMEM;
			r = prepare_include(src, file, name, line, include_dir, depth, &alias,
					    errs);
			free(file);
			if (r)
				return r;
			fprintf(out, "@include \"%s\"", alias);
			i = j + 1;
			line_start = false;
			continue;
		}
		if (c == '_' && i + 1 < len && in[i + 1] == '_' &&
		    (i == 0 || !name_char(in[i - 1]))) {
			/* Outside strings a bare word is a setting name. */
			fputc('*', out);
			i += 2;
			line_start = false;
			continue;
		}
		if (c == '\n') {
			line++;
			line_start = true;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			line_start = false;
		}
		fputc(c, out);
		i++;
	}
	return 0;
}

int cfg_source_prepare(struct cfg_source *src, const char *path, const char *text, const char *name,
		       const char *include_dir, struct cfg_errors *errs)
{
	char *owned = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	FILE *f;
	int r = 0;

	memset(src, 0, sizeof(*src));
	if (!text) {
		owned = read_all(path, &len, &r);
		if (!owned) {
			cfg_errors_add(errs, "%s: cannot read file: %s", name, strerror(-r));
			return r;
		}
		text = owned;
	} else {
		len = strlen(text);
	}
	f = open_memstream(&out, &olen);
	if (!f) {
		free(owned);
		cfg_errors_add(errs, "%s: out of memory", name);
		return -ENOMEM;
	}
	r = prepare_text(src, text, len, name, include_dir, 0, f, errs);
	fclose(f);
	free(owned);
	if (r) {
		free(out);
		cfg_source_free(src);
		if (r == -ENOMEM)
			cfg_errors_add(errs, "%s: out of memory", name);
		return r;
	}
	src->text = out;
	return 0;
}

const char *cfg_source_name(const struct cfg_source *src, const char *file)
{
	for (size_t i = 0; file && src && i < src->n_incs; i++)
		if (!strcmp(src->incs[i].alias, file))
			return src->incs[i].name;
	return file;
}

void cfg_source_free(struct cfg_source *src)
{
	for (size_t i = 0; i < src->n_incs; i++) {
		close(src->incs[i].fd);
		free(src->incs[i].alias);
		free(src->incs[i].name);
	}
	free(src->incs);
	free(src->text);
	memset(src, 0, sizeof(*src));
}
