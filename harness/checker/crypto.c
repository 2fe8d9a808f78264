/* psa-stress checker core: the cryptography of the model's rules (crypto.h), from OpenSSL's
 * libcrypto. One context per thread, made on first use and freed by crypto_end: the handles it
 * holds are reused call after call. Callers are single-threaded per context; no locks. */
#include "crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    EVP_KDF_CTX *hkdf;
    EVP_MAC_CTX *hmac;
    EVP_CIPHER *ecb, *gcm;
    EVP_CIPHER_CTX *cipher;
    EC_GROUP *group;
    BN_CTX *bn;
    const BIGNUM *n;
    BIGNUM *p;
} crypto_t;

static __thread crypto_t *current;

void crypto_end(void)
{
    crypto_t *c = current;
    current = NULL;
    if (c == NULL)
        return;
    EVP_KDF_CTX_free(c->hkdf);
    EVP_MAC_CTX_free(c->hmac);
    EVP_CIPHER_free(c->ecb);
    EVP_CIPHER_free(c->gcm);
    EVP_CIPHER_CTX_free(c->cipher);
    EC_GROUP_free(c->group);
    BN_CTX_free(c->bn);
    BN_free(c->p);
    free(c);
}

static crypto_t *ctx(void)
{
    if (current != NULL)
        return current;
    crypto_t *c = current = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    c->hkdf = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    c->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_KDF_free(kdf);
    EVP_MAC_free(mac);
    c->ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    c->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    c->cipher = EVP_CIPHER_CTX_new();
    c->group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    c->bn = BN_CTX_new();
    c->p = BN_new();
    char sha256[] = "SHA256";
    OSSL_PARAM digest[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
                            OSSL_PARAM_construct_end() };
    if (!c->hkdf || !c->hmac || !c->ecb || !c->gcm || !c->cipher || !c->group || !c->bn
        || !c->p || !EVP_MAC_CTX_set_params(c->hmac, digest)
        || !EC_GROUP_get_curve(c->group, c->p, NULL, NULL, c->bn)) {
        crypto_end();
        return NULL;
    }
    c->n = EC_GROUP_get0_order(c->group);
    return c;
}

int crypto_begin(void)
{
    return ctx() != NULL;
}

/* A libcrypto failure: clear its error queue (it would grow call after call). */
static int failed(int value)
{
    ERR_clear_error();
    return value;
}

int hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *secret, size_t secretlen,
                const uint8_t *info, size_t infolen, uint8_t *out, size_t len)
{
    crypto_t *c = ctx();
    if (c == NULL || len == 0 || len > HKDF_MAX_LEN)
        return 0;
    static const uint8_t none[1];    /* an empty salt, secret or info is still a parameter */
    char sha256[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha256, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(secretlen ? secret : none),
                                          secretlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(saltlen ? salt : none),
                                          saltlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(infolen ? info : none),
                                          infolen),
        OSSL_PARAM_construct_end() };
    EVP_KDF_CTX_reset(c->hkdf);       /* no parameter of the previous derivation stays */
    return EVP_KDF_derive(c->hkdf, out, len, params) > 0 ? 1 : failed(0);
}

int hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                uint8_t out[SHA256_LEN])
{
    crypto_t *c = ctx();
    static const uint8_t none[1];
    size_t outlen = 0;
    if (c == NULL || !EVP_MAC_init(c->hmac, keylen ? key : none, keylen, NULL)
        || !EVP_MAC_update(c->hmac, data, len)
        || !EVP_MAC_final(c->hmac, out, &outlen, SHA256_LEN) || outlen != SHA256_LEN)
        return failed(0);
    return 1;
}

int aes128_block(const uint8_t key[16], const uint8_t in[AES_BLOCK], uint8_t out[AES_BLOCK],
                 int decrypt)
{
    crypto_t *c = ctx();
    int outlen = 0;
    if (c == NULL || !EVP_CipherInit_ex2(c->cipher, c->ecb, key, NULL, !decrypt, NULL)
        || !EVP_CIPHER_CTX_set_padding(c->cipher, 0)
        || !EVP_CipherUpdate(c->cipher, out, &outlen, in, AES_BLOCK) || outlen != AES_BLOCK)
        return failed(0);
    return 1;
}

int gcm_seal(const uint8_t key[16], const uint8_t nonce[GCM_NONCE], const uint8_t *in,
             size_t len, uint8_t *out)
{
    crypto_t *c = ctx();
    int n = 0, last = 0;
    if (c == NULL || len > 1u << 20 || !EVP_EncryptInit_ex2(c->cipher, c->gcm, key, nonce, NULL)
        || !EVP_EncryptUpdate(c->cipher, out, &n, in, (int)len)
        || !EVP_EncryptFinal_ex(c->cipher, out + n, &last)
        || !EVP_CIPHER_CTX_ctrl(c->cipher, EVP_CTRL_GCM_GET_TAG, GCM_TAG, out + len))
        return failed(0);
    return 1;
}

