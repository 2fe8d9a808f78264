"""Command-line flags shared by the subcommands, their value types, and the exit codes.

The same flag means the same thing everywhere: --mbedtls-dir, --variant, --seed, --budget,
--known-signatures, --shrink-budget, --reports-dir, --json. ``stress`` gets one flag per tunable
scenario field (scenarios/catalog.py), so a new scenario parameter is a new flag with no edit here.
"""
import argparse
import dataclasses
import os
import re
import sys

from scenarios import catalog
from scenarios.campaign import portfolio
from scenarios.campaign.job import PASS_THROUGH, scenario_parameters
from scenarios.setup.source import REPO

EXIT_CLEAN, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_HARNESS = 0, 1, 2, 3
DEFAULT_BUDGET = 45
DEFAULT_NIGHTLY_BUDGET = 600
DEFAULT_SHRINK_BUDGET = 120
DEFAULT_MAX_DISK_MB = 300
KNOWN_SIGNATURES = os.path.join(REPO, "known-signatures.txt")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):
        print(f"run.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def positive_int(text):
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def natural_int(text):
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def int_in(low, high):
    """The type of an integer flag the driver accepts in low..high (harness/driver/options.c)."""
    def checked(text):
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not in {low}..{high}")
        return value
    checked.__name__ = f"integer in {low}..{high}"
    return checked


# The driver's ranges (harness/driver/options.c); a seed leaves room for the runs' seed + k.
THREADS = int_in(1, 1024)
SEED = int_in(0, 2 ** 63 - 1)
OPS = int_in(1, 2 ** 32 - 1)
DRIVER_RANGES = {"threads": THREADS, "volatile_pool": int_in(1, 65536),
                 "persistent_ids": int_in(1, 0x3FFFFFFF), "persistent_percent": int_in(0, 100)}


def non_empty(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def known_signatures_file(text):
    """The default file may be missing (nothing is known); any other must exist."""
    if text != KNOWN_SIGNATURES and not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    return text


def positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def shard_spec(text):
    """'I/N' with 1 <= I <= N -> {"index": I, "count": N}."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a shard I/N with 1 <= I <= N")
    return {"index": int(match.group(1)), "count": int(match.group(2))}


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def add_target_options(parser):
    """What to test and how to answer: every subcommand that runs the driver."""
    parser.add_argument("--mbedtls-dir", help="Mbed TLS 3.6.x source tree to test "
                        "(default: the submodule, else Debian's source package)")
    parser.add_argument("--variant", help="build variant for every run: tsan, plain, asan, "
                        "optionally -static<N> (default: each scenario's own, or the report's)")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (the progress stays on stderr)")


def add_session_options(parser):
    parser.add_argument("--known-signatures", default=KNOWN_SIGNATURES,
                        type=known_signatures_file,
                        help="file of accepted failure signatures or ids, one a line "
                        "(default known-signatures.txt)")
    parser.add_argument("--shrink-budget", type=natural_int, default=DEFAULT_SHRINK_BUDGET,
                        help="seconds for shrinking the new failures, 0 = off "
                        f"(default {DEFAULT_SHRINK_BUDGET})")
    parser.add_argument("--reports-dir", default=os.path.join(REPO, "reports"), type=non_empty,
                        help="where the report directory is created (default reports/)")
    parser.add_argument("--max-disk", type=positive_int, default=DEFAULT_MAX_DISK_MB,
                        help="megabytes of failing runs' histories a session keeps; past it "
                        f"only their logs and summaries (default {DEFAULT_MAX_DISK_MB})")


def _add_portfolio_options(parser, budget, run_seconds):
    """The default job's flags (run and nightly): the wall-clock budget and what narrows the
    portfolio (scenarios/campaign/portfolio.py)."""
    parser.add_argument("--budget", type=positive_int, default=budget,
                        help="wall-clock seconds for everything after the build: stress, "
                        f"checking, shrinking, the report (default {budget})")
    parser.add_argument("--scenarios", type=non_empty,
                        help="comma-separated scenario names (default: the whole catalogue)")
    parser.add_argument("--sched", help="comma-separated scheduling engines among "
                        f"{', '.join(catalog.ENGINES)} (default: every engine)")
    parser.add_argument("--run-seconds", type=positive_seconds, default=run_seconds,
                        help=f"length of one run (default {run_seconds:g})")
    parser.add_argument("--threads", type=THREADS, help="override the scenarios' threads")
    parser.add_argument("--unguided", action="store_true", help="do not steer the portfolio by "
                        "the coverage of its runs (docs/steering.md)")


def add_run_options(parser):
    _add_portfolio_options(parser, DEFAULT_BUDGET, portfolio.RUN_SECONDS)
    parser.add_argument("--seed", type=SEED, help="base seed (default: from the clock)")


def add_nightly_options(parser):
    _add_portfolio_options(parser, DEFAULT_NIGHTLY_BUDGET, portfolio.NIGHTLY_RUN_SECONDS)
    parser.add_argument("--shard", type=shard_spec, help="I/N: this job is shard I of N; shards "
                        "use disjoint seeds (seed = base + k*N + I-1)")
    parser.add_argument("--max-failures", type=positive_int, default=5,
                        help="stop after this many distinct new failures (default 5)")
    parser.add_argument("--seed", type=SEED,
                        help="base seed (default: from the date, the same for every shard)")


def add_stress_options(parser):
    parser.add_argument("scenario", help="scenario name (run.py list)")
    parser.add_argument("--seed", type=SEED, default=1, help="seed (default 1)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=positive_seconds, default=10,
                        help="length of each run in seconds (default 10)")
    length.add_argument("--ops", type=OPS, help="exact number of calls per run")
    parser.add_argument("--runs", type=positive_int, default=1,
                        help="runs, with seeds seed, seed+1, ... (default 1)")
    for name in PASS_THROUGH:
        parser.add_argument(f"--{name}", help=f"driver --{name} (scheduling engine / fault "
                            "injection; see the driver's --help)")
    parser.add_argument("--canary", action="store_true", help="use the test driver and run its "
                        "deliberate data race too (proves the TSan oracle)")
    for name, value in scenario_parameters(catalog.SCENARIOS[0]).items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=f"param_{name}",
                            type=DRIVER_RANGES.get(name, natural_int) if isinstance(value, int)
                            else str,
                            metavar="N" if isinstance(value, int) else "VALUE",
                            help=f"scenario parameter {name} (default: the scenario's)")


def scenario_overrides(args):
    """The scenario parameters given on the command line."""
    fields = {f.name for f in dataclasses.fields(catalog.Scenario)}
    return {name[len("param_"):]: value for name, value in vars(args).items()
            if name.startswith("param_") and value is not None and name[6:] in fields}
