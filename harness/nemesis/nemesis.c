/* psa-stress: the nemesis's scheduler (see nemesis.h). */
#define _GNU_SOURCE /* nanosleep, sched_yield */

#include "nemesis/nemesis.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/threading.h>

#include "nemesis/faults.h"
#include "inside/handoffs.h"
#include "history/history.h"
#include "nemesis/lock_wait.h"
#include "nemesis/schedule.h"
#include "nemesis/strategy.h"
#include "driver/tsan_hide.h"
#include "nemesis/watchdog.h"

#define MAX_HELD 256 /* modelled mutexes held at once, by all threads together */
#define NOBODY UINT_MAX

typedef enum { ENGINE_OS, ENGINE_DELAY, ENGINE_PCT, ENGINE_RANDOM } engine_t;
static const char *const engine_names[] = { "os", "delay", "pct", "random" };

typedef enum { TS_ABSENT, TS_RUNNABLE, TS_BLOCKED, TS_DONE } thread_state_t;

typedef struct {
    thread_state_t state;
    const void *waits_for; /* TS_BLOCKED: the mutex */
    pthread_cond_t wake;   /* signalled when `running` becomes this thread */
} participant_t;

typedef struct {
    const void *mutex;
    unsigned owner;
} held_t;

/* Set by nemesis_setup before any participant exists; read-only afterwards. */
static engine_t engine;
static lock_wait_t lock_wait;
static nemesis_options_t opt;
static unsigned n_threads;
static bool replaying;
static bool replay_edited; /* the schedule was edited by the shrinker (schedule.h) */
static bool count_handoffs; /* key-slot mutex hand-offs are counted (handoffs.h) */
static int (*real_lock)(mbedtls_threading_mutex_t *);
static int (*real_unlock)(mbedtls_threading_mutex_t *);

/* The serialised engines' state. Everything below is guarded by `mu`, which is only taken
 * inside TSAN_HIDE (the baton must not order the participants for TSan). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static participant_t *threads;
static bool *runnable;          /* scratch for the strategy */
static unsigned arrived;
static unsigned running = NOBODY; /* the baton holder */
static held_t held[MAX_HELD];   /* invariant: a modelled mutex is held iff it is listed here */
static unsigned n_held;
static strategy_t strategy;
static uint64_t steps;

static _Thread_local unsigned self = NOBODY; /* participant id of the calling thread */
static _Thread_local sched_rng_t delay_rng;   /* delay engine */

bool nemesis_serialised(void)
{
    return engine == ENGINE_PCT || engine == ENGINE_RANDOM;
}

static mutex_kind_t mutex_kind(const void *m)
{
    if (m == &mbedtls_threading_key_slot_mutex) {
        return MUTEX_KEY_SLOT;
    }
    if (m == &mbedtls_threading_psa_globaldata_mutex) {
        return MUTEX_GLOBALDATA;
    }
    return m == &mbedtls_threading_psa_rngdata_mutex ? MUTEX_RNGDATA : MUTEX_OTHER;
}

/* ---- dying paths: called from decide(), inside one TSAN_HIDE level, mu held ---- */

/* Ends the run: the schedule so far is written, the history files stay (history.h). The
 * hidden region is closed first, else TSan reports a thread "finished with ignores enabled". */
static void die_now(int code, bool stacks)
{
    TSAN_HIDE_END();
    nemesis_flush();
    if (stacks) {
        watchdog_dump_stacks();
    }
    _exit(code);
}

static unsigned owner_of(const void *m)
{
    for (unsigned i = 0; i < n_held; i++) {
        if (held[i].mutex == m) {
            return held[i].owner;
        }
    }
    return NOBODY;
}

