"""Concurrency coverage (scenarios/checker/coverage.py): operation pairs counted from a history,
merged, summarised against the stated universe; the driver's key-slot hand-offs and slot
transitions as the history's end gives them; the report section. The driver's own counting:
tests/test_coverage_driver.py."""
import json
import os

import pytest

from scenarios.checker import coverage
from scenarios.history import binary as history_binary
from scenarios.campaign import runner

K = 0x40000001
AES = {"type": 9216, "bits": 128, "usage": 3, "alg": 0}
HEADER = {"format": "psa-stress-history", "version": 1,
          "key_store": {"kind": "dynamic", "slot_count": 32}, "threads": 3}


def _call(thread, seq, op, call, ret, status, args, out=None):
    record = {"thread": thread, "seq": seq, "op": op, "call": call, "ret": ret,
              "status": status, "args": args}
    if out:
        record["out"] = out
    return record


def _import(lifetime, key_id):
    return {"lifetime": lifetime, "id": key_id, **AES, "material": "00" * 16}


# t0: import K [1,2], export K [3,8], export K [11,12] (after every other call on K returned),
#     get_attributes of persistent id 1 [14,16];
# t1: get_attributes K [4,6], copy from K [7,9] (starts after get_attributes returned: 6 < 7);
# t2: destroy K [5,10], persistent import of id 1 [13,15].
CALLS = [
    _call(0, 0, "import", 1, 2, "SUCCESS", _import(0, 0), {"key": K}),
    _call(0, 1, "export", 3, 8, "SUCCESS", {"key": K}, {"material": "00" * 16}),
    _call(1, 0, "get_attributes", 4, 6, "SUCCESS", {"key": K},
          {"lifetime": 0, "id": K, **AES}),
    _call(2, 0, "destroy", 5, 10, "SUCCESS", {"key": K}),
    _call(1, 1, "copy", 7, 9, "INVALID_HANDLE",
          {"src": K, "lifetime": 0, "id": 0, "usage": 3, "alg": 0}),
    _call(0, 2, "export", 11, 12, "INVALID_HANDLE", {"key": K}),
    _call(2, 1, "import", 13, 15, "ALREADY_EXISTS", _import(1, 1)),
    _call(0, 3, "get_attributes", 14, 16, "INVALID_HANDLE", {"key": 1}),
]
EXPECTED = {
    "export:SUCCESS": {"get_attributes:SUCCESS": 1, "destroy:SUCCESS": 1,
                       "copy:INVALID_HANDLE": 1},
    "get_attributes:SUCCESS": {"destroy:SUCCESS": 1},
    "destroy:SUCCESS": {"copy:INVALID_HANDLE": 1},
    "import:ALREADY_EXISTS": {"get_attributes:INVALID_HANDLE": 1},
}


def write_history(path, calls, end=None):
    with open(path, "w", encoding="utf-8") as stream:
        for obj in [HEADER, *calls, {"end": end or {"records": len(calls), "complete": True}}]:
            stream.write(json.dumps(obj) + "\n")
    return str(path)


def test_pairs_of_a_hand_made_history_are_exact(tmp_path):
    found = coverage.of_history(write_history(tmp_path / "h.jsonl", CALLS))
    assert found["pairs"] == EXPECTED
    assert (found["calls"], found["pending"]) == (8, 0)


def test_calls_that_do_not_overlap_are_not_counted(tmp_path):
    """Known-bad input: get_attributes [4,6] and copy [7,9] share K but do not overlap, nor do
    the second export and anything; a sweep that ignored returns would count them."""
    pairs = coverage.of_history(write_history(tmp_path / "h.jsonl", CALLS))["pairs"]
    assert "copy:INVALID_HANDLE" not in pairs.get("get_attributes:SUCCESS", {})
    assert "export:INVALID_HANDLE" not in pairs
    assert all("export:INVALID_HANDLE" not in row for row in pairs.values())
    # and calls on different keys never pair, even when they overlap (t0 [14,16] vs K's calls)
    serial = [CALLS[0], CALLS[1], _call(1, 0, "export", 9, 10, "SUCCESS", {"key": K},
                                        {"material": "00" * 16})]
    assert coverage.of_history(write_history(tmp_path / "s.jsonl", serial))["pairs"] == {}


