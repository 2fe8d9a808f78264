/* psa-stress checker core: the candidate source instances of copies and derivations from a
 * stored key (sources.c), as operations.Sources / streaming._StreamSources compute them, and the
 * descriptions each create may give its key. Single-threaded; no locks. */
#ifndef PSA_STRESS_CHECKER_SOURCES_H
#define PSA_STRESS_CHECKER_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

typedef struct inst {     /* one successful create: an instance of its key id */
    uint64_t call, ret;
    uint32_t src;         /* copy / derive_from: the source id */
    uint32_t usage, alg, bits;   /* copy: the requested usage and algorithm; derive_from: bits */
    uint32_t refs;        /* its op, its id's list, the heap, and its union-find children */
    uint8_t make;         /* MAKE_* of checker_core.h */
    uint8_t resolved, busy, linked;   /* linked: a node of the material union-find */
    uint8_t firm;         /* resolved, and every description's material is known */
    uint8_t single;       /* resolved, and every description has one same known material */
    uint8_t npubs;        /* root: its pair's public key is one of pubs[0..npubs-1] (0: not
                             narrowed; materials.py's publics) */
    uint8_t shared;       /* root: its material is another instance's, or derived from */
    uint16_t vallen;      /* root of the union-find: the material's length, once known */
    const uint8_t *val;   /* its bytes (in a record or a chunk: valid until the end) */
    const uint8_t *pubs[MAX_PUBLICS];   /* P256_PUBLIC_LEN bytes each, valid until the end */
    struct inst *parent;  /* union-find: an instance sharing its material (NULL: a root) */
    struct inst *derived; /* root: the derive_from instances made from its material */
    struct inst *sibling; /* the next one in that list */
    desc_t plain;         /* lifetime and key; derive_from: its description, material unknown */
    const uint8_t *salt;  /* derive_from */
    struct inst *next;    /* the free list */
    state_t descs;        /* the descriptions it may give its key, once resolved (last: only
                             its first ndescs are cleared) */
} inst_t;

typedef struct { uint64_t call, ret; } span_t;

typedef struct {          /* a successful export, until the stream passes its ret */
    uint64_t call, ret;
    const uint8_t *mat;   /* the exported bytes, or a key use's output (in its record) */
    const uint8_t *in;    /* a sign's or verify's input (in its record) */
    uint32_t key;
    uint16_t len, inlen;
    uint8_t pub;          /* export_public, sign, verify: it narrows the pair's public key */
    uint8_t kind;         /* USE_SIGN, USE_VERIFY, or USE_NONE (export, export_public) */
} read_t;

typedef struct {          /* per id: what a future copy of that id may still read */
    inst_t **creates;     /* by call */
    span_t *killers;      /* successful creates and destroys */
    uint32_t ncreates, capcreates, nkillers, capkillers;
    uint8_t dirty;        /* a killer was added since the last prune */
} sources_t;

typedef struct chunk chunk_t;

typedef struct {
    sources_t *(*find)(void *ctx, uint32_t id);   /* NULL: the id was never seen */
    void *ctx;
    const uint8_t *info;  /* derive_from's HKDF info */
    size_t infolen;
    uint64_t position;    /* the stream's call stamp: creates returning later are in flight */
    inst_t *free;
    chunk_t *chunks;      /* instances and derived materials, freed together */
    size_t room;          /* bytes left in chunks */
    uint32_t conflicts;   /* material conflicts found (materials.py's): the caller records them */
    uint8_t full;         /* a copy's candidates gave more than MAX_DESCS descriptions */
    uint64_t *weak;       /* id << 32 | order << 2 | WEAK_*: keys checked by an approximation */
    uint32_t nweak, capweak;
} sources_ctx_t;

inst_t *inst_new(sources_ctx_t *s);
void inst_release(sources_ctx_t *s, inst_t *inst);
/* HKDF-SHA-256 output of len bytes, kept until sources_free; NULL if out of memory. */
const uint8_t *material_hkdf(sources_ctx_t *s, const uint8_t *salt, size_t saltlen,
                             const uint8_t *secret, size_t secretlen, const uint8_t *info,
                             size_t infolen, size_t len);
/* d's material: the private key of a P-256 pair derived from that HKDF-SHA-256 stream, kept
 * until sources_free; 0 if out of memory, libcrypto fails or the stream runs out. */
int material_p256_derived(sources_ctx_t *s, const uint8_t *salt, size_t saltlen,
                          const uint8_t *secret, size_t secretlen, const uint8_t *info,
                          size_t infolen, desc_t *d);
void sources_free(sources_t *lists);
void sources_ctx_free(sources_ctx_t *s);   /* every instance and material */
/* The keys checked by an approximation, once each (its first reason) into out[] as
 * reason << 32 | id; their number, or -1 if more than max. */
long sources_weakened(sources_ctx_t *s, int64_t *out, size_t max);
/* The key's check is weaker than exact for this reason (WEAK_*); 0 if memory is short. */
int sources_weaken(sources_ctx_t *s, uint32_t id, unsigned reason);

int sources_add_create(sources_t *l, inst_t *inst);
int sources_add_killer(sources_t *l, uint64_t call, uint64_t ret);
/* Forget what no copy invoked at or after watermark can read (streaming._StreamSources.prune). */
void sources_prune(sources_ctx_t *s, sources_t *l, uint64_t watermark);

/* Resolve a copy's or derive_from's descriptions from its candidate source instances (a
 * material conflict it shows counts in s->conflicts); 0 if they do not fit (undecided: more
 * than MAX_DESCS descriptions, s->full set) or memory is short. */
int inst_resolve(sources_ctx_t *s, inst_t *inst);
/* Mark a resolved instance firm (single) if every description's material is known (the
 * same). */
void inst_firm(inst_t *inst);
/* What an export teaches about the material of the instance it read, once the stream passed
 * its ret (every candidate has then been read); an export_public, sign or verify narrows the
 * public keys its pair may have. One material seen as two values, or as a scalar of none of
 * the public keys it may have, counts in s->conflicts (what was known stays); 0 if memory is
 * short. */
int reveal(sources_ctx_t *s, const read_t *export);

#endif /* PSA_STRESS_CHECKER_SOURCES_H */
