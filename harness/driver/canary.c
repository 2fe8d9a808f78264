/* psa-stress: the TSan canary (see canary.h). Active only in psa-stress-test. */
#include "driver/canary.h"

#if defined(PSA_STRESS_TEST_BUILD)
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "nemesis/lock_wait.h"
#include "nemesis/nemesis.h"

#define CANARY_ROUNDS 5000

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define CANARY_UNDER_ASAN
#elif defined(__has_feature)      /* clang */
#if __has_feature(address_sanitizer)
#define CANARY_UNDER_ASAN
#endif
#endif

static pthread_t canary_threads[CANARY_THREADS];
static int *canary_counter;
static unsigned first_id;
/* How many canary threads have made their racy first access. Only relaxed loads and stores
 * touch it, and TSan derives no happens-before edge from a relaxed atomic: it orders the two
 * accesses in time without synchronising them. */
static atomic_uint canary_turn;

/* Returns once `turn` canary threads have made their first access. Under serialisation the
 * thread parks (the baton is hidden from TSan); otherwise it yields. Neither is a
 * happens-before edge. */
static void canary_wait_turn(unsigned turn)
{
    for (unsigned step = 0; atomic_load_explicit(&canary_turn, memory_order_relaxed) < turn;) {
        if (nemesis_serialised()) {
            nemesis_park(&canary_turn);
        } else {
            lock_wait_backoff(&step, 1);
        }
    }
}

/* The race, by construction on every run and under every engine: thread i makes its first
 * access of *canary_counter after thread i-1 made its own, with nothing TSan counts as
 * synchronisation in between, and every canary thread stays alive until all have made it (a
 * thread that already exited may have handed its TSan slot to the next one, which would hide
 * the race). Then each thread keeps racing with a scheduling point per round, so the accesses
 * of the two threads are also ordered by the nemesis's baton: TSan reports the race iff the
 * baton adds no happens-before edge. */
static void *canary_main(void *arg)
{
    unsigned index = (unsigned) (uintptr_t) arg;
    nemesis_thread_enter(first_id + index);
    canary_wait_turn(index);
    *canary_counter = *canary_counter + 1;
    atomic_store_explicit(&canary_turn, index + 1, memory_order_relaxed);
    nemesis_unpark(&canary_turn);
    canary_wait_turn(CANARY_THREADS);
    for (int i = 0; i < CANARY_ROUNDS; i++) {
        *canary_counter = *canary_counter + 1;
        nemesis_step();
    }
    nemesis_thread_exit();
    return NULL;
}

bool canary_start(unsigned first_participant)
{
    first_id = first_participant;
    atomic_init(&canary_turn, 0);
    canary_counter = calloc(1, sizeof(*canary_counter));
    if (canary_counter == NULL) {
        return false;
    }
    for (int i = 0; i < CANARY_THREADS; i++) {
        if (pthread_create(&canary_threads[i], NULL, canary_main, (void *) (uintptr_t) i) != 0) {
            return false;
        }
    }
    return true;
}

void canary_join(void)
{
    for (int i = 0; i < CANARY_THREADS; i++) {
        pthread_join(canary_threads[i], NULL);
    }
    free(canary_counter);
#if defined(CANARY_UNDER_ASAN)
    /* ASan cannot see a data race: in an ASan build the canary is also a read after free. */
    volatile int *freed = canary_counter;
    (void) *freed;
#endif
}
#endif /* PSA_STRESS_TEST_BUILD */
