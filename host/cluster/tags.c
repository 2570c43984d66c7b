/*
 * Serf tags of Starling nodes (see tags.h): the codec of our tags and the
 * comparison of configuration fingerprints. Both read what peers send.
 */
#include "tags.h"
#include "mpack.h"
#include "timeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cluster_state_name(enum cluster_node_state s)
{
	switch (s) {
	case CLUSTER_STATE_PARTICIPANT:
		return "participant";
	case CLUSTER_STATE_TERMINATING:
		return "terminating";
	default:
		return "viewer";
	}
}

/* Our tags: state, weight (omitted when 1), the HTTP address peers fetch
 * this node's view from (targets page), and the announced span of
 * ownership in unix ms: starling_from (a participant owns from then),
 * starling_until (a terminating node owns until then). */
size_t tags_encode(enum cluster_node_state st, double weight, const char *http, int64_t from,
		   int64_t until, const char *fp, uint8_t *out, size_t cap)
{
	struct mp_buf b;
	char w[32];
	size_t n;
	bool has_from = from != TIMELINE_ALWAYS && st != CLUSTER_STATE_VIEWER;
	bool has_until = until != TIMELINE_NEVER && st == CLUSTER_STATE_TERMINATING;

	mp_init(&b);
	mp_put_byte(&b, SERF_TAG_MAGIC);
	mp_w_map(&b, 1 + (weight != 1.0) + (http[0] ? 1 : 0) + has_from + has_until + (fp[0] != 0));
	mp_w_str(&b, "starling_state");
	mp_w_str(&b, cluster_state_name(st));
	if (http[0]) { /* where peers fetch this node's view (targets page) */
		mp_w_str(&b, "starling_http");
		mp_w_str(&b, http);
	}
	if (weight != 1.0) {
		snprintf(w, sizeof(w), "%g", weight);
		mp_w_str(&b, "starling_weight");
		mp_w_str(&b, w);
	}
	if (has_from) {
		snprintf(w, sizeof(w), "%" PRId64, from);
		mp_w_str(&b, "starling_from");
		mp_w_str(&b, w);
	}
	if (has_until) {
		snprintf(w, sizeof(w), "%" PRId64, until);
		mp_w_str(&b, "starling_until");
		mp_w_str(&b, w);
	}
	if (fp[0]) {
		mp_w_str(&b, "starling_cfg");
		mp_w_str(&b, fp);
	}
	n = b.oom || b.len > cap ? 0 : b.len;
	if (n)
		memcpy(out, b.p, n);
	mp_free(&b);
	return n;
}

static bool tag_is(const uint8_t *k, uint32_t kn, const char *name)
{
	return kn == strlen(name) && memcmp(k, name, kn) == 0;
}

/* A tag value as a NUL-terminated string (short values only). */
static bool tag_text(const uint8_t *v, uint32_t vn, char *out, size_t cap)
{
	if (vn >= cap)
		return false;
	memcpy(out, v, vn);
	out[vn] = 0;
	return true;
}

