/* psa-stress: what this driver's build of the tree offers (--describe).
 *
 * Prints one JSON object on a line and the driver exits 0, before psa_crypto_init:
 *   {"mbedtls_version": "3.6.0", "key_store": {"kind": "static"|"dynamic", "slot_count": N},
 *    "operations": ["import", ...]}
 * "operations" lists the rows of the operation table (client.c) whose PSA function the tree
 * has; the others run as NOT_SUPPORTED. CMakeLists.txt probes the tree for them, so the
 * Python side (scenarios/setup/build.py) learns the tree's capabilities from the driver itself. */
#ifndef PSA_STRESS_DESCRIBE_H
#define PSA_STRESS_DESCRIBE_H

#include <stdio.h>

void describe_print(FILE *f);

/* "dynamic" or "static": the key store this build has (the variant asks, the tree decides). */
const char *describe_key_store_kind(void);

#endif /* PSA_STRESS_DESCRIBE_H */
