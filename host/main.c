/*
 * starling: command line, startup and the main loop.
 *
 * Startup order: parse the config, load plugins (main thread, no other
 * threads yet), validate, block the control signals, then start the cluster
 * service, the runtime and HTTP, and apply the graph. The main thread then
 * waits for signals; SIGHUP reloads, SIGTERM/SIGINT stop within a bound.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <starling/plugin.h>

#include "check_metrics.h"
#include "cluster/cluster.h"
#include "drift.h"
#include "config.h"
#include "crash.h"
#include "default_config.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "mem_tune.h"
#include "runtime.h"
#include "suggest.h"
#include "units.h"

#define SHUTDOWN_BOUND_S 10
#define LEAVE_TIMEOUT_MS 3000

#ifndef STARLING_DEFAULT_PLUGINS_DIR
#define STARLING_DEFAULT_PLUGINS_DIR "/usr/lib/starling/plugins"
#endif

struct cli {
	const char *config; /* NULL: embedded default */
	struct cfg_overrides ovr;
	char **args; /* positional arguments */
	size_t n_args;
};

struct app {
	struct cli *cli;
	struct plugin_registry *reg;
	struct runtime *rt;
	pthread_mutex_t reload_lock;
	struct cfg_doc *doc; /* the running document */
	struct cluster *cluster;
};

/* Advertise the fingerprint of doc's ownership-deciding configuration, so
 * that peers running a different one are reported (drift). */
static void advertise_fingerprint(struct cluster *cluster, const struct cfg_doc *doc)
{
	char *fp = drift_fingerprint(doc, 200);

	cluster_set_fingerprint(cluster, fp ? fp : "");
	free(fp);
}

static void usage(FILE *f)
{
	fputs("usage:\n"
	      "  starling run [--config FILE] [flags]\n"
	      "  starling check-config FILE [flags]\n"
	      "  starling check-metrics [--format auto|prometheus|openmetrics|protobuf]\n"
	      "      [--lenient] [--metric-name-validation-scheme legacy|utf8] [FILE|-]\n"
	      "  starling plugins list [--plugins-dir DIR]\n"
	      "  starling plugins describe TYPE [--plugins-dir DIR]\n"
	      "  starling version\n"
	      "flags (override the config file):\n"
	      "  --config FILE                   libconfig file (default: embedded default)\n"
	      "  --plugins-dir DIR               plugins directory (default: install dir, or\n"
	      "                                  plugins/ next to the binary in a build tree)\n"
	      "  --state-dir DIR                 state directory (default /var/lib/starling)\n"
	      "  --server.http.listen-addr ADDR  HTTP listen address (default "
	      "127.0.0.1:12345)\n"
	      "  --log.level LEVEL               error, warn, info or debug\n"
	      "  --cluster.KEY[=VALUE]           any cluster key, e.g. --cluster.enabled,\n"
	      "                                  --cluster.node-name=a, --cluster.join=h:p "
	      "(repeatable)\n",
	      f);
}

static void free_cli(struct cli *c)
{
	for (size_t i = 0; i < c->ovr.n_cluster; i++) {
		free(c->ovr.cluster[i].key);
		free(c->ovr.cluster[i].value);
	}
	free(c->ovr.cluster);
	free(c->args);
}

