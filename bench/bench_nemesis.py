#!/usr/bin/env python3
"""Nemesis figures: scheduling points per second of the serialised engines, and how often the
replay of a failing schedule reproduces the failure.

    python3 bench/bench_nemesis.py [--seconds S] [--threads N] [--variant plain] [--replays R]

Rate: one run per engine on the given variant (default plain: the target is >= 50 k
points/s for pct without TSan); points/s = recorded scheduling steps / run time, and calls/s for
every engine. Replay: a pct run of the TSan test driver with the racy canary records its
schedule; it is replayed R times and each replay must report the race again.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scenarios import catalog  # noqa: E402
from scenarios.setup.build import ensure_built  # noqa: E402
from scenarios.setup.source import find_tree  # noqa: E402

ENV = dict(os.environ, TSAN_OPTIONS="atexit_sleep_ms=0")


def run(driver, *flags):
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([driver, "--storage-dir", os.path.join(scratch, "storage"),
                               "--no-history", *flags], capture_output=True, text=True, env=ENV)
    return done, (json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout else None)


def rates(build, args):
    scenario = catalog.get("volatile-churn")
    print(f"{'engine':8} {'calls/s':>10} {'points/s':>10} {'points/call':>12}")
    for engine in ("os", "delay", "pct", "random"):
        _, out = run(build.driver(), "--threads", str(args.threads), "--seconds",
                     str(args.seconds), "--sched", engine, *scenario.driver_args())
        steps = out["nemesis"].get("steps")
        points = f"{steps / out['seconds']:10.0f}" if steps else f"{'-':>10}"
        per_call = f"{steps / out['ops']:12.1f}" if steps else f"{'-':>12}"
        print(f"{engine:8} {out['ops_per_sec']:10.0f} {points} {per_call}")


def replays(tree, count):
    driver = ensure_built("tsan", tree, log=lambda _m: None).driver(test_build=True)
    with tempfile.TemporaryDirectory() as scratch:
        schedule = os.path.join(scratch, "s.txt")
        common = ["--canary", "--threads", "2", "--ops", "300", "--seed", "9"]
        first, _ = run(driver, *common, "--sched", "pct", "--schedule-out", schedule)
        assert "data race" in first.stderr, "the recorded run did not fail"
        hits = sum("data race" in run(driver, *common, "--replay", schedule)[0].stderr
                   for _ in range(count))
    print(f"pct canary failure reproduced by replay: {hits}/{count}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--variant", default="plain")
    parser.add_argument("--replays", type=int, default=10)
    args = parser.parse_args()
    tree = find_tree(log=lambda _m: None)
    rates(ensure_built(args.variant, tree, log=print), args)
    replays(tree, args.replays)


if __name__ == "__main__":
    main()
