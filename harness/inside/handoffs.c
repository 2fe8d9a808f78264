/* psa-stress: key-slot mutex hand-offs (see handoffs.h). */
#include "inside/handoffs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/threading.h>

#include "inside/lock_sites.h"
#include "inside/transitions.h"
#include "driver/tsan_hide.h"

#define NO_CALL (-1)
#define WAITERS 256        /* workers whose waiting is seen; later ones are never seen waiting */
#define PAIR_SLOTS 8192    /* open-addressing tables of the counted pairs */
#define SIDES_PER_OP (LOCK_SITES + 1)

static bool enabled;

static _Thread_local int current = NO_CALL; /* the call in flight, its row */
static _Thread_local uint32_t call_ids[2];  /* the key ids it names, 0: none */
static _Thread_local unsigned site;         /* lock site of the critical section held */
static _Thread_local unsigned me;           /* the worker's number + 1; 0: none yet */

/* Per worker: the ids of the call in which it waits for the key-slot mutex (key << 32 | requested
 * id), 0 when it does not, packed so that the holder reads a few cache lines to know who waits.
 * Written by the worker only, always outside the critical section (before it locks, after it
 * unlocks: while it holds the mutex its entry still says waiting, which only the holder itself
 * could read, and it skips its own); read by the holder. Plain volatile 64-bit accesses, which
 * the hardware makes whole: a compiler without TSAN_UNTRACKED's attribute instruments atomic
 * accesses even in untracked functions, at a cost that would dominate the counting's (a reader
 * may see an entry a moment late, or a releaser's for the instant between its unlock and its
 * clearing, which only shifts a transition between alone and contended; under the serialised
 * engines neither happens). */
static volatile uint64_t waiting[WAITERS];
static volatile unsigned n_workers; /* one atomic step per thread, at its first call */

/* The side of the critical section holding the key-slot mutex, or of the last one, packed in one
 * word: the worker's `me` (0: a thread with no call in flight) << 32 | its side. Invariant: read
 * and written only by the holder of the key-slot mutex, once, when it acquires it: one cache
 * line crosses to the acquiring core per hand-off, and none at the release. */
static uint64_t last;

/* Pair counts: open-addressing tables keyed by (releasing side << 12 | acquiring side) + 1,
 * 0: free. Each worker counts into its own (no cache line crosses cores for a count) and folds it
 * into the totals, guarded by totals_mu, when it exits or when its table fills. */
typedef struct {
    uint32_t key;
    uint64_t count;
} pair_count_t;
static _Thread_local pair_count_t mine[PAIR_SLOTS];
static _Thread_local unsigned n_mine;
static pthread_mutex_t totals_mu = PTHREAD_MUTEX_INITIALIZER;
static pair_count_t totals[PAIR_SLOTS];
static unsigned n_totals;

/* The functions handoffs_install wraps. */
static int (*real_lock)(mbedtls_threading_mutex_t *);
static int (*real_unlock)(mbedtls_threading_mutex_t *);

bool handoffs_setup(void)
{
    const char *value = getenv("PSA_STRESS_COVERAGE");
    enabled = value == NULL || strcmp(value, "off") != 0;
    return enabled;
}

bool handoffs_enabled(void)
{
    return enabled;
}

TSAN_UNTRACKED void handoffs_call_begin(unsigned op, uint32_t key, uint32_t id)
{
    current = op < HANDOFF_OPS ? (int) op : NO_CALL;
    call_ids[0] = key;
    call_ids[1] = id;
    if (me == 0) {
        me = __atomic_fetch_add(&n_workers, 1, __ATOMIC_RELAXED) + 1;
    }
    transitions_call_edge();
}

TSAN_UNTRACKED void handoffs_call_end(void)
{
    current = NO_CALL;
    transitions_call_edge();
}

TSAN_UNTRACKED void handoffs_waiting(void)
{
    if (current != NO_CALL && me - 1 < WAITERS) {
        waiting[me - 1] = (uint64_t) call_ids[0] << 32 | call_ids[1];
    }
}

/* Adds `by` to `key` in `table`; false when the table is too full to take a new key. */
TSAN_UNTRACKED static bool add_pair(pair_count_t *table, unsigned *n, uint32_t key,
                                    uint64_t by)
{
    for (uint32_t h = (key * 2654435761u) % PAIR_SLOTS;; h = (h + 1) % PAIR_SLOTS) {
        if (table[h].key == key) {
            table[h].count += by;
            return true;
        }
        if (table[h].key == 0) {
            if (*n >= PAIR_SLOTS / 4 * 3) {
                return false;
            }
            table[h].key = key;
            table[h].count = by;
            ++*n;
            return true;
        }
    }
}

/* The calling worker's table joins the totals and is emptied. Hidden from TSan: it adds no
 * happens-before edge between workers (tsan_hide.h). A full total drops what does not fit: more
 * distinct pairs than three quarters of PAIR_SLOTS, far beyond the universe. */
static void fold_mine(void)
{
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&totals_mu);
    for (unsigned h = 0; h < PAIR_SLOTS; h++) {
        if (mine[h].key != 0) {
            (void) add_pair(totals, &n_totals, mine[h].key, mine[h].count);
            mine[h].key = 0;
        }
    }
    n_mine = 0;
    pthread_mutex_unlock(&totals_mu);
    TSAN_HIDE_END();
}

