"""run.py bisect: the commit that introduced a race, found in a local git series of 3.6.6
(tests/bisect_series.py), the number of runs per commit, and bad input."""
import json
import re
import signal
import subprocess
import sys

import pytest

from scenarios.campaign.bisect import (STEP_ABORT, choose_signature, rate_lower_bound, replays_needed,
                              step_main)
from scenarios.campaign.signatures import signature_id
from scenarios.setup.source import SetupError
from tests.bisect_series import FIXTURE, JOB, bisect, git, make_series
from tests.stress_env import REPO, RUN_PY, run_py


def test_replays_needed_from_the_rate():
    assert replays_needed(0, 10) == (0.0, None)
    low, runs = replays_needed(10, 10)
    assert abs(low - 0.05 ** 0.1) < 1e-6 and runs == 4     # (1 - low)^4 <= 1 % < (1 - low)^3
    assert (1 - low) ** runs <= 0.01 < (1 - low) ** (runs - 1)
    low_half, runs_half = replays_needed(5, 10)
    assert low_half < 0.5 and runs_half > runs
    assert rate_lower_bound(3, 10) < rate_lower_bound(6, 10) < rate_lower_bound(9, 10)


def test_the_signature_bisected():
    seen = {"tsan data race: b | c": 7, "tsan data race: a | b": 7, "crash: SIGSEGV": 2}
    calibration = {"runs": 10, "signatures": seen}
    assert choose_signature(None, calibration, None) == "tsan data race: a | b"   # ties: sorted
    assert choose_signature("crash: SIGSEGV", calibration, None) == "crash: SIGSEGV"
    by_id = signature_id("tsan data race: b | c")
    assert choose_signature("crash: SIGSEGV", calibration, by_id) == "tsan data race: b | c"
    with pytest.raises(SetupError, match="does not reproduce on --bad"):
        choose_signature(None, {"runs": 10, "signatures": {}}, None)


def test_a_step_that_fails_in_psa_stress_stops_the_bisection(tmp_path, capsys):
    """git bisect run reads exit 1 as "bad": a harness error must exit 255 (stop) instead."""
    assert step_main([str(tmp_path / "no-state.json")]) == STEP_ABORT
    assert "FileNotFoundError" in capsys.readouterr().err


