/* psa-stress: pinner threads (--pinners N): they hold the key cache full of pinned keys.
 *
 * A pinner loops: it looks up the persistent ids 1..P, from a rotating start, with the core's
 * own lookup (psa_get_and_lock_key_slot, which loads a key that is not cached, evicting an
 * unpinned one) and keeps each slot it gets registered as read, until a lookup finds no slot to
 * use (INSUFFICIENT_MEMORY: every slot is pinned) or every id was tried; it holds them for a
 * number of scheduling points, like a slow call still using its keys, then releases them all.
 * Meanwhile the workers' lookups of keys that are not cached find nothing to evict.
 *
 * Pinners make no recorded call: a lookup changes no key, so the history (and the checker's
 * model) needs none of them, exactly as a slow call's hold on its key is not an event. Their
 * own statuses are checked here: a lookup returns SUCCESS, INVALID_HANDLE (the id was never
 * created) or INSUFFICIENT_MEMORY, a release SUCCESS; anything else fails the run. A
 * destroy of a pinned key would overlap that hold, which spec mode forbids (id_locks.h): scenarios
 * with pinners leave destroy out of their mix. Pinners are nemesis participants after the
 * workers, so the serialised engines schedule them like any thread. They stop when the run's
 * stop flag is set or when no worker is running any more, releasing everything first. */
#ifndef PSA_STRESS_PINNER_H
#define PSA_STRESS_PINNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PINNERS_MAX 64

typedef struct {
    unsigned count;              /* pinner threads */
    unsigned first_participant;  /* nemesis ids first_participant .. + count - 1 */
    unsigned persistent_ids;     /* ids 1..persistent_ids are pinned */
    uint64_t seed;
    const atomic_bool *stop;     /* the run's deadline */
    const atomic_uint *running;  /* workers that have not finished */
} pinner_config_t;

/* Starts the pinners (none when count is 0); false if a thread could not be started. */
bool pinners_start(const pinner_config_t *cfg);
/* After the workers joined: waits for the pinners, which release every slot they hold. False
 * when a pinner's lookup or release returned a status that neither may return (printed on
 * stderr as "invariant violated: ...": the run fails as on a broken invariant). */
bool pinners_join(void);

#endif /* PSA_STRESS_PINNER_H */
