/* Unit tests: label sets and the relabel engine (sdk/lib/relabel*.c). */
#include <starling/relabel.h>

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Build a label set from "name=value" strings. */
static void lset_from(struct starling_lset *ls, const char *const *kv)
{
	starling_lset_clear(ls);
	for (; *kv; kv++) {
		const char *eq = strchr(*kv, '=');

		CU_ASSERT_EQUAL_FATAL(
		    starling_lset_set(ls, *kv, (size_t)(eq - *kv), eq + 1, strlen(eq + 1)), 0);
	}
}

/* "a=1,b=2" rendering for comparisons. */
static const char *render(const struct starling_lset *ls)
{
	static char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ls->n; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s=%s", i ? "," : "",
				      ls->v[i].name, ls->v[i].value);
	return buf;
}

struct rcase {
	const char *name;
	const char *in[8];
	struct starling_relabel_config cfg[3];
	size_t n_cfg;
	int keep;	 /* expected return of apply */
	const char *out; /* expected labels when kept */
};

#define SRC(...)                                                                                   \
	(const char *const[]){__VA_ARGS__},                                                        \
	    sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)

static void test_actions(void)
{
	const struct rcase cases[] = {
	    {"replace with defaults",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b"}},
	     1,
	     1,
	     "a=foo,b=foo"},
	    {"replace regex and template",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "f(.*)",
	       .target_label = "d",
	       .replacement = "ch$1-ch"}},
	     1,
	     1,
	     "a=foo,d=choo-ch"},
	    {"replace joins sources with separator",
	     {"a=foo", "b=bar", NULL},
	     {{.source_labels = SRC("a", "b"),
	       .regex = "f(.*);(.*)r",
	       .target_label = "a",
	       .replacement = "b${1}${2}m"}},
	     1,
	     1,
	     "a=boobam,b=bar"},
	    {"replace custom separator, missing source is empty",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a", "zz", "a"), .separator = "|", .target_label = "j"}},
	     1,
	     1,
	     "a=foo,j=foo||foo"},
	    {"replace without match is a no-op",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "x(.*)", .target_label = "b"}},
	     1,
	     1,
	     "a=foo"},
	    {"regex is anchored",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "o", .target_label = "b", .replacement = "y"}},
	     1,
	     1,
	     "a=foo"},
	    {"dot matches newline",
	     {"a=foo\nbar", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "foo.bar",
	       .target_label = "b",
	       .replacement = "y"}},
	     1,
	     1,
	     "a=foo\nbar,b=y"},
	    {"$ matches only at the very end",
	     {"a=foo\n", NULL},
	     {{.source_labels = SRC("a"), .regex = "foo$", .action = "keep"}},
	     1,
	     0,
	     NULL},
	    {"empty replacement deletes the target",
	     {"a=foo", "b=bar", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "(f)oo",
	       .target_label = "b",
	       .replacement = "$2"}},
	     1,
	     1,
	     "a=foo"},
	    {"target label from a template",
	     {"a=some-name-value", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "some-([^-]+)-([^,]+)",
	       .target_label = "${1}",
	       .replacement = "${2}"}},
	     1,
	     1,
	     "a=some-name-value,name=value"},
	    /* Prometheus 3 validates label names as UTF-8 by default
	     * (model/relabel/relabel.go): "1x" is a valid expanded name */
	    {"UTF-8 expanded target name",
	     {"a=some-1x-value", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "some-([^-]+)-([^,]+)",
	       .target_label = "${1}",
	       .replacement = "${2}"}},
	     1,
	     1,
	     "1x=value,a=some-1x-value"},
	    {"UTF-8 target_label",
	     {"a=x", NULL},
	     {{.source_labels = SRC("a"), .target_label = "utf-8.label"}},
	     1,
	     1,
	     "a=x,utf-8.label=x"},
	    {"fast path: set a constant label",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("nothere"), .target_label = "env", .replacement = "prod"}},
	     1,
	     1,
	     "a=foo,env=prod"},
	    {"templates: $1W is group \"1W\" (empty), $$ is $",
	     {"a=-ab--axxb-", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "(-a(x*)b-)*",
	       .target_label = "t",
	       .replacement = "[$1W|$$|${1}W|${9}|${x|$]"}},
	     1,
	     1,
	     "a=-ab--axxb-,t=[|$|-axxb-W||${x|$]"},
	    {"templates: named groups",
	     {"a=k8s:pod", NULL},
	     {{.source_labels = SRC("a"),
	       .regex = "(?P<kind>[^:]+):(?<what>.*)",
	       .target_label = "t",
	       .replacement = "$what/${kind}/$nope"}},
	     1,
	     1,
	     "a=k8s:pod,t=pod/k8s/"},
	    {"keep matching",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "f.*", .action = "keep"}},
	     1,
	     1,
	     "a=foo"},
	    {"keep not matching drops",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "b.*", .action = "keep"}},
	     1,
	     0,
	     NULL},
	    {"keep on a missing label matches the empty string",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("x"), .regex = "", .action = "keep"}},
	     1,
	     1,
	     "a=foo"},
	    {"drop matching, later rules do not run",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "f.*", .action = "drop"},
	      {.source_labels = SRC("a"), .target_label = "b"}},
	     2,
	     0,
	     NULL},
	    {"drop not matching keeps",
	     {"a=foo", NULL},
	     {{.source_labels = SRC("a"), .regex = "b.*", .action = "drop"}},
	     1,
	     1,
	     "a=foo"},
	    {"keepequal equal",
	     {"a=foo", "b=foo", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "keepequal"}},
	     1,
	     1,
	     "a=foo,b=foo"},
	    {"keepequal different",
	     {"a=foo", "b=bar", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "keepequal"}},
	     1,
	     0,
	     NULL},
	    {"dropequal equal",
	     {"a=foo", "b=foo", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "dropequal"}},
	     1,
	     0,
	     NULL},
	    {"dropequal different",
	     {"a=foo", "b=bar", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "dropequal"}},
	     1,
	     1,
	     "a=foo,b=bar"},
	    {"hashmod: c=baz mod 1000 is 976",
	     {"a=foo", "b=bar", "c=baz", NULL},
	     {{.source_labels = SRC("c"),
	       .target_label = "d",
	       .modulus = 1000,
	       .action = "hashmod"}},
	     1,
	     1,
	     "a=foo,b=bar,c=baz,d=976"},
	    {"hashmod over a value with a newline",
	     {"c=foo\nbar", NULL},
	     {{.source_labels = SRC("c"),
	       .target_label = "d",
	       .modulus = 1000,
	       .action = "hashmod"}},
	     1,
	     1,
	     "c=foo\nbar,d=734"},
	    {"labelmap copies matching labels",
	     {"a=foo", "__meta_my_bar=aaa", "__meta_my_baz=bbb", "__meta_other=ccc", NULL},
	     {{.regex = "__meta_my_(.+)", .replacement = "${1}", .action = "labelmap"}},
	     1,
	     1,
	     "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo,bar=aaa,baz=bbb"},
	    {"labelmap default replacement",
	     {"a=foo", NULL},
	     {{.regex = "(a)", .action = "labelmap"}},
	     1,
	     1,
	     "a=foo"},
	    {"labelmap renames into new names",
	     {"a=foo", "b=bar", NULL},
	     {{.regex = "(.)", .replacement = "x_$1", .action = "labelmap"}},
	     1,
	     1,
	     "a=foo,b=bar,x_a=foo,x_b=bar"},
	    {"labeldrop",
	     {"a=foo", "b=bar", "c=baz", NULL},
	     {{.regex = "a|b", .action = "labeldrop"}},
	     1,
	     1,
	     "c=baz"},
	    {"labelkeep",
	     {"a=foo", "b=bar", "c=baz", NULL},
	     {{.regex = "a|b", .action = "labelkeep"}},
	     1,
	     1,
	     "a=foo,b=bar"},
	    {"lowercase",
	     {"foo=BaR123", NULL},
	     {{.source_labels = SRC("foo"), .target_label = "foo_lc", .action = "lowercase"}},
	     1,
	     1,
	     "foo=BaR123,foo_lc=bar123"},
	    {"lowercase is Unicode-aware",
	     {"a=\xc3\x84RGER-\xce\xa3\xce\x9f\xd0\x96-\xff", NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "lowercase"}},
	     1,
	     1,
	     "a=\xc3\x84RGER-\xce\xa3\xce\x9f\xd0\x96-\xff,b=\xc3\xa4rger-\xcf\x83\xce\xbf\xd0\xb6-"
	     "\xff"},
	    {"uppercase is Unicode-aware",
	     {"a=stra\xc3\x9f"
	      "e-\xc3\xa9",
	      NULL},
	     {{.source_labels = SRC("a"), .target_label = "b", .action = "uppercase"}},
	     1,
	     1,
	     "a=stra\xc3\x9f"
	     "e-\xc3\xa9,b=STRA\xc3\x9f"
	     "E-\xc3\x89"},
	    {"uppercase of joined sources",
	     {"a=x", "b=y", NULL},
	     {{.source_labels = SRC("a", "b"),
	       .separator = "-",
	       .target_label = "u",
	       .action = "uppercase"}},
	     1,
	     1,
	     "a=x,b=y,u=X-Y"},
	    {"actions are case-insensitive (operator CRDs)",
	     {"a=foo", NULL},
	     {{.regex = "a", .action = "LabelDrop"}},
	     1,
	     1,
	     ""},
	    {"rules run in order",
	     {"__address__=10.0.0.1:9100", NULL},
	     {{.source_labels = SRC("__address__"), .regex = "(.*):.*", .target_label = "host"},
	      {.source_labels = SRC("host"),
	       .regex = "10\\..*",
	       .target_label = "net",
	       .replacement = "private"},
	      {.regex = "__.*", .action = "labeldrop"}},
	     3,
	     1,
	     "host=10.0.0.1,net=private"},
	};

	struct starling_relabel_scratch s;
	struct starling_lset ls;
	char err[256];

	starling_relabel_scratch_init(&s);
	starling_lset_init(&ls);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct starling_relabel_rules *r = NULL;
		int rc = starling_relabel_rules_new(c->cfg, c->n_cfg, &r, err, sizeof(err));

		if (rc)
			fprintf(stderr, "\n  %s: compile: %s", c->name, err);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		lset_from(&ls, c->in);
		rc = starling_relabel_apply(r, &ls, &s);
		if (rc != c->keep || (c->keep && strcmp(render(&ls), c->out) != 0))
			fprintf(stderr, "\n  %s: got %d {%s}, want %d {%s}", c->name, rc,
				render(&ls), c->keep, c->out ? c->out : "");
		CU_ASSERT_EQUAL(rc, c->keep);
		if (c->keep == 1)
			CU_ASSERT_STRING_EQUAL(render(&ls), c->out);
		starling_relabel_rules_free(r);
	}
	starling_lset_free(&ls);
	starling_relabel_scratch_free(&s);
}

