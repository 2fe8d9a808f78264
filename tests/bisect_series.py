"""A local git series of Mbed TLS 3.6.6 with a race introduced in one commit, for bisect's test
(tests/test_bisect.py) and benchmark (bench/bench_bisect.py).

The series (``make_series``) is the stock tree as its first commit, then six commits that each
append a comment to one small library file, except one that removes the key-slot mutex around
the slot reservation of psa_start_key_creation (mutants/catalog.py, unlocked-reserve). The job
(``JOB``) runs on the serialised ``random`` engine with a fixed seed and call count, so whether a
commit shows the race does not depend on the OS scheduler. The series lives at a fixed path under
build/, so that every use reuses one build directory incrementally.
"""
import os
import shutil
import subprocess
import tempfile

from mutants.catalog import by_id
from tests.stress_env import REPO, apply_edit, run_py, stock_tree

FIXTURE = os.path.join(REPO, "build", "bisect-fixture", "mbedtls")
# small files, each recompiled on its own when a step checks out a commit that changed it
HARMLESS = ("library/version.c", "library/platform.c", "library/psa_crypto_client.c",
            "library/version_features.c", "library/psa_util.c", "library/padlock.c")
BUG = by_id("unlocked-reserve")
BROKEN = "#error this commit does not build\n"
JOB = ["volatile-churn", "--sched", "random", "--seed", "1", "--ops", "500", "--threads", "4"]


def git(path, *args):
    return subprocess.run(["git", "-C", str(path), "-c", "user.name=psa-stress",
                           "-c", "user.email=psa-stress@localhost", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def make_series(path, bug_at, length=6, broken_at=None):
    """A git repository at ``path``: the stock tree, then ``length`` commits, the one numbered
    ``bug_at`` (1-based) introducing the race, the one numbered ``broken_at`` (if any) breaking
    the build and the next one repairing it. [base commit, commit 1, ..., commit length]."""
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
            edited, subject = [BUG.path], f"commit {number}: reserve a slot without the mutex"
        else:
            edited = [HARMLESS[number - 1]]
            _append(path, edited[0], f"/* commit {number} */\n")
            subject = f"commit {number}: a comment in {edited[0]}"
        if number == broken_at:
            _append(path, edited[0], BROKEN)
            subject += ", and a build error"
        elif broken_at and number == broken_at + 1:
            edited.append(HARMLESS[broken_at - 1])
            apply_edit(path, edited[-1], BROKEN, "")
        git(path, "commit", "--quiet", "-m", subject, *edited)
        commits.append(git(path, "rev-parse", "HEAD"))
    return commits


def _append(tree, path, text):
    with open(os.path.join(tree, path), "a", encoding="utf-8") as handle:
        handle.write(text)


def bisect(repo, good, bad, *extra):
    """run.py bisect --json, its report written to a temporary directory (deleted after)."""
    with tempfile.TemporaryDirectory(prefix="psa-stress-bisect-") as reports:
        return run_py("bisect", "--repo", repo, "--good", good, "--bad", bad, "--json",
                      "--reports-dir", reports, *extra)
