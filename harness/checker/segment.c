/* psa-stress checker core: the exact search of one key's segment (the rules: rules.c): every
 * real-time-respecting order of its ops, from every start state. Depth first with an explicit
 * stack, so a segment may hold any number of ops (a hot key's); a memo of (linearized ops,
 * state) configurations that overwrites old entries when its probe run is full (forgetting
 * costs only time: a configuration searched twice ends alike); a budget of steps that grows with
 * the segment. Single-threaded; no locks. */
#include "checker_core.h"
#include "segment.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW 64             /* ops that may be linearized ahead of the first pending one */
#define MEMO_BITS 17          /* configurations remembered: 1 << MEMO_BITS */
#define MEMO_PROBES 4
#define MAX_STRAGGLERS 16     /* ops left behind the window, not linearized yet */
#define MAX_INTERNED (1u << 16)     /* distinct states met inside one segment */
#define BUDGET_BASE (1u << 19)      /* steps of one segment's search: this, plus ... */
#define BUDGET_PER_OP 64            /* ... this per op */

/* A search configuration: the ops linearized are those before base except the stragglers
 * s[0..ns-1], and the ops base+k with bit k of mask; all ops from base+WINDOW on are not. */
typedef struct {
    int base, ns;
    uint64_t mask;
    uint32_t s[MAX_STRAGGLERS];
} cfg_t;

struct memo {
    uint32_t generation, sid;     /* generation 0: empty */
    cfg_t cfg;
};

typedef struct {
    cfg_t cfg;
    uint32_t sid;
    int next;                     /* 0: not visited yet; else 1 + the next candidate to try */
} frame_t;

struct search {
    state_t *interned;            /* the states met in this segment, by id */
    uint8_t *ends;                /* ends[id]: a complete order ends in that state */
    uint32_t ninterned, capinterned;
    uint64_t *table;              /* tablegen << 32 | (id + 1), by the state's hash */
    uint32_t tablecap, tablegen;
    frame_t *stack;
    size_t depth, stackcap;
    uint64_t *sufmin;             /* sufmin[i]: smallest ret of ops i.. of the segment */
    size_t sufcap;
    struct memo *memo;
    uint32_t generation;
    uint64_t steps, budget;
    int deepest, culprit;         /* the deepest configuration an op could not extend */
};

/* ---- interned states: a hash table over the states of this segment -------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001B3ull;
}

/* A hash of exactly what state_equal compares. */
static uint64_t state_hash(const state_t *s)
{
    uint64_t h = mix(0xCBF29CE484222325ull, (uint64_t)s->present << 16 | s->ndescs);
    for (int i = 0; i < s->ndescs; i++) {
        const desc_t *d = &s->descs[i];
        h = mix(mix(mix(h, (uint64_t)d->lifetime << 32 | d->key),
                    (uint64_t)d->type << 32 | d->alg),
                (uint64_t)(uint32_t)d->bits << 32 | (uint64_t)d->matlen << 16 | d->unknown);
        for (int u = 0; u < d->nusages; u++)
            h = mix(h, d->usages[u]);
        for (int b = 0; d->matlen != MATERIAL_UNKNOWN && b < d->matlen; b++)
            h = mix(h, d->mat[b]);
    }
    return h ^ h >> 31;
}

static int table_put(search_t *c, uint64_t h, uint32_t id)
{
    size_t j = h & (c->tablecap - 1);
    while (c->table[j] >> 32 == c->tablegen)
        j = (j + 1) & (c->tablecap - 1);
    c->table[j] = (uint64_t)c->tablegen << 32 | (id + 1);
    return 1;
}

/* Room for the states' arrays and a table at most half full; 0 if out of memory. */
static int intern_room(search_t *c)
{
    if (c->ninterned == c->capinterned) {
        uint32_t cap = c->capinterned ? 2 * c->capinterned : 64;
        state_t *states = realloc(c->interned, cap * sizeof *states);
        if (states != NULL)
            c->interned = states;
        uint8_t *ends = realloc(c->ends, cap);
        if (ends != NULL)
            c->ends = ends;
        if (states == NULL || ends == NULL)
            return 0;
        c->capinterned = cap;
    }
    if (2 * (c->ninterned + 1) <= c->tablecap)
        return 1;
    uint32_t cap = c->tablecap ? 2 * c->tablecap : 256;
    uint64_t *table = calloc(cap, sizeof *table);
    if (table == NULL)
        return 0;
    free(c->table);
    c->table = table;
    c->tablecap = cap;
    c->tablegen = 1;
    for (uint32_t id = 0; id < c->ninterned; id++)
        table_put(c, state_hash(&c->interned[id]), id);
    return 1;
}

