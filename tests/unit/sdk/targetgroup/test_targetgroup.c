/*
 * Unit tests: target-group documents (sdk/lib/targetgroup*.c).
 * Expected behaviour from Prometheus discovery/targetgroup/targetgroup.go
 * (UnmarshalJSON/UnmarshalYAML), discovery/file/file.go (readFile: strict
 * YAML, DisallowUnknownFields JSON, "nil target group item found") and Alloy
 * internal/component/discovery/target.go (target labels win over group
 * labels).
 */
#include <starling/targetgroup.h>

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *render_target(const struct starling_target *t)
{
	static char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->n_labels; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s=%s", i ? "," : "",
				      t->labels[i].name, t->labels[i].value);
	return buf;
}

static int parse(bool yaml, const char *doc, struct starling_tgroups *g, char *err, size_t n)
{
	return yaml ? starling_tgroups_parse_yaml(g, doc, strlen(doc), err, n)
		    : starling_tgroups_parse_json(g, doc, strlen(doc), err, n);
}

static void test_json_ok(void)
{
	const char *doc = "[{\"targets\": [\"a:1\", \"b:2\"], \"labels\": {\"env\": \"prod\", "
			  "\"__address__\": \"x:9\"}},\n"
			  " {\"Targets\": [\"c:3\"]},\n"
			  " {\"targets\": [], \"labels\": null}]";
	struct starling_tgroups g;
	struct starling_target_builder b;
	struct starling_target_set set;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(parse(false, doc, &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 3);
	CU_ASSERT_EQUAL(g.v[0].n_targets, 2);
	CU_ASSERT_EQUAL(g.v[1].n_targets, 1); /* Go matches keys case-insensitively */
	CU_ASSERT_EQUAL(g.v[2].n_targets, 0);
	CU_ASSERT_EQUAL(starling_tgroups_set_label(&g, "__meta_filepath", "/x/a.json"), 0);

	starling_target_builder_init(&b);
	CU_ASSERT_EQUAL(starling_target_builder_add(&b, &g), 0);
	starling_target_builder_view(&b, &set);
	CU_ASSERT_EQUAL_FATAL(set.n_targets, 3);
	/* the target's __address__ wins over the group's */
	CU_ASSERT_STRING_EQUAL(render_target(&set.targets[0]),
			       "__address__=a:1,__meta_filepath=/x/a.json,env=prod");
	CU_ASSERT_STRING_EQUAL(render_target(&set.targets[1]),
			       "__address__=b:2,__meta_filepath=/x/a.json,env=prod");
	CU_ASSERT_STRING_EQUAL(render_target(&set.targets[2]),
			       "__address__=c:3,__meta_filepath=/x/a.json");
	starling_target_builder_free(&b);
	starling_tgroups_free(&g);

	/* null document and empty list: no groups, no error */
	CU_ASSERT_EQUAL(parse(false, "null", &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 0);
	CU_ASSERT_EQUAL(parse(false, " [ ]\n", &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 0);
	starling_tgroups_free(&g);
}

struct bad {
	const char *doc;
	const char *err; /* substring */
};

static void check_bad(bool yaml, const struct bad *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct starling_tgroups g;
		char err[256] = "";
		int rc = parse(yaml, cases[i].doc, &g, err, sizeof(err));

		if (rc != -EINVAL || !strstr(err, cases[i].err))
			fprintf(stderr, "case %zu (%s): rc %d err '%s'\n", i,
				yaml ? "yaml" : "json", rc, err);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].err));
		CU_ASSERT_EQUAL(g.n, 0);
	}
}

