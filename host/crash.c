/*
 * Fatal-signal handler naming the plugin, component and callback (see
 * crash.h). Everything the handler does is async-signal-safe: it formats
 * into a stack buffer by hand and write()s one logfmt line to stderr.
 */
#include "crash.h"

#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CRASH_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRASH_UNDER_ASAN 1
#endif
#endif

#define MAX_MODULES 64

struct module {
	uintptr_t lo, hi;
	char *path;
};

static struct module modules[MAX_MODULES];
static volatile sig_atomic_t n_modules;
static _Thread_local struct crash_ctx current;
static char altstack[64 * 1024];

struct crash_ctx crash_enter(const char *component, const char *callback)
{
	struct crash_ctx prev = current;

	current.component = component;
	current.callback = callback;
	return prev;
}

void crash_leave(struct crash_ctx prev)
{
	current = prev;
}

struct find {
	uintptr_t addr, lo, hi;
	int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find *f = arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	if (f->addr >= lo && f->addr < hi) {
		f->lo = lo;
		f->hi = hi;
		f->found = 1;
		return 1;
	}
	return 0;
}

void crash_register_module(const char *path, const void *addr)
{
	struct find f = {(uintptr_t)addr, 0, 0, 0};
	int n = n_modules;

	if (n >= MAX_MODULES || !addr)
		return;
	dl_iterate_phdr(find_cb, &f);
	if (!f.found)
		return;
	modules[n].path = strdup(path);
	if (!modules[n].path)
		return;
	modules[n].lo = f.lo;
	modules[n].hi = f.hi;
	n_modules = n + 1; /* published last: the handler reads only complete entries */
}

void crash_forget_module(const void *addr)
{
	for (int i = 0; i < n_modules; i++)
		if ((uintptr_t)addr >= modules[i].lo && (uintptr_t)addr < modules[i].hi) {
			modules[i].hi = 0; /* an empty range first: no torn match */
			modules[i].lo = 0;
		}
}

/* ---- async-signal-safe formatting ---------------------------------------- */

struct out {
	char buf[1024];
	size_t len;
};

static void put(struct out *o, const char *s)
{
	while (s && *s && o->len < sizeof(o->buf) - 2) {
		/* keep the logfmt value quotable */
		if (*s == '"' || *s == '\\')
			o->buf[o->len++] = '\\';
		if (o->len < sizeof(o->buf) - 2)
			o->buf[o->len++] = *s;
		s++;
	}
}

static void put_raw(struct out *o, const char *s)
{
	while (s && *s && o->len < sizeof(o->buf) - 2)
		o->buf[o->len++] = *s++;
}

static void put_uint(struct out *o, uint64_t v, unsigned base, int width)
{
	char t[24];
	int n = 0;

	do {
		t[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < (int)sizeof(t));
	while (n < width && n < (int)sizeof(t))
		t[n++] = '0';
	while (n && o->len < sizeof(o->buf) - 2)
		o->buf[o->len++] = t[--n];
}

/* ts=YYYY-MM-DDThh:mm:ss.mmmZ from the epoch (days-to-civil by hand:
 * gmtime is not async-signal-safe). */
static void put_ts(struct out *o)
{
	struct timespec ts;
	int64_t days, secs, y, m, d, era, doe, yoe, doy, mp;

	clock_gettime(CLOCK_REALTIME, &ts);
	days = ts.tv_sec / 86400;
	secs = ts.tv_sec % 86400;
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	put_raw(o, "ts=");
	put_uint(o, (uint64_t)y, 10, 4);
	put_raw(o, "-");
	put_uint(o, (uint64_t)m, 10, 2);
	put_raw(o, "-");
	put_uint(o, (uint64_t)d, 10, 2);
	put_raw(o, "T");
	put_uint(o, (uint64_t)(secs / 3600), 10, 2);
	put_raw(o, ":");
	put_uint(o, (uint64_t)(secs / 60 % 60), 10, 2);
	put_raw(o, ":");
	put_uint(o, (uint64_t)(secs % 60), 10, 2);
	put_raw(o, ".");
	put_uint(o, (uint64_t)(ts.tv_nsec / 1000000), 10, 3);
	put_raw(o, "Z");
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGILL:
		return "SIGILL";
	case SIGFPE:
		return "SIGFPE";
	case SIGABRT:
		return "SIGABRT";
	default:
		return "signal";
	}
}

static uintptr_t fault_pc(void *ucv)
{
	ucontext_t *uc = ucv;

	if (!uc)
		return 0;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	return 0;
#endif
}

static void handler(int sig, siginfo_t *si, void *ucv)
{
	struct out o = {.len = 0};
	uintptr_t pc = fault_pc(ucv);
	const char *plugin = NULL;
	int n = n_modules;

	for (int i = 0; i < n && pc; i++)
		if (pc >= modules[i].lo && pc < modules[i].hi)
			plugin = modules[i].path;
	put_ts(&o);
	put_raw(&o, " level=error");
	if (current.component) {
		put_raw(&o, " component=");
		put(&o, current.component);
	}
	put_raw(&o, " msg=\"fatal signal ");
	put_raw(&o, sig_name(sig));
	if (sig != SIGABRT && si) {
		put_raw(&o, " (fault address 0x");
		put_uint(&o, (uint64_t)(uintptr_t)si->si_addr, 16, 1);
		put_raw(&o, ")");
	}
	if (plugin) {
		put_raw(&o, " in plugin ");
		put(&o, plugin);
	}
	if (current.callback) {
		put_raw(&o, current.component ? " during callback " : " during ");
		put(&o, current.callback);
		if (current.component) {
			put_raw(&o, " of component ");
			put(&o, current.component);
		}
	} else if (plugin) {
		put_raw(&o, " (on a thread of the plugin's own)");
	}
	put_raw(&o, "; the daemon stops (plugins run in its process; the service manager "
		    "restarts it)\"\n");
	if (write(STDERR_FILENO, o.buf, o.len) < 0) {
		/* nothing left to report to */
	}
	/* SA_RESETHAND restored the default action: die of the same signal */
	raise(sig);
}

void crash_install(void)
{
#ifndef CRASH_UNDER_ASAN
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	struct sigaction sa;
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};

	sigaltstack(&ss, NULL); /* a stack overflow of the main thread still reports */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
#else
	/* AddressSanitizer reports crashes itself; ours stays compiled. */
	(void)handler;
	(void)altstack;
#endif
}
