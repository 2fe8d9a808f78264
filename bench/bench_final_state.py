#!/usr/bin/env python3
"""Benchmark: the final-state check (scenarios/checker/final_state.py) on real driver histories.

    python3 bench/bench_final_state.py --driver build/plain/psa-stress [--calls 1000000]
        [--scenarios persistent-collide,volatile-churn,derive-copy] [--repeats 3]

For each scenario of the catalogue named, the driver (a plain build is fastest to make the
history) writes a binary history of exactly ``--calls`` calls with the scenario's own workload;
``final_state.check_file`` then runs in a fresh interpreter ``--repeats`` times and the median
wall and CPU seconds are printed with calls per CPU second. Settling is one pass over the calls
that may create or remove a key, so the cost is linear in the history.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scenarios import catalog  # noqa: E402  (after the path insert)

MEASURE = ("import json, sys, time; sys.path.insert(0, sys.argv[2]);"
           "from scenarios import final_state;"
           "t, c = time.perf_counter(), time.process_time();"
           "problems = final_state.check_file(sys.argv[1]);"
           "print(json.dumps([time.perf_counter() - t, time.process_time() - c, "
           "len(problems)]))")


def history(driver, directory, scenario, calls):
    path = os.path.join(directory, scenario.name)
    subprocess.run([driver, "--threads", str(scenario.threads), "--ops", str(calls),
                    "--history", path, "--storage-dir", os.path.join(directory, "storage"),
                    *scenario.driver_args()], check=True, capture_output=True)
    return path


def measure(path):
    out = subprocess.run([sys.executable, "-c", MEASURE, path, ROOT], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", default=os.path.join(ROOT, "build", "plain", "psa-stress"))
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--scenarios", default="persistent-collide,volatile-churn,derive-copy")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    if not os.access(options.driver, os.X_OK):
        print(f"bench_final_state: no driver at {options.driver} (build the plain variant: "
              "python3 run.py stress volatile-churn --variant plain --seconds 1)",
              file=sys.stderr)
        return 2
    directory = tempfile.mkdtemp(prefix="bench-final-state-")
    try:
        for name in options.scenarios.split(","):
            scenario = catalog.get(name)
            path = history(options.driver, directory, scenario, options.calls)
            samples = [measure(path) for _ in range(options.repeats)]
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            print(f"{name:<22} {options.calls:>9,} calls  final state {wall:6.2f} s wall "
                  f"{cpu:6.2f} s cpu  {options.calls / cpu:>10,.0f} calls/cpu-s  "
                  f"problems {samples[0][2]}", flush=True)
            shutil.rmtree(path)
            shutil.rmtree(os.path.join(directory, "storage"), ignore_errors=True)
    finally:
        shutil.rmtree(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
