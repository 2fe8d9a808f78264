/* psa-stress checker core: one key id's model state and the rules of scenarios/model.py over it
 * (rules.c). A state is ABSENT or PRESENT with a small SET of possible key descriptions (a copy
 * whose source could be one of several instances); fields may be unknown, as model.py's None.
 * Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_STATE_H
#define PSA_STRESS_CHECKER_STATE_H

#include <stdint.h>

#define MAX_DESCS 4           /* descriptions of one state (more: undecided) */
#define MAX_USAGES 4          /* usage values one description may report */
#define MATERIAL_UNKNOWN 0xFFFF
#define BITS_UNKNOWN (-1)
#define UNKNOWN_TYPE 1        /* desc_t.unknown flags: the field is model.py's None */
#define UNKNOWN_ALG 2
#define UNKNOWN_USAGES 4

#define USAGE_EXPORT 0x1u
#define USAGE_COPY 0x2u
#define USAGE_DERIVE 0x4000u
#define ALG_HKDF_SHA256 0x08000109u
#define TYPE_DERIVE 0x1200u

/* model.py's description (lifetime, id, type, bits, usages, alg, material). */
typedef struct {
    uint32_t lifetime, key, type, alg;
    int32_t bits;         /* BITS_UNKNOWN: any */
    uint32_t usages[MAX_USAGES];   /* sorted, distinct */
    uint8_t nusages, unknown;
    uint16_t matlen;      /* MATERIAL_UNKNOWN: not bound yet (a generated key, ...) */
    const uint8_t *mat;
} desc_t;

typedef struct {
    uint8_t present, ndescs;       /* descs sorted by desc_cmp, distinct */
    desc_t descs[MAX_DESCS];
} state_t;

typedef struct {          /* one per-key op of a segment */
    uint64_t call, ret;
    int action;           /* CORE_* of checker_core.h */
    uint32_t want;        /* COPY_SOURCE: the requested algorithm */
    desc_t arg;           /* EXPORT: the bytes (mat, matlen); ATTRIBUTES: the attributes
                             returned (usages[0]) */
    const state_t *created;   /* CREATE: the descriptions it may give the key */
    void *inst;           /* CREATE: its instance (sources.h), released when the segment closes */
} op_t;

uint32_t extend_usage(uint32_t usage);
int desc_cmp(const desc_t *a, const desc_t *b);
int state_equal(const state_t *a, const state_t *b);
/* Add d to the set s (kept sorted and distinct); 0 if s is full. */
int state_add(state_t *s, const desc_t *d);
/* Add usage to d's set (sorted, distinct); 0 if full. */
int usages_add(desc_t *d, uint32_t usage);

int may_have(const desc_t *d, uint32_t flag);
int algs_meet(const desc_t *d, uint32_t requested);
int allows_hkdf(const desc_t *d);      /* model_use._allows(d, DERIVE, HKDF_SHA256, DERIVE) */

/* The one next state of op from s into *next; 0 if op is illegal in s. */
int segment_step(const state_t *s, const op_t *op, state_t *next);
/* Rules that leave the state as it is wherever they are legal. */
int keeps_state(int action);

#endif /* PSA_STRESS_CHECKER_STATE_H */
