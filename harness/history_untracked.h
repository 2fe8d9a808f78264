/* psa-stress: stores into the history's record memory that ThreadSanitizer does not track.
 *
 * A worker builds each record in its log's scratch record and publishes it into the history's
 * chunk (history.c) with these functions, which are compiled without TSan instrumentation
 * (CMakeLists.txt). The chunks are written by their worker only and read after it is joined,
 * so TSan has nothing to check there; tracking them cost a page of shadow memory per 2 KiB of
 * history, and page faults for it in the measured run: about a quarter of TSan throughput
 * (bench/bench_driver.py). The copies are word loops through a volatile pointer, so that no
 * compiler turns them into a memcpy call (which TSan intercepts whoever calls it). */
#ifndef PSA_STRESS_HISTORY_UNTRACKED_H
#define PSA_STRESS_HISTORY_UNTRACKED_H

#include <stddef.h>

#include "record.h"

void untracked_record_copy(record_t *dst, const record_t *src);

/* Writes a zero into every page of [p, p + len): the page faults happen now. The memory must be
 * zero already (a fresh file mapping) or not yet in use. */
void untracked_prefault(void *p, size_t len);

#endif /* PSA_STRESS_HISTORY_UNTRACKED_H */