/* mu held. No thread can run, some are parked on mutexes: print who waits for whom. */
static void report_deadlock(void)
{
    fprintf(stderr, "psa-stress: DEADLOCK: no runnable thread at scheduling step %" PRIu64
            " (engine %s); wait-for state:\n", steps, engine_names[engine]);
    for (unsigned t = 0; t < n_threads; t++) {
        if (threads[t].state == TS_BLOCKED) {
            const void *m = threads[t].waits_for;
            unsigned owner = owner_of(m);
            fprintf(stderr, "  thread %u waits for %s (%p) held by ", t,
                    schedule_mutex_names[mutex_kind(m)], m);
            fprintf(stderr, owner == NOBODY ? "a harness lock holder\n" : "thread %u\n", owner);
        }
    }
    die_now(NEMESIS_EXIT_DEADLOCK, true);
}

static void report_divergence(const sched_step_t *want, const sched_step_t *got)
{
    char w[48] = "(end of schedule)", g[48];
    if (want != NULL) {
        schedule_format_step(w, sizeof(w), want);
    }
    schedule_format_step(g, sizeof(g), got);
    fprintf(stderr, "psa-stress: REPLAY DIVERGED at step %" PRIu64 ": the schedule says "
            "'%s', the run reached '%s' (same build, flags and seed?)\n", steps, w, g);
    die_now(NEMESIS_EXIT_DIVERGED, false);
}

/* ---- the baton (mu held) ---- */

/* The recorded choice for the point `st` describes; diverged unless it matches and the chosen
 * thread can run. */
static unsigned replay_choice(sched_step_t *st)
{
    const sched_step_t *want = schedule_replay_step(steps);
    st->chosen = want != NULL ? want->chosen : 0;
    if (want == NULL || want->kind != st->kind || want->at != st->at ||
        want->mutex != st->mutex || want->chosen >= n_threads || !runnable[want->chosen]) {
        report_divergence(want, st);
    }
    return want->chosen;
}

/* A scheduling decision at a point of `kind` reached by `at`: picks the next baton holder and
 * wakes it. Deadlock when nobody can run but somebody is parked. */
static void decide(char kind, unsigned at, mutex_kind_t m)
{
    bool any_runnable = false, any_blocked = false;
    for (unsigned t = 0; t < n_threads; t++) {
        runnable[t] = threads[t].state == TS_RUNNABLE;
        any_runnable |= runnable[t];
        any_blocked |= threads[t].state == TS_BLOCKED;
    }
    if (!any_runnable) {
        if (any_blocked) {
            report_deadlock();
        }
        running = NOBODY; /* everybody is done */
        return;
    }
    sched_step_t st = { .kind = kind, .at = at == NOBODY ? SCHEDULE_NOBODY : (uint16_t) at,
                        .mutex = (uint8_t) m };
    unsigned next = !replaying      ? strategy_pick(&strategy, runnable, at)
                    : replay_edited ? schedule_edited_choice(&st, runnable, n_threads)
                                    : replay_choice(&st);
    st.chosen = (uint16_t) next;
    schedule_out_step(&st);
    steps++;
    running = next;
    pthread_cond_signal(&threads[next].wake);
}

static void wait_for_baton(void)
{
    while (running != self) {
        pthread_cond_wait(&threads[self].wake, &mu);
    }
}

/* A point where the calling participant may be preempted. */
static void serial_point(char kind, mutex_kind_t m)
{
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&mu);
    decide(kind, self, m);
    wait_for_baton();
    pthread_mutex_unlock(&mu);
    TSAN_HIDE_END();
}

/* Before a lock: after the point, park until the modelled mutex is free, then own it. The
 * real lock is taken afterwards by the caller and cannot block (nobody else holds it). */
static void serial_acquire(const void *m)
{
    mutex_kind_t kind = mutex_kind(m);
    serial_point('L', kind);
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&mu);
    while (owner_of(m) != NOBODY) {
        threads[self].state = TS_BLOCKED;
        threads[self].waits_for = m;
        decide('B', self, kind);
        wait_for_baton();
    }
    if (n_held == MAX_HELD) {
        fprintf(stderr, "psa-stress: nemesis: more than %d mutexes held at once\n", MAX_HELD);
        abort();
    }
    held[n_held++] = (held_t) { m, self };
    pthread_mutex_unlock(&mu);
    TSAN_HIDE_END();
}