@pytest.mark.slow
def test_bisect_names_the_commit_that_introduced_the_race():
    bug_at = 4
    commits = make_series(FIXTURE, bug_at)
    result = bisect(FIXTURE, commits[0], "main", *JOB)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert [c["commit"] for c in data["first_bad"]] == [commits[bug_at]]
    assert "without the mutex" in data["first_bad"][0]["subject"]
    assert "psa_start_key_creation" in data["signature"] or data["signature"].startswith("tsan")
    assert data["rate"]["hits"] > 0 and data["runs_per_commit"] >= 1
    verdicts = {step["commit"]: step["role"] for step in data["steps"]}
    assert all(verdicts[c] == "good" for c in commits[1:bug_at] if c in verdicts)
    assert "first bad commit: " + commits[bug_at] in result.stderr
    # the checkout is back on its branch, clean, with no bisection left behind
    assert git(FIXTURE, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(FIXTURE, "status", "--porcelain", "--untracked-files=no") == ""
    assert subprocess.run(["git", "-C", FIXTURE, "bisect", "log"],
                          capture_output=True).returncode != 0


@pytest.mark.slow
def test_a_commit_that_does_not_build_is_skipped():
    """Commit 3 does not build (commit 4 repairs it) and commit 4 adds the race: nothing can
    tell 3 from 4, and bisect says so (both candidates, exit 1)."""
    commits = make_series(FIXTURE, 4, broken_at=3)
    result = bisect(FIXTURE, commits[0], "main", *JOB)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert sorted(c["commit"] for c in data["first_bad"]) == sorted(commits[3:5])
    assert {s["role"] for s in data["steps"] if s["commit"] == commits[3]} == {"skip"}
    assert "could be any of" in result.stderr or "one of" in result.stderr


@pytest.mark.slow
def test_sigterm_mid_bisection_restores_the_checkout(tmp_path):
    commits = make_series(FIXTURE, 4)
    process = subprocess.Popen([sys.executable, RUN_PY, "bisect", "--repo", FIXTURE, "--good",
                                commits[0], "--bad", "main", "--reports-dir", str(tmp_path),
                                *JOB], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    for line in process.stderr:            # a step's verdict: git bisect run is under way
        if re.match(r"bisect: [0-9a-f]{12} (good|bad)", line):
            process.send_signal(signal.SIGTERM)
            break
    rest = process.communicate(timeout=600)[1]
    assert process.returncode == 143, rest
    assert "interrupted by SIGTERM" in rest
    assert git(FIXTURE, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(FIXTURE, "status", "--porcelain", "--untracked-files=no") == ""
    assert subprocess.run(["git", "-C", FIXTURE, "bisect", "log"],
                          capture_output=True).returncode != 0


@pytest.mark.slow
def test_a_bad_commit_without_the_failure_is_refused():
    commits = make_series(FIXTURE, 5)
    result = bisect(FIXTURE, commits[0], commits[3], *JOB, "--calibrate", "3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "does not reproduce on --bad" in result.stderr.strip().splitlines()[-1]
    assert git(FIXTURE, "symbolic-ref", "--short", "HEAD") == "main"


@pytest.mark.slow
def test_a_good_commit_with_the_failure_is_refused():
    commits = make_series(FIXTURE, 2)
    result = bisect(FIXTURE, commits[3], "main", *JOB, "--calibrate", "3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "reproduces on --good" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_failure_of_a_report_is_bisected_by_its_signature(tmp_path):
    """The TARGET is a report directory: its failure's job and signature are bisected."""
    commits = make_series(FIXTURE, 3)
    stress = run_py("stress", *JOB, "--mbedtls-dir", FIXTURE, "--shrink-budget", "0",
                    "--reports-dir", str(tmp_path), "--json")
    assert stress.returncode == 1, stress.stderr[-3000:]
    found = json.loads(stress.stdout)
    (directory,) = tmp_path.iterdir()
    result = bisect(FIXTURE, commits[0], commits[-1], str(directory))
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["signature"] in {f["signature"] for f in found["failures"]}
    assert [c["commit"] for c in data["first_bad"]] == [commits[3]]


@pytest.fixture
def small_repo(tmp_path):
    """A git repository with three commits on main (no Mbed TLS: input checks only)."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    for number in range(3):
        (path / "file.txt").write_text(f"{number}\n")
        git(path, "add", "file.txt")
        git(path, "commit", "--quiet", "-m", f"commit {number}")
    return path


@pytest.mark.parametrize("case, message", [
    ("not-a-repo", "not the top of a git work tree"),
    ("unknown-ref", "names no commit"),
    ("not-ancestor", "is not an ancestor of --bad"),
    ("dirty", "uncommitted changes"),
    ("runs", "--runs: bisect chooses"),
    ("flags-with-id", "stress flags need a scenario name"),
    ("unknown-target", "not a scenario (run.py list), a failure id"),
])
def test_bad_input_is_one_line_and_exit_2(small_repo, tmp_path, case, message):
    target, good, bad, repo, extra = ["volatile-churn"], "main~2", "main", str(small_repo), []
    if case == "not-a-repo":
        repo = str(tmp_path)
    elif case == "unknown-ref":
        good = "no-such-ref"
    elif case == "not-ancestor":
        good, bad = "main", "main~2"
    elif case == "dirty":
        (small_repo / "file.txt").write_text("edited\n")
    elif case == "runs":
        extra = ["--runs", "3"]
    elif case == "flags-with-id":
        target = ["0123456789ab", "--sched", "random"]
    else:
        target = ["no-such-scenario"]
    result = run_py("bisect", "--repo", repo, "--good", good, "--bad", bad, *target, *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
