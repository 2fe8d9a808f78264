/* psa-stress: the nemesis's scheduling strategies for the serialised engines: which runnable
 * thread runs after each scheduling point.
 *
 *  random  a uniformly random runnable thread at every point (random walk);
 *  pct     Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS'10), in rounds of k
 *          points: at the start of a round the n threads get random distinct priorities
 *          d..d+n-1 and d-1 change points are drawn in 1..k; the highest-priority runnable
 *          thread runs; at change point i the thread that reached it drops to priority d-i.
 *          A bug of depth d is hit in a round with probability >= 1/(n*k^(d-1)).
 *
 * A strategy is used by one thread at a time (the nemesis's baton holder). */
#ifndef PSA_STRESS_STRATEGY_H
#define PSA_STRESS_STRATEGY_H

#include <stdbool.h>
#include <stdint.h>

#define STRATEGY_MAX_DEPTH 16

/* xorshift64* with a splitting seed: small, fast, and enough for scheduling decisions. */
typedef struct {
    uint64_t s;
} sched_rng_t;

static inline void sched_rng_seed(sched_rng_t *r, uint64_t seed, uint64_t stream)
{
    r->s = (seed + 1) * 0x9e3779b97f4a7c15u ^ (stream + 1) * 0xd1b54a32d192ed03u;
    if (r->s == 0) {
        r->s = 1;
    }
}

static inline uint64_t sched_rng_next(sched_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1du;
}

/* Uniform in 0..n-1 (n > 0). */
static inline uint64_t sched_rng_below(sched_rng_t *r, uint64_t n)
{
    return (sched_rng_next(r) >> 11) % n;
}

typedef enum { STRATEGY_RANDOM, STRATEGY_PCT } strategy_kind_t;

typedef struct {
    strategy_kind_t kind;
    unsigned n;       /* threads */
    unsigned depth;   /* d */
    uint64_t k;       /* points per PCT round */
    uint64_t step;    /* points taken in the current round */
    uint64_t rounds;
    sched_rng_t rng;
    uint64_t change[STRATEGY_MAX_DEPTH]; /* change[i] = step of change point i+1 */
    unsigned *priority;                  /* n entries */
} strategy_t;

/* false when out of memory. */
bool strategy_init(strategy_t *s, strategy_kind_t kind, uint64_t seed, unsigned n,
                   unsigned depth, uint64_t k);

/* The thread to run next: one with runnable[t]; `at` is the thread that reached the point
 * (n when none did, e.g. the first pick). The caller guarantees one runnable thread. */
unsigned strategy_pick(strategy_t *s, const bool *runnable, unsigned at);

/* PCT's per-round lower bound 1/(n*k^(d-1)) for a bug of depth d. */
double strategy_pct_bound(unsigned n, unsigned depth, uint64_t k);

#endif /* PSA_STRESS_STRATEGY_H */
