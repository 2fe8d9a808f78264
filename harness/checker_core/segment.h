/* psa-stress checker core: the model's register rules and the exact search of one segment
 * (segment.c), used by checker_core.c. Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_SEGMENT_H
#define PSA_STRESS_CHECKER_SEGMENT_H

#include <stdint.h>

#define MAX_SEGMENT 4096      /* ops of one segment (the search recurses, ~450 B, per op) */
#define MAX_STATES 16         /* states of one key between segments */
#define MAX_INTERNED 256      /* distinct states met inside one segment */
#define MATERIAL_UNKNOWN 0xFFFF
#define BITS_UNKNOWN (-1)

typedef struct {          /* one key description, or ABSENT (present == 0) */
    uint8_t present;
    uint16_t matlen;      /* MATERIAL_UNKNOWN: a generated key whose material is not bound */
    uint32_t lifetime, key, type, usage, alg;
    int32_t bits;         /* BITS_UNKNOWN: any */
    const uint8_t *mat;
} state_t;

typedef struct {          /* one per-key op of a segment */
    uint64_t call, ret;
    int action;
    state_t arg;          /* CREATE: the description; EXPORT: the bytes (mat, matlen);
                             ATTRIBUTES: the attributes returned */
} op_t;

typedef struct search search_t;

/* The one next state of op from s into *next; 0 if op is illegal in s. */
int segment_step(const state_t *s, const op_t *op, state_t *next);

search_t *search_new(void);
void search_free(search_t *search);

/* The end states of every real-time-respecting order of ops[0..n-1] (sorted by call) from
 * every start state, into ends[0..MAX_STATES-1]: their count (0: none), -1 if the search is
 * too big, -2 if there are more than MAX_STATES. */
int segment_ends(search_t *search, const state_t *starts, int nstarts, const op_t *ops, int n,
                 state_t *ends);

#endif /* PSA_STRESS_CHECKER_SEGMENT_H */
