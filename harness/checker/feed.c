/* psa-stress checker core: records -> per-key ops (operations.key_ops and the value checks of
 * operations.static_problem), the key table and its segments, and the copies waiting for their
 * sources to be resolved (streaming.StreamCheck, in C). Single-threaded; no locks. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define VOLATILE_MIN 0x40000000u
#define VOLATILE_MAX 0x7FFFFFFFu
#define USER_MIN 1u
#define USER_MAX 0x3FFFFFFFu
#define SWEEP 4096             /* records between two sweeps (at least) */
#define SALT_LEN 16

/* ---- the key table (open addressing over key ids, linear probing) ----------------------- */

static size_t home_of(const core_t *c, uint32_t id)
{
    return (id * 2654435761u) & (c->keycap - 1);
}

static size_t slot_of(const core_t *c, uint32_t id)
{
    size_t j = home_of(c, id);
    while (c->keys[j].used && c->keys[j].id != id)
        j = (j + 1) & (c->keycap - 1);
    return j;
}

static int keys_grow(core_t *c)
{
    size_t cap = c->keycap ? 2 * c->keycap : 1024, old = c->keycap;
    key_t_ *keys = calloc(cap, sizeof *keys), *was = c->keys;
    if (keys == NULL)
        return 0;
    c->keys = keys;
    c->keycap = cap;
    for (size_t i = 0; i < old; i++)
        if (was[i].used)
            keys[slot_of(c, was[i].id)] = was[i];
    free(was);
    return 1;
}

/* The key's entry, created (ABSENT) if new; NULL if out of memory. Moves every entry. */
static key_t_ *key_get(core_t *c, uint32_t id)
{
    if (2 * (c->nkeys + 1) > c->keycap && !keys_grow(c))
        return NULL;
    key_t_ *k = &c->keys[slot_of(c, id)];
    if (!k->used) {
        if (!seen_add(c, id))
            return NULL;
        memset(k, 0, sizeof *k);
        k->used = 1;
        k->id = id;
        k->nstates = 1;          /* the initial state: ABSENT */
        c->nkeys++;
    }
    return k;
}

static key_t_ *key_find(const core_t *c, uint32_t id)
{
    key_t_ *k = c->keycap ? &c->keys[slot_of(c, id)] : NULL;
    return k != NULL && k->used ? k : NULL;
}

/* Room for one more item in a growable array of n items; 0 if out of memory. */
static int room(void **items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return 1;
    size_t more_cap = *cap ? 2 * *cap : first;
    void *more = realloc(*items, more_cap * size);
    if (more == NULL)
        return 0;
    *items = more;
    *cap = more_cap;
    return 1;
}

static int list_push(idlist_t *l, uint32_t id)
{
    if (!room((void **)&l->ids, l->n, &l->cap, sizeof *l->ids, 1024))
        return 0;
    l->ids[l->n++] = id;
    return 1;
}

/* Put the key in the list `which` (LISTED_*) unless it is there; 0 if out of memory. */
static int key_list(core_t *c, key_t_ *k, uint8_t which)
{
    if (k->listed & which)
        return 1;
    k->listed |= which;
    return list_push(which == LISTED_OPEN ? &c->open : &c->dirty, k->id);
}

/* The key's i-th possible state (a key never given one is ABSENT). */
static const state_t *key_state(const key_t_ *k, int i)
{
    static const state_t absent;
    return k->states != NULL ? &k->states[i] : &absent;
}

/* A key ABSENT for sure, with nothing open and nothing a future copy may read, is exactly a
 * key never seen: forget it (backward-shift deletion keeps every probe sequence intact). */
static int forgettable(const key_t_ *k)
{
    return k != NULL && !k->listed && !k->violated && k->nops == 0 && k->nstates == 1
        && !key_state(k, 0)->present
        && k->sources.ncreates == 0 && k->sources.nkillers == 0;
}

static void key_forget(core_t *c, size_t i)
{
    free(c->keys[i].ops);
    free(c->keys[i].states);
    sources_free(&c->keys[i].sources);
    c->nkeys--;
    for (size_t j = i;; i = j) {
        c->keys[i].used = 0;
        for (;;) {
            j = (j + 1) & (c->keycap - 1);
            if (!c->keys[j].used)
                return;
            size_t home = home_of(c, c->keys[j].id);   /* may j move back to the hole i? */
            if (j > i ? home <= i || home > j : home <= i && home > j)
                break;
        }
        c->keys[i] = c->keys[j];
    }
}

