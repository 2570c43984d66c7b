/*
 * Config model: parsing into the tree, schema validation with file:line
 * errors, defaults, getters, graph resolution (order, cycles, kinds), flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "config.h"

/* ---- fake component types --------------------------------------------- */

static int fake_create(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, void **out)
{
	return 0;
}

static void fake_destroy(void *inst)
{
}

static int fake_receive(void *inst, const struct starling_series_batch *b)
{
	return 0;
}

static int fake_receive_profile(void *inst, const struct starling_profile *p)
{
	return 0;
}

static const struct starling_config_key opts_keys[] = {
    {.name = "a", .type = STARLING_CFG_STRING, .default_value = "x"},
    {.name = "b", .type = STARLING_CFG_INT},
    {0},
};

static const struct starling_config_key endpoint_keys[] = {
    {.name = "url", .type = STARLING_CFG_STRING, .required = true},
    {.name = "timeout", .type = STARLING_CFG_DURATION, .default_value = "30s"},
    {0},
};

static const struct starling_config_key src_schema[] = {
    {.name = "target", .type = STARLING_CFG_STRING, .required = true},
    {.name = "interval", .type = STARLING_CFG_DURATION, .default_value = "15s"},
    {.name = "count", .type = STARLING_CFG_INT, .default_value = "3"},
    {.name = "ratio", .type = STARLING_CFG_FLOAT, .default_value = "0.5"},
    {.name = "enabled", .type = STARLING_CFG_BOOL, .default_value = "true"},
    {.name = "buf", .type = STARLING_CFG_BYTES, .default_value = "1MiB"},
    {.name = "tags", .type = STARLING_CFG_STRING_LIST},
    {.name = "opts", .type = STARLING_CFG_GROUP, .children = opts_keys},
    {.name = "endpoint", .type = STARLING_CFG_GROUP_LIST, .children = endpoint_keys},
    {.name = "labels", .type = STARLING_CFG_MAP},
    {.name = "targets", .type = STARLING_CFG_MAP_LIST},
    {.name = "params", .type = STARLING_CFG_MAP, .flags = STARLING_CFG_F_MULTI_VALUE},
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_SERIES},
    {.name = "profiles_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_PROFILE},
    {0},
};

static const struct starling_config_key sink_schema[] = {
    {.name = "path", .type = STARLING_CFG_STRING, .default_value = "out"},
    {0},
};

static const struct starling_config_key proc_schema[] = {
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_SERIES},
    {0},
};

static const struct starling_component_type src_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.src",
    .schema = src_schema,
    .create = fake_create,
    .destroy = fake_destroy,
};

static const struct starling_component_type sink_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.sink",
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = sink_schema,
    .create = fake_create,
    .destroy = fake_destroy,
    .receive_series = fake_receive,
};

static const struct starling_component_type psink_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.psink",
    .accepts = STARLING_ACCEPTS_PROFILE,
    .schema = sink_schema,
    .create = fake_create,
    .destroy = fake_destroy,
    .receive_profile = fake_receive_profile,
};

static const struct starling_component_type proc_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.proc",
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = proc_schema,
    .create = fake_create,
    .destroy = fake_destroy,
    .receive_series = fake_receive,
};

static int fake_receive_targets(void *inst, const char *source,
				const struct starling_target_set *set)
{
	return 0;
}

/* A discovery component: produces targets, may relabel others' sets. */
static const struct starling_config_key disc_schema[] = {
    {.name = "targets", .type = STARLING_CFG_TARGETS},
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_TARGETS},
    {0},
};

static const struct starling_component_type disc_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.disc",
    .accepts = STARLING_ACCEPTS_TARGETS,
    .produces = STARLING_ACCEPTS_TARGETS,
    .schema = disc_schema,
    .create = fake_create,
    .destroy = fake_destroy,
    .receive_targets = fake_receive_targets,
};

/* A scraper: inline targets and discovery components side by side. */
static const struct starling_config_key scr_schema[] = {
    {.name = "targets", .type = STARLING_CFG_TARGETS, .required = true},
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_SERIES},
    {0},
};

static const struct starling_component_type scr_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "test.scr",
    .accepts = STARLING_ACCEPTS_TARGETS,
    .produces = STARLING_ACCEPTS_SERIES,
    .schema = scr_schema,
    .create = fake_create,
    .destroy = fake_destroy,
    .receive_targets = fake_receive_targets,
};

static const struct starling_component_type *const all_types[] = {
    &src_type, &sink_type, &psink_type, &proc_type, &disc_type, &scr_type};
static const struct type_set types = {.types = all_types, .n = 6};

/* ---- helpers ------------------------------------------------------------ */

static char cfg_path[64];
static struct cfg_errors errs;

