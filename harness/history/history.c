/* psa-stress: ticket stamps, per-thread record logs, and the JSON Lines writer (the binary form
 * is history_binary.c). The output format is the contract in docs/history-format.md; keep the
 * two in step.
 *
 * Compiled without TSan instrumentation, like every file of the harness's bookkeeping
 * (CMakeLists.txt, TSAN_UNTRACKED): the ticket counter must add no happens-before edge TSan
 * could mistake for the library's (below), and the record memory is written by its worker only
 * and read after the join, so TSan has nothing to check there. Tracking it cost a page of shadow
 * memory per 2 KiB of history and its page faults in the measured run: about a quarter of TSan
 * throughput (bench/bench_driver.py). Memory copies into it are word loops through a volatile
 * pointer: a memcpy call would go through TSan's interceptor whoever makes it. */
#include "driver/describe.h"
#include "history/history.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/build_info.h>

#include "history/history_binary.h"

/* Records per chunk after the first one. Chunk sizes are multiples of history_page_records(), so
 * that every chunk of a binary log starts on a page boundary of its file. */
#define CHUNK_RECORDS 65536

struct history_chunk {
    history_chunk_t *next;
    size_t cap;
    size_t used;
    record_t *records; /* malloc'd, or a MAP_SHARED view of the thread's binary file */
};

struct history_sink {
    history_header_t header;
    const history_printer_t *printer;
    FILE *jsonl;  /* JSON Lines form, else NULL */
    int dir;      /* binary form: the history directory, else -1 */
};

/* The one global ticket counter. Every ticket is an acq_rel RMW on it, so tickets are unique and
 * A.ret < B.call implies A's return happens-before B's call (docs/history-format.md, "Why
 * stamps give real-time order"). It starts at 1: a zero call stamp marks a binary record slot
 * that was never used.
 *
 * TSan does not see it (this file is not instrumented). That happens-before edge would be a lie
 * told to the race detector: every call that returned before another began would count as
 * synchronised with it, so TSan could only report races between calls that overlapped in this
 * very run, not all unsynchronised accesses in the library. */
static _Atomic uint64_t ticket_counter = 1;

uint64_t history_stamp(const history_log_t *log)
{
    if (!log->enabled) {
        return 0;
    }
    return atomic_fetch_add_explicit(&ticket_counter, 1, memory_order_acq_rel);
}

static void copy_record(record_t *dst, const record_t *src)
{
    _Static_assert(sizeof(record_t) % sizeof(uint64_t) == 0, "records are whole words");
    volatile uint64_t *to = (volatile uint64_t *) dst;
    const uint64_t *from = (const uint64_t *) src;
    for (size_t i = 0; i < sizeof(record_t) / sizeof(uint64_t); i++) {
        to[i] = from[i];
    }
}

/* Writes a zero into every page of [p, p + len), which is zero already or not yet in use. */
static void prefault(void *p, size_t len)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    volatile uint8_t *bytes = p;
    for (size_t at = 0; at < len; at += page) {
        bytes[at] = 0;
    }
}

/* The records are touched here, so that the page faults (and the TLB shootdowns they cause in
 * the other workers) of a run by op count all happen before the start barrier instead of during
 * the measured run. */