static sources_t *sources_of(void *ctx, uint32_t id)
{
    key_t_ *k = key_find(ctx, id);
    return k != NULL ? &k->sources : NULL;
}

/* The key's possible states become states[0..count-1]; 0 if out of memory. */
static int set_states(key_t_ *k, const state_t *states, int count)
{
    if (k->states == NULL && count == 1 && !states[0].present)
        return 1;                 /* still ABSENT */
    if (count > k->capstates) {
        uint8_t cap = count > 1 ? MAX_STATES : 1;
        state_t *more = realloc(k->states, cap * sizeof *more);
        if (more == NULL)
            return 0;
        k->states = more;
        k->capstates = cap;
    }
    for (int i = 0; i < count; i++)
        state_copy(&k->states[i], &states[i]);
    k->nstates = (uint8_t)count;
    return 1;
}

static void release_creates(core_t *c, const op_t *ops, int n)
{
    for (int i = 0; i < n; i++)
        if (ops[i].action == CORE_CREATE)
            inst_release(&c->src, ops[i].inst);
}

/* Replace the key's state set by the end states of its open segment. */
static int close_segment(core_t *c, key_t_ *k)
{
    int n = (int)k->nops, count;
    k->nops = 0;
    state_t ends[MAX_STATES];
    if (unbound_use(key_state(k, 0), k->nstates, k->ops, n)
        && !sources_weaken(&c->src, k->id, WEAK_UNBOUND_USE))
        return undecided(c, "out of memory", k->ops[0].call);
    if (n == 1 && k->nstates == 1 && k->ops[0].action != CORE_DESTROY_MAYBE)   /* most */
        count = segment_step(key_state(k, 0), &k->ops[0], &ends[0]);
    else
        count = segment_ends(c->search, key_state(k, 0), k->nstates, k->ops, n, ends);
    release_creates(c, k->ops, n);
    if (count == 0) {             /* the culprit: the op the deepest search could not take */
        int at = n == 1 && k->nstates == 1 ? 0 : segment_culprit(c->search);
        k->violated = 1;
        return violation(c, k->id, VIOLATION_LINEARIZABILITY, &k->ops[at < 0 ? 0 : at],
                         k->horizon);
    }
    if (count < 0)
        return undecided(c, count == -1 ? "a segment too big to search"
                            : "too many possible states", k->ops[0].call);
    return set_states(k, ends, count) ? 1 : undecided(c, "out of memory", k->ops[0].call);
}

static int add_op(core_t *c, key_t_ *k, const op_t *op)
{
    if (k->nops && op->call > k->horizon && !close_segment(c, k))   /* a quiescent point */
        return 0;
    if (k->violated) {            /* decided: its creates and destroys count only as sources */
        if (op->action == CORE_CREATE)
            inst_release(&c->src, op->inst);
        return 1;
    }
    if (k->nops == k->cap) {
        uint32_t cap = k->cap ? 2 * k->cap : 2;
        op_t *ops = realloc(k->ops, cap * sizeof *ops);
        if (ops == NULL)
            return undecided(c, "out of memory", op->call);
        k->ops = ops;
        k->cap = cap;
    }
    k->ops[k->nops] = *op;
    k->ops[k->nops].opcode = c->opcode;
    k->ops[k->nops++].status = c->status;
    if (op->ret > k->horizon || k->nops == 1)
        k->horizon = op->ret;
    return key_list(c, k, LISTED_OPEN) ? 1 : undecided(c, "out of memory", op->call);
}

/* ---- copies: resolved once the stream passes their ret ----------------------------------- */

static int heap_push(core_t *c, inst_t *inst)
{
    if (!room((void **)&c->copies, c->ncopies, &c->copycap, sizeof *c->copies, 64))
        return 0;
    size_t i = c->ncopies++;
    for (; i > 0 && c->copies[(i - 1) / 2]->ret > inst->ret; i = (i - 1) / 2)
        c->copies[i] = c->copies[(i - 1) / 2];
    c->copies[i] = inst;
    inst->refs++;                 /* held until resolved */
    return 1;
}

