/* psa-stress: the operation table and the worker loop (see client.h).
 *
 * Every PSA call is made through CALL_STAMPED, so each record's [call, ret] interval contains the
 * whole call and nothing that another thread could observe happens outside it. Arguments are
 * built before the first ticket and outputs copied after the second. */
#include "driver/client_ops.h"

#include <assert.h>
#include <string.h>

#include "nemesis/nemesis.h"

/* Derive inputs that are the same for every call; the per-call salt makes each key unique. */
static const uint8_t derive_secret[32] = {
    0x70, 0x73, 0x61, 0x2d, 0x73, 0x74, 0x72, 0x65, 0x73, 0x73, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65,
    0x74, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
};
static const uint8_t derive_info[] = { 'p', 's', 'a', '-', 's', 't', 'r', 'e', 's', 's' };

/* psa_key_derivation_output_key() returns NOT_PERMITTED unless the SECRET came from a key
 * (can_output_key, psa_crypto.c), so derive_secret is imported once, by client_setup(), as a
 * volatile DERIVE key. Written before the workers start and only read afterwards. Its id is
 * never returned to a worker's create, so no generated call can name it. */
static mbedtls_svc_key_id_t derive_secret_key;

psa_status_t client_setup(void)
{
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&a, PSA_KEY_TYPE_DERIVE);
    psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&a, PSA_ALG_HKDF(PSA_ALG_SHA_256));
    return psa_import_key(&a, derive_secret, sizeof(derive_secret), &derive_secret_key);
}

psa_key_id_t client_setup_key(void)
{
    return MBEDTLS_SVC_KEY_ID_GET_KEY_ID(derive_secret_key);
}

static psa_key_attributes_t to_psa_attrs(const record_attrs_t *ra)
{
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
    if (ra->id != 0) {
        psa_set_key_id(&a, ra->id);
    }
    psa_set_key_lifetime(&a, ra->lifetime);
    psa_set_key_type(&a, ra->type);
    psa_set_key_bits(&a, ra->bits);
    psa_set_key_usage_flags(&a, ra->usage);
    psa_set_key_algorithm(&a, ra->alg);
    return a;
}

/* After any create: remember the new key so that other threads' calls can hit it. */
static void finish_create(client_t *c, record_t *r, mbedtls_svc_key_id_t key)
{
    r->out_key = MBEDTLS_SVC_KEY_ID_GET_KEY_ID(key);
    if (r->status == PSA_SUCCESS && r->attrs.lifetime == PSA_KEY_LIFETIME_VOLATILE) {
        gen_publish(&c->gen, r->out_key);
    }
}

/* ---- run functions: build arguments, make the stamped call, record outputs ---- */

static void run_import(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
    gen_create_attrs(&c->gen, &r->attrs);
    r->material_len = (uint8_t) (r->attrs.bits / 8);
    gen_unique_bytes(&c->gen, r->seq, r->material, r->material_len);
    psa_key_attributes_t a = to_psa_attrs(&r->attrs);
    CALL_STAMPED(c, r, psa_import_key(&a, r->material, r->material_len, &key));
    finish_create(c, r, key);
}

static void run_generate(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
    gen_create_attrs(&c->gen, &r->attrs);
    psa_key_attributes_t a = to_psa_attrs(&r->attrs);
    CALL_STAMPED(c, r, psa_generate_key(&a, &key));
    finish_create(c, r, key);
}

/* HKDF-SHA-256 setup, inputs and output_key as one call. Besides output_key, only the SECRET
 * input touches the key store (a read of `secret`: derive_secret_key, which no worker can
 * destroy, or for derive_from a key of the store); a wider stamped interval is sound. Returns
 * the first error. */