TSAN_UNTRACKED static void count_pair(unsigned released, unsigned acquired)
{
    uint32_t key = ((uint32_t) released << 12 | acquired) + 1;
    if (!add_pair(mine, &n_mine, key, 1)) {
        fold_mine();
        (void) add_pair(mine, &n_mine, key, 1);
    }
}

void handoffs_thread_exit(void)
{
    if (enabled) {
        fold_mine();
        transitions_thread_exit();
    }
}

/* Key-slot mutex held. */
TSAN_UNTRACKED void handoffs_acquired(const void *pc)
{
    uint64_t held = 0;
    if (current != NO_CALL) {
        site = lock_sites_index(pc);
        held = (uint64_t) me << 32 | ((unsigned) current * SIDES_PER_OP + site);
        uint64_t released = last;
        if (released >> 32 != 0 && released >> 32 != me) {
            count_pair((unsigned) released, (unsigned) held);
        }
        transitions_acquired();
    }
    if (last != held) {
        last = held;
    }
}

/* Key-slot mutex held. */
TSAN_UNTRACKED void handoffs_releasing(void)
{
    if (current != NO_CALL) {
        transitions_releasing();
    }
}

/* Key-slot mutex released, or the lock failed. */
TSAN_UNTRACKED void handoffs_released(void)
{
    if (me - 1 < WAITERS && waiting[me - 1] != 0) {
        waiting[me - 1] = 0;
    }
}

TSAN_UNTRACKED unsigned handoffs_call_ids(uint32_t *ids)
{
    unsigned n = 0;
    for (unsigned i = 0; i < 2; i++) {
        if (call_ids[i] != 0) {
            ids[n++] = call_ids[i];
        }
    }
    return n;
}

TSAN_UNTRACKED bool handoffs_waiter_on(const uint32_t *ids, unsigned n)
{
    unsigned count = n_workers;
    count = count < WAITERS ? count : WAITERS;
    for (unsigned w = 0; w < count; w++) {
        if (w == me - 1) {
            continue;
        }
        uint64_t both = waiting[w];
        for (unsigned i = 0; both != 0 && i < n; i++) {
            if ((uint32_t) (both >> 32) == ids[i] || (uint32_t) both == ids[i]) {
                return true;
            }
        }
    }
    return false;
}

TSAN_UNTRACKED static int counting_lock(mbedtls_threading_mutex_t *m)
{
    bool key_slot = m == &mbedtls_threading_key_slot_mutex;
    if (key_slot) {
        handoffs_waiting();
    }
    int ret = real_lock(m);
    if (ret == 0 && key_slot) {
        handoffs_acquired(__builtin_return_address(0));
    } else if (key_slot) {
        handoffs_released();
    }
    return ret;
}

TSAN_UNTRACKED static int counting_unlock(mbedtls_threading_mutex_t *m)
{
    bool key_slot = m == &mbedtls_threading_key_slot_mutex;
    if (key_slot) {
        handoffs_releasing();
    }
    int ret = real_unlock(m);
    if (key_slot) {
        handoffs_released();
    }
    return ret;
}

void handoffs_install(void)
{
    real_lock = mbedtls_mutex_lock;
    real_unlock = mbedtls_mutex_unlock;
    mbedtls_mutex_lock = counting_lock;
    mbedtls_mutex_unlock = counting_unlock;
}

static int by_key(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return (x > y) - (x < y);
}

static void print_side(FILE *f, unsigned side, const char *(*op_name)(unsigned))
{
    fprintf(f, "\"%s@%s\"", op_name(side / SIDES_PER_OP), lock_sites_name(side % SIDES_PER_OP));
}

/* After the run: the counted pairs of known operations, sorted by releasing side, grouped. */
void handoffs_print_json(FILE *f, const char *(*op_name)(unsigned), unsigned op_count)
{
    if (!enabled) {
        return;
    }
    static pair_count_t found[PAIR_SLOTS];
    unsigned n = 0, sides = (op_count < HANDOFF_OPS ? op_count : HANDOFF_OPS) * SIDES_PER_OP;
    for (unsigned h = 0; h < PAIR_SLOTS; h++) {
        uint32_t key = totals[h].key;
        if (key != 0 && (key - 1) >> 12 < sides && ((key - 1) & 0xfff) < sides) {
            found[n].key = key;
            found[n++].count = totals[h].count;
        }
    }
    qsort(found, n, sizeof found[0], by_key);
    fputs(",\"handoffs\":{", f);
    unsigned open = UINT32_MAX; /* the releasing side whose object is open */
    for (unsigned i = 0; i < n; i++) {
        unsigned released = (found[i].key - 1) >> 12, acquired = (found[i].key - 1) & 0xfff;
        if (released != open) {
            fputs(open == UINT32_MAX ? "" : "},", f);
            print_side(f, released, op_name);
            fputs(":{", f);
            open = released;
        } else {
            fputc(',', f);
        }
        print_side(f, acquired, op_name);
        fprintf(f, ":%llu", (unsigned long long) found[i].count);
    }
    fputs(open == UINT32_MAX ? "}" : "}}", f);
}
