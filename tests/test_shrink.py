"""Shrinking and repro on a real race: the TSan canary of the test driver, also under PCT for
the preemptions.

The canary's race does not depend on the workload, so a correct shrinker must take every
parameter down while the signature stays; a shrinker that lost the signature, or kept a job that
no longer fails, is caught by replaying the minimal job. Edited schedules are checked on the
driver: with no edit they replay the exact run, with every preemption removed the run has none
and another history (an edit the driver ignored is caught there); the shrinker must keep an
edited schedule and pin a minimal one whose exact replay still fails.
"""
import glob
import json
import os
import subprocess

import pytest

from scenarios import catalog
from scenarios.campaign import repro
from scenarios.campaign import schedule
from scenarios.campaign.job import Job
from scenarios.campaign.shrink import Shrinker, reducers, signatures_of
from tests.stress_env import run_py, stock_build
from tests.test_reports import CANARY_SIGNATURE

CANARY_ID = "6fd10c093c6e"


def test_reducers_only_ever_make_the_job_smaller():
    job = Job(catalog.get("volatile-churn"), 1, ops=64).replace(threads=8)
    for _name, smaller in reducers(job):
        assert smaller.ops <= job.ops and smaller.threads <= job.threads
        assert smaller.scenario.volatile_pool <= job.scenario.volatile_pool
        assert smaller.to_json() != job.to_json()
    floor = Job(catalog.get("volatile-churn"), 1, ops=1).replace(
        threads=1, volatile_pool=1, persistent_ids=1)
    assert reducers(floor) == []
    pct = floor.replace(engine={"sched": "pct"})
    assert [name for name, _job in reducers(pct)] == ["pct depth 3 -> 2"]
    assert reducers(pct.replace(engine={"sched": "pct", "pct-depth": "1"})) == []


DRIVE = ("--threads", "4", "--ops", "600", "--seed", "7", "--persistent-percent", "30")


def drive(tmp_path, name, *flags):
    """One driver run in ``tmp_path``; (its recorded schedule, its history's call order,
    its summary's nemesis object)."""
    done = subprocess.run([stock_build("tsan").driver(), *DRIVE, *flags,
                           "--schedule-out", f"{name}.txt", "--history", f"{name}.jsonl",
                           "--storage-dir", f"{name}-storage"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, TSAN_OPTIONS="atexit_sleep_ms=0"))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / f"{name}.jsonl", encoding="utf-8") as handle:
        calls = [(r["thread"], r["seq"], r["call"], r["ret"])
                 for r in map(json.loads, handle) if "thread" in r]
    nemesis = json.loads(done.stdout.strip().splitlines()[-1])["nemesis"]
    return schedule.load(tmp_path / f"{name}.txt"), calls, nemesis


def test_an_unedited_schedule_replayed_as_edited_is_the_exact_run(tmp_path):
    recorded, calls, _info = drive(tmp_path, "a", "--sched", "pct")
    schedule.write_edited(recorded, [], tmp_path / "edited.txt")
    replayed, replayed_calls, info = drive(tmp_path, "b", "--replay", "edited.txt")
    assert replayed.steps == recorded.steps and replayed_calls == calls
    assert info["edited"] and info["followed"] == len(recorded.steps) and info["fallbacks"] == 0


def test_removing_preemptions_from_a_schedule(tmp_path):
    recorded, calls, _info = drive(tmp_path, "a", "--sched", "random")
    points = schedule.preemptions(recorded)
    assert len(points) > 100                      # random: a switch at most points
    half = points[::2]
    schedule.write_edited(recorded, half, tmp_path / "half.txt")
    halved, half_calls, info = drive(tmp_path, "b", "--replay", "half.txt")
    assert 0 < len(schedule.preemptions(halved)) <= len(points) - len(half)
    assert info["followed"] > 0 and half_calls != calls
    schedule.write_edited(recorded, points, tmp_path / "none.txt")
    none, none_calls, _info = drive(tmp_path, "c", "--replay", "none.txt")
    assert schedule.preemptions(none) == [] and none_calls != calls


