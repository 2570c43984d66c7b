/*
 * Last words of a crashing daemon. Plugins run inside the daemon's process
 * (they are trusted code, see README "Plugins are trusted code"), so a
 * plugin that segfaults takes the daemon down; systemd restarts it
 * (Restart=on-failure). What this adds is a clear last log line: a
 * fatal-signal handler writes which signal, which plugin file the faulting
 * instruction belongs to, and which component and callback the thread was
 * running, then lets the signal kill the process (core dump as configured).
 */
#ifndef STARLING_HOST_CRASH_H
#define STARLING_HOST_CRASH_H

/* What the calling thread is running: set around every plugin callback. */
struct crash_ctx {
	const char *component; /* component id, or NULL */
	const char *callback;  /* "create", "receive_series", ... */
};

/* Install the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT
 * (not under AddressSanitizer, whose own report says more). */
void crash_install(void);

/* Remember the address range of the shared object that contains addr (a
 * plugin's entry point) under the name path, so that a fault in it can be
 * named; at most 64 objects. */
void crash_register_module(const char *path, const void *addr);
/* Forget the range registered for the object that contains addr (it is
 * about to be unloaded). */
void crash_forget_module(const void *addr);

/* Enter a callback; returns the previous context for crash_leave (callbacks
 * nest: a producer's forward runs its receivers' callbacks). The strings
 * must outlive the callback. */
struct crash_ctx crash_enter(const char *component, const char *callback);
void crash_leave(struct crash_ctx prev);

#endif
