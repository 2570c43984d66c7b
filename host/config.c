/*
 * Configuration: libconfig -> host tree -> validated document.
 *
 * libconfig is only used to parse; everything after that works on the host's
 * own tree so that plugins never see libconfig types and every error can name
 * file, line and key path.
 */
#include "config.h"
#include "config_source.h"
#include "suggest.h"
#include "log.h"
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>
#include <openssl/evp.h>

#define DEFAULT_STATE_DIR	  "/var/lib/starling"
#define DEFAULT_HTTP_ADDR	  "127.0.0.1:12345"
#define DEFAULT_RELOAD_TIMEOUT_MS 30000

/* ---- errors ----------------------------------------------------------- */

void cfg_errors_add(struct cfg_errors *e, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	char **nv;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	nv = realloc(e->msgs, (e->n + 1) * sizeof(*nv));
	if (!nv) {
		free(msg);
		return;
	}
	e->msgs = nv;
	e->msgs[e->n++] = msg;
}

void cfg_errors_free(struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* ---- tree ------------------------------------------------------------- */

static void node_free(struct starling_config *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_children; i++)
		node_free(n->children[i]);
	free(n->children);
	free(n->name);
	free(n->where);
	free(n->path);
	free(n->s);
	free(n);
}

static struct starling_config *node_new(enum cfg_kind kind, const char *name, const char *where,
					const char *path)
{
	struct starling_config *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->name = name ? strdup(name) : NULL;
	n->where = strdup(where ? where : "?");
	n->path = strdup(path ? path : "");
	if ((name && !n->name) || !n->where || !n->path) {
		node_free(n);
		return NULL;
	}
	return n;
}

static int node_append(struct starling_config *parent, struct starling_config *child)
{
	struct starling_config **nv;

	nv = realloc(parent->children, (parent->n_children + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	parent->children = nv;
	parent->children[parent->n_children++] = child;
	return 0;
}

static char *path_join(const char *parent, const char *name, long index)
{
	char *p = NULL;
	int r;

	if (name && name[0] == '*') /* shown as the user may have written it */
		r = asprintf(&p, "%s%s__%s", parent, *parent ? "." : "", name + 1);
	else if (name)
		r = asprintf(&p, "%s%s%s", parent, *parent ? "." : "", name);
	else
		r = asprintf(&p, "%s%s[%ld]", parent, *parent ? "." : "", index);
	return r < 0 ? NULL : p;
}

static struct starling_config *from_libconfig(const config_setting_t *s, const char *fallback_file,
					      const char *path, const struct cfg_source *src)
{
	const char *file = cfg_source_name(src, config_setting_source_file(s));
	char where[1024];
	struct starling_config *n;
	enum cfg_kind kind;
	int type = config_setting_type(s);

	if (file && file[0] != '/' && strcmp(file, fallback_file) && strrchr(fallback_file, '/'))
		/* An @include'd file, named relative to the main file's dir. */
		snprintf(where, sizeof(where), "%.*s/%s:%u",
			 (int)(strrchr(fallback_file, '/') - fallback_file), fallback_file, file,
			 config_setting_source_line(s));
	else
		snprintf(where, sizeof(where), "%s:%u", file ? file : fallback_file,
			 config_setting_source_line(s));
	switch (type) {
	case CONFIG_TYPE_GROUP:
		kind = CFG_K_GROUP;
		break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		kind = CFG_K_ARRAY;
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		kind = CFG_K_INT;
		break;
	case CONFIG_TYPE_FLOAT:
		kind = CFG_K_FLOAT;
		break;
	case CONFIG_TYPE_BOOL:
		kind = CFG_K_BOOL;
		break;
	case CONFIG_TYPE_STRING:
	default:
		kind = CFG_K_STRING;
		break;
	}
	n = node_new(kind, config_setting_name(s), where, path);
	if (!n)
		return NULL;
	switch (kind) {
	case CFG_K_STRING: {
		const char *v = config_setting_get_string(s);

		n->s = strdup(v ? v : "");
		if (!n->s)
			goto out_free;
		break;
	}
	case CFG_K_INT:
		n->i = config_setting_get_int64(s);
		n->f = (double)n->i;
		break;
	case CFG_K_FLOAT:
		n->f = config_setting_get_float(s);
		break;
	case CFG_K_BOOL:
		n->b = config_setting_get_bool(s);
		break;
	case CFG_K_GROUP:
	case CFG_K_ARRAY: {
		int len = config_setting_length(s);

		for (int i = 0; i < len; i++) {
			config_setting_t *c = config_setting_get_elem(s, (unsigned)i);
			const char *cname = kind == CFG_K_GROUP ? config_setting_name(c) : NULL;
			char *cpath = path_join(path, cname, i);
			struct starling_config *cn;

			if (!cpath)
				goto out_free;
			cn = from_libconfig(c, fallback_file, cpath, src);
			free(cpath);
			if (!cn)
				goto out_free;
			if (kind == CFG_K_ARRAY) {
				free(cn->name);
				cn->name = NULL;
			}
			if (node_append(n, cn)) {
				node_free(cn);
				goto out_free;
			}
		}
		break;
	}
	}
	return n;
out_free:
	node_free(n);
	return NULL;
}

static const char *kind_name(enum cfg_kind k)
{
	switch (k) {
	case CFG_K_STRING:
		return "string";
	case CFG_K_INT:
		return "integer";
	case CFG_K_FLOAT:
		return "float";
	case CFG_K_BOOL:
		return "boolean";
	case CFG_K_GROUP:
		return "group";
	case CFG_K_ARRAY:
		return "list";
	}
	return "?";
}

const char *cfg_type_name(enum starling_config_type t)
{
	switch (t) {
	case STARLING_CFG_STRING:
		return "string";
	case STARLING_CFG_INT:
		return "int";
	case STARLING_CFG_FLOAT:
		return "float";
	case STARLING_CFG_BOOL:
		return "bool";
	case STARLING_CFG_DURATION:
		return "duration";
	case STARLING_CFG_BYTES:
		return "bytes";
	case STARLING_CFG_STRING_LIST:
		return "string list";
	case STARLING_CFG_GROUP:
		return "group";
	case STARLING_CFG_GROUP_LIST:
		return "group list";
	case STARLING_CFG_MAP:
		return "map";
	case STARLING_CFG_MAP_LIST:
		return "map list";
	case STARLING_CFG_REF_LIST:
		return "component reference list";
	case STARLING_CFG_TARGETS:
		return "target list";
	}
	return "?";
}

static struct starling_config *member(const struct starling_config *g, const char *name)
{
	if (!g || g->kind != CFG_K_GROUP)
		return NULL;
	for (size_t i = 0; i < g->n_children; i++)
		if (g->children[i]->name && strcmp(g->children[i]->name, name) == 0)
			return g->children[i];
	return NULL;
}

/* ---- the document ----------------------------------------------------- */

/* "unknown key", with a "did you mean" when a known key is close. */
static void add_unknown_key(struct cfg_errors *errs, const struct starling_config *c,
			    const char *const *known, size_t n, const char *extra)
{
	const char *s = suggest_closest(c->name, known, n);

	if (s)
		cfg_errors_add(errs, "%s: %s: unknown key (did you mean \"%s\"?)", c->where,
			       c->path, s);
	else
		cfg_errors_add(errs, "%s: %s: unknown key%s", c->where, c->path, extra);
}

static void component_release(struct cfg_component *c)
{
	free(c->id);
	free(c->type_name);
	free(c->name);
	free(c->forward);
	free(c->target_sources);
	free(c->canon);
}

static void doc_free(struct cfg_doc *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_components; i++)
		component_release(&d->components[i]);
	free(d->components);
	free(d->order);
	node_free(d->root);
	free(d->file);
	free(d->plugins_dir);
	free(d->state_dir);
	free(d->http_listen_addr);
	cluster_config_release(&d->cluster);
	free(d);
}

struct cfg_doc *cfg_doc_ref(struct cfg_doc *doc)
{
	if (doc)
		__atomic_add_fetch(&doc->refs, 1, __ATOMIC_ACQ_REL);
	return doc;
}

void cfg_doc_unref(struct cfg_doc *doc)
{
	if (doc && __atomic_sub_fetch(&doc->refs, 1, __ATOMIC_ACQ_REL) == 0)
		doc_free(doc);
}

static int want_kind(const struct starling_config *n, enum cfg_kind kind, const char *what,
		     struct cfg_errors *errs)
{
	if (n->kind == kind)
		return 0;
	cfg_errors_add(errs, "%s: %s: expected %s, found %s", n->where, n->path, what,
		       kind_name(n->kind));
	return -EINVAL;
}

static int set_string(char **dst, const struct starling_config *n, struct cfg_errors *errs)
{
	if (want_kind(n, CFG_K_STRING, "string", errs))
		return -EINVAL;
	free(*dst);
	*dst = strdup(n->s);
	return *dst ? 0 : -ENOMEM;
}

static int check_listen_addr(const char *v, const char *where, const char *path,
			     struct cfg_errors *errs)
{
	char host[256];
	unsigned port;

	if (parse_hostport(v, host, sizeof(host), &port) == 0)
		return 0;
	cfg_errors_add(errs, "%s: %s: invalid address \"%s\" (want host:port)", where, path, v);
	return -EINVAL;
}

/* ---- cluster group and flags ------------------------------------------ */

static const char *const cluster_keys[] = {
    "enabled",
    "node_name",
    "bind",
    "advertise",
    "join",
    "rejoin_interval",
    "max_join_peers",
    "name",
    "secret_keys",
    "wait_for_size",
    "wait_timeout",
    "profile",
    "weight",
    "handover_delay",
    "secret_keys_file",
    "require_encryption",
    "advertise_interfaces",
    NULL,
};

bool cfg_is_cluster_key(const char *key)
{
	for (size_t i = 0; cluster_keys[i]; i++)
		if (strcmp(cluster_keys[i], key) == 0)
			return true;
	return false;
}

/* The value of n as text: strings as they are, other scalars printed. Flags
 * arrive as strings and are converted with the same rules as the file. */
static int scalar_text(const struct starling_config *n, char *buf, size_t len)
{
	switch (n->kind) {
	case CFG_K_STRING:
		snprintf(buf, len, "%s", n->s);
		return 0;
	case CFG_K_INT:
		snprintf(buf, len, "%lld", (long long)n->i);
		return 0;
	case CFG_K_FLOAT:
		snprintf(buf, len, "%.17g", n->f);
		return 0;
	case CFG_K_BOOL:
		snprintf(buf, len, "%s", n->b ? "true" : "false");
		return 0;
	default:
		return -EINVAL;
	}
}

static int valid_base64_key(const char *s)
{
	unsigned char out[64];
	size_t len = strlen(s);
	int n, pad = 0;

	if (len == 0 || len % 4 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '+' || c == '/' || (c == '=' && i >= len - 2)))
			return 0;
	}
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0)
		return 0;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	n -= pad;
	return n == 16 || n == 24 || n == 32;
}

