/* psa-stress: the reload counter (see reloads.h). */
#include "inside/reloads.h"

#include <stdatomic.h>

/* Relaxed: a statistic, read after the workers joined. A relaxed RMW gives TSan no
 * happens-before edge, so counting hides no race in the core. */
static _Atomic uint64_t reloads;

psa_status_t __wrap_psa_load_persistent_key(psa_key_attributes_t *attr, uint8_t **data,
                                            size_t *data_length);

psa_status_t __wrap_psa_load_persistent_key(psa_key_attributes_t *attr, uint8_t **data,
                                            size_t *data_length)
{
    psa_status_t status = __real_psa_load_persistent_key(attr, data, data_length);
    if (status == PSA_SUCCESS) {
        atomic_fetch_add_explicit(&reloads, 1, memory_order_relaxed);
    }
    return status;
}

uint64_t reloads_count(void)
{
    return atomic_load_explicit(&reloads, memory_order_relaxed);
}
