/* psa-stress: hiding the harness's own synchronisation from ThreadSanitizer.
 *
 * The harness's bookkeeping (the nemesis baton, its scheduler state, the harness ITS table)
 * must not add happens-before edges between worker threads: TSan would then count every access
 * ordered by the harness as synchronised and miss races in the library. Inside
 * TSAN_HIDE_BEGIN/END the calling thread's sync operations, reads and writes are invisible to
 * TSan (compiler-rt and gcc's libtsan both export these annotations). Begin/End must balance
 * before the thread exits. Without TSan they compile to nothing. The bookkeeping taken on every
 * call (ticket stamps, spec-mode id locks, the history) lives in files compiled without TSan
 * instead (CMakeLists.txt, TSAN_UNTRACKED): each Begin records a stack, too slow per call. */
#ifndef PSA_STRESS_TSAN_HIDE_H
#define PSA_STRESS_TSAN_HIDE_H

#if defined(__SANITIZE_THREAD__)
#define PSA_STRESS_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PSA_STRESS_UNDER_TSAN 1
#endif
#endif

#if defined(PSA_STRESS_UNDER_TSAN)
void AnnotateIgnoreSyncBegin(const char *file, int line);
void AnnotateIgnoreSyncEnd(const char *file, int line);
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define TSAN_HIDE_BEGIN()                            \
    do {                                             \
        AnnotateIgnoreSyncBegin(__FILE__, __LINE__);  \
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__); \
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__); \
    } while (0)
#define TSAN_HIDE_END()                               \
    do {                                              \
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);  \
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);   \
        AnnotateIgnoreSyncEnd(__FILE__, __LINE__);    \
    } while (0)
#else
#define TSAN_HIDE_BEGIN() ((void) 0)
#define TSAN_HIDE_END() ((void) 0)
#endif

/* TSAN_UNTRACKED: a function of the harness's bookkeeping that TSan does not see at all, for
 * functions run at every lock of the core's mutexes (harness/inside/handoffs.h): no access, no
 * atomic, no entry or exit instrumented (clang's no_sanitize("thread") still instruments the
 * last three). It must add no synchronisation TSan would need to see. */
#if defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define TSAN_UNTRACKED __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#if !defined(TSAN_UNTRACKED) && (defined(__clang__) || defined(__GNUC__))
#define TSAN_UNTRACKED __attribute__((no_sanitize_thread))
#endif
#if !defined(TSAN_UNTRACKED)
#define TSAN_UNTRACKED
#endif

#endif /* PSA_STRESS_TSAN_HIDE_H */