@pytest.mark.slow
def test_shrinking_the_canary_keeps_its_signature(tmp_path):
    build = stock_build("tsan")
    job = Job(catalog.get("volatile-churn"), 5, seconds=1, canary=True).replace(threads=4)
    shrunk = Shrinker(build, str(tmp_path), budget=60).shrink(job, CANARY_SIGNATURE, 5000)
    assert shrunk.reproduced
    assert shrunk.minimal.threads < 4 and shrunk.minimal.ops < 5000
    assert any(step["kept"] for step in shrunk.steps)
    replay = shrunk.minimal.run(build, str(tmp_path / "replay"))
    assert CANARY_SIGNATURE in signatures_of(replay)


@pytest.mark.slow
def test_pct_preemptions_shrink_and_the_minimal_schedule_reproduces(tmp_path):
    build = stock_build("tsan")
    job = Job(catalog.get("volatile-churn"), 5, seconds=1, canary=True,
              engine={"sched": "pct"}).replace(threads=4)
    shrunk = Shrinker(build, str(tmp_path / "shrink"), budget=90).shrink(
        job, CANARY_SIGNATURE, 2000)
    preemptions = shrunk.preemptions
    assert shrunk.reproduced and preemptions["exact_replay"], shrunk.steps
    assert preemptions["after"] < preemptions["before"]
    assert any(step["kept"] and "(schedule edited)" in step["change"] for step in shrunk.steps)
    pinned = schedule.load(shrunk.minimal.engine["replay"])
    assert len(schedule.preemptions(pinned)) == preemptions["after"]
    replay = shrunk.minimal.run(build, str(tmp_path / "replay"))
    assert CANARY_SIGNATURE in signatures_of(replay)
    assert replay.to_json()["failures"] and replay.ops == shrunk.minimal.ops


@pytest.mark.slow
def test_stress_then_repro_from_the_report_alone(tmp_path):
    stressed = run_py("stress", "volatile-churn", "--canary", "--seconds", "1", "--threads", "4",
                      "--shrink-budget", "10", "--reports-dir", str(tmp_path))
    assert stressed.returncode == 1, stressed.stderr
    assert "index.html" in stressed.stdout and CANARY_ID in stressed.stdout
    (directory,) = glob.glob(str(tmp_path / "*-stress"))
    for name in ("summary.json", "summary.md", "index.html", "junit.xml", "results.sarif"):
        assert os.path.isfile(os.path.join(directory, name)), name
    replayed = run_py("repro", directory, "--failure", CANARY_ID, "--replays", "3")
    assert replayed.returncode == 1, replayed.stderr
    assert "reproduced 3/3" in replayed.stdout      # the canary fires on every run
    data, failures = repro.find(CANARY_ID, reports_root=str(tmp_path))
    assert [f["id"] for f in failures] == [CANARY_ID] and data["command"] == "stress"


@pytest.mark.slow
def test_nightly_shards_use_disjoint_seeds_and_merge(tmp_path):
    for shard in ("1/2", "2/2"):
        result = run_py("nightly", "--budget", "9", "--run-seconds", "1", "--shard", shard,
                        "--seed", "100", "--scenarios", "volatile-churn", "--shrink-budget", "0",
                        "--reports-dir", str(tmp_path / "shards"))
        assert result.returncode in (0, 1), result.stderr
    shards = sorted(glob.glob(str(tmp_path / "shards" / "*")))
    assert len(shards) == 2
    merged = run_py("merge", *shards, "--out", str(tmp_path / "merged"), "--json")
    assert merged.returncode in (0, 1), merged.stderr
    data = json.loads(merged.stdout)
    seeds = [run["seed"] for run in data["runs"]]
    assert len(seeds) == len(set(seeds)) >= 2
    assert {s % 2 for s in seeds} == {0, 1}
    for name in ("index.html", "junit.xml", "results.sarif", "summary.json"):
        assert os.path.isfile(tmp_path / "merged" / name)
