/* psa-stress checker core: an ACCEPT-ONLY fast path of the history checker (scenarios/check.py).
 *
 * It reads a complete binary history (docs/history-format.md "Binary form"), merges the thread
 * files by call stamp, validates them as scenarios/history_binary.py does, and checks each key id's
 * sub-history for linearizability against the register part of the model (scenarios/model.py):
 * import, generate, destroy, export, get_attributes. It answers 1 ("ok": every key linearizable)
 * or 0 ("undecided", with a reason): anything it does not cover (another operation, a pending
 * call, a status outside the table, a static problem, a violation, a segment too big) is
 * undecided, and Python then checks the history itself. Explanations always come from Python.
 *
 * Which (operation, status) pairs mean which rule is computed by Python from model.py's tables
 * (scenarios/fast_check.py) and passed in; this file implements the rules themselves.
 *
 * Per key: ops are cut at quiescent points (no op of the key in flight) into segments; the key
 * carries the exact set of states its closed segments can end in, and each segment maps it to
 * the set of end states of every real-time-respecting order (segment.c). Single-threaded; no
 * locks. */
#define _POSIX_C_SOURCE 200809L   /* posix_madvise */
#include "checker_core.h"
#include "segment.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define VOLATILE_MIN 0x40000000u
#define VOLATILE_MAX 0x7FFFFFFFu
#define USER_MIN 1u
#define USER_MAX 0x3FFFFFFFu

enum field { F_CALL, F_RET, F_SEQ, F_THREAD, F_OP, F_STATUS, F_KEY, F_OUT_KEY, F_LIFETIME,
             F_ID, F_TYPE, F_BITS, F_USAGE, F_ALG, F_MATERIAL, F_MATERIAL_LEN, F_COUNT };

typedef struct {
    uint32_t id;
    uint8_t used;
    uint8_t nstates;
    uint64_t horizon;     /* largest ret of the open segment */
    state_t states[1];    /* first state inline; more in extra */
    state_t *extra;
    op_t *ops;
    uint32_t nops, cap;
} key_t_;

typedef struct {
    const uint8_t *base, *end;    /* committed records */
    uint64_t call;                /* call stamp of the current record */
} cursor_t;

typedef struct {
    const int64_t *cfg;
    uint32_t offsets[F_COUNT], sizes[F_COUNT];
    int32_t action_status[CORE_MAX_ACTIONS];
    uint8_t action_op[CORE_MAX_ACTIONS], action_code[CORE_MAX_ACTIONS];
    int nactions;
    key_t_ *keys;
    size_t nkeys, keycap;
    char *why;
    size_t whylen;
    search_t *search;
} core_t;


static int undecided(core_t *c, const char *what, uint64_t stamp)
{
    snprintf(c->why, c->whylen, "%s (call %llu)", what, (unsigned long long)stamp);
    return 0;
}

static uint64_t field(const core_t *c, const uint8_t *rec, int f)
{
    uint64_t v = 0;    /* little-endian host (x86-64, arm64); the status is 4 bytes */
    memcpy(&v, rec + c->offsets[f], c->sizes[f]);
    return v;
}

/* ---- the key table (open addressing over key ids) ------------------------------------ */

static key_t_ *key_get(core_t *c, uint32_t id)
{
    if (2 * (c->nkeys + 1) > c->keycap) {
        size_t cap = c->keycap ? 2 * c->keycap : 1024;
        key_t_ *keys = calloc(cap, sizeof *keys);
        if (keys == NULL)
            return NULL;
        for (size_t i = 0; i < c->keycap; i++) {
            if (!c->keys[i].used)
                continue;
            size_t j = (c->keys[i].id * 2654435761u) & (cap - 1);
            while (keys[j].used)
                j = (j + 1) & (cap - 1);
            keys[j] = c->keys[i];
        }
        free(c->keys);
        c->keys = keys;
        c->keycap = cap;
    }
    size_t j = (id * 2654435761u) & (c->keycap - 1);
    while (c->keys[j].used && c->keys[j].id != id)
        j = (j + 1) & (c->keycap - 1);
    key_t_ *k = &c->keys[j];
    if (!k->used) {
        memset(k, 0, sizeof *k);
        k->used = 1;
        k->id = id;
        k->nstates = 1;          /* the initial state: ABSENT */
        c->nkeys++;
    }
    return k;
}

