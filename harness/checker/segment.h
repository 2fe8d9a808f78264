/* psa-stress checker core: the exact search of one key's segment (segment.c), used by
 * checker_core.c; the model's rules are in state.h / rules.c. Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_SEGMENT_H
#define PSA_STRESS_CHECKER_SEGMENT_H

#include <stdint.h>

#include "state.h"

#define MAX_STATES 16         /* states of one key between segments */

typedef struct search search_t;

search_t *search_new(void);
void search_free(search_t *search);

/* The end states of every real-time-respecting order of ops[0..n-1] (sorted by call) from
 * every start state, into ends[0..MAX_STATES-1]: their count (0: none), -1 if the search is
 * too big (its budget of steps grows with n), -2 if there are more than MAX_STATES. */
int segment_ends(search_t *search, const state_t *starts, int nstarts, const op_t *ops, int n,
                 state_t *ends);
/* After segment_ends found no order: the index of the op that could not go next in the
 * deepest configuration the search reached (the culprit of docs/checker.md §6), or -1. */
int segment_culprit(const search_t *search);

#endif /* PSA_STRESS_CHECKER_SEGMENT_H */
