/* psa-stress checker core: the exact search of one key's segment (the rules: rules.c): every
 * real-time-respecting order of its ops, from every start state, with a memo of (linearized
 * ops, state) configurations. Single-threaded; no locks. */
#include "checker_core.h"
#include "segment.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW 64             /* ops that may be linearized ahead of the first pending one */
#define MAX_MEMO (1u << 20)   /* configurations searched per segment */
#define MAX_STRAGGLERS 4      /* ops left behind the window, not linearized yet */

/* A search configuration: the ops linearized are those before base except the stragglers
 * s[0..ns-1], and the ops base+k with bit k of mask; all ops from base+WINDOW on are not. */
typedef struct {
    int base, ns;
    uint64_t mask;
    uint32_t s[MAX_STRAGGLERS];
} cfg_t;

struct memo {
    uint32_t tag;                 /* generation << 8 | state id; 0: empty */
    cfg_t cfg;
};

struct search {
    state_t interned[MAX_INTERNED];
    int ninterned;
    size_t sufcap;
    uint64_t *sufmin;             /* sufmin[i]: smallest ret of ops i.. of the segment */
    struct memo *memo;
    uint32_t generation;
    uint32_t memo_used;
    uint8_t ends[MAX_INTERNED];
};

/* ---- one segment: every real-time-respecting order, from every start state ------------- */

static int intern(search_t *c, const state_t *s)
{
    for (int i = 0; i < c->ninterned; i++)
        if (state_equal(&c->interned[i], s))
            return i;
    if (c->ninterned == MAX_INTERNED)
        return -1;
    c->interned[c->ninterned] = *s;
    return c->ninterned++;
}

/* 1 if (g, sid) was new (and is now recorded), 0 if seen, -1 if the memo is full. */
static int memo_add(search_t *c, const cfg_t *g, int sid)
{
    uint32_t tag = c->generation << 8 | (uint32_t)sid;
    uint64_t h = g->mask ^ (uint64_t)sid << 57 ^ (uint64_t)g->base << 29 ^ (uint64_t)g->ns;
    for (int i = 0; i < g->ns; i++)
        h = h * 31 + g->s[i];
    size_t j = (size_t)((h * 0x9E3779B97F4A7C15ull) >> 40) & (MAX_MEMO - 1);
    for (; c->memo[j].tag >> 8 == c->generation; j = (j + 1) & (MAX_MEMO - 1)) {
        const cfg_t *m = &c->memo[j].cfg;
        if (c->memo[j].tag == tag && m->mask == g->mask && m->base == g->base
            && m->ns == g->ns && memcmp(m->s, g->s, (size_t)g->ns * sizeof *g->s) == 0)
            return 0;
    }
    if (++c->memo_used > MAX_MEMO / 2)
        return -1;
    c->memo[j].tag = tag;
    c->memo[j].cfg = *g;
    return 1;
}

/* The smallest ret of the ops not linearized: an op may go next iff it was called before. */
static uint64_t min_ret_of(const search_t *c, const op_t *ops, int n, const cfg_t *g)
{
    uint64_t min_ret = g->base + WINDOW < n ? c->sufmin[g->base + WINDOW] : UINT64_MAX;
    for (int k = 0; k < WINDOW && g->base + k < n; k++)
        if (!(g->mask >> k & 1) && ops[g->base + k].ret < min_ret)
            min_ret = ops[g->base + k].ret;
    for (int i = 0; i < g->ns; i++)
        if (ops[g->s[i]].ret < min_ret)
            min_ret = ops[g->s[i]].ret;
    return min_ret;
}

/* Slide the window past linearized ops, leaving an op not linearized behind as a straggler
 * when ops past the window may go next; -1 if that needs too many stragglers. */
static int normalize(const search_t *c, const op_t *ops, int n, cfg_t *g)
{
    for (;;) {
        for (; g->mask & 1; g->mask >>= 1)
            g->base++;
        if (g->base + WINDOW >= n || ops[g->base + WINDOW].call > min_ret_of(c, ops, n, g))
            return 0;
        if (g->ns == MAX_STRAGGLERS)
            return -1;
        g->s[g->ns++] = (uint32_t)g->base;
        g->mask |= 1;
    }
}

static int search(search_t *c, const op_t *ops, int n, const cfg_t *g, int sid);