def test_pending_calls_are_counted_apart(tmp_path):
    calls = CALLS[:2] + [_call(1, 0, "destroy", 4, None, None, {"key": K})]
    found = coverage.of_history(write_history(tmp_path / "h.jsonl", calls,
                                              {"records": 3, "complete": False}))
    assert (found["calls"], found["pending"], found["pairs"]) == (3, 1, {})


def test_merge_adds_counts_and_is_associative():
    a = {"calls": 3, "pending": 0, "pairs": {"x:SUCCESS": {"y:SUCCESS": 1}},
         "handoffs": {"x": {"y": 2}}}
    b = {"calls": 4, "pending": 1, "pairs": {"x:SUCCESS": {"y:SUCCESS": 2, "z:SUCCESS": 1}},
         "handoffs": {}}
    c = {"calls": 5, "pending": 0, "pairs": {"z:SUCCESS": {"x:SUCCESS": 7}},
         "handoffs": {"y": {"x": 1}, "x": {"y": 1}},
         "transitions": {"FILLING>FULL": {"alone": 2}}}
    left = coverage.merge(coverage.merge(a, b), c)
    assert left == coverage.merge(a, coverage.merge(b, c)) == coverage.merge(c, coverage.merge(b, a))
    assert left["pairs"] == {"x:SUCCESS": {"y:SUCCESS": 3, "z:SUCCESS": 1},
                             "z:SUCCESS": {"x:SUCCESS": 7}}
    assert left["handoffs"] == {"x": {"y": 3}, "y": {"x": 1}}
    assert left["transitions"] == {"FILLING>FULL": {"alone": 2}}
    assert (left["calls"], left["pending"]) == (12, 1)
    assert coverage.merge(None, a) == a == coverage.merge(a, None)
    assert a["pairs"] == {"x:SUCCESS": {"y:SUCCESS": 1}}       # inputs left unchanged


def test_summary_is_a_fraction_of_the_stated_universe(tmp_path):
    found = coverage.of_history(write_history(tmp_path / "h.jsonl", CALLS))
    found["pairs"]["import:INSUFFICIENT_MEMORY"] = {"export:SUCCESS": 1}   # a fault's status
    pairs = coverage.summary(found)["pairs"]
    outcomes = coverage.universe_outcomes()
    assert pairs["total"] == len(outcomes) ** 2 == len(coverage.universe()["pairs"])
    assert pairs["covered"] == 6
    assert "export:SUCCESS > destroy:SUCCESS" not in pairs["uncovered"]
    assert "destroy:SUCCESS > export:SUCCESS" in pairs["uncovered"]
    assert len(pairs["uncovered"]) == pairs["uncovered_count"] == pairs["total"] - 6
    assert pairs["outside"] == ["import:INSUFFICIENT_MEMORY > export:SUCCESS"]
    limited = coverage.summary(found, limit=10)["pairs"]
    assert limited["uncovered"] == pairs["uncovered"][:10]
    assert limited["uncovered_count"] == pairs["uncovered_count"]
    assert limited["covered"] == 6 and limited["outside_count"] == 1
    assert "import:INSUFFICIENT_MEMORY" not in outcomes       # only faults produce it
    assert {"copy:SUCCESS", "destroy:INVALID_HANDLE", "import:ALREADY_EXISTS"} <= set(outcomes)
    assert not any(o.startswith(("random:", "init:")) for o in outcomes)   # no key id


def test_newly_covered_lists_what_the_later_one_adds():
    before = {"pairs": {"a:SUCCESS": {"b:SUCCESS": 1}}, "handoffs": {}}
    after = {"pairs": {"a:SUCCESS": {"b:SUCCESS": 5, "c:SUCCESS": 1}}, "handoffs": {"a": {"b": 1}}}
    assert coverage.newly_covered(before, after) == {"pairs": ["a:SUCCESS > c:SUCCESS"],
                                                     "handoffs": ["a > b"], "transitions": []}
    assert coverage.newly_covered(after, before) == {"pairs": [], "handoffs": [],
                                                     "transitions": []}


