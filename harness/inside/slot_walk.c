/* psa-stress: the core's slot-management file plus read accessors (see harness/inside/slot_walk.h).
 *
 * Compiled into the library instead of library/psa_crypto_slot_management.c (CMakeLists.txt),
 * so the accessors below are in the same translation unit as the static `global_data` and
 * helpers they read. Callers hold mbedtls_threading_key_slot_mutex. The file's slot-state
 * transitions are reported to the driver's coverage on the way (slot_hooks.h). */
#include "inside/slot_hooks.h" /* first: it renames calls of the file below (slot_hooks.h) */

#include "psa_crypto_slot_management.c"

#include "inside/slot_walk.h"

#undef psa_unregister_read
/* The calls psa_crypto.c makes (a destroy ends with one): the driver first counts what that file
 * did to the caller's slots since its last look (transitions.h), then the core's function runs.
 * Key-slot mutex held. */
psa_status_t psa_unregister_read(psa_key_slot_t *slot)
{
    transitions_catch_up();
    return psa_stress_core_unregister_read(slot);
}

/* PSA_STRESS_SLOT_UNION (CMakeLists.txt probes the tree's psa_crypto_core.h): the slot keeps
 * its reader count in the `var` union it shares with the free-list link (3.6.1 on); before
 * that, `registered_readers` is a plain field. */
#if !defined(PSA_STRESS_SLOT_UNION)
#error "PSA_STRESS_SLOT_UNION must be set by CMakeLists.txt's probe of the tree"
#endif

#if !defined(KEY_SLICE_COUNT) /* 3.6.0: one static array, no slice helpers */
#define KEY_SLICE_COUNT 1u
#define KEY_SLOT_CACHE_SLICE_INDEX 0
#define key_slice_length(slice) ((void) (slice), ARRAY_LENGTH(global_data.key_slots))
#define get_key_slot(slice, index) ((void) (slice), &global_data.key_slots[index])
#endif

size_t slot_walk_slice_count(void)
{
    return KEY_SLICE_COUNT;
}

size_t slot_walk_cache_slice(void)
{
    return KEY_SLOT_CACHE_SLICE_INDEX;
}

bool slot_walk_dynamic(void)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    return true;
#else
    return false;
#endif
}

size_t slot_walk_slice_length(size_t slice)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    if (global_data.key_slices[slice] == NULL) {
        return 0;
    }
#endif
    return key_slice_length(slice);
}

const psa_key_slot_t *slot_walk_slot(size_t slice, size_t index)
{
    return get_key_slot(slice, index);
}

psa_key_id_t slot_walk_volatile_id(size_t slice, size_t index)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    return volatile_key_id_of_index(slice, index);
#else
    (void) slice;
    return PSA_KEY_ID_VOLATILE_MIN + (psa_key_id_t) index;
#endif
}

size_t slot_walk_free_head(size_t slice)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    return global_data.first_free_slot_index[slice];
#else
    (void) slice;
    return SIZE_MAX;
#endif
}

size_t slot_walk_readers(const psa_key_slot_t *slot)
{
#if PSA_STRESS_SLOT_UNION
    return slot->var.occupied.registered_readers;
#else
    return slot->registered_readers;
#endif
}

size_t slot_walk_next_free(const psa_key_slot_t *slot, size_t index)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC) /* only trees with the union have this store */
    return index + 1 + (size_t) (ptrdiff_t) slot->var.free.next_free_relative_to_next;
#else
    (void) slot;
    (void) index;
    return SIZE_MAX;
#endif
}
