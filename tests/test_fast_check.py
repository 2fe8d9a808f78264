"""scenarios/checker/fast_check.py + harness/checker/: the accept-only C fast path of the checker.

The one property that matters: the core never says "ok" where the Python checker says anything
else. It is cross-checked on real driver histories (volatile-churn, derive-copy, derive_from and
the key cache; clean, and perturbed in the binary file: an export's bytes flipped, a copy's
target exporting another key's bytes, a copy succeeding from a source destroyed before it was
invoked, a derived key exporting wrong HKDF bytes), on simulated linearizable histories written
in the driver's binary layout, on one-field perturbations of them, and on hand-made violations;
the core must also accept the clean ones (an accept-only path that never accepts would be
useless). Its HKDF-SHA-256 (libcrypto's) is cross-checked with Python's hashlib and hmac.
"""
import ctypes
import hashlib
import hmac
import json
import os
import random
import shutil
import struct
import subprocess

import pytest

from scenarios.checker import check
from scenarios.checker import fast_check
from scenarios.history.reader import load
from scenarios.history.binary import THREAD_MAGIC
from scenarios.model import crypto_ref
from scenarios.model import key_store
from tests.stress_env import stock_build
from tests.test_check import bench

MIX = (("import", 3), ("generate", 2), ("copy", 2), ("destroy", 4), ("export", 6),
       ("get_attributes", 3))
DRIVER_MIX = "import=3,generate=1,destroy=3,export=4,get_attributes=3"
SCENARIOS = {   # the catalogue's workloads (scenarios/catalog.py), and one with every other op
    "volatile-churn": ["--mix", "import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3"],
    "derive-copy": ["--mix", "derive=3,copy=3,import=2,generate=1,destroy=3,export=4,"
                    "get_attributes=2", "--persistent-percent", "25"],
    "derive-from-cache": ["--mix", "import=2,generate=1,derive=1,derive_from=2,copy=2,destroy=2,"
                          "export=3,get_attributes=2,purge=1,open=1",
                          "--persistent-percent", "25"],
}   # no close: closing a volatile key in use is a known issue of 3.6.6 (docs/known-issues.md)
OPS = ["import", "generate", "derive", "copy", "destroy", "export", "get_attributes", "close",
       "derive_from", "export_public"]
INFO = "7073612d737472657373"   # derive's and derive_from's info (a header constant)
SECRET = "7073612d7374726573732d736563726574000102030405060708090a0b0c0d0e"   # derive's secret
STATUSES = {"SUCCESS": 0, "NOT_PERMITTED": -133, "INVALID_ARGUMENT": -135, "INVALID_HANDLE": -136,
            "ALREADY_EXISTS": -139, "INSUFFICIENT_MEMORY": -141, "STORAGE_FAILURE": -146,
            "CORRUPTION_DETECTED": -151}
SIZE, PAGE = 224, 4096
FIELDS = [("call", 0, 8, "u64"), ("ret", 8, 8, "u64"), ("seq", 16, 4, "u32"),
          ("thread", 20, 2, "u16"), ("op", 22, 1, "u8"), ("material_len", 23, 1, "u8"),
          ("status", 28, 4, "i32"), ("key", 32, 4, "u32"), ("out_key", 36, 4, "u32"),
          ("attrs.lifetime", 40, 4, "u32"), ("attrs.id", 44, 4, "u32"),
          ("attrs.type", 48, 2, "u16"), ("attrs.bits", 50, 2, "u16"),
          ("attrs.usage", 52, 4, "u32"), ("attrs.alg", 56, 4, "u32"),
          ("material", 72, 65, "bytes"), ("salt", 140, 16, "bytes")]
CODES = {"u64": "<Q", "u32": "<I", "u16": "<H", "u8": "<B", "i32": "<i"}


