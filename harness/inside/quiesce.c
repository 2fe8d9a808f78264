/* psa-stress: quiescent barriers (see quiesce.h). */
#include "inside/quiesce.h"

#include "nemesis/nemesis.h"

bool quiesce_init(quiesce_t *q, unsigned members, quiesce_check_t check)
{
    q->members = members;
    q->arrived = 0;
    q->generation = 0;
    q->check = check;
    q->failed = false;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        return false;
    }
    if (pthread_cond_init(&q->released, NULL) != 0) {
        pthread_mutex_destroy(&q->lock);
        return false;
    }
    return true;
}

void quiesce_destroy(quiesce_t *q)
{
    pthread_cond_destroy(&q->released);
    pthread_mutex_destroy(&q->lock);
}

/* All members are at the barrier: nothing is in flight. q->lock held. */
static void release(quiesce_t *q, void *member)
{
    if (!q->check(member)) {
        q->failed = true;
    }
    q->arrived = 0;
    q->generation++;
    pthread_cond_broadcast(&q->released);
}

/* q->lock held, released on return. Under serialisation the waiter parks on q (the lock is
 * dropped first: only the baton holder runs, so nobody can slip in between) and retries when
 * the releaser unparks it. */
static void wait_released(quiesce_t *q, uint64_t generation)
{
    while (q->generation == generation) {
        if (nemesis_serialised()) {
            pthread_mutex_unlock(&q->lock);
            nemesis_park(q);
            pthread_mutex_lock(&q->lock);
        } else {
            pthread_cond_wait(&q->released, &q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
}

void quiesce_wait(quiesce_t *q, void *member)
{
    pthread_mutex_lock(&q->lock);
    uint64_t generation = q->generation;
    if (++q->arrived == q->members) {
        release(q, member);
        pthread_mutex_unlock(&q->lock);
        nemesis_unpark(q);
        return;
    }
    wait_released(q, generation);
}

void quiesce_leave(quiesce_t *q, void *member)
{
    pthread_mutex_lock(&q->lock);
    q->members--;
    bool last = q->arrived > 0 && q->arrived == q->members;
    if (last) {
        release(q, member);
    }
    pthread_mutex_unlock(&q->lock);
    if (last) {
        nemesis_unpark(q);
    }
}

uint64_t quiesce_count(quiesce_t *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->generation;
    pthread_mutex_unlock(&q->lock);
    return n;
}

bool quiesce_ok(quiesce_t *q)
{
    pthread_mutex_lock(&q->lock);
    bool ok = !q->failed;
    pthread_mutex_unlock(&q->lock);
    return ok;
}