static void write_cfg(const char *text)
{
	FILE *f;

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/starling-test-config-%d.cfg", (int)getpid());
	f = fopen(cfg_path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* Parse + validate; returns the document (or NULL), errors in `errs`. */
static struct cfg_doc *load(const char *text)
{
	struct cfg_doc *d = NULL;

	cfg_errors_free(&errs);
	write_cfg(text);
	cfg_doc_parse_file(cfg_path, &d, &errs);
	if (d)
		cfg_doc_validate(d, &types, &errs);
	return d;
}

/* Whether an error "<cfg_path>:<line>: <rest>" (rest a prefix) was reported. */
static bool has_error(int line, const char *rest)
{
	char want[512];

	snprintf(want, sizeof(want), "%s:%d: %s", cfg_path, line, rest);
	for (size_t i = 0; i < errs.n; i++)
		if (!strncmp(errs.msgs[i], want, strlen(want)))
			return true;
	fprintf(stderr, "\nmissing error: %s\ngot:\n", want);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  %s\n", errs.msgs[i]);
	return false;
}

/* Prometheus and Alloy examples write __address__ as a map key; libconfig
 * names cannot start with "_", so the host hands libconfig "*address__"
 * (the spelling that keeps working). Strings, comments and line numbers are
 * untouched, and the same holds in @include files, whose errors name the
 * included file. Unknown keys get a "did you mean". */
static void test_natural_names_and_include(void)
{
	char inc[96];
	struct cfg_doc *d;
	const starling_config *t;
	const char *v = NULL;
	FILE *f;

	snprintf(inc, sizeof(inc), "/tmp/starling-test-config-%d.inc", (int)getpid());
	f = fopen(inc, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("# a comment with __x\n"
	      "{ __address__ = \"h:2\"; __param_x = \"__y\"; },\n"
	      "{ __metrics_path__ = 1; }\n",
	      f);
	fclose(f);
	{
		char text[1024];

		snprintf(text, sizeof(text),
			 "components = (\n"
			 "  { type = \"test.src\"; name = \"a\"; target = \"__t\"; /* __c */\n"
			 "    targets = ( { __address__ = \"h:1\"; __scheme__ = \"https\"; },\n"
			 "                { *address__ = \"h:3\"; },\n"
			 "@include \"%s\"\n"
			 "    ); intervall = \"1s\"; }\n"
			 ");\n",
			 inc);
		d = load(text);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	t = cfg_lookup(d->components[0].node, "targets");
	CU_ASSERT_EQUAL_FATAL(cfg_count(t), 4);
	/* Plugins read "*" as "__". */
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(t, 0), "*address__", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "h:1");
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(t, 0), "*scheme__", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "https");
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(t, 1), "*address__", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "h:3");
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(t, 2), "*address__", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "h:2");
	/* Strings are not rewritten. */
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(t, 2), "*param_x", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "__y");
	CU_ASSERT_EQUAL(cfg_get_string(d->components[0].node, "target", &v), 0);
	CU_ASSERT_STRING_EQUAL(v, "__t");
	/* Lines stay the user's: main file line 6, included file line 3 with
	 * the path as written. */
	CU_ASSERT_TRUE(has_error(6, "components.[0].intervall: unknown key (did you mean "
				    "\"interval\"?)"));
	{
		char want[256];
		bool found = false;

		snprintf(want, sizeof(want),
			 "%s:3: components.[0].targets.[3].__metrics_path__: expected string", inc);
		for (size_t i = 0; i < errs.n; i++)
			found |= !strncmp(errs.msgs[i], want, strlen(want));
		CU_ASSERT_TRUE(found);
	}
	cfg_doc_unref(d);
	unlink(inc);
}

static size_t index_of(const struct cfg_doc *d, const char *id)
{
	for (size_t i = 0; i < d->n_components; i++)
		if (!strcmp(d->components[i].id, id))
			return i;
	CU_FAIL("component not found");
	return 0;
}