static history_chunk_t *chunk_new(history_log_t *log, size_t cap)
{
    size_t page = history_page_records();
    cap = (cap + page - 1) / page * page;
    history_chunk_t *c = malloc(sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->records = log->fd >= 0 ? history_binary_map(log, cap) : malloc(cap * sizeof(record_t));
    if (c->records == NULL) {
        free(c);
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    if (log->fd < 0) {
        memset(c->records, 0, cap * sizeof(record_t));
    } else { /* a file mapping is zero already (fallocate): touch it for the page faults alone */
        prefault(c->records, cap * sizeof(record_t));
    }
    return c;
}

static void chunk_free(const history_log_t *log, history_chunk_t *c)
{
    if (log->fd >= 0) {
        history_binary_unmap(c->records, c->cap);
    } else {
        free(c->records);
    }
    free(c);
}

history_sink_t *history_open(const char *path, const history_header_t *h,
                             const history_printer_t *p)
{
    history_sink_t *sink = malloc(sizeof(*sink));
    if (sink == NULL) {
        return NULL;
    }
    *sink = (history_sink_t) { .header = *h, .printer = p, .jsonl = NULL, .dir = -1 };
    size_t len = strlen(path);
    bool ok = len > 6 && strcmp(path + len - 6, ".jsonl") == 0
              ? (sink->jsonl = fopen(path, "w")) != NULL
              : history_binary_open(&sink->dir, path, h, p);
    if (!ok) {
        int saved = errno;
        free(sink);
        errno = saved;
        return NULL;
    }
    return sink;
}

bool history_log_init(history_log_t *log, history_sink_t *sink, unsigned thread,
                      size_t expected)
{
    log->enabled = sink != NULL;
    log->first = NULL;
    log->fd = -1;
    log->committed = NULL;
    log->handed_out = 0;
    log->slot = NULL;
    if (sink != NULL) {
        if (sink->dir >= 0 && !history_binary_log_open(sink->dir, thread, log)) {
            return false;
        }
        log->first = chunk_new(log, expected > 0 ? expected : CHUNK_RECORDS);
        if (log->first == NULL) {
            return false;
        }
    }
    log->last = log->first;
    return true;
}

void history_log_free(history_log_t *log)
{
    history_chunk_t *c = log->first;
    while (c != NULL) {
        history_chunk_t *next = c->next;
        chunk_free(log, c);
        c = next;
    }
    log->first = log->last = NULL;
    history_binary_log_close(log);
}

record_t *history_next(history_log_t *log)
{
    memset(&log->scratch, 0, sizeof(log->scratch));
    if (!log->enabled) {
        return &log->scratch;
    }
    if (log->committed != NULL) {
        /* Only this worker writes its records: every record handed out before is complete.
         * Release: a reader of the file after a crash sees them whole if it sees the count. */
        atomic_store_explicit(log->committed, log->handed_out, memory_order_release);
    }
    if (log->last->used == log->last->cap) {
        history_chunk_t *c = chunk_new(log, CHUNK_RECORDS);
        if (c == NULL) {
            return NULL;
        }
        log->last->next = c;
        log->last = c;
    }
    log->handed_out++;
    log->slot = &log->last->records[log->last->used++];
    return &log->scratch;
}

void history_publish(history_log_t *log)
{
    if (log->slot != NULL) {
        copy_record(log->slot, &log->scratch);
    }
}

/* ---- JSON building blocks ---- */

void history_print_string(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char) *s;
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

void history_print_hex(FILE *f, const uint8_t *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        fputc(digits[bytes[i] >> 4], f);
        fputc(digits[bytes[i] & 0xf], f);
    }
    fputc('"', f);
}

void history_print_attrs(FILE *f, const record_attrs_t *a)
{
    fprintf(f, "\"lifetime\":%u,\"id\":%u,\"type\":%u,\"bits\":%u,\"usage\":%u,\"alg\":%u",
            (unsigned) a->lifetime, (unsigned) a->id, (unsigned) a->type, (unsigned) a->bits,
            (unsigned) a->usage, (unsigned) a->alg);
}

/* psa_status_t names without the PSA_ / PSA_ERROR_ prefix. */
static const struct {
    psa_status_t status;
    const char *name;
} status_names[] = {
#define STATUS_NAME(code, name) { code, name }
    STATUS_NAME(PSA_SUCCESS, "SUCCESS"),
    STATUS_NAME(PSA_ERROR_GENERIC_ERROR, "GENERIC_ERROR"),
    STATUS_NAME(PSA_ERROR_NOT_PERMITTED, "NOT_PERMITTED"),
    STATUS_NAME(PSA_ERROR_NOT_SUPPORTED, "NOT_SUPPORTED"),
    STATUS_NAME(PSA_ERROR_INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    STATUS_NAME(PSA_ERROR_INVALID_HANDLE, "INVALID_HANDLE"),
    STATUS_NAME(PSA_ERROR_BAD_STATE, "BAD_STATE"),
    STATUS_NAME(PSA_ERROR_BUFFER_TOO_SMALL, "BUFFER_TOO_SMALL"),
    STATUS_NAME(PSA_ERROR_ALREADY_EXISTS, "ALREADY_EXISTS"),
    STATUS_NAME(PSA_ERROR_DOES_NOT_EXIST, "DOES_NOT_EXIST"),
    STATUS_NAME(PSA_ERROR_INSUFFICIENT_MEMORY, "INSUFFICIENT_MEMORY"),
    STATUS_NAME(PSA_ERROR_INSUFFICIENT_STORAGE, "INSUFFICIENT_STORAGE"),
    STATUS_NAME(PSA_ERROR_INSUFFICIENT_DATA, "INSUFFICIENT_DATA"),
    STATUS_NAME(PSA_ERROR_SERVICE_FAILURE, "SERVICE_FAILURE"),
    STATUS_NAME(PSA_ERROR_COMMUNICATION_FAILURE, "COMMUNICATION_FAILURE"),
    STATUS_NAME(PSA_ERROR_STORAGE_FAILURE, "STORAGE_FAILURE"),
    STATUS_NAME(PSA_ERROR_HARDWARE_FAILURE, "HARDWARE_FAILURE"),
    STATUS_NAME(PSA_ERROR_INSUFFICIENT_ENTROPY, "INSUFFICIENT_ENTROPY"),
    STATUS_NAME(PSA_ERROR_INVALID_SIGNATURE, "INVALID_SIGNATURE"),
    STATUS_NAME(PSA_ERROR_INVALID_PADDING, "INVALID_PADDING"),
    STATUS_NAME(PSA_ERROR_CORRUPTION_DETECTED, "CORRUPTION_DETECTED"),
    STATUS_NAME(PSA_ERROR_DATA_CORRUPT, "DATA_CORRUPT"),
    STATUS_NAME(PSA_ERROR_DATA_INVALID, "DATA_INVALID"),
    STATUS_NAME(PSA_OPERATION_INCOMPLETE, "OPERATION_INCOMPLETE"),
#undef STATUS_NAME
};

static void print_status(FILE *f, psa_status_t status)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (status_names[i].status == status) {
            fprintf(f, "\"%s\"", status_names[i].name);
            return;
        }
    }
    fprintf(f, "\"STATUS(%d)\"", (int) status);
}