/* mu held. The threads parked on `obj` can run again (and retry). */
static void wake_waiters(const void *obj)
{
    for (unsigned t = 0; t < n_threads; t++) {
        if (threads[t].state == TS_BLOCKED && threads[t].waits_for == obj) {
            threads[t].state = TS_RUNNABLE;
        }
    }
}

/* After the real unlock: the modelled mutex is free, its waiters can run again. */
static void serial_release(const void *m)
{
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&mu);
    for (unsigned i = 0; i < n_held; i++) {
        if (held[i].mutex == m) {
            held[i] = held[--n_held];
            break;
        }
    }
    wake_waiters(m);
    pthread_mutex_unlock(&mu);
    TSAN_HIDE_END();
    serial_point('U', mutex_kind(m));
}

void nemesis_park(const void *obj)
{
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&mu);
    threads[self].state = TS_BLOCKED;
    threads[self].waits_for = obj;
    decide('B', self, MUTEX_OTHER);
    wait_for_baton();
    pthread_mutex_unlock(&mu);
    TSAN_HIDE_END();
}

void nemesis_unpark(const void *obj)
{
    if (nemesis_serialised() && self != NOBODY) {
        TSAN_HIDE_BEGIN();
        pthread_mutex_lock(&mu);
        wake_waiters(obj);
        pthread_mutex_unlock(&mu);
        TSAN_HIDE_END();
    }
}

/* ---- the delay engine ---- */

/* 1 in 8 points: yield; 1 in 32: sleep 1..512 us (log-uniform). */
static void delay_point(void)
{
    uint64_t r = sched_rng_below(&delay_rng, 32);
    if (r < 4) {
        sched_yield();
    } else if (r == 4) {
        struct timespec ts = { 0, 1000L << sched_rng_below(&delay_rng, 10) };
        nanosleep(&ts, NULL);
    }
}

/* ---- the wrappers installed into mbedtls_mutex_lock/unlock ---- */

static int nemesis_lock(mbedtls_threading_mutex_t *m)
{
    bool counted = count_handoffs && m == &mbedtls_threading_key_slot_mutex;
    if (self != NOBODY && faults_mutex_lock_fails()) {
        return MBEDTLS_ERR_THREADING_MUTEX_ERROR;
    }
    if (counted) {
        handoffs_waiting(); /* before any wait, the serialised engines' included */
    }
    if (self != NOBODY) {
        if (nemesis_serialised()) {
            serial_acquire(m);
        } else if (engine == ENGINE_DELAY) {
            delay_point();
        }
    }
    int ret = real_lock(m);
    if (ret == 0 && counted) {
        handoffs_acquired(__builtin_return_address(0)); /* key-slot mutex held */
    } else if (counted) {
        handoffs_released(); /* the lock failed: no longer waiting */
    }
    return ret;
}

static int nemesis_unlock(mbedtls_threading_mutex_t *m)
{
    bool counted = count_handoffs && m == &mbedtls_threading_key_slot_mutex;
    if (counted) {
        handoffs_releasing(); /* key-slot mutex still held */
    }
    int ret = real_unlock(m);
    if (counted) {
        handoffs_released(); /* before the baton passes: no one reads a stale entry */
    }
    if (self != NOBODY && ret == 0) {
        if (nemesis_serialised()) {
            serial_release(m);
        } else if (engine == ENGINE_DELAY) {
            delay_point();
        }
    }
    return ret;
}

/* ---- participants ---- */

