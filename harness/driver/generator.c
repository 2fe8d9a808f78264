/* psa-stress: workload generator (see generator.h). */
#include "driver/generator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key attribute profiles a create picks from: one per kind of key use the client makes (ECDSA
 * P-256, AES-ECB, AES-GCM, HMAC-SHA-256, HKDF-SHA-256 secrets, AES-CTR). The restricted profiles
 * make export, copy and use fail with NOT_PERMITTED on some keys, deterministically per key. */
typedef struct {
    unsigned kind; /* GEN_KIND_*: --key-kinds keeps only the profiles of the kinds it names */
    psa_key_type_t type;
    uint16_t bits;
    psa_key_usage_t usage;
    psa_algorithm_t alg;
} profile_t;

#define USAGE_AES (PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT)
#define USAGE_MAC (PSA_KEY_USAGE_SIGN_MESSAGE | PSA_KEY_USAGE_VERIFY_MESSAGE)
#define USAGE_SIGN (PSA_KEY_USAGE_SIGN_HASH | PSA_KEY_USAGE_VERIFY_HASH)
#define USAGE_EXPORT_COPY (PSA_KEY_USAGE_EXPORT | PSA_KEY_USAGE_COPY)
#define ECC_P256 PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1)
#define ALG_ECDSA PSA_ALG_DETERMINISTIC_ECDSA(PSA_ALG_SHA_256)

static const profile_t profiles[] = {
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, USAGE_EXPORT_COPY | USAGE_AES, PSA_ALG_CTR },
    { GEN_KIND_HMAC, PSA_KEY_TYPE_HMAC, 256, USAGE_EXPORT_COPY | USAGE_MAC,
      PSA_ALG_HMAC(PSA_ALG_SHA_256) },
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, PSA_KEY_USAGE_COPY | USAGE_AES, PSA_ALG_CTR }, /* no EXPORT */
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, PSA_KEY_USAGE_EXPORT | USAGE_AES, PSA_ALG_CTR }, /* no COPY */
    { GEN_KIND_ECC, ECC_P256, 256, USAGE_EXPORT_COPY | USAGE_SIGN, ALG_ECDSA },
    { GEN_KIND_ECC, ECC_P256, 256, USAGE_EXPORT_COPY | PSA_KEY_USAGE_VERIFY_HASH,
      ALG_ECDSA }, /* no SIGN */
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, USAGE_EXPORT_COPY | USAGE_AES, PSA_ALG_ECB_NO_PADDING },
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, USAGE_EXPORT_COPY | PSA_KEY_USAGE_ENCRYPT,
      PSA_ALG_GCM }, /* no DECRYPT */
    { GEN_KIND_AES, PSA_KEY_TYPE_AES, 128, USAGE_EXPORT_COPY | USAGE_AES, PSA_ALG_GCM },
    { GEN_KIND_DERIVE, PSA_KEY_TYPE_DERIVE, 256, USAGE_EXPORT_COPY | PSA_KEY_USAGE_DERIVE,
      PSA_ALG_HKDF(PSA_ALG_SHA_256) },
};
#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

/* A copy asks for one of the profiles' algorithms or none; a mismatch with the source policy
 * is a legitimate INVALID_ARGUMENT. */
static const psa_algorithm_t copy_algs[] = {
    PSA_ALG_CTR, PSA_ALG_HMAC(PSA_ALG_SHA_256), ALG_ECDSA, PSA_ALG_ECB_NO_PADDING, PSA_ALG_GCM,
    PSA_ALG_HKDF(PSA_ALG_SHA_256), 0,
};

