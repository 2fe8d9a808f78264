/* psa-stress checker core: the fast path of the history checker (scenarios/checker/check.py).
 *
 * It reads a complete binary history (docs/history-format.md "Binary form"), merges the thread
 * files by call stamp, validates them as scenarios/history/binary.py does, and checks each key id's
 * sub-history for linearizability against the key-store model (scenarios/model/key_store.py): creates
 * (import, generate, derive, copy, derive_from), destroy, export, get_attributes and the key
 * cache (purge, open, close), key use. It answers 1 ("ok": every key linearizable), 2 (the
 * keys whose segment has no linearization, and the material conflicts, each with its culprit:
 * scenarios/checker/fast_check.py has Python confirm and explain the first of each kind, and counts
 * the others) or 0 ("undecided", with a reason): anything it does not cover (another
 * operation, a pending call, a status outside the table, a static problem, a search over its
 * budget, a state with too many descriptions) is undecided, and Python then checks the history
 * itself.
 *
 * Which (operation, status) pairs mean which rule is computed by Python from model/key_store.py's own
 * tables (scenarios/checker/fast_check.py) and passed in; rules.c implements the rules themselves.
 *
 * Per key: ops are cut at quiescent points (no op of the key in flight) into segments; the key
 * carries the exact set of states its closed segments can end in, and each segment maps it to
 * the set of end states of every real-time-respecting order (segment.c). A copy or derive_from
 * is split as docs/checker.md §2 says: a read of the source in the source's partition, and a
 * create in the target's whose descriptions are those of every candidate source instance
 * (sources.c), resolved once the stream has passed the call's ret. Single-threaded; no locks. */
#define _DEFAULT_SOURCE           /* madvise, MADV_DONTNEED */
#include "core.h"
#include "crypto.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELEASE (2u << 20)        /* bytes of records read before their pages are dropped */

typedef struct {
    const uint8_t *base, *end;    /* committed records */
    const uint8_t *kept;          /* records from here on may still be resident */
    uint64_t call;                /* call stamp of the current record */
} cursor_t;

int undecided(core_t *c, const char *what, uint64_t stamp)
{
    snprintf(c->why, c->whylen, "%s (call %llu)", what, (unsigned long long)stamp);
    return 0;
}

/* The distinct ids, forgotten or not (core.h). */
int seen_add(core_t *c, uint32_t id)
{
    if (2 * (c->nseen + 1) > c->seencap) {
        size_t cap = c->seencap ? 2 * c->seencap : 4096, old = c->seencap;
        uint64_t *was = c->seen, *slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return 0;
        c->seen = slots;
        c->seencap = cap;
        c->nseen = 0;
        for (size_t i = 0; i < old; i++)
            if (was[i])
                seen_add(c, (uint32_t)was[i]);
        free(was);
    }
    size_t j = (id * 2654435761u) & (c->seencap - 1);
    for (; c->seen[j]; j = (j + 1) & (c->seencap - 1))
        if ((uint32_t)c->seen[j] == id)
            return 1;
    c->seen[j] = (uint64_t)1 << 32 | id;
    c->nseen++;
    return 1;
}

int violation(core_t *c, uint32_t id, int kind, const op_t *culprit, uint64_t until)
{
    if (c->out[OUT_VIOLATIONS] == CORE_MAX_VIOLATIONS)
        return undecided(c, "more violations than the core reports", until);
    int64_t *v = &c->out[OUT_VIOLATION_LIST + VIOLATION_INTS * c->out[OUT_VIOLATIONS]++];
    v[0] = (int64_t)((uint64_t)kind << 48 | (uint64_t)(culprit ? culprit->action : 0) << 40
                     | (uint64_t)(culprit ? culprit->opcode : 0) << 32 | id);
    v[1] = culprit ? culprit->status : 0;
    v[2] = (int64_t)(until > INT64_MAX ? INT64_MAX : until);
    return 1;
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
    cur->base = cur->kept = head + page;
    cur->end = cur->base + committed * size;
    if (cur->end + size <= head + *len && field(c, cur->end, F_CALL) != 0)
        return undecided(c, "a call is pending (run cut short)", 0);
    cur->call = cur->base < cur->end ? field(c, cur->base, F_CALL) : UINT64_MAX;
    return 1;
}

