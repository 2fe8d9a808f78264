"""Self-test: inject each catalogued bug (mutants/catalog.py) into a copy of the tree, run the
scenario portfolio until an oracle fires or the budget runs out, and write a detection matrix.

All mutants share one workspace copy of the tree (build/mutants/mbedtls): before a mutant is
applied, the file the previous one edited is restored, so each mutant costs an incremental build
(one object and a link), never a full one.
"""
import json
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field

from mutants.catalog import MUTANTS, by_id
from scenarios import catalog
from scenarios.build import BUILD_ROOT, ensure_built
from scenarios.runner import run_scenario
from scenarios.report import new_report_dir
from scenarios.source import SetupError, check_tree, find_tree

WORKSPACE = os.path.join(BUILD_ROOT, "mutants", "mbedtls")
RUN_SECONDS = 3


@dataclass
class Detection:
    """One mutant (or the stock tree) over N independent runs."""
    mutant: str
    title: str
    expected_oracles: tuple
    runs: int
    detected: list = field(default_factory=list)      # seconds-to-detect of detecting runs
    oracles: dict = field(default_factory=dict)       # failure kind -> number of runs
    scenarios: dict = field(default_factory=dict)     # scenario that caught it -> runs

    def to_json(self):
        times = sorted(self.detected)
        return {"mutant": self.mutant, "title": self.title, "runs": self.runs,
                "detected": len(times), "expected_oracles": list(self.expected_oracles),
                "median_seconds": round(statistics.median(times), 1) if times else None,
                "max_seconds": round(times[-1], 1) if times else None,
                "oracles": self.oracles, "scenarios": self.scenarios}


def select(only):
    if not only:
        return list(MUTANTS)
    chosen = [by_id(name) for name in only.split(",")]
    unknown = [name for name, mutant in zip(only.split(","), chosen) if mutant is None]
    if unknown:
        raise SetupError(f"unknown mutant {unknown[0]!r} (see mutants/catalog.py)")
    return chosen


def apply(mutant, stock):
    """The workspace tree with exactly this mutant applied; SetupError if it does not apply."""
    if not os.path.isdir(WORKSPACE):
        for sub in ("library", "include"):
            shutil.copytree(os.path.join(stock.path, sub), os.path.join(WORKSPACE, sub))
    for other in MUTANTS:        # restore every file a mutant may have edited
        _restore(os.path.join(stock.path, other.path), os.path.join(WORKSPACE, other.path))
    if mutant is None:
        return check_tree(WORKSPACE, "mutant")
    target = os.path.join(WORKSPACE, mutant.path)
    with open(target, encoding="utf-8") as handle:
        text = handle.read()
    if text.count(mutant.old) != 1:
        raise SetupError(f"mutant {mutant.id} does not apply to Mbed TLS {stock.version} "
                         f"({mutant.path} changed)")
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text.replace(mutant.old, mutant.new))
    return check_tree(WORKSPACE, "mutant")


def _restore(pristine, copy):
    """Copy back only when the content differs (an unchanged mtime avoids a rebuild)."""
    with open(pristine, "rb") as a, open(copy, "rb") as b:
        if a.read() == b.read():
            return
    shutil.copyfile(pristine, copy)


def portfolio(mutant):
    """Scenarios to try, the mutant's hints first; known issues excluded (they always fail)."""
    names = list(mutant.scenarios if mutant else ()) + list(catalog.DEFAULT_SUITE)
    chosen = []
    for name in names:
        scenario = _lookup(name)
        if scenario and not getattr(scenario, "known_issue", None) and scenario not in chosen:
            chosen.append(scenario)
    return chosen


def _lookup(name):
    try:
        return catalog.get(name)
    except SetupError:
        return None


def measure(mutant, stock, runs, budget, directory, log=print):
    """Run the portfolio `runs` times (distinct seeds) against one mutant (None: stock)."""
    tree = apply(mutant, stock)
    name = mutant.id if mutant else "stock"
    result = Detection(name, mutant.title if mutant else "unmodified tree",
                       mutant.oracles if mutant else (), runs)
    scenarios = portfolio(mutant)
    for run in range(runs):
        started, attempt = time.monotonic(), 0
        while time.monotonic() - started < budget:
            scenario = scenarios[attempt % len(scenarios)]
            build = ensure_built(scenario.variant, tree, log=lambda _m: None)
            seed = 1000 * (run + 1) + attempt
            outcome = run_scenario(build, scenario, seed, RUN_SECONDS,
                                   os.path.join(directory, name, f"run{run}-{attempt}"))
            attempt += 1
            if not outcome.clean:
                _count(result, outcome, time.monotonic() - started)
                break
            shutil.rmtree(outcome.directory, ignore_errors=True)
        log(f"{name}: run {run + 1}/{runs}: "
            f"{'detected' if len(result.detected) > run else 'missed'}")
    return result


def _count(result, outcome, seconds):
    result.detected.append(seconds)
    for kind in sorted({failure.kind for failure in outcome.failures}):
        result.oracles[kind] = result.oracles.get(kind, 0) + 1
    result.scenarios[outcome.scenario] = result.scenarios.get(outcome.scenario, 0) + 1


def write_matrix(directory, rows, budget):
    data = {"schema": 1, "budget_seconds_per_run": budget,
            "rows": [row.to_json() for row in rows]}
    with open(os.path.join(directory, "matrix.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    with open(os.path.join(directory, "matrix.md"), "w", encoding="utf-8") as handle:
        handle.write(matrix_markdown(data))
    return data


def matrix_markdown(data):
    lines = ["| mutant | detected | median s | max s | oracles | caught by |",
             "|---|---|---|---|---|---|"]
    for row in data["rows"]:
        oracles = ", ".join(f"{k} {v}" for k, v in sorted(row["oracles"].items())) or "-"
        where = ", ".join(sorted(row["scenarios"])) or "-"
        lines.append(f"| {row['mutant']} | {row['detected']}/{row['runs']} | "
                     f"{row['median_seconds'] if row['median_seconds'] is not None else '-'} | "
                     f"{row['max_seconds'] if row['max_seconds'] is not None else '-'} | "
                     f"{oracles} | {where} |")
    return "\n".join(lines) + "\n"


def cmd_mutants(args):
    """run.py mutants: the stock tree first (false positives), then each selected mutant.
    Exit 0 when the stock tree stays clean and every mutant is caught in every run."""
    chosen = select(args.only)
    stock = find_tree(args.mbedtls_dir)
    directory = new_report_dir(label="mutants")
    rows = [measure(None, stock, args.runs, args.budget, directory)]
    rows += [measure(mutant, stock, args.runs, args.budget, directory) for mutant in chosen]
    data = write_matrix(directory, rows, args.budget)
    print(matrix_markdown(data), end="")
    print(f"matrix: {os.path.relpath(directory)}/matrix.md")
    clean_stock = not rows[0].detected
    all_caught = all(len(row.detected) == row.runs for row in rows[1:])
    return 0 if clean_stock and all_caught else 1
