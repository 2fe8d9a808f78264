#!/usr/bin/env python3
"""Driver throughput, measured in one run: history recording on vs off, per build variant.

    python3 bench/bench_driver.py [--seconds S] [--threads N] [--variants tsan,plain]

Prints a table (calls/s, and the ratio recording-on / recording-off). The figures quoted in
issue notes come from here, never from timed tests. Runs alternate on/off and repeat, and the
median is reported, because these machines are noisy.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scenarios import catalog  # noqa: E402
from scenarios.build import ensure_built  # noqa: E402
from scenarios.source import find_tree  # noqa: E402


def calls_per_second(build, scenario, threads, seconds, seed, record):
    with tempfile.TemporaryDirectory() as scratch:
        history = ["--history", os.path.join(scratch, "h.jsonl")] if record else ["--no-history"]
        command = [build.driver(), "--threads", str(threads), "--seconds", str(seconds),
                   "--seed", str(seed), "--storage-dir", os.path.join(scratch, "storage"),
                   *history, *scenario.driver_args()]
        env = dict(os.environ, TSAN_OPTIONS="halt_on_error=0 exitcode=0")
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["ops_per_sec"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="tsan,plain")
    parser.add_argument("--scenario", default="volatile-churn")
    args = parser.parse_args()
    tree = find_tree()
    scenario = catalog.get(args.scenario)
    print(f"{args.scenario}, {args.threads} threads, {args.seconds} s per run, "
          f"median of {args.repeats}, {os.cpu_count()} cores")
    print(f"{'variant':<8} {'history on':>12} {'history off':>12} {'on/off':>7}")
    for name in args.variants.split(","):
        build = ensure_built(name, tree)
        on, off = [], []
        for repeat in range(args.repeats):
            on.append(calls_per_second(build, scenario, args.threads, args.seconds, repeat, True))
            off.append(calls_per_second(build, scenario, args.threads, args.seconds, repeat, False))
        med_on, med_off = statistics.median(on), statistics.median(off)
        print(f"{name:<8} {med_on:>12,.0f} {med_off:>12,.0f} {med_on / med_off:>7.2f}")


if __name__ == "__main__":
    main()