static psa_status_t derive_key(const psa_key_attributes_t *a, const uint8_t *salt,
                               mbedtls_svc_key_id_t secret, mbedtls_svc_key_id_t *key)
{
    psa_key_derivation_operation_t op = PSA_KEY_DERIVATION_OPERATION_INIT;
    psa_status_t status = psa_key_derivation_setup(&op, PSA_ALG_HKDF(PSA_ALG_SHA_256));
    if (status == PSA_SUCCESS) {
        status = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_SALT,
                                                salt, RECORD_SALT_LEN);
    }
    if (status == PSA_SUCCESS) {
        status = psa_key_derivation_input_key(&op, PSA_KEY_DERIVATION_INPUT_SECRET, secret);
    }
    if (status == PSA_SUCCESS) {
        status = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_INFO,
                                                derive_info, sizeof(derive_info));
    }
    if (status == PSA_SUCCESS) {
        status = psa_key_derivation_output_key(a, &op, key);
    }
    psa_key_derivation_abort(&op);
    return status;
}

static void run_derive(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
    gen_create_attrs(&c->gen, &r->attrs);
    gen_unique_bytes(&c->gen, r->seq, r->salt, RECORD_SALT_LEN);
    psa_key_attributes_t a = to_psa_attrs(&r->attrs);
    CALL_STAMPED(c, r, derive_key(&a, r->salt, derive_secret_key, &key));
    finish_create(c, r, key);
}

/* Like derive, but the secret is a key of the store (r->key) that other threads may destroy:
 * a read of that key and a create, like copy. */
static void run_derive_from(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
    r->key = gen_key(&c->gen);
    gen_create_attrs(&c->gen, &r->attrs);
    gen_unique_bytes(&c->gen, r->seq, r->salt, RECORD_SALT_LEN);
    psa_key_attributes_t a = to_psa_attrs(&r->attrs);
    CALL_STAMPED(c, r, derive_key(&a, r->salt, r->key, &key));
    finish_create(c, r, key);
}

static void run_copy(client_t *c, record_t *r)
{
    mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
    r->key = gen_key(&c->gen);
    gen_copy_attrs(&c->gen, &r->attrs);
    psa_key_attributes_t a = to_psa_attrs(&r->attrs);
    CALL_STAMPED(c, r, psa_copy_key(r->key, &a, &key));
    finish_create(c, r, key);
}

/* A call whose only argument is gen_key(): destroy, purge, close. */
static void run_on_key(client_t *c, record_t *r, psa_status_t (*call)(mbedtls_svc_key_id_t))
{
    r->key = gen_key(&c->gen);
    CALL_STAMPED(c, r, call(r->key));
}

/* psa_export_key or psa_export_public_key of gen_key() into r->material. */
static void run_export_with(client_t *c, record_t *r,
                            psa_status_t (*call)(mbedtls_svc_key_id_t, uint8_t *, size_t,
                                                 size_t *))
{
    size_t len = 0;
    r->key = gen_key(&c->gen);
    CALL_STAMPED(c, r, call(r->key, r->material, sizeof(r->material), &len));
    r->material_len = (uint8_t) len;
}

static void run_destroy(client_t *c, record_t *r)
{
    run_on_key(c, r, psa_destroy_key);
}

static void run_export(client_t *c, record_t *r)
{
    run_export_with(c, r, psa_export_key);
}

/* Drops a cached persistent key from RAM (no abstract effect); DOES_NOT_EXIST when not cached. */
static void run_purge(client_t *c, record_t *r)
{
    run_on_key(c, r, psa_purge_key);
}

/* The deprecated handle API: a handle is the key id itself in 3.6. */
static void run_open(client_t *c, record_t *r)
{
    psa_key_handle_t handle = PSA_KEY_HANDLE_INIT;
    r->key = gen_key(&c->gen);
    CALL_STAMPED(c, r, psa_open_key(r->key, &handle));
    r->out_key = MBEDTLS_SVC_KEY_ID_GET_KEY_ID(handle);
}

/* Sequentially, closing a volatile key destroys it; closing a persistent one drops its cache. */
static void run_close(client_t *c, record_t *r)
{
    run_on_key(c, r, psa_close_key);
}

static void run_export_public(client_t *c, record_t *r)
{
    run_export_with(c, r, psa_export_public_key);
}

/* --init-race: each worker's first call, racing the others' (a no-op once initialised). */
static void run_init(client_t *c, record_t *r)
{
    CALL_STAMPED(c, r, psa_crypto_init());
}

