"""The nemesis: serialised scheduling with exact replay, deadlock and divergence reports, TSan
kept live under serialisation, fault injection, and the watchdog.

Every oracle is shown firing on a known-bad input: a hand-edited schedule (divergence), a
test-build-only lock inversion (deadlock), a test-build-only op that never returns (hang), the
racy canary (TSan under pct/random), and a core mutant without the slot-reservation lock.
"""
import json
import os
import subprocess

import pytest

from scenarios import catalog
from scenarios.checker import check
from scenarios.campaign import driver_output
from scenarios.campaign.runner import run_scenario
from tests.stress_env import mutant_build, stock_build
from tests.test_oracles_e2e import UNLOCKED_RESERVE

ENV = dict(os.environ, TSAN_OPTIONS="atexit_sleep_ms=0")


def drive(tmp_path, *flags, test_build=False, timeout=300):
    command = [stock_build("tsan").driver(test_build), *flags]  # fresh temp storage per run
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV,
                          cwd=tmp_path)


def summary(completed):
    return json.loads(completed.stdout.strip().splitlines()[-1])


def stamps(path):
    """The order of calls: (thread, seq, op, call, ret, status) per record."""
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [(r["thread"], r["seq"], r["op"], r["call"], r["ret"], r["status"])
            for r in records if "thread" in r]


RUN = ("--threads", "4", "--ops", "1500", "--seed", "7", "--persistent-percent", "30")


@pytest.mark.parametrize("engine", ["pct", "random"])
def test_same_seed_and_replay_reproduce_the_history(tmp_path, engine):
    runs = []
    for name, extra in (("a", ["--schedule-out", "s.txt"]), ("b", []),
                        ("c", ["--replay", "s.txt"])):
        done = drive(tmp_path, *RUN, "--sched", engine, "--history", f"{name}.jsonl", *extra)
        assert done.returncode == 0, done.stderr
        runs.append(stamps(tmp_path / f"{name}.jsonl"))
    assert len(runs[0]) == 1500
    assert runs[0] == runs[1] == runs[2]
    header = json.loads(open(tmp_path / "a.jsonl", encoding="utf-8").readline())
    assert header["nemesis"]["engine"] == engine and header["nemesis"]["n"] == 4
    assert summary(done)["nemesis"]["replay"] == "s.txt"


def test_pct_and_random_interleave_differently(tmp_path):
    """The comparison above is not vacuous: another engine gives another order."""
    for name, engine in (("pct", "pct"), ("random", "random")):
        done = drive(tmp_path, *RUN, "--sched", engine, "--history", f"{name}.jsonl")
        assert done.returncode == 0, done.stderr
    assert stamps(tmp_path / "pct.jsonl") != stamps(tmp_path / "random.jsonl")


def test_pct_reports_its_probability_bound(tmp_path):
    done = drive(tmp_path, *RUN, "--sched", "pct", "--pct-depth", "2", "--pct-steps", "500")
    info = summary(done)["nemesis"]
    assert (info["depth"], info["k"], info["n"]) == (2, 500, 4)
    assert info["pct_bound"] == pytest.approx(1 / (4 * 500))
    assert info["rounds"] >= info["steps"] // 500