static void test_validation(void)
{
	const struct {
		struct starling_relabel_config cfg;
		const char *msg;
	} bad[] = {
	    {{.action = "rewrite", .target_label = "a"}, "unknown relabel action"},
	    {{.regex = "(", .target_label = "a"}, "invalid regex"},
	    {{.regex = "(a)\\1", .target_label = "a"}, "backreferences"},
	    {{.regex = "a(?=b)", .target_label = "a"}, "lookaround"},
	    {{.regex = "a(?<!b)", .target_label = "a"}, "lookaround"},
	    {{.regex = "a*+", .target_label = "a"}, "possessive"},
	    {{.regex = "(?>a)", .target_label = "a"}, "not supported"},
	    {{.source_labels = SRC("a")}, "requires target_label"},
	    {{.source_labels = SRC("a"), .target_label = "x\xff"}, "not a valid target_label"},
	    {{.source_labels = SRC("a\xff"), .target_label = "x"}, "not a valid label name"},
	    {{.source_labels = SRC("a"), .target_label = "b", .action = "hashmod"},
	     "non-zero modulus"},
	    {{.source_labels = SRC("a"),
	      .target_label = "b",
	      .replacement = "x",
	      .action = "lowercase"},
	     "replacement cannot be set"},
	    {{.source_labels = SRC("a"), .target_label = "b", .regex = "x", .action = "keepequal"},
	     "only source_labels and target_label"},
	    {{.target_label = "b", .action = "dropequal"}, "only source_labels and target_label"},
	    {{.source_labels = SRC("a"), .action = "labeldrop"}, "only regex"},
	    {{.target_label = "x", .action = "labelkeep"}, "only regex"},
	    {{.regex = "(.*)", .replacement = "a\xff$1", .action = "labelmap"},
	     "not a valid replacement"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct starling_relabel_config two[2] = {
		    {.source_labels = SRC("a"), .target_label = "ok"},
		    bad[i].cfg,
		};
		struct starling_relabel_rules *r = (void *)1;
		int rc = starling_relabel_rules_new(two, 2, &r, err, sizeof(err));

		if (rc != -EINVAL || !strstr(err, bad[i].msg) || strncmp(err, "rule 2: ", 8))
			fprintf(stderr, "\n  case %zu: rc=%d err='%s', want '%s'", i, rc, err,
				bad[i].msg);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_PTR_NULL(r);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].msg));
		CU_ASSERT_EQUAL(strncmp(err, "rule 2: ", 8), 0);
	}
	/* RE2 syntax that PCRE2 shares is accepted. */
	{
		struct starling_relabel_config ok[] = {
		    {.regex = "(?i)foo|[\\]\\\\1(]+|\\d{2,3}?|\\pL|(?P<n>x)|(?:y)",
		     .action = "keep"},
		    {.regex = "[\\1]", .action = "keep"},
		};
		struct starling_relabel_rules *r;

		CU_ASSERT_EQUAL(starling_relabel_rules_new(ok, 2, &r, err, sizeof(err)), 0);
		starling_relabel_rules_free(r);
	}
	/* No rules: everything is kept unchanged. */
	{
		struct starling_relabel_rules *r;
		struct starling_relabel_scratch s;
		struct starling_lset ls;

		starling_relabel_scratch_init(&s);
		starling_lset_init(&ls);
		starling_lset_set_str(&ls, "a", "b");
		CU_ASSERT_EQUAL(starling_relabel_rules_new(NULL, 0, &r, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(starling_relabel_rules_count(r), 0);
		CU_ASSERT_EQUAL(starling_relabel_apply(r, &ls, &s), 1);
		CU_ASSERT_EQUAL(starling_relabel_apply(NULL, &ls, &s), 1);
		CU_ASSERT_STRING_EQUAL(render(&ls), "a=b");
		starling_relabel_rules_free(r);
		starling_lset_free(&ls);
		starling_relabel_scratch_free(&s);
	}
}

/* Many series through one compiled rule list and one scratch: results stay
 * right while buffers are reused (run under ASan in CI). */
static void test_reuse(void)
{
	struct starling_relabel_config cfg[] = {
	    {.source_labels = SRC("__name__"), .regex = "node_(.*)", .target_label = "sub"},
	    {.source_labels = SRC("sub"), .regex = "cpu_.*", .action = "drop"},
	    {.source_labels = SRC("instance"),
	     .target_label = "shard",
	     .modulus = 7,
	     .action = "hashmod"},
	    {.regex = "instance", .action = "labeldrop"},
	};
	struct starling_relabel_rules *r;
	struct starling_relabel_scratch s;
	struct starling_lset ls;
	char err[128], name[64], inst[64];
	int kept = 0;

	CU_ASSERT_EQUAL_FATAL(starling_relabel_rules_new(cfg, 4, &r, err, sizeof(err)), 0);
	starling_relabel_scratch_init(&s);
	starling_lset_init(&ls);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "node_%s_%d", i % 4 ? "mem" : "cpu", i);
		snprintf(inst, sizeof(inst), "host-%d:9100", i % 13);
		starling_lset_clear(&ls);
		starling_lset_set_str(&ls, "__name__", name);
		starling_lset_set_str(&ls, "instance", inst);
		starling_lset_set_str(&ls, "job", "node");
		if (starling_relabel_apply(r, &ls, &s) == 1) {
			const char *shard = starling_lset_get(&ls, "shard");

			kept++;
			CU_ASSERT_EQUAL(ls.n, 4);
			CU_ASSERT_PTR_NULL(starling_lset_get(&ls, "instance"));
			CU_ASSERT(shard && shard[0] >= '0' && shard[0] <= '6' && !shard[1]);
			CU_ASSERT_EQUAL(strncmp(starling_lset_get(&ls, "sub"), "mem_", 4), 0);
		}
	}
	CU_ASSERT_EQUAL(kept, 1500);
	starling_lset_free(&ls);
	starling_relabel_scratch_free(&s);
	starling_relabel_rules_free(r);
}