/* Linearize op i from configuration g into state next, then search on. */
static int advance(search_t *c, const op_t *ops, int n, const cfg_t *g, int i,
                   const state_t *next)
{
    cfg_t h = *g;
    if (i < h.base) {             /* a straggler */
        int at = 0;
        while (h.s[at] != (uint32_t)i)
            at++;
        memmove(&h.s[at], &h.s[at + 1], (size_t)(h.ns - at - 1) * sizeof *h.s);
        h.s[--h.ns] = 0;
    } else {
        h.mask |= 1ull << (i - h.base);
    }
    int nid = intern(c, next);
    if (nid < 0 || normalize(c, ops, n, &h) < 0)
        return -1;
    int fresh = memo_add(c, &h, nid);
    return fresh < 0 ? -1 : fresh ? search(c, ops, n, &h, nid) : 0;
}

/* The candidates of g (the ops that may go next), stragglers first, into out; their count. */
static int candidates(const search_t *c, const op_t *ops, int n, const cfg_t *g, int *out)
{
    uint64_t min_ret = min_ret_of(c, ops, n, g);
    int count = 0;
    for (int i = 0; i < g->ns; i++)
        if (ops[g->s[i]].call <= min_ret)
            out[count++] = (int)g->s[i];
    for (int k = 0; k < WINDOW && g->base + k < n && ops[g->base + k].call <= min_ret; k++)
        if (!(g->mask >> k & 1))
            out[count++] = g->base + k;
    return count;
}

/* Depth-first search from (g, sid); marks the reachable end states in c->ends. -1: too big.
 * A candidate that keeps the state goes first alone (moving it first keeps every order valid,
 * and ends alike). */
static int search(search_t *c, const op_t *ops, int n, const cfg_t *g, int sid)
{
    if (g->base >= n && g->ns == 0) {
        c->ends[sid] = 1;
        return 0;
    }
    int next_ops[WINDOW + MAX_STRAGGLERS];
    int count = candidates(c, ops, n, g, next_ops);
    state_t next;
    for (int j = 0; j < count; j++)
        if (keeps_state(ops[next_ops[j]].action)
            && segment_step(&c->interned[sid], &ops[next_ops[j]], &next))
            return advance(c, ops, n, g, next_ops[j], &next);
    for (int j = 0; j < count; j++)
        if (segment_step(&c->interned[sid], &ops[next_ops[j]], &next)
            && advance(c, ops, n, g, next_ops[j], &next) < 0)
            return -1;
    return 0;
}

search_t *search_new(void)
{
    search_t *c = calloc(1, sizeof *c);
    if (c != NULL && (c->memo = calloc(MAX_MEMO, sizeof *c->memo)) == NULL) {
        free(c);
        c = NULL;
    }
    return c;
}

void search_free(search_t *c)
{
    if (c != NULL) {
        free(c->memo);
        free(c->sufmin);
        free(c);
    }
}

/* A new memo generation (no clearing), and the suffix minima of the rets. */
static int prepare(search_t *c, const op_t *ops, int n)
{
    c->ninterned = 0;
    c->memo_used = 0;
    if (++c->generation >= 1u << 24) {
        memset(c->memo, 0, MAX_MEMO * sizeof *c->memo);
        c->generation = 1;
    }
    memset(c->ends, 0, sizeof c->ends);
    if ((size_t)n + 1 > c->sufcap) {
        uint64_t *sufmin = realloc(c->sufmin, ((size_t)n + 1) * sizeof *sufmin);
        if (sufmin == NULL)
            return 0;
        c->sufmin = sufmin;
        c->sufcap = (size_t)n + 1;
    }
    c->sufmin[n] = UINT64_MAX;
    for (int i = n - 1; i >= 0; i--)
        c->sufmin[i] = ops[i].ret < c->sufmin[i + 1] ? ops[i].ret : c->sufmin[i + 1];
    return 1;
}

int segment_ends(search_t *c, const state_t *starts, int nstarts, const op_t *ops, int n,
                 state_t *ends)
{
    if (n > MAX_SEGMENT || !prepare(c, ops, n))
        return -1;
    for (int i = 0; i < nstarts; i++) {
        int sid = intern(c, &starts[i]);
        cfg_t start = {0, 0, 0, {0}};
        if (sid < 0 || normalize(c, ops, n, &start) < 0 || memo_add(c, &start, sid) < 0
            || search(c, ops, n, &start, sid) < 0)
            return -1;
    }
    int count = 0;
    for (int i = 0; i < c->ninterned; i++) {
        if (!c->ends[i])
            continue;
        if (count == MAX_STATES)
            return -2;
        ends[count++] = c->interned[i];
    }
    return count;
}