# The end of a history as the driver writes it: hand-offs by side, transitions by contention.
END = {"records": 8, "complete": True,
       "handoffs": {"destroy@psa_destroy_key": {"export@psa_get_and_lock_key_slot": 3},
                    "export@psa_unregister_read_under_mutex": {"destroy@psa_destroy_key": 2},
                    "export": {"destroy": 1}},            # an older driver's side: outside
       "transitions": {"FULL>PENDING_DELETION": {"alone": 4, "contended": 1},
                       "PENDING_DELETION>EMPTY": {"alone": 5},
                       "FULL>EMPTY(teardown)": {"alone": 9}}}      # not a transition counted


def test_hand_offs_and_transitions_of_a_hand_made_end_are_read_and_summarised(tmp_path):
    found = coverage.of_history(write_history(tmp_path / "h.jsonl", CALLS, END))
    assert found["handoffs"] == END["handoffs"]
    assert found["transitions"] == END["transitions"]
    summary = coverage.summary(found)
    sides = coverage.universe_sides()
    assert summary["handoffs"]["total"] == len(sides) ** 2
    assert summary["handoffs"]["covered"] == 2
    assert summary["handoffs"]["outside"] == ["export > destroy"]
    assert "destroy@psa_destroy_key > export@psa_get_and_lock_key_slot" not in \
        summary["handoffs"]["uncovered"]
    assert {"destroy@psa_destroy_key", "import@psa_fail_key_creation", "close@psa_close_key",
            "copy@psa_unregister_read_under_mutex"} <= set(sides)
    assert "import@psa_destroy_key" not in sides and "close@psa_destroy_key" not in sides
    transitions = summary["transitions"]
    assert transitions["total"] == 14 and transitions["covered"] == 3
    assert transitions["outside"] == ["FULL>EMPTY(teardown) > alone"]
    assert "FULL>PENDING_DELETION > contended" not in transitions["uncovered"]
    assert "PENDING_DELETION>EMPTY > contended" in transitions["uncovered"]
    # known-bad input: an end without the members (coverage off, or no end line) gives nothing
    bare = coverage.of_history(write_history(tmp_path / "b.jsonl", CALLS))
    assert bare["handoffs"] == {} and bare["transitions"] == {}


@pytest.mark.slow
def test_a_real_run_stays_inside_the_universe_and_both_readers_agree(tmp_path):
    from scenarios import catalog
    from tests.stress_env import stock_build
    directory = str(tmp_path / "run")
    scenario = catalog.get("volatile-churn")
    result = runner.run_scenario(stock_build(), scenario, 5, 2, directory)
    assert result.clean, result.failures
    found = coverage.of_run(directory)
    assert found["calls"] == result.ops > 0 and found["pairs"]
    assert coverage.summary(found)["pairs"]["outside"] == []
    assert coverage.summary(found)["handoffs"]["outside"] == []
    assert coverage.summary(found)["transitions"]["outside"] == []
    assert found["handoffs"] and found["transitions"]
    jsonl = str(tmp_path / "h.jsonl")
    with open(jsonl, "w", encoding="utf-8") as stream:
        history_binary.to_jsonl(os.path.join(directory, runner.HISTORY), stream)
    assert coverage.of_history(jsonl)["pairs"] == found["pairs"]


def _report(tmp_path, name, histories, end=None):
    """A report directory whose runs' coverage comes from the given hand-made histories (each
    with the end ``end``)."""
    from scenarios import report
    from scenarios.report import summary
    runs = []
    for seed, calls in enumerate(histories):
        result = runner.RunResult("volatile-churn", seed, "tsan", str(tmp_path / name))
        result.coverage = coverage.of_history(write_history(
            tmp_path / f"{name}{seed}.jsonl", calls, end and {**end, "records": len(calls)}))
        runs.append(summary.run_json(result))
    meta = {"command": "test", "variant": "tsan", "budget_seconds": 1, "elapsed_seconds": 1.0,
            "mbedtls": {"path": "/x", "version": "3.6.6", "origin": "submodule",
                        "fingerprint": "0" * 16}, "shards": []}
    data = summary.build(meta, runs)
    directory = str(tmp_path / name)
    os.makedirs(directory)
    report.write(directory, data)
    return directory, data


