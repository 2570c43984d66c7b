/*
 * Kubernetes API response decoders (see starling/k8s.h): a LIST body
 * (`{"kind":"<X>List","metadata":{"resourceVersion","continue"},"items":[]}`)
 * and the watch stream, newline-separated `{"type","object"}` documents
 * (k8s.io/apimachinery pkg/watch/json). Pure; fuzzed by tests/fuzz/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/k8s.h>

#define DEFAULT_LINE_LIMIT ((size_t)16 << 20)

static const char *jstr(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

int starling_k8s_list_decode(const char *body, size_t len, struct starling_k8s_list *out, char *err,
			     size_t errlen)
{
	cJSON *doc = cJSON_ParseWithLength(body ? body : "", len), *items;
	const cJSON *md;
	const char *rv, *cont;
	bool has_cont;

	memset(out, 0, sizeof(*out));
	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	rv = jstr(md, "resourceVersion");
	if (!cJSON_IsObject(doc) || !(cJSON_IsArray(items) || cJSON_IsNull(items) || !items) ||
	    !cJSON_IsObject(md) || !rv) {
		snprintf(err, errlen, "response is not a Kubernetes list (%zu bytes)", len);
		cJSON_Delete(doc);
		return -EINVAL;
	}
	cont = jstr(md, "continue");
	has_cont = cont && *cont;
	out->resource_version = strdup(rv);
	out->cont = has_cont ? strdup(cont) : NULL;
	if (cJSON_IsArray(items))
		out->items = cJSON_DetachItemViaPointer(doc, items);
	else
		out->items = cJSON_CreateArray();
	cJSON_Delete(doc);
	if (!out->resource_version || (has_cont && !out->cont) || !out->items) {
		starling_k8s_list_free(out);
		return -ENOMEM;
	}
	/* Every item must be an object: one that is not is a broken list. */
	for (const cJSON *it = out->items->child; it; it = it->next) {
		if (!cJSON_IsObject(it)) {
			snprintf(err, errlen, "list item is not an object");
			starling_k8s_list_free(out);
			return -EINVAL;
		}
	}
	return 0;
}

void starling_k8s_list_free(struct starling_k8s_list *l)
{
	cJSON_Delete(l->items);
	free(l->resource_version);
	free(l->cont);
	memset(l, 0, sizeof(*l));
}

static const struct {
	const char *name;
	enum starling_k8s_event_type type;
} event_types[] = {
    {"ADDED", STARLING_K8S_ADDED},     {"MODIFIED", STARLING_K8S_MODIFIED},
    {"DELETED", STARLING_K8S_DELETED}, {"BOOKMARK", STARLING_K8S_BOOKMARK},
    {"ERROR", STARLING_K8S_ERROR},
};

/* One event document. */
static int event_line(const char *line, size_t len, starling_k8s_event_fn fn, void *arg, char *err,
		      size_t errlen)
{
	cJSON *doc = cJSON_ParseWithLength(line, len);
	struct starling_k8s_event ev = {0};
	const char *type = jstr(doc, "type");
	size_t k;
	int rc;

	if (!cJSON_IsObject(doc) || !type) {
		snprintf(err, errlen, "unparsable watch event (%zu bytes)", len);
		cJSON_Delete(doc);
		return -EINVAL;
	}
	for (k = 0; k < sizeof(event_types) / sizeof(event_types[0]); k++)
		if (strcmp(type, event_types[k].name) == 0)
			break;
	if (k == sizeof(event_types) / sizeof(event_types[0])) {
		snprintf(err, errlen, "unknown watch event type \"%.40s\"", type);
		cJSON_Delete(doc);
		return -EINVAL;
	}
	ev.type = event_types[k].type;
	ev.object = cJSON_DetachItemFromObjectCaseSensitive(doc, "object");
	cJSON_Delete(doc);
	if (!cJSON_IsObject(ev.object)) {
		snprintf(err, errlen, "%s watch event without an object", event_types[k].name);
		cJSON_Delete(ev.object);
		return -EINVAL;
	}
	ev.resource_version =
	    jstr(cJSON_GetObjectItemCaseSensitive(ev.object, "metadata"), "resourceVersion");
	if (ev.type == STARLING_K8S_ERROR) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(ev.object, "code");

		ev.code = cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000
			      ? code->valueint
			      : 0;
		ev.message = jstr(ev.object, "message");
	} else if (ev.type != STARLING_K8S_BOOKMARK &&
		   !jstr(cJSON_GetObjectItemCaseSensitive(ev.object, "metadata"), "name")) {
		snprintf(err, errlen, "%s watch event for an object without a name",
			 event_types[k].name);
		cJSON_Delete(ev.object);
		return -EINVAL;
	}
	rc = fn(arg, &ev);
	cJSON_Delete(ev.object);
	return rc;
}

int starling_k8s_events_feed(struct starling_k8s_event_decoder *d, const char *data, size_t len,
			     starling_k8s_event_fn fn, void *arg, char *err, size_t errlen)
{
	size_t limit = d->line_limit ? d->line_limit : DEFAULT_LINE_LIMIT;
	size_t start = 0;
	int rc = 0;

	if (d->len + len + 1 > d->cap) {
		size_t cap = d->cap ? d->cap : 65536;
		char *b;

		while (cap < d->len + len + 1)
			cap *= 2;
		b = realloc(d->buf, cap);
		if (!b)
			return -ENOMEM;
		d->buf = b;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, data, len);
	/* Only the new bytes can hold a newline the last call did not see. */
	for (size_t i = d->len; i < d->len + len; i++) {
		if (d->buf[i] != '\n')
			continue;
		/* blank lines (keep-alives) are skipped */
		if (i > start && !(i == start + 1 && d->buf[start] == '\r'))
			rc = event_line(d->buf + start, i - start, fn, arg, err, errlen);
		start = i + 1;
		if (rc)
			break;
	}
	d->len += len;
	if (rc)
		return rc;
	memmove(d->buf, d->buf + start, d->len - start);
	d->len -= start;
	if (d->len > limit) {
		snprintf(err, errlen, "watch event longer than %zu bytes", limit);
		return -EFBIG;
	}
	/* A long stream of small events must not keep a huge buffer. */
	if (d->cap > (1u << 20) && d->len < d->cap / 8) {
		char *b = realloc(d->buf, d->cap / 2);

		if (b) {
			d->buf = b;
			d->cap /= 2;
		}
	}
	return 0;
}

void starling_k8s_events_reset(struct starling_k8s_event_decoder *d)
{
	d->len = 0;
}

void starling_k8s_events_free(struct starling_k8s_event_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}
