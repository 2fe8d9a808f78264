#!/usr/bin/env python3
"""Shrinking a real race: a copy of 3.6.6 whose psa_start_key_creation reserves a key slot
without the key-slot mutex, stressed with 8 threads x 10 000 calls, then shrunk.

    python3 bench/bench_shrink.py [--budget SECONDS] [--seed N] [--sched ENGINE]

Prints, per distinct failure, the job before and after shrinking and the repro command. With a
serialised engine (``--sched pct`` or ``random``) also the preemptions before and after, and the
number of ``run.py repro`` replays (of 10) of the minimal case, its pinned schedule, that failed
the same way.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.stress_env import RUN_PY, mutated_copy  # noqa: E402
from tests.test_oracles_e2e import UNLOCKED_RESERVE  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sched", default="os", help="os (default), delay, pct or random")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="psa-stress-shrink-")
    copy = mutated_copy(os.path.join(work, "mbedtls"), *UNLOCKED_RESERVE)
    subprocess.run([sys.executable, RUN_PY, "stress", "volatile-churn", "--mbedtls-dir", copy,
                    "--threads", "8", "--ops", "10000", "--seed", str(args.seed),
                    "--sched", args.sched, "--shrink-budget", str(args.budget),
                    "--reports-dir", work], check=False)
    (summary_path,) = glob.glob(os.path.join(work, "*-stress", "summary.json"))
    with open(summary_path, encoding="utf-8") as handle:
        data = json.load(handle)
    for failure in data["failures"]:
        report_failure(failure, os.path.dirname(summary_path))
    print(f"report: {os.path.dirname(summary_path)}/index.html")


def report_failure(failure, directory):
    shrink = failure["shrink"] or {}
    before, after = shrink.get("original"), shrink.get("minimal")
    print(f"{failure['id']} {failure['signature']}")
    if before and shrink["reproduced"]:
        print(f"  before: {before['scenario']['threads']} threads x {before['ops']} calls, "
              f"volatile pool {before['scenario']['volatile_pool']}")
        print(f"  after:  {after['scenario']['threads']} threads x {after['ops']} calls, "
              f"volatile pool {after['scenario']['volatile_pool']} "
              f"({shrink['runs']} runs, {shrink['seconds']} s)")
    preemptions = shrink.get("preemptions")
    if preemptions:
        print(f"  preemptions: {preemptions['before']} -> {preemptions['after']} "
              f"(exact replay of the minimal schedule: {preemptions['exact_replay']})")
        print(f"  repro of the minimal case: {replays(directory, failure['id'])}/10 replays "
              "failed the same way")
    print(f"  repro: {failure['repro']}")


def replays(directory, failure_id):
    """How many of ``run.py repro``'s 10 replays reproduced the failure."""
    done = subprocess.run([sys.executable, RUN_PY, "repro", directory, "--failure", failure_id],
                          capture_output=True, text=True, check=False)
    found = re.search(r"reproduced (\d+)/10", done.stdout)
    return int(found.group(1)) if found else f"? ({done.stderr.strip()})"


if __name__ == "__main__":
    main()
