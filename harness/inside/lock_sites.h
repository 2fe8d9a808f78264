/* psa-stress: the places that take the key-slot mutex, named by the function that takes it
 * (the hand-offs' critical sections, handoffs.h).
 *
 * A site is the return address of the lock call, as the lock wrapper sees it; each new one gets
 * the next index. Names are resolved once, after the run: addr2line (binutils, which the
 * build's compiler comes with) places the call in the source from the executable's debug
 * information, and the name is that of the function whose body holds that line in the source
 * file (read again for it). The line is what the compiler keeps best: a core function it
 * inlined (psa_finish_key_creation into psa_generate_key_custom, say) keeps its own name even
 * where the debug information lost the inlined frame. Without the source file, the name is
 * addr2line's innermost function; without addr2line, or for an address it cannot place, the
 * site's offset in the executable, "0x...".
 *
 * Invariant: the table is read and written only by the holder of the key-slot mutex until every
 * worker joined (lock_sites_name runs after). */
#ifndef PSA_STRESS_LOCK_SITES_H
#define PSA_STRESS_LOCK_SITES_H

#define LOCK_SITES 63               /* distinct sites named; more share LOCK_SITE_OTHER */
#define LOCK_SITE_OTHER LOCK_SITES  /* named "other" */

/* The index of site `pc` (key-slot mutex held). */
unsigned lock_sites_index(const void *pc);

/* After the run: the name of site `index` (resolved for every site at the first call). */
const char *lock_sites_name(unsigned index);

#endif /* PSA_STRESS_LOCK_SITES_H */
