/* psa-stress checker core: the key-use rules of scenarios/model/key_use.py over a state's set of
 * descriptions: a use is legal when some description allows it (usage flag, algorithm, key
 * type) and its material, when known, yields the recorded output (or rejects the input);
 * sign, verify and export_public bind a P-256 pair of unknown material to the public keys
 * they show (PUBLIC_ONLY descriptions). What the core cannot compute (a key or nonce of a size
 * libcrypto is not asked about, a libcrypto failure) makes the description not fit: the core
 * then finds fewer linearizations than Python, never more, and leaves the history to Python.
 * Results are memoised per thread (a direct-mapped table; every pointer it holds is valid
 * until uses_end). Single-threaded per check; no locks. */
#include "checker_core.h"
#include "crypto.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

#define MEMO (1u << 12)
#define FAILED (-1)          /* memo result: libcrypto was not asked, or failed */
#define NO_RESULT (-2)       /* memo result: a tag that does not verify, a scalar out of range */
enum { MEMO_PUBLIC = USES, MEMO_RECOVER, MEMO_VERIFY };

typedef struct {
    uint64_t hash;
    int kind;
    const uint8_t *key, *in, *aux;
    uint16_t keylen, inlen, auxlen;
    int len;                  /* of result, or FAILED, NO_RESULT */
    const uint8_t *result;
} memo_t;

typedef struct arena {
    struct arena *next;
    size_t room;
    uint8_t data[];
} arena_t;

typedef struct {
    const uint8_t *hash, *nonce, *message;
    size_t hashlen, noncelen, messagelen;
    memo_t *memo;
    arena_t *arena;
} uses_t;

static __thread uses_t uses;

int uses_begin(const uint8_t *hash, size_t hashlen, const uint8_t *nonce, size_t noncelen,
               const uint8_t *message, size_t messagelen)
{
    uses = (uses_t){ hash, nonce, message, hashlen, noncelen, messagelen,
                     calloc(MEMO, sizeof(memo_t)), NULL };
    return uses.memo != NULL;
}

void uses_end(void)
{
    free(uses.memo);
    while (uses.arena != NULL) {
        arena_t *next = uses.arena->next;
        free(uses.arena);
        uses.arena = next;
    }
    memset(&uses, 0, sizeof uses);
}

static uint8_t *arena_alloc(size_t len)
{
    if (uses.arena == NULL || uses.arena->room < len) {
        size_t size = len > 65536 ? len : 65536;
        arena_t *a = malloc(sizeof *a + size);
        if (a == NULL)
            return NULL;
        a->next = uses.arena;
        a->room = size;
        uses.arena = a;
    }
    uses.arena->room -= len;
    return uses.arena->data + uses.arena->room;
}

static uint64_t mix(uint64_t h, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;          /* FNV-1a */
    return h ^ len;
}

/* libcrypto's answer for one memo kind into out (room for 4 public keys): its length,
 * FAILED or NO_RESULT. */
static int compute(const memo_t *m, uint8_t *out)
{
    int aes = m->keylen == 16, ok;
    switch (m->kind) {
    case USE_CIPHER_ENCRYPT:
    case USE_CIPHER_DECRYPT:
        ok = aes && m->inlen == AES_BLOCK
             && aes128_block(m->key, m->in, out, m->kind == USE_CIPHER_DECRYPT);
        return ok ? AES_BLOCK : FAILED;
    case USE_MAC:
    case USE_MAC_MULTIPART:
        return hmac_sha256(m->key, m->keylen, m->in, m->inlen, out) ? SHA256_LEN : FAILED;
    case USE_AEAD_ENCRYPT:
        ok = aes && m->auxlen == GCM_NONCE && gcm_seal(m->key, m->aux, m->in, m->inlen, out);
        return ok ? m->inlen + GCM_TAG : FAILED;
    case USE_AEAD_DECRYPT:
        if (!aes || m->auxlen != GCM_NONCE)
            return FAILED;
        ok = m->inlen < GCM_TAG ? 0 : gcm_open(m->key, m->aux, m->in, m->inlen, out);
        return ok < 0 ? FAILED : ok ? m->inlen - GCM_TAG : NO_RESULT;
    case MEMO_PUBLIC:
        ok = m->keylen == 32 ? p256_public(m->key, out) : 0;
        return ok < 0 ? FAILED : ok ? P256_PUBLIC_LEN : NO_RESULT;
    case MEMO_RECOVER:
        ok = p256_recover(m->key, m->in, (uint8_t (*)[P256_PUBLIC_LEN])out);
        return ok < 0 ? FAILED : ok * P256_PUBLIC_LEN;
    case MEMO_VERIFY:         /* key: the public key, in: the signature, aux: the digest */
        ok = p256_verify(m->key, m->aux, m->in);
        return ok < 0 ? FAILED : ok ? 0 : NO_RESULT;
    default:
        return FAILED;
    }
}

