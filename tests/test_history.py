"""scenarios/history/reader.py: loading and validating history files."""
import json
import os

import pytest

from scenarios.history.reader import HistoryError, load, parse

HISTORIES = os.path.join(os.path.dirname(__file__), "histories")
HEADER = {"format": "psa-stress-history", "version": 1,
          "key_store": {"kind": "dynamic", "slot_count": 32}, "threads": 2}
KEY = 0x40000001
MATERIAL = "000102030405060708090a0b0c0d0e0f"


def imp(thread=0, seq=0, call=1, ret=2, **changes):
    record = {"thread": thread, "seq": seq, "op": "import", "call": call, "ret": ret,
              "status": "SUCCESS",
              "args": {"lifetime": 0, "id": 0, "type": 0x2400, "bits": 128, "usage": 3,
                       "alg": 0, "material": MATERIAL},
              "out": {"key": KEY}}
    record.update(changes)
    return record


def export(thread=1, seq=0, call=3, ret=4, **changes):
    record = {"thread": thread, "seq": seq, "op": "export", "call": call, "ret": ret,
              "status": "SUCCESS", "args": {"key": KEY}, "out": {"material": MATERIAL}}
    record.update(changes)
    return record


def lines(*records, header=HEADER, complete=True, count=None):
    end = {"end": {"records": len(records) if count is None else count, "complete": complete}}
    return [json.dumps(obj) for obj in (header, *records, end)]


def error_of(text_lines):
    with pytest.raises(HistoryError) as caught:
        parse(text_lines)
    return str(caught.value)


def test_parse_gives_calls_with_all_fields():
    history = parse(lines(imp(), export()))
    first, second = history.calls
    assert (first.thread, first.seq, first.op, first.call, first.ret, first.status) == \
        (0, 0, "import", 1, 2, "SUCCESS")
    assert first.out == {"key": KEY} and first.line == 2
    assert second.args == {"key": KEY} and second.line == 3
    assert history.complete is True and history.header["threads"] == 2


def test_pending_call_needs_an_incomplete_run():
    pending = imp(ret=None, status=None, out=None)
    assert parse(lines(pending, complete=False)).calls[0].ret is None
    assert error_of(lines(pending)) == "line 2: ret is null but end.complete is true"


@pytest.mark.parametrize("name, message", [
    ("bad_truncated", "line 5: truncated: no end line"),
    ("bad_malformed_json", "line 3: not JSON"),
    ("bad_unsorted", "line 4: records not sorted by call (3 after 5)"),
    ("bad_call_not_before_ret", "line 3: call 4 >= ret 4"),
])
def test_bad_fixtures_are_rejected_with_a_line_number(name, message):
    with pytest.raises(HistoryError) as caught:
        load(os.path.join(HISTORIES, name + ".jsonl"))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("records, header, message", [
    ((imp(), export(seq=1)), HEADER, "line 3: thread 1 seq 1, expected 0"),
    ((imp(ret=5), export(thread=0, seq=1)), HEADER, "line 3: thread 0 call at 3 overlaps"),
    ((imp(), export(call=0, ret=4)), HEADER, "line 3: records not sorted by call (0 after 1)"),
    ((imp(), export(call=3, ret=2)), HEADER, "line 3: call 3 >= ret 2"),
    ((imp(ret=4), export(call=3, ret=4)), HEADER, "line 3: stamp 4 is used twice"),
    ((imp(op="frobnicate"),), HEADER, "line 2: unknown op 'frobnicate'"),
    ((export(out={"material": "0G"}),), HEADER, "line 2: out.material must be lower-case hex"),
    ((export(out={"material": "ABCD"}),), HEADER, "line 2: out.material must be lower-case hex"),
    ((export(args={}),), HEADER, "line 2: args.key must be an integer in 0..4294967295"),
    ((imp(out={}),), HEADER, "line 2: out.key must be an integer in 0..4294967295"),
    ((export(status="bad status"),), HEADER, "line 2: bad status 'bad status'"),
    ((export(status=None),), HEADER, "line 2: bad status None"),
    ((export(thread=2),), HEADER, "line 2: bad thread 2"),
    ((imp(ret=None, status="SUCCESS"),), HEADER, "line 2: pending call (ret null) has a status"),
    ((imp(),), dict(HEADER, version=2), "line 1: unsupported version 2"),
    ((imp(),), dict(HEADER, format="other"), "line 1: header format is not"),
    ((imp(),), {"format": "psa-stress-history", "version": 1}, "line 1: header has no key_store"),
])
def test_rule_violations_name_the_line(records, header, message):
    assert error_of(lines(*records, header=header, complete=True)).startswith(message)


def derive(bits):
    return {"thread": 0, "seq": 0, "op": "derive", "call": 1, "ret": 2, "status": "SUCCESS",
            "args": {"lifetime": 0, "id": 0, "type": 0x1001, "bits": bits, "usage": 1,
                     "alg": 0, "kdf": "HKDF-SHA256", "secret": "00", "salt": "", "info": ""},
            "out": {"key": KEY}}


@pytest.mark.parametrize("records, header, message", [
    ((export(status=["x"]),), HEADER, "line 2: bad status ['x']"),
    ((export(thread=[0]),), HEADER, "line 2: bad thread [0]"),
    ((imp(op={"a": 1}),), HEADER, "line 2: unknown op {'a': 1}"),
    ((imp(args=dict(imp()["args"], bits=10 ** 30)),), HEADER,
     "line 2: args.bits must be an integer in 0..65535"),
    ((derive(65288),), HEADER, "line 2: args.bits must be at most 65280"),
    ((imp(),), dict(HEADER, faults=[1]), "line 1: header faults must be an object"),
    ((imp(),), dict(HEADER, faults={"spec": 5}), "line 1: header faults must be an object"),
])
def test_fields_of_the_wrong_type_or_range_are_named(records, header, message):
    """Values the checker could not digest (unhashable, out of range) are history errors."""
    assert error_of(lines(*records, header=header)).startswith(message)


def test_deeply_nested_line_is_a_history_error():
    text = lines(imp())
    text[1] = "[" * 100_000 + "]" * 100_000
    assert error_of(text) == "line 2: not a history line (nested too deeply)"


def test_end_line_live_must_be_key_ids():
    text = lines(imp())
    text[-1] = json.dumps({"end": {"records": 1, "complete": True, "live": ["0x1"]}})
    assert error_of(text) == "line 3: end line: live must be a list of key ids"


def test_largest_hkdf_derivation_is_accepted():
    assert parse(lines(derive(65280))).calls[0].args["bits"] == 65280


def test_record_missing_a_field():
    record = imp()
    del record["status"]
    assert error_of(lines(record)) == "line 2: record has no 'status'"


def test_end_line_must_count_the_records_and_be_last():
    assert error_of(lines(imp(), count=2)).startswith("line 3: end.records is 2")
    assert error_of(lines(imp()) + [json.dumps(export())]) == "line 4: data after the end line"
    assert error_of([]).startswith("line 1: empty file")


def test_status_names_accept_unnamed_codes():
    history = parse(lines(export(status="STATUS(-123)", out=None)))
    assert history.calls[0].status == "STATUS(-123)" and history.calls[0].out == {}


def test_every_fixture_that_is_not_bad_loads():
    names = [n for n in os.listdir(HISTORIES) if not n.startswith("bad_")]
    assert len(names) >= 18
    for name in names:
        assert load(os.path.join(HISTORIES, name)).calls
