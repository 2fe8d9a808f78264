/* psa-stress: slot-state transitions under contention, the driver's second part of the run's
 * coverage (docs/coverage.md "Slot transitions"; scenarios/checker/coverage.py).
 *
 * Each transition a key slot makes under mbedtls_threading_key_slot_mutex is counted once, as
 * `alone` or `contended`. Contended: at that moment another thread is registered as a reader of
 * the slot (beyond the thread making the transition, when the core requires it to be one), or
 * another worker waits for the key-slot mutex inside a call naming one of the transition's key
 * ids (the slot's id, when it has one, and the ids the acting call names; handoffs.h keeps who
 * waits).
 *
 * Where the counts come from: the slot-management file reports its own transitions as it makes
 * them (harness/inside/slot_hooks.h). psa_crypto.c makes three more that nothing can hook there
 * (FILLING -> FULL and FILLING -> EMPTY of a create, FULL -> PENDING_DELETION of a destroy),
 * always on a slot the acting thread reserved or registered to read in the same call; so each
 * thread watches those slots, notes their states when it takes the key-slot mutex, and counts
 * the difference it made itself before the next hooked step and when it releases the mutex
 * (transitions_catch_up). Only the holder of the mutex changes a slot, so the difference is its
 * own.
 *
 * Invariants: each worker counts its own transitions and they join the totals when it exits; a
 * thread's watched slots are its own and are read only while it holds the mutex, within one call
 * (a slice is freed only by mbedtls_psa_crypto_free, which no call overlaps). Off with coverage
 * (handoffs_enabled): nothing is counted and the history's end says nothing of transitions. */
#ifndef PSA_STRESS_TRANSITIONS_H
#define PSA_STRESS_TRANSITIONS_H

#include <stdio.h>

#include "psa_crypto_core.h"

typedef enum {
    TRANSITION_RESERVE,     /* EMPTY -> FILLING: a create or a load takes a free slot */
    TRANSITION_FILL,        /* FILLING -> FULL: the create or load succeeded */
    TRANSITION_FILL_FAIL,   /* FILLING -> EMPTY: it failed */
    TRANSITION_DELETE,      /* FULL -> PENDING_DELETION: a destroy */
    TRANSITION_LAST_READER, /* PENDING_DELETION -> EMPTY: the destroyed key's last reader left */
    TRANSITION_EVICT,       /* FULL -> EMPTY by the free-slot search: eviction of a cached key */
    TRANSITION_UNLOAD,      /* FULL -> EMPTY by purge or close */
    TRANSITION_COUNT
} transition_t;

/* The slot-management file is about to make transition `t` of `slot` (slot_hooks.h). */
void transitions_count(const psa_key_slot_t *slot, transition_t t);

/* The calling thread has reserved, registered to read or changed `slot`: watch it. */
void transitions_watch(const psa_key_slot_t *slot);

/* Counts what the calling thread changed in its watched slots since it last looked. */
void transitions_catch_up(void);

/* From handoffs.c: the calling thread has just taken / is about to release the key-slot mutex,
 * and starts / ends a call (its watched slots are forgotten). */
void transitions_acquired(void);
void transitions_releasing(void);
void transitions_call_edge(void);

/* A worker ends (from handoffs_thread_exit): its counts join the totals. */
void transitions_thread_exit(void);

/* After every worker joined: `,"transitions":{"EMPTY>FILLING":{"alone":n,"contended":m},...}`
 * (non-zero counts only); nothing when coverage is off. */
void transitions_print_json(FILE *f);

#endif /* PSA_STRESS_TRANSITIONS_H */
