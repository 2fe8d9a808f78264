/* psa-stress: the key-use rows of the operation table (see client_ops.h), and the random
 * generator rows.
 *
 * A key use names a key from gen_key() and feeds it fixed data (printed into the history), so
 * the checker can recompute every output from the material the model holds for that key:
 * deterministic ECDSA, AES-ECB, AES-GCM with a fixed nonce, HMAC. verify and aead_decrypt feed
 * back the thread's own last signature / ciphertext on the key id that made it, so they can
 * succeed (same instance) or fail with INVALID_SIGNATURE (the id now names another key). */
#include "driver/client_ops.h"
#include "nemesis/nemesis.h"

#include <sched.h>
#include <string.h>

#include <mbedtls/build_info.h>

#define ALG_ECDSA PSA_ALG_DETERMINISTIC_ECDSA(PSA_ALG_SHA_256)
#define ALG_HMAC PSA_ALG_HMAC(PSA_ALG_SHA_256)
/* HMAC updates of a multi-part MAC: enough calls to open a window for a concurrent destroy. */
#define MULTIPART_UPDATES 8

enum { STAGE_SETUP = 1, STAGE_UPDATE, STAGE_FINISH };

/* The fixed data inputs. Each string literal's terminating NUL is not part of the data. */
static const uint8_t use_hash[] = "psa-stress: the SHA-256 to sign.";
static const uint8_t use_block[] = "psa-stress block";
static const uint8_t use_message[] =
    "psa-stress: the message to MAC, fed 1 or MULTIPART_UPDATES times";
static const uint8_t use_nonce[] = "psa-stress n";
#define HASH_LEN (sizeof(use_hash) - 1)
#define BLOCK_LEN (sizeof(use_block) - 1)
#define MESSAGE_LEN (sizeof(use_message) - 1)
#define NONCE_LEN (sizeof(use_nonce) - 1)
_Static_assert(HASH_LEN == 32 && BLOCK_LEN == 16 && NONCE_LEN == 12, "fixed input sizes");
_Static_assert(MESSAGE_LEN == 64, "fixed input sizes");

/* Records the use's key, algorithm and data input; returns the key. */
static mbedtls_svc_key_id_t use_begin(client_t *c, record_t *r, psa_algorithm_t alg,
                                      const uint8_t *input, size_t input_len)
{
    r->key = gen_key(&c->gen);
    r->attrs.alg = alg;
    r->input_len = (uint8_t) input_len;
    memcpy(r->input, input, input_len);
    return r->key;
}

/* The shape shared by psa_sign_hash, psa_cipher_encrypt/decrypt and psa_mac_compute. */
typedef psa_status_t (*one_shot_t)(mbedtls_svc_key_id_t key, psa_algorithm_t alg,
                                   const uint8_t *input, size_t input_length, uint8_t *output,
                                   size_t output_size, size_t *output_length);

/* One stamped one-shot use of gen_key() on `input`; the output goes to r->material. */
static void run_one_shot(client_t *c, record_t *r, one_shot_t call, psa_algorithm_t alg,
                         const uint8_t *input, size_t input_len, size_t output_size)
{
    size_t len = 0;
    mbedtls_svc_key_id_t key = use_begin(c, r, alg, input, input_len);
    CALL_STAMPED(c, r, call(key, alg, input, input_len, r->material, output_size, &len));
    r->material_len = (uint8_t) len;
}

void client_run_sign(client_t *c, record_t *r)
{
    run_one_shot(c, r, psa_sign_hash, ALG_ECDSA, use_hash, HASH_LEN, sizeof(c->sig));
    if (r->status == PSA_SUCCESS && r->material_len == sizeof(c->sig)) {
        c->sig_key = r->key;
        memcpy(c->sig, r->material, sizeof(c->sig));
    }
}

/* The signature is the thread's last one, on the key that made it. */
void client_run_verify(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = use_begin(c, r, ALG_ECDSA, c->sig, sizeof(c->sig));
    if (c->sig_key != 0) {
        r->key = key = c->sig_key;
    }
    CALL_STAMPED(c, r, psa_verify_hash(key, ALG_ECDSA, use_hash, HASH_LEN, c->sig,
                                       sizeof(c->sig)));
}