static void test_lset(void)
{
	struct starling_lset a, b;
	char big[5000];

	starling_lset_init(&a);
	starling_lset_init(&b);
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "job", "node"), 0);
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "__name__", "up"), 0);
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "Zed", "1"), 0);
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "instance", "x:1"), 0);
	/* Byte order: uppercase < '_' < lowercase. */
	CU_ASSERT_STRING_EQUAL(render(&a), "Zed=1,__name__=up,instance=x:1,job=node");
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&a, "job"), "node");
	CU_ASSERT_PTR_NULL(starling_lset_get(&a, "jo"));
	CU_ASSERT_PTR_NULL(starling_lset_get(&a, "jobs"));
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "job", "other"), 0);
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&a, "job"), "other");
	CU_ASSERT_EQUAL(starling_lset_set_str(&a, "Zed", ""), 0); /* empty deletes */
	CU_ASSERT_EQUAL(a.n, 3);
	starling_lset_del(&a, "instance");
	starling_lset_del(&a, "nothere");
	CU_ASSERT_STRING_EQUAL(render(&a), "__name__=up,job=other");
	CU_ASSERT_EQUAL(starling_lset_set(&a, "", 0, "x", 1), -EINVAL);
	CU_ASSERT_EQUAL(starling_lset_set(&a, "n", 1, "a\0b", 3), -EINVAL);

	/* Growth beyond the first buffer keeps every label intact. */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 50; i++) {
		char n[16];

		snprintf(n, sizeof(n), "l%02d", i);
		CU_ASSERT_EQUAL(starling_lset_set_str(&a, n, i % 10 ? n : big), 0);
	}
	CU_ASSERT_EQUAL(a.n, 52);
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&a, "l00"), big);
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&a, "l49"), "l49");
	CU_ASSERT_STRING_EQUAL(starling_lset_get(&a, "__name__"), "up");

	CU_ASSERT_EQUAL(starling_lset_copy(&b, &a), 0);
	CU_ASSERT_EQUAL(starling_lset_compare(&a, &b), 0);
	CU_ASSERT_EQUAL(starling_lset_hash(&a), starling_lset_hash(&b));
	starling_lset_set_str(&b, "l49", "changed");
	CU_ASSERT(starling_lset_compare(&a, &b) != 0);
	CU_ASSERT(starling_lset_hash(&a) != starling_lset_hash(&b));
	starling_lset_del(&b, "l49");
	CU_ASSERT(starling_lset_compare(&b, &a) < 0);

	/* Bulk append + finish: sorted, empty values dropped, duplicates refused. */
	starling_lset_clear(&b);
	starling_lset_append(&b, "c", 1, "3", 1);
	starling_lset_append(&b, "a", 1, "1", 1);
	starling_lset_append(&b, "e", 1, "", 0);
	starling_lset_append(&b, "b", 1, "2", 1);
	CU_ASSERT_EQUAL(starling_lset_finish(&b), 0);
	CU_ASSERT_STRING_EQUAL(render(&b), "a=1,b=2,c=3");
	starling_lset_append(&b, "a", 1, "again", 5);
	CU_ASSERT_EQUAL(starling_lset_finish(&b), -EEXIST);
	starling_lset_free(&a);
	starling_lset_free(&b);
}

