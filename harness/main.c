/* psa-stress: command line, storage directory, worker threads, and the run summary.
 *
 * A run: parse flags, open the history file, enter the storage directory, psa_crypto_init, start
 * the workers together at a barrier, stop them by op count or by deadline, join, write the
 * history and one JSON summary line on stdout. Exit 0 when the run completed, 2 on a bad flag,
 * 1 on any other failure. Verdicts are run.py's job. */
#define _GNU_SOURCE /* mkdtemp, clock_nanosleep, pthread barriers */

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "canary.h"
#include "client.h"
#include "inspect.h"
#include "quiesce.h"
#include "reloads.h"
#include "spec.h"
#include "faults.h"
#include "nemesis.h"
#include "watchdog.h"

#define DEFAULT_MIX "import=3,generate=1,derive=1,copy=2,destroy=3,export=4,get_attributes=3"
#define MAX_THREADS 1024 /* record.thread is 16 bits; far above anything useful */
#define MAX_SECONDS 1e6

typedef struct {
    uint64_t threads, ops, seed, volatile_pool, persistent_ids, persistent_percent;
    uint64_t barrier_every; /* 0: no quiescent barriers */
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

/* ---- errors ---- */

/* EXIT_INVARIANT: the run completed (history and summary written) but an inside invariant
 * (inspect.h) was violated. */
enum { EXIT_RUN_FAILED = 1, EXIT_BAD_FLAG = 2, EXIT_INVARIANT = 4 };

static void die(int code, const char *fmt, ...)
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
          "  --sched ENGINE          os (default), delay, pct or random (nemesis.h)\n"
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
        die(EXIT_BAD_FLAG, "%s: expected an integer in %llu..%llu, got '%s'", fl->name,
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
        die(EXIT_BAD_FLAG, "%s: expected a number of seconds in (0, %g], got '%s'", fl->name,
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
            die(EXIT_BAD_FLAG, "%s: empty value", fl->name);
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
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
        const flag_t *fl = NULL;
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, arg, name_len) == 0) {
                fl = &flags[k];
            }
        }
        if (fl == NULL) {
            die(EXIT_BAD_FLAG, "unknown flag '%s' (see --help)", arg);
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (fl->kind == FLAG_SWITCH && value != NULL) {
            die(EXIT_BAD_FLAG, "%s takes no value", fl->name);
        }
        if (fl->kind != FLAG_SWITCH && value == NULL) {
            if (i + 1 == argc) {
                die(EXIT_BAD_FLAG, "%s needs a value", fl->name);
            }
            value = argv[++i];
        }
        set_flag(fl, value);
    }
    if (o->history_path != NULL && o->no_history) {
        die(EXIT_BAD_FLAG, "--history and --no-history are mutually exclusive");
    }
}

/* ---- storage directory: the ITS file backend keeps <uid>.psa_its in the CWD ---- */

static char temp_dir[] = "/tmp/psa-stress.XXXXXX";

/* Removes the temporary directory and the key files in it (it has no subdirectories). */
static void remove_temp_dir(void)
{
    DIR *d = opendir(temp_dir);
    if (d != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                unlinkat(dirfd(d), e->d_name, 0);
            }
        }
        closedir(d);
    }
    if (chdir("/") != 0 || rmdir(temp_dir) != 0) {
        fprintf(stderr, "psa-stress: warning: could not remove %s: %s\n", temp_dir,
                strerror(errno));
    }
}

/* The history format promises empty persistent storage at the start of a run. */
static void require_no_keys(const char *dir)
{
    DIR *d = opendir(".");
    if (d == NULL) {
        die(EXIT_RUN_FAILED, "cannot read storage directory %s: %s", dir, strerror(errno));
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len > 8 && strcmp(e->d_name + len - 8, ".psa_its") == 0) {
            die(EXIT_BAD_FLAG, "--storage-dir %s already holds persistent keys (%s)", dir,
                e->d_name);
        }
    }
    closedir(d);
}

static void enter_storage_dir(const char *dir)
{
    if (dir == NULL) {
        if (mkdtemp(temp_dir) == NULL) {
            die(EXIT_RUN_FAILED, "cannot create a temporary storage directory: %s",
                strerror(errno));
        }
        atexit(remove_temp_dir); /* also on error exits, after a normal exit's crypto_free */
        dir = temp_dir;
    } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        die(EXIT_BAD_FLAG, "--storage-dir %s: %s", dir, strerror(errno));
    }
    if (chdir(dir) != 0) {
        die(EXIT_BAD_FLAG, "--storage-dir %s: %s", dir, strerror(errno));
    }
    require_no_keys(dir);
}

