"""The stress subcommands -- run, stress, nightly: which jobs each runs, and when it stops.

All three are sessions (scenarios/campaign/session.py): find the tree, build, run jobs with a live
progress line, shrink new failures, write reports/<run>/, print the one-screen summary (or the JSON
with --json), exit 0 clean / 1 new failures. ``run`` and ``nightly`` are the default job: the
portfolio of scenarios/campaign/portfolio.py under a wall-clock budget that starts when the builds
end. Any ending leaves a report: SIGINT and SIGTERM stop the driver, write the report of the work
done so far (marked interrupted) and exit 130 / 143.
"""
import dataclasses
import json
import signal
import sys
import time

from scenarios import catalog, report
from scenarios.campaign import portfolio
from scenarios.setup.build import Variant
from scenarios.campaign.job import PASS_THROUGH, Job
from scenarios.cli.options import EXIT_CLEAN, EXIT_FAILURE, scenario_overrides
from scenarios.cli.progress import Progress
from scenarios.campaign.session import Refused, Session
from scenarios.campaign.signatures import load_known
from scenarios.setup.source import find_tree

SECONDS_PER_DAY = 86400
NIGHTLY_SEEDS_PER_DAY = 100_000
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop, report what was done, exit 128 + the signal."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def cmd_run(args):
    """The default job: the portfolio until the budget is spent."""
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    return _portfolio_session(args, "run", lambda k: seed + k)


def cmd_nightly(args):
    """The default job in nightly form: stops at the budget or after --max-failures distinct
    new failures. Shard I of N takes seeds base + k*N + (I-1), k = 0, 1, ...: disjoint across
    shards, no coordination needed."""
    shard = args.shard or {"index": 1, "count": 1}
    base = args.seed if args.seed is not None else \
        int(time.time()) // SECONDS_PER_DAY * NIGHTLY_SEEDS_PER_DAY
    return _portfolio_session(args, "nightly",
                              lambda k: base + k * shard["count"] + shard["index"] - 1,
                              args.max_failures, args.shard)


def cmd_stress(args):
    """One scenario, with any parameter overridden, run --runs times on consecutive seeds."""
    job = Job(catalog.get(args.scenario), args.seed, args.seconds, args.ops,
              {name: value for name in PASS_THROUGH
               if (value := getattr(args, name.replace("-", "_")))},
              args.canary, args.variant).replace(**scenario_overrides(args))

    def jobs(session):
        session.prepare([job.variant])
        for index in range(args.runs):
            session.run(job.replace(seed=args.seed + index))
    budget = args.runs * (args.seconds if not args.ops else 0)
    return _session(args, "stress", jobs, budget)


def _portfolio_session(args, command, seed_of, max_failures=None, shard=None):
    scenarios = [catalog.get(name) for name in args.scenarios.split(",")] \
        if args.scenarios else catalog.SCENARIOS
    plan = portfolio.Plan(scenarios, portfolio.parse_engines(args.sched), args.run_seconds,
                          guided=not args.unguided)

    def jobs(session):
        session.plan = plan
        session.prepare([args.variant] if args.variant else plan.variants())
        for k in range(NIGHTLY_SEEDS_PER_DAY):
            if max_failures and session.new_failures() >= max_failures:
                return
            scenario, engine = plan.next()
            if args.threads:
                scenario = dataclasses.replace(scenario, threads=args.threads)
            seconds = session.seconds_for(scenario, plan.run_seconds)
            if seconds is None:
                return
            pinned = "--sched" in scenario.flags       # the scenario's own engine
            try:
                data = session.run(Job(scenario, seed_of(k), seconds,
                                engine={} if pinned else {"sched": engine},
                                build_variant=args.variant), refusable=True)
            except Refused as why:
                for other in scenario.engines if why.every_engine else (engine,):
                    if not plan.skip(scenario, other, str(why)):
                        return
                continue
            plan.done(scenario, engine, data.get("coverage"))
    return _session(args, command, jobs, args.budget, shard)


def _session(args, command, jobs, budget, shard=None):
    if args.variant:
        Variant.parse(args.variant)
    known = load_known(args.known_signatures)
    progress = Progress()
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in EXIT_SIGNAL}
    session = None
    try:
        tree = find_tree(args.mbedtls_dir, log=progress.log)
        session = Session(command, tree, progress, known, shard, budget, args.reports_dir,
                          max_disk=args.max_disk * 1_000_000)
        args.report_directory = session.directory
        jobs(session)
        data, directory = session.finish(args.shrink_budget)
        code = EXIT_CLEAN if data["verdict"] == "clean" else EXIT_FAILURE
    except (Interrupted, KeyboardInterrupt) as error:
        signum = getattr(error, "signum", signal.SIGINT)
        for other in EXIT_SIGNAL:                  # a second signal must not cut the report
            signal.signal(other, signal.SIG_IGN)
        why = f"interrupted by {signal.Signals(signum).name}"
        if session is None:
            progress.log(f"run.py: {why}")
            return EXIT_SIGNAL[signum]
        code = EXIT_SIGNAL[signum]
        data, directory = session.finish(0, interrupted=why)
        progress.log(f"run.py: {why}; the report of the work done so far: "
                     f"{report.relative(directory)}")
    except BaseException as error:     # setup or harness error: report, then cli.main says it
        if session is not None:
            session.finish_quietly(f"stopped by {type(error).__name__}: {error}")
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        progress.close()
    print(json.dumps(data, indent=2) if args.json else report.terminal(data, directory),
          file=sys.stdout)
    return code


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)
