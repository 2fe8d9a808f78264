/* psa-stress: spec-mode id locks (see spec.h).
 *
 * The locks are hidden from TSan (tsan_hide.h): they order a destroy after the calls on its id
 * in real time, but if TSan saw that order as happens-before it would stop reporting races
 * between the key store's accesses in those calls. Deadlock freedom: a call that takes two
 * locks takes them in ascending stripe order. */
#include "spec.h"

#include <pthread.h>
#include <string.h>

#include "nemesis.h"
#include "tsan_hide.h"

#define STRIPES 64 /* a collision only serialises two unrelated ids a little more */

/* A two-group lock: any number of calls of one side (uses, or destroys) hold it together, never
 * both sides at once. Destroys may overlap each other: two destroys of one key racing is
 * defined behaviour (the second returns INVALID_HANDLE) and a bug class of its own (#8912). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t idle;  /* broadcast when a side's count drops to 0 */
    unsigned holders[2];  /* [0] uses, [1] destroys; guarded by lock */
} stripe_t;

static stripe_t stripes[STRIPES];
static bool enabled;
static uint32_t destroy_ops; /* bit per operation-table row */

void spec_init(bool overlap_destroy, const char *(*name)(unsigned op), unsigned n_ops)
{
    enabled = !overlap_destroy;
    for (unsigned op = 0; op < n_ops && op < 32; op++) {
        if (strcmp(name(op), "destroy") == 0 || strcmp(name(op), "close") == 0) {
            destroy_ops |= 1u << op;
        }
    }
    for (unsigned i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&stripes[i].lock, NULL);
        pthread_cond_init(&stripes[i].idle, NULL);
    }
}

/* Takes `side` of the stripe, waiting (block) or not (returns false) while the other side
 * holds it. */
static bool stripe_take(stripe_t *s, unsigned side, bool block)
{
    pthread_mutex_lock(&s->lock);
    while (block && s->holders[!side] > 0) {
        pthread_cond_wait(&s->idle, &s->lock);
    }
    bool taken = s->holders[!side] == 0;
    s->holders[side] += taken;
    pthread_mutex_unlock(&s->lock);
    return taken;
}

static void stripe_release(stripe_t *s, unsigned side)
{
    pthread_mutex_lock(&s->lock);
    if (--s->holders[side] == 0) {
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->lock);
}

static uint16_t stripe_of(uint32_t id)
{
    return (uint16_t) ((id * 0x9E3779B1u) >> 26); /* Fibonacci hashing onto 64 stripes */
}

/* The ids a call names: its input key and a persistent create's requested id. */
static spec_hold_t stripes_of(const record_t *r)
{
    spec_hold_t h = { .n = 0, .destroy = r->op < 32 && (destroy_ops >> r->op) & 1 };
    if (r->key != 0) {
        h.stripe[h.n++] = stripe_of(r->key);
    }
    if (r->attrs.lifetime != PSA_KEY_LIFETIME_VOLATILE && r->attrs.id != 0) {
        uint16_t s = stripe_of(r->attrs.id);
        if (h.n == 0 || s != h.stripe[0]) {
            h.stripe[h.n++] = s;
        }
    }
    if (h.n == 2 && h.stripe[0] > h.stripe[1]) {
        uint16_t s = h.stripe[0];
        h.stripe[0] = h.stripe[1];
        h.stripe[1] = s;
    }
    return h;
}

spec_hold_t spec_enter(const record_t *r)
{
    spec_hold_t h = { .n = 0 };
    if (!enabled) {
        return h;
    }
    h = stripes_of(r);
    for (unsigned i = 0; i < h.n; i++) {
        stripe_t *stripe = &stripes[h.stripe[i]];
        TSAN_HIDE_BEGIN();
        if (nemesis_serialised()) { /* never block for real while holding the baton */
            while (!stripe_take(stripe, h.destroy, false)) {
                TSAN_HIDE_END();
                nemesis_park(stripe);
                TSAN_HIDE_BEGIN();
            }
        } else {
            stripe_take(stripe, h.destroy, true);
        }
        TSAN_HIDE_END();
    }
    return h;
}

void spec_exit(spec_hold_t h)
{
    TSAN_HIDE_BEGIN();
    for (unsigned i = h.n; i-- > 0;) {
        stripe_release(&stripes[h.stripe[i]], h.destroy);
    }
    TSAN_HIDE_END();
    for (unsigned i = h.n; i-- > 0;) {
        nemesis_unpark(&stripes[h.stripe[i]]);
    }
}
