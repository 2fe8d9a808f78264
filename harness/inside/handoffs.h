/* psa-stress: key-slot mutex hand-offs, the driver's part of the run's coverage
 * (docs/history-format.md "Hand-offs"; scenarios/checker/coverage.py).
 *
 * A hand-off is a release of the core's key-slot mutex by one worker followed by its
 * acquisition by another. Each is counted as the pair (operation of the releasing worker's call,
 * operation of the acquiring worker's call): the critical sections are named by the call in
 * flight on each side (handoffs_call_begin/end, from CALL_STAMPED in client_ops.h). A thread
 * with no call in flight (the main thread, a pinner, a barrier) hands off nothing.
 *
 * Cost: when the nemesis wraps mbedtls_mutex_lock/unlock, its wrappers call
 * handoffs_acquired/releasing for the key-slot mutex; otherwise handoffs_install puts in two
 * wrappers that do only that. The one shared datum, the last releaser, is read and written only by
 * the holder of that mutex, so it needs no lock of its own; the counts are per thread and folded
 * into the totals once, at the thread's exit. The functions are not instrumented by TSan (they add
 * no happens-before edge; the mutex orders them already).
 *
 * Off with the environment variable PSA_STRESS_HANDOFFS=off (bench/bench_driver.py measures
 * on against off): no counts, and the history's end says nothing of hand-offs. */
#ifndef PSA_STRESS_HANDOFFS_H
#define PSA_STRESS_HANDOFFS_H

#include <stdbool.h>
#include <stdio.h>

#define HANDOFF_OPS 48 /* operation-table rows counted; rows beyond are not */

/* Once, before any worker starts: reads PSA_STRESS_HANDOFFS. True when counting is on. */
bool handoffs_setup(void);
bool handoffs_enabled(void);

/* Before psa_crypto_init, when nothing else wraps mbedtls_mutex_lock/unlock: wrappers that
 * only count. */
void handoffs_install(void);

/* The calling worker starts / ends the PSA call of operation-table row `op`. */
void handoffs_call_begin(unsigned op);
void handoffs_call_end(void);

/* The calling thread has just acquired / is about to release the key-slot mutex (held in both). */
void handoffs_acquired(void);
void handoffs_releasing(void);

/* A worker ends: its counts join the totals. */
void handoffs_thread_exit(void);

/* After every worker joined: `,"handoffs":{"<releasing op>":{"<acquiring op>":n,...},...}`
 * (non-zero counts only); nothing when counting is off. */
void handoffs_print_json(FILE *f, const char *(*op_name)(unsigned), unsigned op_count);

#endif /* PSA_STRESS_HANDOFFS_H */
