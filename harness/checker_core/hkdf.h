/* psa-stress checker core: SHA-256, HMAC-SHA-256 and HKDF-SHA-256 (FIPS 180-4, RFC 2104,
 * RFC 5869), self-contained, to recompute a derived key's material (hkdf.c). Single-threaded
 * callers; no state between calls. */
#ifndef PSA_STRESS_CHECKER_HKDF_H
#define PSA_STRESS_CHECKER_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define HKDF_MAX_LEN (255 * SHA256_LEN)

void sha256(const uint8_t *data, size_t len, uint8_t out[SHA256_LEN]);
void hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                 uint8_t out[SHA256_LEN]);

/* The first len bytes of HKDF-SHA-256(salt, secret, info) into out; 0 if len > HKDF_MAX_LEN
 * or info is longer than 256 bytes. */
int hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *secret, size_t secretlen,
                const uint8_t *info, size_t infolen, uint8_t *out, size_t len);

#endif /* PSA_STRESS_CHECKER_HKDF_H */
