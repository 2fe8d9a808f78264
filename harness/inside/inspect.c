/* psa-stress: the inside invariants (see inspect.h).
 *
 * The slots are read through slot_walk.h (accessors compiled into the core's own
 * slot-management file), with mbedtls_threading_key_slot_mutex held for the whole walk, so the
 * walk is ordered after every slot change the workers made (they all change slots under that
 * mutex). At quiescence no call is in flight, so any slot that is not EMPTY or FULL, or that has
 * a reader, was left behind by a call that already returned. */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS /* mbedtls_psa_stats_t fields */
#define _GNU_SOURCE

#include "inside/inspect.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/threading.h>

#include "psa_crypto_storage.h"
#include "inside/reloads.h"
#include "inside/slot_walk.h"

#define MAX_REPORTED 20 /* violations printed per check; the count is always printed */

static unsigned violations;

static void violated(const char *fmt, ...)
{
    if (++violations <= MAX_REPORTED) {
        va_list ap;
        va_start(ap, fmt);
        fputs("invariant violated: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static const char *state_name(psa_key_slot_state_t state)
{
    static const char *const names[] = { "EMPTY", "FILLING", "FULL", "PENDING_DELETION" };
    return (unsigned) state < 4 ? names[state] : "?";
}

static psa_key_id_t slot_id(const psa_key_slot_t *slot)
{
    return MBEDTLS_SVC_KEY_ID_GET_KEY_ID(psa_get_key_id(&slot->attr));
}

static bool in_user_range(psa_key_id_t id)
{
    return id >= PSA_KEY_ID_USER_MIN && id <= PSA_KEY_ID_USER_MAX;
}

/* I4: where the core looks a key up must be where it is. Key-slot mutex held. */
static void check_placement(size_t slice, size_t index, const psa_key_slot_t *slot)
{
    psa_key_id_t id = slot_id(slot);
    bool is_volatile = PSA_KEY_LIFETIME_IS_VOLATILE(psa_get_key_lifetime(&slot->attr));
    bool in_cache = slice == slot_walk_cache_slice();
    if (slot_walk_dynamic() && is_volatile == in_cache) {
        violated("slot (%zu,%zu) holds a %s key (id 0x%x) in the %s slice", slice, index,
                 is_volatile ? "volatile" : "persistent", (unsigned) id,
                 in_cache ? "persistent cache" : "volatile");
    } else if (is_volatile && id != slot_walk_volatile_id(slice, index)) {
        violated("slot (%zu,%zu) holds volatile id 0x%x, but that slot's id is 0x%x", slice,
                 index, (unsigned) id, (unsigned) slot_walk_volatile_id(slice, index));
    } else if (!is_volatile && !in_user_range(id)) {
        violated("slot (%zu,%zu) holds a persistent key with id 0x%x outside the user range",
                 slice, index, (unsigned) id);
    }
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    if (slot->slice_index != slice) {
        violated("slot (%zu,%zu) (id 0x%x) records slice index %u", slice, index,
                 (unsigned) id, (unsigned) slot->slice_index);
    }
#endif
}

/* I6: a cached persistent key is its storage object. Key-slot mutex held. */
static void check_storage(const psa_key_slot_t *slot)
{
    psa_key_attributes_t stored = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_id(&stored, psa_get_key_id(&slot->attr));
    uint8_t *data = NULL;
    size_t len = 0;
    psa_status_t status = __real_psa_load_persistent_key(&stored, &data, &len);
    psa_key_id_t id = slot_id(slot);
    psa_key_usage_t usage = psa_get_key_usage_flags(&stored);
    psa_extend_key_usage_flags(&usage); /* as psa_get_and_lock_key_slot does on a load */
    if (status != PSA_SUCCESS) {
        violated("cached persistent key 0x%x has no readable storage object (status %d)",
                 (unsigned) id, (int) status);
    } else if (len != slot->key.bytes || memcmp(data, slot->key.data, len) != 0) {
        violated("cached persistent key 0x%x: material differs from storage (%zu vs %zu "
                 "bytes)", (unsigned) id, slot->key.bytes, len);
    } else if (psa_get_key_type(&stored) != psa_get_key_type(&slot->attr)
               || psa_get_key_bits(&stored) != psa_get_key_bits(&slot->attr)
               || psa_get_key_algorithm(&stored) != psa_get_key_algorithm(&slot->attr)
               || psa_get_key_lifetime(&stored) != psa_get_key_lifetime(&slot->attr)
               || usage != psa_get_key_usage_flags(&slot->attr)) {
        violated("cached persistent key 0x%x: attributes differ from storage", (unsigned) id);
    }
    if (status == PSA_SUCCESS) {
        psa_free_persistent_key_data(data, len);
    }
    psa_reset_key_attributes(&stored);
}

/* I1, I2, I4 for one slot; a FULL slot's id goes to ids[*n]. Key-slot mutex held. */
static void check_slot(size_t slice, size_t index, psa_key_id_t *ids, size_t *n)
{
    const psa_key_slot_t *slot = slot_walk_slot(slice, index);
    if (slot->state == PSA_SLOT_EMPTY) {
        return; /* the reader count may hold the free-list link here (slot_walk.h) */
    }
    if (slot->state != PSA_SLOT_FULL) {
        violated("slot (%zu,%zu) (id 0x%x) left %s at quiescence", slice, index,
                 (unsigned) slot_id(slot), state_name(slot->state));
    }
    if (slot_walk_readers(slot) != 0) {
        violated("slot (%zu,%zu) (id 0x%x) has %zu registered readers at quiescence", slice,
                 index, (unsigned) slot_id(slot), slot_walk_readers(slot));
    }
    if (slot->state != PSA_SLOT_FULL) {
        return;
    }
    ids[(*n)++] = slot_id(slot);
    check_placement(slice, index, slot);
}

/* I5: the free list of a volatile slice of the dynamic store. Key-slot mutex held. */
static void check_free_list(size_t slice)
{
    size_t length = slot_walk_slice_length(slice);
    size_t empty = 0, listed = 0;
    for (size_t i = 0; i < length; i++) {
        empty += slot_walk_slot(slice, i)->state == PSA_SLOT_EMPTY;
    }
    for (size_t i = slot_walk_free_head(slice); i < length; listed++) {
        const psa_key_slot_t *slot = slot_walk_slot(slice, i);
        if (listed == length) {
            violated("slice %zu: the free list has a cycle", slice);
            return;
        }
        if (slot->state != PSA_SLOT_EMPTY) {
            violated("slice %zu: the free list holds slot %zu, which is %s (id 0x%x)", slice,
                     i, state_name(slot->state), (unsigned) slot_id(slot));
            return;
        }
        i = slot_walk_next_free(slot, i);
    }
    if (listed != empty) {
        violated("slice %zu: %zu EMPTY slots but %zu on the free list", slice, empty, listed);
    }
}

static int compare_ids(const void *a, const void *b)
{
    psa_key_id_t x = *(const psa_key_id_t *) a, y = *(const psa_key_id_t *) b;
    return (x > y) - (x < y);
}

/* I3, on the sorted ids of the FULL slots. */
static void check_unique(psa_key_id_t *ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), compare_ids);
    for (size_t i = 1; i < n; i++) {
        if (ids[i] == ids[i - 1]) {
            violated("two FULL slots hold key id 0x%x", (unsigned) ids[i]);
        }
    }
}

static size_t total_slots(void)
{
    size_t total = 0;
    for (size_t s = 0; s < slot_walk_slice_count(); s++) {
        total += slot_walk_slice_length(s);
    }
    return total;
}

/* I6 for every FULL persistent slot. Key-slot mutex held. */
static void check_cached_keys(void)
{
    for (size_t s = 0; s < slot_walk_slice_count(); s++) {
        for (size_t i = 0; i < slot_walk_slice_length(s); i++) {
            const psa_key_slot_t *slot = slot_walk_slot(s, i);
            if (slot->state == PSA_SLOT_FULL
                && !PSA_KEY_LIFETIME_IS_VOLATILE(psa_get_key_lifetime(&slot->attr))) {
                check_storage(slot);
            }
        }
    }
}

/* Walks every allocated slot, checking I1-I6 in that order. Key-slot mutex held. Returns the
 * FULL ids (sorted, malloc'ed) or NULL when out of memory. */
static psa_key_id_t *walk_slots(size_t *n)
{
    psa_key_id_t *ids = malloc((total_slots() + 1) * sizeof(*ids));
    *n = 0;
    if (ids == NULL) {
        return NULL;
    }
    for (size_t s = 0; s < slot_walk_slice_count(); s++) {
        for (size_t i = 0; i < slot_walk_slice_length(s); i++) {
            check_slot(s, i, ids, n);
        }
        if (slot_walk_dynamic() && s != slot_walk_cache_slice()) {
            check_free_list(s);
        }
    }
    check_unique(ids, *n);
    check_cached_keys();
    return ids;
}

/* I2 as the library counts it. Key-slot mutex held. */
static void check_stats(void)
{
    mbedtls_psa_stats_t stats;
    mbedtls_psa_get_stats(&stats);
    if (stats.locked_slots != 0) {
        violated("mbedtls_psa_get_stats: %zu slots have registered readers at quiescence",
                 stats.locked_slots);
    }
}

static void lock_slots(void)
{
    if (mbedtls_mutex_lock(&mbedtls_threading_key_slot_mutex) != 0) {
        violated("cannot lock the key-slot mutex");
    }
}

static void unlock_slots(void)
{
    mbedtls_mutex_unlock(&mbedtls_threading_key_slot_mutex);
}

/* ---- the live set ---- */

/* Adds the key id of every "<owner:8 hex><id:8 hex>.psa_its" file in the current directory. */
static size_t add_storage_ids(psa_key_id_t **ids, size_t n)
{
    DIR *d = opendir(".");
    if (d == NULL) {
        return n;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL && *ids != NULL;) {
        unsigned owner, id;
        char tail[16];
        if (sscanf(e->d_name, "%8x%8x%15s", &owner, &id, tail) == 3
            && strcmp(tail, ".psa_its") == 0 && strlen(e->d_name) == 24) {
            psa_key_id_t *grown = realloc(*ids, (n + 1) * sizeof(**ids));
            if (grown == NULL) {
                free(*ids);
            }
            *ids = grown;
            if (grown != NULL) {
                grown[n++] = (psa_key_id_t) id;
            }
        }
    }
    closedir(d);
    return n;
}

static bool is_hidden(psa_key_id_t id, const psa_key_id_t *hidden, size_t n_hidden)
{
    for (size_t i = 0; i < n_hidden; i++) {
        if (hidden[i] == id) {
            return true;
        }
    }
    return false;
}

/* The live set from the sorted FULL ids: add the key files, sort, drop duplicates and the
 * hidden ids. Takes ownership of `ids`. */
static void collect_live(psa_key_id_t *ids, size_t n, const psa_key_id_t *hidden,
                         size_t n_hidden, inspect_live_t *live)
{
    n = add_storage_ids(&ids, n);
    live->ids = ids;
    live->count = 0;
    if (ids == NULL) {
        violated("out of memory while listing the live keys");
        return;
    }
    qsort(ids, n, sizeof(*ids), compare_ids);
    for (size_t i = 0; i < n; i++) {
        if ((live->count == 0 || ids[live->count - 1] != ids[i])
            && !is_hidden(ids[i], hidden, n_hidden)) {
            ids[live->count++] = ids[i];
        }
    }
}

bool inspect_invariants(const psa_key_id_t *hidden, size_t n_hidden, inspect_live_t *live)
{
    size_t n;
    violations = 0;
    lock_slots();
    check_stats();
    psa_key_id_t *ids = walk_slots(&n);
    unlock_slots();
    if (ids == NULL) {
        violated("out of memory while walking the key slots");
    }
    if (live != NULL) {
        collect_live(ids, n, hidden, n_hidden, live);
    } else {
        free(ids);
    }
    if (violations > MAX_REPORTED) {
        fprintf(stderr, "invariant violated: ... %u violations in all\n", violations);
    }
    return violations == 0;
}
