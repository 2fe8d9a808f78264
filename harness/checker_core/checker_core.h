/* psa-stress checker core: the accept-only fast path of the history checker (checker_core.c).
 * Loaded by scenarios/fast_check.py through ctypes; the constants below are mirrored there. */
#ifndef PSA_STRESS_CHECKER_CORE_H
#define PSA_STRESS_CHECKER_CORE_H

#include <stddef.h>
#include <stdint.h>

#define CORE_VERSION 1
#define CORE_MAX_ACTIONS 512

/* Layout of the configuration array cfg[]. */
enum {
    CFG_VERSION,        /* CORE_VERSION */
    CFG_RECORD_SIZE,
    CFG_HEADER_PAGE,
    CFG_FIELDS,         /* (offset, size) of each field, in the order of enum field (.c) */
    CFG_ACTIONS = CFG_FIELDS + 2 * 16   /* then (op code, status code, action) triples */
};

/* What a record of (op, status) is for the model (model.py rule); anything else: undecided. */
enum {
    CORE_UNDECIDED,
    CORE_NOOP,           /* a legitimate status that constrains nothing */
    CORE_CREATE,         /* generate SUCCESS: ABSENT -> PRESENT(attrs, material unknown) */
    CORE_CREATE_IMPORT,  /* import SUCCESS: ABSENT -> PRESENT(attrs, material) */
    CORE_PRESENT,        /* persistent create ALREADY_EXISTS: the requested id is present */
    CORE_ABSENT,         /* INVALID_HANDLE: the key is absent */
    CORE_DESTROY,        /* destroy SUCCESS: PRESENT -> ABSENT */
    CORE_EXPORT,         /* export SUCCESS: present, EXPORT usage, material (binds unknown) */
    CORE_EXPORT_DENIED,  /* export NOT_PERMITTED: present without EXPORT usage */
    CORE_ATTRIBUTES      /* get_attributes SUCCESS: present with these attributes */
};

/* Check the complete binary history whose thread files are paths[0..npaths-1] and whose
 * end.json counts `records` records. Returns 1 (ok: linearizable, statically clean) or 0
 * (undecided: the reason in why). out[0]: records read, out[1]: key ids with per-key ops. */
int core_check(const int64_t *cfg, int ncfg, const char *const *paths, int npaths,
               int64_t records, int64_t *out, char *why, size_t whylen);

#endif /* PSA_STRESS_CHECKER_CORE_H */