def test_edited_schedule_diverges(tmp_path):
    assert drive(tmp_path, *RUN, "--sched", "pct", "--schedule-out", "s.txt").returncode == 0
    lines = open(tmp_path / "s.txt", encoding="utf-8").read().splitlines()
    parts = lines[200].split()  # step 199; no canary runs here, so a 'C' step cannot match
    lines[200] = " ".join([parts[0], "C", *parts[2:]])
    (tmp_path / "bad.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = drive(tmp_path, *RUN, "--replay", "bad.txt")
    assert done.returncode == nemesis_exit("DIVERGED")
    assert driver_output.failure(done.stderr)[0] == "replay-diverged"
    assert "at step 199:" in done.stderr


def test_replay_with_other_op_count_diverges(tmp_path):
    assert drive(tmp_path, *RUN, "--sched", "random", "--schedule-out", "s.txt").returncode == 0
    short = [arg if arg != "1500" else "1000" for arg in RUN]
    done = drive(tmp_path, *short, "--replay", "s.txt")
    assert done.returncode == nemesis_exit("DIVERGED"), done.stderr


def test_replay_with_other_seed_is_refused(tmp_path):
    assert drive(tmp_path, *RUN, "--sched", "pct", "--schedule-out", "s.txt").returncode == 0
    done = drive(tmp_path, "--threads", "4", "--ops", "1500", "--seed", "8", "--replay", "s.txt")
    assert done.returncode == 2 and "seed 7" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def nemesis_exit(name):
    header = open(os.path.join(os.path.dirname(__file__), "..", "harness", "nemesis", "nemesis.h"),
                  encoding="utf-8").read()
    for line in header.splitlines():
        if line.startswith(f"#define NEMESIS_EXIT_{name} "):
            return int(line.split()[2])
    raise AssertionError(name)


def test_lock_inversion_is_a_deadlock_with_wait_for_state(tmp_path):
    done = drive(tmp_path, "--threads", "2", "--ops", "400", "--sched", "random",
                 "--faults", "inversion", test_build=True)
    assert done.returncode == nemesis_exit("DEADLOCK"), done.stderr[-2000:]
    kind, message, details = driver_output.failure(done.stderr)
    assert kind == "deadlock" and "no runnable thread" in message
    assert "waits for key_slot" in details or "waits for globaldata" in details
    assert "held by thread" in details and "faults_op_boundary" in details


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["os", "pct"])
def test_watchdog_reports_a_hang_with_stacks(tmp_path, engine):
    result = run_scenario(stock_build("tsan"), catalog.get("volatile-churn"), seed=1, seconds=30,
                          directory=str(tmp_path), threads=2, test_build=True,
                          extra=["--faults", "hang", "--sched", engine, "--watchdog", "2"])
    hangs = [f for f in result.failures if f.kind == "hang"]
    assert hangs, result.failures
    assert "no call completed in 2 s" in hangs[0].message
    assert "faults_op_boundary" in hangs[0].details and "Thread" in hangs[0].details


@pytest.mark.parametrize("engine", ["delay", "pct", "random"])
def test_canary_is_reported_under_every_engine(tmp_path, engine):
    result = run_scenario(stock_build("tsan"), catalog.get("volatile-churn"), seed=3, seconds=1,
                          directory=str(tmp_path), threads=2, test_build=True,
                          extra=["--canary", "--sched", engine])
    assert {f.kind for f in result.failures} == {"tsan"}, result.failures
    assert any("canary" in f.details for f in result.failures)


def test_allocation_faults_give_insufficient_memory_and_the_checker_accepts(tmp_path):
    done = drive(tmp_path, *RUN, "--sched", "random", "--faults", "alloc=0.05",
                 "--history", "h.jsonl")
    assert done.returncode == 0, done.stderr
    assert summary(done)["faults"]["alloc_failures"] > 0
    statuses = {record[5] for record in stamps(tmp_path / "h.jsonl")}
    assert "INSUFFICIENT_MEMORY" in statuses
    assert check.check_file(str(tmp_path / "h.jsonl")).verdict == "ok"


def test_mutex_fault_gives_service_failure_and_stops_the_run(tmp_path):
    done = drive(tmp_path, *RUN, "--sched", "pct", "--faults", "mutex=0.01",
                 "--history", "h.jsonl")
    assert done.returncode == 0, done.stderr
    faults = summary(done)["faults"]
    assert faults["mutex_failures"] >= 1 and faults["stopped_by_fault"] is True
    records = stamps(tmp_path / "h.jsonl")
    assert len(records) < 1500
    assert "SERVICE_FAILURE" in {record[5] for record in records}


def test_bad_nemesis_flags_are_one_line_errors(tmp_path):
    for flags in (["--sched", "chaos"], ["--faults", "mutex=2"], ["--faults", "disk=0.1"],
                  ["--faults", "storage=1.5"], ["--faults", "storage-delay=x"],
                  ["--schedule-out", "s.txt"], ["--replay", "missing.txt"]):
        done = drive(tmp_path, *flags)
        assert done.returncode == 2, flags
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_pct_catches_the_unlocked_slot_reservation(tmp_path):
    result = run_scenario(mutant_build("tsan", UNLOCKED_RESERVE), catalog.get("volatile-churn"),
                          seed=5, seconds=60, directory=str(tmp_path / "run"), ops=1000,
                          extra=["--sched", "pct"])
    assert {f.kind for f in result.failures} & {"tsan", "violation"}, result.failures