/* Flags accept "--k=v" and "--k v". Returns 0 or 2 (usage error). */
static int parse_cli(int argc, char **argv, struct cli *c)
{
	for (int i = 0; i < argc; i++) {
		char *a = argv[i], *eq, key[256];
		const char *val = NULL;
		size_t klen;

		if (strncmp(a, "--", 2) != 0 || !a[2]) {
			char **nv = realloc(c->args, (c->n_args + 1) * sizeof(*nv));

			if (!nv)
				return 2;
			c->args = nv;
			c->args[c->n_args++] = a;
			continue;
		}
		a += 2;
		eq = strchr(a, '=');
		klen = eq ? (size_t)(eq - a) : strlen(a);
		if (klen >= sizeof(key)) {
			fprintf(stderr, "starling: flag too long\n");
			return 2;
		}
		memcpy(key, a, klen);
		key[klen] = '\0';
		if (eq)
			val = eq + 1;
		if (!strcmp(key, "help")) {
			usage(stdout);
			exit(0);
		}
		if (!strncmp(key, "cluster.", 8)) {
			struct cfg_flag *nv;
			char *k = strdup(key + 8);

			if (!k)
				return 2;
			for (char *p = k; *p; p++)
				if (*p == '-')
					*p = '_';
			/* A bare --cluster.enabled means true; other keys take a value. */
			if (!val && strcmp(k, "enabled") && i + 1 < argc)
				val = argv[++i];
			else if (!val && !strcmp(k, "enabled") && i + 1 < argc &&
				 (!strcmp(argv[i + 1], "true") || !strcmp(argv[i + 1], "false")))
				val = argv[++i];
			nv = realloc(c->ovr.cluster, (c->ovr.n_cluster + 1) * sizeof(*nv));
			if (!nv) {
				free(k);
				return 2;
			}
			c->ovr.cluster = nv;
			nv[c->ovr.n_cluster].key = k;
			nv[c->ovr.n_cluster].value = val ? strdup(val) : NULL;
			c->ovr.n_cluster++;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "starling: flag --%s needs a value\n", key);
				return 2;
			}
			val = argv[++i];
		}
		if (!strcmp(key, "config"))
			c->config = val;
		else if (!strcmp(key, "plugins-dir") || !strcmp(key, "plugins_dir"))
			c->ovr.plugins_dir = val;
		else if (!strcmp(key, "state-dir") || !strcmp(key, "state_dir"))
			c->ovr.state_dir = val;
		else if (!strcmp(key, "server.http.listen-addr") ||
			 !strcmp(key, "server.http.listen_addr"))
			c->ovr.http_listen_addr = val;
		else if (!strcmp(key, "log.level"))
			c->ovr.log_level = val;
		else {
			static const char *const flags[] = {"config",	 "plugins-dir",
							    "state-dir", "server.http.listen-addr",
							    "log.level", "help"};
			const char *s =
			    suggest_closest(key, flags, sizeof(flags) / sizeof(flags[0]));

			if (s)
				fprintf(stderr,
					"starling: unknown flag --%s (did you mean --%s?)\n", key,
					s);
			else
				fprintf(stderr,
					"starling: unknown flag --%s (see starling --help)\n", key);
			return 2;
		}
	}
	return 0;
}

/* The plugins directory when neither a flag nor the file names one: the
 * install default, or, for a binary run from a build tree, the plugins/
 * directory next to it (build/starling -> build/plugins). */
static const char *default_plugins_dir(void)
{
	static char buf[4096];
	struct stat st;
	ssize_t n;
	char *slash;

	if (stat(STARLING_DEFAULT_PLUGINS_DIR, &st) == 0 && S_ISDIR(st.st_mode))
		return STARLING_DEFAULT_PLUGINS_DIR;
	n = readlink("/proc/self/exe", buf, sizeof(buf) - sizeof("/plugins"));
	if (n <= 0)
		return STARLING_DEFAULT_PLUGINS_DIR;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return STARLING_DEFAULT_PLUGINS_DIR;
	memcpy(slash, "/plugins", sizeof("/plugins"));
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
	return STARLING_DEFAULT_PLUGINS_DIR;
}

static void print_errors(const struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->msgs[i]);
}

static char *join_errors(const struct cfg_errors *e)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s\n", e->msgs[i]);
	fclose(f);
	return buf;
}

/* The embedded default scrapes the node's own /metrics at the default listen
 * address. With --server.http.listen-addr that target moves with it: every
 * occurrence of the default address in the embedded text is replaced (a
 * wildcard host is scraped on loopback). malloc'd; NULL on no memory. */
#define DEFAULT_SELF_ADDR "\"127.0.0.1:12345\""

static char *default_config_for(const char *listen)
{
	char host[256], target[300];
	const char *p, *hit;
	unsigned port;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!listen || parse_hostport(listen, host, sizeof(host), &port))
		return strdup(starling_default_config);
	if (!host[0] || !strcmp(host, "0.0.0.0"))
		snprintf(target, sizeof(target), "\"127.0.0.1:%u\"", port);
	else if (!strcmp(host, "::"))
		snprintf(target, sizeof(target), "\"[::1]:%u\"", port);
	else if (strchr(host, ':'))
		snprintf(target, sizeof(target), "\"[%s]:%u\"", host, port);
	else
		snprintf(target, sizeof(target), "\"%s:%u\"", host, port);
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (p = starling_default_config; (hit = strstr(p, DEFAULT_SELF_ADDR)) != NULL;
	     p = hit + strlen(DEFAULT_SELF_ADDR))
		fprintf(f, "%.*s%s", (int)(hit - p), p, target);
	fputs(p, f);
	fclose(f);
	return buf;
}

