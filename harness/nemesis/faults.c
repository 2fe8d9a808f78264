/* psa-stress: fault injection (see faults.h). */
#define _GNU_SOURCE /* strdup, strtok_r */

#include "nemesis/faults.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/platform.h>
#include <mbedtls/threading.h>
#include <psa/crypto.h>

#include "history/history.h"
#include "nemesis/strategy.h"

/* Set by faults_setup, read-only afterwards. */
static const char *spec_text;
static double mutex_rate, alloc_rate, storage_rate, storage_delay_rate;
static uint64_t fault_seed;
#if defined(PSA_STRESS_TEST_BUILD)
static bool test_hang, test_inversion;
#endif

static _Atomic uint64_t mutex_failures, alloc_failures, storage_failures, storage_delays;
static atomic_bool stop_requested;

static _Thread_local bool participant; /* faults apply to this thread */
static _Thread_local bool suspended;   /* ... except while it inspects the core */
static _Thread_local bool storage_failed_last; /* its last ITS call got an injected failure */
static _Thread_local sched_rng_t rng;
static _Thread_local unsigned boundaries;

/* True with probability rate, for participant threads only. */
static bool roll(double rate)
{
    return participant && !suspended && rate > 0 &&
           (double) (sched_rng_next(&rng) >> 11) < rate * (double) (UINT64_C(1) << 53);
}

void faults_suspend(bool on)
{
    suspended = on;
}

void faults_thread_enter(unsigned id)
{
    participant = true;
    sched_rng_seed(&rng, fault_seed, 0xfa017u + id);
    boundaries = 0;
}

bool faults_mutex_active(void)
{
    return mutex_rate > 0
#if defined(PSA_STRESS_TEST_BUILD)
           || test_inversion || test_hang
#endif
    ;
}

bool faults_mutex_lock_fails(void)
{
    if (!roll(mutex_rate)) {
        return false;
    }
    atomic_fetch_add_explicit(&mutex_failures, 1, memory_order_relaxed);
    atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
    return true;
}

bool faults_stop_requested(void)
{
    return atomic_load_explicit(&stop_requested, memory_order_relaxed);
}

#if defined(MBEDTLS_PLATFORM_MEMORY)
static void *faulty_calloc(size_t n, size_t size)
{
    if (roll(alloc_rate)) {
        atomic_fetch_add_explicit(&alloc_failures, 1, memory_order_relaxed);
        return NULL;
    }
    return calloc(n, size);
}
#endif

/* The status an injected failure of this ITS call returns: what a failing medium reports,
 * never DOES_NOT_EXIST (that would be a lie about the store's content, not a failure). */
static int32_t storage_error(faults_its_call_t call)
{
    bool coin = sched_rng_below(&rng, 2) == 0;
    switch (call) {
        case FAULTS_ITS_SET:
            return coin ? PSA_ERROR_INSUFFICIENT_STORAGE : PSA_ERROR_STORAGE_FAILURE;
        case FAULTS_ITS_GET:
            return coin ? PSA_ERROR_DATA_CORRUPT : PSA_ERROR_STORAGE_FAILURE;
        default:
            return PSA_ERROR_STORAGE_FAILURE;
    }
}

int32_t faults_storage(faults_its_call_t call)
{
    if (roll(storage_delay_rate)) {
        atomic_fetch_add_explicit(&storage_delays, 1, memory_order_relaxed);
        struct timespec ts = { 0, 1000L << sched_rng_below(&rng, 10) }; /* 1..512 us */
        nanosleep(&ts, NULL);
    }
    bool fail = !storage_failed_last && roll(storage_rate); /* one failure at a time */
    storage_failed_last = fail;
    if (!fail) {
        return PSA_SUCCESS;
    }
    atomic_fetch_add_explicit(&storage_failures, 1, memory_order_relaxed);
    return storage_error(call);
}

