/* psa-stress: pinner threads (see pinner.h). */
#define _GNU_SOURCE /* sched_yield */

#include "nemesis/pinner.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include <psa/crypto.h>

#include "nemesis/nemesis.h"
#include "psa_crypto_slot_management.h"

#define HOLD_STEPS 64  /* scheduling points a pinner holds its keys for */
#define MAX_HELD 256   /* slots one pinner holds at once (the cache is smaller) */

typedef struct {
    pthread_t tid;
    unsigned index;
    uint64_t rng; /* splitmix-style counter: which id a round starts at */
} pinner_t;

static pinner_config_t config;
static pinner_t pinners[PINNERS_MAX];
/* Set by a pinner that got a status no lookup or release may return; read after the join. */
static atomic_bool failed;

/* A lookup may find the key (SUCCESS), not find it (INVALID_HANDLE: never created), or find
 * no slot to load it into (INSUFFICIENT_MEMORY); a release always succeeds. Anything else is
 * the core's error, reported like a broken invariant. */
static void check_status(const char *what, psa_key_id_t id, psa_status_t status)
{
    if (status != PSA_SUCCESS && status != PSA_ERROR_INVALID_HANDLE &&
        status != PSA_ERROR_INSUFFICIENT_MEMORY) {
        fprintf(stderr, "invariant violated: a pinner's %s of persistent id %u returned %d\n",
                what, (unsigned) id, (int) status);
        atomic_store_explicit(&failed, true, memory_order_relaxed);
    }
}

static bool finished(void)
{
    return atomic_load_explicit(config.stop, memory_order_relaxed) ||
           atomic_load_explicit(config.running, memory_order_relaxed) == 0;
}

static unsigned next_start(pinner_t *p)
{
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    return (unsigned) ((z ^ (z >> 31)) % config.persistent_ids);
}

/* Registers as reader on every persistent id it can, from a rotating start; returns how many
 * slots `held` (and their ids, `ids`) received. Stops at the first lookup that finds no slot
 * (the cache is full of pinned keys). Absent ids (INVALID_HANDLE) are skipped. */
static unsigned pin_round(pinner_t *p, psa_key_slot_t **held, psa_key_id_t *ids)
{
    unsigned n = 0, start = next_start(p);
    for (unsigned i = 0; i < config.persistent_ids && n < MAX_HELD; i++) {
        psa_key_id_t id = 1 + (start + i) % config.persistent_ids;
        psa_key_slot_t *slot = NULL;
        psa_status_t status = psa_get_and_lock_key_slot(mbedtls_svc_key_id_make(0, id), &slot);
        check_status("lookup", id, status);
        if (status == PSA_SUCCESS) {
            ids[n] = id;
            held[n++] = slot;
        } else if (status == PSA_ERROR_INSUFFICIENT_MEMORY) {
            break;
        }
    }
    return n;
}

static void *pinner_main(void *arg)
{
    pinner_t *p = arg;
    psa_key_slot_t *held[MAX_HELD];
    psa_key_id_t ids[MAX_HELD];
    nemesis_thread_enter(config.first_participant + p->index);
    while (!finished()) {
        unsigned n = pin_round(p, held, ids);
        for (unsigned step = 0; step < HOLD_STEPS && !finished(); step++) {
            nemesis_step();
            sched_yield();
        }
        for (unsigned i = 0; i < n; i++) {
            check_status("release", ids[i], psa_unregister_read_under_mutex(held[i]));
        }
        nemesis_step();
    }
    nemesis_thread_exit();
    return NULL;
}

bool pinners_start(const pinner_config_t *cfg)
{
    config = *cfg;
    for (unsigned i = 0; i < config.count; i++) {
        pinners[i] = (pinner_t) { .index = i, .rng = config.seed ^ ((uint64_t) (i + 1) << 40) };
        if (pthread_create(&pinners[i].tid, NULL, pinner_main, &pinners[i]) != 0) {
            return false;
        }
    }
    return true;
}

bool pinners_join(void)
{
    for (unsigned i = 0; i < config.count; i++) {
        pthread_join(pinners[i].tid, NULL);
    }
    return !atomic_load_explicit(&failed, memory_order_relaxed);
}
