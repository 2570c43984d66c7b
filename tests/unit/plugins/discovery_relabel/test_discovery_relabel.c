/*
 * Unit tests of discovery.relabel through the mock host.
 *
 * Semantics from Alloy internal/component/discovery/relabel/relabel.go
 * (rules run top-down on every target, the kept targets are the output,
 * no rules pass everything through, the output is recomputed on every
 * input), the rule block of Alloy docs/sources/shared/reference/components/
 * rule-block.md (field names and defaults: separator ";", regex "(.*)",
 * replacement "$1", action "replace") and Prometheus model/relabel/
 * relabel.go and relabel_test.go (actions; hashmod of "baz" modulo 1000 is
 * 976).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drelabel.h"
#include "mock_host.h"

static const char *render(const struct starling_target_set *set)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; set && i < set->n_targets; i++) {
		const struct starling_target *t = &set->targets[i];

		for (size_t j = 0; j < t->n_labels && o < sizeof(buf); j++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s=%s", j ? "," : "",
					      t->labels[j].name, t->labels[j].value);
		if (o < sizeof(buf))
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\n");
	}
	return buf;
}

struct fx {
	struct mock_host *m;
	void *inst;
};

static int fx_new(struct fx *f, const char *cfg)
{
	char err[256];
	int rc;

	f->m = mock_host_new("discovery.relabel.t", discovery_relabel_type.schema, cfg, err,
			     sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->m);
	mock_host_set_quiet(f->m, true);
	rc = discovery_relabel_type.create(mock_host_api(f->m), mock_host_self(f->m),
					   mock_host_config(f->m), &f->inst);
	if (rc)
		return rc;
	return discovery_relabel_type.start(f->inst);
}

static void fx_free(struct fx *f)
{
	discovery_relabel_type.stop(f->inst);
	discovery_relabel_type.destroy(f->inst);
	mock_host_free(f->m);
}

/* Deliver one target set of "k=v,k=v" targets from source. */
static int deliver(struct fx *f, const char *source, const char *const *targets)
{
	struct mock_targets *mt = mock_targets_new();
	int rc;

	for (; *targets; targets++) {
		char buf[512], *save = NULL, *tok, *labels[8] = {0};
		size_t n = 0;

		snprintf(buf, sizeof(buf), "%s", *targets);
		for (tok = strtok_r(buf, ",", &save); tok && n < 7;
		     tok = strtok_r(NULL, ",", &save))
			labels[n++] = tok;
		mock_targets_add(mt, labels[0], labels[1], labels[2], labels[3], labels[4],
				 labels[5], labels[6], NULL);
	}
	rc = mock_host_deliver_targets(&discovery_relabel_type, f->inst, source,
				       mock_targets_set(mt));
	mock_targets_free(mt);
	return rc;
}

static const char *out(struct fx *f)
{
	return render(mock_host_last_targets(f->m));
}

static void test_pass_through(void)
{
	struct fx f;

	/* no rules: every target as it came */
	CU_ASSERT_EQUAL_FATAL(
	    fx_new(&f,
		   "targets = ( \"discovery.file.a\", { *address__ = \"h:1\"; env = \"x\"; } );"),
	    0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=h:1,env=x\n");
	CU_ASSERT_EQUAL(deliver(&f, "discovery.file.a",
				(const char *const[]){"__address__=a:1,__meta_filepath=/f.json",
						      "__address__=b:2", NULL}),
			0);
	/* merged in the order of the targets list */
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:1,__meta_filepath=/f.json\n"
					"__address__=b:2\n"
					"__address__=h:1,env=x\n");
	CU_ASSERT_EQUAL(mock_host_metric(f.m, "starling_discovery_targets", NULL), 3);
	fx_free(&f);
}

static void test_rules(void)
{
	struct fx f;

	CU_ASSERT_EQUAL_FATAL(
	    fx_new(
		&f,
		"targets = ( \"discovery.file.a\" );\n"
		"rule = (\n"
		/* drop what came from the staging file */
		"  { source_labels = [\"__meta_filepath\"]; regex = \".*staging.*\";"
		"    action = \"drop\"; },\n"
		/* defaults: separator ';', regex (.*), replacement $1, replace */
		"  { source_labels = [\"__address__\", \"zone\"]; target_label = \"joined\"; },\n"
		/* regex anchored at both ends, capture group */
		"  { source_labels = [\"__address__\"]; regex = \"([^:]+):.*\";"
		"    target_label = \"host\"; },\n"
		/* labelmap of __meta_ labels */
		"  { regex = \"__meta_(.+)\"; action = \"labelmap\"; },\n"
		"  { source_labels = [\"c\"]; modulus = 1000; target_label = \"__tmp_hash\";"
		"    action = \"hashmod\"; },\n"
		"  { source_labels = [\"env\"]; action = \"uppercase\"; target_label = \"env\"; "
		"},\n"
		"  { regex = \"zone\"; action = \"labeldrop\"; }\n"
		");"),
	    0);
	/* no inline targets: the first set is empty */
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(f.m), 1);
	CU_ASSERT_STRING_EQUAL(out(&f), "");
	CU_ASSERT_EQUAL(deliver(&f, "discovery.file.a",
				(const char *const[]){
				    "__address__=a:1,__meta_filepath=/sd/prod.json,c=baz,"
				    "env=prod,zone=eu",
				    "__address__=b:2,__meta_filepath=/sd/staging.json", NULL}),
			0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:1,__meta_filepath=/sd/prod.json,"
					"__tmp_hash=976,c=baz,env=PROD,filepath=/sd/prod.json,"
					"host=a,joined=a:1;eu\n");
	CU_ASSERT_EQUAL(mock_host_metric(f.m, "starling_discovery_relabel_input_targets", NULL), 2);
	CU_ASSERT_EQUAL(mock_host_metric(f.m, "starling_discovery_relabel_dropped_targets", NULL),
			1);
	fx_free(&f);
}

