/* psa-stress: the workload generator (Jepsen's "generator"): which operation each call makes and
 * with which arguments.
 *
 * Every worker has its own PRNG, seeded from (--seed, thread index), so the choices a thread
 * makes are reproducible; the interleaving is not. Collisions are the point: volatile keys go
 * through a small pool of ids shared by all threads, and persistent ids come from 1..P. */
#ifndef PSA_STRESS_GENERATOR_H
#define PSA_STRESS_GENERATOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history/record.h"

#define GEN_MAX_OPS 32
#define GEN_MAX_PROFILES 16

/* Kinds of key a create may make (--key-kinds): each is a set of attribute profiles. */
#define GEN_KIND_AES 1u
#define GEN_KIND_HMAC 2u
#define GEN_KIND_ECC 4u
#define GEN_KIND_DERIVE 8u
#define GEN_DEFAULT_KINDS "aes,hmac,ecc,derive"

/* The workload parameters, fixed before the workers start. Only pool[] changes during the run. */
typedef struct {
    uint64_t seed;
    unsigned n_ops;                 /* rows of the operation table */
    unsigned weights[GEN_MAX_OPS];  /* relative frequency of each operation */
    unsigned total_weight;
    unsigned volatile_pool;         /* entries in pool[] */
    unsigned persistent_ids;        /* persistent ids are 1..persistent_ids */
    unsigned persistent_percent;    /* chance that a create or a key pick is persistent */
    unsigned kinds;                 /* GEN_KIND_* bits */
    unsigned n_profiles;            /* the attribute profiles of those kinds: */
    uint8_t profile[GEN_MAX_PROFILES];
    /* The last volatile id created into each entry. Relaxed atomics: an entry is only a hint,
     * any id it yields (stale, destroyed, reused by a newer key) is a legitimate argument. */
    _Atomic psa_key_id_t *pool;
} gen_config_t;

/* One worker's generator. */
typedef struct {
    uint64_t s[4];  /* xoshiro256** state */
    uint16_t thread;
    gen_config_t *cfg;
} gen_t;

/* Parses "name=weight,..." against the operation names name(0..n_ops-1); operations not named
 * get weight 0. On error returns false with a message in err. */
bool gen_parse_mix(gen_config_t *cfg, const char *mix, const char *(*name)(unsigned op),
                   unsigned n_ops, char *err, size_t err_len);
/* Parses "kind,..." (aes, hmac, ecc, derive) into cfg->kinds and the profiles creates draw
 * from. On error returns false with a message in err. */
bool gen_parse_kinds(gen_config_t *cfg, const char *list, char *err, size_t err_len);
bool gen_pool_alloc(gen_config_t *cfg);
void gen_pool_free(gen_config_t *cfg);

void gen_init(gen_t *g, gen_config_t *cfg, unsigned thread);

/* Row of the operation table for the next call, drawn by weight. */
unsigned gen_op(gen_t *g);

/* The key a key-taking operation works on: a persistent id, or whatever a pool entry holds. */
psa_key_id_t gen_key(gen_t *g);

/* Attributes of a new key: a random profile of the chosen kinds, and a volatile or a persistent
 * destination. */
void gen_create_attrs(gen_t *g, record_attrs_t *a);

/* Attributes for psa_copy_key: type and bits 0, a usage subset, an alg that may not fit. */
void gen_copy_attrs(gen_t *g, record_attrs_t *a);

/* Bytes unique to this call: thread, seq and seed first, then PRNG output. */
void gen_unique_bytes(gen_t *g, uint32_t seq, uint8_t *buf, size_t len);

/* Remembers a volatile id a create returned, in a random pool entry. */
void gen_publish(gen_t *g, psa_key_id_t id);

#endif /* PSA_STRESS_GENERATOR_H */
