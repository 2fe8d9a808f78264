/* psa-stress: storage directory, worker threads, and the run summary (flags: options.c).
 *
 * A run: parse flags, open the history file, enter the storage directory, psa_crypto_init, start
 * the workers together at a barrier, stop them by op count or by deadline, join, write the
 * history and one JSON summary line on stdout. Exit 0 when the run completed, 2 on a bad flag,
 * 1 on any other failure. Verdicts are run.py's job. */
#define _GNU_SOURCE /* mkdtemp, clock_nanosleep, pthread barriers, sched_yield */

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "driver/canary.h"
#include "driver/client.h"
#include "inside/inspect.h"
#include "inside/quiesce.h"
#include "inside/reloads.h"
#include "driver/id_locks.h"
#include "nemesis/faults.h"
#include "inside/handoffs.h"
#include "inside/transitions.h"
#include "nemesis/nemesis.h"
#include "driver/options.h"
#include "nemesis/pinner.h"
#include "psa_crypto_slot_management.h" /* PSA_KEY_ID_VOLATILE_MIN, _MAX */
#include "nemesis/watchdog.h"

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
        options_die(EXIT_RUN_FAILED, "cannot read storage directory %s: %s", dir, strerror(errno));
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len > 8 && strcmp(e->d_name + len - 8, ".psa_its") == 0) {
            options_die(EXIT_BAD_FLAG, "--storage-dir %s already holds persistent keys (%s)", dir,
                e->d_name);
        }
    }
    closedir(d);
}

static void enter_storage_dir(const char *dir)
{
    if (dir == NULL) {
        if (mkdtemp(temp_dir) == NULL) {
            options_die(EXIT_RUN_FAILED, "cannot create a temporary storage directory: %s",
                strerror(errno));
        }
        atexit(remove_temp_dir); /* also on error exits, after a normal exit's crypto_free */
        dir = temp_dir;
    } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        options_die(EXIT_BAD_FLAG, "--storage-dir %s: %s", dir, strerror(errno));
    }
    if (chdir(dir) != 0) {
        options_die(EXIT_BAD_FLAG, "--storage-dir %s: %s", dir, strerror(errno));
    }
    require_no_keys(dir);
}

/* ---- workers ---- */