/* Parse file (or the embedded default) and apply the flags. On errors other
 * than syntax, *out is still set (caller unrefs) so more errors can be found. */
static int load_doc(const struct cli *c, struct cfg_doc **out, struct cfg_errors *errs)
{
	int r;

	if (c->config) {
		r = cfg_doc_parse_file(c->config, out, errs);
	} else {
		char *text = default_config_for(c->ovr.http_listen_addr);

		if (!text) {
			cfg_errors_add(errs, "<embedded default>: out of memory");
			return -ENOMEM;
		}
		r = cfg_doc_parse_string(text, "<embedded default>", out, errs);
		free(text);
	}
	if (!*out)
		return r;
	if (cfg_doc_apply_overrides(*out, &c->ovr, errs))
		r = -EINVAL;
	if (!(*out)->plugins_dir) {
		(*out)->plugins_dir = strdup(default_plugins_dir());
		if (!(*out)->plugins_dir)
			r = -ENOMEM;
	}
	return r;
}

static struct plugin_registry *load_plugins(const char *dir)
{
	struct plugin_registry *reg = loader_registry_new();

	if (!reg)
		return NULL;
	loader_load_dir(reg, dir);
	return reg;
}

static int reload_handler(void *arg, char **msg)
{
	struct app *app = arg;
	struct cfg_errors errs = {0};
	struct cfg_doc *doc = NULL;
	struct type_set ts;
	int r;

	pthread_mutex_lock(&app->reload_lock);
	log_info("reloading configuration from %s",
		 app->cli->config ? app->cli->config : "the embedded default");
	r = load_doc(app->cli, &doc, &errs);
	if (doc) {
		loader_type_set(app->reg, &ts);
		if (cfg_doc_validate(doc, &ts, &errs) || errs.n)
			r = -EINVAL;
	}
	/* New and changed instances are created before anything stops; a
	 * create() that fails refuses the whole reload. */
	if (!r && runtime_apply_checked(app->rt, doc, &errs))
		r = -EINVAL;
	if (r) {
		*msg = join_errors(&errs);
		for (size_t i = 0; i < errs.n; i++)
			log_error("reload refused: %s", errs.msgs[i]);
		log_error("reload refused (%zu errors); the running configuration is kept", errs.n);
		runtime_note_reload(app->rt, false);
		cfg_errors_free(&errs);
		cfg_doc_unref(doc);
		pthread_mutex_unlock(&app->reload_lock);
		return -EINVAL;
	}
	if (strcmp(doc->http_listen_addr, app->doc->http_listen_addr) ||
	    strcmp(doc->state_dir, app->doc->state_dir) ||
	    strcmp(doc->plugins_dir, app->doc->plugins_dir))
		log_warn("server, state_dir and plugins_dir changes take effect after a restart");
	if (memcmp(&doc->cluster, &app->doc->cluster, offsetof(struct cluster_config, join)))
		log_warn("cluster changes take effect after a restart");
	log_set_level(doc->log_level);
	runtime_set_reload_wait(app->rt, doc->reload_timeout_ms);
	advertise_fingerprint(app->cluster, doc);
	runtime_note_reload(app->rt, true);
	cfg_doc_unref(app->doc);
	app->doc = doc;
	pthread_mutex_unlock(&app->reload_lock);
	return 0;
}

/* Each component's own create() and destroy(), as run would call them
 * (the ABI keeps create() free of threads and I/O), on a runtime without
 * threads. Returns 0 or -EINVAL with the failures in errs. */
static int dry_run(struct cfg_doc *doc, struct cfg_errors *errs)
{
	struct runtime *rt = NULL;
	int r = runtime_create_validator(&rt, doc->state_dir);

	if (r) {
		cfg_errors_add(errs, "%s: cannot check components: %s", doc->file, strerror(-r));
		return r;
	}
	r = runtime_validate(rt, doc, errs);
	runtime_destroy(rt);
	return r;
}