/* ---- the file ---- */

void history_print_run_header(FILE *f, const history_header_t *h)
{
    const char *kind = describe_key_store_kind();
    fprintf(f, "{\"format\":\"psa-stress-history\",\"version\":1,\"mbedtls_version\":\"%s\","
            "\"variant\":", MBEDTLS_VERSION_STRING);
    history_print_string(f, h->variant);
    fprintf(f, ",\"key_store\":{\"kind\":\"%s\",\"slot_count\":%d},\"threads\":%u,"
            "\"seed\":%llu,\"scenario\":", kind, MBEDTLS_PSA_KEY_SLOT_COUNT, h->threads,
            (unsigned long long) h->seed);
    history_print_string(f, h->scenario);
    if (h->seconds > 0) {
        fprintf(f, ",\"generator\":{\"ops\":null,\"seconds\":%g,\"mix\":", h->seconds);
    } else {
        fprintf(f, ",\"generator\":{\"ops\":%llu,\"seconds\":null,\"mix\":",
                (unsigned long long) h->ops);
    }
    history_print_string(f, h->mix);
    fputs(",\"key_kinds\":", f);
    history_print_string(f, h->key_kinds);
    fprintf(f, ",\"volatile_pool\":%u,\"persistent_ids\":%u,\"persistent_percent\":%u}",
            h->volatile_pool, h->persistent_ids, h->persistent_percent);
    fprintf(f, ",\"spec_mode\":\"%s\"", h->overlap_destroy ? "beyond-spec" : "spec");
    if (h->print_params != NULL) {
        h->print_params(f);
    }
}