/* ---------------------------------------------------------------- */
/* starling_relabel_rules_from_config() through a mock host API.     */

enum { K_STR, K_INT, K_LIST, K_GROUP };

struct starling_config {
	const char *name;
	int kind;
	const char *s;
	int64_t i;
	const struct starling_config *kids;
	size_t n;
	const char *where;
};

static const starling_config *m_lookup(const starling_config *node, const char *path)
{
	if (!path || !*path)
		return node;
	for (size_t i = 0; node && node->kind == K_GROUP && i < node->n; i++)
		if (strcmp(node->kids[i].name, path) == 0)
			return &node->kids[i];
	return NULL;
}

static size_t m_count(const starling_config *node)
{
	return node->kind >= K_LIST ? node->n : 0;
}

static const starling_config *m_child(const starling_config *node, size_t i)
{
	return i < node->n ? &node->kids[i] : NULL;
}

static int m_string(const starling_config *node, const char *path, const char **out)
{
	const starling_config *c = m_lookup(node, path);

	if (!c)
		return -ENOENT;
	if (c->kind != K_STR)
		return -EINVAL;
	*out = c->s;
	return 0;
}

static int m_int(const starling_config *node, const char *path, int64_t *out)
{
	const starling_config *c = m_lookup(node, path);

	if (!c)
		return -ENOENT;
	if (c->kind != K_INT)
		return -EINVAL;
	*out = c->i;
	return 0;
}