@pytest.fixture(scope="module")
def core():
    """The core as CMake builds it (the plain variant), or the library PSA_STRESS_FAST_CHECK
    names (a mutant, to prove these tests fail), loaded through fast_check."""
    build = stock_build("plain")
    previous = os.environ.get("PSA_STRESS_FAST_CHECK")
    if previous in (None, "", "0"):
        path = os.path.join(build.directory, "libpsa_stress_checker_core.so")
        os.environ["PSA_STRESS_FAST_CHECK"] = path
    fast_check._loaded.clear()
    assert fast_check.library() is not None
    yield build
    fast_check._loaded.clear()
    if previous is None:
        del os.environ["PSA_STRESS_FAST_CHECK"]
    else:
        os.environ["PSA_STRESS_FAST_CHECK"] = previous


def _pack(record):
    """One JSON-form record in the driver's binary layout."""
    args, out = record["args"], record.get("out") or {}
    attrs = out if record["op"] == "get_attributes" else args
    material = bytes.fromhex(args.get("material") or out.get("material") or "")
    values = {"call": record["call"], "ret": record["ret"] or 0, "seq": record["seq"],
              "thread": record["thread"], "op": OPS.index(record["op"]),
              "material_len": len(material), "status": STATUSES[record["status"] or "SUCCESS"],
              "key": args.get("key", args.get("src", 0)), "out_key": out.get("key", 0),
              "material": material, "salt": bytes.fromhex(args.get("salt", ""))}
    values.update({f"attrs.{name}": attrs.get(name, 0)
                   for name in ("lifetime", "id", "type", "bits", "usage", "alg")})
    data = bytearray(SIZE)
    for name, offset, size, kind in FIELDS:
        if kind == "bytes":
            data[offset:offset + len(values[name])] = values[name]
        else:
            struct.pack_into(CODES[kind], data, offset, values[name])
    return bytes(data)


def write_binary(directory, records, threads, complete=True, faults=None):
    """``faults``: the header's faults spec (the driver's --faults), if any."""
    os.makedirs(directory)
    binary = {"record_size": SIZE, "header_page": PAGE, "ops": OPS,
              "fields": [{"name": n, "offset": o, "size": s, "type": t} for n, o, s, t in FIELDS],
              "statuses": {str(code): name for name, code in STATUSES.items()},
              "constants": {"derive_from_info": INFO, "derive_info": INFO,
                            "derive_secret": SECRET}}
    header = {"format": "psa-stress-history", "version": 1, "threads": threads,
              "key_store": {"kind": "dynamic", "slot_count": 32}, "binary": binary}
    if faults:
        header["faults"] = {"spec": faults}
    with open(os.path.join(directory, "header.json"), "w", encoding="utf-8") as stream:
        json.dump(header, stream)
    for thread in range(threads):
        mine = [_pack(r) for r in records if r["thread"] == thread]
        committed = sum(1 for r in records if r["thread"] == thread and r["ret"] is not None)
        head = THREAD_MAGIC + struct.pack("<IIQ", thread, SIZE, committed)
        with open(os.path.join(directory, f"thread-{thread:04d}.bin"), "wb") as stream:
            stream.write(head.ljust(PAGE, b"\0") + b"".join(mine) + bytes(SIZE))
    if complete:
        with open(os.path.join(directory, "end.json"), "w", encoding="utf-8") as stream:
            json.dump({"end": {"records": len(records), "complete": True}}, stream)
    return str(directory)


def python_verdict(path):
    return check.check_history(load(path)).verdict


def assert_never_wrongly_ok(path):
    """The core's answer, after checking it against Python's: ok only where Python says ok."""
    answer = fast_check.run_core(path)
    assert answer is not None
    verdict = python_verdict(path)
    assert not answer.ok or verdict == "ok", f"{path}: core ok, Python {verdict}"
    return answer, verdict


