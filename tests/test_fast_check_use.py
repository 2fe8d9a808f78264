"""The C fast path on key use (harness/checker/use.c): sign/verify (ECDSA P-256), cipher
(AES-ECB), MAC (HMAC-SHA-256), AEAD (AES-GCM) and the multi-part MAC, recomputed with
libcrypto under scenarios/model/key_use.py's rules.

Each rule is proved on known-bad input: a real driver history of key-use-vs-destroy with one
use's output (or a verify's signature) changed by one bit must be a violation for Python and
must never be accepted by the core, while the unchanged history is accepted. And the core is
cross-checked with Python on real histories of every key-use scenario of the catalogue.
"""
import random
import subprocess

import pytest

from scenarios import catalog
from scenarios.checker import check
from scenarios.checker import fast_check
from scenarios.history.reader import load
from tests.test_fast_check import Records, core  # noqa: F401 (the fixture)

KEY_USE = ("key-use-vs-destroy", "cache-vs-use", "copy-chain", "close-in-use")
# op -> the record field that holds what the perturbation changes
CHANGED = {"mac": "material", "mac_multipart": "material", "cipher_encrypt": "material",
           "cipher_decrypt": "material", "aead_encrypt": "material", "aead_decrypt": "material",
           "sign": "material", "verify": "input"}


def _history(core, path, name, ops, seed):
    scenario = catalog.get(name)
    subprocess.run([core.driver(), "--threads", "8", "--ops", str(ops), "--seed", str(seed),
                    *scenario.driver_args(), "--sched", "pct", "--history", path],
                   check=True, capture_output=True)   # pct: the seed fixes the history
    return path


def _bytes(records, item, name):
    offset, size, _ = records.fields[name]
    length = records.get(item, f"{name}_len")
    data = records.files[item[0]]
    return bytes(data[item[1] + offset:item[1] + offset + min(length, size)])


def _flipped(records, item, name, directory):
    value = bytearray(_bytes(records, item, name))
    value[len(value) // 2] ^= 0x01
    records.set(item, name, bytes(value))
    return records.write(directory)


@pytest.mark.slow
def test_a_changed_output_of_each_key_use_is_never_accepted(core, tmp_path):
    path = _history(core, str(tmp_path / "h"), "key-use-vs-destroy", 2000, 3)
    clean = fast_check.run_core(path)
    assert clean.ok, clean.why            # the clean history: accepted by the core
    assert check.check_history(load(path)).verdict == "ok"
    rng = random.Random(4)
    for op, name in CHANGED.items():
        items = [i for i in Records(path).items if Records(path).ok(i, op)]
        proved = False
        for n, item in enumerate(rng.sample(items, min(4, len(items)))):
            directory = _flipped(Records(path), item, name, str(tmp_path / f"{op}-{n}"))
            answer = fast_check.run_core(directory)
            verdict = check.check_history(load(directory)).verdict
            assert not answer.ok or verdict == "ok", f"{op}: core ok, Python {verdict}"
            if verdict == "violation":
                assert not answer.ok
                proved = True
                break
        assert proved, f"no changed {op} (of {len(items)}) is a violation"


@pytest.mark.slow
@pytest.mark.parametrize("name", KEY_USE)
def test_key_use_histories_get_python_s_verdict(core, tmp_path, name):
    path = _history(core, str(tmp_path / "h"), name, 20000, 1)
    answer = fast_check.run_core(path)
    python = check.check_history(load(path))
    assert not answer.ok or python.verdict == "ok", answer.why
    if name == "key-use-vs-destroy":
        assert answer.ok, answer.why
    if answer.ok:
        assert (answer.calls, answer.keys) == (python.calls, python.partitions_ok)
        assert {w["key"] for w in answer.weakened} <= {w["key"] for w in python.weakened}