typedef struct {
    pthread_barrier_t start; /* workers and main: nobody calls PSA before all are ready */
    atomic_bool stop;        /* set by main at the --seconds deadline */
    atomic_uint running;     /* workers that have not finished (the pinners stop at 0) */
    const options_t *o;
    quiesce_t quiesce;       /* --barrier-every, --reinit-every */
    uint64_t reinits;        /* --reinit-every: frees of the core; under quiesce.lock */
    bool pinners_ok;         /* no pinner got a status a lookup may not return (pinner.h) */
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
 * init makes it; the others wait for it after their init (which still races). Under a
 * serialised engine a waiter parks (a real wait would keep the baton); otherwise it yields.
 * The release store and acquire loads order the setup key's creation before every use, as
 * pthread_once would. --reinit-every makes no setup key (its mix may not have derive): the free
 * at each barrier would take it away, and its id would come back to a worker's key. */
enum { SETUP_NONE, SETUP_RUNNING, SETUP_DONE };
static atomic_int setup_state = SETUP_NONE;
/* Only derive reads the setup key: without derive in the mix no slot is spent on it (the static
 * store's 16 slots are all the workload's). Set by main before any worker starts. */
static bool setup_wanted;

static void setup_after_init(void)
{
    psa_status_t status = client_setup();
    if (status != PSA_SUCCESS) {
        options_die(EXIT_RUN_FAILED, "client setup (derive secret key) failed: %d", (int) status);
    }
}

static void setup_once(void)
{
    int expected = SETUP_NONE;
    if (!setup_wanted) {
        return;
    }
    if (atomic_compare_exchange_strong(&setup_state, &expected, SETUP_RUNNING)) {
        setup_after_init();
        atomic_store_explicit(&setup_state, SETUP_DONE, memory_order_release);
        nemesis_unpark(&setup_state);
        return;
    }
    while (atomic_load_explicit(&setup_state, memory_order_acquire) != SETUP_DONE) {
        if (nemesis_serialised()) {
            nemesis_park(&setup_state);
        } else {
            sched_yield();
        }
    }
}

/* Calls between two quiescent barriers: --barrier-every or --reinit-every (0: no barrier). */
static uint64_t barrier_period(const options_t *o)
{
    return o->reinit_every > 0 ? o->reinit_every : o->barrier_every;
}

/* The calls of one worker, with a quiescent barrier every barrier_period() calls; with
 * --reinit-every the worker's first call after each barrier is psa_crypto_init, racing the
 * other workers' (the last one to arrive freed the core at the barrier). */
static bool run_calls(worker_t *w)
{
    const options_t *o = w->run->o;
    uint64_t every = barrier_period(o);
    if (every == 0) {
        return client_run(&w->client, w->ops_limit, &w->run->stop);
    }
    for (uint64_t left = w->ops_limit; left > 0;) {
        uint64_t n = left < every ? left : every;
        if (!client_run(&w->client, n, &w->run->stop)) {
            return false;
        }
        left -= n;
        if (left == 0 || atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
            break;
        }
        quiesce_wait(&w->run->quiesce, w);
        if (o->reinit_every > 0 && !client_call(&w->client, client_op_row("init"))) {
            return false;
        }
    }
    return true;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const options_t *o = w->run->o;
    pthread_barrier_wait(&w->run->start);
    nemesis_thread_enter(w->client.thread);
    w->ok = true;
    if (o->init_race || o->reinit_every > 0) {
        w->ok = client_call(&w->client, client_op_row("init"));
        setup_once();
    }
    bool ok = run_calls(w); /* a barrier's clean-up may clear w->ok meanwhile */
    w->ok = w->ok && ok;
    if (barrier_period(o) > 0) {
        quiesce_leave(&w->run->quiesce, w);
    }
    atomic_fetch_sub_explicit(&w->run->running, 1, memory_order_relaxed);
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
        options_die(EXIT_RUN_FAILED, "out of memory");
    }
    memset(w, 0, o->threads * sizeof(*w));
    for (unsigned t = 0; t < o->threads; t++) {
        bool by_count = o->seconds == 0;
        w[t].ops_limit = by_count ? o->ops / o->threads + (t < o->ops % o->threads) : UINT32_MAX;
        w[t].run = run;
        w[t].client.thread = t;
        gen_init(&w[t].client.gen, cfg, t);
        if (!history_log_init(&w[t].client.log, history, t, by_count ? w[t].ops_limit : 0)) {
            options_die(EXIT_RUN_FAILED, "out of memory for the history");
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

/* --reinit-every, at a barrier after the invariants: destroys every volatile key of `live` as
 * recorded calls of worker `w`, then frees the core. The history stays exact without a record
 * of the free: no volatile key is left to lose, and a persistent key only loses its cached
 * copy, which changes no key (docs/history-format.md). Returns false when the history ran out
 * of memory. Quiescent: every other worker waits at the barrier. */
static bool free_core(worker_t *w, const inspect_live_t *live)
{
    bool ok = true;
    for (size_t i = 0; i < live->count && ok; i++) {
        if (live->ids[i] >= PSA_KEY_ID_VOLATILE_MIN && live->ids[i] <= PSA_KEY_ID_VOLATILE_MAX) {
            ok = client_destroy_key(&w->client, live->ids[i]);
        }
    }
    mbedtls_psa_crypto_free();
    w->run->reinits++;
    return ok;
}

/* quiesce_check_t, run by the last worker to arrive: no fault may hit the inspection's own
 * core calls, nor the clean-up and free of --reinit-every. */
static bool check_at_barrier(void *member)
{
    worker_t *w = member;
    bool reinit = w->run->o->reinit_every > 0;
    inspect_live_t live = { NULL, 0 };
    faults_suspend(true);
    bool ok = inspect_invariants(NULL, 0, reinit ? &live : NULL);
    if (reinit && !free_core(w, &live)) {
        w->ok = false;
    }
    faults_suspend(false);
    free(live.ids);
    return ok;
}

/* Starts the workers together, stops them by count or deadline, joins them.
 * Returns the elapsed run time in seconds. */
static double run_workers(const options_t *o, worker_t *w, run_t *run)
{
    if (pthread_barrier_init(&run->start, NULL, (unsigned) o->threads + 1) != 0) {
        options_die(EXIT_RUN_FAILED, "cannot create the start barrier");
    }
    run->o = o;
    run->reinits = 0;
    if (barrier_period(o) > 0 && !quiesce_init(&run->quiesce, (unsigned) o->threads,
                                               check_at_barrier)) {
        options_die(EXIT_RUN_FAILED, "cannot create the quiescent barrier");
    }
    atomic_init(&run->stop, false);
    atomic_init(&run->running, (unsigned) o->threads);
    for (unsigned t = 0; t < o->threads; t++) {
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0) {
            options_die(EXIT_RUN_FAILED, "cannot start worker thread %u", t);
        }
    }
    const pinner_config_t pins = {
        .count = (unsigned) o->pinners, .first_participant = (unsigned) o->threads,
        .persistent_ids = (unsigned) o->persistent_ids, .seed = o->seed, .stop = &run->stop,
        .running = &run->running,
    };
    if (!pinners_start(&pins)) {
        options_die(EXIT_RUN_FAILED, "cannot start the pinner threads");
    }
#if defined(PSA_STRESS_TEST_BUILD)
    if (o->canary && !canary_start((unsigned) (o->threads + o->pinners))) {
        options_die(EXIT_RUN_FAILED, "cannot start the canary threads");
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
    run->pinners_ok = pinners_join();
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
    uint64_t reinits;    /* --reinit-every: frees of the core at those barriers */
    inspect_live_t live; /* FULL slots ∪ storage, without the harness's own key */
} inside_t;

/* What check_inside() found, for the summary and the history's end line. */
static inside_t inside;

/* history_header_t.print_end: the findings as end-line members. */
static void print_inside(FILE *f)
{
    fprintf(f, ",\"reloads\":%llu,\"barriers\":%llu,\"reinits\":%llu,\"invariants\":\"%s\","
            "\"live\":[", (unsigned long long) inside.reloads, (unsigned long long) inside.barriers,
            (unsigned long long) inside.reinits, inside.ok ? "ok" : "violated");
    for (size_t i = 0; i < inside.live.count; i++) {
        fprintf(f, "%s%u", i == 0 ? "" : ",", (unsigned) inside.live.ids[i]);
    }
    fputc(']', f);
    handoffs_print_json(f, client_op_name, client_op_count());
    transitions_print_json(f);
}

/* After the join: nothing is in flight. */
static inside_t check_inside(const options_t *o, run_t *run)
{
    inside_t in = { .reloads = reloads_count() };
    const psa_key_id_t hidden = client_setup_key();
    in.ok = inspect_invariants(&hidden, 1, &in.live) && run->pinners_ok;
    if (barrier_period(o) > 0) {
        in.barriers = quiesce_count(&run->quiesce);
        in.reinits = run->reinits;
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
        options_die(EXIT_BAD_FLAG, "--history %s: %s", o->history_path, strerror(errno));
    }
    return history;
}

static void write_history(history_sink_t *history, const options_t *o, const worker_t *w)
{
    const history_log_t **logs = calloc(o->threads, sizeof(*logs));
    if (logs == NULL) {
        options_die(EXIT_RUN_FAILED, "out of memory");
    }
    for (unsigned t = 0; t < o->threads; t++) {
        logs[t] = &w[t].client.log;
    }
    if (!history_close(history, logs)) {
        options_die(EXIT_RUN_FAILED, "cannot write the history to %s", o->history_path);
    }
    free(logs);
}

static void print_summary(const options_t *o, uint64_t calls, double elapsed)
{
    printf("{\"ops\":%llu,\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"threads\":%u,\"reloads\":%llu,"
           "\"barriers\":%llu,\"reinits\":%llu,\"invariants\":\"%s\",\"history\":",
           (unsigned long long) calls, elapsed, elapsed > 0 ? (double) calls / elapsed : 0.0,
           (unsigned) o->threads, (unsigned long long) inside.reloads,
           (unsigned long long) inside.barriers, (unsigned long long) inside.reinits,
           inside.ok ? "ok" : "violated");
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
        options_die(EXIT_BAD_FLAG, "%s", err);
    }
    /* --reinit-every: derive reads the setup key, which is never made (setup_once). Pinners:
     * a destroy would overlap a pinner's hold on its key, beyond spec. */
    if (o->reinit_every > 0 && cfg.weights[client_op_row("derive")] > 0) {
        options_die(EXIT_BAD_FLAG, "--reinit-every: the mix cannot have derive (use derive_from)");
    }
    if (o->pinners > 0 && !o->overlap_destroy && cfg.weights[client_op_row("destroy")] > 0) {
        options_die(EXIT_BAD_FLAG, "--pinners: the mix cannot have destroy without --overlap-destroy");
    }
    if (!gen_pool_alloc(&cfg)) {
        options_die(EXIT_RUN_FAILED, "out of memory");
    }
    return cfg;
}

/* Faults, scheduler, crash handler and watchdog: before psa_crypto_init (the mutex wrappers
 * must be in place before the core's first lock) and before entering the storage directory
 * (--replay and --schedule-out are relative to the caller's directory). */
static void setup_nemesis(options_t *o)
{
    char err[256];
    unsigned participants = (unsigned) (o->threads + o->pinners);
#if defined(PSA_STRESS_TEST_BUILD)
    participants += o->canary ? CANARY_THREADS : 0;
#endif
    o->nemesis.seed = o->seed;
    if (!faults_setup(o->faults, o->seed, err, sizeof(err)) ||
        !nemesis_setup(&o->nemesis, participants, err, sizeof(err))) {
        options_die(EXIT_BAD_FLAG, "%s", err);
    }
    watchdog_install_crash_handler();
    if (o->watchdog > 0 && !watchdog_start(o->watchdog)) {
        options_die(EXIT_RUN_FAILED, "cannot start the watchdog thread");
    }
}

int main(int argc, char **argv)
{
    options_t o;
    options_parse(&o, argc, argv);
    gen_config_t cfg = make_gen_config(&o);
    setup_wanted = cfg.weights[client_op_row("derive")] > 0;
    setup_nemesis(&o);
    history_sink_t *history = open_history(&o, &cfg);
    enter_storage_dir(o.storage_dir);
    if (!o.init_race && o.reinit_every == 0) {
        psa_status_t status = psa_crypto_init();
        if (status != PSA_SUCCESS) {
            options_die(EXIT_RUN_FAILED, "psa_crypto_init failed: %d", (int) status);
        }
        setup_once();
    }
    id_locks_init(o.overlap_destroy, client_op_name, client_op_count());

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
        options_die(EXIT_RUN_FAILED, "out of memory for the history after %llu calls",
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