int gcm_open(const uint8_t key[16], const uint8_t nonce[GCM_NONCE], const uint8_t *in,
             size_t len, uint8_t *out)
{
    crypto_t *c = ctx();
    int n = 0, last = 0;
    uint8_t tag[GCM_TAG];
    if (len < GCM_TAG)
        return 0;
    memcpy(tag, in + len - GCM_TAG, GCM_TAG);
    if (c == NULL || len > 1u << 20 || !EVP_DecryptInit_ex2(c->cipher, c->gcm, key, nonce, NULL)
        || !EVP_DecryptUpdate(c->cipher, out, &n, in, (int)(len - GCM_TAG))
        || !EVP_CIPHER_CTX_ctrl(c->cipher, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag))
        return failed(-1);
    return EVP_DecryptFinal_ex(c->cipher, out + n, &last) > 0 ? 1 : failed(0);
}

/* ---- ECDSA P-256 ------------------------------------------------------------------------ */

/* x in (0, n)? */
static int in_range(const crypto_t *c, const BIGNUM *x)
{
    return !BN_is_zero(x) && !BN_is_negative(x) && BN_cmp(x, c->n) < 0;
}

static int encode(crypto_t *c, const EC_POINT *point, uint8_t out[P256_PUBLIC_LEN])
{
    return EC_POINT_point2oct(c->group, point, POINT_CONVERSION_UNCOMPRESSED, out,
                              P256_PUBLIC_LEN, c->bn) == P256_PUBLIC_LEN;
}

int p256_public(const uint8_t scalar[32], uint8_t out[P256_PUBLIC_LEN])
{
    crypto_t *c = ctx();
    if (c == NULL)
        return -1;
    BN_CTX_start(c->bn);
    BIGNUM *d = BN_CTX_get(c->bn);
    EC_POINT *q = EC_POINT_new(c->group);
    int ok = d && q && BN_bin2bn(scalar, 32, d) ? in_range(c, d) : -1;
    if (ok == 1 && (!EC_POINT_mul(c->group, q, d, NULL, NULL, c->bn) || !encode(c, q, out)))
        ok = -1;
    EC_POINT_free(q);
    BN_CTX_end(c->bn);
    return ok < 0 ? failed(-1) : ok;
}

/* psa_generate_derived_ecc_key_weierstrass_helper (library/psa_crypto.c): k is the stream's
 * next ceil(m/8) bytes, big-endian (P-256's order n has m = 256 bits: no bit to clear), drawn
 * again while k > n - 2; the key is k + 1, i.e. the first k + 1 below n. */
int p256_derived_private_key(const uint8_t *salt, size_t saltlen, const uint8_t *secret,
                             size_t secretlen, const uint8_t *info, size_t infolen,
                             uint8_t out[P256_SCALAR_LEN])
{
    crypto_t *c = ctx();
    if (c == NULL)
        return -1;
    uint8_t stream[HKDF_MAX_LEN];
    int found = 0;
    BN_CTX_start(c->bn);
    BIGNUM *k = BN_CTX_get(c->bn);
    for (size_t end = P256_SCALAR_LEN; found == 0 && end <= HKDF_MAX_LEN;
         end += P256_SCALAR_LEN) {
        if (k == NULL || !hkdf_sha256(salt, saltlen, secret, secretlen, info, infolen, stream, end)
            || !BN_bin2bn(stream + end - P256_SCALAR_LEN, P256_SCALAR_LEN, k)
            || !BN_add_word(k, 1))
            found = -1;
        else if (BN_cmp(k, c->n) < 0)
            found = BN_bn2binpad(k, out, P256_SCALAR_LEN) == P256_SCALAR_LEN ? 1 : -1;
    }
    BN_CTX_end(c->bn);
    return found < 0 ? failed(-1) : found;
}

/* u1 * G + u2 * Q: its x coordinate mod n equals r (p256.verify's last step)? */
static int x_is_r(crypto_t *c, const BIGNUM *u1, const EC_POINT *q, const BIGNUM *u2,
                  const BIGNUM *r)
{
    EC_POINT *x_point = EC_POINT_new(c->group);
    BIGNUM *x = BN_CTX_get(c->bn);
    int ok = x_point && x && EC_POINT_mul(c->group, x_point, u1, q, u2, c->bn) ? 1 : -1;
    if (ok == 1 && EC_POINT_is_at_infinity(c->group, x_point))
        ok = 0;
    else if (ok == 1)
        ok = EC_POINT_get_affine_coordinates(c->group, x_point, x, NULL, c->bn)
             && BN_nnmod(x, x, c->n, c->bn) ? BN_cmp(x, r) == 0 : -1;
    EC_POINT_free(x_point);
    return ok;
}

