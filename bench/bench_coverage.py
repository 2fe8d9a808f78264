#!/usr/bin/env python3
"""Cost of the operation-pair coverage (scenarios/coverage.py) against the checker's, on the
same driver history.

    python3 bench/bench_coverage.py [--variant plain] [--ops 1000000] [--scenario volatile-churn]
                                    [--repeats 3]

Writes one binary history with the driver of the chosen build variant, then times, each in a
fresh interpreter, `coverage.of_history` and `run.py check` on it (CPU time of the child,
median of the repeats). The figures in docs/benchmarks.md come from here.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, ROOT)
from scenarios import catalog  # noqa: E402
from scenarios.build import ensure_built  # noqa: E402
from scenarios.source import find_tree  # noqa: E402

COVERAGE = ("import sys; from scenarios import coverage; "
            "c = coverage.of_history(sys.argv[1]); print(c['calls'])")


def child_cpu(command):
    """CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="plain")
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--scenario", default="volatile-churn")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build = ensure_built(args.variant, find_tree())
    scenario = catalog.get(args.scenario)
    with tempfile.TemporaryDirectory() as scratch:
        history = os.path.join(scratch, "history")
        subprocess.run([build.driver(), "--threads", str(args.threads), "--ops", str(args.ops),
                        "--seed", "1", "--history", history,
                        "--storage-dir", os.path.join(scratch, "storage"),
                        *scenario.driver_args()], check=True, capture_output=True)
        coverage_cpu = [child_cpu([sys.executable, "-c", COVERAGE, history])
                        for _ in range(args.repeats)]
        check_cpu = [child_cpu([sys.executable, "run.py", "check", history])
                     for _ in range(args.repeats)]
    cov, chk = statistics.median(coverage_cpu), statistics.median(check_cpu)
    print(f"{args.scenario}, {args.ops:,} calls, {args.threads} threads, {args.variant} driver, "
          f"median of {args.repeats} (CPU s, interpreter start included)")
    print(f"coverage {cov:.2f} s   check {chk:.2f} s   coverage/check {cov / chk:.2f}")


if __name__ == "__main__":
    main()
