/* psa-stress: the inside invariants (I1-I6, docs/properties.md §4): the key store's own state, read at a
 * quiescent point (after the workers joined, or while they wait at a quiescent barrier).
 *
 * Checked, all under mbedtls_threading_key_slot_mutex:
 *   I1 no slot is FILLING or PENDING_DELETION;
 *   I2 no slot has registered readers (slot fields and mbedtls_psa_get_stats agree);
 *   I3 no two FULL slots hold the same id;
 *   I4 every FULL slot's id is in the range of its lifetime and placed where the core looks for
 *      it (a volatile id names its own slot, the persistent cache holds only user-range ids);
 *   I5 dynamic store: each volatile slice's free list is acyclic, holds only EMPTY slots, and
 *      holds all of them;
 *   I6 every cached persistent key equals its storage object (attributes and material).
 * A violation prints "invariant violated: ..." on stderr. */
#ifndef PSA_STRESS_INSPECT_H
#define PSA_STRESS_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include <psa/crypto.h>

/* The live key ids: FULL slots ∪ key files of the storage directory (the current directory),
 * sorted, without the harness's own keys. `ids` is malloc'ed (NULL when there are none). */
typedef struct {
    psa_key_id_t *ids;
    size_t count;
} inspect_live_t;

/* Checks I1-I6; returns false after printing every violation found. The caller guarantees
 * quiescence: no PSA call is in flight. When `live` is not NULL it also receives the live set,
 * without the `n_hidden` ids of `hidden`. */
bool inspect_invariants(const psa_key_id_t *hidden, size_t n_hidden, inspect_live_t *live);

#endif /* PSA_STRESS_INSPECT_H */