int p256_verify(const uint8_t public[P256_PUBLIC_LEN], const uint8_t *digest,
                const uint8_t sig[P256_SIG_LEN])
{
    crypto_t *c = ctx();
    if (c == NULL)
        return -1;
    if (public[0] != 4)
        return 0;
    BN_CTX_start(c->bn);
    BIGNUM *r = BN_CTX_get(c->bn), *s = BN_CTX_get(c->bn), *e = BN_CTX_get(c->bn);
    BIGNUM *w = BN_CTX_get(c->bn);
    EC_POINT *q = EC_POINT_new(c->group);
    int ok = -1;
    if (q && w && BN_bin2bn(sig, 32, r) && BN_bin2bn(sig + 32, 32, s) && BN_bin2bn(digest, 32, e)) {
        if (!EC_POINT_oct2point(c->group, q, public, P256_PUBLIC_LEN, c->bn)
            || !in_range(c, r) || !in_range(c, s))
            ok = 0;               /* not on the curve, or r, s out of range */
        else if (BN_mod_inverse(w, s, c->n, c->bn) && BN_mod_mul(e, e, w, c->n, c->bn)
                 && BN_mod_mul(w, r, w, c->n, c->bn))
            ok = x_is_r(c, e, q, w, r);
    }
    EC_POINT_free(q);
    BN_CTX_end(c->bn);
    return ok < 0 ? failed(-1) : failed(ok);
}

/* Q = (s / r) R + (-e / r) G for the point R of x coordinate x and y parity bit, into out:
 * 1, 0 if there is no such R (or Q is infinity), -1 on failure. */
static int recover_one(crypto_t *c, const BIGNUM *x, int bit, const BIGNUM *u1,
                       const BIGNUM *u2, uint8_t out[P256_PUBLIC_LEN])
{
    EC_POINT *r_point = EC_POINT_new(c->group), *q = EC_POINT_new(c->group);
    int ok = r_point && q ? 1 : -1;
    if (ok == 1 && !EC_POINT_set_compressed_coordinates(c->group, r_point, x, bit, c->bn))
        ok = failed(0);           /* x is not on the curve */
    if (ok == 1)
        ok = EC_POINT_mul(c->group, q, u1, r_point, u2, c->bn) ? 1 : -1;
    if (ok == 1)
        ok = EC_POINT_is_at_infinity(c->group, q) ? 0 : encode(c, q, out) ? 1 : -1;
    EC_POINT_free(r_point);
    EC_POINT_free(q);
    return ok;
}

int p256_recover(const uint8_t *digest, const uint8_t sig[P256_SIG_LEN],
                 uint8_t out[P256_MAX_RECOVERED][P256_PUBLIC_LEN])
{
    crypto_t *c = ctx();
    if (c == NULL)
        return -1;
    BN_CTX_start(c->bn);
    BIGNUM *r = BN_CTX_get(c->bn), *s = BN_CTX_get(c->bn), *e = BN_CTX_get(c->bn);
    BIGNUM *rinv = BN_CTX_get(c->bn), *x = BN_CTX_get(c->bn);
    int found = -1;
    if (x && BN_bin2bn(sig, 32, r) && BN_bin2bn(sig + 32, 32, s) && BN_bin2bn(digest, 32, e)) {
        found = 0;
        if (in_range(c, r) && in_range(c, s)) {   /* u2 = s / r into s, u1 = -e / r into e */
            if (!BN_mod_inverse(rinv, r, c->n, c->bn) || !BN_mod_mul(s, s, rinv, c->n, c->bn)
                || !BN_mod_mul(e, e, rinv, c->n, c->bn) || !BN_mod_sub(e, c->n, e, c->n, c->bn)
                || !BN_copy(x, r))
                found = -1;
            for (int i = 0; found >= 0 && i < 2; i++, found = BN_add(x, x, c->n) ? found : -1) {
                for (int bit = 0; found >= 0 && bit < 2 && BN_cmp(x, c->p) < 0; bit++) {
                    int one = recover_one(c, x, bit, e, s, out[found]);
                    found = one < 0 ? -1 : found + one;
                }
            }
        }
    }
    BN_CTX_end(c->bn);
    return found < 0 ? failed(-1) : found;
}