/* The memoised result of one computation (its length in ->len). */
static const memo_t *memo(int kind, const uint8_t *key, uint16_t keylen, const uint8_t *in,
                          uint16_t inlen, const uint8_t *aux, uint16_t auxlen)
{
    uint64_t h = mix(mix(mix(0xCBF29CE484222325ull ^ (uint64_t)kind, key, keylen), in, inlen),
                     aux, auxlen);
    memo_t *m = &uses.memo[(h ^ h >> 29) & (MEMO - 1)];
    if (m->result != NULL && m->hash == h && m->kind == kind && m->keylen == keylen
        && m->inlen == inlen && m->auxlen == auxlen && !memcmp(m->key, key, keylen)
        && !memcmp(m->in, in, inlen) && !memcmp(m->aux, aux, auxlen))
        return m;
    uint8_t out[P256_MAX_RECOVERED * P256_PUBLIC_LEN + 2 * GCM_TAG + 256];
    *m = (memo_t){ h, kind, key, in, aux, keylen, inlen, auxlen, FAILED, NULL };
    if (inlen > 256 && (kind == USE_AEAD_ENCRYPT || kind == USE_AEAD_DECRYPT))
        return m;                 /* longer than out[] holds */
    int len = compute(m, out);
    uint8_t *kept = arena_alloc(len > 0 ? (size_t)len : 1);
    if (kept == NULL)
        return m;
    if (len > 0)
        memcpy(kept, out, (size_t)len);
    m->len = len;
    m->result = kept;
    return m;
}

/* key_use._public: the public key of a known P-256 material into *public: 1, 0 (none: an
 * invalid scalar), FAILED. */
static int public_of(const desc_t *d, const uint8_t **public)
{
    if (d->unknown & PUBLIC_ONLY) {
        *public = d->mat;
        return d->matlen == P256_PUBLIC_LEN ? 1 : FAILED;
    }
    const memo_t *m = memo(MEMO_PUBLIC, d->mat, d->matlen, NULL, 0, NULL, 0);
    *public = m->result;
    return m->len == P256_PUBLIC_LEN ? 1 : m->len == NO_RESULT ? 0 : FAILED;
}

/* p256.verify(public of d, digest, signature) of a sign or verify: 1, 0, FAILED. */
static int signature_verifies(const desc_t *d, const use_t *u)
{
    const uint8_t *digest = u->kind == USE_SIGN ? u->in : uses.hash;
    size_t digestlen = u->kind == USE_SIGN ? u->inlen : uses.hashlen;
    const uint8_t *sig = u->kind == USE_SIGN ? u->out : u->in;
    uint16_t siglen = u->kind == USE_SIGN ? u->outlen : u->inlen;
    const uint8_t *public;
    int has = public_of(d, &public);
    if (has != 1 || digestlen != 32)
        return has == 0 && digestlen == 32 ? 0 : FAILED;
    if (siglen != P256_SIG_LEN)
        return 0;
    const memo_t *m = memo(MEMO_VERIFY, public, P256_PUBLIC_LEN, sig, siglen, digest, 32);
    return m->len == 0 ? 1 : m->len == NO_RESULT ? 0 : FAILED;
}

