/* psa-stress: what the rows of the operation table (client.c) share: the stamped-call macro,
 * the run and print functions of the key-use rows (client_use.c), and the printers they reuse.
 * Internal to the client; main.c sees only client.h. */
#ifndef PSA_STRESS_CLIENT_OPS_H
#define PSA_STRESS_CLIENT_OPS_H

#include <stdio.h>

#include "driver/client.h"
#include "inside/handoffs.h"
#include "driver/id_locks.h"

/* The only way a PSA call is made: between the two tickets (docs/history-format.md), inside the
 * spec-mode id locks (id_locks.h) when they are on, with the record as it stands before the call
 * published into the history (a crash leaves the call in flight there, pending), and named as
 * the call in flight, with the key ids it names, for the coverage (inside/handoffs.h). */
#define CALL_STAMPED(c, r, psa_call)              \
    do {                                          \
        id_locks_hold_t hold_ = id_locks_enter(r);        \
        (r)->call = history_stamp(&(c)->log);     \
        history_publish(&(c)->log);               \
        handoffs_call_begin((r)->op, (r)->key, (r)->attrs.id); \
        (r)->status = (psa_call);                 \
        handoffs_call_end();                      \
        (r)->ret = history_stamp(&(c)->log);      \
        id_locks_exit(hold_);                         \
    } while (0)

/* ---- key use (client_use.c): a one-shot call, or a multi-part operation, on gen_key() ---- */
void client_run_sign(client_t *c, record_t *r);
void client_run_verify(client_t *c, record_t *r);
void client_run_cipher_encrypt(client_t *c, record_t *r);
void client_run_cipher_decrypt(client_t *c, record_t *r);
void client_run_mac(client_t *c, record_t *r);
void client_run_aead_encrypt(client_t *c, record_t *r);
void client_run_aead_decrypt(client_t *c, record_t *r);
void client_run_mac_multipart(client_t *c, record_t *r);
/* ---- the random generator (no key): generate, reseed, deplete ---- */
void client_run_random(client_t *c, record_t *r);
void client_run_reseed(client_t *c, record_t *r);
void client_run_deplete(client_t *c, record_t *r);

/* {"key":K,"alg":A,"input":hex}: every key use. */
void client_print_use_args(FILE *f, const record_t *r);
/* client_print_use_args plus the hash (the input is the signature). */
void client_print_verify_args(FILE *f, const record_t *r);
/* client_print_use_args plus the AEAD nonce. */
void client_print_aead_args(FILE *f, const record_t *r);
/* client_print_use_args plus the update count, the setup's return ticket and the last step. */
void client_print_multipart_args(FILE *f, const record_t *r);
/* {} */
void client_print_no_args(FILE *f, const record_t *r);
/* `,"hash":..,"nonce":..,"message":..`: the fixed key-use inputs, for the binary header. */
void client_print_use_constants(FILE *f);

/* Shared with client.c: {"key":K} and {"material":hex}. */
void client_print_key_args(FILE *f, const record_t *r);
void client_print_out_material(FILE *f, const record_t *r);

#endif /* PSA_STRESS_CLIENT_OPS_H */
