/* psa-stress: spec mode, the PSA concurrent-calling convention made true by construction.
 *
 * The PSA specification leaves undefined a destroy that overlaps another call on the same key.
 * In spec mode (the default) a worker takes, around each call, a lock chosen by hashing each
 * key id the call names, on the destroy side for a call that ends a key (destroy, close) and on
 * the use side for every other call. The sides exclude each other, calls of one side do not: a
 * destroy never overlaps a use of its id (destroys may overlap each other, which is defined),
 * so the checker can demand full linearizability. --overlap-destroy (beyond-spec mode) turns
 * the locks off. */
#ifndef PSA_STRESS_ID_LOCKS_H
#define PSA_STRESS_ID_LOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "history/record.h"

/* The locks one call holds (stripe indexes, ascending). */
typedef struct {
    uint8_t n;
    bool destroy; /* the destroy side */
    uint16_t stripe[2];
} id_locks_hold_t;

/* Once, before the workers start. Operations named "destroy" or "close" among name(0..n-1)
 * take the destroy side. */
void id_locks_init(bool overlap_destroy, const char *(*name)(unsigned op), unsigned n_ops);

/* Around one call, after its arguments are in `r` (r->key, and r->attrs for a create) and
 * before its first ticket; id_locks_exit after the second ticket. */
id_locks_hold_t id_locks_enter(const record_t *r);
void id_locks_exit(id_locks_hold_t h);

#endif /* PSA_STRESS_ID_LOCKS_H */
