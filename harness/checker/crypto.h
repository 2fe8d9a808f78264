/* psa-stress checker core: the cryptography the model's rules recompute (crypto.c), all from
 * OpenSSL's libcrypto: HKDF-SHA-256 (a derived key's material), HMAC-SHA-256, AES-128 (one ECB
 * block, GCM with a 12-byte nonce and no AAD) and ECDSA P-256 (public key of a scalar,
 * verification, public-key recovery), as scenarios/model/key_use.py computes them.
 * The context is per thread (crypto_begin .. crypto_end around one core_check). */
#ifndef PSA_STRESS_CHECKER_CRYPTO_H
#define PSA_STRESS_CHECKER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define HKDF_MAX_LEN (255 * SHA256_LEN)
#define P256_SCALAR_LEN 32
#define P256_PUBLIC_LEN 65    /* 04 || x || y */
#define P256_SIG_LEN 64       /* r || s */
#define P256_MAX_RECOVERED 4
#define AES_BLOCK 16
#define GCM_TAG 16
#define GCM_NONCE 12

/* Set up (0: libcrypto failed) and free this thread's context. */
int crypto_begin(void);
void crypto_end(void);

/* The first len bytes of HKDF-SHA-256(salt, secret, info) into out; 0 if len > HKDF_MAX_LEN
 * or libcrypto fails. Needs no context. */
int hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *secret, size_t secretlen,
                const uint8_t *info, size_t infolen, uint8_t *out, size_t len);
int hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                uint8_t out[SHA256_LEN]);
/* AES-128 of one block (decrypt: the inverse); 0 if libcrypto fails. */
int aes128_block(const uint8_t key[16], const uint8_t in[AES_BLOCK], uint8_t out[AES_BLOCK],
                 int decrypt);
/* AES-128-GCM: seal len bytes into out (len + GCM_TAG bytes); open len >= GCM_TAG bytes into
 * out (len - GCM_TAG bytes): 1 if the tag verifies, 0 if not, -1 if libcrypto fails. */
int gcm_seal(const uint8_t key[16], const uint8_t nonce[GCM_NONCE], const uint8_t *in,
             size_t len, uint8_t *out);
int gcm_open(const uint8_t key[16], const uint8_t nonce[GCM_NONCE], const uint8_t *in,
             size_t len, uint8_t *out);
/* The public key of a 32-byte scalar: 1, or 0 if it is not in [1, n-1]; -1 if libcrypto fails. */
int p256_public(const uint8_t scalar[32], uint8_t out[P256_PUBLIC_LEN]);
/* The private key Mbed TLS derives for a P-256 pair from the HKDF-SHA-256 stream of (salt,
 * secret, info) (crypto_ref.derived_private_key): 1, or 0 if the stream runs out first (the
 * derivation fails), -1 if libcrypto fails. */
int p256_derived_private_key(const uint8_t *salt, size_t saltlen, const uint8_t *secret,
                             size_t secretlen, const uint8_t *info, size_t infolen,
                             uint8_t out[P256_SCALAR_LEN]);
/* ECDSA verification of r || s over the first 32 bytes of digest: 1 valid, 0 not, -1 failure. */
int p256_verify(const uint8_t public[P256_PUBLIC_LEN], const uint8_t *digest,
                const uint8_t sig[P256_SIG_LEN]);
/* The public keys under which r || s is a valid signature of the digest (SEC 1 §4.1.6), in
 * p256.recover's order; their number, or -1 if libcrypto fails. */
int p256_recover(const uint8_t *digest, const uint8_t sig[P256_SIG_LEN],
                 uint8_t out[P256_MAX_RECOVERED][P256_PUBLIC_LEN]);

#endif /* PSA_STRESS_CHECKER_CRYPTO_H */