static state_t *key_state(key_t_ *k, int i)
{
    return i == 0 ? &k->states[0] : &k->extra[i - 1];
}

/* Replace the key's state set by the end states of its open segment. */
static int close_segment(core_t *c, key_t_ *k)
{
    int n = (int)k->nops;
    k->nops = 0;
    state_t next, starts[MAX_STATES], ends[MAX_STATES];
    if (n == 1 && k->nstates == 1) {        /* the common case: one op, one state */
        if (!segment_step(&k->states[0], &k->ops[0], &next))
            return undecided(c, "an op is illegal in the key's state", k->ops[0].call);
        k->states[0] = next;
        return 1;
    }
    for (int i = 0; i < k->nstates; i++)
        starts[i] = *key_state(k, i);
    int count = segment_ends(c->search, starts, k->nstates, k->ops, n, ends);
    if (count <= 0)
        return undecided(c, count == 0 ? "a segment has no linearization"
                            : count == -1 ? "a segment too big to search"
                            : "too many possible states", k->ops[0].call);
    if (count > 1 && k->extra == NULL && !(k->extra = malloc((MAX_STATES - 1) * sizeof(state_t))))
        return undecided(c, "out of memory", k->ops[0].call);
    k->nstates = (uint8_t)count;
    for (int i = 0; i < count; i++)
        *key_state(k, i) = ends[i];
    return 1;
}

static int add_op(core_t *c, uint32_t id, const op_t *op)
{
    key_t_ *k = key_get(c, id);
    if (k == NULL)
        return undecided(c, "out of memory", op->call);
    if (k->nops && op->call > k->horizon && !close_segment(c, k))   /* a quiescent point */
        return 0;
    if (k->nops == k->cap) {
        uint32_t cap = k->cap ? 2 * k->cap : 2;
        op_t *ops = realloc(k->ops, cap * sizeof *ops);
        if (ops == NULL)
            return undecided(c, "out of memory", op->call);
        k->ops = ops;
        k->cap = cap;
    }
    k->ops[k->nops++] = *op;
    if (op->ret > k->horizon || k->nops == 1)
        k->horizon = op->ret;
    return 1;
}

/* ---- records -> per-key ops (model._key_ops and model.static_problem for these ops) ------ */

static int action_of(const core_t *c, uint64_t opcode, int64_t status)
{
    for (int i = 0; i < c->nactions; i++)
        if (c->action_op[i] == opcode && c->action_status[i] == status)
            return c->action_code[i];
    return CORE_UNDECIDED;
}

static void read_attrs(const core_t *c, const uint8_t *rec, state_t *s)
{
    s->present = 1;
    s->lifetime = (uint32_t)field(c, rec, F_LIFETIME);
    s->key = (uint32_t)field(c, rec, F_ID);
    s->type = (uint32_t)field(c, rec, F_TYPE);
    s->bits = (int32_t)field(c, rec, F_BITS);
    s->usage = (uint32_t)field(c, rec, F_USAGE);
    s->alg = (uint32_t)field(c, rec, F_ALG);
}

static uint16_t material_len(const core_t *c, const uint8_t *rec)
{
    uint64_t len = field(c, rec, F_MATERIAL_LEN);
    return (uint16_t)(len < c->sizes[F_MATERIAL] ? len : c->sizes[F_MATERIAL]);
}

/* The description a successful create gives key (model._plain_desc); 0 on a static problem
 * (model._created_id_problem). */
static int create_desc(const core_t *c, const uint8_t *rec, uint32_t key, int import, op_t *op)
{
    state_t *d = &op->arg;
    read_attrs(c, rec, d);
    uint32_t requested = d->key;
    if (d->lifetime != 0 ? (requested < USER_MIN || requested > USER_MAX || key != requested)
                         : (requested != 0 || key < VOLATILE_MIN || key > VOLATILE_MAX))
        return 0;
    d->key = key;
    d->matlen = MATERIAL_UNKNOWN;
    if (import) {
        d->mat = rec + c->offsets[F_MATERIAL];
        d->matlen = material_len(c, rec);
    }
    if (d->bits == 0) {
        int raw = ((d->type & 0x7000) == 0x1000 || (d->type & 0x7000) == 0x2000)
                  && d->type != 0x2301;
        d->bits = import && raw ? 8 * d->matlen : BITS_UNKNOWN;
    }
    return 1;
}

