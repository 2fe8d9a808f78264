#!/usr/bin/env python3
"""Driver throughput, measured in one run: history recording on vs off, per build variant and
lock-wait policy (harness/nemesis/lock_wait.h).

    python3 bench/bench_driver.py [--seconds S] [--threads N] [--variants tsan,plain]
                                  [--lock-waits spin,sleep]

Prints a table (calls/s, and the ratio recording-on / recording-off). The figures in
docs/benchmarks.md come from here, never from timed tests. Runs alternate between every configuration
and repeat, and medians are reported with the range. Every run sits between two probes of the
host's cross-core round trip (bench/host_probe.py): these 2-vCPU VMs have phases in which it is
4-5x slower and the 8-thread driver up to 2x slower, so the table gives the medians over all runs
and over the runs on a normal host, with their counts. The sanitizer options are the ones a real
run uses (scenarios/campaign/sanitizers.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
import host_probe  # noqa: E402
from scenarios import catalog  # noqa: E402
from scenarios.campaign import sanitizers  # noqa: E402
from scenarios.setup.build import ensure_built  # noqa: E402
from scenarios.setup.source import find_tree  # noqa: E402


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
    samples = {config: [] for config in configs}  # [(calls/s, round trip ns)]
    for repeat in range(args.repeats):
        for name, policy, record in configs:
            samples[(name, policy, record)].append(host_probe.probed(
                lambda: calls_per_second(builds[name], scenario, args.threads, args.seconds,
                                         repeat, record, policy)))
    threshold = host_probe.normal_threshold([ns for runs in samples.values() for _, ns in runs])
    print(f"{args.scenario}, {args.threads} threads, {args.seconds} s per run, "
          f"{args.repeats} runs each, {os.cpu_count()} cores; normal host: cross-core round trip "
          f"<= {threshold:.0f} ns")
    print(f"{'variant':<8} {'lock-wait':<9} {'history on':>12} {'history off':>12} {'on/off':>7}"
          f"   {'normal host: on':>15} {'off':>9} (runs)   range on | range off")
    for name in builds:
        for policy in args.lock_waits.split(","):
            print(_row(name, policy, samples[(name, policy, True)],
                       samples[(name, policy, False)], threshold))


def _row(name, policy, on, off, threshold):
    """One table line: medians over all runs, then over the runs on a normal host."""
    all_on, all_off = [rate for rate, _ in on], [rate for rate, _ in off]
    med_on, med_off = statistics.median(all_on), statistics.median(all_off)
    normal_on = host_probe.on_normal_host(on, threshold)
    normal_off = host_probe.on_normal_host(off, threshold)
    normal = (f"{_median(normal_on):>15} {_median(normal_off):>9} "
              f"({len(normal_on)}/{len(on)}, {len(normal_off)}/{len(off)})")
    return (f"{name:<8} {policy:<9} {med_on:>12,.0f} {med_off:>12,.0f} {med_on / med_off:>7.2f}"
            f"   {normal}   {min(all_on):,.0f}-{max(all_on):,.0f} | "
            f"{min(all_off):,.0f}-{max(all_off):,.0f}")


def _median(values):
    return f"{statistics.median(values):,.0f}" if values else "-"


if __name__ == "__main__":
    try:
        main()
    except host_probe.ProbeError as error:
        sys.exit(f"bench_driver: {error}")
