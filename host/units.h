/*
 * Parsing of the config value formats shared by host and schema validation.
 */
#ifndef STARLING_HOST_UNITS_H
#define STARLING_HOST_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* Prometheus/Go style duration: "15s", "1m30s", "250ms", "1h", "2d", "0".
 * Units ms s m h d w y; a unit is required except for a bare "0".
 * Returns 0 or -EINVAL (bad syntax) / -ERANGE (overflow). */
int parse_duration_ms(const char *s, int64_t *out);

/* "10MiB", "512KB", "100", "1.5GiB". SI (kB/KB = 1000) and IEC (KiB = 1024)
 * units, B optional. Returns 0, -EINVAL or -ERANGE. */
int parse_bytes(const char *s, int64_t *out);

/* Strict int64 / double / bool parse of a whole string. */
int parse_int64(const char *s, int64_t *out);
int parse_double(const char *s, double *out);
int parse_bool(const char *s, bool *out);

/* "host:port", "[v6]:port" or ":port". Returns 0 or -EINVAL. */
int parse_hostport(const char *s, char *host, unsigned hostlen, unsigned *port);

#endif