void nemesis_thread_enter(unsigned id)
{
    self = id;
    sched_rng_seed(&delay_rng, opt.seed, id);
    faults_thread_enter(id);
    if (!nemesis_serialised()) {
        return;
    }
    TSAN_HIDE_BEGIN();
    pthread_mutex_lock(&mu);
    threads[id].state = TS_RUNNABLE;
    if (++arrived == n_threads) {
        decide('S', NOBODY, MUTEX_NONE);
    }
    wait_for_baton();
    pthread_mutex_unlock(&mu);
    TSAN_HIDE_END();
}

void nemesis_thread_exit(void)
{
    handoffs_thread_exit();
    if (nemesis_serialised()) {
        TSAN_HIDE_BEGIN();
        pthread_mutex_lock(&mu);
        threads[self].state = TS_DONE;
        decide('E', self, MUTEX_NONE);
        pthread_mutex_unlock(&mu);
        TSAN_HIDE_END();
    }
    self = NOBODY;
}

/* Exact replay: the recorded run stopped this thread here iff the step is an 'X'. (An edited
 * replay stops as the run itself decides.) */
static bool replayed_stop(void)
{
    TSAN_HIDE_BEGIN();
    const sched_step_t *st = schedule_replay_step(steps);
    bool stop = st != NULL && st->kind == 'X';
    TSAN_HIDE_END();
    return stop;
}

bool nemesis_op_boundary(const atomic_bool *stop)
{
    watchdog_progress(self);
    faults_op_boundary(self);
    bool want_stop = atomic_load_explicit(stop, memory_order_relaxed) || faults_stop_requested();
    if (nemesis_serialised()) {
        want_stop = replaying && !replay_edited ? replayed_stop() : want_stop;
        serial_point(want_stop ? 'X' : 'O', MUTEX_NONE);
    } else if (engine == ENGINE_DELAY) {
        delay_point();
    }
    return want_stop;
}

void nemesis_step(void)
{
    if (nemesis_serialised()) {
        serial_point('C', MUTEX_NONE);
    } else if (engine == ENGINE_DELAY) {
        delay_point();
    }
}

/* ---- set-up, end, report ---- */

static bool setup_fail(char *err, size_t len, const char *msg, const char *arg)
{
    snprintf(err, len, msg, arg);
    return false;
}

static bool parse_engine(const char *name)
{
    for (unsigned e = 0; e < sizeof(engine_names) / sizeof(engine_names[0]); e++) {
        if (strcmp(name, engine_names[e]) == 0) {
            engine = (engine_t) e;
            return true;
        }
    }
    return false;
}

/* --replay: the schedule's engine becomes this run's; its seed and thread count must match. */
static bool load_replay(char *err, size_t len)
{
    schedule_header_t h;
    if (!schedule_load(opt.replay_path, &h, err, len)) {
        return false;
    }
    if (h.threads != n_threads || h.seed != opt.seed) {
        snprintf(err, len, "--replay %s: recorded with %u threads and seed %" PRIu64 ", this "
                 "run has %u and %" PRIu64, opt.replay_path, h.threads, h.seed, n_threads,
                 opt.seed);
        return false;
    }
    replaying = true;
    replay_edited = h.edited;
    opt.depth = h.depth;
    opt.k = h.k;
    if (!parse_engine(h.engine) || !nemesis_serialised()) {
        return setup_fail(err, len, "--replay %s: not a pct or random schedule",
                          opt.replay_path);
    }
    return true;
}

static bool setup_serialised(char *err, size_t len)
{
    threads = calloc(n_threads, sizeof(*threads));
    runnable = calloc(n_threads, sizeof(*runnable));
    strategy_kind_t kind = engine == ENGINE_PCT ? STRATEGY_PCT : STRATEGY_RANDOM;
    if (threads == NULL || runnable == NULL ||
        !strategy_init(&strategy, kind, opt.seed, n_threads, (unsigned) opt.depth, opt.k)) {
        return setup_fail(err, len, "%s", "out of memory for the nemesis");
    }
    for (unsigned t = 0; t < n_threads; t++) {
        pthread_cond_init(&threads[t].wake, NULL);
    }
    schedule_header_t h = { engine_names[engine], opt.seed, n_threads, (unsigned) opt.depth,
                            opt.k, false }; /* what this run does is exact, never edited */
    if (opt.schedule_out_path != NULL && !schedule_out_open(opt.schedule_out_path, &h)) {
        return setup_fail(err, len, "--schedule-out %s: cannot create", opt.schedule_out_path);
    }
    return true;
}