static int strv_append(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void strv_clear(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

/* Set one cluster key from a node (file) or a string node (flag). `append`
 * adds to a list key instead of replacing it (repeated flags). */
static int cluster_set(struct cluster_config *cc, const char *key, const struct starling_config *n,
		       bool append, struct cfg_errors *errs)
{
	/* Flags are strings and convert; the file must use the right types. */
	bool flag = !strcmp(n->where, "flag");

	char text[1024];
	const char *w = n->where, *p = n->path;

	if (!strcmp(key, "join") || !strcmp(key, "secret_keys")) {
		char ***v = !strcmp(key, "join") ? &cc->join : &cc->secret_keys;
		size_t *cnt = !strcmp(key, "join") ? &cc->n_join : &cc->n_secret_keys;
		const struct starling_config *const *items =
		    (const struct starling_config *const *)&n;
		size_t n_items = 1;
		int bad = 0;

		if (n->kind == CFG_K_ARRAY) {
			items = (const struct starling_config *const *)n->children;
			n_items = n->n_children;
		} else if (n->kind != CFG_K_STRING) {
			cfg_errors_add(errs, "%s: %s: expected list of strings, found %s", w, p,
				       kind_name(n->kind));
			return -EINVAL;
		}
		if (!append)
			strv_clear(v, cnt);
		for (size_t i = 0; i < n_items; i++) {
			const struct starling_config *it = items[i];

			if (it->kind != CFG_K_STRING || !it->s[0]) {
				cfg_errors_add(errs, "%s: %s: expected non-empty string", it->where,
					       it->path);
				bad = 1;
				continue;
			}
			if (!strcmp(key, "secret_keys") && !valid_base64_key(it->s)) {
				cfg_errors_add(
				    errs, "%s: %s: invalid key (want base64 of 16, 24 or 32 bytes)",
				    it->where, it->path);
				bad = 1;
				continue;
			}
			if (!strcmp(key, "join") && strncmp(it->s, "dnssrv+", 7) != 0 &&
			    strchr(it->s, ':')) {
				char host[256];
				unsigned port;

				if (parse_hostport(it->s, host, sizeof(host), &port)) {
					cfg_errors_add(errs, "%s: %s: invalid address \"%s\"",
						       it->where, it->path, it->s);
					bad = 1;
					continue;
				}
			}
			if (strv_append(v, cnt, it->s))
				return -ENOMEM;
		}
		return bad ? -EINVAL : 0;
	}

	if (scalar_text(n, text, sizeof(text))) {
		cfg_errors_add(errs, "%s: %s: expected a single value, found %s", w, p,
			       kind_name(n->kind));
		return -EINVAL;
	}
	if (!strcmp(key, "enabled")) {
		if (n->kind == CFG_K_BOOL) {
			cc->enabled = n->b;
		} else if (!flag || parse_bool(text, &cc->enabled)) {
			cfg_errors_add(errs, "%s: %s: expected boolean, found \"%s\"", w, p, text);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "require_encryption")) {
		if (n->kind == CFG_K_BOOL) {
			cc->require_encryption = n->b;
		} else if (!flag || parse_bool(text, &cc->require_encryption)) {
			cfg_errors_add(errs, "%s: %s: expected boolean, found \"%s\"", w, p, text);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "secret_keys_file") || !strcmp(key, "advertise_interfaces")) {
		char *dst = key[0] == 's' ? cc->secret_keys_file : cc->advertise_interfaces;
		size_t cap =
		    key[0] == 's' ? sizeof(cc->secret_keys_file) : sizeof(cc->advertise_interfaces);

		if (n->kind != CFG_K_STRING || strlen(text) >= cap) {
			cfg_errors_add(errs, "%s: %s: expected a string of at most %zu bytes", w, p,
				       cap - 1);
			return -EINVAL;
		}
		memcpy(dst, text, strlen(text) + 1);
		return 0;
	}
	if (!strcmp(key, "handover_delay")) {
		int64_t ms;

		if (n->kind != CFG_K_STRING || parse_duration_ms(text, &ms) || ms > 600000) {
			cfg_errors_add(errs, "%s: %s: invalid duration \"%s\" (0s..10m)", w, p,
				       text);
			return -EINVAL;
		}
		cc->handover_ms = ms;
		return 0;
	}
	if (!strcmp(key, "rejoin_interval") || !strcmp(key, "wait_timeout")) {
		int64_t ms;

		if (n->kind != CFG_K_STRING || parse_duration_ms(text, &ms)) {
			cfg_errors_add(errs, "%s: %s: invalid duration \"%s\"", w, p, text);
			return -EINVAL;
		}
		if (!strcmp(key, "rejoin_interval"))
			cc->rejoin_interval_ms = ms;
		else
			cc->wait_timeout_ms = ms;
		return 0;
	}
	if (!strcmp(key, "max_join_peers") || !strcmp(key, "wait_for_size")) {
		int64_t v;

		if ((n->kind != CFG_K_INT && !flag) || parse_int64(text, &v) || v < 0 ||
		    v > 100000) {
			cfg_errors_add(errs, "%s: %s: expected integer 0..100000, found \"%s\"", w,
				       p, text);
			return -EINVAL;
		}
		if (!strcmp(key, "max_join_peers"))
			cc->max_join_peers = (int)v;
		else
			cc->wait_for_size = (int)v;
		return 0;
	}
	if (!strcmp(key, "weight")) {
		double v;

		if (n->kind == CFG_K_BOOL || (n->kind == CFG_K_STRING && !flag) ||
		    parse_double(text, &v) || !(v >= 0.01) || v > 100) {
			cfg_errors_add(errs, "%s: %s: expected a number 0.01..100, found \"%s\"", w,
				       p, text);
			return -EINVAL;
		}
		cc->weight = v;
		return 0;
	}
	if (n->kind != CFG_K_STRING) {
		cfg_errors_add(errs, "%s: %s: expected string, found %s", w, p, kind_name(n->kind));
		return -EINVAL;
	}
	if (!strcmp(key, "node_name") || !strcmp(key, "name")) {
		char *dst = !strcmp(key, "name") ? cc->name : cc->node_name;
		size_t cap = !strcmp(key, "name") ? sizeof(cc->name) : sizeof(cc->node_name);

		if (strlen(text) >= cap) {
			cfg_errors_add(errs, "%s: %s: too long (at most %zu bytes)", w, p, cap - 1);
			return -EINVAL;
		}
		memcpy(dst, text, strlen(text) + 1);
		return 0;
	}
	if (!strcmp(key, "bind") || !strcmp(key, "advertise")) {
		char *dst = !strcmp(key, "bind") ? cc->bind : cc->advertise;

		if ((text[0] || !strcmp(key, "bind")) && check_listen_addr(text, w, p, errs))
			return -EINVAL;
		if (strlen(text) >= sizeof(cc->bind)) {
			cfg_errors_add(errs, "%s: %s: too long", w, p);
			return -EINVAL;
		}
		memcpy(dst, text, strlen(text) + 1);
		return 0;
	}
	if (!strcmp(key, "profile")) {
		if (strcmp(text, "lan") && strcmp(text, "wan") && strcmp(text, "local")) {
			cfg_errors_add(errs, "%s: %s: invalid profile \"%s\" (lan, wan or local)",
				       w, p, text);
			return -EINVAL;
		}
		memcpy(cc->profile, text, strlen(text) + 1);
		return 0;
	}
	cfg_errors_add(errs, "%s: %s: unknown cluster key", w, p);
	return -EINVAL;
}

static int parse_cluster(struct cfg_doc *d, const struct starling_config *g,
			 struct cfg_errors *errs)
{
	int ret = 0;

	if (want_kind(g, CFG_K_GROUP, "group", errs))
		return -EINVAL;
	for (size_t i = 0; i < g->n_children; i++) {
		const struct starling_config *c = g->children[i];

		if (!cfg_is_cluster_key(c->name)) {
			add_unknown_key(errs, c, cluster_keys,
					sizeof(cluster_keys) / sizeof(cluster_keys[0]) - 1, "");
			ret = -EINVAL;
			continue;
		}
		if (cluster_set(&d->cluster, c->name, c, false, errs))
			ret = -EINVAL;
	}
	return ret;
}

/* ---- top level -------------------------------------------------------- */

static int parse_top(struct cfg_doc *d, struct cfg_errors *errs)
{
	const struct starling_config *r = d->root;
	int ret = 0;

	for (size_t i = 0; i < r->n_children; i++) {
		const struct starling_config *c = r->children[i];

		if (!strcmp(c->name, "plugins_dir")) {
			if (set_string(&d->plugins_dir, c, errs))
				ret = -EINVAL;
		} else if (!strcmp(c->name, "state_dir")) {
			if (set_string(&d->state_dir, c, errs))
				ret = -EINVAL;
		} else if (!strcmp(c->name, "server")) {
			if (want_kind(c, CFG_K_GROUP, "group", errs)) {
				ret = -EINVAL;
				continue;
			}
			for (size_t j = 0; j < c->n_children; j++) {
				const struct starling_config *s = c->children[j];

				if (!strcmp(s->name, "reload_timeout")) {
					if (want_kind(s, CFG_K_STRING, "string", errs) ||
					    parse_duration_ms(s->s, &d->reload_timeout_ms) ||
					    d->reload_timeout_ms <= 0) {
						if (s->kind == CFG_K_STRING)
							cfg_errors_add(
							    errs,
							    "%s: %s: invalid duration "
							    "\"%s\" (a positive duration "
							    "such as \"30s\")",
							    s->where, s->path, s->s);
						ret = -EINVAL;
					}
				} else if (strcmp(s->name, "http_listen_addr")) {
					static const char *const k[] = {"http_listen_addr",
									"reload_timeout"};

					add_unknown_key(errs, s, k, 2, "");
					ret = -EINVAL;
				} else if (set_string(&d->http_listen_addr, s, errs) ||
					   check_listen_addr(s->s, s->where, s->path, errs)) {
					ret = -EINVAL;
				}
			}
		} else if (!strcmp(c->name, "log")) {
			if (want_kind(c, CFG_K_GROUP, "group", errs)) {
				ret = -EINVAL;
				continue;
			}
			for (size_t j = 0; j < c->n_children; j++) {
				const struct starling_config *s = c->children[j];

				if (strcmp(s->name, "level")) {
					static const char *const k[] = {"level"};

					add_unknown_key(errs, s, k, 1, "");
					ret = -EINVAL;
				} else if (want_kind(s, CFG_K_STRING, "string", errs)) {
					ret = -EINVAL;
				} else if (log_parse_level(s->s, &d->log_level)) {
					cfg_errors_add(errs,
						       "%s: %s: invalid level \"%s\" (error, warn, "
						       "info, debug)",
						       s->where, s->path, s->s);
					ret = -EINVAL;
				}
			}
		} else if (!strcmp(c->name, "cluster")) {
			if (parse_cluster(d, c, errs))
				ret = -EINVAL;
		} else if (!strcmp(c->name, "components")) {
			if (want_kind(c, CFG_K_ARRAY, "list of groups ( {...}, ... )", errs))
				ret = -EINVAL;
		} else {
			static const char *const k[] = {"plugins_dir", "state_dir", "server",
							"log",	       "cluster",   "components"};

			add_unknown_key(errs, c, k, sizeof(k) / sizeof(k[0]),
					" (top-level keys: plugins_dir, state_dir, server, log, "
					"cluster, components)");
			ret = -EINVAL;
		}
	}
	return ret;
}

static int doc_from_config(config_t *lc, const char *name, const struct cfg_source *src,
			   struct cfg_doc **out, struct cfg_errors *errs)
{
	struct cfg_doc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->refs = 1;
	d->log_level = STARLING_LOG_INFO;
	cluster_config_defaults(&d->cluster);
	d->file = strdup(name);
	d->state_dir = strdup(DEFAULT_STATE_DIR);
	d->http_listen_addr = strdup(DEFAULT_HTTP_ADDR);
	d->reload_timeout_ms = DEFAULT_RELOAD_TIMEOUT_MS;
	d->root = from_libconfig(config_root_setting(lc), name, "", src);
	if (!d->file || !d->state_dir || !d->http_listen_addr || !d->root) {
		cfg_errors_add(errs, "%s: out of memory", name);
		doc_free(d);
		return -ENOMEM;
	}
	/* Keep the document on errors so that callers can go on and report
	 * component errors too. */
	*out = d;
	return parse_top(d, errs) ? -EINVAL : 0;
}

/* Prepare the text (natural "__" names, @include copies) and parse it. */
static int parse_common(const char *path, const char *text, const char *name,
			const char *include_dir, struct cfg_doc **out, struct cfg_errors *errs)
{
	struct cfg_source src;
	config_t lc;
	int ret;

	*out = NULL;
	ret = cfg_source_prepare(&src, path, text, name, include_dir, errs);
	if (ret)
		return -EINVAL;
	/* libconfig's lexer is quadratic in the length of a string (a 1 MiB
	 * string takes it 2 s, 8 MiB two minutes, while a reload waits):
	 * refuse an oversized text, @includes counted, before parsing. */
	if (strlen(src.text) > CFG_MAX_FILE_BYTES) {
		cfg_errors_add(errs, "%s: %zu bytes with its @includes, over the limit of %d bytes",
			       name, strlen(src.text), CFG_MAX_FILE_BYTES);
		cfg_source_free(&src);
		return -EFBIG;
	}
	config_init(&lc);
	if (config_read_string(&lc, src.text) != CONFIG_TRUE) {
		const char *f = cfg_source_name(&src, config_error_file(&lc));

		cfg_errors_add(errs, "%s:%d: syntax error: %s", f ? f : name,
			       config_error_line(&lc), config_error_text(&lc));
		config_destroy(&lc);
		cfg_source_free(&src);
		return -EINVAL;
	}
	ret = doc_from_config(&lc, name, &src, out, errs);
	config_destroy(&lc);
	cfg_source_free(&src);
	return ret;
}

int cfg_doc_parse_file(const char *path, struct cfg_doc **out, struct cfg_errors *errs)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;

	/* not even read when the file alone is over the limit */
	*out = NULL;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > CFG_MAX_FILE_BYTES) {
		cfg_errors_add(errs, "%s: file is %lld bytes, over the limit of %d bytes", path,
			       (long long)st.st_size, CFG_MAX_FILE_BYTES);
		return -EFBIG;
	}

	/* @include paths are relative to the main file's directory. */
	if (slash && (size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		if (!dir[0])
			memcpy(dir, "/", 2);
		return parse_common(path, NULL, path, dir, out, errs);
	}
	return parse_common(path, NULL, path, NULL, out, errs);
}

int cfg_doc_parse_string(const char *text, const char *name, struct cfg_doc **out,
			 struct cfg_errors *errs)
{
	return parse_common(NULL, text, name, NULL, out, errs);
}

/* Alloy's cluster flags that differ from our keys (Alloy docs
 * reference/cli/run.md): --cluster.join-addresses (a comma list),
 * --cluster.advertise-address; the flags Alloy has and we do not are refused
 * by name. True when the flag was handled here. */
static bool alloy_alias(struct cfg_doc *d, const struct cfg_flag *f, char *path, bool *seen_join,
			struct cfg_errors *errs, int *ret)
{
	static const char *const unsupported[] = {
	    "discover_peers", "enable_tls",	 "tls_ca_path",	     "tls_cert_path",
	    "tls_key_path",   "tls_server_name", "use_discovery_v1", NULL,
	};
	struct starling_config n = {.kind = CFG_K_STRING, .path = path};

	n.where = "flag";

	for (size_t i = 0; unsupported[i]; i++) {
		if (!strcmp(f->key, unsupported[i])) {
			cfg_errors_add(errs, "flag: %s: Alloy's flag is not supported here", path);
			*ret = -EINVAL;
			return true;
		}
	}
	if (!f->value)
		return false;
	if (!strcmp(f->key, "advertise_address")) {
		n.s = f->value;
		if (cluster_set(&d->cluster, "advertise", &n, false, errs))
			*ret = -EINVAL;
		return true;
	}
	if (strcmp(f->key, "join_addresses"))
		return false;
	/* a comma list; the first join flag replaces the file's list */
	char *copy = strdup(f->value), *save = NULL;

	if (!copy) {
		*ret = -ENOMEM;
		return true;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		n.s = tok;
		if (cluster_set(&d->cluster, "join", &n, *seen_join, errs))
			*ret = -EINVAL;
		*seen_join = true;
	}
	free(copy);
	return true;
}

int cfg_doc_apply_overrides(struct cfg_doc *d, const struct cfg_overrides *o,
			    struct cfg_errors *errs)
{
	int ret = 0;
	bool seen_join = false, seen_keys = false;

	if (o->plugins_dir) {
		free(d->plugins_dir);
		d->plugins_dir = strdup(o->plugins_dir);
	}
	if (o->state_dir) {
		free(d->state_dir);
		d->state_dir = strdup(o->state_dir);
	}
	if (o->http_listen_addr) {
		if (check_listen_addr(o->http_listen_addr, "flag", "--server.http.listen-addr",
				      errs)) {
			ret = -EINVAL;
		} else {
			free(d->http_listen_addr);
			d->http_listen_addr = strdup(o->http_listen_addr);
		}
	}
	if (o->log_level && log_parse_level(o->log_level, &d->log_level)) {
		cfg_errors_add(errs, "flag: --log.level: invalid level \"%s\"", o->log_level);
		ret = -EINVAL;
	}
	for (size_t i = 0; i < o->n_cluster; i++) {
		struct starling_config n = {.kind = CFG_K_STRING};
		char path[300];
		bool is_list =
		    !strcmp(o->cluster[i].key, "join") || !strcmp(o->cluster[i].key, "secret_keys");

		snprintf(path, sizeof(path), "--cluster.%s", o->cluster[i].key);
		n.where = "flag";
		n.path = path;
		n.s = o->cluster[i].value ? o->cluster[i].value : "true";
		if (alloy_alias(d, &o->cluster[i], path, &seen_join, errs, &ret))
			continue;
		if (!strcmp(o->cluster[i].key, "secret_keys"))
			log_warn("%s puts the keys in the process's command line, which every user "
				 "can read (/proc/*/cmdline): use cluster.secret_keys_file",
				 path);
		if (!o->cluster[i].value && strcmp(o->cluster[i].key, "enabled")) {
			cfg_errors_add(errs, "flag: %s: needs a value", path);
			ret = -EINVAL;
			continue;
		}
		if (!cfg_is_cluster_key(o->cluster[i].key)) {
			cfg_errors_add(errs, "flag: %s: unknown cluster flag", path);
			ret = -EINVAL;
			continue;
		}
		/* The first --cluster.join replaces the file's list, the next ones add. */
		bool *seen = !strcmp(o->cluster[i].key, "join") ? &seen_join : &seen_keys;

		if (cluster_set(&d->cluster, o->cluster[i].key, &n, is_list && *seen, errs))
			ret = -EINVAL;
		if (is_list)
			*seen = true;
	}
	if ((o->plugins_dir && !d->plugins_dir) || !d->state_dir || !d->http_listen_addr)
		return -ENOMEM;
	return ret;
}

/* ---- schema validation ------------------------------------------------ */

static int validate_group(struct starling_config *g, const struct starling_config_key *schema,
			  bool is_component, struct cfg_errors *errs);

static int check_string_items(const struct starling_config *n, struct cfg_errors *errs)
{
	int ret = 0;

	for (size_t i = 0; i < n->n_children; i++) {
		const struct starling_config *c = n->children[i];

		if (c->kind != CFG_K_STRING) {
			cfg_errors_add(errs, "%s: %s: expected string, found %s", c->where, c->path,
				       kind_name(c->kind));
			ret = -EINVAL;
		}
	}
	return ret;
}

/* A map's members are strings; with STARLING_CFG_F_MULTI_VALUE (`multi`)
 * a member may also be a list of strings. */
static int check_map(const struct starling_config *n, bool multi, struct cfg_errors *errs)
{
	int ret = 0;

	if (n->kind != CFG_K_GROUP) {
		cfg_errors_add(errs, "%s: %s: expected map { key = \"value\"; ... }, found %s",
			       n->where, n->path, kind_name(n->kind));
		return -EINVAL;
	}
	if (!multi)
		return check_string_items(n, errs);
	for (size_t i = 0; i < n->n_children; i++) {
		const struct starling_config *c = n->children[i];

		if (c->kind == CFG_K_ARRAY) {
			if (check_string_items(c, errs))
				ret = -EINVAL;
		} else if (c->kind != CFG_K_STRING) {
			cfg_errors_add(errs,
				       "%s: %s: expected string or list of strings [ \"a\", ... ], "
				       "found %s",
				       c->where, c->path, kind_name(c->kind));
			ret = -EINVAL;
		}
	}
	return ret;
}

static int validate_value(struct starling_config *n, const struct starling_config_key *k,
			  struct cfg_errors *errs)
{
	int64_t v;
	int ret = 0, r;

	switch (k->type) {
	case STARLING_CFG_STRING:
		return want_kind(n, CFG_K_STRING, "string", errs);
	case STARLING_CFG_INT:
		return want_kind(n, CFG_K_INT, "integer", errs);
	case STARLING_CFG_FLOAT:
		if (n->kind == CFG_K_INT || n->kind == CFG_K_FLOAT)
			return 0;
		return want_kind(n, CFG_K_FLOAT, "number", errs);
	case STARLING_CFG_BOOL:
		return want_kind(n, CFG_K_BOOL, "boolean (true or false)", errs);
	case STARLING_CFG_DURATION:
		if (want_kind(n, CFG_K_STRING, "duration string such as \"15s\"", errs))
			return -EINVAL;
		r = parse_duration_ms(n->s, &v);
		if (r) {
			cfg_errors_add(errs, "%s: %s: invalid duration \"%s\"%s", n->where, n->path,
				       n->s, r == -ERANGE ? " (too large)" : "");
			return -EINVAL;
		}
		n->i = v;
		return 0;
	case STARLING_CFG_BYTES:
		if (n->kind == CFG_K_INT) {
			if (n->i < 0) {
				cfg_errors_add(errs, "%s: %s: negative size", n->where, n->path);
				return -EINVAL;
			}
			return 0;
		}
		if (want_kind(n, CFG_K_STRING, "size such as \"10MiB\" or an integer", errs))
			return -EINVAL;
		if (parse_bytes(n->s, &v)) {
			cfg_errors_add(errs, "%s: %s: invalid size \"%s\"", n->where, n->path,
				       n->s);
			return -EINVAL;
		}
		n->i = v;
		return 0;
	case STARLING_CFG_STRING_LIST:
	case STARLING_CFG_REF_LIST:
		if (want_kind(n, CFG_K_ARRAY, "list of strings [ \"a\", ... ]", errs))
			return -EINVAL;
		return check_string_items(n, errs);
	case STARLING_CFG_GROUP:
		if (want_kind(n, CFG_K_GROUP, "group { ... }", errs))
			return -EINVAL;
		return validate_group(n, k->children, false, errs);
	case STARLING_CFG_GROUP_LIST:
		if (want_kind(n, CFG_K_ARRAY, "list of groups ( { ... }, ... )", errs))
			return -EINVAL;
		for (size_t i = 0; i < n->n_children; i++) {
			if (want_kind(n->children[i], CFG_K_GROUP, "group { ... }", errs))
				ret = -EINVAL;
			else if (validate_group(n->children[i], k->children, false, errs))
				ret = -EINVAL;
		}
		return ret;
	case STARLING_CFG_MAP:
		return check_map(n, k->flags & STARLING_CFG_F_MULTI_VALUE, errs);
	case STARLING_CFG_MAP_LIST:
		if (want_kind(n, CFG_K_ARRAY, "list of maps ( { ... }, ... )", errs))
			return -EINVAL;
		for (size_t i = 0; i < n->n_children; i++)
			if (check_map(n->children[i], k->flags & STARLING_CFG_F_MULTI_VALUE, errs))
				ret = -EINVAL;
		return ret;
	case STARLING_CFG_TARGETS:
		/* Inline targets (maps) and names of target-set producers
		 * (strings), side by side. */
		if (want_kind(n, CFG_K_ARRAY,
			      "list of targets and discovery components ( { ... }, \"type.name\" )",
			      errs))
			return -EINVAL;
		for (size_t i = 0; i < n->n_children; i++) {
			const struct starling_config *e = n->children[i];

			if (e->kind == CFG_K_STRING)
				continue;
			if (e->kind != CFG_K_GROUP) {
				cfg_errors_add(errs,
					       "%s: %s: expected a target { key = \"value\"; ... } "
					       "or a component name \"type.name\", found %s",
					       e->where, e->path, kind_name(e->kind));
				ret = -EINVAL;
			} else if (check_map(e, false, errs)) {
				ret = -EINVAL;
			}
		}
		return ret;
	}
	cfg_errors_add(errs, "%s: %s: schema declares unknown type %d", n->where, n->path,
		       (int)k->type);
	return -EINVAL;
}

/* A node for a schema default, parsed like the file would be. */
static struct starling_config *default_node(const struct starling_config *g,
					    const struct starling_config_key *k,
					    struct cfg_errors *errs)
{
	char *path = path_join(g->path, k->name, 0);
	struct starling_config *n;
	enum cfg_kind kind;
	int bad = 0;

	if (!path)
		return NULL;
	switch (k->type) {
	case STARLING_CFG_INT:
		kind = CFG_K_INT;
		break;
	case STARLING_CFG_FLOAT:
		kind = CFG_K_FLOAT;
		break;
	case STARLING_CFG_BOOL:
		kind = CFG_K_BOOL;
		break;
	case STARLING_CFG_GROUP:
		kind = CFG_K_GROUP;
		break;
	default:
		kind = CFG_K_STRING;
		break;
	}
	n = node_new(kind, k->name, g->where, path);
	free(path);
	if (!n)
		return NULL;
	n->is_default = true;
	if (kind == CFG_K_GROUP) {
		if (validate_group(n, k->children, false, errs))
			bad = 1;
	} else if (kind == CFG_K_INT) {
		bad = parse_int64(k->default_value, &n->i);
	} else if (kind == CFG_K_FLOAT) {
		bad = parse_double(k->default_value, &n->f);
	} else if (kind == CFG_K_BOOL) {
		bad = parse_bool(k->default_value, &n->b);
	} else {
		n->s = strdup(k->default_value);
		if (!n->s)
			bad = 1;
		else if (k->type == STARLING_CFG_DURATION)
			bad = parse_duration_ms(n->s, &n->i);
		else if (k->type == STARLING_CFG_BYTES)
			bad = parse_bytes(n->s, &n->i);
		else if (k->type != STARLING_CFG_STRING)
			bad = 1; /* lists have no defaults */
	}
	if (bad) {
		cfg_errors_add(errs, "%s: %s: the plugin's schema default \"%s\" is not a valid %s",
			       g->where, n->path, k->default_value ? k->default_value : "",
			       cfg_type_name(k->type));
		node_free(n);
		return NULL;
	}
	return n;
}

static int validate_group(struct starling_config *g, const struct starling_config_key *schema,
			  bool is_component, struct cfg_errors *errs)
{
	int ret = 0;

	for (size_t i = 0; i < g->n_children; i++) {
		struct starling_config *c = g->children[i];
		const struct starling_config_key *k = NULL;

		if (is_component && (!strcmp(c->name, "type") || !strcmp(c->name, "name")))
			continue;
		for (size_t j = 0; schema && schema[j].name; j++) {
			if (!strcmp(schema[j].name, c->name)) {
				k = &schema[j];
				break;
			}
		}
		if (!k) {
			const char *known[64];
			size_t n = 0;

			if (is_component) {
				known[n++] = "type";
				known[n++] = "name";
			}
			for (size_t j = 0; schema && schema[j].name && n < 64; j++)
				known[n++] = schema[j].name;
			add_unknown_key(errs, c, known, n, "");
			ret = -EINVAL;
			continue;
		}
		if (validate_value(c, k, errs))
			ret = -EINVAL;
	}
	for (size_t j = 0; schema && schema[j].name; j++) {
		const struct starling_config_key *k = &schema[j];
		struct starling_config *n;

		if (member(g, k->name))
			continue;
		if (k->required) {
			cfg_errors_add(errs, "%s: %s%s%s: missing required key (%s)", g->where,
				       g->path, *g->path ? "." : "", k->name,
				       cfg_type_name(k->type));
			ret = -EINVAL;
			continue;
		}
		if (!k->default_value && k->type != STARLING_CFG_GROUP)
			continue;
		n = default_node(g, k, errs);
		if (!n) {
			ret = -EINVAL;
			continue;
		}
		if (node_append(g, n)) {
			node_free(n);
			return -ENOMEM;
		}
	}
	return ret;
}

uint32_t type_set_built_minor(const struct type_set *ts, const struct starling_component_type *t)
{
	for (size_t i = 0; t && ts && ts->built_minor && i < ts->n; i++)
		if (ts->types[i] == t)
			return ts->built_minor[i];
	return STARLING_ABI_MINOR;
}

const struct starling_component_type *type_set_find(const struct type_set *ts, const char *name)
{
	for (size_t i = 0; ts && i < ts->n; i++) {
		if (strcmp(ts->types[i]->name, name))
			continue;
		if (!ts->types[i]->create) /* its plugin was unloaded */
			return ts->load ? ts->load(ts->load_ctx, ts->types[i]) : NULL;
		return ts->types[i];
	}
	return NULL;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static int find_component(const struct cfg_doc *d, const char *id)
{
	for (size_t i = 0; i < d->n_components; i++)
		if (!strcmp(d->components[i].id, id))
			return (int)i;
	return -1;
}

static const char *accepts_name(uint32_t bits)
{
	if (bits == (STARLING_ACCEPTS_SERIES | STARLING_ACCEPTS_PROFILE))
		return "series and profiles";
	if (bits & STARLING_ACCEPTS_PROFILE)
		return "profiles";
	if (bits & STARLING_ACCEPTS_TARGETS)
		return "targets";
	return "series";
}

static int push_index(size_t **v, size_t *n, size_t x, bool unique)
{
	size_t *nv;

	for (size_t i = 0; unique && i < *n; i++)
		if ((*v)[i] == x)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[(*n)++] = x;
	return 0;
}

/* The strings of a STARLING_CFG_TARGETS list name producers of target sets:
 * each must exist and its type must produce targets. The producer is an
 * edge producer -> receiver (it "forwards" to the list's owner), so cycles
 * are refused and receivers start first, as for forward_to. */
static int resolve_target_sources(struct cfg_doc *d, size_t ci, const struct starling_config *list,
				  size_t **adj, size_t *n_adj, struct cfg_errors *errs)
{
	struct cfg_component *c = &d->components[ci];
	int ret = 0;

	for (size_t e = 0; e < list->n_children; e++) {
		const struct starling_config *r = list->children[e];
		const struct cfg_component *p;
		int t;

		if (r->kind != CFG_K_STRING)
			continue;
		t = find_component(d, r->s);
		if (t < 0) {
			cfg_errors_add(errs, "%s: %s: unknown component \"%s\"", r->where, r->path,
				       r->s);
			ret = -EINVAL;
			continue;
		}
		p = &d->components[t];
		if (p->type && !(p->type->produces & STARLING_ACCEPTS_TARGETS)) {
			cfg_errors_add(
			    errs, "%s: %s: component \"%s\" (type %s) does not produce targets",
			    r->where, r->path, r->s, p->type_name);
			ret = -EINVAL;
			continue;
		}
		if (push_index(&adj[t], &n_adj[t], ci, false) ||
		    push_index(&c->target_sources, &c->n_target_sources, (size_t)t, true))
			return -ENOMEM;
	}
	return ret;
}

/* Resolve every REF_LIST of component ci; edges go into c->forward (only for
 * forward_to) and into the adjacency used for cycles and ordering. */
static int resolve_refs(struct cfg_doc *d, size_t ci, size_t **adj, size_t *n_adj,
			struct cfg_errors *errs)
{
	struct cfg_component *c = &d->components[ci];
	int ret = 0;

	if (!c->type)
		return 0;
	for (size_t j = 0; c->type->schema && c->type->schema[j].name; j++) {
		const struct starling_config_key *k = &c->type->schema[j];
		const struct starling_config *list;

		if (k->type != STARLING_CFG_REF_LIST && k->type != STARLING_CFG_TARGETS)
			continue;
		list = member(c->node, k->name);
		if (!list || list->kind != CFG_K_ARRAY)
			continue;
		if (k->type == STARLING_CFG_TARGETS) {
			int r = resolve_target_sources(d, ci, list, adj, n_adj, errs);

			if (r == -ENOMEM)
				return r;
			if (r)
				ret = r;
			continue;
		}
		for (size_t e = 0; e < list->n_children; e++) {
			const struct starling_config *r = list->children[e];
			int t;
			size_t *nv;

			if (r->kind != CFG_K_STRING)
				continue;
			t = find_component(d, r->s);
			if (t < 0) {
				cfg_errors_add(errs, "%s: %s: unknown component \"%s\"", r->where,
					       r->path, r->s);
				ret = -EINVAL;
				continue;
			}
			if (d->components[t].type && k->ref_accepts &&
			    (d->components[t].type->accepts & k->ref_accepts) != k->ref_accepts) {
				cfg_errors_add(
				    errs, "%s: %s: component \"%s\" (type %s) does not accept %s",
				    r->where, r->path, r->s, d->components[t].type_name,
				    accepts_name(k->ref_accepts));
				ret = -EINVAL;
				continue;
			}
			nv = realloc(adj[ci], (n_adj[ci] + 1) * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			adj[ci] = nv;
			nv[n_adj[ci]++] = (size_t)t;
			if (!strcmp(k->name, "forward_to")) {
				bool dup = false;

				for (size_t x = 0; x < c->n_forward; x++)
					dup |= c->forward[x] == (size_t)t;
				if (dup)
					continue;
				nv = realloc(c->forward, (c->n_forward + 1) * sizeof(*nv));
				if (!nv)
					return -ENOMEM;
				c->forward = nv;
				nv[c->n_forward++] = (size_t)t;
			}
		}
	}
	return ret;
}

/* Depth-first post-order: a component is emitted after everything it
 * forwards to, so receivers come first. Colour 1 = on the stack. */
static int visit(struct cfg_doc *d, size_t v, size_t **adj, const size_t *n_adj, int *colour,
		 size_t *stack, size_t depth, size_t *n_order, struct cfg_errors *errs)
{
	int ret = 0;

	colour[v] = 1;
	stack[depth] = v;
	for (size_t i = 0; i < n_adj[v]; i++) {
		size_t w = adj[v][i];

		if (colour[w] == 1) {
			char buf[2048];
			size_t off = 0, start = depth;

			while (stack[start] != w)
				start--;
			for (size_t k = start; k <= depth; k++)
				off += (size_t)snprintf(buf + off,
							off < sizeof(buf) ? sizeof(buf) - off : 0,
							"%s -> ", d->components[stack[k]].id);
			if (off < sizeof(buf))
				snprintf(buf + off, sizeof(buf) - off, "%s", d->components[w].id);
			cfg_errors_add(errs, "%s: %s: forwarding cycle: %s",
				       d->components[w].node->where, d->components[w].node->path,
				       buf);
			ret = -EINVAL;
		} else if (colour[w] == 0) {
			if (visit(d, w, adj, n_adj, colour, stack, depth + 1, n_order, errs))
				ret = -EINVAL;
		}
	}
	colour[v] = 2;
	d->order[(*n_order)++] = v;
	return ret;
}

/* "known types: a, b" or a hint that no plugin was loaded (malloc'd). */
static char *known_types(const struct type_set *ts)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!ts || !ts->n)
		return strdup("no plugins loaded: check plugins_dir / --plugins-dir");
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fputs("known types: ", f);
	for (size_t i = 0; i < ts->n; i++)
		fprintf(f, "%s%s", i ? ", " : "", ts->types[i]->name);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

int cfg_doc_validate(struct cfg_doc *d, const struct type_set *types, struct cfg_errors *errs)
{
	struct starling_config *list = member(d->root, "components");
	size_t n = list && list->kind == CFG_K_ARRAY ? list->n_children : 0;
	size_t **adj = NULL, *n_adj = NULL, *stack = NULL, n_order = 0;
	int *colour = NULL;
	int ret = 0;

	d->components = calloc(n ? n : 1, sizeof(*d->components));
	d->order = calloc(n ? n : 1, sizeof(*d->order));
	adj = calloc(n ? n : 1, sizeof(*adj));
	n_adj = calloc(n ? n : 1, sizeof(*n_adj));
	colour = calloc(n ? n : 1, sizeof(*colour));
	stack = calloc(n ? n : 1, sizeof(*stack));
	if (!d->components || !d->order || !adj || !n_adj || !colour || !stack) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct starling_config *g = list->children[i];
		struct cfg_component *c = &d->components[d->n_components];
		const struct starling_config *tn, *nn;
		bool ok = true;

		if (want_kind(g, CFG_K_GROUP, "group { type = ...; name = ...; }", errs)) {
			ret = -EINVAL;
			continue;
		}
		tn = member(g, "type");
		nn = member(g, "name");
		if (!tn) {
			cfg_errors_add(errs, "%s: %s.type: missing required key (string)", g->where,
				       g->path);
			ok = false;
		} else if (want_kind(tn, CFG_K_STRING, "string", errs)) {
			ok = false;
		}
		if (!nn) {
			cfg_errors_add(errs, "%s: %s.name: missing required key (string)", g->where,
				       g->path);
			ok = false;
		} else if (want_kind(nn, CFG_K_STRING, "string", errs)) {
			ok = false;
		} else if (!valid_name(nn->s)) {
			cfg_errors_add(errs,
				       "%s: %s: invalid name \"%s\" (letters, digits, '_' and '-')",
				       nn->where, nn->path, nn->s);
			ok = false;
		}
		if (!ok) {
			ret = -EINVAL;
			continue;
		}
		c->node = g;
		c->type_name = strdup(tn->s);
		c->name = strdup(nn->s);
		if (!c->type_name || !c->name || asprintf(&c->id, "%s.%s", tn->s, nn->s) < 0) {
			c->id = NULL;
			component_release(c);
			ret = -ENOMEM;
			goto out;
		}
		d->n_components++;
		for (size_t j = 0; j + 1 < d->n_components; j++) {
			if (!strcmp(d->components[j].id, c->id)) {
				cfg_errors_add(
				    errs,
				    "%s: %s: duplicate component id \"%s\" (first defined "
				    "at %s)",
				    g->where, g->path, c->id, d->components[j].node->where);
				ret = -EINVAL;
				break;
			}
		}
		c->type = type_set_find(types, tn->s);
		c->type_built_minor = type_set_built_minor(types, c->type);
		if (!c->type) {
			char *known = known_types(types);

			const char **names = calloc(types->n ? types->n : 1, sizeof(*names));
			const char *close = NULL;

			for (size_t j = 0; names && j < types->n; j++)
				names[j] = types->types[j]->name;
			if (names)
				close = suggest_closest(tn->s, names, types->n);
			free(names);
			if (close)
				cfg_errors_add(errs,
					       "%s: %s: unknown component type \"%s\" (did you "
					       "mean \"%s\"?)",
					       tn->where, tn->path, tn->s, close);
			else
				cfg_errors_add(errs, "%s: %s: unknown component type \"%s\" (%s)",
					       tn->where, tn->path, tn->s, known ? known : "?");
			free(known);
			ret = -EINVAL;
			continue;
		}
		if (validate_group(g, c->type->schema, true, errs))
			ret = -EINVAL;
	}
	for (size_t i = 0; i < d->n_components; i++) {
		int r = resolve_refs(d, i, adj, n_adj, errs);

		if (r == -ENOMEM) {
			ret = r;
			goto out;
		}
		if (r)
			ret = -EINVAL;
	}
	for (size_t i = 0; i < d->n_components; i++)
		if (!colour[i] && visit(d, i, adj, n_adj, colour, stack, 0, &n_order, errs))
			ret = -EINVAL;
	for (size_t i = 0; i < d->n_components && !ret; i++) {
		d->components[i].canon = cfg_canonical(d->components[i].node);
		if (!d->components[i].canon)
			ret = -ENOMEM;
	}
out:
	for (size_t i = 0; adj && i < n; i++)
		free(adj[i]);
	free(adj);
	free(n_adj);
	free(colour);
	free(stack);
	return ret;
}

/* ---- canonical form --------------------------------------------------- */

static void canon_write(FILE *f, const struct starling_config *n)
{
	if (n->name)
		fprintf(f, "%s=", n->name);
	switch (n->kind) {
	case CFG_K_STRING:
		fputc('"', f);
		for (const char *p = n->s; *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fputc('"', f);
		break;
	case CFG_K_INT:
		fprintf(f, "%lld", (long long)n->i);
		break;
	case CFG_K_FLOAT:
		fprintf(f, "%.17g", n->f);
		break;
	case CFG_K_BOOL:
		fputs(n->b ? "true" : "false", f);
		break;
	case CFG_K_GROUP:
	case CFG_K_ARRAY:
		fputc(n->kind == CFG_K_GROUP ? '{' : '(', f);
		for (size_t i = 0; i < n->n_children; i++) {
			canon_write(f, n->children[i]);
			fputc(';', f);
		}
		fputc(n->kind == CFG_K_GROUP ? '}' : ')', f);
		break;
	}
}

char *cfg_canonical(const struct starling_config *node)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	canon_write(f, node);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- getters ---------------------------------------------------------- */

const starling_config *cfg_lookup(const starling_config *node, const char *path)
{
	const struct starling_config *n = node;
	const char *p = path;

	if (!n)
		return NULL;
	if (!p || !*p)
		return n;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		const struct starling_config *next = NULL;

		if (len == 0)
			return NULL;
		if (p[0] == '[' && p[len - 1] == ']' && n->kind == CFG_K_ARRAY) {
			char num[24];
			int64_t idx;

			if (len - 2 >= sizeof(num))
				return NULL;
			memcpy(num, p + 1, len - 2);
			num[len - 2] = '\0';
			if (parse_int64(num, &idx) || idx < 0 || (size_t)idx >= n->n_children)
				return NULL;
			next = n->children[idx];
		} else if (n->kind == CFG_K_GROUP) {
			for (size_t i = 0; i < n->n_children; i++) {
				const char *nm = n->children[i]->name;

				if (nm && strlen(nm) == len && !memcmp(nm, p, len)) {
					next = n->children[i];
					break;
				}
			}
		}
		if (!next)
			return NULL;
		n = next;
		p += len;
		if (*p == '.')
			p++;
	}
	return n;
}

size_t cfg_count(const starling_config *node)
{
	if (!node || (node->kind != CFG_K_GROUP && node->kind != CFG_K_ARRAY))
		return 0;
	return node->n_children;
}

const starling_config *cfg_child(const starling_config *node, size_t index)
{
	if (index >= cfg_count(node))
		return NULL;
	return node->children[index];
}

const char *cfg_name(const starling_config *node)
{
	return node ? node->name : NULL;
}

int cfg_get_string(const starling_config *node, const char *path, const char **out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind != CFG_K_STRING)
		return -EINVAL;
	*out = n->s;
	return 0;
}

