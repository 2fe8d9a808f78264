/* psa-stress: the driver's command line (options.c): flags, their defaults and --help.
 *
 * options_parse fills every field from the defaults and argv, or exits with EXIT_BAD_FLAG and
 * one error line; options_die() is the driver's one way out on a setup or run error. */
#ifndef PSA_STRESS_OPTIONS_H
#define PSA_STRESS_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "nemesis/nemesis.h"

typedef struct {
    uint64_t threads, ops, seed, volatile_pool, persistent_ids, persistent_percent;
    uint64_t barrier_every; /* 0: no quiescent barriers */
    uint64_t reinit_every;  /* 0: the core is initialised once */
    uint64_t pinners;       /* pinner threads (pinner.h) */
    bool overlap_destroy, init_race;
    double seconds; /* 0: run by op count */
    const char *history_path, *storage_dir, *scenario, *variant, *mix, *key_kinds;
    bool no_history;
    nemesis_options_t nemesis; /* --sched, --pct-*, --replay, --schedule-out */
    const char *faults;
    double watchdog;  /* 0: off */
#if defined(PSA_STRESS_TEST_BUILD)
    bool canary;
#endif
} options_t;

/* EXIT_INVARIANT: the run completed (history and summary written) but an inside invariant
 * (inspect.h) was violated. */
enum { EXIT_RUN_FAILED = 1, EXIT_BAD_FLAG = 2, EXIT_INVARIANT = 4 };

/* Prints "psa-stress: error: <message>" on stderr and exits with code. */
void options_die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

void options_parse(options_t *o, int argc, char **argv);

#endif /* PSA_STRESS_OPTIONS_H */
