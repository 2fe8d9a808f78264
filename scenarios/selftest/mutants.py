"""Self-test: inject each catalogued bug (mutants/catalog.py) into a copy of the tree, run the
default job on it exactly as a user does, and write a detection matrix.

The main column is the unhinted default job: ``python3 run.py --mbedtls-dir <mutated tree>
--budget B`` (scenarios/campaign/portfolio.py decides what runs; nothing knows the bug), timed from the
end of its build to its first NEW FAILURE line, with whether it exited 1 within B + 10 s.
``--full-runs K`` lets only the first K runs of each mutant go to their end (exit code and
exit time measured); the later ones are interrupted (SIGINT, as a user's Ctrl-C) at their first
NEW FAILURE line, which measures detection and its time at a fraction of the cost. The stock
tree, where nothing should be reported, runs K times in full.
``--hinted`` adds the old second column: the mutant's own hinted scenarios and engines first,
then every scenario, in runs of ``RUN_SECONDS`` (what a user who already knows the bug would
run).

All mutants share one workspace copy of the tree (build/mutants/mbedtls): before a mutant is
applied, the file the previous one edited is restored, so each mutant costs an incremental build
(one object and a link), never a full one.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from mutants.catalog import MUTANTS, by_id
from scenarios import catalog
from scenarios.selftest import upstream
from scenarios.setup.build import BUILD_ROOT, ensure_built
from scenarios.campaign.runner import run_scenario
from scenarios.report import new_report_dir
from scenarios.report.matrix import matrix_markdown, write_matrix
from scenarios.setup.source import REPO, SetupError, check_tree, find_tree

WORKSPACE = os.path.join(BUILD_ROOT, "mutants", "mbedtls")
RUN_SECONDS = 3
EXIT_SLACK_SECONDS = 10      # the default job ends within its budget plus this (portfolio)


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
    late: list = field(default_factory=list)          # seconds of detections past the budget
    full_runs: int = None                             # runs that went to their end (exit timed)
    upstream: dict = None                             # upstream's suites (upstream.measure)
    hinted: dict = None                               # the hinted portfolio's row, when run

    def to_json(self):
        times = sorted(self.detected)
        return {"mutant": self.mutant, "title": self.title, "runs": self.runs,
                "detected": len(times), "expected_oracles": list(self.expected_oracles),
                "median_seconds": round(statistics.median(times), 1) if times else None,
                "max_seconds": round(times[-1], 1) if times else None,
                "seconds": [round(t, 1) for t in times], "late_seconds": self.late,
                "full_runs": self.runs if self.full_runs is None else self.full_runs,
                "oracles": self.oracles, "scenarios": self.scenarios, "upstream": self.upstream,
                "hinted": self.hinted}


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


ENGINES = ("os", "delay", "random", "pct")      # --sched of the default suite, in turn


def portfolio(mutant):
    """(scenario, engine) pairs to try: each hinted scenario under each hinted engine, then the
    default suite under every engine; known issues excluded (they always fail)."""
    hinted = [(name, engine) for name in (mutant.scenarios if mutant else ())
              for engine in (mutant.engines if mutant else ("os",))]
    pairs = hinted + [(scenario.name, engine) for engine in ENGINES
                      for scenario in catalog.SCENARIOS]
    chosen = []
    for name, engine in pairs:
        scenario = _lookup(name)
        if scenario and not scenario.known_issue and (scenario, engine) not in chosen:
            chosen.append((scenario, engine))
    return chosen


def _lookup(name):
    try:
        return catalog.get(name)
    except SetupError:
        return None


def measure(mutant, stock, runs, budget, directory, log=print, upstream_runs=0):
    """Run the portfolio `runs` times (distinct seeds) against one mutant (None: stock), then
    upstream's threaded suites `upstream_runs` times on the same tree (scenarios/selftest/upstream.py).

    The clock of a run counts stress and checking only: time spent building a variant the
    portfolio reaches for the first time is taken off it. A mutant counts as detected only when
    the failing scenario run *ended* within the budget; the stock tree counts every failure."""
    tree = apply(mutant, stock)
    name = mutant.id if mutant else "stock"
    result = Detection(name, mutant.title if mutant else "unmodified tree",
                       mutant.oracles if mutant else (), runs)
    scenarios = portfolio(mutant)
    for run in range(runs):
        seconds = _one_run(result, scenarios, tree, run, budget, directory, strict=mutant is None)
        verdict = "missed" if seconds is None else f"detected in {seconds:.1f} s"
        log(f"{name}: run {run + 1}/{runs}: {verdict}")
    if upstream_runs:
        result.upstream = upstream.measure(tree, stock, upstream_runs,
                                           os.path.join(directory, name, "upstream"), log)
        log(f"{name}: upstream suites: caught {result.upstream['caught']}/{upstream_runs} "
            f"{', '.join(sorted(result.upstream['kinds']))}")
    return result


def measure_default_job(mutant, stock, runs, budget, directory, log=print, full_runs=None):
    """The unhinted default job, ``runs`` times (seeds 1000, 2000, ...), against one mutant
    (None: stock): detected = a NEW FAILURE line and exit 1; its time counts from the build's
    end; a detection whose command ended later than budget + EXIT_SLACK_SECONDS is late. Runs
    past the first ``full_runs`` (None: all) stop at their first NEW FAILURE line: detected =
    that line within the budget; their exit is not timed."""
    apply(mutant, stock)
    name = mutant.id if mutant else "stock"
    full = runs if full_runs is None else min(runs, full_runs)
    runs = full if mutant is None else runs
    result = Detection(name, mutant.title if mutant else "unmodified tree",
                       mutant.oracles if mutant else (), runs, full_runs=full)
    for run in range(runs):
        stop = run >= full
        outcome = _default_job(budget, 1000 * (run + 1), os.path.join(directory, name),
                               stop_at_first=stop)
        log(f"{name}: run {run + 1}/{runs}: " + _record(result, outcome, budget, stop))
    return result


def _record(result, outcome, budget, stopped):
    """Count one default-job outcome in ``result``; the log line's verdict."""
    first = outcome["first_failure"]
    if first is None or (not stopped and outcome["exit"] != 1) or (stopped and first > budget):
        return f"missed (exit {outcome['exit']}, {outcome['wall']:.0f} s after the build)"
    if not stopped and outcome["wall"] > budget + EXIT_SLACK_SECONDS:
        result.late.append(round(outcome["wall"], 1))
    result.detected.append(first)
    for kind, where in outcome["found"]:
        result.oracles[kind] = result.oracles.get(kind, 0) + 1
        result.scenarios[where] = result.scenarios.get(where, 0) + 1
    ending = "stopped there" if stopped else f"exit 1 {outcome['wall']:.0f} s after the build"
    return f"detected in {first:.1f} s ({ending})"