static size_t position_in_order(const struct cfg_doc *d, const char *id)
{
	size_t idx = index_of(d, id);

	for (size_t k = 0; k < d->n_components; k++)
		if (d->order[k] == idx)
			return k;
	return (size_t)-1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_valid_and_defaults(void)
{
	struct cfg_doc *d =
	    load("plugins_dir = \"/p\";\n"
		 "state_dir = \"/s\";\n"
		 "server = { http_listen_addr = \"127.0.0.1:9999\"; reload_timeout = \"5s\"; };\n"
		 "log = { level = \"debug\"; };\n"
		 "components = (\n"
		 "  { type = \"test.src\"; name = \"a\"; target = \"t\";\n"
		 "    tags = [ \"x\", \"y\" ]; opts = { b = 7; };\n"
		 "    endpoint = ( { url = \"http://e\"; } );\n"
		 "    labels = { job = \"j\"; };\n"
		 "    targets = ( { address = \"h:1\"; } );\n"
		 "    ratio = 2;\n"
		 "    forward_to = [ \"test.sink.s\" ]; },\n"
		 "  { type = \"test.sink\"; name = \"s\"; }\n"
		 ");\n");
	const starling_config *c;
	const char *s;
	int64_t i;
	double f;
	bool b;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_STRING_EQUAL(d->plugins_dir, "/p");
	CU_ASSERT_STRING_EQUAL(d->state_dir, "/s");
	CU_ASSERT_STRING_EQUAL(d->http_listen_addr, "127.0.0.1:9999");
	CU_ASSERT_EQUAL(d->reload_timeout_ms, 5000);
	CU_ASSERT_EQUAL(d->log_level, STARLING_LOG_DEBUG);
	CU_ASSERT_EQUAL_FATAL(d->n_components, 2);
	c = d->components[index_of(d, "test.src.a")].node;
	CU_ASSERT_EQUAL(cfg_get_string(c, "target", &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "t");
	CU_ASSERT_EQUAL(cfg_get_duration_ms(c, "interval", &i), 0);
	CU_ASSERT_EQUAL(i, 15000);
	CU_ASSERT_EQUAL(cfg_get_int(c, "count", &i), 0);
	CU_ASSERT_EQUAL(i, 3);
	CU_ASSERT_EQUAL(cfg_get_float(c, "ratio", &f), 0); /* int literal for a float */
	CU_ASSERT_DOUBLE_EQUAL(f, 2.0, 1e-12);
	CU_ASSERT_EQUAL(cfg_get_bool(c, "enabled", &b), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(cfg_get_bytes(c, "buf", &i), 0);
	CU_ASSERT_EQUAL(i, 1048576);
	CU_ASSERT_EQUAL(cfg_get_string(c, "opts.a", &s), 0); /* group default */
	CU_ASSERT_STRING_EQUAL(s, "x");
	CU_ASSERT_EQUAL(cfg_get_int(c, "opts.b", &i), 0);
	CU_ASSERT_EQUAL(i, 7);
	CU_ASSERT_EQUAL(cfg_count(cfg_lookup(c, "tags")), 2);
	CU_ASSERT_STRING_EQUAL(cfg_child(cfg_lookup(c, "tags"), 1)->s, "y");
	CU_ASSERT_PTR_NULL(cfg_name(cfg_child(cfg_lookup(c, "tags"), 1)));
	CU_ASSERT_EQUAL(cfg_get_duration_ms(c, "endpoint.[0].timeout", &i), 0);
	CU_ASSERT_EQUAL(i, 30000);
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(cfg_lookup(c, "labels"), 0), NULL, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "j");
	CU_ASSERT_STRING_EQUAL(cfg_name(cfg_child(cfg_lookup(c, "labels"), 0)), "job");
	/* Absent without default, and type mismatches. */
	CU_ASSERT_EQUAL(cfg_get_string(c, "nope", &s), -ENOENT);
	CU_ASSERT_EQUAL(cfg_get_int(c, "target", &i), -EINVAL);
	CU_ASSERT_EQUAL(cfg_get_bool(c, "count", &b), -EINVAL);
	CU_ASSERT_PTR_NULL(cfg_lookup(c, "opts..a"));
	CU_ASSERT_PTR_NULL(cfg_lookup(c, "endpoint.[5]"));
	/* where = file:line of the setting. */
	{
		char want[128];

		snprintf(want, sizeof(want), "%s:7", cfg_path);
		CU_ASSERT_STRING_EQUAL(cfg_where(cfg_lookup(c, "tags")), want);
	}
	/* forward_to resolved; receivers start first. */
	CU_ASSERT_EQUAL(d->components[index_of(d, "test.src.a")].n_forward, 1);
	CU_ASSERT_TRUE(position_in_order(d, "test.sink.s") < position_in_order(d, "test.src.a"));
	cfg_doc_unref(d);
}

/* A MAP key with STARLING_CFG_F_MULTI_VALUE takes a string or a list of
 * strings per member (Prometheus' url.Values for `params`); other maps
 * still take strings only. The same validation runs for run, check-config
 * and reload (cfg_doc_validate). */
static void test_multi_value_map(void)
{
	struct cfg_doc *d =
	    load("components = (\n"
		 "  { type = \"test.src\"; name = \"a\"; target = \"t\";\n"
		 "    params = { module = [ \"http_2xx\", \"tcp\" ]; target = \"x\";\n"
		 "               none = [ ]; }; }\n"
		 ");\n");
	const starling_config *c, *m;
	const char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(errs.n, 0);
	c = d->components[index_of(d, "test.src.a")].node;
	m = cfg_lookup(c, "params.module");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(cfg_get_string(m, NULL, &s), -EINVAL); /* a list */
	CU_ASSERT_EQUAL_FATAL(cfg_count(m), 2);
	CU_ASSERT_EQUAL(cfg_get_string(cfg_child(m, 1), NULL, &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "tcp");
	CU_ASSERT_EQUAL(cfg_get_string(c, "params.target", &s), 0);
	CU_ASSERT_STRING_EQUAL(s, "x");
	CU_ASSERT_EQUAL(cfg_count(cfg_lookup(c, "params.none")), 0);
	cfg_doc_unref(d);

	d = load("components = (\n"
		 "  { type = \"test.src\"; name = \"a\"; target = \"t\";\n" /* 2 */
		 "    params = { m = [ 1 ]; };\n"			    /* 3 */
		 "    labels = { a = [ \"x\" ]; }; },\n"		    /* 4 */
		 "  { type = \"test.src\"; name = \"b\"; target = \"t\";\n" /* 5 */
		 "    params = { g = { a = \"b\"; }; n = 1; }; }\n"	    /* 6 */
		 ");\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(3, "components.[0].params.m.[0]: expected string, found integer"));
	CU_ASSERT_TRUE(has_error(4, "components.[0].labels.a: expected string, found list"));
	CU_ASSERT_TRUE(has_error(6, "components.[1].params.g: expected string or list of strings"));
	CU_ASSERT_TRUE(has_error(6, "components.[1].params.n: expected string or list of strings"));
	cfg_doc_unref(d);
}

static void test_order_chain(void)
{
	struct cfg_doc *d =
	    load("components = (\n"
		 "  { type = \"test.src\"; name = \"a\"; target = \"t\";\n"
		 "    forward_to = [ \"test.proc.p1\" ]; },\n"
		 "  { type = \"test.proc\"; name = \"p1\"; forward_to = [ \"test.proc.p2\" ]; },\n"
		 "  { type = \"test.proc\"; name = \"p2\"; forward_to = [ \"test.sink.s\" ]; },\n"
		 "  { type = \"test.sink\"; name = \"s\"; }\n"
		 ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_TRUE(position_in_order(d, "test.sink.s") < position_in_order(d, "test.proc.p2"));
	CU_ASSERT_TRUE(position_in_order(d, "test.proc.p2") < position_in_order(d, "test.proc.p1"));
	CU_ASSERT_TRUE(position_in_order(d, "test.proc.p1") < position_in_order(d, "test.src.a"));
	cfg_doc_unref(d);
}

static void test_schema_errors(void)
{
	struct cfg_doc *d =
	    load("components = (\n"
		 "  { type = \"test.src\"; name = \"a\";\n"			 /* 2 */
		 "    colour = \"red\";\n"					 /* 3 */
		 "    count = \"3\";\n"						 /* 4 */
		 "    interval = \"15x\";\n"					 /* 5 */
		 "    buf = \"12QB\";\n"					 /* 6 */
		 "    enabled = 1;\n"						 /* 7 */
		 "    tags = [ 1, 2 ];\n"					 /* 8 */
		 "    opts = { c = 1; };\n"					 /* 9 */
		 "    endpoint = ( { timeout = \"1s\"; } );\n"			 /* 10 */
		 "    labels = { a = 1; };\n"					 /* 11 */
		 "    interval2 = 5; },\n"					 /* 12 */
		 "  { type = \"no.such\"; name = \"b\"; },\n"			 /* 13 */
		 "  { name = \"c\"; },\n"					 /* 14 */
		 "  { type = \"test.sink\"; name = \"bad name\"; },\n"		 /* 15 */
		 "  { type = \"test.sink\"; name = \"s\"; },\n"			 /* 16 */
		 "  { type = \"test.sink\"; name = \"s\"; },\n"			 /* 17 */
		 "  { type = \"test.sink\"; name = \"t\"; path = [ \"x\" ]; }\n" /* 18 */
		 ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(2, "components.[0].target: missing required key"));
	CU_ASSERT_TRUE(has_error(3, "components.[0].colour: unknown key"));
	CU_ASSERT_TRUE(has_error(4, "components.[0].count: expected integer, found string"));
	CU_ASSERT_TRUE(has_error(5, "components.[0].interval: invalid duration \"15x\""));
	CU_ASSERT_TRUE(has_error(6, "components.[0].buf: invalid size \"12QB\""));
	CU_ASSERT_TRUE(has_error(7, "components.[0].enabled: expected boolean"));
	CU_ASSERT_TRUE(has_error(8, "components.[0].tags.[0]: expected string, found integer"));
	CU_ASSERT_TRUE(has_error(9, "components.[0].opts.c: unknown key"));
	CU_ASSERT_TRUE(has_error(10, "components.[0].endpoint.[0].url: missing required key"));
	CU_ASSERT_TRUE(has_error(11, "components.[0].labels.a: expected string, found integer"));
	CU_ASSERT_TRUE(has_error(12, "components.[0].interval2: unknown key"));
	CU_ASSERT_TRUE(has_error(13, "components.[1].type: unknown component type \"no.such\""));
	CU_ASSERT_TRUE(has_error(14, "components.[2].type: missing required key"));
	CU_ASSERT_TRUE(has_error(15, "components.[3].name: invalid name \"bad name\""));
	CU_ASSERT_TRUE(has_error(17, "components.[5]: duplicate component id \"test.sink.s\""));
	CU_ASSERT_TRUE(has_error(18, "components.[6].path: expected string, found list"));
	cfg_doc_unref(d);
}

static void test_reference_errors(void)
{
	struct cfg_doc *d = load("components = (\n"
				 "  { type = \"test.src\"; name = \"a\"; target = \"t\";\n"
				 "    forward_to = [ \"test.sink.nope\",\n"    /* 3 */
				 "                   \"test.psink.p\" ];\n"    /* 4 */
				 "    profiles_to = [ \"test.sink.s\" ]; },\n" /* 5 */
				 "  { type = \"test.sink\"; name = \"s\"; },\n"
				 "  { type = \"test.psink\"; name = \"p\"; }\n"
				 ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(3, "components.[0].forward_to.[0]: unknown component "
				    "\"test.sink.nope\""));
	CU_ASSERT_TRUE(has_error(4, "components.[0].forward_to.[1]: component \"test.psink.p\" "
				    "(type test.psink) does not accept series"));
	CU_ASSERT_TRUE(has_error(5, "components.[0].profiles_to.[0]: component \"test.sink.s\" "
				    "(type test.sink) does not accept profiles"));
	cfg_doc_unref(d);
}

static void test_cycles(void)
{
	struct cfg_doc *d = load(
	    "components = (\n"
	    "  { type = \"test.proc\"; name = \"x\"; forward_to = [ \"test.proc.y\" ]; },\n"
	    "  { type = \"test.proc\"; name = \"y\"; forward_to = [ \"test.proc.z\" ]; },\n"
	    "  { type = \"test.proc\"; name = \"z\"; forward_to = [ \"test.proc.x\" ]; },\n"
	    "  { type = \"test.proc\"; name = \"self\"; forward_to = [ \"test.proc.self\" ]; }\n"
	    ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(2, "components.[0]: forwarding cycle: test.proc.x -> "
				    "test.proc.y -> test.proc.z -> test.proc.x"));
	CU_ASSERT_TRUE(has_error(5, "components.[3]: forwarding cycle: test.proc.self -> "
				    "test.proc.self"));
	cfg_doc_unref(d);
}

/* STARLING_CFG_TARGETS: producers are resolved in config order (repeats
 * dropped); like forward_to, receivers come before producers in start order. */
static void test_target_sources(void)
{
	struct cfg_doc *d =
	    load("components = (\n"
		 "  { type = \"test.scr\"; name = \"s\"; forward_to = [ \"test.sink.o\" ];\n"
		 "    targets = ( \"test.disc.r\", { *address__ = \"h:1\"; },\n"
		 "                \"test.disc.f\", \"test.disc.r\" ); },\n"
		 "  { type = \"test.disc\"; name = \"r\"; targets = ( \"test.disc.f\" ); },\n"
		 "  { type = \"test.disc\"; name = \"f\"; },\n"
		 "  { type = \"test.sink\"; name = \"o\"; }\n"
		 ");\n");
	const struct cfg_component *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL_FATAL(errs.n, 0);
	c = &d->components[index_of(d, "test.scr.s")];
	CU_ASSERT_EQUAL_FATAL(c->n_target_sources, 2);
	CU_ASSERT_EQUAL(c->target_sources[0], index_of(d, "test.disc.r"));
	CU_ASSERT_EQUAL(c->target_sources[1], index_of(d, "test.disc.f"));
	CU_ASSERT_EQUAL(d->components[index_of(d, "test.disc.f")].n_target_sources, 0);
	/* receivers first: o, s before r before f */
	CU_ASSERT_TRUE(position_in_order(d, "test.sink.o") < position_in_order(d, "test.scr.s"));
	CU_ASSERT_TRUE(position_in_order(d, "test.scr.s") < position_in_order(d, "test.disc.r"));
	CU_ASSERT_TRUE(position_in_order(d, "test.disc.r") < position_in_order(d, "test.disc.f"));
	cfg_doc_unref(d);
}

static void test_target_source_errors(void)
{
	struct cfg_doc *d =
	    load("components = (\n"
		 "  { type = \"test.scr\"; name = \"s\";\n"
		 "    targets = ( \"discovery.file.nope\",\n" /* 3 */
		 "                \"test.sink.o\",\n"	      /* 4 */
		 "                { *address__ = \"h:1\"; },\n"
		 "                \"test.scr.t\" ); },\n" /* 6 */
		 "  { type = \"test.sink\"; name = \"o\"; },\n"
		 "  { type = \"test.scr\"; name = \"t\"; targets = ( 5 ); },\n" /* 8 */
		 "  { type = \"test.disc\"; name = \"x\"; targets = ( \"test.disc.y\" ); },\n"
		 "  { type = \"test.disc\"; name = \"y\"; targets = ( \"test.disc.x\" ); },\n"
		 "  { type = \"test.disc\"; name = \"me\"; targets = ( \"test.disc.me\" ); },\n"
		 "  { type = \"test.disc\"; name = \"w\"; forward_to = [ \"test.sink.o\" ]; }\n"
		 ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(3, "components.[0].targets.[0]: unknown component "
				    "\"discovery.file.nope\""));
	CU_ASSERT_TRUE(has_error(4, "components.[0].targets.[1]: component \"test.sink.o\" "
				    "(type test.sink) does not produce targets"));
	CU_ASSERT_TRUE(has_error(6, "components.[0].targets.[3]: component \"test.scr.t\" "
				    "(type test.scr) does not produce targets"));
	CU_ASSERT_TRUE(has_error(8,
				 "components.[2].targets.[0]: expected a target { key = \"value\"; "
				 "... } or a component name \"type.name\", found integer"));
	CU_ASSERT_TRUE(has_error(9, "components.[3]: forwarding cycle: test.disc.x -> "
				    "test.disc.y -> test.disc.x"));
	CU_ASSERT_TRUE(has_error(11, "components.[5]: forwarding cycle: test.disc.me -> "
				     "test.disc.me"));
	CU_ASSERT_TRUE(has_error(12, "components.[6].forward_to.[0]: component \"test.sink.o\" "
				     "(type test.sink) does not accept targets"));
	cfg_doc_unref(d);
}

static void test_top_level_and_cluster(void)
{
	struct cfg_doc *d =
	    load("bogus = 1;\n"								    /* 1 */
		 "server = { http_listen_addr = \"nowhere\"; reload_timeout = \"0s\"; };\n" /* 2 */
		 "log = { level = \"loud\"; };\n"					    /* 3 */
		 "cluster = {\n"
		 "  enabled = \"yes\";\n"		/* 5 */
		 "  wait_timeout = \"10x\";\n"		/* 6 */
		 "  bind = \"0.0.0.0\";\n"		/* 7 */
		 "  profile = \"moon\";\n"		/* 8 */
		 "  max_join_peers = -1;\n"		/* 9 */
		 "  secret_keys = [ \"notbase64\" ];\n" /* 10 */
		 "  join = [ \"a:1\", \"b:x\" ];\n"	/* 11 */
		 "  nope = 1;\n"			/* 12 */
		 "};\n"
		 "components = ( { type = \"test.sink\"; name = \"s\"; colour = 1; } );\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(has_error(1, "bogus: unknown key"));
	CU_ASSERT_TRUE(has_error(2, "server.http_listen_addr: invalid address \"nowhere\""));
	CU_ASSERT_TRUE(has_error(2, "server.reload_timeout: invalid duration \"0s\""));
	CU_ASSERT_TRUE(has_error(3, "log.level: invalid level \"loud\""));
	CU_ASSERT_TRUE(has_error(5, "cluster.enabled: expected boolean"));
	CU_ASSERT_TRUE(has_error(6, "cluster.wait_timeout: invalid duration \"10x\""));
	CU_ASSERT_TRUE(has_error(7, "cluster.bind: invalid address \"0.0.0.0\""));
	CU_ASSERT_TRUE(has_error(8, "cluster.profile: invalid profile \"moon\""));
	CU_ASSERT_TRUE(has_error(9, "cluster.max_join_peers: expected integer"));
	CU_ASSERT_TRUE(has_error(10, "cluster.secret_keys.[0]: invalid key"));
	CU_ASSERT_TRUE(has_error(11, "cluster.join.[1]: invalid address \"b:x\""));
	CU_ASSERT_TRUE(has_error(12, "cluster.nope: unknown key"));
	/* Component errors are still reported next to top-level ones. */
	CU_ASSERT_TRUE(has_error(14, "components.[0].colour: unknown key"));
	cfg_doc_unref(d);
}

static void test_syntax_error(void)
{
	struct cfg_doc *d = load("components = (\n  { type = = \"test.sink\"; }\n);\n");

	CU_ASSERT_PTR_NULL(d);
	CU_ASSERT_TRUE(has_error(2, "syntax error"));
	cfg_errors_free(&errs);
	CU_ASSERT_EQUAL(cfg_doc_parse_file("/nonexistent/starling.cfg", &d, &errs), -EINVAL);
	CU_ASSERT_PTR_NULL(d);
	CU_ASSERT_EQUAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "/nonexistent/starling.cfg: cannot read file"));
}

/* A config file over 1 MiB (one 50 MB string kept libconfig's lexer busy
 * for minutes) is refused before parsing, at once and with its size. */
static void test_oversized_file(void)
{
	char path[] = "/tmp/starling-cfg-XXXXXX";
	int fd = mkstemp(path);
	struct cfg_doc *d = (struct cfg_doc *)1;
	FILE *f;

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	f = fdopen(fd, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("components = ( ); x = \"", f);
	for (int i = 0; i < CFG_MAX_FILE_BYTES; i++)
		fputc('x', f);
	fputs("\";\n", f);
	fclose(f);
	cfg_errors_free(&errs);
	CU_ASSERT_EQUAL(cfg_doc_parse_file(path, &d, &errs), -EFBIG);
	CU_ASSERT_PTR_NULL(d);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "over the limit of 1048576 bytes"));
	cfg_errors_free(&errs);
	unlink(path);
}

static void test_cluster_and_flags(void)
{
	struct cfg_doc *d = load("cluster = { enabled = false; node_name = \"file\";\n"
				 "  join = [ \"x:1\" ]; rejoin_interval = \"30s\"; weight = 2;\n"
				 "  secret_keys = [ \"QUJDREVGR0hJSktMTU5PUA==\" ]; };\n");
	struct cfg_flag flags[] = {
	    {.key = "enabled"},
	    {.key = "node_name", .value = "flag-node"},
	    {.key = "join", .value = "a:7946"},
	    {.key = "join", .value = "b:7946"},
	    {.key = "wait_for_size", .value = "3"},
	};
	struct cfg_overrides o = {.cluster = flags, .n_cluster = 5, .log_level = "warn"};

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_FALSE(d->cluster.enabled);
	CU_ASSERT_STRING_EQUAL(d->cluster.node_name, "file");
	CU_ASSERT_EQUAL(d->cluster.rejoin_interval_ms, 30000);
	CU_ASSERT_DOUBLE_EQUAL(d->cluster.weight, 2.0, 1e-12);
	CU_ASSERT_EQUAL(d->cluster.n_secret_keys, 1);
	CU_ASSERT_EQUAL(d->cluster.max_join_peers, 5); /* default */
	CU_ASSERT_EQUAL(cfg_doc_apply_overrides(d, &o, &errs), 0);
	CU_ASSERT_TRUE(d->cluster.enabled);
	CU_ASSERT_STRING_EQUAL(d->cluster.node_name, "flag-node");
	CU_ASSERT_EQUAL_FATAL(d->cluster.n_join, 2); /* flags replace the file's list */
	CU_ASSERT_STRING_EQUAL(d->cluster.join[0], "a:7946");
	CU_ASSERT_STRING_EQUAL(d->cluster.join[1], "b:7946");
	CU_ASSERT_EQUAL(d->cluster.wait_for_size, 3);
	CU_ASSERT_EQUAL(d->log_level, STARLING_LOG_WARN);
	{
		struct cfg_flag bad[] = {
		    {.key = "wait_timeout", .value = "10x"},
		    {.key = "colour", .value = "red"},
		    {.key = "http_listen_addr", .value = "x"},
		};
		struct cfg_overrides ob = {
		    .cluster = bad, .n_cluster = 3, .http_listen_addr = "nowhere"};

		CU_ASSERT_EQUAL(cfg_doc_apply_overrides(d, &ob, &errs), -EINVAL);
		CU_ASSERT_TRUE(errs.n >= 3);
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(errs.msgs[1], "flag: --cluster.wait_timeout: invalid duration \"10x\""));
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(errs.msgs[2], "--cluster.colour: unknown cluster flag"));
		CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "--server.http.listen-addr"));
	}
	cfg_doc_unref(d);
}