void tags_decode(const uint8_t *meta, size_t len, struct member_tags *t)
{
	struct mp_rd r;
	uint32_t n;
	size_t tl = 0;

	t->state = CLUSTER_STATE_VIEWER;
	t->weight = 1.0;
	t->http[0] = 0;
	t->weight_refused = false;
	t->from = TIMELINE_ALWAYS;
	t->until = TIMELINE_NEVER;
	t->starling = false;
	t->fp[0] = 0;
	t->text[0] = 0;
	if (len < 1 || meta[0] != SERF_TAG_MAGIC)
		return;
	mp_rd_init(&r, meta + 1, len - 1);
	if (mp_r_map(&r, &n))
		return;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *k, *v;
		uint32_t kn, vn;
		char tmp[32];
		char *end;

		if (mp_r_raw(&r, &k, &kn) || mp_r_raw(&r, &v, &vn))
			return;
		if (tl < sizeof(t->text))
			tl += (size_t)snprintf(t->text + tl, sizeof(t->text) - tl, "%s%.*s=%.*s",
					       tl ? "," : "", (int)kn, (const char *)k, (int)vn,
					       (const char *)v);
		if (tag_is(k, kn, "starling_cfg")) {
			if (!tag_text(v, vn, t->fp, sizeof(t->fp)))
				snprintf(t->fp, sizeof(t->fp), "#?");
		} else if (tag_is(k, kn, "starling_state")) {
			t->starling = true;
			if (tag_is(v, vn, "participant"))
				t->state = CLUSTER_STATE_PARTICIPANT;
			else if (tag_is(v, vn, "terminating"))
				t->state = CLUSTER_STATE_TERMINATING;
		} else if (tag_is(k, kn, "starling_http") && vn < sizeof(t->http)) {
			memcpy(t->http, v, vn);
			t->http[vn] = 0;
		} else if (tag_is(k, kn, "starling_weight") && tag_text(v, vn, tmp, sizeof(tmp))) {
			double w = strtod(tmp, &end);

			if (*end == 0 && w >= WEIGHT_MIN && w <= WEIGHT_MAX)
				t->weight = w;
			else
				t->weight_refused = true;
		} else if ((tag_is(k, kn, "starling_from") || tag_is(k, kn, "starling_until")) &&
			   tag_text(v, vn, tmp, sizeof(tmp))) {
			long long ms = strtoll(tmp, &end, 10);

			if (*end == 0 && tmp[0] && ms > 0 && ms < INT64_MAX / 2) {
				if (kn == 13)
					t->from = ms;
				else
					t->until = ms;
			}
		}
	}
}

/* The hash of component id in a fingerprint "id:hash,..." (NULL: absent). */
static const char *fp_hash(const char *fp, const char *id, size_t idlen)
{
	for (const char *p = fp; *p;) {
		const char *colon = strchr(p, ':'), *comma = strchr(p, ',');

		if (!colon || (comma && comma < colon))
			return NULL;
		if ((size_t)(colon - p) == idlen && !memcmp(p, id, idlen))
			return colon + 1;
		if (!comma)
			return NULL;
		p = comma + 1;
	}
	return NULL;
}

/* Whether word is one of the space-separated words of list. */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	if (n == 0)
		return true; /* an empty id is never listed (and strstr would not move) */
	for (const char *q = list; (q = strstr(q, word)) != NULL; q += n)
		if ((q == list || q[-1] == ' ') && (q[n] == 0 || q[n] == ' '))
			return true;
	return false;
}

/* Append to out (space-separated, once each) the components of a whose
 * entry differs in b or is missing there. */
static void fp_missing(const char *a, const char *b, char *out, size_t cap)
{
	for (const char *p = a; *p;) {
		const char *colon = strchr(p, ':'), *comma = strchr(p, ',');
		const char *h;
		char id[128];
		size_t len = strlen(out);

		if (!colon)
			return;
		h = fp_hash(b, p, (size_t)(colon - p));
		snprintf(id, sizeof(id), "%.*s", (int)(colon - p), p);
		if ((!h || strncmp(h, colon + 1, 8)) && !has_word(out, id) &&
		    len + strlen(id) + 2 < cap) {
			if (len)
				out[len++] = ' ';
			memcpy(out + len, id, strlen(id) + 1);
		}
		if (!comma)
			return;
		p = comma + 1;
	}
}

/* The components whose ownership config differs between fingerprints a and
 * b (space-separated in out; "" when they agree). */
void tags_fp_diff(const char *a, const char *b, char *out, size_t cap)
{
	out[0] = 0;
	if (!strcmp(a, b))
		return;
	if (a[0] == '#' || b[0] == '#') {
		snprintf(out, cap, "(too many components to name)");
		return;
	}
	fp_missing(a, b, out, cap);
	fp_missing(b, a, out, cap);
}
