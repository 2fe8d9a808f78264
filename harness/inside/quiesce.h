/* psa-stress: quiescent barriers (--barrier-every N, --reinit-every N): every N calls, each
 * worker waits until all running workers have arrived; the last one to arrive runs the check
 * (the inside invariants, and with --reinit-every the free of the core) while no PSA call is in
 * flight, then all continue. A worker that finishes leaves the barrier, so the others never
 * wait for it.
 *
 * The barrier is real synchronisation and TSan sees it: calls on either side of a barrier are
 * ordered, as at any quiescent point. Under a serialised engine (nemesis.h) a worker that
 * waits parks on the barrier (nemesis_park) instead of blocking with the baton, and the last
 * one to arrive unparks them. Runs without either flag have no barrier at all. */
#ifndef PSA_STRESS_QUIESCE_H
#define PSA_STRESS_QUIESCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The check run at each barrier by the last worker to arrive; `member` is that worker's
 * context, as it passed it to quiesce_wait or quiesce_leave. */
typedef bool (*quiesce_check_t)(void *member);

typedef struct {
    pthread_mutex_t lock; /* guards every field below */
    pthread_cond_t released;
    unsigned members;     /* workers that have not left */
    unsigned arrived;     /* members waiting at the current barrier */
    uint64_t generation;  /* barriers completed */
    quiesce_check_t check;
    bool failed;          /* some check returned false */
} quiesce_t;

bool quiesce_init(quiesce_t *q, unsigned members, quiesce_check_t check);
void quiesce_destroy(quiesce_t *q);
void quiesce_wait(quiesce_t *q, void *member);
void quiesce_leave(quiesce_t *q, void *member);
/* Barriers completed and whether every check passed; read after the workers joined. */
uint64_t quiesce_count(quiesce_t *q);
bool quiesce_ok(quiesce_t *q);

#endif /* PSA_STRESS_QUIESCE_H */