static int feed(core_t *c, const uint8_t *rec, uint64_t call, uint64_t ret)
{
    uint64_t opcode = field(c, rec, F_OP);
    int action = action_of(c, opcode, (int32_t)(uint32_t)field(c, rec, F_STATUS));
    op_t op;
    memset(&op, 0, sizeof op);
    op.call = call;
    op.ret = ret;
    op.action = action;
    uint32_t key = (uint32_t)field(c, rec, F_KEY);
    switch (action) {
    case CORE_NOOP:
        return 1;
    case CORE_CREATE:
    case CORE_CREATE_IMPORT:
        key = (uint32_t)field(c, rec, F_OUT_KEY);
        op.action = CORE_CREATE;
        if (!create_desc(c, rec, key, action == CORE_CREATE_IMPORT, &op))
            return undecided(c, "a create returned a wrong id", call);
        break;
    case CORE_PRESENT:         /* ALREADY_EXISTS: legitimate for a persistent create only */
        if (field(c, rec, F_LIFETIME) == 0)
            return undecided(c, "a volatile create returned ALREADY_EXISTS", call);
        key = (uint32_t)field(c, rec, F_ID);
        break;
    case CORE_DESTROY:
        if (key == 0)
            return 1;          /* destroying key 0 is a successful no-op */
        break;
    case CORE_EXPORT:
        op.arg.mat = rec + c->offsets[F_MATERIAL];
        op.arg.matlen = material_len(c, rec);
        break;
    case CORE_ATTRIBUTES:
        read_attrs(c, rec, &op.arg);
        break;
    case CORE_ABSENT:
    case CORE_EXPORT_DENIED:
        break;
    default:
        return undecided(c, "an operation or status outside the fast path", call);
    }
    return add_op(c, key, &op);
}

/* ---- thread files: map, validate, merge by call stamp ---------------------------------- */

static int map_thread(core_t *c, const char *path, cursor_t *cur, void **map, size_t *len)
{
    uint64_t size = (uint64_t)c->cfg[CFG_RECORD_SIZE], page = (uint64_t)c->cfg[CFG_HEADER_PAGE];
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < page || page < 24) {
        if (fd >= 0)
            close(fd);
        return undecided(c, "a thread file is unreadable or short", 0);
    }
    *len = (size_t)st.st_size;
    *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*map == MAP_FAILED) {
        *map = NULL;
        return undecided(c, "a thread file cannot be mapped", 0);
    }
    const uint8_t *head = *map;
    uint32_t record_size;
    uint64_t committed;
    memcpy(&record_size, head + 12, 4);
    memcpy(&committed, head + 16, 8);
    if (memcmp(head, "PSATHRD1", 8) != 0 || record_size != size
        || committed > (*len - page) / size)
        return undecided(c, "a thread file has a bad header or is truncated", 0);
    posix_madvise(*map, *len, POSIX_MADV_SEQUENTIAL);
    cur->base = head + page;
    cur->end = cur->base + committed * size;
    if (cur->end + size <= head + *len && field(c, cur->end, F_CALL) != 0)
        return undecided(c, "a call is pending (run cut short)", 0);
    cur->call = cur->base < cur->end ? field(c, cur->base, F_CALL) : UINT64_MAX;
    return 1;
}

typedef struct {
    uint32_t seq;
    uint8_t seen;
    uint64_t ret;
} thread_t;

/* One record, the next by call stamp: the per-thread rules of history_binary._calls. */
static int take(core_t *c, const uint8_t *rec, thread_t *threads, uint64_t *last_call)
{
    uint64_t call = field(c, rec, F_CALL), ret = field(c, rec, F_RET);
    thread_t *t = &threads[field(c, rec, F_THREAD) & 0xFFFF];
    uint32_t seq = (uint32_t)field(c, rec, F_SEQ);
    if (call <= *last_call)
        return undecided(c, "call stamps are not unique", call);
    *last_call = call;
    if (t->seen ? (seq != t->seq + 1 || call <= t->ret) : seq != 0)
        return undecided(c, "sequence or stamps out of order", call);
    if (ret == 0)
        return undecided(c, "a committed record has no ret (pending)", call);
    if (ret <= call)
        return undecided(c, "call >= ret", call);
    t->seen = 1;
    t->seq = seq;
    t->ret = ret;
    return feed(c, rec, call, ret);
}