static inst_t *heap_pop(core_t *c)
{
    inst_t *top = c->copies[0], *last = c->copies[--c->ncopies];
    size_t i = 0, n = c->ncopies;
    for (size_t child; (child = 2 * i + 1) < n; i = child) {
        if (child + 1 < n && c->copies[child + 1]->ret < c->copies[child]->ret)
            child++;
        if (c->copies[child]->ret >= last->ret)
            break;
        c->copies[i] = c->copies[child];
    }
    if (n > 0)
        c->copies[i] = last;
    return top;
}

/* Resolve the copies that returned before the stream's position (every candidate source
 * create has then been read). */
static int resolve_until(core_t *c, uint64_t position)
{
    c->src.position = position;
    while (c->ncopies > 0 && c->copies[0]->ret < position) {
        inst_t *inst = heap_pop(c);
        uint32_t conflicts = c->src.conflicts;
        int ok = inst_resolve(&c->src, inst);
        inst_release(&c->src, inst);
        if (!ok)
            return undecided(c, c->src.full ? CORE_FULL_STATE
                                : "a copy, derivation or export the fast path does not resolve",
                             inst->call);
        if (c->src.conflicts != conflicts
            && !violation(c, inst->plain.key, VIOLATION_MATERIAL, NULL, position))
            return 0;
    }
    return 1;
}

/* No copy still to be resolved was invoked before this stamp (streaming._watermark). */
static uint64_t watermark(const core_t *c, uint64_t position)
{
    uint64_t low = position;
    for (size_t i = 0; i < c->nactive; i++) {
        const thread_t *t = &c->threads[c->active[i]];
        if (t->ret > position && t->call < low)
            low = t->call;
    }
    return low;
}

/* Keep the keys of list `which` that are still in it after `visit`; the others may be
 * forgettable. */
static int sweep_list(core_t *c, uint8_t which, uint64_t position, uint64_t low)
{
    idlist_t *l = which == LISTED_OPEN ? &c->open : &c->dirty;
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        key_t_ *k = key_find(c, l->ids[i]);
        if (which == LISTED_OPEN && k->nops && k->horizon < position && !close_segment(c, k))
            return 0;
        if (which == LISTED_DIRTY)
            sources_prune(&c->src, &k->sources, low);
        if (which == LISTED_OPEN ? k->nops > 0 : k->sources.dirty) {
            l->ids[kept++] = l->ids[i];
            continue;
        }
        if (which == LISTED_OPEN) {   /* an idle key: most stay so (a volatile id dropped) */
            free(k->ops);
            k->ops = NULL;
            k->cap = 0;
        }
        k->listed &= (uint8_t)~which;
        if (forgettable(k) && !list_push(&c->forget, k->id))
            return undecided(c, "out of memory", position);
    }
    l->n = kept;
    return 1;
}

/* Close the segments the stream has passed, prune the copy sources that gained a killer,
 * and forget the keys that are as if never seen (streaming.StreamCheck._sweep). Every SWEEP
 * records or more: amortised O(1) per record. */
static int sweep(core_t *c, uint64_t position)
{
    c->forget.n = 0;
    if (!sweep_list(c, LISTED_OPEN, position, 0)
        || !sweep_list(c, LISTED_DIRTY, position, watermark(c, position)))
        return 0;
    for (size_t i = 0; i < c->forget.n; i++) {
        key_t_ *k = key_find(c, c->forget.ids[i]);
        if (forgettable(k))
            key_forget(c, (size_t)(k - c->keys));
    }
    c->next_sweep = c->fed + (c->open.n > SWEEP ? c->open.n : SWEEP);
    return 1;
}

/* ---- records -> per-key ops ------------------------------------------------------------- */

static void read_attrs(const core_t *c, const uint8_t *rec, desc_t *d)
{
    memset(d, 0, sizeof *d);
    d->lifetime = (uint32_t)field(c, rec, F_LIFETIME);
    d->key = (uint32_t)field(c, rec, F_ID);
    d->type = (uint32_t)field(c, rec, F_TYPE);
    d->bits = (int32_t)field(c, rec, F_BITS);
    d->usages[0] = (uint32_t)field(c, rec, F_USAGE);
    d->nusages = 1;
    d->alg = (uint32_t)field(c, rec, F_ALG);
    d->matlen = MATERIAL_UNKNOWN;
}