/* ---- workers ---- */

typedef struct {
    pthread_barrier_t start; /* workers and main: nobody calls PSA before all are ready */
    atomic_bool stop;        /* set by main at the --seconds deadline */
    const options_t *o;
    quiesce_t quiesce;       /* --barrier-every */
} run_t;

/* Aligned so that each worker owns its cache lines: the generator state, the record scratch and
 * the call counter change on every call. */
typedef struct {
    _Alignas(64) client_t client;
    uint64_t ops_limit;
    run_t *run;
    pthread_t tid;
    bool ok;
} worker_t;

/* --init-race: the client setup needs an initialised library, so the first worker past its own
 * init makes it; the others wait for it in pthread_once, after their init (which still races). */
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup_after_init(void)
{
    psa_status_t status = client_setup();
    if (status != PSA_SUCCESS) {
        die(EXIT_RUN_FAILED, "client setup (derive secret key) failed: %d", (int) status);
    }
}

static unsigned op_row(const char *name)
{
    unsigned op = 0;
    while (strcmp(client_op_name(op), name) != 0) {
        op++;
    }
    return op;
}

/* The calls of one worker, with a quiescent barrier every --barrier-every calls. */
static bool run_calls(worker_t *w)
{
    const options_t *o = w->run->o;
    if (o->barrier_every == 0) {
        return client_run(&w->client, w->ops_limit, &w->run->stop);
    }
    for (uint64_t left = w->ops_limit; left > 0;) {
        uint64_t n = left < o->barrier_every ? left : o->barrier_every;
        if (!client_run(&w->client, n, &w->run->stop)) {
            return false;
        }
        left -= n;
        if (left == 0 || atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
            break;
        }
        quiesce_wait(&w->run->quiesce);
    }
    return true;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    pthread_barrier_wait(&w->run->start);
    nemesis_thread_enter(w->client.thread);
    w->ok = true;
    if (w->run->o->init_race) {
        w->ok = client_call(&w->client, op_row("init"));
        pthread_once(&setup_once, setup_after_init);
    }
    w->ok = w->ok && run_calls(w);
    if (w->run->o->barrier_every > 0) {
        quiesce_leave(&w->run->quiesce);
    }
    nemesis_thread_exit();
    return NULL;
}

/* Splits --ops evenly (the first ops % threads workers make one more call); by deadline, each
 * worker may make as many calls as its 32-bit seq can number. Logs are allocated here, before
 * the start barrier, sized for the whole run when the op count is known. */
