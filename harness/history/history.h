/* psa-stress: the history, i.e. what every call did and when (docs/history-format.md).
 *
 * Real-time order comes from one global ticket counter (docs/history-format.md, "Why stamps give
 * real-time order"): a worker takes
 * a ticket immediately before and immediately after each PSA call. Records go into a per-thread
 * log that only its owner touches during the run, so recording takes no lock and mallocs (or
 * maps) only once per chunk. Two forms (history_open): JSON Lines, formatted in history_close()
 * after all workers joined; or binary, where each log is a MAP_SHARED view of a per-thread file
 * (history_binary.c), so a crash or kill keeps every record written so far. */
#ifndef PSA_STRESS_HISTORY_H
#define PSA_STRESS_HISTORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "history/record.h"

typedef struct history_chunk history_chunk_t;
typedef struct history_sink history_sink_t;

/* One worker's records, in its call order (hence in ticket order). Owned by that worker until it
 * is joined. Every call is built in `scratch` and copied into its slot in the chunks by
 * history_publish (history.c: TSan does not track the chunks). When recording is off
 * there is no slot and no ticket is taken. In the binary form, *committed (in the thread file's
 * header page) counts the records that are complete: history_next() advances it past the
 * previous record before handing out the next. */
typedef struct {
    bool enabled;
    history_chunk_t *first;
    history_chunk_t *last;
    record_t scratch;
    record_t *slot;                /* the current call's record in the chunks, or NULL */
    int fd;                        /* binary form: the thread's record file, else -1 */
    _Atomic uint64_t *committed;   /* binary form: in the file's header page, else NULL */
    uint64_t handed_out;           /* records returned by history_next() so far */
} history_log_t;

/* Run parameters copied into the header line. NULL strings are written as null. */
typedef struct {
    const char *variant;
    const char *scenario;
    const char *mix;
    const char *key_kinds;
    unsigned threads;
    uint64_t seed;
    uint64_t ops;    /* total calls requested; written as null when seconds > 0 */
    double seconds;  /* run length; 0 = run by op count, written as null */
    unsigned volatile_pool;
    unsigned persistent_ids;
    unsigned persistent_percent;
    bool overlap_destroy; /* beyond-spec mode (id_locks.h), written as "spec_mode" */
    /* Extra header members (`,"name":value...`) or NULL: the nemesis's engine and faults. */
    void (*print_params)(FILE *f);
    /* Extra members of the JSON Lines end line (`,"name":value...`) or NULL: the driver's
     * findings after the join (live keys, reloads), known only when the history is closed. */
    void (*print_end)(FILE *f);
} history_header_t;

/* How the operation table prints the per-operation part of a record. */
typedef struct {
    const char *(*op_name)(unsigned op);
    /* Prints `,"args":{...}` and, when status is SUCCESS and the operation has outputs,
     * `,"out":{...}`. */
    void (*print_body)(FILE *f, const record_t *r);
    unsigned (*op_count)(void);
    /* Prints a JSON object of the inputs every record of an operation shares and that records
     * therefore do not carry (e.g. the derive secret); NULL: none. Binary header only. */
    void (*print_constants)(FILE *f);
} history_printer_t;

/* Where the history goes. A path ending in ".jsonl": JSON Lines, written by history_close().
 * Any other path: a directory, created now, holding the binary form (header.json now, one record
 * file per thread as the run goes, end.json at history_close). Returns NULL with errno set. */
history_sink_t *history_open(const char *path, const history_header_t *h,
                             const history_printer_t *p);

/* `sink` NULL: recording off. `expected` sizes the first chunk (the thread's op count when known)
 * so a run by op count allocates once, before the start barrier. Returns false on failure. */
bool history_log_init(history_log_t *log, history_sink_t *sink, unsigned thread,
                      size_t expected);
void history_log_free(history_log_t *log);

/* The thread's next record, zeroed: the log's scratch, with a slot reserved for it in the
 * chunks when recording. NULL when out of memory. */
record_t *history_next(history_log_t *log);

/* Copies the scratch record into its slot (no-op when recording is off). Called once the call
 * stamp is taken (so that a crash leaves the call in flight in a binary history, pending) and
 * once the record is complete, before the next history_next. */
void history_publish(history_log_t *log);

/* A fresh ticket from the global counter (acq_rel RMW, hidden from TSan), or 0 when recording is
 * off. Tickets start at 1, so a binary record whose call is 0 was never started. */
uint64_t history_stamp(const history_log_t *log);

/* Completes the history of logs[0 .. h->threads-1] (all joined): JSON Lines writes the header,
 * the records merged by `call` and the end line; binary writes end.json. Frees the sink. Returns
 * false on an I/O error. */
bool history_close(history_sink_t *sink, const history_log_t *const *logs);

/* JSON building blocks shared with the operation table and main. */
void history_print_string(FILE *f, const char *s); /* quoted and escaped; NULL → null */
void history_print_hex(FILE *f, const uint8_t *bytes, size_t len); /* quoted lower-case hex */
void history_print_attrs(FILE *f, const record_attrs_t *a); /* "lifetime":..,...,"alg":.. */
/* The run header object without its closing brace (shared by both forms). */
void history_print_run_header(FILE *f, const history_header_t *h);
/* The status table as a JSON object {"<code>": "<name>", ...}. */
void history_print_status_table(FILE *f);

#endif /* PSA_STRESS_HISTORY_H */