void client_run_cipher_encrypt(client_t *c, record_t *r)
{
    run_one_shot(c, r, psa_cipher_encrypt, PSA_ALG_ECB_NO_PADDING, use_block, BLOCK_LEN,
                 BLOCK_LEN);
}

/* Decrypts use_block: the checker verifies that encrypting the output gives use_block back. */
void client_run_cipher_decrypt(client_t *c, record_t *r)
{
    run_one_shot(c, r, psa_cipher_decrypt, PSA_ALG_ECB_NO_PADDING, use_block, BLOCK_LEN,
                 BLOCK_LEN);
}

void client_run_mac(client_t *c, record_t *r)
{
    run_one_shot(c, r, psa_mac_compute, ALG_HMAC, use_message, MESSAGE_LEN,
                 PSA_HASH_LENGTH(PSA_ALG_SHA_256));
}

void client_run_aead_encrypt(client_t *c, record_t *r)
{
    size_t len = 0;
    mbedtls_svc_key_id_t key = use_begin(c, r, PSA_ALG_GCM, use_block, BLOCK_LEN);
    CALL_STAMPED(c, r, psa_aead_encrypt(key, PSA_ALG_GCM, use_nonce, NONCE_LEN, NULL, 0,
                                        use_block, BLOCK_LEN, r->material,
                                        sizeof(c->aead), &len));
    r->material_len = (uint8_t) len;
    if (r->status == PSA_SUCCESS && len == sizeof(c->aead)) {
        c->aead_key = r->key;
        memcpy(c->aead, r->material, sizeof(c->aead));
    }
}

/* The ciphertext and tag are the thread's last ones. */
void client_run_aead_decrypt(client_t *c, record_t *r)
{
    size_t len = 0;
    mbedtls_svc_key_id_t key = use_begin(c, r, PSA_ALG_GCM, c->aead, sizeof(c->aead));
    if (c->aead_key != 0) {
        r->key = key = c->aead_key;
    }
    CALL_STAMPED(c, r, psa_aead_decrypt(key, PSA_ALG_GCM, use_nonce, NONCE_LEN, NULL, 0,
                                        c->aead, sizeof(c->aead), r->material,
                                        BLOCK_LEN, &len));
    r->material_len = (uint8_t) len;
}

/* Before each update of a multi-part MAC: a scheduling point of the serialised and delay
 * engines (no mutex held), else a yield to the OS scheduler, so a concurrent destroy can land
 * between the setup and the finish under every engine. */
static void multipart_point(void)
{
    nemesis_step(); /* serialised: another thread may be picked; delay: a seeded pause */
    if (!nemesis_serialised()) {
        sched_yield();
    }
}

/* HMAC setup (the only step that touches the key store: it copies the key into the operation),
 * a ticket, MULTIPART_UPDATES updates each after a scheduling point, finish. A destroy that
 * lands after the setup must not change the result. Returns the first error; r->stage says
 * where. */
static psa_status_t mac_multipart(client_t *c, record_t *r, mbedtls_svc_key_id_t key,
                                  size_t *len)
{
    psa_mac_operation_t op = PSA_MAC_OPERATION_INIT;
    r->stage = STAGE_SETUP;
    psa_status_t status = psa_mac_sign_setup(&op, key, ALG_HMAC);
    r->mid = history_stamp(&c->log);
    for (int i = 0; status == PSA_SUCCESS && i < MULTIPART_UPDATES; i++) {
        r->stage = STAGE_UPDATE;
        multipart_point();
        status = psa_mac_update(&op, use_message, MESSAGE_LEN);
    }
    if (status == PSA_SUCCESS) {
        r->stage = STAGE_FINISH;
        status = psa_mac_sign_finish(&op, r->material, PSA_HASH_LENGTH(PSA_ALG_SHA_256), len);
    }
    psa_mac_abort(&op);
    return status;
}

