/* psa-stress: the slot-state transitions of the core's slot-management file, reported to the
 * driver's coverage (harness/inside/transitions.h). Included by harness/inside/slot_walk.c
 * before the core's file, and by nothing else.
 *
 * Inside that file, every call of psa_key_slot_state_transition, psa_wipe_key_slot and
 * psa_register_read goes through the inline wrappers below first (the macros rename the calls
 * only: the first two are defined elsewhere, the third is already defined when the macro is
 * set), and the core's psa_unregister_read is renamed so that slot_walk.c can put a wrapper
 * under the real name: the calls psa_crypto.c makes reach the wrapper, those of the file itself
 * the core's function. The tree's own code runs unchanged in every case; a wrapper only tells
 * the driver first. Every wrapper runs with mbedtls_threading_key_slot_mutex held, as the core
 * requires of its callers, except the wipes of mbedtls_psa_crypto_free, which the driver
 * ignores (transitions.h). */
#ifndef PSA_STRESS_SLOT_HOOKS_H
#define PSA_STRESS_SLOT_HOOKS_H

#include "common.h"

/* The header defines psa_key_slot_state_transition: under another name, so the wrapper can
 * take the real one for the calls below. */
#define psa_key_slot_state_transition psa_stress_core_state_transition
#include "psa_crypto_slot_management.h"
#undef psa_key_slot_state_transition

#include <string.h>

#include "inside/transitions.h"

static inline psa_status_t psa_stress_hooked_transition(psa_key_slot_t *slot,
                                                        psa_key_slot_state_t from,
                                                        psa_key_slot_state_t to)
{
    if (slot->state == from && from == PSA_SLOT_EMPTY && to == PSA_SLOT_FILLING) {
        transitions_count(slot, TRANSITION_RESERVE);
    } else if (slot->state == from && from == PSA_SLOT_FILLING && to == PSA_SLOT_FULL) {
        transitions_count(slot, TRANSITION_FILL);
    }
    psa_status_t status = psa_stress_core_state_transition(slot, from, to);
    transitions_watch(slot);
    return status;
}

/* `caller`: the core function making the call; a FULL slot wiped by the free-slot search is an
 * eviction, by any other function an unload (purge, close). */
static inline psa_status_t psa_stress_hooked_wipe(psa_key_slot_t *slot, const char *caller)
{
    switch (slot->state) {
        case PSA_SLOT_FILLING:
            transitions_count(slot, TRANSITION_FILL_FAIL);
            break;
        case PSA_SLOT_FULL:
            transitions_count(slot, strcmp(caller, "psa_reserve_free_key_slot") == 0 ?
                              TRANSITION_EVICT : TRANSITION_UNLOAD);
            break;
        case PSA_SLOT_PENDING_DELETION:
            transitions_count(slot, TRANSITION_LAST_READER);
            break;
        default:
            break;
    }
    psa_status_t status = psa_wipe_key_slot(slot);
    transitions_watch(slot);
    return status;
}

static inline psa_status_t psa_stress_hooked_register_read(psa_key_slot_t *slot)
{
    psa_status_t status = psa_register_read(slot);
    transitions_watch(slot);
    return status;
}

#define psa_key_slot_state_transition(slot, from, to) \
    psa_stress_hooked_transition(slot, from, to)
#define psa_wipe_key_slot(slot) psa_stress_hooked_wipe(slot, __func__)
#define psa_register_read(slot) psa_stress_hooked_register_read(slot)

/* The core's psa_unregister_read, under this name (slot_walk.c wraps it). */
#define psa_unregister_read psa_stress_core_unregister_read
psa_status_t psa_stress_core_unregister_read(psa_key_slot_t *slot);

#endif /* PSA_STRESS_SLOT_HOOKS_H */