/* Alloy's flag names (alloy docs reference/cli/run.md) as aliases; the
 * security keys; Alloy flags we do not have are refused by name. */
static void test_alloy_flags_and_security_keys(void)
{
	struct cfg_doc *d = load("cluster = { enabled = true; require_encryption = true;\n"
				 "  secret_keys_file = \"/etc/starling/keys\"; handover_delay = "
				 "\"3s\"; };\n");
	struct cfg_flag flags[] = {
	    {.key = "join_addresses", .value = "a:7946, b:7946,c"},
	    {.key = "advertise_address", .value = "10.0.0.5:7946"},
	    {.key = "advertise_interfaces", .value = "eth1,en0"},
	    {.key = "wait_for_size", .value = "2"},
	};
	struct cfg_overrides o = {.cluster = flags, .n_cluster = 4};

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_TRUE(d->cluster.require_encryption);
	CU_ASSERT_STRING_EQUAL(d->cluster.secret_keys_file, "/etc/starling/keys");
	CU_ASSERT_EQUAL(d->cluster.handover_ms, 3000);
	CU_ASSERT_EQUAL(cfg_doc_apply_overrides(d, &o, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(d->cluster.n_join, 3);
	CU_ASSERT_STRING_EQUAL(d->cluster.join[0], "a:7946");
	CU_ASSERT_STRING_EQUAL(d->cluster.join[1], "b:7946");
	CU_ASSERT_STRING_EQUAL(d->cluster.join[2], "c");
	CU_ASSERT_STRING_EQUAL(d->cluster.advertise, "10.0.0.5:7946");
	CU_ASSERT_STRING_EQUAL(d->cluster.advertise_interfaces, "eth1,en0");
	{
		struct cfg_flag bad[] = {
		    {.key = "discover_peers", .value = "provider=k8s"},
		    {.key = "weight", .value = "1000"},
		};
		struct cfg_overrides ob = {.cluster = bad, .n_cluster = 2};
		size_t before = errs.n;

		CU_ASSERT_EQUAL(cfg_doc_apply_overrides(d, &ob, &errs), -EINVAL);
		CU_ASSERT_EQUAL_FATAL(errs.n, before + 2);
		CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[before], "not supported"));
		CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[before + 1], "0.01..100"));
	}
	cfg_doc_unref(d);
}

