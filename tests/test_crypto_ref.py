"""The pure-Python references the model checks outputs with, against published test vectors
(the end-to-end runs check them against the library as well)."""
from scenarios import aes, p256


def test_aes128_fips197_appendix_c1():
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert aes.aes128_encrypt(key, block).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


def test_gcm_test_case_2_seals_and_opens():
    sealed = aes.gcm_seal(bytes(16), bytes(12), bytes(16))
    assert sealed.hex() == ("0388dace60b6a392f328c2b971b2fe78"
                            "ab6e47d42cec13bdf53a67b21257bddf")
    assert aes.gcm_open(bytes(16), bytes(12), sealed) == bytes(16)
    assert aes.gcm_open(bytes(16), bytes(12), sealed[:-1] + b"\x00") is None


def test_p256_public_key_of_one_is_the_generator_and_of_n_is_invalid():
    public = p256.public_key((1).to_bytes(32, "big"))
    assert public == b"\x04" + p256.G[0].to_bytes(32, "big") + p256.G[1].to_bytes(32, "big")
    assert p256.public_key(p256.N.to_bytes(32, "big")) is None


def test_p256_ecdsa_verify_rfc6979_a_2_5_sha256_sample():
    """RFC 6979 A.2.5, P-256, SHA-256, message "sample"."""
    import hashlib
    d = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
    digest = hashlib.sha256(b"sample").digest()
    signature = bytes.fromhex(
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
        "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8")
    public = p256.public_key(d)
    assert public[1:33].hex() == "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    assert p256.verify(public, digest, signature)
    assert not p256.verify(public, digest, signature[:-1] + b"\x00")


def test_p256_recovery_finds_the_signer_and_only_keys_that_verify():
    """RFC 6979 A.2.5 again: the signer's public key is among the recovered ones, each of
    them verifies, and a corrupted signature recovers keys that exclude the signer."""
    import hashlib
    d = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
    digest = hashlib.sha256(b"sample").digest()
    signature = bytes.fromhex(
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
        "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8")
    candidates = p256.recover(digest, signature)
    assert p256.public_key(d) in candidates and len(candidates) == 2
    assert all(p256.verify(q, digest, signature) for q in candidates)
    assert p256.public_key(d) not in p256.recover(digest, signature[:-1] + b"\x01")
    assert p256.recover(digest, b"\x00" * 64) == ()
