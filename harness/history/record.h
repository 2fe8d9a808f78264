/* psa-stress: one call record, the unit of a history (docs/history-format.md "Call record").
 *
 * Fixed size and self-contained (no pointers), so a worker fills it with plain stores into its own
 * buffer and nothing is formatted until every worker has joined. Which fields are meaningful
 * depends on the operation; the operation table (client.c) says how each one is printed. */
#ifndef PSA_STRESS_RECORD_H
#define PSA_STRESS_RECORD_H

#include <stdint.h>

#include <psa/crypto.h>

#if defined(MBEDTLS_PSA_CRYPTO_KEY_ID_ENCODES_OWNER)
#error "psa-stress records key ids as plain psa_key_id_t: build without KEY_ID_ENCODES_OWNER"
#endif

/* Longest output carried inline: key material, an ECC P-256 public key (65 bytes), an ECDSA
 * signature (64), a MAC (32), a ciphertext. */
#define RECORD_MATERIAL_MAX 65
/* Longest per-call input carried inline: a signature to verify, an AEAD ciphertext and tag. */
#define RECORD_INPUT_MAX 64
/* Per-call unique HKDF salt of a derive. */
#define RECORD_SALT_LEN 16

/* The "attrs" of the history format: lifetime, id, type, bits, usage, alg. */
typedef struct {
    uint32_t lifetime; /* psa_key_lifetime_t: 0 volatile, 1 persistent */
    uint32_t id;       /* requested persistent id, 0 for a volatile create */
    uint16_t type;     /* psa_key_type_t */
    uint16_t bits;     /* key size; PSA_MAX_KEY_BITS (0xfff8) fits */
    uint32_t usage;    /* psa_key_usage_t */
    uint32_t alg;      /* psa_algorithm_t */
} record_attrs_t;

typedef struct {
    uint64_t call;           /* ticket taken immediately before the PSA call */
    uint64_t ret;            /* ticket taken immediately after it returned */
    uint32_t seq;            /* index of the call within its thread */
    uint16_t thread;         /* worker index */
    uint8_t op;              /* row of the operation table (client.c) */
    uint8_t material_len;    /* bytes used in material[] */
    uint8_t input_len;       /* bytes used in input[] */
    uint8_t stage;           /* multi-part operations: the last step attempted */
    int32_t status;          /* psa_status_t returned */
    uint32_t key;            /* input key: destroy/export/get_attributes target, copy source */
    uint32_t out_key;        /* key id returned by a successful create */
    record_attrs_t attrs;    /* requested attrs of a create, or the attrs get_attributes returned */
    uint64_t mid;            /* multi-part operations: ticket taken right after the setup */
    uint8_t material[RECORD_MATERIAL_MAX]; /* import input, or the output of a key use/export */
    uint8_t salt[RECORD_SALT_LEN];         /* derive input */
    uint8_t input[RECORD_INPUT_MAX];       /* data input of a key use */
} record_t;

#endif /* PSA_STRESS_RECORD_H */
