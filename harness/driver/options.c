/* psa-stress: the driver's command line (see options.h). */
#include "driver/options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/describe.h"
#include "driver/generator.h"
#include "nemesis/pinner.h"

#define DEFAULT_MIX "import=3,generate=1,derive=1,copy=2,destroy=3,export=4,get_attributes=3"
#define MAX_THREADS 1024 /* record.thread is 16 bits; far above anything useful */
#define MAX_SECONDS 1e6

/* ---- errors ---- */

void options_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("psa-stress: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static void usage(void)
{
    fputs("usage: psa-stress [flags]\n"
          "  --threads N             worker threads (default 4)\n"
          "  --ops N                 total calls across all threads (default 10000)\n"
          "  --seconds S             run for S seconds instead (takes precedence over --ops)\n"
          "  --seed N                PRNG seed (default 1)\n"
          "  --history PATH          write the history: PATH ending in .jsonl = JSON Lines,\n"
          "                          else a binary history directory (crash-safe)\n"
          "  --no-history            record nothing (throughput benchmark)\n"
          "  --storage-dir DIR       persistent key storage (default: fresh temp dir, removed)\n"
          "  --scenario NAME         label copied into the history header\n"
          "  --variant NAME          build variant label copied into the history header\n"
          "  --mix SPEC              op weights, default \"" DEFAULT_MIX "\"\n"
          "  --volatile-pool N       shared volatile key id slots (default 8)\n"
          "  --persistent-ids P      persistent ids are 1..P (default 4)\n"
          "  --persistent-percent Q  chance (0..100) that a create or key pick is persistent (0)\n"
          "  --key-kinds LIST        kinds of key creates make, default \"" GEN_DEFAULT_KINDS "\"\n"
          "  --overlap-destroy       beyond-spec mode: let a destroy overlap other calls on its id\n"
          "  --init-race             no psa_crypto_init in main: each worker calls it first\n"
          "  --barrier-every N       every N calls per worker, check the inside invariants at a\n"
          "                          quiescent barrier\n"
          "  --reinit-every N        as --barrier-every, and the last worker at the barrier\n"
          "                          destroys the volatile keys and frees the core; every worker\n"
          "                          then races psa_crypto_init (implies --init-race; no derive)\n"
          "  --pinners N             N more threads keep the key cache full of pinned persistent\n"
          "                          keys (pinner.h; no destroy in the mix)\n"
          "  --sched ENGINE          os (default), delay, pct or random (nemesis.h)\n"
          "  --lock-wait POLICY      how a waiter waits for the core's mutexes: spin (default)\n"
          "                          or sleep (lock_wait.h)\n"
          "  --pct-depth D           PCT bug depth d (default 3)\n"
          "  --pct-steps K           PCT scheduling points per round k (default 2000)\n"
          "  --schedule-out FILE     record the pct/random schedule to FILE\n"
          "  --replay FILE           replay a recorded schedule exactly (same flags and seed);\n"
          "                          an \"edited\" one (the shrinker's) where it still applies\n"
          "  --faults SPEC           inject faults: mutex=R,alloc=R (faults.h)\n"
          "  --watchdog S            fail with exit 5 and stacks if no call completes in S s\n"
#if defined(PSA_STRESS_TEST_BUILD)
          "  --canary                also run a deliberate data race (TSan must report it)\n"
#endif
          "  --describe              print what this build of the tree offers (JSON) and exit\n"
          "  --help                  this text\n", stdout);
}

/* ---- flags ---- */

typedef enum { FLAG_SWITCH, FLAG_UINT, FLAG_SECONDS, FLAG_STRING } flag_kind_t;

typedef struct {
    const char *name;
    flag_kind_t kind;
    void *dest;        /* bool, uint64_t, double or const char * */
    uint64_t min, max; /* FLAG_UINT range */
} flag_t;

static uint64_t parse_uint(const flag_t *fl, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < fl->min || v > fl->max) {
        options_die(EXIT_BAD_FLAG, "%s: expected an integer in %llu..%llu, got '%s'", fl->name,
                  (unsigned long long) fl->min, (unsigned long long) fl->max, s);
    }
    return v;
}

static double parse_seconds(const flag_t *fl, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 || v > MAX_SECONDS) {
        options_die(EXIT_BAD_FLAG, "%s: expected a number of seconds in (0, %g], got '%s'", fl->name,
                  MAX_SECONDS, s);
    }
    return v;
}

static void set_flag(const flag_t *fl, const char *value)
{
    switch (fl->kind) {
    case FLAG_SWITCH:
        *(bool *) fl->dest = true;
        break;
    case FLAG_UINT:
        *(uint64_t *) fl->dest = parse_uint(fl, value);
        break;
    case FLAG_SECONDS:
        *(double *) fl->dest = parse_seconds(fl, value);
        break;
    case FLAG_STRING:
        if (value[0] == '\0') {
            options_die(EXIT_BAD_FLAG, "%s: empty value", fl->name);
        }
        *(const char **) fl->dest = value;
        break;
    }
}