static void *watchdog(void *arg)
{
	struct timespec ts = {.tv_sec = SHUTDOWN_BOUND_S};

	(void)arg;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	log_error("graceful stop took longer than %ds; exiting now", SHUTDOWN_BOUND_S);
	_exit(1);
	return NULL;
}

static double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Announce the leave and keep running (components scrape their slots)
 * until the announced hand-over time, when the peers take over; a second
 * SIGTERM/SIGINT cuts the wait short. */
static void handover(struct cluster *cluster, const sigset_t *set)
{
	int64_t until = cluster_announce_leave(cluster);

	for (;;) {
		int64_t left = until - (int64_t)(wall_seconds() * 1000.0);
		struct timespec to;
		siginfo_t si;
		int sig;

		if (left <= 0)
			return;
		if (left > 60000)
			left = 60000;
		to.tv_sec = left / 1000;
		to.tv_nsec = (left % 1000) * 1000000L;
		sig = sigtimedwait(set, &si, &to);
		if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second signal: leaving without waiting for the hand-over");
			return;
		}
	}
}

/* One connection per scrape target is kept open between scrapes (the SDK
 * HTTP client sizes its connection cache by the fd limit): lift the soft
 * open-file limit to the hard one, as Go's runtime does since Go 1.19. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("cannot raise the open-file limit to %llu: %s",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

static int cmd_run(struct cli *cli)
{
	struct app app = {.cli = cli};
	struct mem_trim trim = {0};
	struct cfg_errors errs = {0};
	struct type_set ts;
	struct cluster *cluster = NULL;
	struct http_server *http = NULL;
	sigset_t set;
	char err[512];
	double start = wall_seconds();
	int r, code = 0;

	/* On errors other than syntax, go on validating to report them all. */
	if (load_doc(cli, &app.doc, &errs) && !app.doc) {
		print_errors(&errs);
		log_error("configuration has errors; not starting");
		cfg_errors_free(&errs);
		return 1;
	}
	log_set_level(app.doc->log_level);
	raise_nofile_limit();
	mem_tune_init();
	/* Plugins load here, on the main thread, before any other thread. */
	app.reg = load_plugins(app.doc->plugins_dir);
	if (!app.reg) {
		cfg_doc_unref(app.doc);
		return 1;
	}
	loader_type_set(app.reg, &ts);
	if (cfg_doc_validate(app.doc, &ts, &errs) || errs.n || dry_run(app.doc, &errs)) {
		print_errors(&errs);
		log_error("configuration has %zu error%s; not starting", errs.n,
			  errs.n == 1 ? "" : "s");
		cfg_errors_free(&errs);
		code = 1;
		goto out_plugins;
	}
	/* Plugins none of whose types the configuration uses leave the process
	 * (their code and libraries cost resident memory); a reload naming one
	 * of their types loads it again. */
	loader_unload_unused(app.reg, app.doc);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = cluster_create(&app.doc->cluster, &cluster, err, sizeof(err));
	if (r) {
		log_error("cluster: %s", err);
		code = 1;
		goto out_plugins;
	}
	r = runtime_create(&app.rt, cluster, app.doc->state_dir, RUNTIME_DEFAULT_WORKERS);
	if (r) {
		log_error("cannot start the runtime: %s", strerror(-r));
		code = 1;
		goto out_cluster;
	}
	pthread_mutex_init(&app.reload_lock, NULL);
	runtime_set_reload_wait(app.rt, app.doc->reload_timeout_ms);
	r = runtime_set_reload_handler(app.rt, reload_handler, &app);
	if (r) {
		log_error("cannot start the reload thread: %s", strerror(-r));
		code = 1;
		goto out_runtime;
	}
	r = http_start(&http, app.doc->http_listen_addr, app.rt, cluster, start, err, sizeof(err));
	if (r) {
		log_error("http: %s", err);
		code = 1;
		goto out_runtime;
	}
	app.cluster = cluster;
	advertise_fingerprint(cluster, app.doc);
	cluster_set_http_addr(cluster, app.doc->http_listen_addr);
	r = cluster_start(cluster, err, sizeof(err));
	if (r) {
		log_error("cluster: %s", err);
		code = 1;
		goto out_http;
	}
	pthread_mutex_lock(&app.reload_lock);
	r = runtime_apply_checked(app.rt, app.doc, &errs);
	runtime_note_reload(app.rt, r == 0);
	pthread_mutex_unlock(&app.reload_lock);
	if (r) {
		print_errors(&errs);
		log_error("configuration has %zu error%s; not starting", errs.n,
			  errs.n == 1 ? "" : "s");
		cfg_errors_free(&errs);
		code = 1;
		cluster_leave(cluster, LEAVE_TIMEOUT_MS);
		runtime_shutdown(app.rt);
		goto out_http;
	}
	cluster_set_participant(cluster);
	runtime_set_ready(app.rt, true);
	log_info("ready: listening on http://%s, %zu components, node %s",
		 app.doc->http_listen_addr, app.doc->n_components, cluster_self_name(cluster));

	for (;;) {
		struct timespec to = {.tv_nsec = 500000000};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &to);
		struct timespec mono;

		if (sig == SIGHUP) {
			/* on the reload thread; its outcome is logged and counted */
			if (runtime_reload_submit(app.rt, NULL, NULL))
				log_error("SIGHUP: cannot queue the reload");
		} else if (sig == SIGTERM || sig == SIGINT) {
			log_info("received %s, stopping (bound %ds)",
				 sig == SIGTERM ? "SIGTERM" : "SIGINT", SHUTDOWN_BOUND_S);
			break;
		}
		runtime_tick(app.rt);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		mem_trim_tick(&trim, (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000);
	}
	runtime_set_ready(app.rt, false);
	handover(cluster, &set);
	{
		pthread_t wd;

		if (pthread_create(&wd, NULL, watchdog, NULL) == 0)
			pthread_detach(wd);
	}
	cluster_leave(cluster, LEAVE_TIMEOUT_MS);
	runtime_shutdown(app.rt);
	log_info("stopped");
