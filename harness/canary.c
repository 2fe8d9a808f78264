/* psa-stress: the TSan canary (see canary.h). Active only in psa-stress-test. */
#include "canary.h"

#if defined(PSA_STRESS_TEST_BUILD)
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "nemesis.h"

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

/* The race: a plain read-modify-write of *canary_counter from two threads, no lock. Each
 * thread is a nemesis participant with a scheduling point per round, so under a serialised
 * engine the accesses of the two threads are ordered only by the nemesis's baton: TSan still
 * reports the race iff the baton adds no happens-before edge. */
static void *canary_main(void *arg)
{
    nemesis_thread_enter(first_id + (unsigned) (uintptr_t) arg);
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
