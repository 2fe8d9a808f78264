"""The default job's session (scenarios/campaign/session.py, scenarios/cli/commands.py) with a fake driver:
the budget is a wall-clock cap even when checking is slow, every ending (SIGINT, SIGTERM, a
full disk, a harness error) leaves a report of the runs done, output stays bounded, and a new
failure is printed the moment its run is checked.

Known-bad inputs: a fake oracle slower than the session assumes; signals in the middle of a run;
a disk with no room; a run whose final state disagrees on a thousand keys."""
import json
import os
import signal
import time

import pytest

from scenarios.cli import dispatch as cli
from scenarios.cli import commands
from scenarios.campaign import runner
from scenarios.campaign import session
from scenarios.setup.build import Build, Variant
from scenarios.history.schema import OPS
from scenarios.campaign.runner import Failure, RunResult

SLOW_CHECK_RATIO = 3.0       # the fake oracle: checking takes 3 s per stress second
CAPABILITIES = {"mbedtls_version": "3.6.6", "key_store": {"kind": "dynamic", "slot_count": 32},
                "operations": sorted(OPS) + ["init"]}


class FakeTree:
    path, version, origin = "/nonexistent/mbedtls", "3.6.6", "submodule"

    def fingerprint(self):
        return "0" * 16


class FakeDriver:
    """run_scenario's stand-in: sleeps for the stress and a slow check; fails or interrupts
    on request."""

    def __init__(self, fail_every=0, interrupt_at=None, problems=0):
        self.calls = 0
        self.fail_every = fail_every
        self.interrupt_at = interrupt_at     # (run number, signal) to deliver during that run
        self.problems = problems

    def __call__(self, build, scenario, seed, seconds, directory, threads=None,
                 test_build=False, extra=(), ops=None, timeout=None):
        self.calls += 1
        os.makedirs(os.path.join(directory, runner.HISTORY), exist_ok=True)
        if self.interrupt_at and self.interrupt_at[0] == self.calls:
            os.kill(os.getpid(), self.interrupt_at[1])
            time.sleep(1)
        time.sleep(seconds * (1 + SLOW_CHECK_RATIO))
        result = RunResult(scenario.name, seed, build.variant.name, directory, ops=1000,
                           seconds=seconds, ops_per_sec=1000 / seconds)
        if self.fail_every and self.calls % self.fail_every == 0:
            result.failures.append(Failure("violation", "export -> SUCCESS is impossible"))
        if self.problems:
            runner._final_state(result, [f"key {k:#x} is live in the core after t1#2 "
                                         f"destroy({k:#x}) -> SUCCESS" for k in
                                         range(self.problems)])
        return result


@pytest.fixture
def fake(monkeypatch, tmp_path):
    def install(**options):
        driver = FakeDriver(**options)
        monkeypatch.setattr("scenarios.campaign.job.run_scenario", driver)
        monkeypatch.setattr(commands, "find_tree", lambda *a, **k: FakeTree())
        monkeypatch.setattr(session, "ensure_built", lambda variant, tree, log=None:
                            Build(Variant.parse(variant), str(tmp_path / "build"),
                                  _capabilities=CAPABILITIES))
        return driver
    return install


def _summary(tmp_path):
    (directory,) = [d for d in tmp_path.iterdir() if d.name != "build"]
    with open(directory / "summary.json", encoding="utf-8") as handle:
        return json.load(handle), directory


@pytest.mark.slow
def test_the_budget_caps_the_wall_time_when_checking_is_slow(fake, tmp_path, capsys):
    fake()
    started = time.monotonic()
    code = cli.main(["run", "--budget", "8", "--reports-dir", str(tmp_path), "--seed", "1"])
    wall = time.monotonic() - started
    data, _ = _summary(tmp_path)
    assert code == 0 and data["verdict"] == "clean" and data["counts"]["runs"] >= 1
    assert wall <= 8 + 10, f"--budget 8 took {wall:.1f} s"
    assert data["portfolio"]["pairs"] > 0 and data["interrupted"] is None


