/* psa-stress: the binary history form (docs/history-format.md "Binary form"), used by history.c.
 *
 * A history directory holds header.json (run header, record layout, operation and status names),
 * one record file per worker thread and, once the run completed, end.json. A record file is one
 * header page (magic, thread, record size, committed count) followed by fixed-size records that
 * the worker writes through a MAP_SHARED mapping: whatever it stored survives a crash or a kill
 * of the process, and the committed count says which records are complete. */
#ifndef PSA_STRESS_HISTORY_BINARY_H
#define PSA_STRESS_HISTORY_BINARY_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "history/history.h"

/* Exit code of the driver when a record file cannot get disk space (disk full, file size limit):
 * the run is void for a reason outside the library (scenarios/campaign/runner.py). */
#define HISTORY_EXIT_WRITE 8

/* Chunk capacities are rounded up to a multiple of this many records, so that every chunk of a
 * record file starts on a page boundary (an mmap offset must). */
size_t history_page_records(void);

/* Creates the directory `path` and writes header.json. Sets *dir to the directory's fd. */
bool history_binary_open(int *dir, const char *path, const history_header_t *h,
                         const history_printer_t *p);

/* Creates the thread's record file with its header page; sets log->fd and log->committed. */
bool history_binary_log_open(int dir, unsigned thread, history_log_t *log);
void history_binary_log_close(history_log_t *log);

/* Grows the log's file by `cap` records, with disk blocks allocated, and maps them; NULL on
 * failure. Exits HISTORY_EXIT_WRITE when the disk has no room (as history_binary_log_open). */
record_t *history_binary_map(const history_log_t *log, size_t cap);
void history_binary_unmap(record_t *records, size_t cap);

/* After every worker joined: marks every record complete, rewrites header.json (the nemesis's
 * counts are final now) and writes end.json, with the members h->print_end adds. */
bool history_binary_close(int dir, const history_log_t *const *logs, uint64_t records,
                          const history_header_t *h, const history_printer_t *p);

#endif /* PSA_STRESS_HISTORY_BINARY_H */
