"""The references the model checks outputs with (scenarios/model/crypto_ref.py, python3-cryptography),
against published known-answer vectors (the end-to-end runs check them against the library as
well)."""
import hashlib
import os
import subprocess

import pytest

from scenarios.model import crypto_ref as ref
from scenarios.setup import apt as tools
from scenarios.setup.source import REPO, SetupError

# RFC 6979 A.2.5: the P-256 key pair, and its deterministic SHA-256 signature of "sample".
RFC6979_D = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
RFC6979_PUBLIC = bytes.fromhex(
    "04" "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299")
SAMPLE_DIGEST = hashlib.sha256(b"sample").digest()
SAMPLE_SIGNATURE = bytes.fromhex(
    "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
    "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8")


def test_aes128_fips197_appendix_c1_and_sp800_38a_ecb():
    assert ref.aes128_encrypt(bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
                              bytes.fromhex("00112233445566778899aabbccddeeff")).hex() \
        == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert ref.aes128_encrypt(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"),
                              bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")).hex() \
        == "3ad77bb40d7a3660a89ecaf32466ef97"


def test_gcm_test_case_2_seals_and_opens():
    sealed = ref.gcm_seal(bytes(16), bytes(12), bytes(16))
    assert sealed.hex() == ("0388dace60b6a392f328c2b971b2fe78"
                            "ab6e47d42cec13bdf53a67b21257bddf")
    assert ref.gcm_open(bytes(16), bytes(12), sealed) == bytes(16)
    assert ref.gcm_open(bytes(16), bytes(12), sealed[:-1] + b"\x00") is None


def test_gcm_test_case_3_four_blocks():
    key = bytes.fromhex("feffe9928665731c6d6a8f9467308308")
    nonce = bytes.fromhex("cafebabefacedbaddecaf888")
    plaintext = bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
    sealed = ref.gcm_seal(key, nonce, plaintext)
    assert sealed.hex() == (
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
        "4d5c2af327cd64a62cf35abd2ba6fab4")
    assert ref.gcm_open(key, nonce, sealed) == plaintext
    assert ref.gcm_open(key, nonce, sealed[:16]) is None        # a truncated tag


def test_hmac_sha256_rfc4231_test_case_2():
    assert ref.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_p256_public_keys_rfc6979_and_the_generator_and_an_invalid_scalar():
    assert ref.public_key(RFC6979_D) == RFC6979_PUBLIC
    generator = ref.public_key((1).to_bytes(32, "big"))
    assert generator[1:33].hex() == \
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    assert ref.public_key(ref.N.to_bytes(32, "big")) is None
    assert ref.public_key(bytes(32)) is None


def test_p256_ecdsa_verify_rfc6979_a_2_5_sha256_sample():
    assert ref.verify(RFC6979_PUBLIC, SAMPLE_DIGEST, SAMPLE_SIGNATURE)
    assert not ref.verify(RFC6979_PUBLIC, SAMPLE_DIGEST, SAMPLE_SIGNATURE[:-1] + b"\x00")
    assert not ref.verify(RFC6979_PUBLIC, hashlib.sha256(b"test").digest(), SAMPLE_SIGNATURE)
    off_curve = RFC6979_PUBLIC[:-1] + bytes([RFC6979_PUBLIC[-1] ^ 1])
    assert not ref.verify(off_curve, SAMPLE_DIGEST, SAMPLE_SIGNATURE)


def test_p256_recovery_finds_the_signer_and_only_keys_that_verify():
    """The signer's public key is among the recovered ones, each of them verifies, and a
    corrupted signature recovers keys that exclude the signer."""
    candidates = ref.recover(SAMPLE_DIGEST, SAMPLE_SIGNATURE)
    assert RFC6979_PUBLIC in candidates and len(candidates) == 2
    assert all(ref.verify(q, SAMPLE_DIGEST, SAMPLE_SIGNATURE) for q in candidates)
    assert RFC6979_PUBLIC not in ref.recover(SAMPLE_DIGEST, SAMPLE_SIGNATURE[:-1] + b"\x01")
    assert ref.recover(SAMPLE_DIGEST, b"\x00" * 64) == ()


def test_p256_recovery_of_a_zero_digest_needs_no_addition():
    """e = 0: Q = (s/r)·R alone (no u1·G term); the keys still verify."""
    candidates = ref.recover(bytes(32), SAMPLE_SIGNATURE)
    assert len(candidates) == 2
    assert all(ref.verify(q, bytes(32), SAMPLE_SIGNATURE) for q in candidates)


def test_p256_recovery_when_both_terms_are_one_point():
    """r = x(G), s = 1, e = -1: u1·G = ±u2·R = (1/r)·G, so one candidate is the doubling
    (2/r)·G and the other the point at infinity (no key)."""
    r = int.from_bytes(ref.public_key((1).to_bytes(32, "big"))[1:33], "big")
    signature = r.to_bytes(32, "big") + (1).to_bytes(32, "big")
    digest = (ref.N - 1).to_bytes(32, "big")
    doubled = ref.public_key((2 * pow(r, -1, ref.N) % ref.N).to_bytes(32, "big"))
    assert ref.recover(digest, signature) == (doubled,)
    assert ref.verify(doubled, digest, signature)


# ---- how run.py gets an interpreter that imports python3-cryptography (scenarios/setup/apt.py) --
# `python -S` hides Debian's dist-packages (site.py adds them), as a pyenv interpreter does.

def _run_py(python, *args):
    return subprocess.run([python, "-S", "run.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_run_py_runs_again_under_debian_python_when_cryptography_is_missing():
    other = os.path.realpath(tools.DEBIAN_PYTHON)     # the same interpreter by another name
    if other == tools.DEBIAN_PYTHON or not tools.has_cryptography(tools.DEBIAN_PYTHON):
        pytest.skip("needs Debian's python3 under a second name, with python3-cryptography")
    result = _run_py(other, "list")
    assert result.returncode == 0, result.stderr
    assert "volatile-churn" in result.stdout


def test_run_py_without_cryptography_under_debian_python_is_one_line_exit_2():
    if not os.path.exists(tools.DEBIAN_PYTHON):
        pytest.skip("needs Debian's python3")
    result = _run_py(tools.DEBIAN_PYTHON, "list")
    assert result.returncode == 2
    assert result.stderr.startswith("run.py: error: ") and result.stderr.count("\n") == 1


def test_missing_package_without_root_names_the_apt_get_line(monkeypatch):
    monkeypatch.setattr(tools, "_imports_here", lambda: False)
    monkeypatch.setattr(tools, "DEBIAN_PYTHON", "/nonexistent/python3")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SetupError, match="sudo apt-get install -y python3-cryptography$"):
        tools.ensure_python(["run.py", "list"])