static const char *m_where(const starling_config *node)
{
	return node->where;
}

#define STR(nm, v)                                                                                 \
	{                                                                                          \
		.name = nm, .kind = K_STR, .s = v                                                  \
	}
#define INT(nm, v)                                                                                 \
	{                                                                                          \
		.name = nm, .kind = K_INT, .i = v                                                  \
	}
#define LIST(nm, ...)                                                                              \
	{                                                                                          \
		.name = nm, .kind = K_LIST, .kids = (const struct starling_config[]){__VA_ARGS__}, \
		.n = sizeof((const struct starling_config[]){__VA_ARGS__}) /                       \
		     sizeof(struct starling_config)                                                \
	}
#define RULE(where_, ...)                                                                          \
	{                                                                                          \
		.kind = K_GROUP, .where = where_,                                                  \
		.kids = (const struct starling_config[]){__VA_ARGS__},                             \
		.n = sizeof((const struct starling_config[]){__VA_ARGS__}) /                       \
		     sizeof(struct starling_config)                                                \
	}

static void test_from_config(void)
{
	const struct starling_config good_rules[] = {
	    RULE("s.cfg:10", LIST("source_labels", STR(NULL, "__address__")),
		 STR("regex", "([^:]+):.*"), STR("target_label", "host")),
	    RULE("s.cfg:15", LIST("source_labels", STR(NULL, "host")), INT("modulus", 1000),
		 STR("target_label", "shard"), STR("action", "hashmod")),
	    RULE("s.cfg:20", STR("regex", "__address__"), STR("action", "labeldrop")),
	};
	const struct starling_config good = {
	    .kind = K_LIST, .kids = good_rules, .n = 3, .where = "s.cfg:9"};
	const struct starling_config bad_rules[] = {
	    RULE("s.cfg:10", STR("target_label", "x")),
	    RULE("s.cfg:12", STR("regex", "a(?=b)"), STR("action", "keep")),
	};
	const struct starling_config bad = {
	    .kind = K_LIST, .kids = bad_rules, .n = 2, .where = "s.cfg:9"};
	const struct starling_config bad_action_rules[] = {
	    RULE("s.cfg:30", STR("action", "explode")),
	};
	const struct starling_config bad_action = {
	    .kind = K_LIST, .kids = bad_action_rules, .n = 1};
	struct starling_host_api api = {
	    .abi_major = 1,
	    .struct_size = sizeof(api),
	    .config_lookup = m_lookup,
	    .config_count = m_count,
	    .config_child = m_child,
	    .config_string = m_string,
	    .config_int = m_int,
	    .config_where = m_where,
	};
	struct starling_relabel_rules *r;
	struct starling_relabel_scratch s;
	struct starling_lset ls;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(starling_relabel_rules_from_config(&api, &good, &r, err, sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(starling_relabel_rules_count(r), 3);
	starling_relabel_scratch_init(&s);
	starling_lset_init(&ls);
	starling_lset_set_str(&ls, "__address__", "baz:80");
	CU_ASSERT_EQUAL(starling_relabel_apply(r, &ls, &s), 1);
	CU_ASSERT_STRING_EQUAL(render(&ls), "host=baz,shard=976");
	starling_relabel_rules_free(r);

	CU_ASSERT_EQUAL(starling_relabel_rules_from_config(&api, &bad, &r, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_STRING_EQUAL(err, "s.cfg:12: relabel rule 2: regex \"a(?=b)\": lookaround is "
				    "not supported (RE2 syntax)");
	CU_ASSERT_EQUAL(starling_relabel_rules_from_config(&api, &bad_action, &r, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "s.cfg:30: relabel rule 1: unknown relabel action \"explode\"");

	/* No list at all: an empty, valid rule set. */
	CU_ASSERT_EQUAL(starling_relabel_rules_from_config(&api, NULL, &r, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(starling_relabel_rules_count(r), 0);
	starling_relabel_rules_free(r);

	/* The exported schema describes exactly these keys, with defaults. */
	{
		const char *names[] = {"source_labels", "separator",   "regex", "modulus",
				       "target_label",	"replacement", "action"};
		size_t i;

		for (i = 0; starling_relabel_schema[i].name; i++)
			CU_ASSERT_STRING_EQUAL(starling_relabel_schema[i].name, names[i]);
		CU_ASSERT_EQUAL(i, 7);
		CU_ASSERT_STRING_EQUAL(starling_relabel_schema[1].default_value, ";");
		CU_ASSERT_STRING_EQUAL(starling_relabel_schema[2].default_value, "(.*)");
		CU_ASSERT_STRING_EQUAL(starling_relabel_schema[5].default_value, "$1");
		CU_ASSERT_STRING_EQUAL(starling_relabel_schema[6].default_value, "replace");
	}
	starling_lset_free(&ls);
	starling_relabel_scratch_free(&s);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("relabel", NULL, NULL);
	CU_add_test(s, "label sets", test_lset);
	CU_add_test(s, "every action, templates, anchoring", test_actions);
	CU_add_test(s, "rule validation", test_validation);
	CU_add_test(s, "scratch and buffer reuse", test_reuse);
	CU_add_test(s, "rules from config", test_from_config);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
