/* psa-stress: slot-state transitions under contention (see transitions.h). */
#include "inside/transitions.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "inside/handoffs.h"
#include "inside/slot_walk.h"
#include "driver/tsan_hide.h"


#define WATCHED 4 /* a call reserves or reads at most a source and a target slot, plus a victim */

static const char *const names[TRANSITION_COUNT] = {
    "EMPTY>FILLING", "FILLING>FULL", "FILLING>EMPTY", "FULL>PENDING_DELETION",
    "PENDING_DELETION>EMPTY", "FULL>EMPTY(evict)", "FULL>EMPTY(unload)",
};

/* [t][contended]: each worker counts its own, folded into the totals when it exits. */
static _Thread_local uint64_t counts[TRANSITION_COUNT][2];
static pthread_mutex_t totals_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t totals[TRANSITION_COUNT][2];

static _Thread_local bool in_cs; /* the calling thread holds the key-slot mutex (via handoffs) */
static _Thread_local struct {
    const psa_key_slot_t *slot;
    psa_key_slot_state_t seen; /* its state when this thread last looked */
} watched[WATCHED];
static _Thread_local unsigned n_watched, next_replaced;

/* Does the core require the thread making `t` to be a registered reader of the slot? */
TSAN_UNTRACKED static bool actor_reads(transition_t t)
{
    return t == TRANSITION_DELETE || t == TRANSITION_LAST_READER || t == TRANSITION_EVICT ||
           t == TRANSITION_UNLOAD;
}

/* Key-slot mutex held; `slot` is not EMPTY when the actor reads it. */
TSAN_UNTRACKED static bool contended(const psa_key_slot_t *slot, transition_t t)
{
    if (actor_reads(t) && slot->state != PSA_SLOT_EMPTY && slot_walk_readers(slot) > 1) {
        return true;
    }
    uint32_t ids[3];
    unsigned n = handoffs_call_ids(ids);
    psa_key_id_t id = MBEDTLS_SVC_KEY_ID_GET_KEY_ID(psa_get_key_id(&slot->attr));
    if (slot->state != PSA_SLOT_EMPTY && id != 0) {
        ids[n++] = id;
    }
    return handoffs_waiter_on(ids, n);
}

/* Key-slot mutex held. */
TSAN_UNTRACKED static void count(const psa_key_slot_t *slot, transition_t t)
{
    counts[t][contended(slot, t)]++;
}

/* The transition psa_crypto.c made from `seen` to the slot's state, if it is one of its three. */
TSAN_UNTRACKED static int unhooked(psa_key_slot_state_t seen, psa_key_slot_state_t now)
{
    if (seen == PSA_SLOT_FILLING && now == PSA_SLOT_FULL) {
        return TRANSITION_FILL;
    }
    if (seen == PSA_SLOT_FILLING && now == PSA_SLOT_EMPTY) {
        return TRANSITION_FILL_FAIL;
    }
    return seen == PSA_SLOT_FULL && now == PSA_SLOT_PENDING_DELETION ? TRANSITION_DELETE : -1;
}

TSAN_UNTRACKED void transitions_catch_up(void)
{
    if (!in_cs) {
        return;
    }
    for (unsigned i = 0; i < n_watched; i++) {
        psa_key_slot_state_t now = watched[i].slot->state;
        if (now == watched[i].seen) {
            continue;
        }
        int t = unhooked(watched[i].seen, now);
        if (t >= 0) {
            count(watched[i].slot, (transition_t) t);
        }
        watched[i].seen = now;
    }
}

TSAN_UNTRACKED void transitions_count(const psa_key_slot_t *slot, transition_t t)
{
    if (in_cs) {
        transitions_catch_up();
        count(slot, t);
    }
}

TSAN_UNTRACKED void transitions_watch(const psa_key_slot_t *slot)
{
    if (!in_cs) {
        return;
    }
    unsigned i = 0;
    while (i < n_watched && watched[i].slot != slot) {
        i++;
    }
    if (i == n_watched) {
        if (n_watched < WATCHED) {
            n_watched++;
        } else {
            i = next_replaced;
            next_replaced = (next_replaced + 1) % WATCHED;
        }
        watched[i].slot = slot;
    }
    watched[i].seen = slot->state;
}

/* Key-slot mutex just taken: what others did to the watched slots is theirs, not counted. */
TSAN_UNTRACKED void transitions_acquired(void)
{
    in_cs = true;
    for (unsigned i = 0; i < n_watched; i++) {
        watched[i].seen = watched[i].slot->state;
    }
}

TSAN_UNTRACKED void transitions_releasing(void)
{
    transitions_catch_up();
    in_cs = false;
}

TSAN_UNTRACKED void transitions_call_edge(void)
{
    n_watched = 0;
    next_replaced = 0;
}

void transitions_thread_exit(void)
{
    TSAN_HIDE_BEGIN(); /* no happens-before edge between workers (tsan_hide.h) */
    pthread_mutex_lock(&totals_mu);
    for (unsigned t = 0; t < TRANSITION_COUNT; t++) {
        for (unsigned c = 0; c < 2; c++) {
            totals[t][c] += counts[t][c];
            counts[t][c] = 0;
        }
    }
    pthread_mutex_unlock(&totals_mu);
    TSAN_HIDE_END();
}

void transitions_print_json(FILE *f)
{
    if (!handoffs_enabled()) {
        return;
    }
    fputs(",\"transitions\":{", f);
    const char *sep = "";
    for (unsigned t = 0; t < TRANSITION_COUNT; t++) {
        if (totals[t][0] + totals[t][1] == 0) {
            continue;
        }
        fprintf(f, "%s\"%s\":{", sep, names[t]);
        const char *inner = "";
        for (unsigned c = 0; c < 2; c++) {
            if (totals[t][c] != 0) {
                fprintf(f, "%s\"%s\":%llu", inner, c ? "contended" : "alone",
                        (unsigned long long) totals[t][c]);
                inner = ",";
            }
        }
        fputc('}', f);
        sep = ",";
    }
    fputc('}', f);
}