@pytest.mark.slow
def test_real_driver_histories_are_accepted_with_python_s_counts(core, tmp_path):
    for seed in (1, 2, 3):
        path = str(tmp_path / f"h{seed}")
        subprocess.run([core.driver(), "--threads", "8", "--ops", "20000", "--seed", str(seed),
                        "--mix", DRIVER_MIX, "--history", path], check=True, capture_output=True)
        answer = fast_check.run_core(path)
        python = check.check_history(load(path))
        assert answer.ok, answer.why
        assert python.verdict == "ok"
        assert (answer.calls, answer.keys) == (python.calls, python.partitions_ok)
        result = check.check_file(path)
        assert result.fast_path and result.verdict == "ok" and result.calls == 20000


def test_flipped_export_byte_in_a_real_history_is_never_accepted(core, tmp_path):
    """An export of an imported key (its material is known) with one byte flipped."""
    path = str(tmp_path / "h")
    subprocess.run([core.driver(), "--threads", "8", "--ops", "5000", "--mix", DRIVER_MIX,
                    "--history", path], check=True, capture_output=True)
    records = Records(path)
    imported = {records.get(i, "material") for i in records.items if records.ok(i, "import")}
    exports = [i for i in records.items
               if records.ok(i, "export") and records.get(i, "material") in imported]
    for victim, item in enumerate(random.Random(5).sample(exports, 3)):
        bad = Records(path)
        _flip(bad, item)
        directory = bad.write(str(tmp_path / f"v{victim}"))
        answer, verdict = assert_never_wrongly_ok(directory)
        assert verdict == "violation" and not answer.ok
        result = check.check_file(directory)
        assert result.violations and not result.fast_path


def _flip(records, item):
    """Flip one bit of the first byte of a record's material."""
    material = bytearray(records.get(item, "material"))
    material[0] ^= 0x01
    records.set(item, "material", bytes(material))


def _perturb(records, rng):
    """One record with one field changed: an export's bytes, a status, a returned attribute."""
    records = json.loads(json.dumps(records))
    record = rng.choice([r for r in records if r["ret"] is not None])
    out = record.get("out") or {}
    if "material" in out:
        out["material"] = ("00" if out["material"][:2] != "00" else "01") + out["material"][2:]
    elif "bits" in out:
        out["bits"] += 8
    elif record["status"] == "SUCCESS":
        record["status"], record["out"] = "INVALID_HANDLE", {}
    else:
        record["status"] = "SUCCESS"
        if record["op"] == "export":
            record["out"] = {"material": "00" * 16}
    return records


@pytest.mark.slow
def test_simulated_histories_and_their_perturbations(core, tmp_path):
    accepted = violations = 0
    for seed in range(40):
        records = bench.simulate(seed, 300, threads=4, volatile_pool=3, persistent_ids=2, mix=MIX)
        answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / f"s{seed}", records, 4))
        assert verdict == "ok"
        accepted += answer.ok
        bad = _perturb(records, random.Random(seed))
        answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / f"p{seed}", bad, 4))
        violations += verdict == "violation"
    assert accepted >= 36, f"the core accepted only {accepted} of 40 clean histories"
    assert violations >= 10, "the perturbations should break some histories"


KEY, DATA = 0x40000001, "11" * 16
CREATE = {"lifetime": 0, "id": 0, "type": 0x2400, "bits": 128, "usage": 1, "alg": 0}


def rec(thread, seq, op, call, ret, status="SUCCESS", args=None, out=None):
    return {"thread": thread, "seq": seq, "op": op, "call": call, "ret": ret, "status": status,
            "args": args or {"key": KEY}, "out": out or {}}


