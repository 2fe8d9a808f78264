/* psa-stress: untracked stores into the history (see history_untracked.h). Compiled with
 * -fno-sanitize=thread. */
#include "history_untracked.h"

#include <stdint.h>
#include <unistd.h>

_Static_assert(sizeof(record_t) % sizeof(uint64_t) == 0, "records are whole words");

void untracked_record_copy(record_t *dst, const record_t *src)
{
    volatile uint64_t *to = (volatile uint64_t *) dst;
    const uint64_t *from = (const uint64_t *) src;
    for (size_t i = 0; i < sizeof(record_t) / sizeof(uint64_t); i++) {
        to[i] = from[i];
    }
}

void untracked_prefault(void *p, size_t len)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    volatile uint8_t *bytes = p;
    for (size_t at = 0; at < len; at += page) {
        bytes[at] = 0;
    }
}