void history_print_status_table(FILE *f)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        fprintf(f, "%s\"%d\":\"%s\"", i == 0 ? "{" : ",", (int) status_names[i].status,
                status_names[i].name);
    }
    fputc('}', f);
}

static void write_record(FILE *f, const record_t *r, const history_printer_t *p)
{
    fprintf(f, "{\"thread\":%u,\"seq\":%u,\"op\":\"%s\",\"call\":%llu,\"ret\":%llu,\"status\":",
            (unsigned) r->thread, (unsigned) r->seq, p->op_name(r->op),
            (unsigned long long) r->call, (unsigned long long) r->ret);
    print_status(f, r->status);
    p->print_body(f, r);
    fputs("}\n", f);
}

/* Read position in one thread's log. */
typedef struct {
    const history_chunk_t *chunk;
    size_t index;
} cursor_t;

static const record_t *cursor_peek(cursor_t *c)
{
    while (c->chunk != NULL && c->index == c->chunk->used) {
        c->chunk = c->chunk->next;
        c->index = 0;
    }
    return c->chunk != NULL ? &c->chunk->records[c->index] : NULL;
}

/* Each log is already sorted by `call` (a thread's calls do not overlap), so a T-way merge that
 * repeatedly takes the smallest head yields the whole history sorted by `call`. */
static size_t write_merged(FILE *f, const history_log_t *const *logs, unsigned n,
                           cursor_t *cur, const history_printer_t *p)
{
    size_t count = 0;
    for (unsigned t = 0; t < n; t++) {
        cur[t].chunk = logs[t]->first;
        cur[t].index = 0;
    }
    for (;;) {
        const record_t *best = NULL;
        unsigned best_t = 0;
        for (unsigned t = 0; t < n; t++) {
            const record_t *r = cursor_peek(&cur[t]);
            if (r != NULL && (best == NULL || r->call < best->call)) {
                best = r;
                best_t = t;
            }
        }
        if (best == NULL) {
            return count;
        }
        write_record(f, best, p);
        cur[best_t].index++;
        count++;
    }
}

static bool write_jsonl(FILE *f, const history_header_t *h, const history_log_t *const *logs,
                        const history_printer_t *p)
{
    cursor_t *cur = calloc(h->threads, sizeof(*cur));
    if (cur == NULL) {
        return false;
    }
    history_print_run_header(f, h);
    fputs("}\n", f);
    size_t count = write_merged(f, logs, h->threads, cur, p);
    free(cur);
    /* The run always joins every worker before writing, so no call is pending. */
    fprintf(f, "{\"end\":{\"records\":%zu,\"complete\":true", count);
    if (h->print_end != NULL) {
        h->print_end(f);
    }
    fputs("}}\n", f);
    return fflush(f) == 0 && !ferror(f);
}

bool history_close(history_sink_t *sink, const history_log_t *const *logs)
{
    bool ok;
    if (sink->jsonl != NULL) {
        ok = write_jsonl(sink->jsonl, &sink->header, logs, sink->printer);
        ok = fclose(sink->jsonl) == 0 && ok;
    } else {
        uint64_t records = 0;
        for (unsigned t = 0; t < sink->header.threads; t++) {
            records += logs[t]->handed_out;
        }
        ok = history_binary_close(sink->dir, logs, records, &sink->header, sink->printer);
    }
    free(sink);
    return ok;
}