static uint16_t material_len(const core_t *c, const uint8_t *rec)
{
    uint64_t len = field(c, rec, F_MATERIAL_LEN);
    return (uint16_t)(len < c->sizes[F_MATERIAL] ? len : c->sizes[F_MATERIAL]);
}

/* operations._created_id_problem: is the id a successful create returned the right one? */
static int created_id_ok(const core_t *c, const uint8_t *rec)
{
    uint32_t lifetime = (uint32_t)field(c, rec, F_LIFETIME);
    uint32_t requested = (uint32_t)field(c, rec, F_ID), key = (uint32_t)field(c, rec, F_OUT_KEY);
    return lifetime != 0 ? requested >= USER_MIN && requested <= USER_MAX && key == requested
                         : requested == 0 && key >= VOLATILE_MIN && key <= VOLATILE_MAX;
}

static int raw_bytes_type(uint32_t type)
{
    return ((type & 0x7000) == 0x1000 || (type & 0x7000) == 0x2000) && type != 0x2301;
}

/* key_store.plain_desc of a create into inst->plain (the material of derive_from: unknown). */
static int plain_desc(core_t *c, const uint8_t *rec, int make, inst_t *inst)
{
    desc_t *d = &inst->plain;
    read_attrs(c, rec, d);
    uint32_t usage = d->usages[0];
    d->key = (uint32_t)field(c, rec, F_OUT_KEY);
    d->nusages = 0;
    usages_add(d, extend_usage(usage));   /* psa_set_key_usage_flags extends them */
    if (make == MAKE_IMPORT) {
        d->mat = rec + c->offsets[F_MATERIAL];
        d->matlen = material_len(c, rec);
    }
    if (make == MAKE_DERIVE && raw_bytes_type(d->type) && d->bits % 8 == 0 && d->bits > 0) {
        d->mat = material_hkdf(&c->src, rec + c->offsets[F_SALT], SALT_LEN, c->secret,
                               c->secretlen, c->info, c->infolen, (size_t)d->bits / 8);
        if (d->mat == NULL)
            return 0;
        d->matlen = (uint16_t)(d->bits / 8);
    }
    if (make == MAKE_DERIVE && d->type == ECC_P256_PAIR && d->bits == 256
        && !material_p256_derived(&c->src, rec + c->offsets[F_SALT], SALT_LEN, c->secret,
                                  c->secretlen, c->info, c->infolen, d))
        return 0;
    if (d->bits == 0)
        d->bits = make == MAKE_IMPORT && raw_bytes_type(d->type) ? 8 * d->matlen : BITS_UNKNOWN;
    return 1;
}

/* A successful create of `make` kind: a new instance of its id (a candidate source of later
 * copies, and a killer of the id's earlier instances), and a CREATE op of that id. */
static int add_create(core_t *c, const uint8_t *rec, int make, uint64_t call, uint64_t ret)
{
    inst_t *inst = inst_new(&c->src);
    if (inst == NULL || !plain_desc(c, rec, make, inst))
        return undecided(c, "out of memory, or a derived key longer than HKDF allows", call);
    inst->call = call;
    inst->ret = ret;
    inst->make = (uint8_t)make;
    inst->src = (uint32_t)field(c, rec, F_KEY);
    inst->usage = (uint32_t)field(c, rec, F_USAGE);
    inst->alg = (uint32_t)field(c, rec, F_ALG);
    inst->bits = (uint32_t)field(c, rec, F_BITS);
    inst->salt = rec + c->offsets[F_SALT];
    inst->refs = 1;               /* the op's */
    if (make == MAKE_COPY || make == MAKE_DERIVE_FROM) {
        if (!heap_push(c, inst))
            return undecided(c, "out of memory", call);
    } else {
        inst->descs.present = 1;
        state_add(&inst->descs, &inst->plain);
        inst->resolved = 1;
        inst_firm(inst);
    }
    op_t op = { .call = call, .ret = ret, .action = CORE_CREATE, .created = &inst->descs,
                .inst = inst };
    key_t_ *k = key_get(c, inst->plain.key);
    if (k == NULL || !sources_add_create(&k->sources, inst)
        || !sources_add_killer(&k->sources, call, ret) || !key_list(c, k, LISTED_DIRTY))
        return undecided(c, "out of memory", call);
    uint32_t count = k->sources.ncreates;
    if (count > 8 && (count & (count - 1)) == 0)       /* at 16, 32, 64...: amortised O(1) */
        sources_prune(&c->src, &k->sources, watermark(c, call));
    return add_op(c, k, &op);
}