/* The id of state s in this segment (a new one if unseen); -1 if too many or out of memory. */
static int intern(search_t *c, const state_t *s)
{
    uint64_t h = state_hash(s);
    for (size_t j = h & (c->tablecap - 1); c->table[j] >> 32 == c->tablegen;
         j = (j + 1) & (c->tablecap - 1)) {
        uint32_t id = (uint32_t)c->table[j] - 1;
        if (state_equal(&c->interned[id], s))
            return (int)id;
    }
    if (c->ninterned == MAX_INTERNED || !intern_room(c))
        return -1;
    uint32_t id = c->ninterned++;
    state_copy(&c->interned[id], s);
    c->ends[id] = 0;
    table_put(c, h, id);
    return (int)id;
}

/* ---- the memo of configurations --------------------------------------------------------- */

static int cfg_equal(const cfg_t *a, const cfg_t *b)
{
    return a->mask == b->mask && a->base == b->base && a->ns == b->ns
        && memcmp(a->s, b->s, (size_t)a->ns * sizeof *a->s) == 0;
}

/* 1 if (g, sid) was not remembered (and now is), 0 if it was. */
static int memo_add(search_t *c, const cfg_t *g, uint32_t sid)
{
    uint64_t h = g->mask ^ (uint64_t)sid << 40 ^ (uint64_t)g->base << 20 ^ (uint64_t)g->ns;
    for (int i = 0; i < g->ns; i++)
        h = h * 31 + g->s[i];
    size_t j = (size_t)((h * 0x9E3779B97F4A7C15ull) >> (64 - MEMO_BITS)), victim = j;
    for (int p = 0; p < MEMO_PROBES; p++, j = (j + 1) & ((1u << MEMO_BITS) - 1)) {
        const struct memo *m = &c->memo[j];
        if (m->generation != c->generation) {
            victim = j;
            break;
        }
        if (m->sid == sid && cfg_equal(&m->cfg, g))
            return 0;
    }
    c->memo[victim] = (struct memo){ c->generation, sid, *g };
    return 1;
}

/* ---- configurations ----------------------------------------------------------------------- */

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

/* Op i goes next from configuration g, into state next: the configuration it leads to in *h
 * and *sid. 1 if it is new, 0 if remembered, -1 if the search is too big. */
static int advance(search_t *c, const op_t *ops, int n, const cfg_t *g, int i,
                   const state_t *next, cfg_t *h, uint32_t *sid)
{
    *h = *g;
    if (i < h->base) {            /* a straggler */
        int at = 0;
        while (h->s[at] != (uint32_t)i)
            at++;
        memmove(&h->s[at], &h->s[at + 1], (size_t)(h->ns - at - 1) * sizeof *h->s);
        h->s[--h->ns] = 0;
    } else {
        h->mask |= 1ull << (i - h->base);
    }
    int id = intern(c, next);
    if (id < 0 || normalize(c, ops, n, h) < 0 || ++c->steps > c->budget)
        return -1;
    *sid = (uint32_t)id;
    return memo_add(c, h, *sid);
}

/* Op i cannot go next from g: remember it if no deeper configuration was blocked. */
static void blocked(search_t *c, const cfg_t *g, int i)
{
    int depth = g->base - g->ns + __builtin_popcountll(g->mask);
    if (depth > c->deepest) {
        c->deepest = depth;
        c->culprit = i;
    }
}

static int push(search_t *c, const cfg_t *g, uint32_t sid)
{
    if (c->depth == c->stackcap) {
        size_t cap = c->stackcap ? 2 * c->stackcap : 256;
        frame_t *stack = realloc(c->stack, cap * sizeof *stack);
        if (stack == NULL)
            return 0;
        c->stack = stack;
        c->stackcap = cap;
    }
    c->stack[c->depth++] = (frame_t){ *g, sid, 0 };
    return 1;
}

/* The greedy move of the frame's first visit: a candidate that keeps the state goes first
 * alone (moving it first keeps every order valid, and ends alike). 1 if it moved (the frame is
 * replaced, or popped when remembered), 0 if no candidate keeps the state, -1: too big. */
