"""Command line of psa-stress (run.py hands over here).

  run.py [run]  [--mbedtls-dir DIR] [--budget S] [--variant V] [--seed N] [--scenarios a,b]
  run.py check  HISTORY [--json]
  run.py list
  run.py test   [pytest arguments]

Exit codes: 0 clean, 1 a failure was found (sanitizer report, checker violation, crash, hang),
2 bad input or setup error, 3 harness error (a bug in psa-stress itself).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from scenarios import catalog, check, report, tools
from scenarios.build import Variant, ensure_built
from scenarios.history import HistoryError
from scenarios.progress import Progress
from scenarios.runner import run_scenario
from scenarios.source import REPO, SetupError, find_tree

EXIT_CLEAN, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_HARNESS = 0, 1, 2, 3
SUBCOMMANDS = ("run", "check", "list", "test")
DEFAULT_BUDGET = 45


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):
        print(f"run.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def make_parser():
    parser = Parser(prog="run.py", description="Concurrency stress testing of the Mbed TLS PSA "
                    "key store. Without a subcommand: run the default suite.")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    run = commands.add_parser("run", help="build and run the scenario suite (default)")
    run.add_argument("--mbedtls-dir", help="Mbed TLS 3.6.x source tree to test "
                     "(default: the submodule, else Debian's source package)")
    run.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET,
                     help=f"total stress seconds, shared by the scenarios (default {DEFAULT_BUDGET})")
    run.add_argument("--variant", default="tsan", help="build variant: tsan (default), plain, asan")
    run.add_argument("--seed", type=positive_int, help="base seed (default: from the clock)")
    run.add_argument("--scenarios", help="comma-separated scenario names (default: the suite)")
    run.add_argument("--threads", type=positive_int, help="override the scenarios' thread count")
    chk = commands.add_parser("check", help="check a history file for linearizability")
    chk.add_argument("history", help="history file (JSON Lines, docs/history-format.md)")
    chk.add_argument("--json", action="store_true", help="print the verdict as JSON")
    commands.add_parser("list", help="list the scenarios")
    test = commands.add_parser("test", help="run the project's pytest suite")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    parser = make_parser()
    if argv[0] == "test" and not {"-h", "--help"} & set(argv[1:]):
        args, args.pytest_args = parser.parse_args(["test"]), argv[1:]   # all of it for pytest
    else:
        args = parser.parse_args(argv)
    handler = {"run": cmd_run, "check": cmd_check, "list": cmd_list, "test": cmd_test}
    try:
        return handler[args.command](args)
    except SetupError as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return EXIT_HARNESS


def cmd_run(args):
    scenarios = [catalog.get(name) for name in
                 (args.scenarios.split(",") if args.scenarios else catalog.DEFAULT_SUITE)]
    Variant.parse(args.variant)
    seed = args.seed or int(time.time()) % 1_000_000
    progress = Progress()
    started = time.monotonic()
    try:
        tree = find_tree(args.mbedtls_dir, log=progress.log)
        progress.update(f"building {args.variant} from Mbed TLS {tree.version} ...")
        build = ensure_built(args.variant, tree, log=progress.log)
        directory = report.new_report_dir()
        runs = _run_suite(build, scenarios, seed, args, directory, progress)
    finally:
        progress.close()
    data = report.summary(tree, args.variant, args.budget, runs, time.monotonic() - started)
    report.write(directory, data)
    print(report.terminal(data, directory))
    return EXIT_CLEAN if data["verdict"] == "clean" else EXIT_FAILURE


def _run_suite(build, scenarios, seed, args, directory, progress):
    seconds = max(2, args.budget // len(scenarios))
    runs = []
    for index, scenario in enumerate(scenarios):
        progress.update(f"{index + 1}/{len(scenarios)} {scenario.name} seed {seed + index}: "
                        f"stressing for {seconds} s, then checking")
        run_dir = os.path.join(directory, f"{scenario.name}-seed{seed + index}")
        result = run_scenario(build, scenario, seed + index, seconds, run_dir, args.threads)
        if result.clean:
            shutil.rmtree(run_dir, ignore_errors=True)
        runs.append(result)
        state = "clean" if result.clean else f"FAILED ({len(result.failures)} findings)"
        progress.log(f"{scenario.name} seed {seed + index}: {result.ops} calls, "
                     f"{result.ops_per_sec:.0f} calls/s, {state}")
    return runs


def cmd_check(args):
    if not os.path.isfile(args.history):
        print(f"run.py: error: {args.history}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        result = check.check_file(args.history)
    except HistoryError as error:
        print(f"run.py: error: {args.history}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(check.format_text(result))
    return EXIT_CLEAN if result.verdict == "ok" else EXIT_FAILURE


def cmd_list(_args):
    for scenario in catalog.SCENARIOS:
        print(f"{scenario.name:<20} {scenario.attacks}")
    return EXIT_CLEAN


def cmd_test(args):
    """Run pytest on tests/, with Debian's python3-pytest if this interpreter lacks pytest."""
    command = ["-m", "pytest", *args.pytest_args]   # pytest.ini: testpaths = tests
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and _has_pytest(python):
            return subprocess.run([python, *command], cwd=REPO).returncode
    tools.require(["python3-pytest"])
    return subprocess.run(["/usr/bin/python3", *command], cwd=REPO).returncode


def _has_pytest(python):
    probe = subprocess.run([python, "-c", "import pytest"], capture_output=True)
    return probe.returncode == 0
