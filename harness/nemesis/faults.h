/* psa-stress: the nemesis's fault injection (--faults SPEC), seeded and per participant thread,
 * so a serialised run injects the same faults again on replay.
 *
 * SPEC is a comma-separated list of kind=rate (rate a probability in [0, 1] per opportunity):
 *   mutex=R  an mbedtls_mutex_lock fails (MBEDTLS_ERR_THREADING_MUTEX_ERROR, nothing locked);
 *            the core must turn it into PSA_ERROR_SERVICE_FAILURE. After the first one the run
 *            stops at every worker's next operation boundary and the summary says so: the key
 *            store's state is unspecified after a SERVICE_FAILURE.
 *   alloc=R  an mbedtls_calloc fails (MBEDTLS_PLATFORM_MEMORY hooks): INSUFFICIENT_MEMORY paths.
 *   storage=R        a psa_its_set/get/get_info/remove call fails (harness/nemesis/its_faults.c wraps
 *                    the ITS file backend at link time): set returns INSUFFICIENT_STORAGE or
 *                    STORAGE_FAILURE and writes nothing, get DATA_CORRUPT or STORAGE_FAILURE,
 *                    get_info and remove STORAGE_FAILURE and change nothing. Never
 *                    DOES_NOT_EXIST, and never two failures in a row on one thread: 3.6.6 cannot
 *                    undo a write whose read-back failed when the clean-up removal fails too
 *                    (psa_crypto_storage_store: "nothing else we can do"), so the fault model
 *                    is one failure per storage step, and the checker can hold the core to
 *                    "a failed creation leaves no key and no storage object".
 *   storage-delay=R  an ITS call first sleeps 1..512 us (the key-slot mutex is held around
 *                    every ITS call of the key store: the critical section grows).
 * Test builds only (PSA_STRESS_TEST_BUILD), to prove the hang and deadlock oracles:
 *   hang       worker 0, at its third operation boundary, locks the key-slot mutex and never
 *              returns (the watchdog must fire);
 *   inversion  workers 0 and 1 take the key-slot and global-data mutexes in opposite orders at
 *              every operation boundary (a deadlock the serialised engines must report).
 * Only participant threads (nemesis_thread_enter) get faults, and not while suspended (an
 * inspection of the core at a quiescent barrier): set-up, inspection and tear-down are exact. */
#ifndef PSA_STRESS_FAULTS_H
#define PSA_STRESS_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses SPEC and installs the allocation hooks; before psa_crypto_init. On error returns
 * false with a one-line message in err. */
bool faults_setup(const char *spec, uint64_t seed, char *err, size_t len);

bool faults_mutex_active(void);
void faults_suspend(bool on);         /* this thread: no faults while on */
void faults_thread_enter(unsigned id);
bool faults_mutex_lock_fails(void);  /* true: inject a failure now */
bool faults_stop_requested(void);    /* a SERVICE_FAILURE fault was injected */
void faults_op_boundary(unsigned id); /* the test-build hang and inversion */

typedef enum { FAULTS_ITS_SET, FAULTS_ITS_GET, FAULTS_ITS_GET_INFO, FAULTS_ITS_REMOVE }
faults_its_call_t;

/* Before each ITS call: maybe a delay; then PSA_SUCCESS (make the call) or the psa_status_t
 * the call must return instead, without touching storage. */
int32_t faults_storage(faults_its_call_t call);

/* {"spec":...,"mutex_failures":N,"alloc_failures":N,"storage_failures":N,"storage_delays":N,
 *  "stopped_by_fault":bool} */
void faults_print_json(FILE *f);

#endif /* PSA_STRESS_FAULTS_H */
