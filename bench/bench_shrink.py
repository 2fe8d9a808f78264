#!/usr/bin/env python3
"""Shrinking a real race: a copy of 3.6.6 whose psa_start_key_creation reserves a key slot
without the key-slot mutex, stressed with 8 threads x 10 000 calls, then shrunk.

    python3 bench/bench_shrink.py [--budget SECONDS] [--seed N]

Prints, per distinct failure, the job before and after shrinking and the repro command.
"""
import argparse
import glob
import json
import os
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
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="psa-stress-shrink-")
    copy = mutated_copy(os.path.join(work, "mbedtls"), *UNLOCKED_RESERVE)
    subprocess.run([sys.executable, RUN_PY, "stress", "volatile-churn", "--mbedtls-dir", copy,
                    "--threads", "8", "--ops", "10000", "--seed", str(args.seed),
                    "--shrink-budget", str(args.budget), "--reports-dir", work], check=False)
    (summary_path,) = glob.glob(os.path.join(work, "*-stress", "summary.json"))
    with open(summary_path, encoding="utf-8") as handle:
        data = json.load(handle)
    for failure in data["failures"]:
        shrink = failure["shrink"] or {}
        before, after = shrink.get("original"), shrink.get("minimal")
        print(f"{failure['id']} {failure['signature']}")
        if before and shrink["reproduced"]:
            print(f"  before: {before['scenario']['threads']} threads x {before['ops']} calls, "
                  f"volatile pool {before['scenario']['volatile_pool']}")
            print(f"  after:  {after['scenario']['threads']} threads x {after['ops']} calls, "
                  f"volatile pool {after['scenario']['volatile_pool']} "
                  f"({shrink['runs']} runs, {shrink['seconds']} s)")
        print(f"  repro: {failure['repro']}")
    print(f"report: {os.path.dirname(summary_path)}/index.html")


if __name__ == "__main__":
    main()
