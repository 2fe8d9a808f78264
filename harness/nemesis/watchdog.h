/* psa-stress: hang and crash reporting.
 *
 * The watchdog is a thread that fails the run when no call has completed for T seconds
 * (--watchdog T): it prints a marker line, every thread's stack (gdb in batch mode on the live
 * process when gdb exists, else its own backtrace only), and exits NEMESIS_EXIT_HANG. The crash
 * handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) prints the crashing thread's backtrace
 * and re-raises the signal, so the process still dies of it. Neither writes the history: the
 * per-thread record files survive the process. Stacks are printed between the lines
 * WATCHDOG_STACKS_BEGIN and WATCHDOG_STACKS_END on stderr (runner.py looks for them). */
#ifndef PSA_STRESS_WATCHDOG_H
#define PSA_STRESS_WATCHDOG_H

#include <stdbool.h>

#define WATCHDOG_STACKS_BEGIN "==== psa-stress stacks begin ===="
#define WATCHDOG_STACKS_END "==== psa-stress stacks end ===="

/* Starts the watchdog thread (seconds > 0); false if it could not be started. */
bool watchdog_start(double seconds);

/* A call of participant `thread` completed (relaxed, lock free, no shared cache line). */
void watchdog_progress(unsigned thread);

/* Prints every thread's stack to stderr between the markers. */
void watchdog_dump_stacks(void);

/* Installs the crash handler (not under ASan, whose own report is better). */
void watchdog_install_crash_handler(void);

#endif /* PSA_STRESS_WATCHDOG_H */