static int greedy(search_t *c, const op_t *ops, int n, frame_t *f, const int *next_ops,
                  int count)
{
    state_t next;
    for (int j = 0; j < count; j++) {
        if (!keeps_state(ops[next_ops[j]].action))
            continue;
        if (!segment_step(&c->interned[f->sid], &ops[next_ops[j]], &next)) {
            blocked(c, &f->cfg, next_ops[j]);
            continue;
        }
        cfg_t h;
        uint32_t sid;
        int fresh = advance(c, ops, n, &f->cfg, next_ops[j], &next, &h, &sid);
        if (fresh > 0) {
            f->cfg = h;
            f->sid = sid;
        } else if (fresh == 0) {
            c->depth--;
        }
        return fresh < 0 ? -1 : 1;
    }
    return 0;
}

/* Depth first from the stack's frames; marks the reachable end states in c->ends. -1: too
 * big or out of memory. */
static int run(search_t *c, const op_t *ops, int n)
{
    int next_ops[WINDOW + MAX_STRAGGLERS];
    state_t next;
    while (c->depth > 0) {
        frame_t *f = &c->stack[c->depth - 1];
        if (f->cfg.base >= n && f->cfg.ns == 0) {
            c->ends[f->sid] = 1;
            c->depth--;
            continue;
        }
        int count = candidates(c, ops, n, &f->cfg, next_ops), j;
        if (f->next == 0) {
            int moved = greedy(c, ops, n, f, next_ops, count);
            if (moved != 0) {
                if (moved < 0)
                    return -1;
                continue;
            }
            f->next = 1;
        }
        for (j = f->next - 1; j < 2 * count; j++) {   /* move j: candidate j / 2, its next
                                                          state j % 2 (an alternative) */
            const op_t *op = &ops[next_ops[j / 2]];
            if (j % 2 ? segment_alternative(&c->interned[f->sid], op, &next)
                      : segment_step(&c->interned[f->sid], op, &next))
                break;
            if (j % 2 == 0)
                blocked(c, &f->cfg, next_ops[j / 2]);
        }
        if (j == 2 * count) {
            c->depth--;
            continue;
        }
        f->next = j + 2;
        cfg_t h;
        uint32_t sid;
        int fresh = advance(c, ops, n, &f->cfg, next_ops[j / 2], &next, &h, &sid);
        if (fresh < 0 || (fresh > 0 && !push(c, &h, sid)))
            return -1;
    }
    return 0;
}

search_t *search_new(void)
{
    search_t *c = calloc(1, sizeof *c);
    if (c != NULL && (c->memo = calloc(1u << MEMO_BITS, sizeof *c->memo)) == NULL) {
        free(c);
        c = NULL;
    }
    return c;
}

void search_free(search_t *c)
{
    if (c != NULL) {
        free(c->memo);
        free(c->interned);
        free(c->ends);
        free(c->table);
        free(c->stack);
        free(c->sufmin);
        free(c);
    }
}

/* New memo and table generations (no clearing), the budget, and the suffix minima. */
static int prepare(search_t *c, const op_t *ops, int n)
{
    c->ninterned = 0;
    c->depth = 0;
    c->steps = 0;
    c->budget = BUDGET_BASE + (uint64_t)BUDGET_PER_OP * (uint64_t)n;
    c->deepest = c->culprit = -1;
    if (++c->generation == 0) {
        memset(c->memo, 0, (1u << MEMO_BITS) * sizeof *c->memo);
        c->generation = 1;
    }
    if (++c->tablegen == 0 && c->table != NULL) {
        memset(c->table, 0, c->tablecap * sizeof *c->table);
        c->tablegen = 1;
    }
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
    return c->tablecap > 0 || intern_room(c);
}

int segment_ends(search_t *c, const state_t *starts, int nstarts, const op_t *ops, int n,
                 state_t *ends)
{
    if (!prepare(c, ops, n))
        return -1;
    for (int i = 0; i < nstarts; i++) {
        int sid = intern(c, &starts[i]);
        cfg_t start = {0, 0, 0, {0}};
        if (sid < 0 || normalize(c, ops, n, &start) < 0)
            return -1;
        if (memo_add(c, &start, (uint32_t)sid) && (!push(c, &start, (uint32_t)sid)
                                                   || run(c, ops, n) < 0))
            return -1;
    }
    int count = 0;
    for (uint32_t i = 0; i < c->ninterned; i++) {
        if (!c->ends[i])
            continue;
        if (count == MAX_STATES)
            return -2;
        state_copy(&ends[count++], &c->interned[i]);
    }
    return count;
}

int segment_culprit(const search_t *c)
{
    return c->culprit;
}