/* A successful export, resolved once the stream passes its ret: what it teaches about the
 * material of the instance it read (sources.c reveal). */
static int push_export(core_t *c, const op_t *op, uint32_t key)
{
    if (!room((void **)&c->reads, c->nreads, &c->readcap, sizeof *c->reads, 16))
        return 0;
    int pub = op->action != CORE_EXPORT;
    c->reads[c->nreads++] = (read_t){ op->call, op->ret, op->arg.mat, op->use.in, key,
                                      pub ? op->use.outlen : op->arg.matlen, op->use.inlen,
                                      (uint8_t)pub, op->use.kind };
    if (op->ret < c->reads_due || c->nreads == 1)
        c->reads_due = op->ret;
    return 1;
}

/* Resolve the exports that returned before the stream's position (after the copies: an
 * export's view of a candidate depends only on the stamps, sources.c loose). */
static int reveal_until(core_t *c, uint64_t position)
{
    if (c->nreads == 0 || c->reads_due >= position)
        return 1;
    size_t kept = 0;
    c->reads_due = UINT64_MAX;
    for (size_t i = 0; i < c->nreads; i++) {
        read_t *r = &c->reads[i];
        if (r->ret < position) {
            uint32_t conflicts = c->src.conflicts;
            if (!reveal(&c->src, r))
                return undecided(c, "out of memory", r->call);
            if (c->src.conflicts != conflicts
                && !violation(c, r->key, VIOLATION_MATERIAL, NULL, position))
                return 0;
        } else {
            c->reads[kept++] = *r;
            if (r->ret < c->reads_due)
                c->reads_due = r->ret;
        }
    }
    c->nreads = kept;
    return 1;
}

/* The key action of a record (its key: a copy's source) as an op of that key; a key use's
 * bytes; a multi-part MAC's op ends at its setup's ticket (model_use.key_ops). */
static int add_key_op(core_t *c, const uint8_t *rec, int action, uint64_t call, uint64_t ret,
                      uint64_t opcode)
{
    op_t op;
    memset(&op, 0, sizeof op);
    op.call = call;
    op.ret = c->uses[opcode].kind == USE_MAC_MULTIPART ? field(c, rec, F_MID) : ret;
    op.action = action;
    if (action >= CORE_USE && action <= CORE_EXPORT_PUBLIC) {      /* a key use */
        op.use = c->uses[opcode];
        op.use.in = rec + c->offsets[F_INPUT];
        op.use.inlen = (uint16_t)field(c, rec, F_INPUT_LEN);
        op.use.out = rec + c->offsets[F_MATERIAL];
        op.use.outlen = material_len(c, rec);
        if (op.use.inlen > c->sizes[F_INPUT])
            return undecided(c, "an input longer than its field", call);
        op.arg.mat = op.use.out;  /* export_public, sign, verify: narrow the instance read */
        if (action >= CORE_SIGNED && !push_export(c, &op, (uint32_t)field(c, rec, F_KEY)))
            return undecided(c, "out of memory", call);
    } else if (action == CORE_EXPORT) {
        op.arg.mat = rec + c->offsets[F_MATERIAL];
        op.arg.matlen = material_len(c, rec);
        if (!push_export(c, &op, (uint32_t)field(c, rec, F_KEY)))
            return undecided(c, "out of memory", call);
    } else if (action == CORE_ATTRIBUTES) {
        read_attrs(c, rec, &op.arg);
    }
    op.want = (uint32_t)field(c, rec, F_ALG);
    key_t_ *k = key_get(c, (uint32_t)field(c, rec, F_KEY));
    if (k == NULL || (action == CORE_DESTROY && (!sources_add_killer(&k->sources, call, ret)
                                                  || !key_list(c, k, LISTED_DIRTY))))
        return undecided(c, "out of memory", call);
    return add_op(c, k, &op);
}

