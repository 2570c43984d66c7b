/*
 * The text handed to libconfig, prepared so that users can write label
 * names the way every Prometheus and Alloy example does: a setting name
 * written `__address__` (libconfig names cannot start with "_") is given to
 * libconfig as `*address__`, the spelling Starling has always accepted and
 * that plugins read as "__". Strings and comments are left alone, and no
 * line moves, so every line number stays the user's.
 *
 * @include files get the same treatment: each is prepared into an
 * anonymous in-memory file that the @include line is pointed at, and
 * cfg_source_name() maps that name back to the user's file for messages.
 *
 * Not thread-safe; one source per parse.
 */
#ifndef STARLING_HOST_CONFIG_SOURCE_H
#define STARLING_HOST_CONFIG_SOURCE_H

#include "config.h"

struct cfg_source_include {
	char *alias; /* "/proc/self/fd/N", what libconfig opens */
	char *name;  /* the user's file, as messages name it */
	int fd;
};

struct cfg_source {
	char *text; /* the prepared main text */
	struct cfg_source_include *incs;
	size_t n_incs;
};

/* Prepare the main file at path (text == NULL) or the given text (named
 * name in messages). @include paths are relative to include_dir (NULL: the
 * current directory). Returns 0, or -errno with a message in errs. */
int cfg_source_prepare(struct cfg_source *src, const char *path, const char *text, const char *name,
		       const char *include_dir, struct cfg_errors *errs);

/* The user's name for a file name libconfig reports (an include alias), or
 * file itself. */
const char *cfg_source_name(const struct cfg_source *src, const char *file);

void cfg_source_free(struct cfg_source *src);

#endif
