"""The cryptography the model recomputes the driver's outputs with, from Debian's
python3-cryptography (run.py makes sure it is importable: scenarios/setup/apt.py).

    aes128_encrypt(key, block) -> bytes            # 16-byte key, 16-byte block (AES-ECB)
    gcm_seal(key, nonce, plaintext) -> bytes       # AES-128-GCM, 12-byte nonce, no AAD:
                                                   # ciphertext || 16-byte tag
    gcm_open(key, nonce, sealed) -> bytes | None   # the plaintext; None if the tag is wrong
    hmac_sha256(key, message) -> bytes
    public_key(scalar) -> bytes | None             # P-256: 04 || X || Y; None if not in [1, n)
    verify(public, digest, signature) -> bool      # ECDSA P-256, r || s over a SHA-256 digest
    recover(digest, signature) -> tuple            # the public keys r || s verifies under
    derived_private_key(output, capacity) -> bytes | None   # P-256 pair from a KDF's output

A key or nonce of another size raises ValueError (the model then accepts the output, as the
C checker's references cover the same sizes). Results are cached: the driver signs with
deterministic ECDSA, so one key instance always yields the same outputs.
"""
import functools
import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CURVE = ec.SECP256R1()
# P-256's field prime, group order and curve constant b (FIPS 186-4 D.1.2.3): the library
# offers no point addition, which public-key recovery needs (recover).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_ECDSA_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))


def _aes128(key):
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    return bytes(key)


def aes128_encrypt(key, block):
    """One AES-128 block encryption."""
    if len(block) != 16:
        raise ValueError("AES-128 encrypts a 16-byte block")
    encryptor = Cipher(algorithms.AES(_aes128(key)), modes.ECB()).encryptor()
    return encryptor.update(bytes(block)) + encryptor.finalize()


def gcm_seal(key, nonce, plaintext):
    if len(nonce) != 12:
        raise ValueError("GCM here takes a 12-byte nonce")
    return AESGCM(_aes128(key)).encrypt(bytes(nonce), bytes(plaintext), None)


def gcm_open(key, nonce, sealed):
    if len(nonce) != 12:
        raise ValueError("GCM here takes a 12-byte nonce")
    try:
        return AESGCM(_aes128(key)).decrypt(bytes(nonce), bytes(sealed), None)
    except InvalidTag:
        return None


def hmac_sha256(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


def _g_times(k):
    """k·G as affine (x, y), or None for the point at infinity."""
    k %= N
    if k == 0:
        return None
    numbers = ec.derive_private_key(k, CURVE).public_key().public_numbers()
    return numbers.x, numbers.y


def _encode(point):
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


@functools.lru_cache(maxsize=8192)
def public_key(scalar):
    """The uncompressed public key of a 32-byte private scalar, or None if it is invalid."""
    d = int.from_bytes(scalar, "big")
    if len(scalar) != 32 or not 0 < d < N:
        return None
    return _encode(_g_times(d))


def derived_private_key(output, capacity):
    """The private scalar Mbed TLS derives for a P-256 key pair from a key derivation's output
    stream (psa_generate_derived_ecc_key_weierstrass_helper, library/psa_crypto.c): k is the next
    ceil(m/8) bytes, big-endian, with the bits above m (the order's size) cleared, drawn again
    while k > n - 2; the key is k + 1. ``output(length)``: the stream's first length bytes;
    None if the stream's capacity (bytes) runs out first (the derivation then fails)."""
    size = (N.bit_length() + 7) // 8
    for end in range(size, capacity + 1, size):
        k = int.from_bytes(output(end)[-size:], "big") & ((1 << N.bit_length()) - 1)
        if k <= N - 2:
            return (k + 1).to_bytes(size, "big")
    return None


@functools.lru_cache(maxsize=8192)
def verify(public, digest, signature):
    """ECDSA verification of r || s over a digest (its leftmost 32 bytes, as ECDSA truncates
    to the order's size) under an uncompressed public key."""
    if len(public) != 65 or public[0] != 4 or len(signature) != 64:
        return False
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(CURVE, bytes(public))
    except ValueError:                      # not a point of the curve
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), bytes(digest[:32]).rjust(32, b"\0"),
                   _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def _plus_g_times(u1, b):
    """u1·G + b for an affine point b (not infinity): one affine addition, the doubling as
    (2·u1)·G."""
    a = _g_times(u1)
    if a is None:
        return b
    if a[0] == b[0]:
        return _g_times(2 * u1) if a[1] == b[1] else None
    slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def recover(digest, signature):
    """The public keys under which r || s is a valid signature of the digest (ECDSA public key
    recovery, SEC 1 §4.1.6): Q = u1·G + u2·R with u1 = -e/r, u2 = s/r, for both points R of x
    coordinate r (and r + n, when below p). The library gives u1·G and the x coordinate of
    u2·R (ECDH); the two points of that x are u2·R and u2·(-R). Usually two keys. Used to bind
    a generated key whose public key the model does not know yet."""
    if len(signature) != 64:
        return ()
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return ()
    e, r_inv, found = int.from_bytes(digest[:32], "big"), pow(r, -1, N), []
    u1, u2 = -e * r_inv % N, s * r_inv % N
    for x in (r, r + N):
        if x >= P:
            continue
        try:
            point_r = ec.EllipticCurvePublicKey.from_encoded_point(
                CURVE, b"\x02" + x.to_bytes(32, "big"))
        except ValueError:                  # no point of the curve has this x
            continue
        bx = int.from_bytes(ec.derive_private_key(u2, CURVE).exchange(ec.ECDH(), point_r),
                            "big")
        by = pow((bx * bx * bx - 3 * bx + B) % P, (P + 1) // 4, P)   # p = 3 mod 4
        for b in ((bx, by), (bx, P - by)):
            q = _plus_g_times(u1, b)
            if q is not None:
                found.append(_encode(q))
    return tuple(found)
