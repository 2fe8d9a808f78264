/* psa-stress checker core: the rules of scenarios/model/key_store.py (and model/key_use.py's derive rules)
 * over a state with a set of possible descriptions: rule(state, op) is legal when SOME
 * description allows it, as in model/key_store.py. Every rule has at most one next state. Single-threaded;
 * no locks. */
#include "checker_core.h"
#include "state.h"

#include <string.h>

uint32_t extend_usage(uint32_t usage)
{
    if (usage & 0x1000)
        usage |= 0x400;
    if (usage & 0x2000)
        usage |= 0x800;
    return usage;
}

static int cmp_u32(uint32_t a, uint32_t b)
{
    return a < b ? -1 : a > b;
}

/* A total order of descriptions (the material by its bytes), so that sets are canonical. */
int desc_cmp(const desc_t *a, const desc_t *b)
{
    int c;
    if ((c = cmp_u32(a->lifetime, b->lifetime)) || (c = cmp_u32(a->key, b->key))
        || (c = cmp_u32(a->unknown, b->unknown)) || (c = cmp_u32(a->type, b->type))
        || (c = cmp_u32((uint32_t)a->bits, (uint32_t)b->bits)) || (c = cmp_u32(a->alg, b->alg))
        || (c = cmp_u32(a->nusages, b->nusages)) || (c = cmp_u32(a->matlen, b->matlen)))
        return c;
    for (int i = 0; i < a->nusages; i++)
        if ((c = cmp_u32(a->usages[i], b->usages[i])))
            return c;
    return a->matlen == MATERIAL_UNKNOWN || a->mat == b->mat ? 0
         : memcmp(a->mat, b->mat, a->matlen);
}

int state_equal(const state_t *a, const state_t *b)
{
    if (a->present != b->present || a->ndescs != b->ndescs)
        return 0;
    for (int i = 0; i < a->ndescs; i++)
        if (desc_cmp(&a->descs[i], &b->descs[i]) != 0)
            return 0;
    return 1;
}

void state_copy(state_t *dst, const state_t *src)
{
    dst->present = src->present;
    dst->ndescs = src->ndescs;
    memcpy(dst->descs, src->descs, src->ndescs * sizeof *src->descs);
}

void state_clear(state_t *s)
{
    s->present = s->ndescs = 0;
}

int state_add(state_t *s, const desc_t *d)
{
    int at = 0, c = 1;
    while (at < s->ndescs && (c = desc_cmp(&s->descs[at], d)) < 0)
        at++;
    if (at < s->ndescs && c == 0)
        return 1;
    if (s->ndescs == MAX_DESCS)
        return 0;
    memmove(&s->descs[at + 1], &s->descs[at], (size_t)(s->ndescs - at) * sizeof *d);
    s->descs[at] = *d;
    s->ndescs++;
    return 1;
}

int usages_add(desc_t *d, uint32_t usage)
{
    int at = 0;
    while (at < d->nusages && d->usages[at] < usage)
        at++;
    if (at < d->nusages && d->usages[at] == usage)
        return 1;
    if (d->nusages == MAX_USAGES)
        return 0;
    memmove(&d->usages[at + 1], &d->usages[at], (size_t)(d->nusages - at) * sizeof usage);
    d->usages[at] = usage;
    d->nusages++;
    return 1;
}

/* key_store.may_have / _may_lack: some usage value it may report has / lacks the flag. */
int may_have(const desc_t *d, uint32_t flag)
{
    if (d->unknown & UNKNOWN_USAGES)
        return 1;
    for (int i = 0; i < d->nusages; i++)
        if (d->usages[i] & flag)
            return 1;
    return 0;
}

static int may_lack(const desc_t *d, uint32_t flag)
{
    if (d->unknown & UNKNOWN_USAGES)
        return 1;
    for (int i = 0; i < d->nusages; i++)
        if (!(d->usages[i] & flag))
            return 1;
    return 0;
}

/* key_store.algs_meet: can psa_restrict_key_policy accept the two algorithms? */
int algs_meet(const desc_t *d, uint32_t requested)
{
    uint32_t alg = d->alg, category = alg & 0x7F000000u;
    if ((d->unknown & UNKNOWN_ALG) || alg == requested || alg == 0 || requested == 0)
        return 1;
    return category == (requested & 0x7F000000u)
        && (category == 0x05000000u || category == 0x06000000u);
}

