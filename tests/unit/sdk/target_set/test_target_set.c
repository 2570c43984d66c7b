/*
 * starling/target_set.h: set validation and copy, label lookup, and the
 * merged target list of a scraper (inline targets and discovery sources in
 * config order, unnamed forward_to sources last, adopt on reload).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <starling/target_set.h>

#include "mock_host.h"

static const struct starling_config_key keys[] = {
    {"targets", STARLING_CFG_TARGETS, true, NULL, "x"},
    {NULL},
};

static void test_copy_and_label(void)
{
	struct starling_label l[] = {{"__address__", "a:1"}, {"job", "j"}, {"zone", "z"}};
	struct starling_target t = {l, 3};
	struct starling_target_set set = {&t, 1}, *c;
	struct starling_label bad[] = {{"b", "1"}, {"a", "2"}};

	c = starling_target_set_copy(&set);
	CU_ASSERT_FATAL(c != NULL);
	l[0].value = "changed";
	CU_ASSERT_STRING_EQUAL(starling_target_label(&c->targets[0], "__address__"), "a:1");
	CU_ASSERT_STRING_EQUAL(starling_target_label(&c->targets[0], "zone"), "z");
	CU_ASSERT_PTR_NULL(starling_target_label(&c->targets[0], "nope"));
	free(c);
	t.labels = bad;
	t.n_labels = 2;
	CU_ASSERT_FALSE(starling_target_set_valid(&set));
	errno = 0;
	CU_ASSERT_PTR_NULL(starling_target_set_copy(&set));
	CU_ASSERT_EQUAL(errno, EINVAL);
	set.n_targets = 0;
	c = starling_target_set_copy(&set);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_EQUAL(c->n_targets, 0);
	free(c);
}

static const char *addr(const struct starling_target_list *tl, size_t i)
{
	return starling_target_label(starling_target_list_get(tl, i), "__address__");
}

static void test_merge(void)
{
	char err[256] = "";
	struct mock_host *m =
	    mock_host_new("prometheus.scrape.x", keys,
			  "targets = ( \"discovery.file.b\",\n"
			  "            { *address__ = \"inline:1\"; env = \"prod\"; },\n"
			  "            \"discovery.file.a\", \"discovery.file.b\" );",
			  err, sizeof(err));
	const struct starling_host_api *api = mock_host_api(m);
	struct starling_target_list *tl, *tl2;
	struct mock_targets *a = mock_targets_new(), *b = mock_targets_new(),
			    *f = mock_targets_new();
	bool inl;

	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_EQUAL_FATAL(
	    starling_target_list_new(api, api->config_lookup(mock_host_config(m), "targets"), &tl,
				     err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(starling_target_list_count(tl), 1);
	CU_ASSERT_EQUAL(starling_target_list_inline_count(tl), 1);
	CU_ASSERT_STRING_EQUAL(addr(tl, 0), "inline:1");
	CU_ASSERT_STRING_EQUAL(starling_target_list_origin(tl, 0, &inl), "mock.cfg:2");
	CU_ASSERT_TRUE(inl);

	mock_targets_add(a, "__address__=a:1", NULL);
	mock_targets_add(a, "__address__=a:2", NULL);
	mock_targets_add(b, "__address__=b:1", "__meta_x=y", NULL);
	mock_targets_add(f, "__address__=f:1", NULL);
	CU_ASSERT_EQUAL(starling_target_list_update(tl, "discovery.file.a", mock_targets_set(a)),
			0);
	CU_ASSERT_EQUAL(starling_target_list_update(tl, "discovery.relabel.f", mock_targets_set(f)),
			0);
	CU_ASSERT_EQUAL(starling_target_list_update(tl, "discovery.file.b", mock_targets_set(b)),
			0);
	/* config order (b, inline, a), the repeated b once, unnamed f last */
	CU_ASSERT_EQUAL_FATAL(starling_target_list_count(tl), 5);
	CU_ASSERT_STRING_EQUAL(addr(tl, 0), "b:1");
	CU_ASSERT_STRING_EQUAL(addr(tl, 1), "inline:1");
	CU_ASSERT_STRING_EQUAL(addr(tl, 2), "a:1");
	CU_ASSERT_STRING_EQUAL(addr(tl, 3), "a:2");
	CU_ASSERT_STRING_EQUAL(addr(tl, 4), "f:1");
	CU_ASSERT_STRING_EQUAL(starling_target_list_origin(tl, 4, &inl), "discovery.relabel.f");
	CU_ASSERT_FALSE(inl);

	/* an empty set drops that source's targets */
	CU_ASSERT_EQUAL(starling_target_list_update(tl, "discovery.file.a", NULL), -EINVAL);
	mock_targets_free(a);
	a = mock_targets_new();
	CU_ASSERT_EQUAL(starling_target_list_update(tl, "discovery.file.a", mock_targets_set(a)),
			0);
	CU_ASSERT_EQUAL(starling_target_list_count(tl), 3);

	/* reload: the new config names only b; b and the unnamed f carry over */
	CU_ASSERT_EQUAL(
	    mock_host_set_config(m, "targets = ( \"discovery.file.b\" );", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(
	    starling_target_list_new(api, api->config_lookup(mock_host_config(m), "targets"), &tl2,
				     err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(starling_target_list_adopt(tl2, tl), 0);
	CU_ASSERT_EQUAL_FATAL(starling_target_list_count(tl2), 2);
	CU_ASSERT_STRING_EQUAL(addr(tl2, 0), "b:1");
	CU_ASSERT_STRING_EQUAL(addr(tl2, 1), "f:1");
	starling_target_list_free(tl2);
	starling_target_list_free(tl);

	/* a label that is not a string */
	CU_ASSERT_EQUAL(
	    mock_host_set_config(m, "targets = ( { *address__ = 5; } );", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(starling_target_list_new(api,
						 api->config_lookup(mock_host_config(m), "targets"),
						 &tl, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "mock.cfg:1: target labels must be strings"));
	mock_targets_free(a);
	mock_targets_free(b);
	mock_targets_free(f);
	mock_host_free(m);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("target_set", NULL, NULL);
	CU_add_test(s, "copy and label lookup", test_copy_and_label);
	CU_add_test(s, "merged list: order, unnamed sources, adopt", test_merge);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