/* model_use.static_problem of mac_multipart: the setup's ticket inside the call, and a failure
 * only at the setup. */
static int multipart_ok(const core_t *c, const uint8_t *rec, uint64_t call, uint64_t ret,
                        int64_t status)
{
    uint64_t mid = field(c, rec, F_MID);
    return call < mid && mid < ret && (status == 0 || field(c, rec, F_STAGE) <= 1);
}

static int variant_of(const core_t *c, const uint8_t *rec, uint64_t opcode)
{
    if (c->by_lifetime[opcode])
        return field(c, rec, F_LIFETIME) != 0 ? VARIANT_PERSISTENT_CREATE
                                               : VARIANT_VOLATILE_CREATE;
    uint32_t key = (uint32_t)field(c, rec, F_KEY);
    return key == 0 ? VARIANT_ID_ZERO
         : key >= VOLATILE_MIN && key <= VOLATILE_MAX ? VARIANT_VOLATILE_ID
         : VARIANT_PERSISTENT_ID;
}

int feed(core_t *c, const uint8_t *rec, uint64_t call, uint64_t ret)
{
    uint64_t opcode = field(c, rec, F_OP);
    int64_t status = -(int64_t)(int32_t)(uint32_t)field(c, rec, F_STATUS);
    if (opcode >= CORE_MAX_OPS || status < 0 || status > 255)
        return undecided(c, "an operation or status outside the fast path", call);
    c->opcode = (uint8_t)opcode;
    c->status = (int16_t)-status;
    unsigned entry = c->entries[opcode][variant_of(c, rec, opcode)][status];
    if (!(entry & ENTRY_VALID))
        return undecided(c, "an operation or status outside the fast path", call);
    if (!resolve_until(c, call) || !reveal_until(c, call))
        return 0;
    if (++c->fed >= c->next_sweep && !sweep(c, call))
        return 0;
    if (ENTRY_CHECK(entry) == CHECK_CREATED_ID && !created_id_ok(c, rec))
        return undecided(c, "a create returned a wrong id", call);
    if (ENTRY_CHECK(entry) == CHECK_SAME_KEY && field(c, rec, F_OUT_KEY) != field(c, rec, F_KEY))
        return undecided(c, "a handle differs from the key id", call);
    if (ENTRY_CHECK(entry) == CHECK_MULTIPART && !multipart_ok(c, rec, call, ret, status))
        return undecided(c, "a multi-part MAC's ticket or stage is impossible", call);
    if (ENTRY_KEY(entry) != CORE_NOOP
        && !add_key_op(c, rec, (int)ENTRY_KEY(entry), call, ret, opcode))
        return 0;
    int make = (int)ENTRY_MAKE(entry);
    if (make == MAKE_PRESENT) {   /* a persistent create found its requested id present */
        key_t_ *k = key_get(c, (uint32_t)field(c, rec, F_ID));
        op_t op = { .call = call, .ret = ret, .action = CORE_PRESENT };
        return k != NULL ? add_op(c, k, &op) : undecided(c, "out of memory", call);
    }
    return make == MAKE_NONE || add_create(c, rec, make, call, ret);
}

int feed_finish(core_t *c)
{
    if (!resolve_until(c, UINT64_MAX) || !reveal_until(c, UINT64_MAX))
        return 0;
    for (size_t i = 0; i < c->keycap; i++)
        if (c->keys[i].used && c->keys[i].nops && !close_segment(c, &c->keys[i]))
            return 0;
    return 1;
}

void feed_free(core_t *c)
{
    for (size_t i = 0; i < c->keycap; i++) {
        if (!c->keys[i].used)
            continue;             /* a forgotten key's slot may hold a moved key's pointers */
        free(c->keys[i].ops);
        free(c->keys[i].states);
        sources_free(&c->keys[i].sources);
    }
    sources_ctx_free(&c->src);
    free(c->keys);
    free(c->copies);
    free(c->reads);
    free(c->seen);
    free(c->open.ids);
    free(c->dirty.ids);
    free(c->forget.ids);
}

void feed_init(core_t *c)
{
    c->next_sweep = SWEEP;
    c->src.find = sources_of;
    c->src.ctx = c;
}
