/* psa-stress: the client (Jepsen's "client"): turns generated operations into PSA calls and
 * records each one. The operation table lives in client.c. */
#ifndef PSA_STRESS_CLIENT_H
#define PSA_STRESS_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver/generator.h"
#include "history/history.h"

/* One worker. Everything here is private to that worker until it is joined. */
typedef struct {
    unsigned thread;
    gen_t gen;
    history_log_t log;
    uint64_t done; /* calls made */
    /* The thread's last successful signature and AEAD ciphertext, with the key ids that made
     * them: verify and aead_decrypt feed them back, so that they can succeed. */
    uint32_t sig_key, aead_key;
    uint8_t sig[64], aead[32];
} client_t;

/* Once, after psa_crypto_init and before any worker starts: creates the key-store state the
 * operations rely on (the derive secret key). */
psa_status_t client_setup(void);

/* The id of the harness's own key made by client_setup (no generated call names it). */
psa_key_id_t client_setup_key(void);

/* Makes up to `ops_limit` calls, stopping early once *stop is set. Calls are numbered by
 * c->done, so a worker may call this repeatedly. Returns false when the history ran out of
 * memory (the calls made so far are recorded). */
bool client_run(client_t *c, uint64_t ops_limit, const atomic_bool *stop);

/* Makes one call of operation-table row `op`; false when the history ran out of memory. */
bool client_call(client_t *c, unsigned op);

/* Destroys `key` as a recorded destroy call of this worker (not a generated one): the
 * clean-up of the last worker at a --reinit-every barrier. False when the history ran out of
 * memory. */
bool client_destroy_key(client_t *c, psa_key_id_t key);

/* The operation table, by row: its size and names (for --mix), and how records are printed. */
unsigned client_op_count(void);
const char *client_op_name(unsigned op);
/* The row named `name`, or client_op_count() when there is none. */
unsigned client_op_row(const char *name);
extern const history_printer_t client_printer;

#endif /* PSA_STRESS_CLIENT_H */