/* key_use._consistent: does d's material (if known) yield the output (rejects: reject the
 * input)? Not computable: no. */
static int consistent(const desc_t *d, const use_t *u, int rejects)
{
    if (d->matlen == MATERIAL_UNKNOWN)
        return 1;
    if (u->kind == USE_SIGN || u->kind == USE_VERIFY) {
        int valid = signature_verifies(d, u);
        return valid != FAILED && valid == !rejects;
    }
    if (d->unknown & PUBLIC_ONLY)
        return 0;
    int multipart = u->kind == USE_MAC_MULTIPART;
    const uint8_t *in = multipart ? uses.message : u->in;
    size_t inlen = multipart ? uses.messagelen : u->inlen;
    int aead = u->kind == USE_AEAD_ENCRYPT || u->kind == USE_AEAD_DECRYPT;
    if (inlen > 0xFFFF)
        return 0;
    const memo_t *m = memo(u->kind, d->mat, d->matlen, in, (uint16_t)inlen,
                           aead ? uses.nonce : NULL, aead ? (uint16_t)uses.noncelen : 0);
    if (rejects)
        return m->len == NO_RESULT;
    return m->len >= 0 && m->len == u->outlen && !memcmp(m->result, u->out, u->outlen);
}

/* key_use._allows, _may_refuse */
static int allows(const desc_t *d, const op_t *op)
{
    return may_have(d, op->use.flag) && ((d->unknown & UNKNOWN_ALG) || d->alg == op->want)
        && ((d->unknown & UNKNOWN_TYPE) || d->type == op->use.type);
}

static int may_refuse(const desc_t *d, const op_t *op)
{
    if (d->unknown & UNKNOWN_USAGES)
        return 1;
    for (int i = 0; i < d->nusages; i++)
        if (!(d->usages[i] & op->use.flag))
            return 1;
    return (d->unknown & UNKNOWN_ALG) || d->alg != op->want;
}

int use_fits(const desc_t *d, const op_t *op)
{
    switch (op->action) {
    case CORE_USE:
    case CORE_SIGNED:
        return allows(d, op) && consistent(d, &op->use, 0);
    case CORE_USE_REJECTED: return allows(d, op) && consistent(d, &op->use, 1);
    case CORE_USE_DENIED: return may_refuse(d, op);
    case CORE_PUBLIC_REFUSED: return (d->unknown & UNKNOWN_TYPE) || (d->type & 0x4000) == 0;
    default: return 0;
    }
}

/* _export_public's fits: a P-256 pair (or a type unknown) whose public key, if known, is out. */
static int shows_public(const desc_t *d, const use_t *u)
{
    const uint8_t *public;
    if (!(d->unknown & UNKNOWN_TYPE) && d->type != ECC_P256_PAIR)
        return 0;
    return d->matlen == MATERIAL_UNKNOWN
        || (public_of(d, &public) == 1 && u->outlen == P256_PUBLIC_LEN
            && !memcmp(public, u->out, P256_PUBLIC_LEN));
}

static int binding_fits(const desc_t *d, const op_t *op)
{
    return op->action == CORE_SIGNED ? use_fits(d, op) : shows_public(d, &op->use);
}

/* key_use._bind_public: each P-256 pair (or type unknown) of unknown material becomes one
 * PUBLIC_ONLY description per public key; then only the descriptions that fit stay. A
 * recovered public key verifies the signature by construction (SEC 1 §4.1.6). */
