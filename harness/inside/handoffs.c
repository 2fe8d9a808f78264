/* psa-stress: key-slot mutex hand-offs (see handoffs.h). */
#include "inside/handoffs.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/threading.h>

#define NO_CALL (-1)
/* Not instrumented by TSan: see handoffs.h. */
#if defined(__clang__) || defined(__GNUC__)
#define UNTRACKED __attribute__((no_sanitize("thread")))
#else
#define UNTRACKED
#endif

static bool enabled;

static _Thread_local int current = NO_CALL;                /* the call in flight, its row */
static _Thread_local uint64_t counts[HANDOFF_OPS][HANDOFF_OPS]; /* [releasing][acquiring] */

/* The last release of the key-slot mutex: who and in which call. Invariant: read and written
 * only by the holder of the key-slot mutex. */
static struct {
    const void *thread; /* &current of the releasing thread: unique per thread */
    int op;
} last = { NULL, NO_CALL };

/* The folded counts of the workers that exited; guarded by totals_mu. */
static pthread_mutex_t totals_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t totals[HANDOFF_OPS][HANDOFF_OPS];

/* The functions handoffs_install wraps. */
static int (*real_lock)(mbedtls_threading_mutex_t *);
static int (*real_unlock)(mbedtls_threading_mutex_t *);

bool handoffs_setup(void)
{
    const char *value = getenv("PSA_STRESS_HANDOFFS");
    enabled = value == NULL || strcmp(value, "off") != 0;
    return enabled;
}

bool handoffs_enabled(void)
{
    return enabled;
}

UNTRACKED void handoffs_call_begin(unsigned op)
{
    current = op < HANDOFF_OPS ? (int) op : NO_CALL;
}

UNTRACKED void handoffs_call_end(void)
{
    current = NO_CALL;
}

/* Key-slot mutex held. */
UNTRACKED void handoffs_acquired(void)
{
    if (current != NO_CALL && last.op != NO_CALL && last.thread != (const void *) &current) {
        counts[last.op][current]++;
    }
}

/* Key-slot mutex held. */
UNTRACKED void handoffs_releasing(void)
{
    last.thread = &current;
    last.op = current;
}

UNTRACKED static int counting_lock(mbedtls_threading_mutex_t *m)
{
    int ret = real_lock(m);
    if (ret == 0 && m == &mbedtls_threading_key_slot_mutex) {
        handoffs_acquired();
    }
    return ret;
}

UNTRACKED static int counting_unlock(mbedtls_threading_mutex_t *m)
{
    if (m == &mbedtls_threading_key_slot_mutex) {
        handoffs_releasing();
    }
    return real_unlock(m);
}

void handoffs_install(void)
{
    real_lock = mbedtls_mutex_lock;
    real_unlock = mbedtls_mutex_unlock;
    mbedtls_mutex_lock = counting_lock;
    mbedtls_mutex_unlock = counting_unlock;
}

void handoffs_thread_exit(void)
{
    if (!enabled) {
        return;
    }
    pthread_mutex_lock(&totals_mu);
    for (unsigned r = 0; r < HANDOFF_OPS; r++) {
        for (unsigned a = 0; a < HANDOFF_OPS; a++) {
            totals[r][a] += counts[r][a];
            counts[r][a] = 0;
        }
    }
    pthread_mutex_unlock(&totals_mu);
}

/* One releasing row's object, or nothing when the row has no count. totals_mu held. */
static void print_row(FILE *f, unsigned r, const char *(*op_name)(unsigned), unsigned op_count,
                      bool *first_row)
{
    const char *sep = NULL; /* NULL: the row's object is not open yet */
    for (unsigned a = 0; a < op_count; a++) {
        if (totals[r][a] == 0) {
            continue;
        }
        if (sep == NULL) {
            fprintf(f, "%s\"%s\":{", *first_row ? "" : ",", op_name(r));
            *first_row = false;
            sep = "";
        }
        fprintf(f, "%s\"%s\":%llu", sep, op_name(a), (unsigned long long) totals[r][a]);
        sep = ",";
    }
    if (sep != NULL) {
        fputc('}', f);
    }
}

void handoffs_print_json(FILE *f, const char *(*op_name)(unsigned), unsigned op_count)
{
    if (!enabled) {
        return;
    }
    op_count = op_count < HANDOFF_OPS ? op_count : HANDOFF_OPS;
    bool first_row = true;
    fputs(",\"handoffs\":{", f);
    pthread_mutex_lock(&totals_mu);
    for (unsigned r = 0; r < op_count; r++) {
        print_row(f, r, op_name, op_count, &first_row);
    }
    pthread_mutex_unlock(&totals_mu);
    fputc('}', f);
}