def _default_job(budget, seed, directory, stop_at_first=False):
    """One ``run.py --mbedtls-dir WORKSPACE`` as a user runs it: its stderr read as it comes,
    timed from the build line; with ``stop_at_first`` interrupted (SIGINT) at its first NEW
    FAILURE line (the interrupted report still names the failure)."""
    os.makedirs(directory, exist_ok=True)
    command = [sys.executable, os.path.join(REPO, "run.py"), "--mbedtls-dir", WORKSPACE,
               "--budget", str(budget), "--seed", str(seed), "--reports-dir", directory]
    built = first = None
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as process:
        for line in process.stderr:
            if built is None and line.startswith("build: "):
                built = time.monotonic()
            elif first is None and line.startswith("NEW FAILURE") and built is not None:
                first = time.monotonic() - built
                if stop_at_first:
                    process.send_signal(signal.SIGINT)
    ended = time.monotonic()
    return {"exit": process.returncode, "first_failure": first,
            "wall": ended - (built or ended), "found": _new_failures(directory)}


def _new_failures(directory):
    """(kind, scenario) of the new failures of the newest report under ``directory``."""
    reports = sorted((d for d in os.listdir(directory) if not d.startswith(".")),
                     key=lambda d: os.path.getmtime(os.path.join(directory, d)))
    try:
        with open(os.path.join(directory, reports[-1], "summary.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (IndexError, OSError, ValueError):
        return []
    return [(f["kind"], f["found_by"]["scenario"]) for f in data["failures"] if not f["known"]]


def _one_run(result, scenarios, tree, run, budget, directory, strict):
    """One run: scenarios in turn until one fails or the budget is spent. Seconds or None."""
    clock, attempt = 0.0, 0
    while clock < budget:
        scenario, engine = scenarios[attempt % len(scenarios)]
        build = ensure_built(scenario.variant, tree, log=lambda _m: None)   # off the clock
        started = time.monotonic()
        outcome = run_scenario(build, scenario, 1000 * (run + 1) + attempt, RUN_SECONDS,
                               os.path.join(directory, result.mutant, f"run{run}-{attempt}"),
                               extra=() if engine == "os" else ("--sched", engine))
        clock += time.monotonic() - started
        attempt += 1
        if not outcome.clean and (clock <= budget or strict):
            where = scenario.name + ("" if engine == "os" else "@" + engine)
            _count(result, outcome, clock, where)
            return clock
        if not outcome.clean:
            result.late.append(round(clock, 1))
            return None
        shutil.rmtree(outcome.directory, ignore_errors=True)
    return None


def _count(result, outcome, seconds, where):
    result.detected.append(seconds)
    for kind in sorted({failure.kind for failure in outcome.failures}):
        result.oracles[kind] = result.oracles.get(kind, 0) + 1
    result.scenarios[where] = result.scenarios.get(where, 0) + 1


def cmd_mutants(args):
    """run.py mutants: the stock tree first (false positives), then each selected mutant.
    Exit 0 when the stock tree stays clean (psa-stress and, with --upstream, upstream's suites)
    and psa-stress catches every mutant in every run; upstream's misses are data, not failures."""
    chosen = select(args.only)
    stock = find_tree(args.mbedtls_dir)
    with_upstream = args.upstream or args.upstream_only
    if with_upstream:
        upstream.check_upstream_tree(stock)
    runs = 0 if args.upstream_only else args.runs
    upstream_runs = args.upstream_runs if with_upstream else 0
    directory = new_report_dir(label="mutants")
    rows = []
    for mutant in [None, *chosen]:
        row = measure_default_job(mutant, stock, runs, args.budget, directory,
                                  full_runs=args.full_runs)
        if args.hinted or upstream_runs:
            hinted = measure(mutant, stock, runs if args.hinted else 0, args.budget, directory,
                             upstream_runs=upstream_runs)
            row.upstream = hinted.upstream
            row.hinted = hinted.to_json() if args.hinted else None
        rows.append(row)
    data = write_matrix(directory, rows, args.budget)
    print(matrix_markdown(data), end="")
    print(f"matrix: {os.path.relpath(directory)}/matrix.html")
    clean_stock = not rows[0].detected and not (rows[0].upstream or {}).get("caught")
    all_caught = all(len(row.detected) == row.runs for row in rows[1:])
    return 0 if clean_stock and all_caught else 1