out_http:
	/* the reload thread answers waiting HTTP requests: stop it first */
	runtime_shutdown(app.rt);
	http_stop(http);
out_runtime:
	runtime_destroy(app.rt);
	pthread_mutex_destroy(&app.reload_lock);
out_cluster:
	cluster_destroy(cluster);
out_plugins:
	cfg_doc_unref(app.doc);
	loader_registry_free(app.reg);
	return code;
}

static int cmd_check_config(struct cli *cli)
{
	struct cfg_errors errs = {0};
	struct cfg_doc *doc = NULL;
	struct plugin_registry *reg;
	struct type_set ts;
	int code = 0;

	if (cli->n_args != 1) {
		fprintf(stderr, "usage: starling check-config FILE [--plugins-dir DIR]\n");
		return 2;
	}
	cli->config = cli->args[0];
	if (load_doc(cli, &doc, &errs) && !doc) {
		print_errors(&errs);
		cfg_errors_free(&errs);
		return 1;
	}
	reg = load_plugins(doc->plugins_dir);
	if (!reg) {
		cfg_doc_unref(doc);
		return 1;
	}
	loader_type_set(reg, &ts);
	if (cfg_doc_validate(doc, &ts, &errs) || errs.n || dry_run(doc, &errs)) {
		print_errors(&errs);
		fprintf(stderr, "%s: %zu error%s\n", cli->config, errs.n, errs.n == 1 ? "" : "s");
		code = 1;
	} else {
		printf("%s: OK (%zu components)\n", cli->config, doc->n_components);
	}
	cfg_errors_free(&errs);
	cfg_doc_unref(doc);
	loader_registry_free(reg);
	return code;
}

/* --plugins-dir, else plugins_dir of --config, else the install default. */
static const char *plugins_dir_for(struct cli *cli)
{
	static char from_file[4096];
	struct cfg_errors errs = {0};
	struct cfg_doc *doc = NULL;

	if (cli->ovr.plugins_dir)
		return cli->ovr.plugins_dir;
	if (cli->config) {
		cfg_doc_parse_file(cli->config, &doc, &errs);
		if (doc && doc->plugins_dir && strlen(doc->plugins_dir) < sizeof(from_file))
			memcpy(from_file, doc->plugins_dir, strlen(doc->plugins_dir) + 1);
		cfg_doc_unref(doc);
		cfg_errors_free(&errs);
		if (from_file[0])
			return from_file;
	}
	return default_plugins_dir();
}

