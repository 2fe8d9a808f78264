"""Shrinking and repro on a real race: the TSan canary of the test driver.

The canary's race does not depend on the workload, so a correct shrinker must take every
parameter down while the signature stays; a shrinker that lost the signature, or kept a job that
no longer fails, is caught by replaying the minimal job.
"""
import glob
import json
import os

from scenarios import catalog, repro
from scenarios.job import Job
from scenarios.shrink import Shrinker, reducers, signatures_of
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


def test_shrinking_the_canary_keeps_its_signature(tmp_path):
    build = stock_build("tsan")
    job = Job(catalog.get("volatile-churn"), 5, seconds=1, canary=True).replace(threads=4)
    shrunk = Shrinker(build, str(tmp_path), budget=60).shrink(job, CANARY_SIGNATURE, 5000)
    assert shrunk.reproduced
    assert shrunk.minimal.threads < 4 and shrunk.minimal.ops < 5000
    assert any(step["kept"] for step in shrunk.steps)
    replay = shrunk.minimal.run(build, str(tmp_path / "replay"))
    assert CANARY_SIGNATURE in signatures_of(replay)


def test_stress_then_repro_from_the_report_alone(tmp_path):
    stressed = run_py("stress", "volatile-churn", "--canary", "--seconds", "1", "--threads", "4",
                      "--shrink-budget", "30", "--reports-dir", str(tmp_path))
    assert stressed.returncode == 1, stressed.stderr
    assert "index.html" in stressed.stdout and CANARY_ID in stressed.stdout
    (directory,) = glob.glob(str(tmp_path / "*-stress"))
    for name in ("summary.json", "summary.md", "index.html", "junit.xml", "results.sarif"):
        assert os.path.isfile(os.path.join(directory, name)), name
    replayed = run_py("repro", directory, "--failure", CANARY_ID)
    assert replayed.returncode == 1, replayed.stderr
    count = int(replayed.stdout.split("reproduced ")[1].split("/")[0])
    assert 1 <= count <= 10
    data, failures = repro.find(CANARY_ID, reports_root=str(tmp_path))
    assert [f["id"] for f in failures] == [CANARY_ID] and data["command"] == "stress"


def test_nightly_shards_use_disjoint_seeds_and_merge(tmp_path):
    for shard in ("1/2", "2/2"):
        result = run_py("nightly", "--budget", "2", "--run-seconds", "1", "--shard", shard,
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