/* Accepts "--flag value" and "--flag=value". */
static void parse_flags(options_t *o, int argc, char **argv)
{
    const flag_t flags[] = {
        { "--threads", FLAG_UINT, &o->threads, 1, MAX_THREADS },
        { "--ops", FLAG_UINT, &o->ops, 1, UINT32_MAX },
        { "--seconds", FLAG_SECONDS, &o->seconds, 0, 0 },
        { "--seed", FLAG_UINT, &o->seed, 0, UINT64_MAX },
        { "--history", FLAG_STRING, &o->history_path, 0, 0 },
        { "--no-history", FLAG_SWITCH, &o->no_history, 0, 0 },
        { "--storage-dir", FLAG_STRING, &o->storage_dir, 0, 0 },
        { "--scenario", FLAG_STRING, &o->scenario, 0, 0 },
        { "--variant", FLAG_STRING, &o->variant, 0, 0 },
        { "--mix", FLAG_STRING, &o->mix, 0, 0 },
        { "--key-kinds", FLAG_STRING, &o->key_kinds, 0, 0 },
        { "--sched", FLAG_STRING, &o->nemesis.sched, 0, 0 },
        { "--lock-wait", FLAG_STRING, &o->nemesis.lock_wait, 0, 0 },
        { "--pct-depth", FLAG_UINT, &o->nemesis.depth, 1, STRATEGY_MAX_DEPTH },
        { "--pct-steps", FLAG_UINT, &o->nemesis.k, 1, UINT32_MAX },
        { "--schedule-out", FLAG_STRING, &o->nemesis.schedule_out_path, 0, 0 },
        { "--replay", FLAG_STRING, &o->nemesis.replay_path, 0, 0 },
        { "--faults", FLAG_STRING, &o->faults, 0, 0 },
        { "--watchdog", FLAG_SECONDS, &o->watchdog, 0, 0 },
        { "--volatile-pool", FLAG_UINT, &o->volatile_pool, 1, 65536 },
        { "--persistent-ids", FLAG_UINT, &o->persistent_ids, 1, PSA_KEY_ID_USER_MAX },
        { "--persistent-percent", FLAG_UINT, &o->persistent_percent, 0, 100 },
        { "--overlap-destroy", FLAG_SWITCH, &o->overlap_destroy, 0, 0 },
        { "--init-race", FLAG_SWITCH, &o->init_race, 0, 0 },
        { "--barrier-every", FLAG_UINT, &o->barrier_every, 1, UINT32_MAX },
        { "--reinit-every", FLAG_UINT, &o->reinit_every, 1, UINT32_MAX },
        { "--pinners", FLAG_UINT, &o->pinners, 1, PINNERS_MAX },
#if defined(PSA_STRESS_TEST_BUILD)
        { "--canary", FLAG_SWITCH, &o->canary, 0, 0 },
#endif
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0) {
            usage();
            exit(0);
        }
        if (strcmp(arg, "--describe") == 0) {
            describe_print(stdout);
            exit(0);
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
        const flag_t *fl = NULL;
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, arg, name_len) == 0) {
                fl = &flags[k];
            }
        }
        if (fl == NULL) {
            options_die(EXIT_BAD_FLAG, "unknown flag '%s' (see --help)", arg);
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (fl->kind == FLAG_SWITCH && value != NULL) {
            options_die(EXIT_BAD_FLAG, "%s takes no value", fl->name);
        }
        if (fl->kind != FLAG_SWITCH && value == NULL) {
            if (i + 1 == argc) {
                options_die(EXIT_BAD_FLAG, "%s needs a value", fl->name);
            }
            value = argv[++i];
        }
        set_flag(fl, value);
    }
    if (o->history_path != NULL && o->no_history) {
        options_die(EXIT_BAD_FLAG, "--history and --no-history are mutually exclusive");
    }
    if (o->reinit_every > 0 && o->barrier_every > 0) {
        options_die(EXIT_BAD_FLAG, "--reinit-every and --barrier-every are mutually exclusive (the "
            "re-initialisation barrier checks the invariants too)");
    }
    if (o->pinners > 0 && (o->reinit_every > 0 || o->barrier_every > 0)) {
        options_die(EXIT_BAD_FLAG, "--pinners cannot be combined with --reinit-every or --barrier-every "
            "(pinners hold keys through every barrier)");
    }
}

void options_parse(options_t *o, int argc, char **argv)
{
    *o = (options_t) {
        .threads = 4, .ops = 10000, .seed = 1, .mix = DEFAULT_MIX, .key_kinds = GEN_DEFAULT_KINDS,
        .volatile_pool = 8, .persistent_ids = 4, .persistent_percent = 0,
        .nemesis = { .sched = "os", .lock_wait = "spin", .depth = 3, .k = 2000 },
    };
    parse_flags(o, argc, argv);
}
