/* psa-stress: the harness's own additions to Mbed TLS's default configuration.
 * Included through MBEDTLS_USER_CONFIG_FILE, after include/mbedtls/mbedtls_config.h.
 * The CMake variant sets PSA_STRESS_STATIC_KEY_STORE and PSA_STRESS_KEY_SLOT_COUNT. */
#ifndef PSA_STRESS_USER_CONFIG_H
#define PSA_STRESS_USER_CONFIG_H

/* The key store is only thread safe with the threading layer on (pthread flavour). */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD

/* The ECC self-test counters in ecp.c race by design: keep them out of TSan's way. */
#undef MBEDTLS_SELF_TEST

/* Persistent keys in a per-run directory (the file ITS backend writes to the CWD). */
#define MBEDTLS_PSA_CRYPTO_STORAGE_C
#define MBEDTLS_PSA_ITS_FILE_C

/* Run-time calloc/free hooks (mbedtls_platform_set_calloc_free) for the nemesis's allocation
 * faults (harness/nemesis/faults.h); without faults they are libc's calloc and free. */
#define MBEDTLS_PLATFORM_MEMORY

/* Not thread safe upstream (shared transaction state): never part of a stress build. */
#undef MBEDTLS_PSA_CRYPTO_SE_C

#if defined(PSA_STRESS_STATIC_KEY_STORE) && PSA_STRESS_STATIC_KEY_STORE
#undef MBEDTLS_PSA_KEY_STORE_DYNAMIC
#endif

#if defined(PSA_STRESS_KEY_SLOT_COUNT)
#define MBEDTLS_PSA_KEY_SLOT_COUNT PSA_STRESS_KEY_SLOT_COUNT
#endif

#endif /* PSA_STRESS_USER_CONFIG_H */