@pytest.mark.slow
def test_a_new_failure_is_printed_when_found(fake, tmp_path, capsys):
    fake(fail_every=1)
    code = cli.main(["run", "--budget", "8", "--reports-dir", str(tmp_path),
                     "--shrink-budget", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "NEW FAILURE" in err and "repro: python3 run.py stress" in err


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_the_report_of_the_runs_done(fake, tmp_path, signum, code):
    fake(fail_every=1, interrupt_at=(2, signum))
    assert cli.main(["run", "--budget", "60", "--reports-dir", str(tmp_path),
                     "--run-seconds", "0.5"]) == code
    data, directory = _summary(tmp_path)
    assert data["interrupted"] == f"interrupted by {signal.Signals(signum).name}"
    assert data["counts"]["runs"] == 1 and data["verdict"] == "failed"
    kept = {p.name for p in directory.iterdir() if p.is_dir()}
    assert kept == {os.path.basename(data["runs"][0]["directory"])}   # run 2's is swept
    assert signal.getsignal(signum) is not commands._raise_interrupted


def test_a_full_disk_stops_with_a_report_and_exit_2(fake, tmp_path, monkeypatch, capsys):
    fake()
    monkeypatch.setattr(session.shutil, "disk_usage", lambda path: _Usage(10_000_000))
    assert cli.main(["run", "--budget", "30", "--reports-dir", str(tmp_path)]) == 2
    data, _ = _summary(tmp_path)
    assert "free" in data["interrupted"] and data["counts"]["runs"] == 0
    assert "MB free" in capsys.readouterr().err


class _Usage:
    def __init__(self, free):
        self.free = free


def test_one_root_cause_on_many_keys_is_one_failure_and_few_lines(fake, tmp_path, capsys):
    fake(problems=1000)
    code = cli.main(["run", "--budget", "6", "--reports-dir", str(tmp_path),
                     "--shrink-budget", "0", "--run-seconds", "0.5"])
    out, err = capsys.readouterr()
    data, directory = _summary(tmp_path)
    assert code == 1 and data["counts"]["distinct_failures"] == 1
    assert all(len(run["failures"]) == 1 for run in data["runs"])
    assert os.path.getsize(directory / "summary.json") < 200_000
    assert len(out.splitlines()) + len(err.splitlines()) < 40
    assert max(len(line) for line in (out + err).splitlines()) < 400


def test_a_pair_the_driver_refuses_is_skipped_with_its_reason(fake, tmp_path, monkeypatch):
    """A scenario the tree or an engine cannot run (the driver exits 2) is reported as skipped,
    never silently passed, and the rest of the portfolio runs."""
    driver = fake()

    def refusing(build, scenario, seed, seconds, directory, *args, **kwargs):
        if scenario.name == "volatile-churn":
            result = RunResult(scenario.name, seed, build.variant.name, directory)
            result.failures.append(Failure("driver-error", "driver exit code 2: psa-stress: "
                                           "error: no psa_random_reseed in this tree"))
            return result
        return driver(build, scenario, seed, seconds, directory, *args, **kwargs)
    monkeypatch.setattr("scenarios.campaign.job.run_scenario", refusing)
    assert cli.main(["run", "--budget", "8", "--reports-dir", str(tmp_path),
                     "--scenarios", "volatile-churn,derive-copy", "--run-seconds", "0.5"]) == 0
    data, _ = _summary(tmp_path)
    skipped = data["portfolio"]["skipped"]
    assert skipped["volatile-churn@os"].endswith("no psa_random_reseed in this tree")
    assert {run["scenario"] for run in data["runs"]} == {"derive-copy"}


def test_a_scenario_calling_an_operation_the_tree_lacks_is_skipped_under_every_engine(
        fake, tmp_path, monkeypatch):
    fake()
    monkeypatch.setitem(CAPABILITIES, "operations",
                        [op for op in CAPABILITIES["operations"] if op != "reseed"])
    assert cli.main(["run", "--budget", "8", "--reports-dir", str(tmp_path),
                     "--scenarios", "rng-reseed-race,derive-copy", "--run-seconds", "0.5"]) == 0
    data, _ = _summary(tmp_path)
    skipped = data["portfolio"]["skipped"]
    assert {f"rng-reseed-race@{e}" for e in ("os", "delay", "pct", "random")} <= set(skipped)
    assert "reseed" in skipped["rng-reseed-race@os"]
    assert {run["scenario"] for run in data["runs"]} == {"derive-copy"}