IMPORT = rec(0, 0, "import", 1, 2, args=dict(CREATE, material=DATA), out={"key": KEY})
BAD = {
    "double destroy": [IMPORT, rec(0, 1, "destroy", 3, 4), rec(1, 0, "destroy", 5, 6)],
    "wrong export bytes": [IMPORT, rec(1, 0, "export", 3, 4, out={"material": "22" * 16})],
    "export after destroy": [IMPORT, rec(0, 1, "destroy", 3, 4),
                             rec(1, 0, "export", 5, 6, out={"material": DATA})],
    "volatile ALREADY_EXISTS": [rec(0, 0, "import", 1, 2, "ALREADY_EXISTS",
                                    args=dict(CREATE, material=DATA))],
    "never-status": [IMPORT, rec(1, 0, "get_attributes", 3, 4, "CORRUPTION_DETECTED")],
    "attributes differ": [IMPORT, rec(1, 0, "get_attributes", 3, 4,
                                      out=dict(CREATE, id=KEY, bits=256))],
}


STATIC = {"volatile ALREADY_EXISTS", "never-status"}    # static problems: left to Python


@pytest.mark.parametrize("name", sorted(BAD))
def test_hand_made_violations_are_found_by_the_core_and_python_explains_them(core, tmp_path,
                                                                           name):
    path = write_binary(tmp_path / "h", BAD[name], 2)
    answer, verdict = assert_never_wrongly_ok(path)
    assert not answer.ok and verdict == "violation"
    assert answer.violated == (name not in STATIC) and bool(answer.why) == (name in STATIC)
    result, python = check.check_file(path, final=False), check.check_history(load(path))
    assert not result.fast_path and result.violations
    assert [(v.kind, v.key, v.cause, v.window) for v in result.violations] == \
        [(v.kind, v.key, v.cause, v.window) for v in python.violations]


def test_unusual_histories_are_left_to_python(core, tmp_path):
    clean = [IMPORT, rec(1, 0, "export", 3, 4, out={"material": DATA})]
    assert fast_check.run_core(write_binary(tmp_path / "ok", clean, 2)).ok
    maybe = rec(1, 1, "destroy", 5, 6, "STORAGE_FAILURE")   # may or may not have destroyed
    answer = fast_check.run_core(write_binary(tmp_path / "maybe", clean + [maybe], 2))
    assert not answer.ok and "outside the fast path" in answer.why
    pending = clean + [rec(0, 1, "destroy", 5, None, status=None)]
    assert fast_check.run_core(write_binary(tmp_path / "cut", pending, 2, complete=False)) is None
    assert check.check_file(str(tmp_path / "maybe")).fast_path is False


def test_a_copy_is_split_into_a_read_of_its_source_and_a_create(core, tmp_path):
    copy = rec(1, 1, "copy", 5, 6, args={"src": KEY, "lifetime": 0, "id": 0, "usage": 1,
                                          "alg": 0}, out={"key": KEY + 1})
    copyable = rec(0, 0, "import", 1, 2, args=dict(CREATE, usage=3, material=DATA),
                   out={"key": KEY})
    clean = [copyable, rec(1, 0, "export", 3, 4, out={"material": DATA}), copy]
    copied = rec(0, 1, "export", 7, 8, args={"key": KEY + 1}, out={"material": DATA})
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "ok", clean + [copied], 2))
    assert answer.ok and verdict == "ok", answer.why
    other = dict(copied, out={"material": "22" * 16})
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "bad", clean + [other], 2))
    assert not answer.ok and verdict == "violation"


def test_a_volatile_close_destroys_and_a_persistent_one_does_not(core, tmp_path):
    persistent = rec(2, 0, "import", 7, 8, args=dict(CREATE, lifetime=1, id=7, material=DATA),
                     out={"key": 7})
    clean = [IMPORT, rec(1, 0, "close", 3, 4), rec(1, 1, "export", 5, 6, "INVALID_HANDLE"),
             persistent, rec(2, 1, "close", 9, 10, args={"key": 7}),
             rec(2, 2, "export", 11, 12, args={"key": 7}, out={"material": DATA})]
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "ok", clean, 3))
    assert answer.ok and verdict == "ok", answer.why
    survived = clean[:2] + [rec(1, 1, "export", 5, 6, out={"material": DATA})]
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "bad", survived, 3))
    assert not answer.ok and verdict == "violation"