static void print_accepts(uint32_t a)
{
	printf("%s%s%s", a & STARLING_ACCEPTS_SERIES ? "series" : "",
	       (a & STARLING_ACCEPTS_SERIES) && (a & STARLING_ACCEPTS_PROFILE) ? "," : "",
	       a & STARLING_ACCEPTS_PROFILE ? "profiles" : "");
}

static void describe_keys(const struct starling_config_key *k, int depth)
{
	for (; k && k->name; k++) {
		printf("%*s%-*s %-12s %s", depth * 2 + 2, "", 24 - depth * 2, k->name,
		       cfg_type_name(k->type), k->required ? "required" : "optional");
		if (k->default_value)
			printf(" default=\"%s\"", k->default_value);
		if ((k->type == STARLING_CFG_MAP || k->type == STARLING_CFG_MAP_LIST) &&
		    (k->flags & STARLING_CFG_F_MULTI_VALUE))
			printf(" values=string|list");
		if (k->type == STARLING_CFG_REF_LIST && k->ref_accepts) {
			printf(" accepts=");
			print_accepts(k->ref_accepts);
		}
		printf("\n");
		if (k->help && *k->help)
			printf("%*s%s\n", depth * 2 + 6, "", k->help);
		if (k->children)
			describe_keys(k->children, depth + 1);
	}
}

static int cmd_plugins(struct cli *cli)
{
	struct plugin_registry *reg;
	int code = 0;

	if (cli->n_args < 1 || (strcmp(cli->args[0], "list") && strcmp(cli->args[0], "describe")) ||
	    (!strcmp(cli->args[0], "describe") && cli->n_args != 2)) {
		fprintf(
		    stderr,
		    "usage: starling plugins list | plugins describe TYPE [--plugins-dir DIR]\n");
		return 2;
	}
	reg = load_plugins(plugins_dir_for(cli));
	if (!reg)
		return 1;
	if (!strcmp(cli->args[0], "list")) {
		for (size_t i = 0; i < reg->n_plugins; i++) {
			const struct loaded_plugin *p = &reg->plugins[i];

			printf("%s %s (%s)\n", p->desc.name ? p->desc.name : "?",
			       p->desc.version ? p->desc.version : "?", p->file);
			for (size_t j = 0; j < p->n_types; j++)
				printf("  %-36s %s\n", p->types[j]->name,
				       p->types[j]->help ? p->types[j]->help : "");
		}
		if (!reg->n_plugins)
			printf("no plugins in %s\n", plugins_dir_for(cli));
	} else {
		const struct starling_component_type *t = NULL;
		const char *file = NULL;

		for (size_t i = 0; i < reg->n_types; i++) {
			if (!strcmp(reg->types[i]->name, cli->args[1])) {
				t = reg->types[i];
				file = reg->type_files[i];
			}
		}
		if (!t) {
			fprintf(stderr, "starling: unknown component type \"%s\" in %s\n",
				cli->args[1], plugins_dir_for(cli));
			code = 1;
		} else {
			printf("%s: %s\n  plugin file: %s\n  accepts: ", t->name,
			       t->help ? t->help : "", file);
			if (t->accepts)
				print_accepts(t->accepts);
			else
				printf("nothing (producer)");
			printf("\n  keys (besides type and name):\n");
			describe_keys(t->schema, 0);
		}
	}
	loader_registry_free(reg);
	return code;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int code;

	crash_install(); /* a crashing plugin leaves a last line naming it */
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "check-metrics"))
		return cmd_check_metrics(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("starling %s (plugin ABI %d.%d)\n", STARLING_VERSION, STARLING_ABI_MAJOR,
		       STARLING_ABI_MINOR);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (parse_cli(argc - 2, argv + 2, &cli)) {
		free_cli(&cli);
		return 2;
	}
	if (!strcmp(argv[1], "run")) {
		if (cli.n_args) {
			fprintf(stderr, "starling: unexpected argument \"%s\"\n", cli.args[0]);
			code = 2;
		} else {
			code = cmd_run(&cli);
		}
	} else if (!strcmp(argv[1], "check-config")) {
		code = cmd_check_config(&cli);
	} else if (!strcmp(argv[1], "plugins")) {
		code = cmd_plugins(&cli);
	} else {
		fprintf(stderr, "starling: unknown command \"%s\"\n", argv[1]);
		usage(stderr);
		code = 2;
	}
	free_cli(&cli);
	return code;
}