static worker_t *make_workers(const options_t *o, gen_config_t *cfg, run_t *run,
                              history_sink_t *history)
{
    worker_t *w = aligned_alloc(_Alignof(worker_t), o->threads * sizeof(*w));
    if (w == NULL) {
        die(EXIT_RUN_FAILED, "out of memory");
    }
    memset(w, 0, o->threads * sizeof(*w));
    for (unsigned t = 0; t < o->threads; t++) {
        bool by_count = o->seconds == 0;
        w[t].ops_limit = by_count ? o->ops / o->threads + (t < o->ops % o->threads) : UINT32_MAX;
        w[t].run = run;
        w[t].client.thread = t;
        gen_init(&w[t].client.gen, cfg, t);
        if (!history_log_init(&w[t].client.log, history, t, by_count ? w[t].ops_limit : 0)) {
            die(EXIT_RUN_FAILED, "out of memory for the history");
        }
    }
    return w;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_until(double deadline)
{
    struct timespec ts = { .tv_sec = (time_t) deadline };
    ts.tv_nsec = (long) ((deadline - (double) ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Run by the last worker to arrive: no fault may hit the inspection's own core calls. */
static bool check_at_barrier(void)
{
    faults_suspend(true);
    bool ok = inspect_invariants(NULL, 0, NULL);
    faults_suspend(false);
    return ok;
}

/* Starts the workers together, stops them by count or deadline, joins them.
 * Returns the elapsed run time in seconds. */
static double run_workers(const options_t *o, worker_t *w, run_t *run)
{
    if (pthread_barrier_init(&run->start, NULL, (unsigned) o->threads + 1) != 0) {
        die(EXIT_RUN_FAILED, "cannot create the start barrier");
    }
    run->o = o;
    if (o->barrier_every > 0 && !quiesce_init(&run->quiesce, (unsigned) o->threads,
                                              check_at_barrier)) {
        die(EXIT_RUN_FAILED, "cannot create the quiescent barrier");
    }
    atomic_init(&run->stop, false);
    for (unsigned t = 0; t < o->threads; t++) {
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0) {
            die(EXIT_RUN_FAILED, "cannot start worker thread %u", t);
        }
    }
#if defined(PSA_STRESS_TEST_BUILD)
    if (o->canary && !canary_start((unsigned) o->threads)) {
        die(EXIT_RUN_FAILED, "cannot start the canary threads");
    }
#endif
    pthread_barrier_wait(&run->start);
    double start = now_seconds();
    if (o->seconds > 0) {
        sleep_until(start + o->seconds);
        atomic_store_explicit(&run->stop, true, memory_order_relaxed);
    }
    for (unsigned t = 0; t < o->threads; t++) {
        pthread_join(w[t].tid, NULL);
    }
    double elapsed = now_seconds() - start;
#if defined(PSA_STRESS_TEST_BUILD)
    if (o->canary) {
        canary_join();
    }
#endif
    pthread_barrier_destroy(&run->start);
    return elapsed;
}

/* ---- the inside invariants after the run ---- */

typedef struct {
    bool ok;             /* every invariant held, at every barrier and after the join */
    uint64_t reloads;    /* persistent keys loaded back from storage */
    uint64_t barriers;   /* quiescent barriers passed */
    inspect_live_t live; /* FULL slots ∪ storage, without the harness's own key */
} inside_t;

/* What check_inside() found, for the summary and the history's end line. */
static inside_t inside;

/* history_header_t.print_end: the findings as end-line members. */
static void print_inside(FILE *f)
{
    fprintf(f, ",\"reloads\":%llu,\"barriers\":%llu,\"invariants\":\"%s\",\"live\":[",
            (unsigned long long) inside.reloads, (unsigned long long) inside.barriers,
            inside.ok ? "ok" : "violated");
    for (size_t i = 0; i < inside.live.count; i++) {
        fprintf(f, "%s%u", i == 0 ? "" : ",", (unsigned) inside.live.ids[i]);
    }
    fputc(']', f);
}

/* After the join: nothing is in flight. */
static inside_t check_inside(const options_t *o, run_t *run)
{
    inside_t in = { .reloads = reloads_count() };
    const psa_key_id_t hidden = client_setup_key();
    in.ok = inspect_invariants(&hidden, 1, &in.live);
    if (o->barrier_every > 0) {
        in.barriers = quiesce_count(&run->quiesce);
        in.ok = quiesce_ok(&run->quiesce) && in.ok;
        quiesce_destroy(&run->quiesce);
    }
    return in;
}

/* ---- output ---- */

/* Opened before entering the storage directory: a relative path is the caller's. */
/* `,"nemesis":{engine and parameters},"faults":{...}`: history header and summary. */
static void print_nemesis_params(FILE *f)
{
    fputs(",\"nemesis\":", f);
    nemesis_print_json(f);
    fputs(",\"faults\":", f);
    faults_print_json(f);
}

static history_sink_t *open_history(const options_t *o, const gen_config_t *cfg)
{
    const history_header_t h = {
        .variant = o->variant, .scenario = o->scenario, .mix = o->mix,
        .key_kinds = o->key_kinds,
        .threads = (unsigned) o->threads, .seed = o->seed, .ops = o->ops, .seconds = o->seconds,
        .volatile_pool = cfg->volatile_pool, .persistent_ids = cfg->persistent_ids,
        .persistent_percent = cfg->persistent_percent,
        .overlap_destroy = o->overlap_destroy, .print_end = print_inside,
        .print_params = print_nemesis_params,
    };
    history_sink_t *history = NULL;
    if (o->history_path != NULL &&
        (history = history_open(o->history_path, &h, &client_printer)) == NULL) {
        die(EXIT_BAD_FLAG, "--history %s: %s", o->history_path, strerror(errno));
    }
    return history;
}

static void write_history(history_sink_t *history, const options_t *o, const worker_t *w)
{
    const history_log_t **logs = calloc(o->threads, sizeof(*logs));
    if (logs == NULL) {
        die(EXIT_RUN_FAILED, "out of memory");
    }
    for (unsigned t = 0; t < o->threads; t++) {
        logs[t] = &w[t].client.log;
    }
    if (!history_close(history, logs)) {
        die(EXIT_RUN_FAILED, "cannot write the history to %s", o->history_path);
    }
    free(logs);
}

static void print_summary(const options_t *o, uint64_t calls, double elapsed)
{
    printf("{\"ops\":%llu,\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"threads\":%u,\"reloads\":%llu,"
           "\"barriers\":%llu,\"invariants\":\"%s\",\"history\":",
           (unsigned long long) calls, elapsed, elapsed > 0 ? (double) calls / elapsed : 0.0,
           (unsigned) o->threads, (unsigned long long) inside.reloads,
           (unsigned long long) inside.barriers, inside.ok ? "ok" : "violated");
    history_print_string(stdout, o->history_path);
    print_nemesis_params(stdout);
    fputs("}\n", stdout);
}

static gen_config_t make_gen_config(const options_t *o)
{
    gen_config_t cfg = {
        .seed = o->seed, .volatile_pool = (unsigned) o->volatile_pool,
        .persistent_ids = (unsigned) o->persistent_ids,
        .persistent_percent = (unsigned) o->persistent_percent,
    };
    char err[160];
    if (!gen_parse_mix(&cfg, o->mix, client_op_name, client_op_count(), err, sizeof(err)) ||
        !gen_parse_kinds(&cfg, o->key_kinds, err, sizeof(err))) {
        die(EXIT_BAD_FLAG, "%s", err);
    }
    if (!gen_pool_alloc(&cfg)) {
        die(EXIT_RUN_FAILED, "out of memory");
    }
    return cfg;
}

/* Faults, scheduler, crash handler and watchdog: before psa_crypto_init (the mutex wrappers
 * must be in place before the core's first lock) and before entering the storage directory
 * (--replay and --schedule-out are relative to the caller's directory). */
static void setup_nemesis(options_t *o)
{
    char err[256];
    unsigned participants = (unsigned) o->threads;
#if defined(PSA_STRESS_TEST_BUILD)
    participants += o->canary ? CANARY_THREADS : 0;
#endif
    o->nemesis.seed = o->seed;
    if (!faults_setup(o->faults, o->seed, err, sizeof(err)) ||
        !nemesis_setup(&o->nemesis, participants, err, sizeof(err))) {
        die(EXIT_BAD_FLAG, "%s", err);
    }
    /* A serialised run parks every thread but one: a real wait outside the core's mutexes
     * (the quiescent barrier, pthread_once) would never end. */
    if (nemesis_serialised() && (o->barrier_every > 0 || o->init_race)) {
        die(EXIT_BAD_FLAG, "--sched %s cannot be combined with --barrier-every or --init-race",
            o->nemesis.sched);
    }
    watchdog_install_crash_handler();
    if (o->watchdog > 0 && !watchdog_start(o->watchdog)) {
        die(EXIT_RUN_FAILED, "cannot start the watchdog thread");
    }
}

int main(int argc, char **argv)
{
    options_t o = {
        .threads = 4, .ops = 10000, .seed = 1, .mix = DEFAULT_MIX, .key_kinds = GEN_DEFAULT_KINDS,
        .volatile_pool = 8, .persistent_ids = 4, .persistent_percent = 0,
        .nemesis = { .sched = "os", .depth = 3, .k = 2000 },
    };
    parse_flags(&o, argc, argv);
    gen_config_t cfg = make_gen_config(&o);
    setup_nemesis(&o);
    history_sink_t *history = open_history(&o, &cfg);
    enter_storage_dir(o.storage_dir);
    if (!o.init_race) {
        psa_status_t status = psa_crypto_init();
        if (status != PSA_SUCCESS) {
            die(EXIT_RUN_FAILED, "psa_crypto_init failed: %d", (int) status);
        }
        pthread_once(&setup_once, setup_after_init);
    }
    spec_init(o.overlap_destroy, client_op_name, client_op_count());

    run_t run;
    worker_t *w = make_workers(&o, &cfg, &run, history);
    double elapsed = run_workers(&o, w, &run);
    nemesis_finish();
    inside = check_inside(&o, &run);
    uint64_t calls = 0;
    bool ok = true;
    for (unsigned t = 0; t < o.threads; t++) {
        calls += w[t].client.done;
        ok = ok && w[t].ok;
    }
    if (!ok) {
        die(EXIT_RUN_FAILED, "out of memory for the history after %llu calls",
            (unsigned long long) calls);
    }
    if (history != NULL) {
        write_history(history, &o, w);
    }
    print_summary(&o, calls, elapsed);

    for (unsigned t = 0; t < o.threads; t++) {
        history_log_free(&w[t].client.log);
    }
    free(w);
    gen_pool_free(&cfg);
    free(inside.live.ids);
    mbedtls_psa_crypto_free();
    return inside.ok ? 0 : EXIT_INVARIANT;
}
