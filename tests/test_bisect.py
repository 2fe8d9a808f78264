"""run.py bisect: the commit that introduced a race, found in a local git series of 3.6.6.

The series (``make_series``) is the stock tree as its first commit, then six commits that each
append a comment to one small library file, except one that removes the key-slot mutex around
the slot reservation of psa_start_key_creation (mutants/catalog.py, unlocked-reserve). The job
runs on the serialised ``random`` engine with a fixed seed and call count, so whether a commit
shows the race does not depend on the OS scheduler. The series lives at a fixed path under
build/, so that every run of this test reuses one build directory incrementally.
"""
import json
import os
import shutil
import subprocess

import pytest

from mutants.catalog import by_id
from scenarios.bisect import rate_lower_bound, replays_needed
from tests.stress_env import REPO, apply_edit, run_py, stock_tree

FIXTURE = os.path.join(REPO, "build", "bisect-fixture", "mbedtls")
# small files, each recompiled on its own when a step checks out a commit that changed it
HARMLESS = ("library/version.c", "library/platform.c", "library/psa_crypto_client.c",
            "library/version_features.c", "library/psa_util.c", "library/padlock.c")
BUG = by_id("unlocked-reserve")
JOB = ["volatile-churn", "--sched", "random", "--seed", "1", "--ops", "500", "--threads", "4"]


def git(path, *args):
    return subprocess.run(["git", "-C", str(path), "-c", "user.name=psa-stress",
                           "-c", "user.email=psa-stress@localhost", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def make_series(path, bug_at, length=6):
    """A git repository at ``path``: the stock tree, then ``length`` commits, the one numbered
    ``bug_at`` (1-based) introducing the race. [base commit, commit 1, ..., commit length]."""
    shutil.rmtree(path, ignore_errors=True)
    source = stock_tree().path
    for sub in ("library", "include"):
        shutil.copytree(os.path.join(source, sub), os.path.join(path, sub))
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", "library", "include")
    git(path, "commit", "--quiet", "-m", "stock 3.6.6")
    commits = [git(path, "rev-parse", "HEAD")]
    for number in range(1, length + 1):
        if number == bug_at:
            apply_edit(path, BUG.path, BUG.old, BUG.new)
            edited, subject = BUG.path, f"commit {number}: reserve a slot without the mutex"
        else:
            edited = HARMLESS[number - 1]
            with open(os.path.join(path, edited), "a", encoding="utf-8") as handle:
                handle.write(f"/* commit {number} */\n")
            subject = f"commit {number}: a comment in {edited}"
        git(path, "commit", "--quiet", "-m", subject, edited)
        commits.append(git(path, "rev-parse", "HEAD"))
    return commits


def bisect(repo, good, bad, *extra):
    return run_py("bisect", "--repo", repo, "--good", good, "--bad", bad, "--json", *extra)


def test_replays_needed_from_the_rate():
    assert replays_needed(0, 10) == (0.0, None)
    low, runs = replays_needed(10, 10)
    assert abs(low - 0.05 ** 0.1) < 1e-6 and runs == 4     # (1 - low)^4 <= 1 % < (1 - low)^3
    assert (1 - low) ** runs <= 0.01 < (1 - low) ** (runs - 1)
    low_half, runs_half = replays_needed(5, 10)
    assert low_half < 0.5 and runs_half > runs
    assert rate_lower_bound(3, 10) < rate_lower_bound(6, 10) < rate_lower_bound(9, 10)


@pytest.mark.parametrize("bug_at", [4])
def test_bisect_names_the_commit_that_introduced_the_race(bug_at):
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


def test_a_bad_commit_without_the_failure_is_refused():
    commits = make_series(FIXTURE, 5)
    result = bisect(FIXTURE, commits[0], commits[3], *JOB, "--calibrate", "3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "does not reproduce on --bad" in result.stderr.strip().splitlines()[-1]
    assert git(FIXTURE, "symbolic-ref", "--short", "HEAD") == "main"


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
    else:
        target = ["0123456789ab", "--sched", "random"]
    result = run_py("bisect", "--repo", repo, "--good", good, "--bad", bad, *target, *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
