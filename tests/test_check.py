"""scenarios/checker/check.py end to end: hand-made fixtures and randomised linearizable histories."""
import importlib.util
import json
import os
import random

import pytest

from scenarios.model import materials
from scenarios.checker.check import check_file, check_history, format_text
from scenarios.history.reader import HistoryError, parse

HERE = os.path.dirname(__file__)
HISTORIES = os.path.join(HERE, "histories")


def _load_bench():
    """bench/bench_checker.py, whose simulator the tests below reuse."""
    path = os.path.join(HERE, "..", "bench", "bench_checker.py")
    spec = importlib.util.spec_from_file_location("bench_checker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def fixture(name):
    return os.path.join(HISTORIES, name + ".jsonl")


# violation fixture -> (kind, key, lines of the calls the window must contain, message part)
VIOLATIONS = {
    "violation_double_destroy": ("linearizability", 0x40000001, {3, 4}, "nothing to destroy"),
    "violation_export_other_key": ("linearizability", 0x40000001, {2, 4}, "material"),
    "violation_persistent_double_import": ("linearizability", 7, {2, 3}, "already present"),
    "violation_seen_before_creation": ("linearizability", 0x40000001, {2}, "state: ABSENT"),
    "violation_generate_two_materials": ("linearizability", 0x40000001, {3, 4}, "material"),
    "violation_wrong_attributes": ("linearizability", 0x40000001, {3}, "bits=256"),
    "violation_export_after_destroy": ("linearizability", 0x40000001, {3, 4}, "ABSENT"),
    "violation_corruption_detected": ("static", 0x40000001, {3}, "CORRUPTION_DETECTED"),
    "violation_copy_wrong_bytes": ("linearizability", 0x40000003, {4, 5}, "material"),
    # generate K; export K -> D; copy K -> T; export T -> C != D: T holds K's bytes
    "violation_copy_of_generated_other_bytes": ("material", 0x40000002, {2, 3, 4, 5},
                                                "a copy holds its source's bytes"),
    # generate K; copy K -> T; export T -> C; export K -> D != C: the copy's bytes bind K's
    "violation_copy_of_generated_bound_later": ("material", 0x40000001, {2, 4, 5},
                                                "a copy holds its source's bytes"),
    # two copies of one generated key export different bytes
    "violation_two_copies_of_generated_differ": ("material", 0x40000003, {2, 5, 6},
                                                 "a copy holds its source's bytes"),
    # a copy overlapping 40 instances of its source (no cap widens it to "any key") exports
    # bytes none of them had
    "violation_copy_of_forty_instances_other_bytes": ("linearizability", 0x40000002, {2, 83},
                                                      "material ffff"),
    # a generated P-256 pair K copied to T; T's public key is P; K exports a scalar of another
    "violation_copy_of_generated_pair_other_public": ("material", 0x40000001, {2, 3, 4, 5},
                                                      "public key"),
    # the same with a signature made by T that the scalar K exports cannot have made
    "violation_copy_of_generated_pair_signed_by_other": ("material", 0x40000001, {2, 3, 4, 5},
                                                         "public key"),
    # T copies one of two instances (two known materials); U copies T: T and U export
    # different bytes, though they share one material
    "violation_copy_of_a_copy_of_two_instances_differs": ("material", 0x40000003, {7, 8},
                                                          "a copy holds"),
    # K destroyed twice, then re-created and copied: only K is violated, its copy is legal
    "violation_only_the_guilty_key": ("linearizability", 0x40000001, {3, 4},
                                      "nothing to destroy"),
    # a DERIVE key generated then exported as X; a key derived from it exports bytes that are
    # not HKDF-SHA-256 of X
    "violation_derived_from_generated_wrong_bytes": ("material", 0x40000002, {4, 5},
                                                     "HKDF"),
    # a P-256 pair derived from the driver's secret exports k, the HKDF stream's first 32
    # bytes, not the private key k + 1 Mbed TLS makes of them (crypto_ref.derived_private_key)
    "violation_derived_pair_exports_other_scalar": ("linearizability", 0x40000001, {2, 3},
                                                    "material"),
}
LINEARIZABLE = sorted(name[:-6] for name in os.listdir(HISTORIES) if name.startswith("ok_"))


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_violation_fixture_is_rejected_with_its_culprits_in_the_window(name):
    kind, key, culprit_lines, words = VIOLATIONS[name]
    result = check_file(fixture(name))
    assert result.verdict == "violation"
    assert len(result.violations) == 1
    violation = result.violations[0]
    assert (violation.kind, violation.key) == (kind, key)
    assert words in violation.message
    assert culprit_lines <= {call["line"] for call in violation.window}
    assert len(violation.window) <= (5 if kind == "material" else 4)   # material: 2 links
    text = format_text(result)
    assert "VIOLATION" in text and f"[{kind}] key {key:#x}" in text


def test_linearizable_fixtures_exist():
    assert len(LINEARIZABLE) >= 9


@pytest.mark.parametrize("name", LINEARIZABLE)
def test_linearizable_fixture_is_accepted(name):
    result = check_file(fixture(name))
    assert result.verdict == "ok", format_text(result)
    assert result.partitions_violated == result.partitions_unknown == 0
    assert result.partitions_ok >= 1


def test_bad_input_raises_history_error():
    with pytest.raises(HistoryError, match="line 5: truncated"):
        check_file(fixture("bad_truncated"))


def test_report_json_shape():
    result = check_file(fixture("violation_double_destroy"))
    report = json.loads(json.dumps(result.to_json()))
    assert report["verdict"] == "violation" and report["calls"] == 3
    assert report["partitions"] == {"ok": 0, "violated": 1, "unknown": 0}
    violation = report["violations"][0]
    assert violation["kind"] == "linearizability" and violation["key"] == 0x40000001
    assert [c["line"] for c in violation["window"]] == [2, 3, 4]   # import, destroy, destroy
    assert violation["state"] == "ABSENT" and violation["prefix"] == []


def test_budget_exhaustion_makes_the_verdict_unknown():
    records = bench.simulate(seed=5, calls=400, threads=6, volatile_pool=2, persistent_ids=1)
    history = as_history(records, 6)
    assert check_history(history).verdict == "ok"
    result = check_history(history, budget=50)
    assert result.verdict == "unknown" and result.partitions_unknown >= 1
    assert "search budget of 50 model steps exhausted" in format_text(result)
    assert {u["key"] for u in result.to_json()["unknown"]} == {u["key"] for u in result.unknown}


def test_one_key_s_verdict_never_changes_another_key_s():
    """A violated or unknown key's later creates still count as copy sources: its legal copy
    stays legal, and a smaller budget turns nothing into a violation."""
    result = check_file(fixture("violation_only_the_guilty_key"))
    assert (result.partitions_ok, result.partitions_violated) == (1, 1)
    legal = fixture("ok_copy_after_source_ran_out_of_budget")
    verdicts = {check_file(legal, budget=budget).verdict for budget in range(1, 12)}
    assert verdicts == {"unknown", "ok"}
    assert not check_file(legal, budget=2).violations


def as_history(records, threads, complete=True):
    header = {"format": "psa-stress-history", "version": 1, "threads": threads,
              "key_store": {"kind": "dynamic", "slot_count": 32}}
    end = {"end": {"records": len(records), "complete": complete}}
    return parse([json.dumps(obj) for obj in (header, *records, end)])


def test_randomised_linearizable_histories_are_accepted():
    """Simulated runs (LP inside each interval) are linearizable by construction."""
    rng = random.Random(7)
    statuses = set()
    for case in range(300):
        threads = rng.randint(2, 6)
        cut = rng.choice((None, None, 0.7))
        records = bench.simulate(seed=case, calls=rng.randint(10, 60), threads=threads,
                                 volatile_pool=rng.randint(1, 3),
                                 persistent_ids=rng.randint(0, 2), cut=cut)
        statuses.update((r["op"], r["status"]) for r in records)
        result = check_history(as_history(records, threads, complete=cut is None))
        assert result.verdict == "ok", (case, format_text(result))
    for expected in [("copy", "SUCCESS"), ("export", "SUCCESS"), ("destroy", "SUCCESS"),
                     ("import", "ALREADY_EXISTS"), ("export", "INVALID_HANDLE"),
                     ("copy", "NOT_PERMITTED"), ("export", None), ("generate", None)]:
        assert expected in statuses   # the generator exercised it


def test_randomised_corrupted_histories_are_rejected():
    """Without generate/copy every material is known: bytes no key ever had are rejected."""
    mix = (("import", 3), ("destroy", 3), ("export", 5), ("get_attributes", 2))
    rejected = 0
    for case in range(60):
        records = bench.simulate(seed=1000 + case, calls=80, threads=4, volatile_pool=3,
                                 persistent_ids=1, mix=mix)
        exports = [r for r in records if r["op"] == "export" and r["status"] == "SUCCESS"]
        if not exports:
            continue
        victim = exports[len(exports) // 2]
        victim["out"]["material"] = "ff" * 16
        result = check_history(as_history(records, 4))
        assert result.verdict == "violation", case
        lines = {call["line"] for v in result.violations for call in v.window}
        assert records.index(victim) + 2 in lines
        rejected += 1
    assert rejected >= 40


def _service_failure_history(tmp_path, faults):
    header = {"format": "psa-stress-history", "version": 1,
              "key_store": {"kind": "dynamic", "slot_count": 32}}
    if faults:
        header["faults"] = {"spec": "mutex=0.01"}
    attrs = {"lifetime": 0, "id": 0, "type": 9216, "bits": 128, "usage": 3, "alg": 0}
    lines = [header,
             {"thread": 0, "seq": 0, "op": "import", "call": 1, "ret": 2, "status": "SUCCESS",
              "args": dict(attrs, material="00" * 16), "out": {"key": 0x40000001}},
             {"thread": 0, "seq": 1, "op": "destroy", "call": 3, "ret": 4,
              "status": "SERVICE_FAILURE", "args": {"key": 0x40000001}},
             {"end": {"records": 2, "complete": True}}]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_service_failure_is_an_unknown_effect_only_under_injected_lock_failures(tmp_path):
    assert check_file(_service_failure_history(tmp_path, faults=True)).verdict == "ok"
    result = check_file(_service_failure_history(tmp_path, faults=False))
    assert result.verdict == "violation"
    assert result.violations[0].kind == "static"


def _double_destroys(keys):
    attrs = {"lifetime": 0, "id": 0, "type": 9216, "bits": 128, "usage": 3, "alg": 0}
    records, stamp = [], 0
    for index, key in enumerate(keys):
        for seq, (op, args, out) in enumerate((
                ("import", dict(attrs, material=f"{index:02x}" * 16), {"key": key}),
                ("destroy", {"key": key}, None), ("destroy", {"key": key}, None))):
            records.append({"thread": index, "seq": seq, "op": op, "call": stamp + 1,
                            "ret": stamp + 2, "status": "SUCCESS", "args": args,
                            **({"out": out} if out else {})})
            stamp += 2
    return as_history(sorted(records, key=lambda r: r["call"]), len(keys))


def test_text_report_has_one_block_per_root_cause_and_all_shows_each():
    result = check_history(_double_destroys([0x40000001, 0x40000002, 0x40000003]))
    assert len(result.violations) == 3 and len({v.cause for v in result.violations}) == 1
    assert result.violations[0].cause == ("linearizability: destroy -> SUCCESS breaks rule "
                                          "destroy (scenarios/model/key_store.py)")
    short, full = format_text(result), format_text(result, all=True)
    assert short.count("root cause 1/1") == 1 and "(3 violations; --all shows each)" in short
    assert short.count("[linearizability] key") == 1
    assert full.count("[linearizability] key") == 3
    assert result.to_json()["violations"][0]["cause"] == result.violations[0].cause


def test_check_compares_the_end_line_s_live_set():
    """An end line listing a key the history destroyed for good is a final-state violation of
    ``check`` itself; without ``final`` only the calls are checked."""
    path = fixture("violation_live_lists_a_destroyed_key")
    result = check_file(path)
    assert result.verdict == "violation"
    assert [v.kind for v in result.violations] == ["final-state"]
    assert "[final-state]" in format_text(result)
    assert check_file(path, final=False).verdict == "ok"
    assert check_file(fixture("ok_live_agrees")).verdict == "ok"


def test_every_approximation_is_counted_per_key():
    """A copy of one of two instances, one of unknown material, is not tied to its source's
    bytes; a pending create with no id is a create of every volatile key: both are counted in
    the verdict, which stays ok."""
    result = check_file(fixture("ok_copy_of_generated_two_candidates"))
    assert result.verdict == "ok"
    assert result.weakened == [{"key": 0x40000002, "reason": materials.SEVERAL_SOURCES}]
    assert "1 key not fully checked: copied or derived from one of several" in format_text(result)
    assert result.to_json()["weakened"] == result.weakened
    pending = check_file(fixture("ok_pending_create_unseen"))
    assert {w["reason"] for w in pending.weakened} == {materials.WILDCARD}
    assert check_file(fixture("ok_copy_of_generated_shares_bytes")).weakened == []
    use = check_file(fixture("ok_mac_on_generated_key_accepts_any_output"))
    assert use.weakened == [{"key": 0x40000001, "reason": materials.UNBOUND_USE}]


# K holds A; a copy C of K (3..20) overlaps a destroy of K and a re-import of K with B (5..30);
# an export of K fails INVALID_HANDLE at 21..22, so B was created after C returned: C read A,
# and its target T must hold A, yet T exports B. Not linearizable (tests/bruteforce.py), but
# each partition alone is: K's reads A, T's create may be a copy of A or of B. Accepted, and T
# is counted as not fully checked (docs/checker.md §8, first approximation).
SPLIT_FIXTURE = "ok_copy_read_and_create_checked_apart"


def test_a_copy_checked_in_two_partitions_is_counted():
    result = check_file(fixture(SPLIT_FIXTURE))
    assert result.verdict == "ok"
    assert result.weakened == [{"key": 0x40000002, "reason": materials.SPLIT}]
    assert result.to_json()["weakened"] == result.weakened
    assert "1 key not fully checked: copied or derived while its source changed" in \
        format_text(result)
    # one candidate source, created before the copy was invoked (destroyed meanwhile): exact
    assert check_file(fixture("ok_copy_source_destroyed")).weakened == []


def test_a_key_pair_derived_from_a_stored_key_is_counted(tmp_path):
    """Its material is not computed from its secret's (only raw bytes are): the C core counts
    it under the same reason (scenarios/checker/fast_check.py)."""
    with open(fixture("ok_derived_from_generated_hkdf_of_its_bytes"), encoding="utf-8") as stream:
        lines = [json.loads(line) for line in stream]
    assert check_history(parse([json.dumps(line) for line in lines])).weakened == []
    lines[2]["args"].update(type=0x7112, bits=256)     # an ECC P-256 key pair
    lines[3] = dict(lines[4], seq=2)                   # no export of it (a scalar): its secret's
    del lines[4]
    lines[-1]["end"]["records"] -= 1
    result = check_history(parse([json.dumps(line) for line in lines]))
    assert result.verdict == "ok"
    assert result.weakened == [{"key": 0x40000002, "reason": materials.UNTIED_DERIVATION}]


def test_a_check_past_its_deadline_stops_and_keeps_only_what_it_decided():
    """A deadline (the job's budget) stops the Python path every DEADLINE_EVERY calls: the
    keys already decided violated stay violated, no key counts as ok, the cut is said."""
    import time
    from scenarios.checker.check import DEADLINE_EVERY
    keys = [0x40000001 + index for index in range(2000)]
    full = check_history(_double_destroys(keys))
    assert full.cut is None and len(full.violations) == 2000
    result = check_history(_double_destroys(keys), deadline=time.monotonic() - 1)
    assert result.cut == DEADLINE_EVERY - 1 and result.verdict == "violation"
    assert 0 < len(result.violations) < 2000 and result.partitions_ok == 0
    assert {v.key for v in result.violations} <= {v.key for v in full.violations}
    assert f"the check stopped at the job's budget after {DEADLINE_EVERY - 1} calls" \
        in format_text(result)
    clean = as_history(bench.simulate(seed=3, calls=5000, threads=4, volatile_pool=2,
                                      persistent_ids=1), 4)
    cut = check_history(clean, deadline=time.monotonic() - 1)
    assert cut.verdict == "unknown" and not cut.violations and cut.to_json()["cut"]


def test_a_run_whose_check_was_cut_with_nothing_found_is_not_judged(monkeypatch, tmp_path):
    from scenarios.campaign import runner
    from scenarios.checker import check as check_module
    from scenarios.checker.check import CheckResult
    cut = CheckResult("h", 10, True)
    cut.verdict, cut.cut, cut.partitions_unknown = "unknown", 4095, 3
    monkeypatch.setattr(check_module, "check_file", lambda *a, **k: cut)
    monkeypatch.setattr(runner.final_state, "check_file", lambda path: [])
    monkeypatch.setattr(runner.coverage, "of_history", lambda path: None)
    result = runner.RunResult("s", 1, "tsan", str(tmp_path))
    runner._check_history(result, str(tmp_path), deadline=0)
    assert result.clean and result.check["cut"] == 4095
    cut.violations.append(check_module.Violation("linearizability", 1, "m", []))
    runner._check_history(result, str(tmp_path), deadline=0)
    assert not result.clean
