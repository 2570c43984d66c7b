#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
	    !strcasecmp(s, "on")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") ||
	    !strcasecmp(s, "off")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

int parse_duration_ms(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
	    {"ms", 1},
	    {"s", 1000},
	    {"m", 60000},
	    {"h", 3600000},
	    {"d", 86400000},
	    {"w", 604800000},
	    {"y", INT64_C(31536000000)},
	};
	int64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	while (*p) {
		int64_t n = 0;
		size_t ulen = 0, best = 0;
		int64_t mult = 0;

		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p)) {
			if (n > (INT64_MAX - 9) / 10)
				return -ERANGE;
			n = n * 10 + (*p - '0');
			p++;
		}
		while (isalpha((unsigned char)p[ulen]))
			ulen++;
		if (!ulen)
			return -EINVAL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);

			if (l == ulen && strncmp(p, units[i].unit, l) == 0) {
				best = l;
				mult = units[i].ms;
			}
		}
		if (!best)
			return -EINVAL;
		if (n > (INT64_MAX - total) / mult)
			return -ERANGE;
		total += n * mult;
		p += ulen;
	}
	*out = total;
	return 0;
}

int parse_bytes(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
	    {"", 1},
	    {"b", 1},
	    {"k", 1e3},
	    {"kb", 1e3},
	    {"m", 1e6},
	    {"mb", 1e6},
	    {"g", 1e9},
	    {"gb", 1e9},
	    {"t", 1e12},
	    {"tb", 1e12},
	    {"ki", 1024.0},
	    {"kib", 1024.0},
	    {"mi", 1048576.0},
	    {"mib", 1048576.0},
	    {"gi", 1073741824.0},
	    {"gib", 1073741824.0},
	    {"ti", 1099511627776.0},
	    {"tib", 1099511627776.0},
	};
	char *end;
	double v;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit) == 0) {
			double r = v * units[i].mult;

			if (r >= 9.2e18)
				return -ERANGE;
			*out = (int64_t)r;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_hostport(const char *s, char *host, unsigned hostlen, unsigned *port)
{
	const char *colon, *hs, *he;
	int64_t p;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return -EINVAL;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		if (memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare IPv6 needs brackets */
		hs = s;
		he = colon;
	}
	if ((size_t)(he - hs) >= hostlen)
		return -EINVAL;
	if (parse_int64(colon + 1, &p) || p < 0 || p > 65535 || !isdigit((unsigned char)colon[1]))
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port = (unsigned)p;
	return 0;
}
