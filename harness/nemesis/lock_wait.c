/* psa-stress: the lock-wait policies (see lock_wait.h). */
#define _GNU_SOURCE /* sched_yield */

#include "nemesis/lock_wait.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <mbedtls/threading.h>

#include "driver/tsan_hide.h"

/* Under TSan the spin lock announces itself as one blocking lock of the pthread mutex:
 * __tsan_mutex_pre_lock before the first try (lock-order inversion check, as the
 * pthread_mutex_lock interceptor does), __tsan_mutex_post_lock after the successful one
 * (acquisition, lock-order edges). The tries call libc's trylock directly: TSan's trylock
 * interceptor would count the acquisition a second time and, as a try-lock, add no lock-order
 * edges. The unlock is the stock one, through TSan's interceptor, on the same address. */
#if defined(PSA_STRESS_UNDER_TSAN)
#include <sanitizer/tsan_interface.h>
#define ANNOUNCE_PRE_LOCK(m) __tsan_mutex_pre_lock((m), 0)
#define ANNOUNCE_POST_LOCK(m, ok) \
    __tsan_mutex_post_lock((m), (ok) ? 0 : __tsan_mutex_try_lock_failed, 0)
#else
#define ANNOUNCE_PRE_LOCK(m) ((void) 0)
#define ANNOUNCE_POST_LOCK(m, ok) ((void) 0)
#endif

static int (*try_lock)(pthread_mutex_t *) = pthread_mutex_trylock;

static const char *const names[] = { [LOCK_WAIT_SPIN] = "spin", [LOCK_WAIT_SLEEP] = "sleep" };

bool lock_wait_parse(const char *name, lock_wait_t *out)
{
    for (unsigned p = 0; p < sizeof(names) / sizeof(names[0]); p++) {
        if (strcmp(name, names[p]) == 0) {
            *out = (lock_wait_t) p;
            return true;
        }
    }
    return false;
}

const char *lock_wait_name(lock_wait_t policy)
{
    return names[policy];
}

static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void lock_wait_backoff(unsigned *step, unsigned spins_per_yield)
{
    if (++*step % spins_per_yield == 0) {
        sched_yield();
    } else {
        cpu_pause();
    }
}

/* Same contract and error codes as threading.c's threading_mutex_lock_pthread. A trylock that
 * fails for any reason but EBUSY is a lock failure, as a failed pthread_mutex_lock is. */
static int spin_lock(mbedtls_threading_mutex_t *mutex)
{
    if (mutex == NULL) {
        return MBEDTLS_ERR_THREADING_BAD_INPUT_DATA;
    }
    pthread_mutex_t *m = &mutex->MBEDTLS_PRIVATE(mutex);
    ANNOUNCE_PRE_LOCK(m);
    int rc;
    unsigned step = 0;
    while ((rc = try_lock(m)) == EBUSY) {
        lock_wait_backoff(&step, LOCK_WAIT_SPINS);
    }
    ANNOUNCE_POST_LOCK(m, rc == 0);
    return rc == 0 ? 0 : MBEDTLS_ERR_THREADING_MUTEX_ERROR;
}

bool lock_wait_install(lock_wait_t policy)
{
    if (policy != LOCK_WAIT_SPIN) {
        return true;
    }
#if defined(PSA_STRESS_UNDER_TSAN)
    /* libc's own definition: RTLD_NEXT would find gcc's libtsan.so, loaded before libc */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *libc_try_lock = libc != NULL ? dlsym(libc, "pthread_mutex_trylock") : NULL;
    if (libc_try_lock == NULL) {
        return false;
    }
    try_lock = (int (*)(pthread_mutex_t *)) libc_try_lock;
#endif
    mbedtls_mutex_lock = spin_lock;
    return true;
}
