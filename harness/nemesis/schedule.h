/* psa-stress: the schedule file of the serialised engines: every scheduling decision, written
 * as it is taken (--schedule-out) and read back to force the same decisions (--replay).
 *
 * Format (text): one JSON header line
 *   {"format":"psa-stress-schedule","version":1,"engine":"pct","seed":1,"threads":6,
 *    "depth":3,"k":2000}
 * then one line per scheduling point, "<chosen> <kind> <at> <mutex>", e.g. "2 L 0 key_slot":
 * thread 0 is about to lock the key-slot mutex and thread 2 runs next. <at> is "-" for the
 * first pick. Kinds: S start, O op boundary, X op boundary that stops the thread, L before a
 * lock, U after an unlock, B blocked on a held mutex, E thread exit, C a step with no mutex
 * (the canary, the pinner, between the updates of a multi-part MAC). A complete
 * file ends with "end <steps>". During replay, the point reached must match the file's
 * <kind> <at> <mutex> and <chosen> must be runnable; otherwise the run has diverged.
 *
 * An edited schedule (the shrinker's, scenarios/campaign/schedule.py) has ,"edited":true at the end of
 * its header: some recorded preemptions were turned into "the thread continues". It is not
 * followed step by step but point by point per thread: the p-th point of thread t's o-th op
 * (counted from its 'O'/'X' op boundaries) takes the recorded decision of the same point when
 * that point has the same <kind> and <mutex> and its <chosen> is runnable ("followed"); any
 * other point keeps the thread that reached it when it can run, else the lowest runnable one
 * ("fallback"). It never diverges and never adds a preemption. */
#ifndef PSA_STRESS_SCHEDULE_H
#define PSA_STRESS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The mutexes a schedule names: the core's three global ones, or any other. */
typedef enum { MUTEX_NONE, MUTEX_KEY_SLOT, MUTEX_GLOBALDATA, MUTEX_RNGDATA, MUTEX_OTHER,
               MUTEX_KINDS } mutex_kind_t;
extern const char *const schedule_mutex_names[MUTEX_KINDS];

#define SCHEDULE_NOBODY 0xffffu /* <at> of the first pick */

typedef struct {
    uint16_t chosen;
    uint16_t at;
    char kind;
    uint8_t mutex; /* mutex_kind_t */
} sched_step_t;

typedef struct {
    const char *engine;
    uint64_t seed;
    unsigned threads, depth;
    uint64_t k;
    bool edited; /* the header ends with ,"edited":true */
} schedule_header_t;

/* Opens --schedule-out and writes the header; false with errno set on failure. */
bool schedule_out_open(const char *path, const schedule_header_t *h);
void schedule_out_step(const sched_step_t *st);
/* Writes the end line and closes; also called (without the end line) on a dying path. */
void schedule_out_close(uint64_t steps, bool complete);

/* Loads a schedule for --replay. On error returns false with a one-line message in err. */
bool schedule_load(const char *path, schedule_header_t *h, char *err, size_t err_len);
/* The recorded step number `index`, or NULL past the end. */
const sched_step_t *schedule_replay_step(uint64_t index);
uint64_t schedule_replay_length(void);

void schedule_format_step(char *buf, size_t len, const sched_step_t *st);

/* Edited replay: the decision at point `st` (its chosen is ignored) given the runnable threads
 * (at least one). Keeps its own per-thread cursors; the baton holder only. */
unsigned schedule_edited_choice(const sched_step_t *st, const bool *runnable, unsigned n);
/* Edited replay so far: points that followed the file, points that fell back. */
void schedule_edited_counts(uint64_t *followed, uint64_t *fallbacks);

#endif /* PSA_STRESS_SCHEDULE_H */
