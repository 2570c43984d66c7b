/*
 * Host logging: logfmt lines on stderr (journald keeps them as they are),
 * a level filter and rate limiting of identical repeated messages.
 */
#ifndef STARLING_HOST_LOG_H
#define STARLING_HOST_LOG_H

#include <stdarg.h>
#include <starling/plugin.h>

/* Parse "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum starling_log_level *out);
void log_set_level(enum starling_log_level level);
enum starling_log_level log_get_level(void);

/* component may be NULL (host messages). Thread-safe. */
void log_msg(enum starling_log_level level, const char *component, const char *fmt, ...)
    STARLING_PRINTF(3, 4);
void log_vmsg(enum starling_log_level level, const char *component, const char *fmt, va_list ap)
    STARLING_PRINTF(3, 0);

#define log_error(...) log_msg(STARLING_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(STARLING_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(STARLING_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(STARLING_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
