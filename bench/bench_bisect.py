#!/usr/bin/env python3
"""Bisection on a local series of 3.6.6: five bisections, the race introduced at a different
commit of the six each time (tests/bisect_series.py builds the series).

    python3 bench/bench_bisect.py [--positions 1,2,3,5,6] [--seed N] [--sched ENGINE]
                                  [--ops N] [--threads N]

Prints, per bisection, the commit that introduced the race, the one bisect named, the
reproduction rate on the bad commit, the runs per commit, the commits tested (calibration and
the check of good included), the seconds spent building and running the driver in them, and
the wall time; then how many of the bisections named the introducing commit. The default job
runs on the serialised random engine (500 calls, 4 threads); ``--sched os`` lets the OS
schedule the threads, which needs a longer job to show the race often enough.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.bisect_series import FIXTURE, JOB, bisect, make_series  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="1,2,3,5,6",
                        help="the commit (1-6) that introduces the race, per bisection")
    parser.add_argument("--seed", default="1", help="the job's seed (default 1)")
    parser.add_argument("--sched", default="random", help="the job's engine (default random)")
    parser.add_argument("--ops", default="500", help="the job's calls (default 500)")
    parser.add_argument("--threads", default="4", help="the job's threads (default 4)")
    args = parser.parse_args()
    job = [*JOB]
    for flag in ("seed", "sched", "ops", "threads"):
        job[job.index(f"--{flag}") + 1] = getattr(args, flag)
    found = 0
    positions = [int(p) for p in args.positions.split(",")]
    for bug_at in positions:
        commits = make_series(FIXTURE, bug_at)
        started = time.monotonic()
        result = bisect(FIXTURE, commits[0], "main", *job)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            print(f"bug at commit {bug_at}: bisect exit {result.returncode}: "
                  f"{result.stderr.strip().splitlines()[-1:]}")
            continue
        data = json.loads(result.stdout)
        named = [commits.index(c["commit"]) for c in data["first_bad"]]
        found += named == [bug_at]
        rate, steps = data["rate"], data["steps"]
        build = sum(step.get("build_seconds", 0) for step in steps)
        runs = sum(step.get("run_seconds", 0) for step in steps)
        print(f"bug at commit {bug_at}: named {named}, rate {rate['hits']}/{rate['runs']}, "
              f"{data['runs_per_commit']} runs per commit, {len(steps)} commits tested "
              f"(build {build:.1f} s, runs {runs:.1f} s), {seconds:.1f} s")
    print(f"found the introducing commit in {found} of {len(positions)} bisections")
    return 0 if found == len(positions) else 1


if __name__ == "__main__":
    sys.exit(main())
