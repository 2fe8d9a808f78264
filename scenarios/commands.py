"""The stress subcommands -- run, stress, nightly: which jobs each runs, and when it stops.

All three are sessions (scenarios/session.py): find the tree, build, run jobs with a live
progress line, shrink new failures, write reports/<run>/, print the one-screen summary (or the
JSON with --json), exit 0 clean / 1 new failures.
"""
import dataclasses
import json
import sys
import time

from scenarios import catalog, report
from scenarios.build import Variant
from scenarios.job import PASS_THROUGH, Job
from scenarios.options import EXIT_CLEAN, EXIT_FAILURE, scenario_overrides
from scenarios.progress import Progress
from scenarios.session import Session
from scenarios.signatures import load_known
from scenarios.source import SetupError, find_tree

SECONDS_PER_DAY = 86400
NIGHTLY_SEEDS_PER_DAY = 100_000


def cmd_run(args):
    """The default suite: each scenario once, the budget shared equally."""
    scenarios = _scenarios(args.scenarios)
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    seconds = max(2, args.budget // len(scenarios))

    def jobs(session):
        for index, scenario in enumerate(scenarios):
            if args.threads:
                scenario = dataclasses.replace(scenario, threads=args.threads)
            session.run(Job(scenario, seed + index, seconds, build_variant=args.variant))
    return _session(args, "run", jobs, args.budget)


def cmd_stress(args):
    """One scenario, with any parameter overridden, run --runs times on consecutive seeds."""
    job = Job(catalog.get(args.scenario), args.seed, args.seconds, args.ops,
              {name: value for name in PASS_THROUGH
               if (value := getattr(args, name.replace("-", "_")))},
              args.canary, args.variant).replace(**scenario_overrides(args))

    def jobs(session):
        for index in range(args.runs):
            session.run(job.replace(seed=args.seed + index))
    budget = args.runs * (args.seconds if not args.ops else 0)
    return _session(args, "stress", jobs, budget)


def cmd_nightly(args):
    """The suite round-robin in runs of --run-seconds until the budget is spent or
    --max-failures distinct new failures are found. Shard I of N takes seeds
    base + k*N + (I-1), k = 0, 1, ...: disjoint across shards, no coordination needed."""
    scenarios = _scenarios(args.scenarios)
    shard = args.shard or {"index": 1, "count": 1}
    base = args.seed if args.seed is not None else \
        int(time.time()) // SECONDS_PER_DAY * NIGHTLY_SEEDS_PER_DAY

    def jobs(session):
        deadline = time.monotonic() + args.budget
        for k in range(NIGHTLY_SEEDS_PER_DAY):
            remaining = deadline - time.monotonic()
            if remaining < 1 or session.new_failures() >= args.max_failures:
                return
            seed = base + k * shard["count"] + shard["index"] - 1
            session.run(Job(scenarios[k % len(scenarios)], seed,
                            round(min(args.run_seconds, remaining), 1),
                            build_variant=args.variant))
    return _session(args, "nightly", jobs, args.budget, args.shard)


def _scenarios(names):
    return [catalog.get(name) for name in
            (names.split(",") if names else catalog.DEFAULT_SUITE)]


def _session(args, command, jobs, budget, shard=None):
    if args.variant:
        Variant.parse(args.variant)
    known = load_known(args.known_signatures)
    progress = Progress()
    try:
        tree = find_tree(args.mbedtls_dir, log=progress.log)
        session = Session(command, tree, progress, known, shard, budget, args.reports_dir)
        args.report_directory = session.directory
        jobs(GuardedSession(session))
        data, directory = session.finish(args.shrink_budget)
    finally:
        progress.close()
    print(json.dumps(data, indent=2) if args.json else report.terminal(data, directory),
          file=sys.stdout)
    return EXIT_CLEAN if data["verdict"] == "clean" else EXIT_FAILURE


class GuardedSession:
    """The session as the job loops see it: a driver that refused its flags (exit 2) is bad
    input for run.py too, not a failure of the library."""

    def __init__(self, session):
        self.session = session

    def run(self, job):
        data = self.session.run(job)
        for failure in data["failures"]:
            if failure["kind"] == "driver-error" and failure["message"].startswith(
                    "driver exit code 2:"):
                raise SetupError(failure["message"].split(": ", 1)[1])
        return data

    def new_failures(self):
        return self.session.new_failures()
