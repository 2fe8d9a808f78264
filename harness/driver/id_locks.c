/* psa-stress: spec-mode id locks (see id_locks.h).
 *
 * The locks are hidden from TSan: this file is compiled without TSan instrumentation
 * (CMakeLists.txt, TSAN_UNTRACKED). They order a destroy after the calls on its id in real time,
 * but if TSan saw that order as happens-before it would stop reporting races between the key
 * store's accesses in those calls. Deadlock freedom: a call that takes two locks takes them in
 * ascending stripe order. */
#include "driver/id_locks.h"

#include <stdatomic.h>
#include <string.h>

#include "nemesis/lock_wait.h"
#include "nemesis/nemesis.h"

#define STRIPES 64 /* a collision only serialises two unrelated ids a little more */

/* A two-group lock word: any number of calls of one side (uses, or destroys) hold it together,
 * never both sides at once. Destroys may overlap each other: two destroys of one key racing is
 * defined behaviour (the second returns INVALID_HANDLE) and a bug class of its own (the double-destroy bug class,
 * docs/properties.md §5).
 * A waiter yields (lock_wait_backoff) rather than sleeping: these locks are taken twice per
 * call, and futex hand-offs of them cost more than the calls they order; and it yields at once
 * rather than spinning, because the holder it waits for is a whole PSA call. */
typedef struct {
    _Alignas(64) atomic_int holders; /* > 0: that many uses; < 0: that many destroys */
} stripe_t;

static stripe_t stripes[STRIPES];
static bool enabled;
static uint32_t destroy_ops; /* bit per operation-table row */

void id_locks_init(bool overlap_destroy, const char *(*name)(unsigned op), unsigned n_ops)
{
    enabled = !overlap_destroy;
    for (unsigned op = 0; op < n_ops && op < 32; op++) {
        if (strcmp(name(op), "destroy") == 0 || strcmp(name(op), "close") == 0) {
            destroy_ops |= 1u << op;
        }
    }
}

/* Takes the destroy side (destroy) or the use side of the stripe if the other side does not
 * hold it. The acquire pairs with stripe_release's release: a destroy starts after the uses it
 * waited for ended. */
static bool stripe_try(stripe_t *s, bool destroy)
{
    int held = atomic_load_explicit(&s->holders, memory_order_relaxed);
    while (destroy ? held <= 0 : held >= 0) {
        if (atomic_compare_exchange_weak_explicit(&s->holders, &held, held + (destroy ? -1 : 1),
                                                  memory_order_acquire, memory_order_relaxed)) {
            return true;
        }
    }
    return false;
}

static void stripe_release(stripe_t *s, bool destroy)
{
    atomic_fetch_add_explicit(&s->holders, destroy ? 1 : -1, memory_order_release);
}

static uint16_t stripe_of(uint32_t id)
{
    return (uint16_t) ((id * 0x9E3779B1u) >> 26); /* Fibonacci hashing onto 64 stripes */
}

/* The ids a call names: its input key and a persistent create's requested id. */
static id_locks_hold_t stripes_of(const record_t *r)
{
    id_locks_hold_t h = { .n = 0, .destroy = r->op < 32 && (destroy_ops >> r->op) & 1 };
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

id_locks_hold_t id_locks_enter(const record_t *r)
{
    id_locks_hold_t h = { .n = 0 };
    if (!enabled) {
        return h;
    }
    h = stripes_of(r);
    for (unsigned i = 0; i < h.n; i++) {
        stripe_t *stripe = &stripes[h.stripe[i]];
        for (unsigned step = 0; !stripe_try(stripe, h.destroy);) {
            if (nemesis_serialised()) { /* never wait for real while holding the baton */
                nemesis_park(stripe);
            } else {
                lock_wait_backoff(&step, 1);
            }
        }
    }
    return h;
}

void id_locks_exit(id_locks_hold_t h)
{
    for (unsigned i = h.n; i-- > 0;) {
        stripe_release(&stripes[h.stripe[i]], h.destroy);
    }
    for (unsigned i = h.n; i-- > 0;) {
        nemesis_unpark(&stripes[h.stripe[i]]);
    }
}
