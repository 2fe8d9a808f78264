/* psa-stress: the TSan canary (see canary.h). Active only in psa-stress-test. */
#include "canary.h"

#if defined(PSA_STRESS_TEST_BUILD)
#include <pthread.h>
#include <stdlib.h>

#define CANARY_THREADS 2
#define CANARY_ROUNDS 5000

static pthread_t canary_threads[CANARY_THREADS];
static int *canary_counter;

/* The race: a plain read-modify-write of *canary_counter from two threads, no lock. */
static void *canary_main(void *arg)
{
    volatile int *counter = arg;
    for (int i = 0; i < CANARY_ROUNDS; i++) {
        *counter = *counter + 1;
    }
    return NULL;
}

bool canary_start(void)
{
    canary_counter = calloc(1, sizeof(*canary_counter));
    if (canary_counter == NULL) {
        return false;
    }
    for (int i = 0; i < CANARY_THREADS; i++) {
        if (pthread_create(&canary_threads[i], NULL, canary_main, canary_counter) != 0) {
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
}
#endif /* PSA_STRESS_TEST_BUILD */
