/* psa-stress: the TSan canary (test build only). Two threads increment one heap int with no
 * synchronisation, a deliberate data race: if TSan reports it, instrumentation is live, so
 * silence from TSan in the same build means something. */
#ifndef PSA_STRESS_CANARY_H
#define PSA_STRESS_CANARY_H

#if defined(PSA_STRESS_TEST_BUILD)
#include <stdbool.h>

#define CANARY_THREADS 2

/* Starts the canary threads as nemesis participants first_participant and the next one; false
 * if a thread could not be started. */
bool canary_start(unsigned first_participant);
void canary_join(void);
#endif

#endif /* PSA_STRESS_CANARY_H */