/* One record, the next by call stamp: the per-thread rules of binary._calls. */
static int take(core_t *c, const uint8_t *rec, uint64_t *last_call)
{
    uint64_t call = field(c, rec, F_CALL), ret = field(c, rec, F_RET);
    uint16_t thread = (uint16_t)field(c, rec, F_THREAD);
    thread_t *t = &c->threads[thread];
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
    if (!t->seen)
        c->active[c->nactive++] = thread;
    t->seen = 1;
    t->seq = seq;
    t->call = call;               /* the thread's call in flight (the copies' watermark) */
    t->ret = ret;
    return feed(c, rec, call, ret);
}

/* Drop the resident pages of the records read (peak memory follows the live keys, not the
 * history). Safe for a private read-only file mapping: a material still pointed to is read
 * back from the file if touched again. */
static void release(cursor_t *cur)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (uintptr_t)cur->kept & ~(page - 1), to = (uintptr_t)cur->base & ~(page - 1);
    if (to > from) {
        madvise((void *)from, to - from, MADV_DONTNEED);
        cur->kept = (const uint8_t *)to;
    }
}

static int merge(core_t *c, cursor_t *cur, int n, int64_t *calls)
{
    uint64_t size = (uint64_t)c->cfg[CFG_RECORD_SIZE], last_call = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < n; i++)       /* few threads: a linear scan beats a heap */
            if (cur[i].call != UINT64_MAX && (best < 0 || cur[i].call < cur[best].call))
                best = i;
        if (best < 0)
            return 1;
        if (!take(c, cur[best].base, &last_call))
            return 0;
        ++*calls;
        cur[best].base += size;
        if ((size_t)(cur[best].base - cur[best].kept) >= RELEASE)
            release(&cur[best]);
        cur[best].call = cur[best].base < cur[best].end ? field(c, cur[best].base, F_CALL)
                                                         : UINT64_MAX;
    }
}

/* ---- configuration and the entry point --------------------------------------------------- */

static int configure_fields(core_t *c, const int64_t *cfg)
{
    for (int f = 0; f < F_COUNT; f++) {    /* types are checked by Python; sizes here */
        c->offsets[f] = (uint32_t)cfg[CFG_FIELDS + 2 * f];
        c->sizes[f] = (uint32_t)cfg[CFG_FIELDS + 2 * f + 1];
        uint32_t size = c->sizes[f];
        int fits = f == F_MATERIAL ? size >= 1 && size <= 255
                 : f == F_SALT ? size == 0 || size == 16
                 : f == F_INPUT ? size <= 255
                 : f == F_STATUS ? size == 4
                 : (size == 0 && f > F_SALT) || size == 1 || size == 2 || size == 4 || size == 8;
        if (!fits || (uint64_t)c->offsets[f] + size > (uint64_t)cfg[CFG_RECORD_SIZE])
            return 0;
    }
    return 1;
}

/* The lengths of cfg's constants (-1: absent, 0 bytes) and where each starts in consts. */
static void constants(const int64_t *cfg, const uint8_t *consts, const uint8_t **at,
                      size_t *len)
{
    for (int i = 0; i < CFG_FIELDS - CFG_SECRET_LEN; i++) {
        len[i] = cfg[CFG_SECRET_LEN + i] > 0 ? (size_t)cfg[CFG_SECRET_LEN + i] : 0;
        at[i] = consts;
        consts += len[i];
    }
}

