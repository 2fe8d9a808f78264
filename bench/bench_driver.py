#!/usr/bin/env python3
"""Driver throughput, measured in one run: history recording on vs off, per build variant and
lock-wait policy (harness/lock_wait.h).

    python3 bench/bench_driver.py [--seconds S] [--threads N] [--variants tsan,plain]
                                  [--lock-waits spin,sleep]

Prints a table (calls/s, and the ratio recording-on / recording-off). The figures quoted in
issue notes come from here, never from timed tests. Runs alternate between every configuration
and repeat, and the median is reported with the range, because these machines are noisy (the
2-core VM's speed for this workload swings by up to 2x in phases of tens of seconds). The sanitizer
options are the ones a real run uses (scenarios/sanitizers.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scenarios import catalog, sanitizers  # noqa: E402
from scenarios.build import ensure_built  # noqa: E402
from scenarios.source import find_tree  # noqa: E402


def calls_per_second(build, scenario, threads, seconds, seed, record, lock_wait="spin"):
    """One run; the binary history (what real runs record) when recording."""
    with tempfile.TemporaryDirectory() as scratch:
        history = ["--history", os.path.join(scratch, "h")] if record else ["--no-history"]
        command = [build.driver(), "--threads", str(threads), "--seconds", str(seconds),
                   "--seed", str(seed), "--storage-dir", os.path.join(scratch, "storage"),
                   "--lock-wait", lock_wait, *history, *scenario.driver_args()]
        env = dict(os.environ, **sanitizers.environment(os.path.join(scratch, "san")))
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            sys.exit(f"bench_driver: {' '.join(command)} exited {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])["ops_per_sec"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="tsan,plain")
    parser.add_argument("--lock-waits", default="spin,sleep")
    parser.add_argument("--scenario", default="volatile-churn")
    args = parser.parse_args()
    tree = find_tree()
    scenario = catalog.get(args.scenario)
    builds = {name: ensure_built(name, tree) for name in args.variants.split(",")}
    configs = [(name, policy, record) for name in builds
               for policy in args.lock_waits.split(",") for record in (True, False)]
    rates = {config: [] for config in configs}
    for repeat in range(args.repeats):
        for name, policy, record in configs:
            rates[(name, policy, record)].append(calls_per_second(
                builds[name], scenario, args.threads, args.seconds, repeat, record, policy))
    print(f"{args.scenario}, {args.threads} threads, {args.seconds} s per run, "
          f"median of {args.repeats}, {os.cpu_count()} cores")
    print(f"{'variant':<8} {'lock-wait':<9} {'history on':>12} {'history off':>12} {'on/off':>7}"
          f"   range on | range off")
    for name in builds:
        for policy in args.lock_waits.split(","):
            on, off = rates[(name, policy, True)], rates[(name, policy, False)]
            med_on, med_off = statistics.median(on), statistics.median(off)
            print(f"{name:<8} {policy:<9} {med_on:>12,.0f} {med_off:>12,.0f} "
                  f"{med_on / med_off:>7.2f}   {min(on):,.0f}-{max(on):,.0f} | "
                  f"{min(off):,.0f}-{max(off):,.0f}")


if __name__ == "__main__":
    main()