static void run_get_attributes(client_t *c, record_t *r)
{
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
    r->key = gen_key(&c->gen);
    CALL_STAMPED(c, r, psa_get_key_attributes(r->key, &a));
    r->attrs = (record_attrs_t) {
        .lifetime = psa_get_key_lifetime(&a),
        .id = MBEDTLS_SVC_KEY_ID_GET_KEY_ID(psa_get_key_id(&a)),
        .type = psa_get_key_type(&a),
        .bits = (uint16_t) psa_get_key_bits(&a),
        .usage = psa_get_key_usage_flags(&a),
        .alg = psa_get_key_algorithm(&a),
    };
    psa_reset_key_attributes(&a);
}

/* ---- print functions: the `args` and `out` objects of docs/history-format.md ---- */

static void print_attrs_object(FILE *f, const record_t *r)
{
    fputc('{', f);
    history_print_attrs(f, &r->attrs);
    fputc('}', f);
}

static void print_import_args(FILE *f, const record_t *r)
{
    fputc('{', f);
    history_print_attrs(f, &r->attrs);
    fputs(",\"material\":", f);
    history_print_hex(f, r->material, r->material_len);
    fputc('}', f);
}

/* The end of a derive's args: `,"salt":..,"info":..}`. */
static void print_salt_info(FILE *f, const record_t *r)
{
    fputs(",\"salt\":", f);
    history_print_hex(f, r->salt, RECORD_SALT_LEN);
    fputs(",\"info\":", f);
    history_print_hex(f, derive_info, sizeof(derive_info));
    fputc('}', f);
}

static void print_derive_args(FILE *f, const record_t *r)
{
    fputc('{', f);
    history_print_attrs(f, &r->attrs);
    fputs(",\"kdf\":\"HKDF-SHA256\",\"secret\":", f);
    history_print_hex(f, derive_secret, sizeof(derive_secret));
    print_salt_info(f, r);
}

static void print_derive_from_args(FILE *f, const record_t *r)
{
    fprintf(f, "{\"src\":%u,", (unsigned) r->key);
    history_print_attrs(f, &r->attrs);
    fputs(",\"kdf\":\"HKDF-SHA256\"", f);
    print_salt_info(f, r);
}

static void print_copy_args(FILE *f, const record_t *r)
{
    fprintf(f, "{\"src\":%u,\"lifetime\":%u,\"id\":%u,\"usage\":%u,\"alg\":%u}",
            (unsigned) r->key, (unsigned) r->attrs.lifetime, (unsigned) r->attrs.id,
            (unsigned) r->attrs.usage, (unsigned) r->attrs.alg);
}

void client_print_key_args(FILE *f, const record_t *r)
{
    fprintf(f, "{\"key\":%u}", (unsigned) r->key);
}

static void print_out_key(FILE *f, const record_t *r)
{
    fprintf(f, "{\"key\":%u}", (unsigned) r->out_key);
}

void client_print_out_material(FILE *f, const record_t *r)
{
    fputs("{\"material\":", f);
    history_print_hex(f, r->material, r->material_len);
    fputc('}', f);
}

/* ---- THE OPERATION TABLE ----
 * One row per PSA operation. To add an operation: write its run function (build arguments with
 * the generator into the record, make the call with CALL_STAMPED, copy outputs into the record)
 * and, if no existing one fits, its print functions; then add one row here. Its name becomes
 * valid in --mix and in the history's "op" field. Rows are identified by index in records. */
typedef struct {
    const char *name;
    void (*run)(client_t *c, record_t *r);
    void (*print_args)(FILE *f, const record_t *r);
    void (*print_out)(FILE *f, const record_t *r); /* on SUCCESS; NULL when there is no output */
} op_row_t;