static int merge(core_t *c, cursor_t *cur, int n, int64_t *calls)
{
    uint64_t size = (uint64_t)c->cfg[CFG_RECORD_SIZE], last_call = 0;
    thread_t *threads = calloc(65536, sizeof *threads);
    if (threads == NULL)
        return undecided(c, "out of memory", 0);
    int ok = 1;
    for (;;) {
        int best = -1;
        for (int i = 0; i < n; i++)       /* few threads: a linear scan beats a heap */
            if (cur[i].call != UINT64_MAX && (best < 0 || cur[i].call < cur[best].call))
                best = i;
        if (best < 0)
            break;
        ok = take(c, cur[best].base, threads, &last_call);
        if (!ok)
            break;
        ++*calls;
        cur[best].base += size;
        cur[best].call = cur[best].base < cur[best].end ? field(c, cur[best].base, F_CALL)
                                                         : UINT64_MAX;
    }
    free(threads);
    return ok;
}

/* ---- configuration and the entry point --------------------------------------------------- */

static int configure(core_t *c, const int64_t *cfg, int ncfg)
{
    if (ncfg < CFG_ACTIONS || cfg[CFG_VERSION] != CORE_VERSION || cfg[CFG_RECORD_SIZE] <= 0)
        return undecided(c, "bad configuration", 0);
    for (int f = 0; f < F_COUNT; f++) {    /* types are checked by Python; sizes here */
        c->offsets[f] = (uint32_t)cfg[CFG_FIELDS + 2 * f];
        c->sizes[f] = (uint32_t)cfg[CFG_FIELDS + 2 * f + 1];
        uint32_t size = c->sizes[f];
        int fits = f == F_MATERIAL ? size >= 1 && size <= 255
                 : f == F_STATUS ? size == 4 : size == 1 || size == 2 || size == 4 || size == 8;
        if (!fits || (uint64_t)c->offsets[f] + size > (uint64_t)cfg[CFG_RECORD_SIZE])
            return undecided(c, "bad field in configuration", 0);
    }
    c->nactions = (ncfg - CFG_ACTIONS) / 3;
    if (c->nactions > CORE_MAX_ACTIONS)
        return undecided(c, "too many actions", 0);
    for (int i = 0; i < c->nactions; i++) {
        const int64_t *a = &cfg[CFG_ACTIONS + 3 * i];
        c->action_op[i] = (uint8_t)a[0];
        c->action_status[i] = (int32_t)a[1];
        c->action_code[i] = (uint8_t)a[2];
    }
    c->search = search_new();
    if (c->search == NULL)
        return undecided(c, "out of memory", 0);
    return 1;
}

static int finish(core_t *c)
{
    for (size_t i = 0; i < c->keycap; i++)
        if (c->keys[i].used && c->keys[i].nops && !close_segment(c, &c->keys[i]))
            return 0;
    return 1;
}

int core_check(const int64_t *cfg, int ncfg, const char *const *paths, int npaths,
               int64_t records, int64_t *out, char *why, size_t whylen)
{
    core_t c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.why = why;
    c.whylen = whylen;
    why[0] = '\0';
    out[0] = out[1] = 0;
    cursor_t *cur = calloc((size_t)npaths + 1, sizeof *cur);
    void **maps = calloc((size_t)npaths + 1, sizeof *maps);
    size_t *lens = calloc((size_t)npaths + 1, sizeof *lens);
    int ok = cur && maps && lens ? configure(&c, cfg, ncfg) : undecided(&c, "out of memory", 0);
    for (int i = 0; ok && i < npaths; i++)
        ok = map_thread(&c, paths[i], &cur[i], &maps[i], &lens[i]);
    ok = ok && merge(&c, cur, npaths, &out[0]) && finish(&c);
    if (ok && out[0] != records)
        ok = undecided(&c, "end.json's record count differs from the thread files", 0);
    out[1] = (int64_t)c.nkeys;
    for (int i = 0; maps && i < npaths; i++)
        if (maps[i] != NULL)
            munmap(maps[i], lens[i]);
    for (size_t i = 0; i < c.keycap; i++) {
        free(c.keys[i].ops);
        free(c.keys[i].extra);
    }
    free(c.keys);
    search_free(c.search);
    free(cur);
    free(maps);
    free(lens);
    return ok;
}