void client_run_mac_multipart(client_t *c, record_t *r)
{
    size_t len = 0;
    mbedtls_svc_key_id_t key = use_begin(c, r, ALG_HMAC, use_message, MESSAGE_LEN);
    CALL_STAMPED(c, r, mac_multipart(c, r, key, &len));
    r->material_len = (uint8_t) len;
}

/* ---- the random generator ---- */

void client_run_random(client_t *c, record_t *r)
{
    CALL_STAMPED(c, r, psa_generate_random(r->material, 32));
}

/* psa_random_reseed and psa_random_deplete appeared in 3.6.6: CMake probes the tree for each
 * (PSA_STRESS_HAVE_RANDOM_*); a tree without one records NOT_SUPPORTED, and the session skips
 * the scenarios that call it (the driver's --describe says which operations it has). */
#if PSA_STRESS_HAVE_RANDOM_RESEED
#define RANDOM_RESEED() psa_random_reseed(NULL, 0)
#else
#define RANDOM_RESEED() PSA_ERROR_NOT_SUPPORTED
#endif
#if PSA_STRESS_HAVE_RANDOM_DEPLETE
#define RANDOM_DEPLETE() psa_random_deplete()
#else
#define RANDOM_DEPLETE() PSA_ERROR_NOT_SUPPORTED
#endif

void client_run_reseed(client_t *c, record_t *r)
{
    CALL_STAMPED(c, r, RANDOM_RESEED());
}

void client_run_deplete(client_t *c, record_t *r)
{
    CALL_STAMPED(c, r, RANDOM_DEPLETE());
}

/* ---- print functions ---- */

void client_print_use_args(FILE *f, const record_t *r)
{
    fprintf(f, "{\"key\":%u,\"alg\":%u,\"input\":", (unsigned) r->key, (unsigned) r->attrs.alg);
    history_print_hex(f, r->input, r->input_len);
    fputc('}', f);
}

/* client_print_use_args with one more fixed input, `name`. */
static void print_use_args_with(FILE *f, const record_t *r, const char *name,
                                const uint8_t *bytes, size_t len)
{
    fprintf(f, "{\"key\":%u,\"alg\":%u,\"%s\":", (unsigned) r->key, (unsigned) r->attrs.alg,
            name);
    history_print_hex(f, bytes, len);
    fputs(",\"input\":", f);
    history_print_hex(f, r->input, r->input_len);
    fputc('}', f);
}

void client_print_verify_args(FILE *f, const record_t *r)
{
    print_use_args_with(f, r, "hash", use_hash, HASH_LEN);
}

void client_print_aead_args(FILE *f, const record_t *r)
{
    print_use_args_with(f, r, "nonce", use_nonce, NONCE_LEN);
}

/* The whole message the updates feed, MULTIPART_UPDATES times use_message. */
static void print_multipart_message(FILE *f)
{
    uint8_t message[MULTIPART_UPDATES * MESSAGE_LEN];
    for (int i = 0; i < MULTIPART_UPDATES; i++) {
        memcpy(message + i * MESSAGE_LEN, use_message, MESSAGE_LEN);
    }
    history_print_hex(f, message, sizeof(message));
}

void client_print_multipart_args(FILE *f, const record_t *r)
{
    fprintf(f, "{\"key\":%u,\"alg\":%u,\"mid\":%llu,\"stage\":%u,\"message\":",
            (unsigned) r->key, (unsigned) r->attrs.alg, (unsigned long long) r->mid,
            (unsigned) r->stage);
    print_multipart_message(f);
    fputc('}', f);
}

void client_print_use_constants(FILE *f)
{
    fputs(",\"hash\":", f);
    history_print_hex(f, use_hash, HASH_LEN);
    fputs(",\"nonce\":", f);
    history_print_hex(f, use_nonce, NONCE_LEN);
    fputs(",\"message\":", f);
    print_multipart_message(f);
}

void client_print_no_args(FILE *f, const record_t *r)
{
    (void) r;
    fputs("{}", f);
}
