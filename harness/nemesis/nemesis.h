/* psa-stress: the nemesis's scheduler. It owns every scheduling point that matters to the key
 * store: the core synchronises only through mbedtls_mutex_lock/unlock, which are run-time
 * function pointers in 3.6 (threading.h), so the nemesis swaps in wrappers before
 * psa_crypto_init (as the upstream framework's threading_helpers.c does; no Mbed TLS source is
 * touched). Scheduling points: before each lock, after each unlock, and at each operation
 * boundary of the driver (client.c). Engines (--sched):
 *
 *   os      plain threads; no wrappers unless mutex faults are injected (the hand-off
 *           counters may install their own, handoffs.h);
 *   delay   real parallel threads; at each point a seeded choice to yield or sleep (<= 512 us);
 *   pct     serialised: exactly one participant thread runs at a time, the strategy
 *   random  (strategy.h) picks the next one at each point; every decision is recorded
 *           (--schedule-out) and --replay FILE forces the same decisions, so the run takes the
 *           same interleaving; a mismatch is reported as a divergence. A schedule the
 *           shrinker edited (fewer preemptions; schedule.h) is followed where it still applies
 *           and never diverges.
 *
 * Under every engine the core's mutexes are waited for as --lock-wait says (lock_wait.h).
 *
 * Under serialisation a thread that would block on a mutex held by another is parked and the
 * next thread is picked; no runnable thread while some are parked is a deadlock, reported with
 * the wait-for state. The baton hand-off is hidden from TSan (tsan_hide.h), while the real
 * pthread mutex is still taken underneath each modelled one, so TSan sees exactly the
 * happens-before edges the library creates and the canary stays visible. */
#ifndef PSA_STRESS_NEMESIS_H
#define PSA_STRESS_NEMESIS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nemesis/strategy.h"

/* Dedicated exit codes (runner.py maps them to failure kinds). */
#define NEMESIS_EXIT_HANG 5     /* watchdog: no completed call in T seconds */
#define NEMESIS_EXIT_DEADLOCK 6 /* serialised engine: no runnable thread */
#define NEMESIS_EXIT_DIVERGED 7 /* --replay: the run left the recorded schedule */

typedef struct {
    const char *sched;        /* os | delay | pct | random */
    const char *lock_wait;    /* spin | sleep (lock_wait.h) */
    uint64_t seed;
    uint64_t depth;           /* PCT d, 1..STRATEGY_MAX_DEPTH */
    uint64_t k;               /* PCT points per round */
    const char *replay_path;
    const char *schedule_out_path;
} nemesis_options_t;

/* Before psa_crypto_init and before any participant starts. `participants` threads will call
 * nemesis_thread_enter with ids 0..participants-1. On a bad option returns false with a
 * one-line message in err. */
bool nemesis_setup(const nemesis_options_t *o, unsigned participants, char *err, size_t len);

/* pct or random: one participant runs at a time. */
bool nemesis_serialised(void);

/* Harness-level locks outside the core (id_locks.c's id locks). Under serialisation a participant
 * must not block for real while holding the baton: it try-locks, and when that fails calls
 * nemesis_park(lock), which lets the others run until somebody calls nemesis_unpark(lock)
 * after releasing it; then it tries again. nemesis_unpark is a no-op in the other engines. */
void nemesis_park(const void *lock);
void nemesis_unpark(const void *lock);

/* A participant starts (after the start barrier) and ends. Under serialisation enter returns
 * once every participant has entered and this one is scheduled. */
void nemesis_thread_enter(unsigned id);
void nemesis_thread_exit(void);

/* The worker loop's scheduling point between two calls: true when the worker must stop (the
 * --seconds deadline, a stop requested by a fault, or the recorded decision on replay). */
bool nemesis_op_boundary(const atomic_bool *stop);

/* A scheduling point with no mutex (the canary, the pinner, a multi-part MAC). */
void nemesis_step(void);

/* After every participant exited: a replay must have used its whole schedule (else exit
 * NEMESIS_EXIT_DIVERGED); the schedule file gets its end line. */
void nemesis_finish(void);

/* The engine and its parameters, as a JSON object (history header, driver summary). */
void nemesis_print_json(FILE *f);

/* On a dying path (hang, crash): write out what the schedule file has. Not signal safe, but
 * every other participant is parked when the baton holder dies. */
void nemesis_flush(void);

#endif /* PSA_STRESS_NEMESIS_H */