def test_disabled_fast_path_falls_back_to_python(core, tmp_path, monkeypatch):
    path = write_binary(tmp_path / "h", [IMPORT], 1)
    monkeypatch.setenv("PSA_STRESS_FAST_CHECK", "0")
    monkeypatch.setattr(fast_check, "_loaded", [])
    result = check.check_file(path)
    assert result.verdict == "ok" and not result.fast_path and result.partitions_ok == 1


def _long_create(wrong_at=None):
    """An import spanning 200 short calls on its id by three other threads: the first half see
    the id absent, the second half export its material (one of them wrong bytes)."""
    records, seqs = [rec(0, 0, "import", 1, 1000, args=dict(CREATE, material=DATA),
                         out={"key": KEY})], [0, 0, 0]
    for index in range(200):
        thread, stamp = index % 3, 2 + 4 * index
        late = index >= 100
        material = "22" * 16 if index == wrong_at else DATA
        records.append(rec(thread + 1, seqs[thread], "export", stamp + 500 * late,
                           stamp + 500 * late + 1, "SUCCESS" if late else "INVALID_HANDLE",
                           out={"material": material} if late else None))
        seqs[thread] += 1
    return sorted(records, key=lambda r: r["call"])


def test_a_long_create_overlapping_many_calls_is_searched_exactly(core, tmp_path):
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "ok", _long_create(), 4))
    assert answer.ok and verdict == "ok", answer.why
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "bad", _long_create(150), 4))
    assert not answer.ok and verdict == "violation"


def test_hkdf_of_the_core_is_python_s(core):
    lib = fast_check.library()
    lib.hkdf_sha256.argtypes = [ctypes.c_char_p, ctypes.c_size_t] * 3 + [ctypes.c_char_p,
                                                                         ctypes.c_size_t]
    rng = random.Random(7)
    for length in [1, 16, 31, 32, 33, 64, 100, 255] + [rng.randint(1, 300) for _ in range(40)]:
        salt, secret, info = (rng.randbytes(rng.choice((0, 1, 16, 63, 64, 65, 130)))
                              for _ in range(3))
        prk = hmac.new(salt, secret, hashlib.sha256).digest()
        want, block, counter = b"", b"", 1
        while len(want) < length:
            block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
            want, counter = want + block, counter + 1
        out = ctypes.create_string_buffer(length)
        assert lib.hkdf_sha256(salt, len(salt), secret, len(secret), info, len(info), out,
                               length) == 1
        assert out.raw == want[:length], (length, salt, secret, info)
    too_long = 255 * 32 + 1
    assert lib.hkdf_sha256(b"", 0, b"", 0, b"", 0, ctypes.create_string_buffer(1), too_long) == 0


def test_derived_p256_pair_of_the_core_is_python_s(core):
    lib = fast_check.library()
    lib.p256_derived_private_key.argtypes = [ctypes.c_char_p, ctypes.c_size_t] * 3 + [
        ctypes.c_char_p]
    rng = random.Random(11)
    for _ in range(40):
        salt, secret, info = (rng.randbytes(rng.choice((0, 16, 32, 65))) for _ in range(3))
        want = crypto_ref.derived_private_key(
            lambda length: key_store.hkdf_sha256(salt, secret, info, length),
            key_store.HKDF_SHA256_CAPACITY)
        out = ctypes.create_string_buffer(32)
        assert lib.p256_derived_private_key(salt, len(salt), secret, len(secret), info,
                                            len(info), out) == 1
        assert out.raw == want, (salt, secret, info)


def weakened_as_python(answer, python):
    """The core counts the keys Python counts as checked by an approximation, for the same
    first reasons."""
    assert answer.weakened == python.weakened


