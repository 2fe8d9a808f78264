"""bench/bench_guided.py reads its figures back from reports: times from the build's end, the
coverage curve over the reachable cells, the first run with a new failure. Synthetic reports, no
driver. Known-bad inputs: an unknown mutant, a report with no new failure (no detection)."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
import bench_guided  # noqa: E402


def _run(finished, cells=(), failures=(), name="volatile-churn", sched="os"):
    pairs = {}
    for first, second in cells:
        pairs.setdefault(first, {})[second] = 1
    return {"id": f"{name}-seed1", "finished": f"2026-12-02T10:00:{finished:02d}+00:00",
            "coverage": {"pairs": pairs}, "params": {"engine": {"sched": sched}},
            "failures": [{"signature": s} for s in failures]}


def _report(runs, failures=()):
    # started 10:00:00, built at 10:00:10
    return {"created": "2026-12-02T10:01:00+00:00", "elapsed_seconds": 60, "build_seconds": 10,
            "runs": runs, "failures": list(failures),
            "portfolio": {"runs": {"volatile-churn": {"os": len(runs)}}}}


A, B, C = ("import:SUCCESS", "export:SUCCESS"), ("a:SUCCESS", "b:SUCCESS"), ("c:X", "d:Y")


def test_the_coverage_curve_counts_target_cells_from_the_build_s_end():
    data = _report([_run(15, [A]), _run(20, [A, C]), _run(30, [B])])
    targets = {"import:SUCCESS > export:SUCCESS", "a:SUCCESS > b:SUCCESS"}
    curve = bench_guided.coverage_curve(data, targets)
    assert curve == [(5.0, 1), (10.0, 1), (20.0, 2)]       # C is no target
    assert bench_guided.time_to(curve, 2) == 20.0 and bench_guided.time_to(curve, 3) is None
    row = bench_guided.stock_row(data, targets)
    assert row["time_to"]["100%"] == 20.0 and row["covered_at"]["30s"] == 2


def test_the_first_detection_is_the_first_run_with_a_new_failure():
    runs = [_run(15, failures=["known one"]), _run(25, failures=["new one"], sched="delay")]
    failures = [{"signature": "known one", "known": True},
                {"signature": "new one", "known": False}]
    found = bench_guided.first_detection(_report(runs, failures))
    assert found == {"seconds": 15.0, "run": 2, "pair": "volatile-churn@delay"}
    assert bench_guided.first_detection(_report(runs[:1], failures[:1])) is None


def test_an_unknown_mutant_is_bad_input():
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_guided.py"),
                           "--mutants", "no-such-mutant"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        "bench_guided: unknown mutant in --mutants (mutants/catalog.py)"


@pytest.mark.parametrize("fraction", bench_guided.FRACTIONS)
def test_every_fraction_has_a_column(fraction):
    row = bench_guided.stock_row(_report([_run(15, [A])]), {"import:SUCCESS > export:SUCCESS"})
    assert row["time_to"][f"{int(100 * fraction)}%"] == 5.0
