/* psa-stress: how a thread waits for a lock another thread holds (part of the nemesis:
 * scheduling control, no fault). Two policies for the core's mutexes (--lock-wait):
 *
 *   spin   (default) mbedtls_mutex_lock becomes a loop of pthread_mutex_trylock on the very
 *          same pthread mutex, with a pause between tries and a sched_yield every
 *          LOCK_WAIT_SPINS tries: a waiter never sleeps in the kernel;
 *   sleep  the stock pthread_mutex_lock (a contended waiter sleeps on a futex).
 *
 * Why: every key-management call takes the core's one key-slot mutex two or three times. With
 * 8 workers on 2 cores, `sleep` spends a large part of the run in futex sleep/wake hand-offs
 * of that mutex (bench/bench_driver.py measures both; docs/benchmarks.md). TSan's view is the same under both
 * policies: the spin lock announces one blocking lock of the same mutex to TSan (lock_wait.c),
 * so happens-before, race reports and lock-order-inversion reports are unchanged
 * (tests/test_lock_wait.py). What differs is only which interleavings the OS scheduler tends
 * to produce, which is the nemesis's job.
 *
 * The harness's own spec-mode stripes (id_locks.c) always wait with lock_wait_backoff. */
#ifndef PSA_STRESS_LOCK_WAIT_H
#define PSA_STRESS_LOCK_WAIT_H

#include <stdbool.h>

#define LOCK_WAIT_SPINS 100 /* tries between two yields: a few microseconds, longer than the core's
                            * critical sections take under TSan */

typedef enum { LOCK_WAIT_SPIN, LOCK_WAIT_SLEEP } lock_wait_t;

/* "spin" or "sleep"; false for anything else. */
bool lock_wait_parse(const char *name, lock_wait_t *out);
const char *lock_wait_name(lock_wait_t policy);

/* Before psa_crypto_init and before the nemesis wraps mbedtls_mutex_lock (it wraps whatever is
 * installed here). False if libc's trylock cannot be found under TSan. */
bool lock_wait_install(lock_wait_t policy);

/* One step of a wait loop: a sched_yield every `spins_per_yield` steps, a CPU pause at the
 * others. `step` is the caller's counter, zero before the first step. */
void lock_wait_backoff(unsigned *step, unsigned spins_per_yield);

#endif
