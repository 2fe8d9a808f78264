/* psa-stress checker core: candidate source instances of copies and derive_from (docs/checker.md
 * §2; operations.Sources, streaming._StreamSources), resolved as the stream passes each copy's ret,
 * and the material shared across keys (scenarios/model/materials.py): a union-find over instances,
 * where a copy with one candidate source shares its material and an export whose key has one
 * candidate instance reveals it.
 *
 * Candidates of a copy C of id S: every successful create I of S with I.call < C.ret, except
 * those certainly dead when C was invoked (a successful create or destroy X of S with
 * X.call > I.ret and X.ret < C.call). A candidate that is itself a copy still in flight when C
 * is resolved, or one met again while being resolved (a cycle), stands for any key, as in
 * checker/streaming.py. The copy may give its key the description of any candidate, transformed
 * (key_store.copied_desc, model_use.derived_descs). Single-threaded; no locks. */
#include "sources.h"

#include <stdlib.h>
#include <string.h>

#include "checker_core.h"
#include "crypto.h"

#define CHUNK (1u << 20)

struct chunk {
    struct chunk *next;
    max_align_t data[];
};

static void *chunk_alloc(sources_ctx_t *s, size_t len)
{
    len = (len + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (len > s->room) {
        size_t size = len > CHUNK ? len : CHUNK;
        chunk_t *c = malloc(sizeof *c + size);
        if (c == NULL)
            return NULL;
        c->next = s->chunks;
        s->chunks = c;
        s->room = size;
    }
    s->room -= len;
    return (char *)s->chunks->data + s->room;
}

inst_t *inst_new(sources_ctx_t *s)
{
    inst_t *inst = s->free;
    if (inst != NULL)
        s->free = inst->next;
    else if ((inst = chunk_alloc(s, sizeof *inst)) == NULL)
        return NULL;
    memset(inst, 0, offsetof(inst_t, descs) + offsetof(state_t, descs));
    inst->vallen = MATERIAL_UNKNOWN;
    return inst;
}

/* Instances are referenced by their create op (until its segment closes), by their id's list
 * of candidates (until pruned) and by their union-find children; a freed one releases its
 * parent. An instance in a list of derivations is never released: it lives in the chunks until
 * the end of the check. */
void inst_release(sources_ctx_t *s, inst_t *inst)
{
    while (inst != NULL && --inst->refs == 0) {
        inst_t *parent = inst->parent;
        inst->next = s->free;
        s->free = inst;
        inst = parent;
    }
}

const uint8_t *material_hkdf(sources_ctx_t *s, const uint8_t *salt, size_t saltlen,
                             const uint8_t *secret, size_t secretlen, const uint8_t *info,
                             size_t infolen, size_t len)
{
    uint8_t *out = chunk_alloc(s, len);
    if (out == NULL || !hkdf_sha256(salt, saltlen, secret, secretlen, info, infolen, out, len))
        return NULL;
    return out;
}

int material_p256_derived(sources_ctx_t *s, const uint8_t *salt, size_t saltlen,
                          const uint8_t *secret, size_t secretlen, const uint8_t *info,
                          size_t infolen, desc_t *d)
{
    uint8_t *out = chunk_alloc(s, P256_SCALAR_LEN);
    if (out == NULL || p256_derived_private_key(salt, saltlen, secret, secretlen, info, infolen,
                                                out) != 1)
        return 0;
    d->mat = out;
    d->matlen = P256_SCALAR_LEN;
    return 1;
}

void sources_free(sources_t *l)
{
    free(l->creates);
    free(l->killers);
}

void sources_ctx_free(sources_ctx_t *s)
{
    free(s->weak);
    while (s->chunks != NULL) {
        chunk_t *next = s->chunks->next;
        free(s->chunks);
        s->chunks = next;
    }
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

long sources_weakened(sources_ctx_t *s, int64_t *out, size_t max)
{
    size_t n = 0;
    if (s->nweak == 0)
        return 0;
    qsort(s->weak, s->nweak, sizeof *s->weak, by_value);   /* by id, then first first */
    for (size_t i = 0; i < s->nweak; i++) {
        if (i > 0 && s->weak[i] >> 32 == s->weak[i - 1] >> 32)
            continue;
        if (n == max)
            return -1;
        out[n++] = (int64_t)((s->weak[i] & 7) << 32 | s->weak[i] >> 32);
    }
    return (long)n;
}

static int grow(void **items, uint32_t *cap, size_t size)
{
    uint32_t n = *cap ? 2 * *cap : 8;
    void *more = realloc(*items, n * size);
    if (more == NULL)
        return 0;
    *items = more;
    *cap = n;
    return 1;
}

/* materials.py's weaken: reasons are kept in 3 bits, in order of arrival above them. */
int sources_weaken(sources_ctx_t *s, uint32_t id, unsigned reason)
{
    if (s->nweak == s->capweak && !grow((void **)&s->weak, &s->capweak, sizeof *s->weak))
        return 0;
    s->weak[s->nweak] = (uint64_t)id << 32 | (uint64_t)(s->nweak & 0x1FFFFFFF) << 3 | reason;
    s->nweak++;
    return 1;
}

int sources_add_create(sources_t *l, inst_t *inst)
{
    if (l->ncreates == l->capcreates
        && !grow((void **)&l->creates, &l->capcreates, sizeof *l->creates))
        return 0;
    inst->refs++;
    l->creates[l->ncreates++] = inst;
    return 1;
}

int sources_add_killer(sources_t *l, uint64_t call, uint64_t ret)
{
    if (l->nkillers == l->capkillers
        && !grow((void **)&l->killers, &l->capkillers, sizeof *l->killers))
        return 0;
    l->killers[l->nkillers++] = (span_t){ call, ret };
    l->dirty = 1;
    return 1;
}

/* A killer that returned before the watermark removed every instance that returned before it
 * was invoked, for every copy invoked after the watermark. */
void sources_prune(sources_ctx_t *s, sources_t *l, uint64_t watermark)
{
    uint64_t first_kill = 0;
    int dead = 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < l->nkillers; i++) {
        if (l->killers[i].ret < watermark) {
            dead = 1;
            if (l->killers[i].call > first_kill)
                first_kill = l->killers[i].call;
        } else {
            l->killers[kept++] = l->killers[i];
        }
    }
    l->nkillers = kept;
    l->dirty = kept > 0;          /* a killer still in flight may yet let the list shrink */
    if (!dead)
        return;
    kept = 0;
    for (uint32_t i = 0; i < l->ncreates; i++) {
        if (l->creates[i]->ret >= first_kill)
            l->creates[kept++] = l->creates[i];
        else
            inst_release(s, l->creates[i]);
    }
    l->ncreates = kept;
}

/* ---- material across keys (scenarios/model/materials.py) ------------------------------------- */

static inst_t *root_of(sources_ctx_t *s, inst_t *inst)
{
    while (inst->parent != NULL) {
        inst_t *up = inst->parent;
        if (up->parent != NULL) {          /* path halving: hold the grandparent instead */
            up->parent->refs++;
            inst->parent = up->parent;
            inst_release(s, up);
        }
        inst = inst->parent;
    }
    return inst;
}

static int raw_bytes_type(uint32_t type)
{
    return ((type & 0x7000) == 0x1000 || (type & 0x7000) == 0x2000) && type != 0x2301;
}

static int learn(sources_ctx_t *s, inst_t *root, const uint8_t *mat, uint16_t len);

/* The derivation d from the root's (known) material learns HKDF of it. */
static int derive_one(sources_ctx_t *s, const inst_t *root, inst_t *d)
{
    const uint8_t *out = material_hkdf(s, d->salt, 16, root->val, root->vallen, s->info,
                                       s->infolen, d->bits / 8);
    return out != NULL && learn(s, root_of(s, d), out, (uint16_t)(d->bits / 8));
}

static int propagate(sources_ctx_t *s, const inst_t *root)
{
    for (inst_t *d = root->derived; d != NULL; d = d->sibling)
        if (!derive_one(s, root, d))
            return 0;
    return 1;
}

/* Is the public key one of the root's (narrowed) ones? */
static int among_publics(const inst_t *root, const uint8_t *public)
{
    for (int i = 0; i < root->npubs; i++)
        if (memcmp(root->pubs[i], public, P256_PUBLIC_LEN) == 0)
            return 1;
    return 0;
}

/* Two facts about one material disagree (materials._conflict): counted; what was known
 * stays. */
static int conflict(sources_ctx_t *s)
{
    s->conflicts++;
    return 1;
}

/* The root learns a material: a conflict if it knew another one, or if it is a scalar of none
 * of the public keys it was narrowed to (materials._learn); 0 if memory is short. */
static int learn(sources_ctx_t *s, inst_t *root, const uint8_t *mat, uint16_t len)
{
    const uint8_t *public;
    if (len == MATERIAL_UNKNOWN)
        return 1;
    if (root->vallen == MATERIAL_UNKNOWN) {
        if (root->npubs && !(scalar_public(mat, len, &public) && among_publics(root, public)))
            return conflict(s);
        root->val = mat;
        root->vallen = len;
        return propagate(s, root);
    }
    return root->vallen == len && memcmp(root->val, mat, len) == 0 ? 1 : conflict(s);
}

/* The root's pair has one of these public keys (materials._narrow): its known scalar's must
 * be one, else the sets meet in their intersection; if not, a conflict. */
static int narrow(sources_ctx_t *s, inst_t *root, const uint8_t *const *publics, int count)
{
    const uint8_t *public, *kept[MAX_PUBLICS];
    int nkept = 0;
    if (root->vallen != MATERIAL_UNKNOWN) {
        if (!scalar_public(root->val, root->vallen, &public))
            return conflict(s);
        for (int i = 0; i < count; i++)
            if (memcmp(publics[i], public, P256_PUBLIC_LEN) == 0)
                return 1;
        return conflict(s);
    }
    for (int i = 0; i < count && nkept < MAX_PUBLICS; i++)
        if (root->npubs == 0 || among_publics(root, publics[i]))
            kept[nkept++] = publics[i];
    if (nkept == 0)
        return conflict(s);
    memcpy(root->pubs, kept, (size_t)nkept * sizeof *kept);
    root->npubs = (uint8_t)nkept;
    return 1;
}

/* The one material every description of a resolved instance has (else unknown). */
static uint16_t known_material(const inst_t *inst, const uint8_t **mat)
{
    const state_t *st = &inst->descs;
    if (!inst->resolved || st->ndescs == 0)
        return MATERIAL_UNKNOWN;
    for (int i = 1; i < st->ndescs; i++)
        if (st->descs[i].matlen != st->descs[0].matlen || (st->descs[0].matlen
            != MATERIAL_UNKNOWN && memcmp(st->descs[i].mat, st->descs[0].mat,
                                          st->descs[0].matlen) != 0))
            return MATERIAL_UNKNOWN;
    *mat = st->descs[0].mat;
    return st->descs[0].matlen;
}

/* Make the instance a union-find node, knowing its material if its descriptions do. */
static int link(sources_ctx_t *s, inst_t *inst)
{
    const uint8_t *mat = NULL;
    uint16_t len = known_material(inst, &mat);
    inst->linked = 1;
    return learn(s, root_of(s, inst), mat, len);
}

static int share(sources_ctx_t *s, inst_t *a, inst_t *b)
{
    if (!link(s, a) || !link(s, b))
        return 0;
    a = root_of(s, a);
    b = root_of(s, b);
    if (a == b)
        return 1;
    b->parent = a;
    a->refs++;
    a->shared = 1;
    inst_t **tail = &a->derived;          /* a inherits b's derivations */
    while (*tail != NULL)
        tail = &(*tail)->sibling;
    *tail = b->derived;
    b->derived = NULL;
    if (a->vallen != MATERIAL_UNKNOWN && b->vallen == MATERIAL_UNKNOWN
        ? !propagate(s, a) : !learn(s, a, b->val, b->vallen))
        return 0;
    return b->npubs == 0 || narrow(s, a, b->pubs, b->npubs);
}

/* Is a derive_from's material HKDF output (raw bytes of a whole number of bytes)? Else the
 * model leaves it unknown, tied to nothing (a key pair): counted as an approximation. */
static int hkdf_material(const inst_t *derived)
{
    return raw_bytes_type(derived->plain.type) && derived->bits % 8 == 0 && derived->bits > 0;
}

/* A key derived from the one candidate secret instance holds HKDF of its material. */
static int derive_link(sources_ctx_t *s, inst_t *secret, inst_t *derived)
{
    if (!hkdf_material(derived))
        return 1;
    if (!link(s, secret) || !link(s, derived))
        return 0;
    inst_t *root = root_of(s, secret);
    root->shared = root_of(s, derived)->shared = 1;
    derived->sibling = root->derived;
    root->derived = derived;
    derived->refs++;
    return root->vallen == MATERIAL_UNKNOWN || derive_one(s, root, derived);
}

/* The latest invocation of a killer that returned before a reader invoked at this stamp: a
 * candidate that returned before it was certainly removed (0: none). */
static uint64_t last_kill(const sources_t *l, uint64_t invoked)
{
    uint64_t last = 0;
    for (uint32_t i = 0; i < l->nkillers; i++)
        if (l->killers[i].ret < invoked && l->killers[i].call > last)
            last = l->killers[i].call;
    return last;
}

/* key_store.copied_desc of the source description src, if the copy can read it. */
static int copied(const inst_t *copy, const desc_t *src, desc_t *d)
{
    if (!may_have(src, USAGE_COPY) || !algs_meet(src, copy->alg))
        return 0;
    *d = *src;
    d->lifetime = copy->plain.lifetime;
    d->key = copy->plain.key;
    d->nusages = 0;
    if (!(src->unknown & UNKNOWN_USAGES)) {
        for (int i = 0; i < src->nusages; i++) {
            uint32_t u = extend_usage(copy->usage) & src->usages[i];
            if (!usages_add(d, extend_usage(u)))
                return -1;
        }
    }
    if (!(src->unknown & UNKNOWN_ALG) && src->alg != copy->alg) {   /* key_store._alg_meet */
        d->alg = 0;
        if (src->alg != 0 && copy->alg != 0)
            d->unknown |= UNKNOWN_ALG;
    }
    return 1;
}

/* model_use.derived_descs of the secret description src. */
static int derived(sources_ctx_t *s, const inst_t *derive, const desc_t *src, desc_t *d)
{
    if (!allows_hkdf(src))
        return 0;
    *d = derive->plain;
    if (src->matlen != MATERIAL_UNKNOWN && hkdf_material(derive)) {
        d->mat = material_hkdf(s, derive->salt, 16, src->mat, src->matlen, s->info, s->infolen,
                               derive->bits / 8);
        if (d->mat == NULL)
            return -1;
        d->matlen = (uint16_t)(derive->bits / 8);
    }
    return 1;
}

/* Any key of this id (streaming._StreamSources.descs, operations.Sources.descs on a cycle). */
static void any_key(const inst_t *inst, state_t *out)
{
    memset(out, 0, sizeof *out);
    out->present = out->ndescs = 1;
    out->descs[0].lifetime = inst->plain.lifetime;
    out->descs[0].key = inst->plain.key;
    out->descs[0].unknown = UNKNOWN_TYPE | UNKNOWN_ALG | UNKNOWN_USAGES;
    out->descs[0].bits = BITS_UNKNOWN;
    out->descs[0].matlen = MATERIAL_UNKNOWN;
}

/* The descriptions of candidate into *out (a copy of them, or any key). */
static int candidate_descs(sources_ctx_t *s, inst_t *candidate, state_t *out)
{
    if (!candidate->resolved && (candidate->busy || candidate->ret > s->position)) {
        any_key(candidate, out);
        return 1;
    }
    if (!inst_resolve(s, candidate))
        return 0;
    state_copy(out, &candidate->descs);
    return 1;
}

/* Could the instance's material be unknown (materials._unknown) for a reader that returned at
 * ret? A copy returning later is unresolved then (Python resolves by ret). */
static int late(const inst_t *inst, uint64_t ret)
{
    return inst->make >= MAKE_COPY && inst->ret > ret;
}

static int loose(const inst_t *inst, uint64_t ret)
{
    return !inst->firm || late(inst, ret);
}

/* One known material, linked to nothing, for a reader that returned at ret: the partition
 * checks it, and nothing across keys is learnt (materials._read and alias skip it). */
static int settled(const inst_t *inst, uint64_t ret)
{
    return !inst->linked && inst->single && !late(inst, ret);
}

void inst_firm(inst_t *inst)
{
    const uint8_t *mat;
    inst->firm = inst->resolved;
    for (int i = 0; i < inst->descs.ndescs; i++)
        inst->firm &= inst->descs.descs[i].matlen != MATERIAL_UNKNOWN;
    inst->single = inst->firm && known_material(inst, &mat) != MATERIAL_UNKNOWN;
}

/* An export's one candidate instance holds the exported bytes (materials.reveal). */
int reveal(sources_ctx_t *s, const read_t *export)
{
    sources_t *l = s->find(s->ctx, export->key);
    inst_t *only = NULL;
    int several = 0, unknown = 0;
    for (uint32_t i = 0; l != NULL && i < l->ncreates && l->creates[i]->call < export->ret; i++)
        unknown |= !settled(l->creates[i], export->ret);
    if (!unknown)                 /* materials.may_learn: nothing to learn, nothing loose */
        return 1;
    unknown = 0;
    uint64_t kill = last_kill(l, export->call);
    for (uint32_t i = 0; i < l->ncreates && l->creates[i]->call < export->ret; i++) {
        inst_t *candidate = l->creates[i];
        if (kill > candidate->ret)
            continue;
        several |= only != NULL;
        unknown |= loose(candidate, export->ret);
        only = candidate;
    }
    if (several)                  /* nothing learnt */
        return !unknown || sources_weaken(s, export->key, WEAK_SEVERAL_INSTANCES);
    if (only == NULL || settled(only, export->ret))
        return 1;                 /* as materials._read */
    if (!link(s, only))
        return 0;
    if (!export->pub)
        return learn(s, root_of(s, only), export->mat, export->len);
    const uint8_t *shown, *publics[MAX_PUBLICS];   /* materials.reveal_public */
    int count = shown_publics(export->kind, export->in, export->inlen, export->mat, export->len,
                              &shown);
    for (int i = 0; i < count && i < MAX_PUBLICS; i++)
        publics[i] = shown + i * P256_PUBLIC_LEN;
    return count > 0 ? narrow(s, root_of(s, only), publics,
                              count < MAX_PUBLICS ? count : MAX_PUBLICS) : conflict(s);
}

/* Do the descriptions agree on every attribute but the material (materials._settled_before:
 * then the union-find ties the only thing they may differ in)? */
static int one_description(const state_t *st)
{
    for (int i = 1; i < st->ndescs; i++) {
        desc_t d = st->descs[i];
        d.mat = st->descs[0].mat;
        d.matlen = st->descs[0].matlen;
        if (desc_cmp(&d, &st->descs[0]) != 0)
            return 0;
    }
    return 1;
}

/* A copy's or derive_from's source read and target create are checked in two partitions:
 * exact when its one candidate returned before it was invoked with one description (the read
 * can go at the call's start, before the create); else counted (materials.SPLIT). */
int inst_resolve(sources_ctx_t *s, inst_t *inst)
{
    if (inst->resolved)
        return 1;
    sources_t *l = s->find(s->ctx, inst->src);
    state_t out, from;
    memset(&out, 0, sizeof out);
    out.present = 1;
    inst->busy = 1;
    int ok = 1, candidates = 0, unknown = 0, any = 0;
    inst_t *only = NULL;
    uint64_t kill = l != NULL ? last_kill(l, inst->call) : 0;
    for (uint32_t i = 0; ok && l != NULL && i < l->ncreates; i++) {
        inst_t *candidate = l->creates[i];
        if (candidate->call >= inst->ret)
            break;                        /* by call: every later one too */
        if (candidate == inst || kill > candidate->ret)
            continue;
        candidates++;
        only = candidate;
        any |= !candidate->resolved && (candidate->busy || candidate->ret > s->position);
        ok = candidate_descs(s, candidate, &from);
        unknown |= loose(candidate, inst->ret);
        for (int j = 0; ok && j < from.ndescs; j++) {
            desc_t d;
            int made = inst->make == MAKE_COPY ? copied(inst, &from.descs[j], &d)
                                               : derived(s, inst, &from.descs[j], &d);
            ok = made >= 0;
            if (ok && made > 0 && !state_add(&out, &d))
                ok = 0, s->full = 1;
        }
    }
    inst->busy = 0;
    if (!ok)
        return 0;
    state_copy(&inst->descs, &out);
    inst->resolved = 1;
    inst_firm(inst);
    int split = candidates > 1 || (candidates == 1 && (any || only->ret >= inst->call
                                                       || !one_description(&only->descs)));
    if ((any && !sources_weaken(s, inst->plain.key, WEAK_ANY_KEY))
        || (inst->make == MAKE_DERIVE_FROM && !hkdf_material(inst)
            && !sources_weaken(s, inst->plain.key, WEAK_UNTIED_DERIVATION))
        || (candidates > 1 && unknown
            && !sources_weaken(s, inst->plain.key, WEAK_SEVERAL_SOURCES))
        || (split && !sources_weaken(s, inst->plain.key, WEAK_SPLIT)))
        return 0;
    /* one material for the two, or HKDF of it (known bytes linked to nothing: the target's
     * descriptions already hold them, as materials.alias) */
    if (candidates == 1 && (inst->linked || !settled(only, inst->ret)))
        return inst->make == MAKE_COPY ? share(s, only, inst) : derive_link(s, only, inst);
    return !inst->linked || link(s, inst);
}
