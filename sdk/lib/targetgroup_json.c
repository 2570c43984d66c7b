/*
 * Target-group documents in JSON (cJSON), as Prometheus reads file_sd and
 * http_sd bodies: Go encoding/json into `[]*targetgroup.Group` with
 * DisallowUnknownFields (P discovery/file/file.go readFile,
 * discovery/http/http.go). Go matches object keys to struct fields
 * case-insensitively, so "Targets" is the `targets` member; a JSON null
 * leaves a member at its zero value.
 */
#include <starling/targetgroup.h>

#include "targetgroup_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

static size_t line_of(const char *buf, const char *at)
{
	size_t line = 1;

	for (const char *p = buf; p < at; p++)
		if (*p == '\n')
			line++;
	return line;
}

static int parse_targets(struct starling_tgroup *t, const cJSON *v, size_t gi, char *err,
			 size_t errlen)
{
	const cJSON *e;

	if (cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v)) {
		tgroup_err(err, errlen, "group %zu: \"targets\" must be a list of strings", gi);
		return -EINVAL;
	}
	cJSON_ArrayForEach(e, v)
	{
		const char *s = "";
		int rc;

		if (cJSON_IsString(e))
			s = e->valuestring;
		else if (!cJSON_IsNull(e)) {
			tgroup_err(err, errlen, "group %zu: \"targets\" must be a list of strings",
				   gi);
			return -EINVAL;
		}
		rc = tgroup_add_target(t, s, strlen(s));
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_labels(struct starling_tgroup *t, const cJSON *v, size_t gi, char *err,
			size_t errlen)
{
	const cJSON *e;

	if (cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v)) {
		tgroup_err(err, errlen, "group %zu: \"labels\" must be a map of strings", gi);
		return -EINVAL;
	}
	cJSON_ArrayForEach(e, v)
	{
		const char *val = "";
		int rc;

		if (!tgroup_label_name_ok(e->string, strlen(e->string))) {
			tgroup_err(err, errlen, "group %zu: \"%.64s\" is not a valid label name",
				   gi, e->string);
			return -EINVAL;
		}
		if (cJSON_IsString(e))
			val = e->valuestring;
		else if (!cJSON_IsNull(e)) {
			tgroup_err(err, errlen, "group %zu: label \"%s\": value must be a string",
				   gi, e->string);
			return -EINVAL;
		}
		/* Duplicate keys: the last one wins, as in a Go map. */
		rc = starling_lset_set_str(&t->labels, e->string, val);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_doc(struct starling_tgroups *out, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *item;
	size_t gi = 0;

	if (cJSON_IsNull(root))
		return 0;
	if (!cJSON_IsArray(root)) {
		tgroup_err(err, errlen, "the document must be a list of target groups");
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, root)
	{
		struct starling_tgroup *t;
		const cJSON *m;
		int rc;

		if (cJSON_IsNull(item)) {
			tgroup_err(err, errlen, "group %zu: nil target group item found", gi);
			return -EINVAL;
		}
		if (!cJSON_IsObject(item)) {
			tgroup_err(err, errlen, "group %zu: a target group must be an object", gi);
			return -EINVAL;
		}
		t = tgroups_push(out);
		if (!t)
			return -ENOMEM;
		cJSON_ArrayForEach(m, item)
		{
			if (strcasecmp(m->string, "targets") == 0)
				rc = parse_targets(t, m, gi, err, errlen);
			else if (strcasecmp(m->string, "labels") == 0)
				rc = parse_labels(t, m, gi, err, errlen);
			else {
				tgroup_err(err, errlen, "group %zu: unknown field \"%.64s\"", gi,
					   m->string);
				rc = -EINVAL;
			}
			if (rc)
				return rc;
		}
		gi++;
	}
	return 0;
}

int starling_tgroups_parse_json(struct starling_tgroups *out, const char *buf, size_t len,
				char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *root;
	int rc;

	starling_tgroups_init(out);
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!root) {
		if (!end || end < buf || end > buf + len)
			end = buf;
		tgroup_err(err, errlen, "line %zu: invalid JSON", line_of(buf, end));
		return -EINVAL;
	}
	/* Go rejects anything but white space after the top-level value. */
	for (; end && end < buf + len; end++)
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			tgroup_err(err, errlen, "line %zu: invalid JSON after the top-level value",
				   line_of(buf, end));
			cJSON_Delete(root);
			return -EINVAL;
		}
	rc = parse_doc(out, root, err, errlen);
	cJSON_Delete(root);
	if (rc) {
		if (rc == -ENOMEM)
			tgroup_err(err, errlen, "out of memory");
		starling_tgroups_free(out);
	}
	return rc;
}
