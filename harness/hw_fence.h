/* psa-stress: a full memory barrier that ThreadSanitizer does not see.
 *
 * The harness's bookkeeping atomics (ticket stamps, spec-mode stripes) must order real time
 * without adding happens-before edges for TSan (see tsan_hide.h for why). They are relaxed
 * atomics, which TSan tracks as atomic accesses but never as synchronisation, with this barrier
 * around them for the hardware and the compiler. It is inline assembly because TSan could one
 * day model atomic_thread_fence (today it does not) and then see the edges this must hide. */
#ifndef PSA_STRESS_HW_FENCE_H
#define PSA_STRESS_HW_FENCE_H

#include <stdatomic.h>

static inline void hw_fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* x86 is TSO, and a locked RMW is a full barrier: for the uses here (around RMWs, and
     * before a store that publishes earlier stores) only the compiler needs telling. */
    __asm__ __volatile__("" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("dmb ish" ::: "memory");
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

#endif /* PSA_STRESS_HW_FENCE_H */
