/* psa-stress: key-slot mutex hand-offs, the driver's part of the run's coverage
 * (docs/history-format.md "Hand-offs and slot transitions"; scenarios/checker/coverage.py), and the
 * switch of all of it.
 *
 * A hand-off is a release of the core's key-slot mutex by one worker followed by its
 * acquisition by another. Each is counted as the pair (releasing side, acquiring side), a side
 * being `op@function`: the operation of the worker's call in flight (handoffs_call_begin/end,
 * from CALL_STAMPED in client_ops.h) and the function that took the mutex for the critical
 * section (lock_sites.h). A thread with no call in flight (the main thread, a pinner, a barrier)
 * hands off nothing. The same lock wrappers drive the slot-transition counts (transitions.h)
 * and keep, per worker, whether it waits for the key-slot mutex and on which key ids.
 *
 * Cost: when the nemesis wraps mbedtls_mutex_lock/unlock, its wrappers call handoffs_waiting,
 * handoffs_acquired, handoffs_releasing and handoffs_released for the key-slot mutex; otherwise
 * handoffs_install puts in two wrappers that do only that. The lock sites and the last holder's
 * side are read and written only by the holder of that mutex, so they need no lock of their own;
 * the counts are per worker and join the totals when it exits (handoffs_thread_exit); a worker's
 * waiting ids are its own to write (a reader holding the mutex sees them late at worst). The
 * functions are not instrumented by TSan at all (TSAN_UNTRACKED: they add no happens-before edge,
 * the mutex orders them already, and they run at every lock).
 *
 * Off with the environment variable PSA_STRESS_COVERAGE=off (bench/bench_coverage.py measures
 * on against off): no counts, and the history's end says nothing of hand-offs or transitions. */
#ifndef PSA_STRESS_HANDOFFS_H
#define PSA_STRESS_HANDOFFS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define HANDOFF_OPS 48 /* operation-table rows counted; rows beyond are not */

/* Once, before any worker starts: reads PSA_STRESS_COVERAGE. True when counting is on. */
bool handoffs_setup(void);
bool handoffs_enabled(void);

/* Before psa_crypto_init, when nothing else wraps mbedtls_mutex_lock/unlock: wrappers that
 * only count. */
void handoffs_install(void);

/* The calling worker starts the PSA call of operation-table row `op`, naming key ids `key` and
 * `id` (0: none) / ends it. */
void handoffs_call_begin(unsigned op, uint32_t key, uint32_t id);
void handoffs_call_end(void);

/* The calling thread is about to wait for the key-slot mutex / has just acquired it, from the
 * lock call returning to `pc` / is about to release it (held) / has released it, or its lock
 * failed. */
void handoffs_waiting(void);
void handoffs_acquired(const void *pc);
void handoffs_releasing(void);
void handoffs_released(void);

/* A worker ends (nemesis_thread_exit): its counts, and its transitions', join the totals. */
void handoffs_thread_exit(void);

/* Key-slot mutex held: the ids the calling thread's call names (up to 2; returns how many). */
unsigned handoffs_call_ids(uint32_t *ids);
/* Key-slot mutex held: does another worker wait for it inside a call naming one of `ids`? */
bool handoffs_waiter_on(const uint32_t *ids, unsigned n);

/* After every worker joined: `,"handoffs":{"<op@function>":{"<op@function>":n,...},...}`
 * (non-zero counts only); nothing when counting is off. */
void handoffs_print_json(FILE *f, const char *(*op_name)(unsigned), unsigned op_count);

#endif /* PSA_STRESS_HANDOFFS_H */