#if defined(PSA_STRESS_TEST_BUILD)
/* Locks a then b through the (wrapped) core mutex functions, then unlocks both. */
static void lock_pair(mbedtls_threading_mutex_t *a, mbedtls_threading_mutex_t *b)
{
    if (mbedtls_mutex_lock(a) == 0) {
        if (mbedtls_mutex_lock(b) == 0) {
            mbedtls_mutex_unlock(b);
        }
        mbedtls_mutex_unlock(a);
    }
}
#endif

void faults_op_boundary(unsigned id)
{
#if defined(PSA_STRESS_TEST_BUILD)
    boundaries++;
    if (test_hang && id == 0 && boundaries == 3) {
        mbedtls_mutex_lock(&mbedtls_threading_key_slot_mutex);
        for (;;) {
            pause(); /* holds the key-slot mutex forever */
        }
    }
    if (test_inversion && id == 0) {
        lock_pair(&mbedtls_threading_key_slot_mutex, &mbedtls_threading_psa_globaldata_mutex);
    } else if (test_inversion && id == 1) {
        lock_pair(&mbedtls_threading_psa_globaldata_mutex, &mbedtls_threading_key_slot_mutex);
    }
#else
    (void) id;
#endif
}

static bool parse_rate(const char *value, double *rate)
{
    char *end;
    *rate = strtod(value, &end);
    return end != value && *end == '\0' && *rate >= 0 && *rate <= 1;
}

static double *rate_of(const char *kind)
{
    static const struct {
        const char *kind;
        double *rate;
    } kinds[] = {
        { "mutex", &mutex_rate }, { "alloc", &alloc_rate }, { "storage", &storage_rate },
        { "storage-delay", &storage_delay_rate },
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind, kinds[i].kind) == 0) {
            return kinds[i].rate;
        }
    }
    return NULL;
}

#define KINDS "mutex=R, alloc=R, storage=R or storage-delay=R"

/* One "kind=rate" or test-only "kind" item. */
static bool parse_item(char *item, char *err, size_t len)
{
    char *eq = strchr(item, '=');
    if (eq != NULL) {
        *eq = '\0';
        double *rate = rate_of(item);
        if (rate != NULL && parse_rate(eq + 1, rate)) {
            return true;
        }
        snprintf(err, len, "--faults: expected " KINDS " with R in [0, 1], got '%s=%s'", item,
                 eq + 1);
        return false;
    }
#if defined(PSA_STRESS_TEST_BUILD)
    if (strcmp(item, "hang") == 0 || strcmp(item, "inversion") == 0) {
        *(item[0] == 'h' ? &test_hang : &test_inversion) = true;
        return true;
    }
#endif
    snprintf(err, len, "--faults: unknown fault '%s' (expected " KINDS ")", item);
    return false;
}

bool faults_setup(const char *spec, uint64_t seed, char *err, size_t len)
{
    fault_seed = seed;
    spec_text = spec;
    if (spec == NULL) {
        return true;
    }
    char *copy = strdup(spec), *save = NULL;
    bool ok = copy != NULL;
    for (char *item = strtok_r(copy, ",", &save); ok && item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        ok = parse_item(item, err, len);
    }
    free(copy);
#if defined(MBEDTLS_PLATFORM_MEMORY)
    mbedtls_platform_set_calloc_free(faulty_calloc, free);
#else
    if (ok && alloc_rate > 0) {
        snprintf(err, len, "--faults alloc needs MBEDTLS_PLATFORM_MEMORY in the build");
        ok = false;
    }
#endif
    return ok;
}

void faults_print_json(FILE *f)
{
    fputs("{\"spec\":", f);
    history_print_string(f, spec_text);
    fprintf(f, ",\"mutex_failures\":%llu,\"alloc_failures\":%llu,\"storage_failures\":%llu,"
            "\"storage_delays\":%llu,\"stopped_by_fault\":%s}",
            (unsigned long long) atomic_load(&mutex_failures),
            (unsigned long long) atomic_load(&alloc_failures),
            (unsigned long long) atomic_load(&storage_failures),
            (unsigned long long) atomic_load(&storage_delays),
            faults_stop_requested() ? "true" : "false");
}