/* The usage flags a copy draws its subset from, in bit order of the draw. */
static const psa_key_usage_t copy_usages[] = {
    PSA_KEY_USAGE_EXPORT, PSA_KEY_USAGE_COPY, PSA_KEY_USAGE_ENCRYPT, PSA_KEY_USAGE_DECRYPT,
    PSA_KEY_USAGE_SIGN_MESSAGE, PSA_KEY_USAGE_VERIFY_MESSAGE, PSA_KEY_USAGE_SIGN_HASH,
    PSA_KEY_USAGE_VERIFY_HASH, PSA_KEY_USAGE_DERIVE,
};

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna) ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(gen_t *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in 0..n-1 (n > 0); the modulo bias is negligible for the small n used here. */
static unsigned below(gen_t *g, unsigned n)
{
    return (unsigned) (next_u64(g) % n);
}

void gen_init(gen_t *g, gen_config_t *cfg, unsigned thread)
{
    uint64_t x = cfg->seed ^ ((uint64_t) thread << 32);
    for (int i = 0; i < 4; i++) {
        g->s[i] = splitmix64(&x);
    }
    g->thread = (uint16_t) thread;
    g->cfg = cfg;
}

/* ---- the operation mix ---- */

static bool parse_weight(const char *s, size_t len, unsigned *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 6) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned long) (s[i] - '0');
    }
    *out = (unsigned) v;
    return true;
}

/* One "name=weight" item of length len. */
static bool parse_item(gen_config_t *cfg, const char *item, size_t len,
                       const char *(*name)(unsigned op), bool *seen, char *err, size_t err_len)
{
    const char *eq = memchr(item, '=', len);
    if (eq == NULL) {
        snprintf(err, err_len, "--mix: expected name=weight, got '%.*s'", (int) len, item);
        return false;
    }
    size_t name_len = (size_t) (eq - item);
    for (unsigned i = 0; i < cfg->n_ops; i++) {
        if (strlen(name(i)) != name_len || memcmp(name(i), item, name_len) != 0) {
            continue;
        }
        if (seen[i]) {
            snprintf(err, err_len, "--mix: operation '%s' given twice", name(i));
            return false;
        }
        if (!parse_weight(eq + 1, len - name_len - 1, &cfg->weights[i])) {
            snprintf(err, err_len, "--mix: bad weight in '%.*s' (integer 0..999999)",
                     (int) len, item);
            return false;
        }
        seen[i] = true;
        cfg->total_weight += cfg->weights[i];
        return true;
    }
    snprintf(err, err_len, "--mix: unknown operation '%.*s'", (int) name_len, item);
    return false;
}

bool gen_parse_mix(gen_config_t *cfg, const char *mix, const char *(*name)(unsigned op),
                   unsigned n_ops, char *err, size_t err_len)
{
    bool seen[GEN_MAX_OPS] = { false };
    cfg->n_ops = n_ops;
    cfg->total_weight = 0;
    memset(cfg->weights, 0, sizeof(cfg->weights));
    for (const char *item = mix;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma != NULL ? (size_t) (comma - item) : strlen(item);
        if (!parse_item(cfg, item, len, name, seen, err, err_len)) {
            return false;
        }
        if (comma == NULL) {
            break;
        }
        item = comma + 1;
    }
    if (cfg->total_weight == 0) {
        snprintf(err, err_len, "--mix: all weights are 0");
        return false;
    }
    return true;
}

unsigned gen_op(gen_t *g)
{
    unsigned r = below(g, g->cfg->total_weight);
    unsigned op = 0;
    while (r >= g->cfg->weights[op]) {
        r -= g->cfg->weights[op];
        op++;
    }
    return op;
}

/* ---- key kinds ---- */

static const char *const kind_names[] = { "aes", "hmac", "ecc", "derive" }; /* bit order */

/* One kind name of length len; false if unknown. */
static bool parse_kind(const char *item, size_t len, unsigned *kinds)
{
    for (unsigned k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++) {
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], item, len) == 0) {
            *kinds |= 1u << k;
            return true;
        }
    }
    return false;
}

/* Keeps the indexes of the profiles whose kind is in cfg->kinds. */
static void select_profiles(gen_config_t *cfg)
{
    cfg->n_profiles = 0;
    for (unsigned i = 0; i < N_PROFILES; i++) {
        if (profiles[i].kind & cfg->kinds) {
            cfg->profile[cfg->n_profiles++] = (uint8_t) i;
        }
    }
}

