/*
 * The loader's ABI gate against the fixture plugins: each is accepted or
 * refused with the expected message (file, expected, found).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cluster/cluster.h"
#include "config.h"
#include "loader.h"
#include "runtime.h"

#define FIX(name) ABI_FIXTURE_DIR "/" name ".so"

static char err[512];

static int load_one(const char *path)
{
	struct plugin_registry *r = loader_registry_new();
	int ret;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	err[0] = '\0';
	ret = loader_load_file(r, path, err, sizeof(err));
	loader_registry_free(r);
	return ret;
}

static bool err_has(const char *want)
{
	if (strstr(err, want))
		return true;
	fprintf(stderr, "\nwanted \"%s\" in \"%s\"\n", want, err);
	return false;
}

static void test_good(void)
{
	struct plugin_registry *r = loader_registry_new();
	struct type_set ts;

	CU_ASSERT_EQUAL(loader_load_file(r, FIX("abi_good"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(r->n_plugins, 1);
	CU_ASSERT_EQUAL_FATAL(r->n_types, 1);
	CU_ASSERT_STRING_EQUAL(r->types[0]->name, "abi.good");
	CU_ASSERT_STRING_EQUAL(r->type_files[0], FIX("abi_good"));
	loader_type_set(r, &ts);
	CU_ASSERT_PTR_NOT_NULL(type_set_find(&ts, "abi.good"));
	loader_registry_free(r);
}

static void test_bigger_struct_accepted(void)
{
	/* A newer, larger descriptor of the same minor: the host copies only
	 * what it knows. */
	CU_ASSERT_EQUAL(load_one(FIX("abi_bigger")), 0);
}

static void test_bad_magic(void)
{
	CU_ASSERT_EQUAL(load_one(FIX("abi_bad_magic")), -ENOEXEC);
	CU_ASSERT_TRUE(err_has("magic: expected 0x474e494c52415453, found 0x1122334455667788"));
}

static void test_major_next(void)
{
	CU_ASSERT_EQUAL(load_one(FIX("abi_major_next")), -ENOEXEC);
	CU_ASSERT_TRUE(err_has("ABI major: expected 1, found 2"));
}

static void test_minor_newer(void)
{
	char want[160];

	/* The plugin states the lowest host minor it needs; the refusal names
	 * both versions. */
	CU_ASSERT_EQUAL(load_one(FIX("abi_minor_newer")), -ENOEXEC);
	snprintf(want, sizeof(want),
		 "ABI minor: the plugin needs a host of ABI 1.%d or newer, this host is 1.%d",
		 STARLING_ABI_MINOR + 1, STARLING_ABI_MINOR);
	CU_ASSERT_TRUE(err_has(want));
}

static void test_short_struct(void)
{
	char want[128];

	CU_ASSERT_EQUAL(load_one(FIX("abi_short_struct")), -ENOEXEC);
	snprintf(want, sizeof(want), "descriptor struct_size: expected at least %zu, found 16",
		 STARLING_DESCRIPTOR_MIN_SIZE);
	CU_ASSERT_TRUE(err_has(want));
}

static void test_short_type(void)
{
	char want[128];

	CU_ASSERT_EQUAL(load_one(FIX("abi_short_type")), -ENOEXEC);
	snprintf(want, sizeof(want), "type 0 struct_size: expected at least %zu, found 8",
		 STARLING_TYPE_MIN_SIZE);
	CU_ASSERT_TRUE(err_has(want));
}

static void test_no_entry(void)
{
	CU_ASSERT_EQUAL(load_one(FIX("abi_no_entry")), -ENOEXEC);
	CU_ASSERT_TRUE(err_has("entry symbol: expected starling_plugin_entry(), found none"));
}