static void test_json_bad(void)
{
	const struct bad cases[] = {
	    {"[{\"targets\": [\"a:1\"]},\n null]", "nil target group item found"},
	    {"[{\"targets\": [\"a:1\"], \"extra\": 1}]", "unknown field \"extra\""},
	    {"[{\"targets\": \"a:1\"}]", "\"targets\" must be a list"},
	    {"[{\"targets\": [1]}]", "\"targets\" must be a list"},
	    {"[{\"labels\": {\"a-b\": \"x\"}}]", "not a valid label name"},
	    {"[{\"labels\": {\"1a\": \"x\"}}]", "not a valid label name"},
	    {"[{\"labels\": {\"a\": 1}}]", "value must be a string"},
	    {"{\"targets\": []}", "must be a list of target groups"},
	    {"[\n{\"targets\": [\"a\",]}]", "line 2"},
	    {"[] x", "line 1: invalid JSON after"},
	    {"", "invalid JSON"},
	};

	check_bad(false, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_yaml_ok(void)
{
	const char *doc = "- targets: ['a:1', b:2]\n"
			  "  labels:\n"
			  "    env: prod\n"
			  "    port: 9100\n"
			  "    empty: ~\n"
			  "- targets:\n"
			  "  - c:3\n"
			  "  - ''\n";
	struct starling_tgroups g;
	struct starling_target_builder b;
	struct starling_target_set set;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(parse(true, doc, &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 2);
	CU_ASSERT_EQUAL(g.v[0].line, 1);
	CU_ASSERT_EQUAL(g.v[1].line, 6);
	starling_target_builder_init(&b);
	CU_ASSERT_EQUAL(starling_target_builder_add(&b, &g), 0);
	starling_target_builder_view(&b, &set);
	CU_ASSERT_EQUAL_FATAL(set.n_targets, 3);
	CU_ASSERT_EQUAL(b.dropped, 1); /* '' has no __address__ */
	/* a YAML int where a string is expected is taken by its text */
	CU_ASSERT_STRING_EQUAL(render_target(&set.targets[0]),
			       "__address__=a:1,env=prod,port=9100");
	CU_ASSERT_STRING_EQUAL(render_target(&set.targets[2]), "__address__=c:3");
	starling_target_builder_free(&b);
	starling_tgroups_free(&g);

	CU_ASSERT_EQUAL(parse(true, "", &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 0);
	CU_ASSERT_EQUAL(parse(true, "[]", &g, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(g.n, 0);
	/* aliases are expanded */
	CU_ASSERT_EQUAL(parse(true, "- targets: &t [x:1]\n- targets: *t\n", &g, err, sizeof(err)),
			0);
	CU_ASSERT_EQUAL(g.n, 2);
	CU_ASSERT_EQUAL(g.v[1].n_targets, 1);
	starling_tgroups_free(&g);
}

static void test_yaml_bad(void)
{
	const struct bad cases[] = {
	    {"- targets: [a:1]\n- ~\n", "line 2: nil target group item found"},
	    {"- targets: [a:1]\n  Targets: [b]\n", "line 2: unknown field \"Targets\""},
	    {"- targets: [a:1]\n  labels: {a: x, a: y}\n", "line 2: label \"a\" is already set"},
	    {"- targets: [a:1]\n  targets: [b]\n", "repeated field"},
	    {"- targets: a:1\n", "line 1: \"targets\" must be a list"},
	    {"- labels:\n    bad-name: x\n", "line 2: \"bad-name\" is not a valid label name"},
	    {"- labels:\n    a: [x]\n", "labels must map label names to strings"},
	    {"targets: [a]\n", "must be a list of target groups"},
	    {"- targets: [a\n- x\n", "line "},
	    {"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
	     "must be a list"},
	    {"- &a {targets: [x]}\n"
	     "- &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
	     "a target group must be a map"},
	};

	check_bad(true, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_yaml_alias_bomb(void)
{
	/* 10^6 expansions of a 40-node document: refused, quickly. */
	char doc[4096];
	size_t o = 0;
	struct starling_tgroups g;
	char err[256] = "";

	o += (size_t)snprintf(doc + o, sizeof(doc) - o,
			      "- targets: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 6; i++)
		o += (size_t)snprintf(
		    doc + o, sizeof(doc) - o,
		    "- labels: {}\n  targets: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, "
		    "*l%d, *l%d, *l%d, *l%d, *l%d]\n",
		    i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	CU_ASSERT_EQUAL(parse(true, doc, &g, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(g.n, 0);
}

static void test_builder(void)
{
	struct starling_tgroups g;
	struct starling_target_builder b;
	struct starling_target_set set, set2;
	struct starling_lset ls;
	char err[64];
	uint64_t h;

	CU_ASSERT_EQUAL_FATAL(parse(false,
				    "[{\"targets\":[\"a\",\"\",\"b\"],\"labels\":{\"z\":\"1\"}}]",
				    &g, err, sizeof(err)),
			      0);
	starling_target_builder_init(&b);
	for (int round = 0; round < 3; round++) {
		starling_target_builder_clear(&b);
		CU_ASSERT_EQUAL(starling_target_builder_add(&b, &g), 0);
		CU_ASSERT_EQUAL(starling_target_builder_add(&b, &g), 0);
		starling_target_builder_view(&b, &set);
		CU_ASSERT_EQUAL(set.n_targets, 4);
		CU_ASSERT_EQUAL(b.dropped, 2);
	}
	h = starling_target_set_hash(&set);
	starling_lset_init(&ls);
	starling_lset_set_str(&ls, "__address__", "c");
	CU_ASSERT_EQUAL(starling_target_builder_add_lset(&b, &ls), 0);
	starling_target_builder_view(&b, &set2);
	CU_ASSERT_EQUAL(set2.n_targets, 5);
	CU_ASSERT_STRING_EQUAL(render_target(&set2.targets[4]), "__address__=c");
	CU_ASSERT_STRING_EQUAL(render_target(&set2.targets[0]), "__address__=a,z=1");
	CU_ASSERT_NOT_EQUAL(starling_target_set_hash(&set2), h);
	starling_lset_free(&ls);
	starling_target_builder_free(&b);
	starling_tgroups_free(&g);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("targetgroup", NULL, NULL);
	CU_add_test(s, "JSON documents", test_json_ok);
	CU_add_test(s, "JSON errors", test_json_bad);
	CU_add_test(s, "YAML documents", test_yaml_ok);
	CU_add_test(s, "YAML errors", test_yaml_bad);
	CU_add_test(s, "YAML alias expansion is bounded", test_yaml_alias_bomb);
	CU_add_test(s, "flattening into target sets", test_builder);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
