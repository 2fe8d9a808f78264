#!/usr/bin/env python3
"""The guided portfolio against the unguided one, same budget, same seeds (docs/steering.md).

    python3 bench/bench_guided.py [--budget 300] [--seed 1000] [--run-seconds 2]
                                  [--mutants split-volatile-reserve,publish-before-save,...]
                                  [--mutant-budget 60] [--json FILE]
    python3 bench/bench_guided.py reference [--budget 600] [--seed 7000000]
                                  [--from-report DIR]

Each measurement is one default job as a user runs it, ``run.py nightly --budget B --seed S
--run-seconds R --shrink-budget 0`` (plus ``--unguided`` for the unguided side), its times read
back from its report: a run counts at the time it finished, from the end of the build.

- stock: the time each side takes to cover every reachable operation pair (the cells of
  scenarios/campaign/reachable_pairs.json) and 90 / 95 / 99 % of them, and what it covered at
  fixed times;
- each mutant of ``--mutants`` (mutants/catalog.py, applied by scenarios/selftest/mutants.apply):
  the time to the first run with a new failure, with ``--max-failures 1`` so the job stops
  there.

``reference`` regenerates scenarios/campaign/reachable_pairs.json: the cells of the pair
universe (scenarios/checker/coverage.py) that an unguided nightly of ``--budget`` seconds
observed, each with the number of its runs that observed it (``--from-report``: from that
nightly's report instead).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mutants.catalog import by_id  # noqa: E402
from scenarios.campaign import steering  # noqa: E402
from scenarios.checker import coverage  # noqa: E402
from scenarios.selftest import mutants  # noqa: E402
from scenarios.setup.source import REPO, SetupError, find_tree  # noqa: E402

NARROW = ("split-volatile-reserve", "publish-before-save", "load-drops-lock")
FRACTIONS = (0.9, 0.95, 0.99, 1.0)
CHECKPOINTS = (30, 60, 120, 240)
SIDES = ("unguided", "guided")


def default_job(directory, budget, seed, run_seconds, guided, extra=()):
    """One ``run.py nightly`` under ``directory``; its loaded summary.json."""
    os.makedirs(directory, exist_ok=True)
    command = [sys.executable, os.path.join(REPO, "run.py"), "nightly", "--budget", str(budget),
               "--seed", str(seed), "--run-seconds", str(run_seconds), "--shrink-budget", "0",
               "--reports-dir", directory, *([] if guided else ["--unguided"]), *extra]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return newest_report(directory)


def newest_report(directory):
    found = sorted((d for d in os.listdir(directory) if not d.startswith(".")),
                   key=lambda d: os.path.getmtime(os.path.join(directory, d)))
    if not found:
        raise SetupError(f"{directory}: the default job wrote no report")
    with open(os.path.join(directory, found[-1], "summary.json"), encoding="utf-8") as stream:
        return json.load(stream)


def _stamp(text):
    return datetime.datetime.fromisoformat(text).timestamp()


def timeline(data):
    """[(seconds from the build's end to the run's end, run)] in run order."""
    started = _stamp(data["created"]) - data["elapsed_seconds"]
    built = started + data["build_seconds"]
    return [(round(_stamp(run["finished"]) - built, 1), run) for run in data["runs"]]


def coverage_curve(data, targets):
    """[(seconds, target cells covered so far)] after each run."""
    covered, curve = set(), []
    for seconds, run in timeline(data):
        covered |= steering.cells_of(run.get("coverage")) & targets
        curve.append((seconds, len(covered)))
    return curve


def time_to(curve, count):
    return next((seconds for seconds, covered in curve if covered >= count), None)


def covered_at(curve, seconds):
    return max([covered for at, covered in curve if at <= seconds], default=0)


def first_detection(data):
    """{seconds to the end of the first run with a new (not known) failure, its number, its
    pair}, or None."""
    new = {f["signature"] for f in data["failures"] if not f["known"]}
    return next(({"seconds": seconds, "run": number, "pair": run["id"].split("-seed")[0] + "@"
                  + (run["params"]["engine"].get("sched") or "pinned")}
                 for number, (seconds, run) in enumerate(timeline(data), 1)
                 if any(f["signature"] in new for f in run["failures"])), None)


def stock_row(data, targets):
    curve = coverage_curve(data, targets)
    return {"runs": len(data["runs"]), "covered": curve[-1][1] if curve else 0,
            "targets": len(targets),
            "time_to": {f"{int(100 * f)}%": time_to(curve, -(-len(targets) * f // 1))
                        for f in FRACTIONS},
            "covered_at": {f"{s}s": covered_at(curve, s) for s in CHECKPOINTS},
            "pairs_run": sum(bool(n) for row in data["portfolio"]["runs"].values()
                             for n in row.values())}


def target_sets():
    """{name: cells}: every reachable cell, and those two reference runs or more observed."""
    reachable = steering.load_reachable()
    return {"all": set(reachable), "seen twice": {c for c, n in reachable.items() if n >= 2}}


def measure(args):
    targets = target_sets()
    scratch = os.path.join(REPO, "build", "bench-guided")
    result = {"budget": args.budget, "seed": args.seed, "run_seconds": args.run_seconds,
              "mutant_budget": args.mutant_budget, "stock": {}, "mutants": {}}
    for side in SIDES:
        data = default_job(os.path.join(scratch, "stock", side), args.budget, args.seed,
                           args.run_seconds, side == "guided")
        result["stock"][side] = {name: stock_row(data, cells) for name, cells in targets.items()}
        print(f"stock {side}: {json.dumps(result['stock'][side])}", file=sys.stderr)
    stock = find_tree(None)
    try:
        for mutant in args.mutants:
            mutants.apply(mutant, stock)
            row = result["mutants"][mutant.id] = {}
            for side in SIDES:
                data = default_job(os.path.join(scratch, mutant.id, side), args.mutant_budget,
                                   args.seed, args.run_seconds, side == "guided",
                                   ["--mbedtls-dir", mutants.WORKSPACE, "--max-failures", "1"])
                row[side] = first_detection(data)
            print(f"{mutant.id}: {json.dumps(row)}", file=sys.stderr)
    finally:
        mutants.apply(None, stock)
    return result


def markdown(result):
    lines = [f"Stock, budget {result['budget']} s, seed {result['seed']}, runs of "
             f"{result['run_seconds']} s; reachable cells covered (time to a fraction of them, "
             "s; covered at a time):", "",
             "| side | targets | runs | pairs run | covered | " +
             " | ".join(f"time to {f:.0%}" for f in FRACTIONS) + " | " +
             " | ".join(f"at {s} s" for s in CHECKPOINTS) + " |",
             "|---" * (5 + len(FRACTIONS) + len(CHECKPOINTS)) + "|"]
    for side, rows in result["stock"].items():
        for name, row in rows.items():
            lines.append(f"| {side} | {name} | {row['runs']} | {row['pairs_run']} | "
                         f"{row['covered']}/{row['targets']} | " +
                         " | ".join(_seconds(v) for v in row["time_to"].values()) + " | " +
                         " | ".join(str(v) for v in row["covered_at"].values()) + " |")
    if result["mutants"]:
        lines += ["", f"Mutants, budget {result['mutant_budget']} s each: seconds to the end "
                      "of the first run with a new failure (its number, its pair):", "",
                  "| mutant | unguided | guided |", "|---|---|---|"]
        lines += [f"| {name} | {_detection(row['unguided'])} | {_detection(row['guided'])} |"
                  for name, row in result["mutants"].items()]
    return "\n".join(lines)


def _seconds(value):
    return "-" if value is None else f"{value:.1f}"


def _detection(found):
    return "missed" if found is None else \
        f"{found['seconds']:.1f} (run {found['run']}, {found['pair']})"


def reference(args):
    """Write scenarios/campaign/reachable_pairs.json from an unguided nightly (run now or given)."""
    if args.from_report:
        with open(os.path.join(args.from_report, "summary.json"), encoding="utf-8") as stream:
            data = json.load(stream)
    else:
        data = default_job(os.path.join(REPO, "build", "bench-guided", "reference"),
                           args.budget, args.seed, 3, guided=False)
    universe = set(coverage.universe()["pairs"])
    pairs, cells = {}, 0
    for run in data["runs"]:
        for first, row in ((run.get("coverage") or {}).get("pairs") or {}).items():
            for second in (b for b, n in row.items() if n and (first, b) in universe):
                into = pairs.setdefault(first, {})
                cells += second not in into
                into[second] = into.get(second, 0) + 1
    head = {"command": f"python3 bench/bench_guided.py reference --budget {args.budget} "
                       f"--seed {args.seed}",
            "what": "the operation pairs (docs/coverage.md) an unguided nightly observed: "
                    "first outcome -> second outcome -> runs that observed the pair",
            "mbedtls": data["mbedtls"]["version"], "runs": len(data["runs"]),
            "elapsed_seconds": data["elapsed_seconds"]}
    rows = [f" {json.dumps(first)}: {json.dumps(dict(sorted(pairs[first].items())))}"
            for first in sorted(pairs)]
    with open(steering.REACHABLE, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(head, indent=1)[:-2] + ',\n "pairs": {\n' + ",\n".join(rows)
                     + "\n }\n}\n")
    print(f"{steering.REACHABLE}: {cells} cells from {len(data['runs'])} runs")


def parse(argv):
    parser = argparse.ArgumentParser(prog="bench_guided")
    sub = parser.add_subparsers(dest="command")
    ref = sub.add_parser("reference")
    ref.add_argument("--budget", type=int, default=600)
    ref.add_argument("--seed", type=int, default=7_000_000)
    ref.add_argument("--from-report")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--run-seconds", type=float, default=2)
    parser.add_argument("--mutants", default=",".join(NARROW))
    parser.add_argument("--mutant-budget", type=int, default=60)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.command is None:
        args.mutants = [by_id(name) for name in args.mutants.split(",") if name]
        if None in args.mutants:
            parser.exit(2, "bench_guided: unknown mutant in --mutants (mutants/catalog.py)\n")
    return args


def main(argv=None):
    args = parse(argv)
    try:
        if args.command == "reference":
            reference(args)
            return 0
        result = measure(args)
    except SetupError as error:
        print(f"bench_guided: {error}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=1)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
