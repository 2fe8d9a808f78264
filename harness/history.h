/* psa-stress: the history, i.e. what every call did and when (docs/history-format.md).
 *
 * Real-time order comes from one global ticket counter (linearizability.md §5.3): a worker takes
 * a ticket immediately before and immediately after each PSA call. Records go into a per-thread
 * log that only its owner touches during the run, so recording takes no lock, does no I/O and
 * mallocs only once per chunk. Formatting happens in history_write(), after all workers joined. */
#ifndef PSA_STRESS_HISTORY_H
#define PSA_STRESS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

typedef struct history_chunk history_chunk_t;

/* One worker's records, in its call order (hence in ticket order). Owned by that worker until it
 * is joined. When recording is off, every call reuses `scratch` and no ticket is taken. */
typedef struct {
    bool enabled;
    history_chunk_t *first;
    history_chunk_t *last;
    record_t scratch;
} history_log_t;

/* Run parameters copied into the header line. NULL strings are written as null. */
typedef struct {
    const char *variant;
    const char *scenario;
    const char *mix;
    unsigned threads;
    uint64_t seed;
    uint64_t ops;    /* total calls requested; written as null when seconds > 0 */
    double seconds;  /* run length; 0 = run by op count, written as null */
    unsigned volatile_pool;
    unsigned persistent_ids;
    unsigned persistent_percent;
} history_header_t;

/* How the operation table prints the per-operation part of a record. */
typedef struct {
    const char *(*op_name)(unsigned op);
    /* Prints `,"args":{...}` and, when status is SUCCESS and the operation has outputs,
     * `,"out":{...}`. */
    void (*print_body)(FILE *f, const record_t *r);
} history_printer_t;

/* `expected` sizes the first chunk (the thread's op count when known) so a run by op count
 * allocates once, before the start barrier. Returns false when out of memory. */
bool history_log_init(history_log_t *log, bool enabled, size_t expected);
void history_log_free(history_log_t *log);

/* The slot for the thread's next record; NULL when out of memory. */
record_t *history_next(history_log_t *log);

/* A fresh ticket from the global counter (acq_rel RMW), or 0 when recording is off. */
uint64_t history_stamp(const history_log_t *log);

/* Writes the header, the records of logs[0 .. h->threads-1] merged by `call`, and the end line.
 * Returns false on an I/O error. */
bool history_write(FILE *f, const history_header_t *h, const history_log_t *const *logs,
                   const history_printer_t *p);

/* JSON building blocks shared with the operation table and main. */
void history_print_string(FILE *f, const char *s); /* quoted and escaped; NULL → null */
void history_print_hex(FILE *f, const uint8_t *bytes, size_t len); /* quoted lower-case hex */
void history_print_attrs(FILE *f, const record_attrs_t *a); /* "lifetime":..,...,"alg":.. */

#endif /* PSA_STRESS_HISTORY_H */
