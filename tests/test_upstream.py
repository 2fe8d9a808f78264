"""Upstream's own threaded suites as a second detector (scenarios/selftest/upstream.py, run.py mutants
--upstream): they pass on the stock tree (their false-positive row), catch a mutant that breaks
key creation, miss a mutant that only matters in the static key store, and a tree without the
test framework is refused with one line.

The end-to-end tests share one workspace and one build (build/test-upstream/, kept between
sessions, so CI rebuilds only what changed); each costs one run of both suites (about two
minutes under TSan on two cores, mostly the concurrent suite's RSA and FFDH key generation)."""
import os

import pytest

from scenarios.selftest import mutants
from scenarios.selftest import upstream
from scenarios.report.matrix import matrix_html, matrix_markdown
from tests.stress_env import REPO, run_py, stock_tree

ROOT = os.path.join(REPO, "build", "test-upstream")
CAUGHT = "missing-reader-decrement"     # every key use leaks a reader: PSA_DONE sees the slots
MISSED = "evict-volatile"               # eviction only happens in the static key store


@pytest.fixture(scope="module")
def measure_upstream():
    """measure(mutant id or None) -> upstream's matrix entry, from the shared test workspace."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mutants, "WORKSPACE", os.path.join(ROOT, "mbedtls"))
        patch.setattr(upstream, "BUILD_DIR", os.path.join(ROOT, "suites"))

        def measure(mutant_id, workdir):
            tree = mutants.apply(mutants.by_id(mutant_id) if mutant_id else None, stock_tree())
            return upstream.measure(tree, stock_tree(), 1, str(workdir), log=lambda _m: None)
        yield measure


@pytest.mark.slow
def test_stock_passes_both_suites(measure_upstream, tmp_path):
    entry = measure_upstream(None, tmp_path)
    assert entry["caught"] == 0, f"upstream's suites fail on stock: {entry}"
    assert all(entry["cases"][suite] > 0 for suite in upstream.SUITES), entry["cases"]


@pytest.mark.slow
def test_a_mutant_breaking_key_creation_is_caught(measure_upstream, tmp_path):
    entry = measure_upstream(CAUGHT, tmp_path)
    assert entry["caught"] == 1 and "test-failed" in entry["kinds"], entry
    assert entry["failed_cases"]


@pytest.mark.slow
def test_a_static_store_only_mutant_is_missed(measure_upstream, tmp_path):
    entry = measure_upstream(MISSED, tmp_path)
    assert entry["caught"] == 0, entry


def test_a_tree_without_the_test_framework_is_refused(tmp_path):
    for sub in ("library", "include"):
        os.symlink(os.path.join(stock_tree().path, sub), tmp_path / sub)
    result = run_py("mutants", "--upstream", "--only", MISSED, "--mbedtls-dir", str(tmp_path),
                    timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no upstream test framework" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("output, code, kinds", [
    ("Case A ..... PASS\nPASSED (1 / 1 tests (0 skipped))\n", 0, []),
    ("Case A ..... FAILED\n  x == y\nFAILED (0 / 1 tests (0 skipped))\n", 1, ["test-failed"]),
    ("Case A ..... PASS\nWARNING: ThreadSanitizer: data race (pid=1)\nPASSED (1 / 1 tests",
     66, ["tsan"]),
    ("Case A ..... PASS\nPASSED (1 / 1 tests (0 skipped))\n", 66, ["tsan"]),
    ("A long case name, cut  FAILED\n  x == y\nFAILED (0 / 1 tests (0 skipped))\n", 1,
     ["test-failed"]),
    ("Case A ..... PASS\nFAILED (0 / 1 tests (0 skipped))\n", 1, ["test-failed"]),
    ("Case A ..... ", -11, ["crash"]),
    ("Case A ..... ", 134, ["crash"]),
    ("Case A ..... ", None, ["hang"]),
])
def test_classify_reads_cases_tsan_signals_and_timeouts(output, code, kinds):
    assert upstream.classify(output, code)[0] == kinds


def test_classify_names_the_failing_cases():
    output = ("Good ..... PASS\nBad one: RSA ..... FAILED\n  line 3\n"
              "Another, name cut by the suite  FAILED\nFAILED (1 / 3 tests")
    assert upstream.classify(output, 1)[1] == ["Bad one: RSA", "Another, name cut by the suite"]
    assert upstream.ran_cases(output) == 3


def _row(mutant, detected, caught):
    return {"mutant": mutant, "runs": 1, "detected": detected, "oracles": {}, "scenarios": {},
            "median_seconds": None, "max_seconds": None, "late_seconds": [],
            "upstream": {"runs": 1, "caught": caught, "kinds": {"tsan": 1} if caught else {},
                         "failed_cases": [], "suites": {}}}


def test_matrix_marks_what_only_psa_stress_catches():
    data = {"budget_seconds_per_run": 60, "upstream_suites": list(upstream.SUITES),
            "rows": [_row("stock", 0, 0), _row("both", 1, 1), _row("only-us", 1, 0),
                     _row("nobody", 0, 0)]}
    lines = matrix_markdown(data).splitlines()
    flagged = [line.split(" | ")[0].strip("| ") for line in lines if line.endswith("| yes |")]
    assert flagged == ["only-us"]
    page = matrix_html(data)
    assert page.count("class=\"only\"") == 1 and "http" not in page
