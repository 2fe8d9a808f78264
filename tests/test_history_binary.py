"""scenarios/history/binary.py: the binary history form, its layout table, crashes, conversion.

Unit tests write binary histories by hand (with a layout that differs from the driver's, to prove
the reader follows header.json); end-to-end tests let the real driver write them, complete and
killed mid-run.
"""
import io
import json
import os
import signal
import struct
import subprocess
import time

import pytest

from scenarios.checker.check import check_file
from scenarios.history.reader import HistoryError, load, parse
from scenarios.history.binary import THREAD_MAGIC, to_jsonl
from tests.stress_env import stock_build

PAGE = 64
KEY = 0x40000001
MATERIAL = bytes(range(16))
# A layout unlike the driver's: other offsets, an unknown field type, an unused field.
FIELDS = [("call", 0, 8, "u64"), ("seq", 8, 4, "u32"), ("ret", 16, 8, "u64"),
          ("thread", 24, 2, "u16"), ("op", 26, 1, "u8"), ("material_len", 27, 1, "u8"),
          ("status", 28, 4, "i32"), ("key", 32, 4, "u32"), ("out_key", 36, 4, "u32"),
          ("future", 40, 4, "f32"), ("attrs.lifetime", 44, 4, "u32"), ("attrs.id", 48, 4, "u32"),
          ("attrs.type", 52, 2, "u16"), ("attrs.bits", 54, 2, "u16"),
          ("attrs.usage", 56, 4, "u32"), ("attrs.alg", 60, 4, "u32"),
          ("material", 64, 32, "bytes"), ("salt", 96, 16, "bytes")]
SIZE = 120
RECORD = struct.Struct("<Q I 4x Q H B B i I I 4x I I H H I I 32s 16s 8x")
OPS = ["import", "generate", "derive", "copy", "destroy", "export", "get_attributes"]


def header(threads):
    return {"format": "psa-stress-history", "version": 1,
            "key_store": {"kind": "dynamic", "slot_count": 32}, "threads": threads,
            "binary": {"record_size": SIZE, "header_page": PAGE,
                       "fields": [{"name": n, "offset": o, "size": s, "type": t}
                                  for n, o, s, t in FIELDS],
                       "ops": OPS, "statuses": {"0": "SUCCESS", "-136": "INVALID_HANDLE"},
                       "constants": {}}}


def record(call, ret, seq, thread, op, status=0, key=0, out_key=0, material=b""):
    return RECORD.pack(call, seq, ret, thread, OPS.index(op), len(material), status, key,
                       out_key, 0, 0, 0x2400, 128, 3, 0, material.ljust(32, b"\0"), bytes(16))


