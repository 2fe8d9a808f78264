/* psa-stress: the watchdog and the crash handler (see watchdog.h). */
#define _GNU_SOURCE /* prctl, PR_SET_PTRACER */

#include "nemesis/watchdog.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nemesis/nemesis.h"

#define MAX_FRAMES 64

#define PROGRESS_SLOTS 64 /* threads beyond this share slots */

/* One counter per thread, each on its own cache line: a shared one cost the plain driver
 * time in cache-line transfers (docs/benchmarks.md). Written by its thread, summed by the watchdog. */
static struct {
    _Alignas(64) _Atomic uint64_t calls;
} progress[PROGRESS_SLOTS];
static double limit_seconds;
static pthread_t watchdog_thread;

void watchdog_progress(unsigned thread)
{
    atomic_fetch_add_explicit(&progress[thread % PROGRESS_SLOTS].calls, 1, memory_order_relaxed);
}

static uint64_t progress_total(void)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < PROGRESS_SLOTS; i++) {
        total += atomic_load_explicit(&progress[i].calls, memory_order_relaxed);
    }
    return total;
}

static void write_str(const char *s)
{
    ssize_t unused = write(STDERR_FILENO, s, strlen(s));
    (void) unused;
}

/* The calling thread's stack, from a signal handler or anywhere else. */
static void own_backtrace(void)
{
    void *frames[MAX_FRAMES];
    int n = backtrace(frames, MAX_FRAMES);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
}

/* gdb attached to this process prints every thread's stack; false if gdb could not run. */
static bool gdb_stacks(void)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int) getpid());
    pid_t child = fork();
    if (child < 0) {
        return false;
    }
    if (child == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execlp("gdb", "gdb", "-batch", "-nx", "-p", pid, "-ex", "thread apply all bt",
               (char *) NULL);
        _exit(127);
    }
    prctl(PR_SET_PTRACER, (unsigned long) child, 0, 0, 0); /* Yama: let the child attach */
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void watchdog_dump_stacks(void)
{
    fflush(stderr);
    write_str(WATCHDOG_STACKS_BEGIN "\n");
    if (!gdb_stacks()) {
        write_str("(gdb unavailable: the reporting thread's stack only)\n");
        own_backtrace();
    }
    write_str(WATCHDOG_STACKS_END "\n");
}

static void *watchdog_main(void *arg)
{
    (void) arg;
    uint64_t seen = progress_total();
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    for (double quiet = 0; quiet < limit_seconds; quiet += 0.1) {
        nanosleep(&tick, NULL);
        uint64_t now = progress_total();
        if (now != seen) {
            seen = now;
            quiet = 0;
        }
    }
    fprintf(stderr, "psa-stress: HANG: no call completed in %g s (watchdog)\n", limit_seconds);
    nemesis_flush();
    watchdog_dump_stacks();
    _exit(NEMESIS_EXIT_HANG);
}

bool watchdog_start(double seconds)
{
    limit_seconds = seconds;
    if (pthread_create(&watchdog_thread, NULL, watchdog_main, NULL) != 0) {
        return false;
    }
    return pthread_detach(watchdog_thread) == 0;
}

static void crash_handler(int sig)
{
    write_str("psa-stress: CRASH: fatal signal ");
    write_str(strsignal(sig));
    write_str("\n" WATCHDOG_STACKS_BEGIN "\n");
    own_backtrace();
    write_str(WATCHDOG_STACKS_END "\n");
    nemesis_flush();
    raise(sig); /* SA_RESETHAND: the default action now, the process dies of sig */
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

void watchdog_install_crash_handler(void)
{
#if !defined(UNDER_ASAN)
    static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    void *warm[1];
    backtrace(warm, 1); /* loads libgcc now: backtrace may allocate on its first call */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = crash_handler;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        sigaction(fatal[i], &sa, NULL);
    }
#endif
}