static int bind(const state_t *s, const op_t *op, const uint8_t *publics, int count,
                state_t *next)
{
    state_clear(next);
    next->present = 1;
    for (int i = 0; i < s->ndescs; i++) {
        const desc_t *d = &s->descs[i];
        if (d->matlen != MATERIAL_UNKNOWN
            || (!(d->unknown & UNKNOWN_TYPE) && d->type != ECC_P256_PAIR)) {
            if (binding_fits(d, op) && !state_add(next, d))
                return 0;
            continue;
        }
        for (int j = 0; j < count; j++) {
            desc_t bound = *d;
            bound.type = ECC_P256_PAIR;
            bound.unknown = (uint8_t)((bound.unknown & ~UNKNOWN_TYPE) | PUBLIC_ONLY);
            bound.mat = publics + j * P256_PUBLIC_LEN;
            bound.matlen = P256_PUBLIC_LEN;
            int fits = op->action == CORE_SIGNED ? allows(&bound, op) : 1;
            if (fits && !state_add(next, &bound))
                return 0;
        }
    }
    return next->ndescs > 0;
}

int bind_step(const state_t *s, const op_t *op, state_t *next)
{
    const use_t *u = &op->use;
    int known = 1;
    for (int i = 0; i < s->ndescs; i++)
        known &= s->descs[i].matlen != MATERIAL_UNKNOWN;
    if (!s->present)
        return 0;
    if (op->action == CORE_SIGNED && known) {          /* as _use */
        state_copy(next, s);
        for (int i = 0; i < s->ndescs; i++)
            if (use_fits(&s->descs[i], op))
                return 1;
        return 0;
    }
    const uint8_t *publics;
    int count = shown_publics(op->action == CORE_EXPORT_PUBLIC ? USE_NONE : u->kind, u->in,
                              u->inlen, u->out, u->outlen, &publics);
    return count > 0 && bind(s, op, publics, count, next);
}

int shown_publics(int kind, const uint8_t *in, uint16_t inlen, const uint8_t *out,
                  uint16_t outlen, const uint8_t **publics)
{
    if (kind != USE_SIGN && kind != USE_VERIFY) {
        *publics = out;
        return outlen == P256_PUBLIC_LEN;
    }
    const uint8_t *digest = kind == USE_SIGN ? in : uses.hash;
    size_t digestlen = kind == USE_SIGN ? inlen : uses.hashlen;
    const uint8_t *sig = kind == USE_SIGN ? out : in;
    uint16_t siglen = kind == USE_SIGN ? outlen : inlen;
    if (digestlen != 32 || siglen != P256_SIG_LEN)
        return 0;
    const memo_t *m = memo(MEMO_RECOVER, digest, 32, sig, siglen, NULL, 0);
    *publics = m->result;
    return m->len > 0 ? m->len / P256_PUBLIC_LEN : 0;
}

int scalar_public(const uint8_t *mat, uint16_t len, const uint8_t **public)
{
    desc_t scalar;
    memset(&scalar, 0, sizeof scalar);
    scalar.mat = mat;
    scalar.matlen = len;
    return public_of(&scalar, public) == 1;
}

int public_matches(const desc_t *d, const uint8_t *exported, uint16_t len)
{
    desc_t scalar = *d;
    const uint8_t *public;
    scalar.unknown &= (uint8_t)~PUBLIC_ONLY;
    scalar.mat = exported;
    scalar.matlen = len;
    return public_of(&scalar, &public) == 1 && !memcmp(public, d->mat, P256_PUBLIC_LEN);
}

static int any_unknown(const state_t *s)
{
    for (int i = 0; s->present && i < s->ndescs; i++)
        if (s->descs[i].matlen == MATERIAL_UNKNOWN)
            return 1;
    return 0;
}

int unbound_use(const state_t *states, int nstates, const op_t *ops, int n)
{
    int uses_key = 0;
    for (int i = 0; i < n && !uses_key; i++)
        uses_key = ops[i].action == CORE_USE || ops[i].action == CORE_USE_REJECTED;
    if (!uses_key)
        return 0;
    for (int i = 0; i < nstates; i++)
        if (any_unknown(&states[i]))
            return 1;
    for (int i = 0; i < n; i++)
        if (ops[i].action == CORE_CREATE && any_unknown(ops[i].created))
            return 1;
    return 0;
}