static void test_duplicate_type(void)
{
	struct plugin_registry *r = loader_registry_new();

	CU_ASSERT_EQUAL(loader_load_file(r, FIX("abi_good"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(loader_load_file(r, FIX("abi_duplicate"), err, sizeof(err)), -EEXIST);
	CU_ASSERT_TRUE(err_has("component type abi.good: expected a new type, found one already "
			       "provided by " FIX("abi_good") " (keeping that one)"));
	/* The first one is kept. */
	CU_ASSERT_EQUAL(r->n_types, 1);
	CU_ASSERT_STRING_EQUAL(r->type_files[0], FIX("abi_good"));
	CU_ASSERT_EQUAL(r->refused, 1);
	loader_registry_free(r);
}

static void test_targets_type(void)
{
	struct plugin_registry *r = loader_registry_new();
	struct type_set ts;

	/* Declares it needs 1.1: accepted, with its built minor recorded. */
	CU_ASSERT_EQUAL(loader_load_file(r, FIX("abi_targets"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(r->n_types, 1);
	CU_ASSERT_TRUE(r->types[0]->accepts & STARLING_ACCEPTS_TARGETS);
	CU_ASSERT_PTR_NOT_NULL(r->types[0]->receive_targets);
	loader_type_set(r, &ts);
	CU_ASSERT_EQUAL(type_set_built_minor(&ts, r->types[0]), STARLING_ABI_MINOR);
	loader_registry_free(r);
	/* Uses receive_targets but says it runs on 1.0 hosts, which would
	 * ignore it: refused. */
	CU_ASSERT_EQUAL(load_one(FIX("abi_targets_undeclared")), -ENOEXEC);
	CU_ASSERT_TRUE(err_has("type abi.good: uses receive_targets (since ABI 1.1) but declares "
			       "that it runs on hosts from ABI 1.0"));
}

/* A document of one component of type `type`, validated against ts: the
 * validation's result; the document in *d, its errors in errs. */
static int one_component(const struct type_set *ts, const char *type, struct cfg_doc **d,
			 struct cfg_errors *errs)
{
	char text[256];

	snprintf(text, sizeof(text), "components = ( { type = \"%s\"; name = \"c\"; } );\n", type);
	*d = NULL;
	memset(errs, 0, sizeof(*errs));
	CU_ASSERT_EQUAL_FATAL(cfg_doc_parse_string(text, "one.cfg", d, errs), 0);
	return cfg_doc_validate(*d, ts, errs);
}

/* `run` unloads the plugins its configuration does not use (issue 12:
 * their code and libraries cost resident memory); their types keep their
 * names for the unknown-type message, and validating a configuration that
 * names one (a reload) loads the plugin again, schema and all. */
static void test_unload_unused(void)
{
	struct plugin_registry *r = loader_registry_new();
	struct type_set ts;
	struct cfg_errors errs;
	struct cfg_doc *d;
	const struct starling_component_type *t;
	char real[PATH_MAX];
	void *h;

	CU_ASSERT_EQUAL_FATAL(loader_load_file(r, FIX("abi_good"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(loader_load_file(r, FIX("abi_future_keys"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(r->n_types, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(FIX("abi_future_keys"), real));
	loader_type_set(r, &ts);
	CU_ASSERT_EQUAL(one_component(&ts, "abi.good", &d, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(errs.n, 0);
	loader_unload_unused(r, d);
	cfg_errors_free(&errs);
	cfg_doc_unref(d);
	CU_ASSERT_PTR_NOT_NULL(r->plugins[0].handle);
	CU_ASSERT_PTR_NULL(r->plugins[1].handle);
	CU_ASSERT_PTR_NULL(dlopen(real, RTLD_NOW | RTLD_NOLOAD)); /* not mapped */
	CU_ASSERT_STRING_EQUAL(r->types[1]->name, "abi.future_keys");
	CU_ASSERT_PTR_NULL(r->types[1]->create);
	/* the unknown-type message still knows the name */
	CU_ASSERT_NOT_EQUAL(one_component(&ts, "abi.future_key", &d, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "unknown component type \"abi.future_key\" "
						    "(did you mean \"abi.future_keys\"?)"));
	cfg_errors_free(&errs);
	cfg_doc_unref(d);
	CU_ASSERT_PTR_NULL(r->plugins[1].handle);
	/* named: loaded again, the same type struct, whole */
	CU_ASSERT_EQUAL(one_component(&ts, "abi.future_keys", &d, &errs), 0);
	CU_ASSERT_EQUAL(errs.n, 0);
	t = r->types[1];
	CU_ASSERT_PTR_EQUAL(d->components[0].type, t);
	CU_ASSERT_PTR_NOT_NULL(t->create);
	CU_ASSERT_PTR_NOT_NULL(r->plugins[1].handle);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t->schema);
	CU_ASSERT_STRING_EQUAL(t->schema[1].children[0].name, "gamma");
	h = dlopen(real, RTLD_NOW | RTLD_NOLOAD);
	CU_ASSERT_PTR_NOT_NULL(h);
	if (h)
		dlclose(h);
	cfg_errors_free(&errs);
	cfg_doc_unref(d);
	loader_registry_free(r);
}

static void test_future_key_stride(void)
{
	struct plugin_registry *r = loader_registry_new();
	const struct starling_config_key *k;

	/* Config keys and the component type from a newer header, longer than
	 * this host's: walked with the stride the type states. */
	CU_ASSERT_EQUAL(loader_load_file(r, FIX("abi_future_keys"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(r->n_types, 1);
	k = r->types[0]->schema;
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_STRING_EQUAL(k[0].name, "alpha");
	CU_ASSERT_STRING_EQUAL(k[0].default_value, "a");
	CU_ASSERT_STRING_EQUAL(k[1].name, "beta");
	CU_ASSERT_EQUAL(k[1].type, STARLING_CFG_GROUP);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k[1].children);
	CU_ASSERT_STRING_EQUAL(k[1].children[0].name, "gamma");
	CU_ASSERT_STRING_EQUAL(k[1].children[0].default_value, "7");
	CU_ASSERT_PTR_NULL(k[1].children[1].name);
	CU_ASSERT_PTR_NULL(k[2].name);
	loader_registry_free(r);
}

/* ---- a 1.0 plugin runs: a 1.1 sink receives its batch zero-extended ---- */

static int sink11_received;
static bool sink11_ext_clean;
static char sink11_name[64];

static int sink11_create(const struct starling_host_api *api, starling_component *self,
			 const starling_config *cfg, void **out)
{
	*out = NULL;
	return 0;
}

static void sink11_destroy(void *inst)
{
}

static int sink11_receive(void *inst, const struct starling_series_batch *b)
{
	sink11_received++;
	sink11_ext_clean = b->ext == NULL && b->ext_size == 0;
	if (b->n_series == 1 && b->series[0].n_labels == 2)
		snprintf(sink11_name, sizeof(sink11_name), "%s", b->series[0].labels[0].value);
	return 0;
}

static const struct starling_component_type sink11_type = {
    STARLING_TYPE_HEAD,
    .name = "t.sink11",
    .help = "a sink built against this header",
    .accepts = STARLING_ACCEPTS_SERIES,
    .create = sink11_create,
    .destroy = sink11_destroy,
    .receive_series = sink11_receive,
};

static void test_v1_0_plugin_runs(void)
{
	struct plugin_registry *r = loader_registry_new();
	const struct starling_component_type *types[2];
	uint32_t minors[2];
	struct type_set ts = {.types = types, .n = 2, .built_minor = minors};
	struct cfg_errors errs = {0};
	struct cfg_doc *d = NULL;
	struct cluster_config cc;
	struct cluster *cl = NULL;
	struct runtime *rt = NULL;
	char state[] = "/tmp/starling-abi-rt-XXXXXX", *metrics = NULL;
	size_t mlen = 0;
	FILE *mf;

	CU_ASSERT_EQUAL_FATAL(loader_load_file(r, FIX("abi_v1_0"), err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(r->n_types, 1);
	CU_ASSERT_EQUAL(r->type_built_minor[0], 0);
	types[0] = r->types[0];
	minors[0] = r->type_built_minor[0];
	types[1] = &sink11_type;
	minors[1] = STARLING_ABI_MINOR;
	CU_ASSERT_EQUAL_FATAL(cfg_doc_parse_string("components = (\n"
						   " { type = \"abi.v1_0\"; name = \"p\";\n"
						   "   forward_to = [ \"t.sink11.s\" ]; },\n"
						   " { type = \"t.sink11\"; name = \"s\"; }\n"
						   ");\n",
						   "v10.cfg", &d, &errs),
			      0);
	CU_ASSERT_EQUAL(cfg_doc_validate(d, &ts, &errs), 0);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	CU_ASSERT_EQUAL_FATAL(errs.n, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(state));
	cluster_config_defaults(&cc);
	snprintf(cc.node_name, sizeof(cc.node_name), "n1");
	CU_ASSERT_EQUAL_FATAL(cluster_create(&cc, &cl, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_start(cl, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state, 2), 0);
	/* start() of the 1.0 producer forwards synchronously: when apply
	 * returns, the sink has the batch. */
	CU_ASSERT_EQUAL(runtime_apply(rt, d), 0);
	CU_ASSERT_EQUAL(sink11_received, 1);
	CU_ASSERT_TRUE(sink11_ext_clean);
	CU_ASSERT_STRING_EQUAL(sink11_name, "abi_v1_0_up");
	mf = open_memstream(&metrics, &mlen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
	runtime_write_metrics(rt, mf);
	fclose(mf);
	CU_ASSERT_PTR_NOT_NULL(strstr(
	    metrics, "abi_v1_0_starts_total{component_id=\"abi.v1_0.p\",kind=\"fixture\"} 1"));
	free(metrics);
	runtime_destroy(rt);
	cfg_doc_unref(d);
	cluster_destroy(cl);
	cfg_errors_free(&errs);
	loader_registry_free(r);
	rmdir(state);
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	close(in);
	close(out);
	return n < 0 ? -1 : chmod(to, mode);
}

static void test_world_writable_file(void)
{
	char dir[] = "/tmp/starling-abi-XXXXXX", path[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ww.so", dir);
	CU_ASSERT_EQUAL_FATAL(copy_file(FIX("abi_good"), path, 0666), 0);
	CU_ASSERT_EQUAL(load_one(path), -EPERM);
	CU_ASSERT_TRUE(err_has("file is world-writable: expected mode without group/other write, "
			       "found 0666"));
	/* Same file, safe mode: accepted. */
	chmod(path, 0644);
	CU_ASSERT_EQUAL(load_one(path), 0);
	/* Safe file in a group-writable directory: refused. */
	chmod(dir, 0775);
	CU_ASSERT_EQUAL(load_one(path), -EPERM);
	CU_ASSERT_TRUE(err_has("directory is group-writable"));
	unlink(path);
	rmdir(dir);
}

/* A symlink in a safe directory to a plugin in a world-writable one: the
 * permission check used to look at the link's directory only and loaded
 * the file anyone could replace. */
static void test_symlink_target_checked(void)
{
	char safe[] = "/tmp/starling-abi-XXXXXX", open_dir[] = "/tmp/starling-abi-XXXXXX";
	char target[128], link[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(safe));
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(open_dir));
	chmod(safe, 0755);
	chmod(open_dir, 0777);
	snprintf(target, sizeof(target), "%s/real.so", open_dir);
	snprintf(link, sizeof(link), "%s/link.so", safe);
	CU_ASSERT_EQUAL_FATAL(copy_file(FIX("abi_good"), target, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
	CU_ASSERT_EQUAL(load_one(link), -EPERM);
	CU_ASSERT_TRUE(err_has("directory of the symlink target is world-writable"));
	/* the same link to a target in a safe directory loads */
	chmod(open_dir, 0755);
	CU_ASSERT_EQUAL(load_one(link), 0);
	/* a world-writable target file through the link is refused too */
	chmod(target, 0666);
	CU_ASSERT_EQUAL(load_one(link), -EPERM);
	CU_ASSERT_TRUE(err_has("file (symlink target) is world-writable"));
	unlink(link);
	unlink(target);
	rmdir(safe);
	rmdir(open_dir);
}

static void test_refusal_log_line(void)
{
	char logpath[] = "/tmp/starling-abi-log-XXXXXX";
	char dir[] = "/tmp/starling-abi-XXXXXX", so[128], want[256];
	int fd = mkstemp(logpath), saved;
	char buf[4096] = {0};
	char *nl;
	FILE *f;

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	/* A fresh file name: identical log lines are rate-limited. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(so, sizeof(so), "%s/major.so", dir);
	CU_ASSERT_EQUAL_FATAL(copy_file(FIX("abi_major_next"), so, 0644), 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	load_one(so);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	f = fopen(logpath, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_TRUE(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	unlink(logpath);
	unlink(so);
	rmdir(dir);
	snprintf(want, sizeof(want),
		 "level=error msg=\"refusing plugin %s: ABI major: expected 1, found 2\"", so);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
	/* Exactly one line. */
	nl = strchr(buf, '\n');
	CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
	CU_ASSERT_PTR_NULL(strchr(nl + 1, '\n'));
}

static void test_load_dir(void)
{
	struct plugin_registry *r =
	    loader_registry_new(); /* All fixtures: of good and bigger only the first abi.good
				    * survives; abi.targets, abi.future_keys and abi.v1_0 are
				    * accepted too. */
	CU_ASSERT_EQUAL(loader_load_dir(r, ABI_FIXTURE_DIR), 0);
	CU_ASSERT_EQUAL(r->n_types, 4);
	CU_ASSERT_EQUAL(r->n_plugins, 4);
	CU_ASSERT_EQUAL(r->refused, 9);
	loader_registry_free(r);
	r = loader_registry_new();
	CU_ASSERT_EQUAL(loader_load_dir(r, "/nonexistent/plugins"), -ENOENT);
	loader_registry_free(r);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("abi_gate", NULL, NULL);
	CU_add_test(s, "good plugin accepted", test_good);
	CU_add_test(s, "bigger struct of the same minor accepted", test_bigger_struct_accepted);
	CU_add_test(s, "wrong magic refused", test_bad_magic);
	CU_add_test(s, "major+1 refused", test_major_next);
	CU_add_test(s, "minor newer than host refused", test_minor_newer);
	CU_add_test(s, "short descriptor refused", test_short_struct);
	CU_add_test(s, "short component type refused", test_short_type);
	CU_add_test(s, "no entry symbol refused", test_no_entry);
	CU_add_test(s, "duplicate component type refused", test_duplicate_type);
	CU_add_test(s, "1.1 target receiver: accepted, or refused when it declares 1.0",
		    test_targets_type);
	CU_add_test(s, "config keys from a newer header walked with their stride",
		    test_future_key_stride);
	CU_add_test(s, "a plugin built against ABI 1.0 loads and runs", test_v1_0_plugin_runs);
	CU_add_test(s, "world-writable file / group-writable dir refused",
		    test_world_writable_file);
	CU_add_test(s, "one log line per refusal", test_refusal_log_line);
	CU_add_test(s, "symlink: the real file and its directory are checked",
		    test_symlink_target_checked);
	CU_add_test(s, "directory scan", test_load_dir);
	CU_add_test(s, "unused plugins unloaded, loaded again when named", test_unload_unused);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