static void test_canonical_ignores_lines(void)
{
	struct cfg_doc *a =
	    load("components = ( { type = \"test.sink\"; name = \"s\"; path = \"p\"; } );\n");
	struct cfg_doc *b = load("\n\ncomponents = (\n { type = \"test.sink\";\n name = \"s\";\n"
				 " path = \"p\"; } );\n");
	struct cfg_doc *c =
	    load("components = ( { type = \"test.sink\"; name = \"s\"; path = \"q\"; } );\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(a->components[0].canon, b->components[0].canon);
	CU_ASSERT_STRING_NOT_EQUAL(a->components[0].canon, c->components[0].canon);
	cfg_doc_unref(a);
	cfg_doc_unref(b);
	cfg_doc_unref(c);
}

static void test_bad_schema_default(void)
{
	static const struct starling_config_key bad_schema[] = {
	    {.name = "d", .type = STARLING_CFG_DURATION, .default_value = "soon"},
	    {0},
	};
	static const struct starling_component_type bad_type = {
	    .struct_size = sizeof(struct starling_component_type),
	    .name = "test.bad",
	    .schema = bad_schema,
	    .create = fake_create,
	    .destroy = fake_destroy,
	};
	const struct starling_component_type *tv[] = {&bad_type};
	struct type_set ts = {.types = tv, .n = 1};
	struct cfg_doc *d = NULL;

	cfg_errors_free(&errs);
	write_cfg("components = ( { type = \"test.bad\"; name = \"b\"; } );\n");
	CU_ASSERT_EQUAL(cfg_doc_parse_file(cfg_path, &d, &errs), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(cfg_doc_validate(d, &ts, &errs), -EINVAL);
	CU_ASSERT_TRUE(has_error(1, "components.[0].d: the plugin's schema default \"soon\""));
	cfg_doc_unref(d);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("host_config", NULL, NULL);
	CU_add_test(s, "valid config, defaults and getters", test_valid_and_defaults);
	CU_add_test(s, "start order of a chain", test_order_chain);
	CU_add_test(s, "map members: string or list of strings", test_multi_value_map);
	CU_add_test(s, "schema errors with file:line", test_schema_errors);
	CU_add_test(s, "natural __ names, @include, did you mean", test_natural_names_and_include);
	CU_add_test(s, "unknown and wrong-kind references", test_reference_errors);
	CU_add_test(s, "forwarding cycles", test_cycles);
	CU_add_test(s, "target sources: config order, start order", test_target_sources);
	CU_add_test(s, "target sources: unknown, wrong kind, cycles", test_target_source_errors);
	CU_add_test(s, "top-level and cluster errors", test_top_level_and_cluster);
	CU_add_test(s, "syntax and I/O errors", test_syntax_error);
	CU_add_test(s, "cluster keys and flags", test_cluster_and_flags);
	CU_add_test(s, "oversized config file refused", test_oversized_file);
	CU_add_test(s, "alloy flags and security keys", test_alloy_flags_and_security_keys);
	CU_add_test(s, "canonical form ignores layout", test_canonical_ignores_lines);
	CU_add_test(s, "invalid schema default", test_bad_schema_default);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	cfg_errors_free(&errs);
	unlink(cfg_path);
	return fails ? 1 : 0;
}
