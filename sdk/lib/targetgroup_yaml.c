/*
 * Target-group documents in YAML (libyaml document loader), as Prometheus
 * reads file_sd YAML files: yaml.UnmarshalStrict into `[]*targetgroup.Group`
 * (P discovery/file/file.go readFile, discovery/targetgroup/targetgroup.go
 * UnmarshalYAML). Strict means unknown keys and duplicate keys are errors;
 * keys match exactly. A scalar of any type is taken by its text where a
 * string is expected (yaml.v2 does the same for string fields); a null
 * leaves the member at its zero value.
 */
#include <starling/targetgroup.h>

#include "targetgroup_internal.h"

#include <errno.h>
#include <string.h>

#include <yaml.h>

struct ywalk {
	yaml_document_t *doc;
	size_t budget; /* node visits left (bounds alias expansion) */
	char *err;
	size_t errlen;
};

static size_t line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE)
		return false;
	if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
		return true;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static yaml_node_t *visit(struct ywalk *w, int id)
{
	yaml_node_t *n = yaml_document_get_node(w->doc, id);

	if (!n)
		return NULL;
	if (w->budget == 0) {
		tgroup_err(w->err, w->errlen, "line %zu: document contains excessive aliasing",
			   line(n));
		return NULL;
	}
	w->budget--;
	return n;
}

static int parse_targets(struct ywalk *w, struct starling_tgroup *t, const yaml_node_t *n)
{
	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE) {
		tgroup_err(w->err, w->errlen, "line %zu: \"targets\" must be a list of strings",
			   line(n));
		return -EINVAL;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = visit(w, *it);
		int rc;

		if (!e)
			return -EINVAL;
		if (e->type != YAML_SCALAR_NODE) {
			tgroup_err(w->err, w->errlen, "line %zu: a target must be a string",
				   line(e));
			return -EINVAL;
		}
		if (is_null(e))
			rc = tgroup_add_target(t, "", 0);
		else
			rc = tgroup_add_target(t, (const char *)e->data.scalar.value,
					       e->data.scalar.length);
		if (rc == -EINVAL)
			tgroup_err(w->err, w->errlen, "line %zu: a target contains a NUL byte",
				   line(e));
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_labels(struct ywalk *w, struct starling_tgroup *t, const yaml_node_t *n)
{
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE) {
		tgroup_err(w->err, w->errlen, "line %zu: \"labels\" must be a map of strings",
			   line(n));
		return -EINVAL;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = visit(w, p->key), *v = visit(w, p->value);
		const char *name;
		size_t len;
		int rc;

		if (!k || !v)
			return -EINVAL;
		if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
			tgroup_err(w->err, w->errlen,
				   "line %zu: labels must map label names to strings", line(k));
			return -EINVAL;
		}
		name = (const char *)k->data.scalar.value;
		len = k->data.scalar.length;
		if (!tgroup_label_name_ok(name, len)) {
			tgroup_err(w->err, w->errlen,
				   "line %zu: \"%.64s\" is not a valid label name", line(k), name);
			return -EINVAL;
		}
		/* Strict: a repeated key is an error, not "last wins" (a
		 * repeat of a null-valued key is not noticed). */
		if (starling_lset_get(&t->labels, name)) {
			tgroup_err(w->err, w->errlen,
				   "line %zu: label \"%s\" is already set in this map", line(k),
				   name);
			return -EINVAL;
		}
		if (is_null(v))
			continue;
		rc = starling_lset_set(&t->labels, name, len, (const char *)v->data.scalar.value,
				       v->data.scalar.length);
		if (rc == -EINVAL)
			tgroup_err(w->err, w->errlen, "line %zu: label \"%s\": bad value", line(v),
				   name);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_group(struct ywalk *w, struct starling_tgroups *out, const yaml_node_t *n)
{
	struct starling_tgroup *t;
	bool seen_t = false, seen_l = false;

	if (is_null(n)) {
		tgroup_err(w->err, w->errlen, "line %zu: nil target group item found", line(n));
		return -EINVAL;
	}
	if (n->type != YAML_MAPPING_NODE) {
		tgroup_err(w->err, w->errlen, "line %zu: a target group must be a map", line(n));
		return -EINVAL;
	}
	t = tgroups_push(out);
	if (!t)
		return -ENOMEM;
	t->line = line(n);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = visit(w, p->key), *v = visit(w, p->value);
		const char *key;
		int rc;

		if (!k || !v)
			return -EINVAL;
		key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
		if (strcmp(key, "targets") == 0 && !seen_t) {
			seen_t = true;
			rc = parse_targets(w, t, v);
		} else if (strcmp(key, "labels") == 0 && !seen_l) {
			seen_l = true;
			rc = parse_labels(w, t, v);
		} else {
			tgroup_err(w->err, w->errlen, "line %zu: %s field \"%.64s\"", line(k),
				   strcmp(key, "targets") == 0 || strcmp(key, "labels") == 0
				       ? "repeated"
				       : "unknown",
				   key);
			rc = -EINVAL;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_root(struct ywalk *w, struct starling_tgroups *out)
{
	yaml_node_t *root = yaml_document_get_root_node(w->doc);

	if (!root || is_null(root))
		return 0; /* an empty document is an empty list */
	if (root->type != YAML_SEQUENCE_NODE) {
		tgroup_err(w->err, w->errlen,
			   "line %zu: the document must be a list of target groups", line(root));
		return -EINVAL;
	}
	for (yaml_node_item_t *it = root->data.sequence.items.start;
	     it < root->data.sequence.items.top; it++) {
		yaml_node_t *g = visit(w, *it);
		int rc;

		if (!g)
			return -EINVAL;
		rc = parse_group(w, out, g);
		if (rc)
			return rc;
	}
	return 0;
}

int starling_tgroups_parse_yaml(struct starling_tgroups *out, const char *buf, size_t len,
				char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct ywalk w = {.doc = &doc, .err = err, .errlen = errlen};
	int rc;

	starling_tgroups_init(out);
	if (!yaml_parser_initialize(&parser)) {
		tgroup_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		tgroup_err(err, errlen, "line %zu: %s", parser.problem_mark.line + 1,
			   parser.problem ? parser.problem : "invalid YAML");
		rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		yaml_parser_delete(&parser);
		return rc;
	}
	w.budget = 100 * (size_t)(doc.nodes.top - doc.nodes.start) + 1000;
	rc = parse_root(&w, out);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc) {
		if (rc == -ENOMEM)
			tgroup_err(err, errlen, "out of memory");
		starling_tgroups_free(out);
	}
	return rc;
}
