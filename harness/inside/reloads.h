/* psa-stress: how many times a persistent key was loaded from storage into a key slot.
 *
 * The driver is linked with -Wl,--wrap=psa_load_persistent_key (CMakeLists.txt), so every call
 * the core makes to load a key from storage goes through reloads.c, which counts the successful
 * ones. In the eviction scenarios, where there are more persistent ids than cache slots, this is
 * the number of evicted keys that were brought back. */
#ifndef PSA_STRESS_RELOADS_H
#define PSA_STRESS_RELOADS_H

#include <stdint.h>

#include <psa/crypto.h>

uint64_t reloads_count(void);

/* The unwrapped loader, for the harness's own storage reads (not counted). */
psa_status_t __real_psa_load_persistent_key(psa_key_attributes_t *attr, uint8_t **data,
                                            size_t *data_length);

#endif /* PSA_STRESS_RELOADS_H */
