/* psa-stress checker core: SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256
 * (RFC 5869), so that the core can recompute a derived key's material exactly as
 * scenarios/model.py does with hashlib and hmac (tests/test_fast_check.py cross-checks them).
 * Single-threaded callers; no state between calls. */
#include "hkdf.h"

#include <string.h>

typedef struct {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;         /* bytes in block */
    uint64_t total;      /* bytes hashed */
} sha256_t;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
    return x >> n | x << (32 - n);
}

#define ROUND(a, b, c, d, e, f, g, h, i)                                                    \
    do {                                                                                  \
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g))     \
                    + K[i] + w[i];                                                        \
        d += t1;                                                                          \
        h = t1 + (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));  \
    } while (0)

static void compress(uint32_t hash[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16
             | (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = hash[0], b = hash[1], c = hash[2], d = hash[3];
    uint32_t e = hash[4], f = hash[5], g = hash[6], h = hash[7];
    for (int i = 0; i < 64; i += 8) {    /* the eight variables rotate instead of moving */
        ROUND(a, b, c, d, e, f, g, h, i);
        ROUND(h, a, b, c, d, e, f, g, i + 1);
        ROUND(g, h, a, b, c, d, e, f, i + 2);
        ROUND(f, g, h, a, b, c, d, e, i + 3);
        ROUND(e, f, g, h, a, b, c, d, i + 4);
        ROUND(d, e, f, g, h, a, b, c, i + 5);
        ROUND(c, d, e, f, g, h, a, b, i + 6);
        ROUND(b, c, d, e, f, g, h, a, i + 7);
    }
    hash[0] += a;
    hash[1] += b;
    hash[2] += c;
    hash[3] += d;
    hash[4] += e;
    hash[5] += f;
    hash[6] += g;
    hash[7] += h;
}

static void sha_init(sha256_t *s)
{
    static const uint32_t init[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, init, sizeof init);
    s->used = 0;
    s->total = 0;
}

static void sha_update(sha256_t *s, const uint8_t *data, size_t len)
{
    s->total += len;
    while (len > 0) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, data, n);
        s->used += n;
        data += n;
        len -= n;
        if (s->used == 64) {
            compress(s->h, s->block);
            s->used = 0;
        }
    }
}

static void sha_final(sha256_t *s, uint8_t out[SHA256_LEN])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = { 0x80 };
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sha256(const uint8_t *data, size_t len, uint8_t out[SHA256_LEN])
{
    sha256_t s;
    sha_init(&s);
    sha_update(&s, data, len);
    sha_final(&s, out);
}

/* SHA-256 of (key ^ pad, 64 bytes) | data. */
static void padded_hash(const uint8_t key[64], uint8_t pad, const uint8_t *data, size_t len,
                        uint8_t out[SHA256_LEN])
{
    uint8_t block[64];
    for (int i = 0; i < 64; i++)
        block[i] = key[i] ^ pad;
    sha256_t s;
    sha_init(&s);
    sha_update(&s, block, 64);
    sha_update(&s, data, len);
    sha_final(&s, out);
}

void hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                 uint8_t out[SHA256_LEN])
{
    uint8_t k[64] = { 0 }, inner[SHA256_LEN];
    if (keylen > 64)
        sha256(key, keylen, k);
    else
        memcpy(k, key, keylen);
    padded_hash(k, 0x36, data, len, inner);       /* H((K ^ ipad) | data) */
    padded_hash(k, 0x5c, inner, SHA256_LEN, out); /* H((K ^ opad) | inner) */
}

int hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *secret, size_t secretlen,
                const uint8_t *info, size_t infolen, uint8_t *out, size_t len)
{
    uint8_t prk[SHA256_LEN], block[SHA256_LEN + 256 + 1];
    if (len > HKDF_MAX_LEN || infolen > 256)
        return 0;
    hmac_sha256(salt, saltlen, secret, secretlen, prk);
    size_t done = 0, blocklen = 0;
    for (unsigned counter = 1; done < len; counter++) {
        memcpy(block + blocklen, info, infolen);    /* T(i) = HMAC(PRK, T(i-1) | info | i) */
        block[blocklen + infolen] = (uint8_t)counter;
        uint8_t t[SHA256_LEN];
        hmac_sha256(prk, SHA256_LEN, block, blocklen + infolen + 1, t);
        size_t n = len - done < SHA256_LEN ? len - done : SHA256_LEN;
        memcpy(out + done, t, n);
        done += n;
        memcpy(block, t, SHA256_LEN);
        blocklen = SHA256_LEN;
    }
    return 1;
}
