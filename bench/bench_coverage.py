#!/usr/bin/env python3
"""The cost of coverage (scenarios/checker/coverage.py): the operation pairs against the checker, and the
driver's key-slot hand-off counting (harness/inside/handoffs.h) on against off.

    python3 bench/bench_coverage.py [--variant V] [--ops 1000000] [--scenario volatile-churn]
                                    [--repeats 3]
    python3 bench/bench_coverage.py --driver [--variant V] [--seconds 3] [--pairs 6]

Pairs: writes one binary history with the driver of the chosen build variant, then times, each
in a fresh interpreter, `coverage.of_history` and `run.py check` on it (CPU time of the child,
median of the repeats). --driver: runs the driver (history on, as real runs) in pairs, counting
on then off or off then on alternately, and reports the medians and the median of the per-pair
ratios: the host's load drifts, a pair's two runs see nearly the same host.
"""
import argparse
import json
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
from scenarios.campaign import sanitizers  # noqa: E402
from scenarios.setup.build import ensure_built  # noqa: E402
from scenarios.setup.source import find_tree  # noqa: E402

COVERAGE = ("import sys; from scenarios import coverage; "
            "c = coverage.of_history(sys.argv[1]); print(c['calls'])")


def child_cpu(command):
    """CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def driver_rate(build, scenario, threads, seconds, seed, handoffs):
    """Calls per second of one driver run with hand-off counting on or off."""
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, **sanitizers.environment(os.path.join(scratch, "san")))
        if not handoffs:
            env["PSA_STRESS_HANDOFFS"] = "off"
        out = subprocess.run([build.driver(), "--threads", str(threads), "--seconds",
                              str(seconds), "--seed", str(seed),
                              "--history", os.path.join(scratch, "h"),
                              "--storage-dir", os.path.join(scratch, "storage"),
                              *scenario.driver_args()], env=env, check=True,
                             capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["ops_per_sec"]


def bench_driver(args, build, scenario):
    on, off, ratios = [], [], []
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        rates = {flag: driver_rate(build, scenario, args.threads, args.seconds, pair, flag)
                 for flag in order}
        on.append(rates[True])
        off.append(rates[False])
        ratios.append(rates[True] / rates[False])
    print(f"{args.scenario}, {args.threads} threads, {args.variant} driver, history on, "
          f"{args.seconds} s per run, {args.pairs} pairs")
    print(f"hand-offs on {statistics.median(on):,.0f} calls/s   off "
          f"{statistics.median(off):,.0f} calls/s   median on/off per pair "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", help="build variant (default: plain, tsan with --driver)")
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--scenario", default="volatile-churn")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver", action="store_true", help="hand-offs on vs off")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    args.variant = args.variant or ("tsan" if args.driver else "plain")
    build = ensure_built(args.variant, find_tree())
    scenario = catalog.get(args.scenario)
    if args.driver:
        bench_driver(args, build, scenario)
        return
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