bool nemesis_setup(const nemesis_options_t *o, unsigned participants, char *err, size_t len)
{
    opt = *o;
    n_threads = participants;
    if (!parse_engine(o->sched)) {
        return setup_fail(err, len, "--sched: expected os, delay, pct or random, got '%s'",
                          o->sched);
    }
    if (!lock_wait_parse(o->lock_wait, &lock_wait)) {
        return setup_fail(err, len, "--lock-wait: expected spin or sleep, got '%s'",
                          o->lock_wait);
    }
    if (o->replay_path != NULL && !load_replay(err, len)) {
        return false;
    }
    if (!nemesis_serialised() && o->schedule_out_path != NULL) {
        return setup_fail(err, len, "--schedule-out needs --sched pct or random (got %s)",
                          engine_names[engine]);
    }
    if (nemesis_serialised() && !setup_serialised(err, len)) {
        return false;
    }
    if (!lock_wait_install(lock_wait)) { /* first: the wrappers below call what it installs */
        return setup_fail(err, len, "--lock-wait %s: libc.so.6's pthread_mutex_trylock not "
                          "found (use --lock-wait sleep)", o->lock_wait);
    }
    count_handoffs = handoffs_setup();
    if (engine == ENGINE_OS && !faults_mutex_active()) {
        if (count_handoffs) {
            handoffs_install(); /* nothing else to do at a lock: the lean wrappers */
        }
    } else {
        real_lock = mbedtls_mutex_lock;
        real_unlock = mbedtls_mutex_unlock;
        mbedtls_mutex_lock = nemesis_lock;
        mbedtls_mutex_unlock = nemesis_unlock;
    }
    return true;
}

void nemesis_finish(void)
{
    if (replaying && !replay_edited && steps != schedule_replay_length()) {
        fprintf(stderr, "psa-stress: REPLAY DIVERGED: the run ended after %" PRIu64 " steps, "
                "the schedule has %" PRIu64 "\n", steps, schedule_replay_length());
        exit(NEMESIS_EXIT_DIVERGED);
    }
    schedule_out_close(steps, true);
}

void nemesis_flush(void)
{
    schedule_out_close(steps, false);
}

void nemesis_print_json(FILE *f)
{
    fprintf(f, "{\"engine\":\"%s\",\"seed\":%" PRIu64 ",\"lock_wait\":\"%s\"",
            engine_names[engine], opt.seed, lock_wait_name(lock_wait));
    if (nemesis_serialised()) {
        fprintf(f, ",\"n\":%u,\"steps\":%" PRIu64 ",\"replay\":", n_threads, steps);
        history_print_string(f, replaying ? opt.replay_path : NULL);
    }
    if (replay_edited) {
        uint64_t followed, fallbacks;
        schedule_edited_counts(&followed, &fallbacks);
        fprintf(f, ",\"edited\":true,\"followed\":%" PRIu64 ",\"fallbacks\":%" PRIu64, followed,
                fallbacks);
    }
    if (engine == ENGINE_PCT) {
        fprintf(f, ",\"depth\":%" PRIu64 ",\"k\":%" PRIu64 ",\"rounds\":%" PRIu64
                ",\"pct_bound\":%.3g", opt.depth, opt.k, strategy.rounds,
                strategy_pct_bound(n_threads, (unsigned) opt.depth, opt.k));
    }
    fputc('}', f);
}
