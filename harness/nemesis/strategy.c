/* psa-stress: random-walk and PCT scheduling strategies (see strategy.h). */
#include "nemesis/strategy.h"

#include <math.h>
#include <stdlib.h>

/* A new PCT round: a random permutation of d..d+n-1 as priorities, d-1 change points. */
static void pct_new_round(strategy_t *s)
{
    for (unsigned t = 0; t < s->n; t++) {
        s->priority[t] = s->depth + t;
    }
    for (unsigned t = s->n; t > 1; t--) { /* Fisher-Yates */
        unsigned j = (unsigned) sched_rng_below(&s->rng, t);
        unsigned tmp = s->priority[t - 1];
        s->priority[t - 1] = s->priority[j];
        s->priority[j] = tmp;
    }
    for (unsigned i = 0; i + 1 < s->depth; i++) {
        s->change[i] = 1 + sched_rng_below(&s->rng, s->k);
    }
    s->step = 0;
    s->rounds++;
}

bool strategy_init(strategy_t *s, strategy_kind_t kind, uint64_t seed, unsigned n,
                   unsigned depth, uint64_t k)
{
    *s = (strategy_t) { .kind = kind, .n = n, .depth = depth, .k = k };
    sched_rng_seed(&s->rng, seed, 0x5c4ed);
    s->priority = calloc(n, sizeof(*s->priority));
    if (s->priority == NULL) {
        return false;
    }
    if (kind == STRATEGY_PCT) {
        pct_new_round(s);
    }
    return true;
}

static unsigned pick_random(strategy_t *s, const bool *runnable)
{
    unsigned count = 0;
    for (unsigned t = 0; t < s->n; t++) {
        count += runnable[t];
    }
    uint64_t index = sched_rng_below(&s->rng, count);
    for (unsigned t = 0; t < s->n; t++) {
        if (runnable[t] && index-- == 0) {
            return t;
        }
    }
    abort(); /* unreachable: count > 0 runnable threads */
}

static unsigned pick_pct(strategy_t *s, const bool *runnable, unsigned at)
{
    if (s->step == s->k) {
        pct_new_round(s);
    }
    s->step++;
    for (unsigned i = 0; i + 1 < s->depth; i++) {
        if (s->change[i] == s->step && at < s->n) {
            s->priority[at] = s->depth - 1 - i; /* below every initial priority */
        }
    }
    unsigned best = s->n;
    for (unsigned t = 0; t < s->n; t++) {
        if (runnable[t] && (best == s->n || s->priority[t] > s->priority[best])) {
            best = t;
        }
    }
    return best;
}

unsigned strategy_pick(strategy_t *s, const bool *runnable, unsigned at)
{
    return s->kind == STRATEGY_PCT ? pick_pct(s, runnable, at) : pick_random(s, runnable);
}

double strategy_pct_bound(unsigned n, unsigned depth, uint64_t k)
{
    return 1.0 / ((double) n * pow((double) k, (double) depth - 1));
}