static void test_keep_and_equal(void)
{
	struct fx f;

	CU_ASSERT_EQUAL_FATAL(fx_new(&f, "targets = ( \"discovery.file.a\" );\n"
					 "rule = (\n"
					 "  { source_labels = [\"job\"]; regex = \"node|api\";"
					 "    action = \"keep\"; },\n"
					 "  { source_labels = [\"port\"]; target_label = \"want\";"
					 "    action = \"keepequal\"; }\n"
					 ");"),
			      0);
	CU_ASSERT_EQUAL(
	    deliver(&f, "discovery.file.a",
		    (const char *const[]){"__address__=a:1,job=node,port=1,want=1",
					  "__address__=b:2,job=node,port=1,want=2",
					  "__address__=c:3,job=nodes,port=1,want=1",
					  "__address__=d:4,job=api,port=4,want=4", NULL}),
	    0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:1,job=node,port=1,want=1\n"
					"__address__=d:4,job=api,port=4,want=4\n");
	fx_free(&f);
}

static void test_sources(void)
{
	struct fx f;
	size_t sets;

	CU_ASSERT_EQUAL_FATAL(
	    fx_new(&f, "targets = ( \"discovery.file.a\", \"discovery.file.b\" );"), 0);
	CU_ASSERT_EQUAL(
	    deliver(&f, "discovery.file.a", (const char *const[]){"__address__=a:1", NULL}), 0);
	CU_ASSERT_EQUAL(
	    deliver(&f, "discovery.file.b", (const char *const[]){"__address__=b:1", NULL}), 0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:1\n__address__=b:1\n");
	/* a new set from one source replaces only that source's targets */
	CU_ASSERT_EQUAL(deliver(&f, "discovery.file.a",
				(const char *const[]){"__address__=a:2", "__address__=a:3", NULL}),
			0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:2\n__address__=a:3\n__address__=b:1\n");
	/* the same set again: nothing new is published */
	sets = mock_host_forwarded_target_sets(f.m);
	CU_ASSERT_EQUAL(deliver(&f, "discovery.file.a",
				(const char *const[]){"__address__=a:2", "__address__=a:3", NULL}),
			0);
	CU_ASSERT_EQUAL(mock_host_forwarded_target_sets(f.m), sets);
	/* a removed source delivers an empty set: its targets vanish */
	CU_ASSERT_EQUAL(
	    mock_host_deliver_targets(&discovery_relabel_type, f.inst, "discovery.file.b", NULL),
	    0);
	CU_ASSERT_STRING_EQUAL(out(&f), "__address__=a:2\n__address__=a:3\n");
	fx_free(&f);
}

static void test_bad_rules(void)
{
	struct fx f;

	CU_ASSERT_EQUAL(fx_new(&f, "targets = ( );\n"
				   "rule = ( { source_labels = [\"a\"]; regex = \"(\"; } );"),
			-EINVAL);
	CU_ASSERT_EQUAL(mock_host_log_count(f.m, STARLING_LOG_ERROR, "relabel rule 1"), 1);
	mock_host_free(f.m);
	CU_ASSERT_EQUAL(fx_new(&f, "targets = ( );\n"
				   "rule = ( { action = \"explode\"; } );"),
			-EINVAL);
	mock_host_free(f.m);
	/* hashmod needs a modulus (Prometheus relabel.Config.Validate) */
	CU_ASSERT_EQUAL(fx_new(&f, "targets = ( );\n"
				   "rule = ( { source_labels = [\"a\"]; target_label = \"b\";"
				   " action = \"hashmod\"; } );"),
			-EINVAL);
	mock_host_free(f.m);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("discovery.relabel", NULL, NULL);
	CU_add_test(s, "no rules: pass-through", test_pass_through);
	CU_add_test(s, "rules: drop, replace, labelmap, hashmod, uppercase, labeldrop", test_rules);
	CU_add_test(s, "keep and keepequal", test_keep_and_equal);
	CU_add_test(s, "sources replace their own targets", test_sources);
	CU_add_test(s, "bad rules refuse the config", test_bad_rules);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