def _driver_history(core, directory, scenario, ops, seed):
    subprocess.run([core.driver(), "--threads", "8", "--ops", str(ops), "--seed", str(seed),
                    "--scenario", scenario, *SCENARIOS[scenario], "--history", directory],
                   check=True, capture_output=True)
    return directory


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_real_copy_and_derive_histories_are_accepted_with_python_s_counts(core, tmp_path,
                                                                         scenario):
    for seed in (1, 2):
        path = _driver_history(core, str(tmp_path / f"h{seed}"), scenario, 20000, seed)
        answer = fast_check.run_core(path)
        python = check.check_history(load(path))
        assert python.verdict == "ok"
        assert answer.ok, answer.why
        assert (answer.calls, answer.keys) == (python.calls, python.partitions_ok)
        weakened_as_python(answer, python)


class Records:
    """The committed records of a real binary history, read and changed through header.json's
    layout, and written back as a copy of the history."""

    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "header.json"), encoding="utf-8") as stream:
            binary = json.load(stream)["binary"]
        self.fields = {f["name"]: (f["offset"], f["size"], f["type"]) for f in binary["fields"]}
        self.ops, size, page = binary["ops"], binary["record_size"], binary["header_page"]
        self.files = {}
        self.items = []
        for name in sorted(n for n in os.listdir(path) if n.startswith("thread-")):
            with open(os.path.join(path, name), "rb") as stream:
                data = self.files[name] = bytearray(stream.read())
            committed = struct.unpack_from("<Q", data, 16)[0]
            self.items += [(name, page + i * size) for i in range(committed)]
        self.items.sort(key=lambda item: self.get(item, "call"))

    def get(self, item, name):
        offset, size, kind = self.fields[name]
        data, at = self.files[item[0]], item[1] + offset
        if kind == "bytes":
            return bytes(data[at:at + self.get(item, "material_len")])
        return struct.unpack_from(CODES[kind], data, at)[0]

    def set(self, item, name, value):
        offset, _, kind = self.fields[name]
        if kind == "bytes":
            self.files[item[0]][item[1] + offset:item[1] + offset + len(value)] = value
        else:
            struct.pack_into(CODES[kind], self.files[item[0]], item[1] + offset, value)

    def op(self, item):
        return self.ops[self.get(item, "op")]

    def ok(self, item, *ops):
        return self.op(item) in ops and self.get(item, "status") == 0

    def write(self, directory):
        shutil.copytree(self.path, directory)
        for name, data in self.files.items():
            with open(os.path.join(directory, name), "wb") as stream:
                stream.write(data)
        return directory


CREATES = ("import", "generate", "derive", "copy", "derive_from")


def _instances(records, maker):
    """(creating record, [records of that instance]) of each successful create by ``maker``
    (op name); the records of an instance name its id, are invoked after it returned and return
    before the next successful create or destroy of the id is invoked."""
    killers, by_key = {}, {}
    for item in records.items:
        if records.ok(item, *CREATES):
            killers.setdefault(records.get(item, "out_key"), []).append(records.get(item, "call"))
        elif records.ok(item, "destroy"):
            killers.setdefault(records.get(item, "key"), []).append(records.get(item, "call"))
        by_key.setdefault(records.get(item, "key"), []).append(item)
    found = []
    for item in records.items:
        if records.ok(item, maker):
            key, call, ret = (records.get(item, n) for n in ("out_key", "call", "ret"))
            end = min((c for c in killers[key] if c > call), default=float("inf"))
            found.append((item, [i for i in by_key.get(key, ()) if records.get(i, "call") > ret
                                 and records.get(i, "ret") < end]))
    return found


def _copy_exports_another_key(records):
    """The second export of a copy's instance returns the bytes of an imported key."""
    imported = [records.get(i, "material") for i in records.items if records.ok(i, "import")]
    for _, inside in _instances(records, "copy"):
        exports = [i for i in inside if records.ok(i, "export")]
        if len(exports) >= 2:
            mine = records.get(exports[1], "material")
            other = next((m for m in imported if len(m) == len(mine) and m != mine), None)
            if other is not None:
                records.set(exports[1], "material", other)
                return records
    return None


