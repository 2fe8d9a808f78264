/* psa-stress: the client (Jepsen's "client"): turns generated operations into PSA calls and
 * records each one. The operation table lives in client.c. */
#ifndef PSA_STRESS_CLIENT_H
#define PSA_STRESS_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "generator.h"
#include "history.h"

/* One worker. Everything here is private to that worker until it is joined. */
typedef struct {
    unsigned thread;
    gen_t gen;
    history_log_t log;
    uint64_t done; /* calls made */
} client_t;

/* Once, after psa_crypto_init and before any worker starts: creates the key-store state the
 * operations rely on (the derive secret key). */
psa_status_t client_setup(void);

/* Makes up to `ops_limit` calls, stopping early once *stop is set. Returns false when the
 * history ran out of memory (the calls made so far are recorded). */
bool client_run(client_t *c, uint64_t ops_limit, const atomic_bool *stop);

/* The operation table, by row: its size and names (for --mix), and how records are printed. */
unsigned client_op_count(void);
const char *client_op_name(unsigned op);
extern const history_printer_t client_printer;

#endif /* PSA_STRESS_CLIENT_H */