int cfg_get_int(const starling_config *node, const char *path, int64_t *out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind != CFG_K_INT)
		return -EINVAL;
	*out = n->i;
	return 0;
}

int cfg_get_float(const starling_config *node, const char *path, double *out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind == CFG_K_INT)
		*out = (double)n->i;
	else if (n->kind == CFG_K_FLOAT)
		*out = n->f;
	else
		return -EINVAL;
	return 0;
}

int cfg_get_bool(const starling_config *node, const char *path, bool *out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind != CFG_K_BOOL)
		return -EINVAL;
	*out = n->b;
	return 0;
}

int cfg_get_duration_ms(const starling_config *node, const char *path, int64_t *out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind != CFG_K_STRING)
		return -EINVAL;
	return parse_duration_ms(n->s, out) ? -EINVAL : 0;
}

int cfg_get_bytes(const starling_config *node, const char *path, int64_t *out)
{
	const struct starling_config *n = cfg_lookup(node, path);

	if (!n)
		return -ENOENT;
	if (n->kind == CFG_K_INT) {
		*out = n->i;
		return 0;
	}
	if (n->kind != CFG_K_STRING)
		return -EINVAL;
	return parse_bytes(n->s, out) ? -EINVAL : 0;
}

const char *cfg_where(const starling_config *node)
{
	return node ? node->where : "?";
}

const struct starling_config *cfg_find_where(const struct starling_config *node, const char *where,
					     size_t len)
{
	if (!node)
		return NULL;
	if (strlen(node->where) == len && !strncmp(node->where, where, len))
		return node;
	for (size_t i = 0; i < node->n_children; i++) {
		const struct starling_config *hit = cfg_find_where(node->children[i], where, len);

		if (hit)
			return hit;
	}
	return NULL;
}
