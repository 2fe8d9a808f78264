/* psa-stress checker core: the fast path of the history checker (checker_core.c). Loaded by
 * scenarios/checker/fast_check.py through ctypes; the constants below are mirrored there. */
#ifndef PSA_STRESS_CHECKER_CORE_H
#define PSA_STRESS_CHECKER_CORE_H

#include <stddef.h>
#include <stdint.h>

#define CORE_VERSION 6
#define CORE_MAX_OPS 64         /* operation codes of the binary layout */
#define CORE_MAX_FIELDS 24
/* The reason ("why") of an undecided answer that the core built with more descriptions per
 * state (state.h MAX_DESCS) may decide: fast_check.py then asks that build. */
#define CORE_FULL_STATE "a copy's source instances give more descriptions than a state holds"
/* core_check's out[]: records, key ids seen, the number n of keys checked by an approximation
 * (scenarios/model/materials.py), the number v of violations, then n entries reason << 32 | id
 * (n <= CORE_MAX_WEAK, else undecided), then from OUT_VIOLATION_LIST v violations of
 * VIOLATION_INTS ints (v <= CORE_MAX_VIOLATIONS, else undecided): kind << 48 | action << 40 |
 * op code << 32 | key id (the culprit's operation and model action), its status code, and the
 * stamp up to which the calls show it (a linearizability violation: the largest ret of the
 * failing segment; a material one: the stream's position when it was found). */
enum { OUT_RECORDS, OUT_KEYS, OUT_WEAK, OUT_VIOLATIONS, OUT_WEAK_IDS, CORE_MAX_WEAK = 4096,
       OUT_VIOLATION_LIST = OUT_WEAK_IDS + CORE_MAX_WEAK, VIOLATION_INTS = 3,
       CORE_MAX_VIOLATIONS = 4096,
       CORE_OUT = OUT_VIOLATION_LIST + VIOLATION_INTS * CORE_MAX_VIOLATIONS };
enum { VIOLATION_LINEARIZABILITY = 1,   /* a key's segment has no linearization */
       VIOLATION_MATERIAL };            /* one material shown as two values (sources.c) */
enum { WEAK_ANY_KEY = 1, WEAK_SEVERAL_SOURCES, WEAK_SEVERAL_INSTANCES,   /* materials.py's */
       WEAK_UNBOUND_USE,
       WEAK_UNTIED_DERIVATION,     /* derive_from into a type whose material is not raw bytes */
       WEAK_SPLIT };               /* a copy's source may have changed while it ran */

/* Layout of the configuration array cfg[]. */
enum {
    CFG_VERSION,        /* CORE_VERSION */
    CFG_RECORD_SIZE,
    CFG_HEADER_PAGE,
    CFG_SECRET_LEN,     /* derive's SECRET, then derive's and derive_from's INFO: lengths of */
    CFG_INFO_LEN,       /* the parts of the consts argument of core_check (-1: absent) */
    CFG_FROM_INFO_LEN,
    CFG_HASH_LEN,       /* then verify's HASH, the AEAD NONCE, mac_multipart's MESSAGE */
    CFG_NONCE_LEN,
    CFG_MESSAGE_LEN,
    CFG_FIELDS,         /* (offset, size) of each field, in the order of enum field (.c) */
    CFG_ENTRIES = CFG_FIELDS + 2 * CORE_MAX_FIELDS   /* then entries of ENTRY_INTS ints */
};

/* An entry: (op code, status code, variant, key action, create action, check, use, usage flag,
 * key type): what a record of this (op, status) means for the model (operations.key_ops and
 * static_problem; for a key use, which one and model_use.USES's flag and key type). No entry:
 * undecided. The variant says which records it is for: a create by its lifetime, any other
 * operation by the id it names. */
#define ENTRY_INTS 9
enum { VARIANT_VOLATILE_ID, VARIANT_PERSISTENT_ID, VARIANT_ID_ZERO,
       VARIANT_VOLATILE_CREATE, VARIANT_PERSISTENT_CREATE, VARIANTS };

/* Key actions: the rule applied to the record's `key` (a copy's or derive_from's source). */
enum {
    CORE_NOOP,           /* constrains nothing */
    CORE_CREATE,         /* (internal) a create: ABSENT -> PRESENT(its descriptions) */
    CORE_PRESENT,        /* key_store.rule_present */
    CORE_ABSENT,         /* key_store.rule_absent */
    CORE_DESTROY,        /* key_store.rule_destroy */
    CORE_EXPORT,         /* key_store.rule_export: material (binds an unknown one) */
    CORE_EXPORT_DENIED,  /* key_store.rule_export_denied */
    CORE_ATTRIBUTES,     /* key_store.rule_attributes */
    CORE_COPY_SOURCE,    /* key_store.rule_copy_source (the requested algorithm) */
    CORE_COPY_DENIED,    /* key_store.rule_copy_denied */
    CORE_COPY_BAD_ARG,   /* key_store.rule_copy_bad_argument */
    CORE_DERIVE_SOURCE,  /* key_use.rule_derive_source */
    CORE_DERIVE_DENIED,  /* key_use.rule_derive_denied */
    CORE_USE,            /* key_use.rule_use: the output follows from the material */
    CORE_USE_REJECTED,   /* key_use.rule_use_rejected: the material rejects the input */
    CORE_USE_DENIED,     /* key_use.rule_use_denied */
    CORE_PUBLIC_REFUSED, /* key_use.rule_export_public_refused */
    CORE_SIGNED,         /* key_use.rule_signed (binds an unknown key pair: not read-only) */
    CORE_EXPORT_PUBLIC,  /* key_use.rule_export_public (binds likewise) */
    CORE_DESTROY_MAYBE,  /* key_store.rule_destroy_maybe (a storage error): intact, or gone */
    CORE_ACTIONS
};

/* Key uses (model_use.USES), and what their records carry: input (the record's input field),
 * output (its material field). */
enum { USE_NONE, USE_SIGN, USE_VERIFY, USE_CIPHER_ENCRYPT, USE_CIPHER_DECRYPT, USE_MAC,
       USE_MAC_MULTIPART, USE_AEAD_ENCRYPT, USE_AEAD_DECRYPT, USES };

/* Create actions: what the record does to the id it creates (or finds existing). */
enum { MAKE_NONE, MAKE_IMPORT, MAKE_GENERATE, MAKE_DERIVE, MAKE_COPY, MAKE_DERIVE_FROM,
       MAKE_PRESENT, MAKES };

/* Static checks of a record (operations.static_problem's value checks). */
enum { CHECK_NONE, CHECK_CREATED_ID, CHECK_SAME_KEY,
       CHECK_MULTIPART,     /* the setup's ticket inside the call; a failure only at setup */
       CHECKS };

/* Check the complete binary history whose thread files are paths[0..npaths-1] and whose
 * end.json counts `records` records. consts: the constants of cfg's lengths, in that order.
 * Returns 1 (ok: linearizable, statically clean), 2 (every key checked, the violations in
 * out[]: a violated key's later ops are dropped, its creates and destroys still count for
 * copies) or 0 (undecided: the reason in why). out[0]: records read, out[1]: key ids with
 * per-key ops. */
int core_check(const int64_t *cfg, int ncfg, const uint8_t *consts, const char *const *paths,
               int npaths, int64_t records, int64_t *out, char *why, size_t whylen);

#endif /* PSA_STRESS_CHECKER_CORE_H */
