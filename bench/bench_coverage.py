#!/usr/bin/env python3
"""The cost of coverage (scenarios/checker/coverage.py): the operation pairs against the checker,
and the driver's counting (key-slot hand-offs and slot transitions, harness/inside/handoffs.h)
on against off.

    python3 bench/bench_coverage.py [--variant V] [--ops 1000000] [--scenario volatile-churn]
                                    [--repeats 3]
    python3 bench/bench_coverage.py --driver [--variant V] [--ops 200000] [--pairs 16]

Pairs: writes one binary history with the driver of the chosen build variant, then times, each
in a fresh interpreter, `coverage.of_history` and `run.py check` on it (CPU time of the child,
median of the repeats). --driver: runs the driver (history on, as real runs; the OS scheduler)
in pairs of the same calls and seed, coverage on and off started together, so that both meet
the same host load, and compares the CPU time (user + system) each spent per call: on a shared
host the wall clock follows the other tenants' load far more than the few instructions counting
adds. It prints the medians, and the median and quartiles of the per-pair ratios on/off, for
the CPU time per call and, for reference, the wall-clock throughput.
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


def driver_pair(build, scenario, threads, ops, seed):
    """{on: (CPU seconds per call, calls per wall second)} of two driver runs started together,
    coverage on and off: both meet the same host load, whatever it does meanwhile."""
    with tempfile.TemporaryDirectory() as scratch:
        children = {}
        for counting in (True, False):
            run = os.path.join(scratch, "on" if counting else "off")
            os.mkdir(run)
            env = dict(os.environ, **sanitizers.environment(os.path.join(run, "san")))
            if not counting:
                env["PSA_STRESS_COVERAGE"] = "off"
            with open(os.path.join(run, "out"), "w", encoding="utf-8") as out:
                children[counting] = (run, subprocess.Popen(
                    [build.driver(), "--threads", str(threads), "--ops", str(ops),
                     "--seed", str(seed), "--history", os.path.join(run, "h"),
                     "--storage-dir", os.path.join(run, "storage"), *scenario.driver_args()],
                    env=env, stdout=out, stderr=subprocess.DEVNULL))
        found = {}
        for counting, (run, child) in children.items():
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise SystemExit(f"the driver exited {child.returncode} (coverage "
                                 f"{'on' if counting else 'off'})")
            with open(os.path.join(run, "out"), encoding="utf-8") as out:
                rate = json.loads(out.read().strip().splitlines()[-1])["ops_per_sec"]
            found[counting] = ((usage.ru_utime + usage.ru_stime) / ops, rate)
    return found


def _spread(ratios):
    quartiles = statistics.quantiles(ratios, n=4)
    return (f"median {statistics.median(ratios):.3f} (quartiles {quartiles[0]:.3f}-"
            f"{quartiles[2]:.3f}, range {min(ratios):.3f}-{max(ratios):.3f})")


def bench_driver(args, build, scenario):
    runs = {True: [], False: []}
    cpu_ratios, rate_ratios = [], []
    for pair in range(args.pairs):
        found = driver_pair(build, scenario, args.threads, args.ops, pair)
        for flag in (True, False):
            runs[flag].append(found[flag])
        cpu_ratios.append(found[True][0] / found[False][0])
        rate_ratios.append(found[True][1] / found[False][1])
    print(f"{args.scenario}, {args.threads} threads, {args.variant} driver, history on, "
          f"{args.ops:,} calls per run, {args.pairs} pairs")
    for flag, label in ((True, "on"), (False, "off")):
        print(f"coverage {label:3}: CPU {statistics.median(r[0] for r in runs[flag]) * 1e6:.1f} "
              f"us/call, {statistics.median(r[1] for r in runs[flag]):,.0f} calls/s (medians)")
    print(f"CPU per call, on/off per pair: {_spread(cpu_ratios)}")
    print(f"wall throughput, on/off per pair: {_spread(rate_ratios)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", help="build variant (default: plain, tsan with --driver)")
    parser.add_argument("--ops", type=int, help="calls (default: 1,000,000; 200,000 with --driver)")
    parser.add_argument("--scenario", default="volatile-churn")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver", action="store_true", help="coverage counting on vs off")
    parser.add_argument("--pairs", type=int, default=16)
    args = parser.parse_args()
    args.variant = args.variant or ("tsan" if args.driver else "plain")
    args.ops = args.ops or (200_000 if args.driver else 1_000_000)
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