def test_the_report_merges_runs_and_renders_the_section(tmp_path):
    from scenarios.report import page, summary
    directory, data = _report(tmp_path, "r", [CALLS, CALLS[:4]], END)
    section = data["coverage"]
    assert section["runs"] == 2 and section["calls"] == 12
    assert section["transitions"]["FULL>PENDING_DELETION"] == {"alone": 8, "contended": 2}
    assert section["pairs"]["export:SUCCESS"]["get_attributes:SUCCESS"] == 2
    assert section["pairs"]["export:SUCCESS"]["copy:INVALID_HANDLE"] == 1
    assert section["summary"]["pairs"]["covered"] == 6
    html = page.render(data)
    assert "<h2 id=\"coverage\">Coverage</h2>" in html
    assert "destroy:SUCCESS &gt; export:SUCCESS" in html          # a never-covered outcome pair
    assert "title=\"export &gt; destroy\">2</td>" in html            # a covered op-level cell
    assert "title=\"destroy &gt; export\">6</td>" in html            # hand-offs by operation
    assert "title=\"psa_destroy_key &gt; psa_get_and_lock_key_slot\">6</td>" in html
    assert "title=\"FULL&gt;PENDING_DELETION &gt; contended\">2</td>" in html
    assert "PENDING_DELETION&gt;EMPTY &gt; contended" in html       # never covered, listed
    assert "coverage: operation pairs 6/" in summary.markdown(data)
    assert "slot transitions 3/14" in summary.markdown(data)
    assert summary.load(directory)["coverage"] == section
    # summary.json lists the first uncovered cells and their number; coverage-cells.json all
    listed = section["summary"]["pairs"]
    assert len(listed["uncovered"]) == coverage.LISTED < listed["uncovered_count"]
    with open(os.path.join(directory, "coverage-cells.json"), encoding="utf-8") as stream:
        every = json.load(stream)
    assert len(every["pairs"]["uncovered"]) == listed["uncovered_count"]
    assert every["pairs"]["uncovered"][:coverage.LISTED] == listed["uncovered"]
    assert every["handoffs"]["outside"] == ["export > destroy"]
    assert os.path.getsize(os.path.join(directory, "summary.json")) < 80_000
    del data["coverage"]                                      # a report without: no section
    assert "id=\"coverage\"" not in page.render(data)


def test_run_py_coverage_says_what_the_later_report_added(tmp_path, capsys):
    from scenarios.cli import dispatch as cli
    first, _ = _report(tmp_path, "a", [CALLS[:4]])
    second, _ = _report(tmp_path, "b", [CALLS])
    assert cli.main(["coverage", first, second, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reports"][0]["new"] is None
    assert result["reports"][1]["new"]["pairs"] == [
        "destroy:SUCCESS > copy:INVALID_HANDLE", "export:SUCCESS > copy:INVALID_HANDLE",
        "import:ALREADY_EXISTS > get_attributes:INVALID_HANDLE"]
    assert result["merged"]["pairs"]["covered"] == 6
    assert cli.main(["coverage", second, first]) == 0
    assert "new against the reports before it: 0 operation pairs" in capsys.readouterr().out
    assert cli.main(["coverage", str(tmp_path / "nothing")]) == 2
    assert "not a psa-stress report" in capsys.readouterr().err


def test_runs_keep_cell_counts_and_merged_reports_add_their_sections(tmp_path):
    from scenarios.report import summary
    first, data = _report(tmp_path, "a", [CALLS, CALLS[:4]], END)
    second, other = _report(tmp_path, "b", [CALLS])
    loaded = summary.load(first)
    assert [run["coverage"]["pairs"] for run in loaded["runs"]] == [6, 3]
    assert set(loaded["runs"][0]["coverage"]) == set(coverage.METRICS)
    merged = summary.merge([loaded, summary.load(second)])
    section = merged["coverage"]
    assert section["runs"] == 3 and section["calls"] == data["coverage"]["calls"] + 8
    assert section["pairs"]["export:SUCCESS"]["get_attributes:SUCCESS"] == 3
    assert section["summary"]["pairs"]["covered"] == 6
    assert [run["coverage"] for run in merged["runs"]] == [
        run["coverage"] for run in loaded["runs"] + summary.load(second)["runs"]]
