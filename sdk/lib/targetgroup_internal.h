/* Private to sdk/lib/targetgroup*.c: building groups while parsing. */
#ifndef STARLING_TARGETGROUP_INTERNAL_H
#define STARLING_TARGETGROUP_INTERNAL_H

#include <starling/targetgroup.h>

#include <stdbool.h>

/* Append an empty group; returns it or NULL (out of memory). */
struct starling_tgroup *tgroups_push(struct starling_tgroups *g);
/* Append one target address (len bytes, no NUL inside). 0 or -EINVAL/-ENOMEM. */
int tgroup_add_target(struct starling_tgroup *t, const char *s, size_t len);
/* Whether s (len bytes) is a legacy Prometheus label name. */
bool tgroup_label_name_ok(const char *s, size_t len);
/* snprintf into err when errlen > 0. */
void tgroup_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