def _copy_from_destroyed_source(records):
    """A successful copy whose source is an id destroyed (for good) before it was invoked."""
    last_create = {records.get(i, "out_key"): records.get(i, "call") for i in records.items
                   if records.ok(i, *CREATES)}
    for index, destroy in enumerate(records.items):
        key = records.get(destroy, "key")
        if records.ok(destroy, "destroy") \
                and records.get(destroy, "call") > last_create.get(key, 0):
            copy = next((i for i in records.items[index:] if records.ok(i, "copy")
                         and records.get(i, "call") > records.get(destroy, "ret")), None)
            if copy is not None:
                records.set(copy, "key", key)
                return records
    return None


def _derived_key_exports_wrong_bytes(records):
    """Every export of a derived raw key (its material is HKDF's), never copied, with one byte
    flipped: consistent with each other, so only the recomputed HKDF output tells."""
    for item, inside in _instances(records, "derive"):
        exports = [i for i in inside if records.ok(i, "export")]
        raw = records.get(item, "attrs.type") & 0x7000 in (0x1000, 0x2000)
        if exports and raw and not any(records.op(i) == "copy" for i in inside):
            for export in exports:
                _flip(records, export)
            return records
    return None


def _derived_pair_exports_k(records):
    """Every export of a derived P-256 pair, never copied, returns k, the HKDF stream's bytes
    its private key k + 1 was made of: a valid scalar, so only the recomputed one tells."""
    for item, inside in _instances(records, "derive"):
        exports = [i for i in inside if records.ok(i, "export")]
        if exports and records.get(item, "attrs.type") == 0x7112 \
                and not any(records.op(i) == "copy" for i in inside):
            for export in exports:
                scalar = int.from_bytes(records.get(export, "material"), "big")
                records.set(export, "material", (scalar - 1).to_bytes(32, "big"))
            return records
    return None


@pytest.mark.parametrize("perturb", [_copy_exports_another_key, _copy_from_destroyed_source,
                                     _derived_key_exports_wrong_bytes, _derived_pair_exports_k])
def test_perturbed_copy_and_derive_histories_are_never_accepted(core, tmp_path, perturb):
    scenario = "derive-copy" if perturb in (_derived_key_exports_wrong_bytes,
                                            _derived_pair_exports_k) else "volatile-churn"
    path = _driver_history(core, str(tmp_path / "h"), scenario, 5000, 3)
    bad = perturb(Records(path))
    assert bad is not None, "the history has no call to perturb"
    directory = bad.write(str(tmp_path / "bad"))
    answer, verdict = assert_never_wrongly_ok(directory)
    assert verdict == "violation" and not answer.ok
    result = check.check_file(directory)
    assert result.violations and not result.fast_path


def _corpus():
    """The hand-made histories (tests/histories/) the test's binary layout can hold."""
    histories = os.path.join(os.path.dirname(__file__), "histories")
    found = []
    for name in sorted(os.listdir(histories)):
        if name.startswith("bad_") or "_live_" in name:    # final state: not the core's
            continue
        with open(os.path.join(histories, name), encoding="utf-8") as stream:
            records = [json.loads(line) for line in stream][1:-1]
        if all(r["op"] in OPS and r["args"].get("secret", SECRET) == SECRET
               and r["ret"] is not None and r["status"] in STATUSES
               and r["args"].get("info", INFO) == INFO for r in records):
            found.append((name[:-6], records))
    return found


@pytest.mark.parametrize("name, records", _corpus(), ids=[name for name, _ in _corpus()])
def test_hand_made_corpus_gets_its_verdict_and_the_core_never_accepts_a_violation(
        core, tmp_path, name, records):
    threads = max(r["thread"] for r in records) + 1
    answer, verdict = assert_never_wrongly_ok(write_binary(tmp_path / "h", records, threads))
    assert verdict == ("ok" if name.startswith(("ok_", "cov_ok_")) else "violation")
    assert answer.ok == (verdict == "ok"), answer.why    # the core accepts the legal ones