/* The (op, status, variant) table from cfg's entries; the constants from consts. */
static int configure(core_t *c, const int64_t *cfg, int ncfg, const uint8_t *consts)
{
    if (ncfg < CFG_ENTRIES || cfg[CFG_VERSION] != CORE_VERSION || cfg[CFG_RECORD_SIZE] <= 0
        || (ncfg - CFG_ENTRIES) % ENTRY_INTS != 0 || !configure_fields(c, cfg))
        return undecided(c, "bad configuration", 0);
    const uint8_t *at[CFG_FIELDS - CFG_SECRET_LEN];
    size_t len[CFG_FIELDS - CFG_SECRET_LEN];
    constants(cfg, consts, at, len);
    c->secret = at[0];
    c->secretlen = len[0];
    c->info = at[1];
    c->infolen = len[1];
    c->src.info = at[2];
    c->src.infolen = len[2];
    if (!uses_begin(at[3], len[3], at[4], len[4], at[5], len[5]))
        return undecided(c, "out of memory", 0);
    c->entries = calloc(CORE_MAX_OPS, sizeof *c->entries);
    c->threads = calloc(65536, sizeof *c->threads);
    c->active = calloc(65536, sizeof *c->active);
    c->search = search_new();
    if (!c->entries || !c->threads || !c->active || !c->search)
        return undecided(c, "out of memory", 0);
    for (int i = CFG_ENTRIES; i < ncfg; i += ENTRY_INTS) {
        const int64_t *e = &cfg[i];
        if (e[0] < 0 || e[0] >= CORE_MAX_OPS || -e[1] < 0 || -e[1] > 255 || e[2] < 0
            || e[2] >= VARIANTS || e[3] < 0 || e[3] >= CORE_ACTIONS || e[3] == CORE_CREATE
            || e[4] < 0 || e[4] >= MAKES || e[5] < 0 || e[5] >= CHECKS || e[6] < 0
            || e[6] >= USES || e[7] < 0 || e[7] > UINT32_MAX || e[8] < 0 || e[8] > UINT32_MAX)
            return undecided(c, "bad entry in configuration", 0);
        c->entries[e[0]][e[2]][-e[1]] = (uint16_t)ENTRY(e[3], e[4], e[5]);
        c->uses[e[0]] = (use_t){ .kind = (uint8_t)e[6], .flag = (uint32_t)e[7],
                                 .type = (uint32_t)e[8] };
        if (e[2] >= VARIANT_VOLATILE_CREATE)
            c->by_lifetime[e[0]] = 1;
    }
    feed_init(c);
    return 1;
}

int core_check(const int64_t *cfg, int ncfg, const uint8_t *consts, const char *const *paths,
               int npaths, int64_t records, int64_t *out, char *why, size_t whylen)
{
    core_t c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.why = why;
    c.whylen = whylen;
    c.out = out;
    why[0] = '\0';
    memset(out, 0, CORE_OUT * sizeof *out);
    cursor_t *cur = calloc((size_t)npaths + 1, sizeof *cur);
    void **maps = calloc((size_t)npaths + 1, sizeof *maps);
    size_t *lens = calloc((size_t)npaths + 1, sizeof *lens);
    int ok = cur && maps && lens ? configure(&c, cfg, ncfg, consts)
                                 : undecided(&c, "out of memory", 0);
    if (ok && !crypto_begin())
        ok = undecided(&c, "libcrypto cannot be set up", 0);
    for (int i = 0; ok && i < npaths; i++)
        ok = map_thread(&c, paths[i], &cur[i], &maps[i], &lens[i]);
    ok = ok && merge(&c, cur, npaths, &out[0]) && feed_finish(&c);
    if (ok && out[0] != records)
        ok = undecided(&c, "end.json's record count differs from the thread files", 0);
    out[OUT_KEYS] = (int64_t)c.nseen;
    long weak = ok ? sources_weakened(&c.src, &out[OUT_WEAK_IDS], CORE_MAX_WEAK) : 0;
    if (weak < 0)
        ok = undecided(&c, "more keys checked by an approximation than the core reports", 0);
    out[OUT_WEAK] = weak < 0 ? 0 : weak;
    for (int i = 0; maps && i < npaths; i++)
        if (maps[i] != NULL)
            munmap(maps[i], lens[i]);
    feed_free(&c);
    uses_end();
    crypto_end();
    search_free(c.search);
    free(c.entries);
    free(c.threads);
    free(c.active);
    free(cur);
    free(maps);
    free(lens);
    return ok && out[OUT_VIOLATIONS] > 0 ? 2 : ok;
}
