/* psa-stress checker core: the state of one check, shared by checker_core.c (thread files,
 * merge, configuration) and feed.c (records -> per-key ops, segments). Single-threaded. */
#ifndef PSA_STRESS_CHECKER_CORE_INTERNAL_H
#define PSA_STRESS_CHECKER_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "checker_core.h"
#include "segment.h"
#include "sources.h"

enum field { F_CALL, F_RET, F_SEQ, F_THREAD, F_OP, F_STATUS, F_KEY, F_OUT_KEY, F_LIFETIME,
             F_ID, F_TYPE, F_BITS, F_USAGE, F_ALG, F_MATERIAL, F_MATERIAL_LEN, F_SALT, F_INPUT,
             F_INPUT_LEN, F_MID, F_STAGE, F_COUNT };   /* salt and after: may be absent */

/* A packed entry of the (op, variant, -status) table: valid, key action, create action, check. */
#define ENTRY_VALID 0x8000u
#define ENTRY(key, make, check) (ENTRY_VALID | (key) | (make) << 5 | (check) << 9)
#define ENTRY_KEY(e) ((e) & 0x1F)
#define ENTRY_MAKE(e) ((e) >> 5 & 0xF)
#define ENTRY_CHECK(e) ((e) >> 9 & 0x7)

typedef struct {
    uint32_t id;
    uint8_t used;
    uint8_t nstates, capstates;
    uint64_t horizon;     /* largest ret of the open segment */
    state_t *states;      /* the states its history so far may end in (NULL: ABSENT only) */
    op_t *ops;
    uint32_t nops, cap;
    uint8_t listed;       /* LISTED_OPEN, LISTED_DIRTY: its id is in that list of core_t */
    uint8_t violated;     /* a segment had no linearization: its later ops are dropped */
    sources_t sources;    /* the instances of this id a future copy may read */
} key_t_;

#define LISTED_OPEN 1     /* it has an open segment */
#define LISTED_DIRTY 2    /* its sources may be pruned */

typedef struct {
    uint32_t *ids;
    size_t n, cap;
} idlist_t;

typedef struct {
    uint64_t call, ret;   /* of its last call */
    uint32_t seq;
    uint8_t seen;
} thread_t;

typedef struct {
    const int64_t *cfg;
    uint32_t offsets[F_COUNT], sizes[F_COUNT];
    uint16_t (*entries)[VARIANTS][256];   /* [op][variant][-status] */
    uint8_t by_lifetime[CORE_MAX_OPS];    /* creates: the variant follows the lifetime */
    use_t uses[CORE_MAX_OPS];             /* key uses: kind, flag and key type (no bytes) */
    const uint8_t *secret, *info;         /* derive's */
    size_t secretlen, infolen;
    key_t_ *keys;                         /* the live keys (feed.c forgets the others) */
    size_t nkeys, keycap;
    uint64_t *seen;                       /* every id met: 1 << 32 | id */
    size_t nseen, seencap;
    idlist_t open, dirty;                 /* the keys a sweep looks at */
    idlist_t forget;                      /* a sweep's keys to forget */
    uint64_t next_sweep;
    inst_t **copies;                      /* min-heap by ret: copies not resolved yet */
    size_t ncopies, copycap;
    read_t *reads;                        /* successful exports in flight (one per thread at
                                             most), resolved once the stream passes their ret */
    size_t nreads, readcap;
    uint64_t reads_due;                   /* the smallest ret among them */
    thread_t *threads;                    /* [65536] */
    uint16_t *active;                     /* the threads seen */
    size_t nactive;
    uint64_t fed;                         /* records fed */
    sources_ctx_t src;
    uint8_t opcode;                       /* of the record being fed */
    int16_t status;
    int64_t *out;                         /* core_check's: the violations go there */
    char *why;
    size_t whylen;
    search_t *search;
} core_t;

int undecided(core_t *c, const char *what, uint64_t stamp);
/* Record a violation (VIOLATION_*) of key id, its culprit op (NULL: none), the stamp up to
 * which the calls show it (checker_core.h); 0 (undecided) if there are too many. */
int violation(core_t *c, uint32_t id, int kind, const op_t *culprit, uint64_t until);
/* Count the distinct ids (the partitions of Python's report); 0 if out of memory. */
int seen_add(core_t *c, uint32_t id);

/* A record field (little-endian host: x86-64, arm64; the status is 4 bytes). */
static inline uint64_t field(const core_t *c, const uint8_t *rec, int f)
{
    uint64_t v = 0;
    memcpy(&v, rec + c->offsets[f], c->sizes[f]);
    return v;
}

void feed_init(core_t *c);
/* One record, the next by call stamp (feed.c); 0: undecided. */
int feed(core_t *c, const uint8_t *rec, uint64_t call, uint64_t ret);
/* The end of the stream: resolve every copy, close every segment; 0: undecided. */
int feed_finish(core_t *c);
void feed_free(core_t *c);

#endif /* PSA_STRESS_CHECKER_CORE_INTERNAL_H */