int allows_hkdf(const desc_t *d)
{
    return may_have(d, USAGE_DERIVE) && ((d->unknown & UNKNOWN_ALG) || d->alg == ALG_HKDF_SHA256)
        && ((d->unknown & UNKNOWN_TYPE) || d->type == TYPE_DERIVE);
}

/* key_store._shows: could get_attributes of a key described by d return the attributes w? */
static int shows(const desc_t *d, const desc_t *w)
{
    int usage_ok = (d->unknown & UNKNOWN_USAGES) != 0;
    for (int i = 0; i < d->nusages; i++)
        usage_ok |= d->usages[i] == w->usages[0];
    return usage_ok && d->lifetime == w->lifetime && d->key == w->key
        && ((d->unknown & UNKNOWN_TYPE) || d->type == w->type)
        && (d->bits == BITS_UNKNOWN || d->bits == w->bits)
        && ((d->unknown & UNKNOWN_ALG) || d->alg == w->alg);
}

static int same_material(const desc_t *d, const desc_t *want)
{
    return d->matlen == want->matlen && memcmp(d->mat, want->mat, d->matlen) == 0;
}

/* key_store.rule_export: keep the descriptions with EXPORT usage whose material is unknown (bound
 * now) or equal to the bytes (a pair known by its public key: the scalar's). */
static int export_step(const state_t *s, const op_t *op, state_t *next)
{
    next->present = 1;
    next->ndescs = 0;
    for (int i = 0; i < s->ndescs; i++) {
        desc_t d = s->descs[i];
        if (!may_have(&d, USAGE_EXPORT))
            continue;
        if (d.matlen == MATERIAL_UNKNOWN) {
            d.mat = op->arg.mat;
            d.matlen = op->arg.matlen;
        } else if (d.unknown & PUBLIC_ONLY ? !public_matches(&d, op->arg.mat, op->arg.matlen)
                                           : !same_material(&d, &op->arg)) {
            continue;
        }
        state_add(next, &d);    /* never more than s holds */
    }
    return next->ndescs > 0;
}

/* Does some description of s satisfy the read-only rule `action`? */
static int some_desc(const state_t *s, const op_t *op)
{
    for (int i = 0; i < s->ndescs; i++) {
        const desc_t *d = &s->descs[i];
        int ok;
        switch (op->action) {
        case CORE_EXPORT_DENIED: ok = may_lack(d, USAGE_EXPORT); break;
        case CORE_ATTRIBUTES: ok = shows(d, &op->arg); break;
        case CORE_COPY_SOURCE: ok = may_have(d, USAGE_COPY) && algs_meet(d, op->want); break;
        case CORE_COPY_DENIED: ok = may_lack(d, USAGE_COPY); break;
        case CORE_COPY_BAD_ARG: ok = may_have(d, USAGE_COPY); break;
        case CORE_DERIVE_SOURCE: ok = allows_hkdf(d); break;
        case CORE_DERIVE_DENIED:
            ok = may_lack(d, USAGE_DERIVE) || (d->unknown & UNKNOWN_ALG)
                 || d->alg != ALG_HKDF_SHA256;
            break;
        default: ok = use_fits(d, op);
        }
        if (ok)
            return 1;
    }
    return 0;
}

int keeps_state(int action)
{
    return action == CORE_PRESENT || action == CORE_ABSENT
        || (action >= CORE_EXPORT_DENIED && action < CORE_SIGNED);
}

int segment_step(const state_t *s, const op_t *op, state_t *next)
{
    switch (op->action) {
    case CORE_CREATE:           /* no candidate description: no create is possible */
        state_copy(next, op->created);
        return !s->present && op->created->ndescs > 0;
    case CORE_DESTROY:
        state_clear(next);
        return s->present;
    case CORE_EXPORT:
        return s->present && export_step(s, op, next);
    case CORE_ABSENT:
        state_copy(next, s);
        return !s->present;
    case CORE_DESTROY_MAYBE:      /* intact (segment_alternative: gone) */
        state_copy(next, s);
        return 1;
    case CORE_PRESENT:
        state_copy(next, s);
        return s->present;
    case CORE_SIGNED:
    case CORE_EXPORT_PUBLIC:
        return bind_step(s, op, next);
    default:
        state_copy(next, s);
        return s->present && some_desc(s, op);
    }
}

int segment_alternative(const state_t *s, const op_t *op, state_t *next)
{
    state_clear(next);
    return op->action == CORE_DESTROY_MAYBE && s->present;
}
