"""AES-128 (FIPS 197) and AES-GCM (SP 800-38D), encryption only, in pure Python.

The model recomputes the outputs of the driver's cipher and AEAD calls with these (the standard
library has no AES). Decryption is never needed: a decrypt result is checked by encrypting it
again. Slow (tens of microseconds a block) but the model caches per (key, input).

    aes128_encrypt(key, block) -> bytes        # 16-byte key, 16-byte block
    gcm_seal(key, nonce, plaintext) -> bytes   # 12-byte nonce, no AAD: ciphertext || 16-byte tag
    gcm_open(key, nonce, sealed) -> bytes | None   # the plaintext, or None if the tag is wrong
"""
import functools


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _gf_mul(a, b):
    result = 0
    while b:
        if b & 1:
            result ^= a
        a = _xtime(a)
        b >>= 1
    return result


def _make_sbox():
    inverse = [0] * 256
    for a in range(1, 256):
        inverse[a] = next(b for b in range(1, 256) if _gf_mul(a, b) == 1)
    sbox = []
    for a in range(256):
        x = inverse[a]
        y = x
        for shift in range(1, 5):
            y ^= ((x << shift) | (x >> (8 - shift))) & 0xFF
        sbox.append(y ^ 0x63)
    return bytes(sbox)


_SBOX = _make_sbox()
_XTIME = bytes(_xtime(a) & 0xFF for a in range(256))


@functools.lru_cache(maxsize=4096)
def _round_keys(key):
    """The 11 round keys of AES-128, as 16-byte sequences."""
    words = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        word = list(words[i - 1])
        if i % 4 == 0:
            word = [_SBOX[b] for b in word[1:] + word[:1]]
            word[0] ^= rcon
            rcon = _xtime(rcon) & 0xFF
        words.append([a ^ b for a, b in zip(words[i - 4], word)])
    return [sum(words[r * 4:r * 4 + 4], []) for r in range(11)]


def _mix_column(a0, a1, a2, a3):
    total = a0 ^ a1 ^ a2 ^ a3
    return (a0 ^ total ^ _XTIME[a0 ^ a1], a1 ^ total ^ _XTIME[a1 ^ a2],
            a2 ^ total ^ _XTIME[a2 ^ a3], a3 ^ total ^ _XTIME[a3 ^ a0])


def aes128_encrypt(key, block):
    """One AES-128 block encryption (state in column-major byte order, as FIPS 197)."""
    if len(key) != 16 or len(block) != 16:
        raise ValueError("AES-128 needs a 16-byte key and a 16-byte block")
    keys = _round_keys(bytes(key))
    state = [b ^ k for b, k in zip(block, keys[0])]
    for round_index in range(1, 11):
        state = [_SBOX[b] for b in state]
        state = [state[(i + 4 * (i % 4)) % 16] for i in range(16)]   # ShiftRows
        if round_index != 10:
            mixed = []
            for c in range(4):
                mixed.extend(_mix_column(*state[4 * c:4 * c + 4]))
            state = mixed
        state = [b ^ k for b, k in zip(state, keys[round_index])]
    return bytes(state)


_R = 0xE1 << 120


def _ghash_mul(x, y):
    """Multiplication in GF(2^128) with GCM's bit order (SP 800-38D, Algorithm 1)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _ghash(h, data):
    """GHASH of `data` (no AAD) followed by the length block."""
    y = 0
    padded = data + bytes(-len(data) % 16)
    for i in range(0, len(padded), 16):
        y = _ghash_mul(y ^ int.from_bytes(padded[i:i + 16], "big"), h)
    lengths = (len(data) * 8).to_bytes(16, "big")   # len(AAD) = 0 in the high half
    return _ghash_mul(y ^ int.from_bytes(lengths, "big"), h)


def _ctr_blocks(key, nonce, count):
    """The key stream for `count` blocks after J0 = nonce || 0^31 || 1 (12-byte nonce)."""
    stream = b""
    for counter in range(2, 2 + count):
        stream += aes128_encrypt(key, nonce + counter.to_bytes(4, "big"))
    return stream


def _tag(key, nonce, ciphertext):
    h = int.from_bytes(aes128_encrypt(key, bytes(16)), "big")
    s = _ghash(h, ciphertext)
    j0 = int.from_bytes(aes128_encrypt(key, nonce + (1).to_bytes(4, "big")), "big")
    return (s ^ j0).to_bytes(16, "big")


def gcm_seal(key, nonce, plaintext):
    """AES-128-GCM with a 12-byte nonce and no AAD: ciphertext || 16-byte tag."""
    if len(nonce) != 12:
        raise ValueError("GCM here takes a 12-byte nonce")
    stream = _ctr_blocks(key, nonce, (len(plaintext) + 15) // 16)
    ciphertext = bytes(p ^ s for p, s in zip(plaintext, stream))
    return ciphertext + _tag(key, nonce, ciphertext)


def gcm_open(key, nonce, sealed):
    """The plaintext of ciphertext || tag, or None when the tag does not verify."""
    if len(sealed) < 16:
        return None
    ciphertext, tag = sealed[:-16], sealed[-16:]
    if _tag(key, nonce, ciphertext) != tag:
        return None
    stream = _ctr_blocks(key, nonce, (len(ciphertext) + 15) // 16)
    return bytes(c ^ s for c, s in zip(ciphertext, stream))
