/* psa-stress checker core: the exact search of one key's segment (segment.c), used by
 * checker_core.c; the model's rules are in state.h / rules.c. Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_SEGMENT_H
#define PSA_STRESS_CHECKER_SEGMENT_H

#include <stdint.h>

#include "state.h"

#define MAX_SEGMENT 4096      /* ops of one segment (the search recurses, ~450 B, per op) */
#define MAX_STATES 16         /* states of one key between segments */
#define MAX_INTERNED 256      /* distinct states met inside one segment */

typedef struct search search_t;

search_t *search_new(void);
void search_free(search_t *search);

/* The end states of every real-time-respecting order of ops[0..n-1] (sorted by call) from
 * every start state, into ends[0..MAX_STATES-1]: their count (0: none), -1 if the search is
 * too big, -2 if there are more than MAX_STATES. */
int segment_ends(search_t *search, const state_t *starts, int nstarts, const op_t *ops, int n,
                 state_t *ends);

#endif /* PSA_STRESS_CHECKER_SEGMENT_H */