bool gen_parse_kinds(gen_config_t *cfg, const char *list, char *err, size_t err_len)
{
    cfg->kinds = 0;
    for (const char *item = list;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma != NULL ? (size_t) (comma - item) : strlen(item);
        if (!parse_kind(item, len, &cfg->kinds)) {
            snprintf(err, err_len, "--key-kinds: unknown kind '%.*s' (aes, hmac, ecc, derive)",
                     (int) len, item);
            return false;
        }
        if (comma == NULL) {
            break;
        }
        item = comma + 1;
    }
    select_profiles(cfg);
    return true;
}

/* ---- keys ---- */

bool gen_pool_alloc(gen_config_t *cfg)
{
    cfg->pool = calloc(cfg->volatile_pool, sizeof(*cfg->pool));
    return cfg->pool != NULL;
}

void gen_pool_free(gen_config_t *cfg)
{
    free(cfg->pool);
    cfg->pool = NULL;
}

static bool pick_persistent(gen_t *g)
{
    return below(g, 100) < g->cfg->persistent_percent;
}

static psa_key_id_t persistent_id(gen_t *g)
{
    return 1 + below(g, g->cfg->persistent_ids);
}

psa_key_id_t gen_key(gen_t *g)
{
    if (pick_persistent(g)) {
        return persistent_id(g);
    }
    return atomic_load_explicit(&g->cfg->pool[below(g, g->cfg->volatile_pool)],
                                memory_order_relaxed);
}

void gen_publish(gen_t *g, psa_key_id_t id)
{
    atomic_store_explicit(&g->cfg->pool[below(g, g->cfg->volatile_pool)], id,
                          memory_order_relaxed);
}

/* Volatile (lifetime 0, id 0: the library picks the id) or a persistent id from 1..P. */
static void pick_destination(gen_t *g, record_attrs_t *a)
{
    if (pick_persistent(g)) {
        a->lifetime = PSA_KEY_LIFETIME_PERSISTENT;
        a->id = persistent_id(g);
    } else {
        a->lifetime = PSA_KEY_LIFETIME_VOLATILE;
        a->id = 0;
    }
}

void gen_create_attrs(gen_t *g, record_attrs_t *a)
{
    const profile_t *p = &profiles[g->cfg->profile[below(g, g->cfg->n_profiles)]];
    pick_destination(g, a);
    a->type = p->type;
    a->bits = p->bits;
    a->usage = p->usage;
    a->alg = p->alg;
}

void gen_copy_attrs(gen_t *g, record_attrs_t *a)
{
    uint64_t draw = next_u64(g);
    pick_destination(g, a);
    a->type = 0;
    a->bits = 0;
    a->usage = 0;
    for (size_t i = 0; i < sizeof(copy_usages) / sizeof(copy_usages[0]); i++) {
        if (draw & (1u << i)) {
            a->usage |= copy_usages[i];
        }
    }
    if (below(g, 4) != 0) { /* usually keep the copy exportable and copyable */
        a->usage |= USAGE_EXPORT_COPY;
    }
    a->alg = copy_algs[below(g, sizeof(copy_algs) / sizeof(copy_algs[0]))];
}

void gen_unique_bytes(gen_t *g, uint32_t seq, uint8_t *buf, size_t len)
{
    /* thread (16 bits) | seq (48 bits) | seed (low 32 bits), big-endian: unique in a run. */
    const uint8_t prefix[12] = {
        (uint8_t) (g->thread >> 8), (uint8_t) g->thread,
        0, 0, (uint8_t) (seq >> 24), (uint8_t) (seq >> 16), (uint8_t) (seq >> 8), (uint8_t) seq,
        (uint8_t) (g->cfg->seed >> 24), (uint8_t) (g->cfg->seed >> 16),
        (uint8_t) (g->cfg->seed >> 8), (uint8_t) g->cfg->seed,
    };
    size_t n = len < sizeof(prefix) ? len : sizeof(prefix);
    memcpy(buf, prefix, n);
    for (size_t i = n; i < len; i++) {
        buf[i] = (uint8_t) next_u64(g);
    }
}