static const op_row_t ops[] = {
    { "import",         run_import,         print_import_args,  print_out_key },
    { "generate",       run_generate,       print_attrs_object, print_out_key },
    { "derive",         run_derive,         print_derive_args,  print_out_key },
    { "copy",           run_copy,           print_copy_args,    print_out_key },
    { "destroy",        run_destroy,        client_print_key_args,     NULL },
    { "export",         run_export,         client_print_key_args,     client_print_out_material },
    { "get_attributes", run_get_attributes, client_print_key_args,     print_attrs_object },
    { "purge",          run_purge,          client_print_key_args,     NULL },
    { "open",           run_open,           client_print_key_args,     print_out_key },
    { "close",          run_close,          client_print_key_args,     NULL },
    { "export_public",  run_export_public,  client_print_key_args,     client_print_out_material },
    { "derive_from",    run_derive_from,    print_derive_from_args, print_out_key },
    { "sign",           client_run_sign,           client_print_use_args,     client_print_out_material },
    { "verify",         client_run_verify,         client_print_verify_args,  NULL },
    { "cipher_encrypt", client_run_cipher_encrypt, client_print_use_args,     client_print_out_material },
    { "cipher_decrypt", client_run_cipher_decrypt, client_print_use_args,     client_print_out_material },
    { "mac",            client_run_mac,            client_print_use_args,     client_print_out_material },
    { "aead_encrypt",   client_run_aead_encrypt,   client_print_aead_args,    client_print_out_material },
    { "aead_decrypt",   client_run_aead_decrypt,   client_print_aead_args,    client_print_out_material },
    { "mac_multipart",  client_run_mac_multipart,  client_print_multipart_args, client_print_out_material },
    { "random",         client_run_random,         client_print_no_args,      NULL },
    { "reseed",         client_run_reseed,         client_print_no_args,      NULL },
    { "deplete",        client_run_deplete,        client_print_no_args,      NULL },
    { "init",           run_init,           client_print_no_args,      NULL },
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))
static_assert(N_OPS <= GEN_MAX_OPS, "the generator's mix holds at most GEN_MAX_OPS operations");

unsigned client_op_count(void)
{
    return N_OPS;
}

const char *client_op_name(unsigned op)
{
    return ops[op].name;
}

unsigned client_op_row(const char *name)
{
    unsigned op = 0;
    while (op < N_OPS && strcmp(ops[op].name, name) != 0) {
        op++;
    }
    return op;
}

static void print_body(FILE *f, const record_t *r)
{
    fputs(",\"args\":", f);
    ops[r->op].print_args(f, r);
    if (r->status == PSA_SUCCESS && ops[r->op].print_out != NULL) {
        fputs(",\"out\":", f);
        ops[r->op].print_out(f, r);
    }
}

/* The binary header's "constants": derive and key-use inputs that records do not carry. */
static void print_constants(FILE *f)
{
    fputs("{\"derive_secret\":", f);
    history_print_hex(f, derive_secret, sizeof(derive_secret));
    fputs(",\"derive_info\":", f);
    history_print_hex(f, derive_info, sizeof(derive_info));
    fputs(",\"derive_from_info\":", f);
    history_print_hex(f, derive_info, sizeof(derive_info));
    client_print_use_constants(f);
    fputc('}', f);
}

const history_printer_t client_printer = { client_op_name, print_body, client_op_count,
                                           print_constants };

/* The thread's next record, numbered and labelled with row `op`; NULL when out of memory. */
static record_t *begin_record(client_t *c, unsigned op)
{
    record_t *r = history_next(&c->log);
    if (r != NULL) {
        r->thread = (uint16_t) c->thread;
        r->seq = (uint32_t) c->done;
        r->op = (uint8_t) op;
    }
    return r;
}

static void end_record(client_t *c)
{
    history_publish(&c->log);
    c->done++;
}

bool client_call(client_t *c, unsigned op)
{
    record_t *r = begin_record(c, op);
    if (r == NULL) {
        return false;
    }
    ops[op].run(c, r);
    end_record(c);
    return true;
}

bool client_destroy_key(client_t *c, psa_key_id_t key)
{
    record_t *r = begin_record(c, client_op_row("destroy"));
    if (r == NULL) {
        return false;
    }
    r->key = key;
    CALL_STAMPED(c, r, psa_destroy_key(key));
    end_record(c);
    return true;
}

bool client_run(client_t *c, uint64_t ops_limit, const atomic_bool *stop)
{
    for (uint64_t n = 0; n < ops_limit; n++) {
        if (nemesis_op_boundary(stop)) { /* a scheduling point; true: stop now */
            break;
        }
        if (!client_call(c, gen_op(&c->gen))) {
            return false;
        }
    }
    return true;
}
