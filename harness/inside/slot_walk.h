/* psa-stress: read access to the core's key slots, for the inside invariants (inspect.c).
 *
 * The key store (`global_data`) is static in library/psa_crypto_slot_management.c and the core
 * has no public way to enumerate slots. harness/inside/slot_walk.c therefore compiles that very
 * file of the tree under test (it #includes it, and CMake leaves the original out of the
 * library) and appends these accessors, which see the real static data. Nothing is copied or
 * re-declared, so the walk follows any tree (stock, mutated, another 3.6.x) exactly.
 *
 * Every function here must be called with mbedtls_threading_key_slot_mutex held. */
#ifndef PSA_STRESS_SLOT_WALK_H
#define PSA_STRESS_SLOT_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include <psa/crypto.h>

#include "psa_crypto_core.h"

/* Slices: the dynamic store has volatile slices 0..n-2 and the persistent cache n-1; the static
 * store has one slice holding every key. */
size_t slot_walk_slice_count(void);
size_t slot_walk_cache_slice(void);
bool slot_walk_dynamic(void);

/* Slots of a slice, 0 when the slice is not allocated. */
size_t slot_walk_slice_length(size_t slice);
const psa_key_slot_t *slot_walk_slot(size_t slice, size_t index);

/* The only volatile id a key in (slice, index) may have. */
psa_key_id_t slot_walk_volatile_id(size_t slice, size_t index);

/* Dynamic store: head of the free list of a volatile slice (>= its length: the list is empty). */
size_t slot_walk_free_head(size_t slice);

/* A slot's registered readers. Meaningful unless the slot is EMPTY: from 3.6.1 on, an EMPTY
 * slot's reader count shares its storage with the free-list link. */
size_t slot_walk_readers(const psa_key_slot_t *slot);

/* Dynamic store: the index after an EMPTY slot on its slice's free list. */
size_t slot_walk_next_free(const psa_key_slot_t *slot, size_t index);

#endif /* PSA_STRESS_SLOT_WALK_H */
