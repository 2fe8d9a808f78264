/* psa-stress checker core: one key id's model state and the rules of scenarios/model/key_store.py over it
 * (rules.c). A state is ABSENT or PRESENT with a small SET of possible key descriptions (a copy
 * whose source could be one of several instances); fields may be unknown, as model/key_store.py's None.
 * Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_STATE_H
#define PSA_STRESS_CHECKER_STATE_H

#include <stddef.h>
#include <stdint.h>

#ifndef MAX_DESCS              /* descriptions of one state (more: undecided). CMake builds the
                                 core twice: 32 (psa_stress_checker_core), and 256 for the
                                 histories a copy of many source instances sends past 32
                                 (psa_stress_checker_core_wide, scenarios/checker/fast_check.py) */
#define MAX_DESCS 32
#endif
#define MAX_USAGES 4          /* usage values one description may report */
#define MAX_PUBLICS 4         /* public keys one signature may recover (crypto.h) */
#define MATERIAL_UNKNOWN 0xFFFF
#define BITS_UNKNOWN (-1)
#define UNKNOWN_TYPE 1        /* desc_t.unknown flags: the field is model/key_store.py's None */
#define UNKNOWN_ALG 2
#define UNKNOWN_USAGES 4
#define PUBLIC_ONLY 8         /* a P-256 pair known by its public key (mat): model_use's "pub:" */

#define USAGE_EXPORT 0x1u
#define USAGE_COPY 0x2u
#define USAGE_DERIVE 0x4000u
#define ALG_HKDF_SHA256 0x08000109u
#define TYPE_DERIVE 0x1200u
#define ECC_P256_PAIR 0x7112u

/* model/key_store.py's description (lifetime, id, type, bits, usages, alg, material). */
typedef struct {
    uint32_t lifetime, key, type, alg;
    int32_t bits;         /* BITS_UNKNOWN: any */
    uint32_t usages[MAX_USAGES];   /* sorted, distinct */
    uint8_t nusages, unknown;
    uint16_t matlen;      /* MATERIAL_UNKNOWN: not bound yet (a generated key, ...) */
    const uint8_t *mat;
} desc_t;

typedef struct {
    uint8_t present;
    uint16_t ndescs;      /* descs sorted by desc_cmp, distinct; at most MAX_DESCS */
    desc_t descs[MAX_DESCS];
} state_t;
_Static_assert(MAX_DESCS <= UINT16_MAX, "state_t.ndescs counts the descriptions");

typedef struct {          /* a key use's record (use.c) */
    uint8_t kind;         /* USE_* of checker_core.h */
    uint32_t flag, type;  /* model_use.USES: the usage flag and key type it needs */
    const uint8_t *in, *out;   /* the record's input and output (material) bytes */
    uint16_t inlen, outlen;
} use_t;

typedef struct {          /* one per-key op of a segment */
    uint64_t call, ret;
    int action;           /* CORE_* of checker_core.h */
    uint8_t opcode;       /* its record's operation code and status code */
    int16_t status;
    uint32_t want;        /* COPY_SOURCE, key uses: the requested algorithm */
    use_t use;            /* key uses and export_public */
    desc_t arg;           /* EXPORT: the bytes (mat, matlen); ATTRIBUTES: the attributes
                             returned (usages[0]) */
    const state_t *created;   /* CREATE: the descriptions it may give the key */
    void *inst;           /* CREATE: its instance (sources.h), released when the segment closes */
} op_t;

uint32_t extend_usage(uint32_t usage);
int desc_cmp(const desc_t *a, const desc_t *b);
int state_equal(const state_t *a, const state_t *b);
/* *dst = *src, copying only the descriptions in use. */
void state_copy(state_t *dst, const state_t *src);
/* *s = ABSENT. */
void state_clear(state_t *s);
/* Add d to the set s (kept sorted and distinct); 0 if s is full. */
int state_add(state_t *s, const desc_t *d);
/* Add usage to d's set (sorted, distinct); 0 if full. */
int usages_add(desc_t *d, uint32_t usage);

int may_have(const desc_t *d, uint32_t flag);
int algs_meet(const desc_t *d, uint32_t requested);
int allows_hkdf(const desc_t *d);      /* key_use._allows(d, DERIVE, HKDF_SHA256, DERIVE) */

/* The one next state of op from s into *next; 0 if op is illegal in s. */
int segment_step(const state_t *s, const op_t *op, state_t *next);
/* The second next state of an op that has two (a storage error's destroy of a present key:
 * gone) into *next; 0 if it has none. */
int segment_alternative(const state_t *s, const op_t *op, state_t *next);
/* Rules that leave the state as it is wherever they are legal. */
int keeps_state(int action);

/* use.c: the key-use rules of model/key_use.py. The constants some uses read (verify's hash, the
 * AEAD nonce, mac_multipart's message) for this thread's check; 0 if memory is short. */
int uses_begin(const uint8_t *hash, size_t hashlen, const uint8_t *nonce, size_t noncelen,
               const uint8_t *message, size_t messagelen);
void uses_end(void);
/* Does d satisfy the read-only use rule op->action (CORE_USE .. CORE_PUBLIC_REFUSED)? */
int use_fits(const desc_t *d, const op_t *op);
/* CORE_SIGNED, CORE_EXPORT_PUBLIC: the one next state (binding an unknown pair); 0: illegal. */
int bind_step(const state_t *s, const op_t *op, state_t *next);
/* streaming._unbound: does a segment with a cipher, MAC, AEAD or failed-verify op start from
 * one of states[0..nstates-1] or create a description whose material is unknown? */
int unbound_use(const state_t *states, int nstates, const op_t *ops, int n);
/* key_store.material_matches for a PUBLIC_ONLY description: is the exported scalar its? */
int public_matches(const desc_t *d, const uint8_t *exported, uint16_t len);
/* The public keys a successful export_public (kind USE_NONE: its output), sign or verify (the
 * keys its signature recovers) shows: their number, at *publics (P256_PUBLIC_LEN bytes each,
 * valid until uses_end); 0 if none or libcrypto fails. */
int shown_publics(int kind, const uint8_t *in, uint16_t inlen, const uint8_t *out,
                  uint16_t outlen, const uint8_t **publics);
/* key_store.public_hex of a known scalar: 1 and its public key at *public, else 0. */
int scalar_public(const uint8_t *mat, uint16_t len, const uint8_t **public);

#endif /* PSA_STRESS_CHECKER_STATE_H */
