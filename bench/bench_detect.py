#!/usr/bin/env python3
"""Time to detect a narrow-window bug, per scheduling engine (os, delay, pct, random).

    python3 bench/bench_detect.py [--mutant split-volatile-reserve] [--runs 10] [--budget 60]
                                  [--engines os,delay,pct,random] [--run-seconds 3]
                                  [--variant tsan] [--build-root DIR] [--json FILE]
                                  [--lock-wait spin|sleep]

The mutant (mutants/catalog.py) is applied to a copy of the tree (scenarios/mutants.apply) and
built once. A detection run repeats its first hinted scenario, `--run-seconds` per driver run on
fresh seeds, with `--sched ENGINE`, until an oracle fires or `--budget` seconds (stress and
checking, build excluded) are spent, like `run.py mutants` but with one engine per run. Each
engine gets `--runs` runs on the same seeds; the table gives detected/runs and min/median/max
seconds of the detecting runs, and the JSON keeps the oracle that fired in each run.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mutants.catalog import by_id  # noqa: E402
from scenarios import catalog  # noqa: E402
from scenarios.setup import build as builds  # noqa: E402
from scenarios.selftest import mutants  # noqa: E402
from scenarios.campaign.job import Job  # noqa: E402
from scenarios.setup.source import SetupError, find_tree  # noqa: E402

ENGINES = ("os", "delay", "pct", "random")
NARROW_MUTANT = "split-volatile-reserve"
STOCK = "stock"


def use_build_root(root):
    """Build every variant (and the mutant workspace) under ``root`` instead of build/."""
    builds.BUILD_ROOT = root
    mutants.WORKSPACE = os.path.join(root, "mutants", "mbedtls")


def detect_once(build, scenario, engine, run, budget, run_seconds, scratch, lock_wait="spin"):
    """One detection run: (seconds, first failure) when an oracle fires within ``budget``
    seconds, else (None, None)."""
    clock, attempt = 0.0, 0
    while clock < budget:
        job = Job(scenario, 1000 * (run + 1) + attempt, run_seconds,
                  engine={"sched": engine, "lock-wait": lock_wait})
        started = time.monotonic()
        outcome = job.run(build, os.path.join(scratch, f"{engine}-{run}-{attempt}"))
        clock += time.monotonic() - started
        attempt += 1
        shutil.rmtree(outcome.directory, ignore_errors=True)
        if outcome.failures:
            first = outcome.failures[0]
            return (clock, f"{first.kind}: {first.message}") if clock <= budget else (None, None)
    return None, None


def measure(mutant_id, engines=ENGINES, runs=10, budget=60, run_seconds=3, variant=None,
            log=print, lock_wait="spin"):
    """Per engine: {engine, runs, detected, seconds (sorted), min/median/max, failures}.
    ``mutant_id`` "stock": the unmodified tree (false-positive control, the narrow mutant's
    scenario)."""
    stock = find_tree(log=lambda _m: None)
    mutant = by_id(NARROW_MUTANT if mutant_id == STOCK else mutant_id)
    tree = stock if mutant_id == STOCK else mutants.apply(mutant, stock)
    scenario = catalog.get(mutant.scenarios[0])
    build = builds.ensure_built(variant or scenario.variant, tree, log=log)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as scratch:
        for engine in engines:
            times, failures = [], []
            for run in range(runs):
                seconds, failure = detect_once(build, scenario, engine, run, budget,
                                               run_seconds, scratch, lock_wait)
                log(f"{mutant_id} {engine} run {run + 1}/{runs}: "
                    + (f"detected in {seconds:.1f} s ({failure})" if seconds else "missed"))
                if seconds is not None:
                    times.append(seconds)
                    failures.append(failure)
            rows.append(_row(engine, runs, times, failures))
    return {"mutant": mutant_id, "scenario": scenario.name, "variant": build.variant.name,
            "lock_wait": lock_wait, "runs": runs, "budget_seconds": budget, "run_seconds": run_seconds, "engines": rows}


def _row(engine, runs, times, failures):
    times = sorted(times)
    summary = {"min": times[0], "median": statistics.median(times), "max": times[-1]} \
        if times else {"min": None, "median": None, "max": None}
    return {"engine": engine, "runs": runs, "detected": len(times),
            "seconds": [round(t, 1) for t in times], "failures": failures,
            **{k: (round(v, 1) if v is not None else None) for k, v in summary.items()}}


def markdown(result):
    """The per-engine table (markdown)."""
    lines = [f"{result['mutant']} ({result['scenario']}, {result['variant']}, "
             f"--lock-wait {result['lock_wait']}; "
             f"{result['runs']} runs x <= {result['budget_seconds']} s per engine)", "",
             "| engine | detected | min s | median s | max s |", "|---|---|---|---|---|"]
    for row in result["engines"]:
        cells = [row[k] if row[k] is not None else "-" for k in ("min", "median", "max")]
        lines.append(f"| {row['engine']} | {row['detected']}/{row['runs']} | "
                     + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutant", default=NARROW_MUTANT,
                        help=f"mutant id, or {STOCK!r} for the unmodified tree")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--run-seconds", type=float, default=3)
    parser.add_argument("--variant", help="build variant (default: the scenario's)")
    parser.add_argument("--build-root", help="build directory root (default build/)")
    parser.add_argument("--json", help="also write the result as JSON to this file")
    parser.add_argument("--lock-wait", choices=("spin", "sleep"), default="spin",
                        help="the driver's --lock-wait (default spin, the driver's default)")
    args = parser.parse_args()
    if args.mutant != STOCK and by_id(args.mutant) is None:
        print(f"bench_detect: unknown mutant {args.mutant!r}", file=sys.stderr)
        return 2
    if args.build_root:
        use_build_root(args.build_root)
    try:
        result = measure(args.mutant, args.engines.split(","), args.runs, args.budget,
                         args.run_seconds, args.variant, lock_wait=args.lock_wait)
    except SetupError as error:
        print(f"bench_detect: {error}", file=sys.stderr)
        return 2
    print(markdown(result), end="")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