def write(directory, threads, committed=None, complete=True):
    """threads: [[record bytes]]; committed[t] < len(threads[t]) leaves records uncommitted."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "header.json"), "w", encoding="utf-8") as stream:
        json.dump(header(len(threads)), stream)
    total = 0
    for t, records in enumerate(threads):
        count = len(records) if committed is None else committed[t]
        total += count
        head = THREAD_MAGIC + struct.pack("<IIQ", t, SIZE, count)
        with open(os.path.join(directory, f"thread-{t:04d}.bin"), "wb") as stream:
            stream.write(head.ljust(PAGE, b"\0") + b"".join(records) + bytes(SIZE * 3))
    if complete:
        with open(os.path.join(directory, "end.json"), "w", encoding="utf-8") as stream:
            json.dump({"end": {"records": total, "complete": True}}, stream)
    return str(directory)


def two_threads():
    return [[record(1, 4, 0, 0, "import", out_key=KEY, material=MATERIAL),
             record(7, 8, 1, 0, "destroy", key=KEY)],
            [record(2, 3, 0, 1, "export", status=-136, key=KEY),
             record(5, 6, 1, 1, "export", key=KEY, material=MATERIAL)]]


def test_reader_follows_the_layout_table_and_merges_threads_by_call(tmp_path):
    history = load(write(tmp_path / "h", two_threads()))
    assert history.complete
    assert [(c.call, c.thread, c.op, c.status) for c in history.calls] == [
        (1, 0, "import", "SUCCESS"), (2, 1, "export", "INVALID_HANDLE"),
        (5, 1, "export", "SUCCESS"), (7, 0, "destroy", "SUCCESS")]
    created = history.calls[0]
    assert created.args == {"lifetime": 0, "id": 0, "type": 0x2400, "bits": 128, "usage": 3,
                            "alg": 0, "material": MATERIAL.hex()}
    assert created.out == {"key": KEY}
    assert history.calls[2].out == {"material": MATERIAL.hex()}
    assert history.calls[1].out == {}
    assert check_file(str(tmp_path / "h")).verdict == "ok"


def test_call_in_flight_at_a_crash_is_pending_and_the_run_incomplete(tmp_path):
    threads = two_threads()
    threads[0][1] = record(7, 0, 1, 0, "destroy", key=KEY)       # never returned
    threads[1].append(record(9, 10, 2, 1, "destroy", key=KEY))    # returned, outputs unsure
    history = load(write(tmp_path / "h", threads, committed=[1, 2], complete=False))
    assert not history.complete
    pending = [(c.call, c.op) for c in history.calls if c.ret is None]
    assert pending == [(7, "destroy"), (9, "destroy")]
    assert all(c.status is None for c in history.calls if c.ret is None)
    assert check_file(str(tmp_path / "h")).verdict == "ok"


def test_conversion_to_json_lines_round_trips(tmp_path):
    directory = write(tmp_path / "h", two_threads())
    stream = io.StringIO()
    assert to_jsonl(directory, stream) == 4
    converted = parse(stream.getvalue().splitlines())
    original = load(directory)
    assert converted.complete
    assert "binary" not in converted.header
    assert [(c.call, c.ret, c.op, c.status, c.args, c.out) for c in converted.calls] == \
        [(c.call, c.ret, c.op, c.status, c.args, c.out) for c in original.calls]


@pytest.mark.parametrize("damage, message", [
    (lambda d: open(os.path.join(d, "thread-0001.bin"), "r+b").write(b"XXXXXXXX"),
     "not a psa-stress thread file"),
    (lambda d: os.truncate(os.path.join(d, "thread-0000.bin"), PAGE + SIZE), "truncated"),
    (lambda d: json.dump({"end": {"records": 9, "complete": True}},
                         open(os.path.join(d, "end.json"), "w")), "records is 9"),
])
def test_damaged_binary_history_is_a_history_error(tmp_path, damage, message):
    directory = write(tmp_path / "h", two_threads())
    damage(directory)
    with pytest.raises(HistoryError, match=message):
        load(directory)


def _edit_binary(directory, change):
    path = os.path.join(directory, "header.json")
    with open(path, encoding="utf-8") as stream:
        head = json.load(stream)
    change(head["binary"])
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(head, stream)


@pytest.mark.parametrize("damage, message", [
    (lambda d: _edit_binary(d, lambda b: b.update(record_size="120")),
     "binary.record_size must be an integer"),
    (lambda d: _edit_binary(d, lambda b: b["fields"][1].update(size=-4)),
     "'seq': offset and size must lie within"),
    (lambda d: _edit_binary(d, lambda b: b["fields"][-1].update(offset=SIZE)),
     "'salt': offset and size must lie within"),
    (lambda d: _edit_binary(d, lambda b: b["fields"][0].update(type="bytes")),
     "no integer 'call' field"),
    (lambda d: _edit_binary(d, lambda b: b["ops"].append(["import"])),
     "binary.ops must be a list of operation names"),
    (lambda d: _edit_binary(d, lambda b: b["statuses"].update({"0": ["SUCCESS"]})),
     "binary.statuses '0'"),
    (lambda d: _edit_binary(d, lambda b: b.update(constants={"info": 7})),
     "binary.constants must map names to lower-case hex"),
    (lambda d: os.mkdir(os.path.join(d, "thread-0002.bin")), "thread-0002.bin: not a regular"),
    (lambda d: json.dump({"end": [9]}, open(os.path.join(d, "end.json"), "w")),
     "end.json: end needs integer records"),
    (lambda d: open(os.path.join(d, "end.json"), "w").write("[" * 100_000 + "]" * 100_000),
     "end.json: unreadable"),
])
def test_malformed_binary_description_is_a_history_error(tmp_path, damage, message):
    directory = write(tmp_path / "h", two_threads())
    damage(directory)
    with pytest.raises(HistoryError, match=message):
        load(directory)


def test_unknown_op_number_of_a_pending_record_is_a_history_error(tmp_path):
    pending = bytearray(record(1, 0, 0, 0, "import"))
    pending[26] = 50      # the op field, beyond the layout's ops
    with pytest.raises(HistoryError, match="unknown op number 50"):
        load(write(tmp_path / "h", [[bytes(pending)]], committed=[0], complete=False))


def test_derivation_longer_than_hkdf_allows_is_a_history_error(tmp_path):
    derive = RECORD.pack(1, 0, 2, 0, OPS.index("derive"), 0, 0, 0, KEY, 0, 0, 0x1001, 65288, 1,
                         0, bytes(32), bytes(16))
    directory = write(tmp_path / "h", [[derive]])
    _edit_binary(directory, lambda b: b.update(constants={"secret": "01", "info": ""}))
    with pytest.raises(HistoryError, match="args.bits must be at most 65280"):
        load(directory)


def test_records_out_of_order_within_a_thread_are_rejected(tmp_path):
    threads = two_threads()
    threads[0][1] = record(3, 9, 1, 0, "destroy", key=KEY)    # starts before its previous ret
    with pytest.raises(HistoryError, match="out of order"):
        load(write(tmp_path / "h", threads))


# ---- the real driver ----

MIX = "import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3"


def test_driver_binary_history_is_complete_and_linearizable(tmp_path):
    directory = str(tmp_path / "run")
    subprocess.run([stock_build().driver(), "--threads", "4", "--ops", "4000", "--mix", MIX,
                    "--history", directory], check=True, capture_output=True, timeout=300)
    history = load(directory)
    assert history.complete and len(history.calls) == 4000
    result = check_file(directory)
    assert result.verdict == "ok" and result.complete


@pytest.mark.slow
def test_driver_killed_mid_run_leaves_a_readable_incomplete_history(tmp_path):
    directory = str(tmp_path / "run")
    driver = subprocess.Popen([stock_build().driver(), "--threads", "4", "--seconds", "60",
                               "--mix", MIX, "--history", directory],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _has_records(directory):
        time.sleep(0.2)
    time.sleep(0.5)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    history = load(directory)
    assert not history.complete
    assert len(history.calls) > 100
    assert check_file(directory).verdict == "ok"


def _has_records(directory):
    path = os.path.join(directory, "thread-0000.bin")
    try:
        with open(path, "rb") as stream:
            return struct.unpack_from("<Q", stream.read(24), 16)[0] > 100
    except (OSError, struct.error):
        return False


@pytest.mark.slow
def test_calls_stuck_in_the_core_at_a_hang_are_in_the_history_as_pending(tmp_path):
    # Test build: worker 0 takes the key-slot mutex for good at its third call boundary, so the
    # other workers' next calls never return; the watchdog ends the run (exit 5). Each record is
    # published into the file once its call stamp is taken, so those calls are there, pending.
    # (--overlap-destroy: no spec-mode id locks, which could hold a worker before its stamp.)
    directory = str(tmp_path / "run")
    done = subprocess.run([stock_build().driver(test_build=True), "--threads", "3", "--ops",
                           "100000", "--faults", "hang", "--watchdog", "2", "--mix", MIX,
                           "--overlap-destroy", "--history", directory], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 5, done.stderr[-2000:]
    history = load(directory)
    assert not history.complete
    stuck = [c for c in history.calls if c.ret is None and c.thread != 0]
    # (worker 0's last call is pending too: its file counts it committed only at its next call)
    assert sorted(c.thread for c in stuck) == [1, 2]
    assert all(c.call > 0 and c.op in OPS for c in stuck)
    assert check_file(directory).verdict == "ok"
