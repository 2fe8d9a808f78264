"""Command line of psa-stress (run.py hands over here).

  run.py [run]    the default suite            [--budget S] [--seed N] [--scenarios a,b] ...
  run.py stress   SCENARIO, one job repeated   [--threads N] [--seconds S | --ops N] [--seed N]
                  [--runs N] [--sched E] [--faults F] [--mix ...] [--volatile-pool N] ...
  run.py nightly  the suite round-robin under a time budget [--budget S] [--shard I/N]
                  [--max-failures N] [--run-seconds S]
  run.py repro    REPORT-DIR | FAILURE-ID [--failure ID] [--replays 10]
  run.py check    HISTORY
  run.py convert  BINARY-HISTORY OUT.jsonl
  run.py list
  run.py merge    REPORT-DIR... [--out DIR]
  run.py coverage REPORT-DIR...   merged coverage; what each report covered the earlier did not
  run.py mutants  [--only ID,..] [--runs N] [--budget S]   detection matrix of mutants/
                  [--upstream | --upstream-only] [--upstream-runs N]
  run.py bisect   --good REF --bad REF [--repo DIR] FAILURE-ID | SCENARIO [stress flags]
  run.py test     [pytest arguments]

Exit codes (docs/report-format.md): 0 clean, 1 a failure was found (sanitizer report, checker
violation, crash, hang; for repro: reproduced at least once), 2 bad input or setup error (one
line), 3 harness error (a bug in psa-stress: one line, the traceback saved in the report
directory).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

from scenarios import catalog, report
from scenarios.campaign import bisect
from scenarios.checker import check
from scenarios.checker import coverage
from scenarios.setup import apt
from scenarios.history import binary as history_binary
from scenarios.selftest import mutants
from scenarios.campaign import repro as repro_module
from scenarios.setup.build import Variant, ensure_built
from scenarios.cli.commands import cmd_nightly, cmd_run, cmd_stress
from scenarios.history.schema import HistoryError
from scenarios.cli.options import (EXIT_BAD_INPUT, EXIT_CLEAN, EXIT_FAILURE, EXIT_HARNESS, Parser,
                               add_nightly_options, add_run_options, add_session_options,
                               add_stress_options, add_target_options, positive_int)
from scenarios.cli.progress import Progress
from scenarios.report import summary
from scenarios.setup.source import REPO, SetupError, find_tree

SUBCOMMANDS = ("run", "stress", "nightly", "repro", "check", "convert", "list", "merge", "test",
               "mutants", "bisect", "coverage")


def make_parser():
    parser = Parser(prog="run.py", description="Concurrency stress testing of the Mbed TLS PSA "
                    "key store. Without a subcommand: run the default suite.")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    run = commands.add_parser("run", help="build and run the scenario suite (default)")
    add_run_options(run)
    stress = commands.add_parser("stress", help="stress one scenario with chosen parameters")
    add_stress_options(stress)
    nightly = commands.add_parser("nightly", help="the suite, round-robin, under a time budget, "
                                  "optionally one shard of several")
    add_nightly_options(nightly)
    for sub in (run, stress, nightly):
        add_target_options(sub)
        add_session_options(sub)
    rep = commands.add_parser("repro", help="rerun a reported failure and count reproductions")
    rep.add_argument("target", help="a report directory, or a failure id (12 hex digits)")
    rep.add_argument("--failure", help="the failure id, when the report has several")
    rep.add_argument("--replays", type=positive_int, default=10, help="replays (default 10)")
    add_target_options(rep)
    chk = commands.add_parser("check", help="check a history file for linearizability")
    chk.add_argument("history", help="history file (JSON Lines, docs/history-format.md)")
    chk.add_argument("--json", action="store_true", help="print the verdict as JSON")
    chk.add_argument("--all", action="store_true", help="every violation, not one block per "
                     "root cause")
    conv = commands.add_parser("convert", help="convert a binary history to JSON Lines")
    conv.add_argument("binary", help="binary history written by the driver")
    conv.add_argument("output", help="JSON Lines file to write")
    lst = commands.add_parser("list", help="list the scenarios")
    lst.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    mrg = commands.add_parser("merge", help="combine shard reports into one report")
    mrg.add_argument("reports", nargs="+", help="report directories (one per shard)")
    mrg.add_argument("--out", help="output directory (default: a new reports/<stamp>-merged)")
    mrg.add_argument("--json", action="store_true", help="print summary.json on stdout")
    cov = commands.add_parser("coverage", help="merge reports' coverage and say what each "
                              "covered that the ones before it did not")
    cov.add_argument("reports", nargs="+", help="report directories, oldest first")
    cov.add_argument("--json", action="store_true", help="print the comparison as JSON")
    mut = commands.add_parser("mutants", help="inject the catalogued bugs (mutants/catalog.py) "
                              "and write a detection matrix")
    mut.add_argument("--only", help="comma-separated mutant ids (default: the whole catalogue)")
    mut.add_argument("--runs", type=positive_int, default=3, help="runs per mutant (default 3)")
    mut.add_argument("--full-runs", type=positive_int, help="only the first K runs of each "
                     "mutant go to their end (exit timed); later ones stop at their first NEW "
                     "FAILURE (default: every run goes to its end; stock runs K times)")
    mut.add_argument("--budget", type=positive_int, default=60,
                     help="the default job's --budget for each run: a mutant it does not "
                     "report within it counts as missed (default 60)")
    mut.add_argument("--mbedtls-dir", help="Mbed TLS 3.6.x tree to mutate (default: the stock one)")
    mut.add_argument("--upstream", action="store_true", help="also build upstream's threaded "
                     "suites (test_suite_psa_crypto.concurrent, test_suite_psa_crypto_init) from "
                     "each mutated tree with TSan and record whether they catch it")
    mut.add_argument("--upstream-only", action="store_true",
                     help="only upstream's suites (no psa-stress runs)")
    mut.add_argument("--hinted", action="store_true", help="also run the hinted portfolio (each "
                     "mutant's own scenarios and engines first): a second column")
    mut.add_argument("--upstream-runs", type=positive_int, default=1,
                     help="runs of upstream's suites per mutant (default 1)")
    bis = commands.add_parser("bisect", help="find the first commit of an Mbed TLS git "
                              "checkout that shows a failure (docs/bisect.md)")
    bisect.add_bisect_options(bis)
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
    handler = {"run": cmd_run, "stress": cmd_stress, "nightly": cmd_nightly, "repro": cmd_repro,
               "check": cmd_check, "convert": cmd_convert, "list": cmd_list, "merge": cmd_merge,
               "test": cmd_test, "mutants": mutants.cmd_mutants, "bisect": bisect.cmd_bisect,
               "coverage": cmd_coverage}
    try:
        return handler[args.command](args)
    except SetupError as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return EXIT_HARNESS
    except BrokenPipeError:         # the reader of stdout went away (| head): nothing to say
        _drop_stdout()
        return EXIT_FAILURE         # the result could not be shown in full
    except Exception as error:      # a bug in psa-stress itself: one line, traceback to a file
        print(f"run.py: harness error: {type(error).__name__}: {error} ("
              f"{_saved_traceback(getattr(args, 'report_directory', None))})", file=sys.stderr)
        return EXIT_HARNESS


def save_traceback(directory):
    """Write the current exception's traceback to a new file <report dir>/harness-error.txt, or,
    before a report directory exists, reports/harness-error-<time>.txt (-2, -3... when taken)."""
    if directory:
        stem = os.path.join(directory, "harness-error")
    else:
        directory = report.REPORTS_DIR
        stem = os.path.join(directory, f"harness-error-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(directory, exist_ok=True)
    path, number = f"{stem}.txt", 1
    while True:
        try:
            handle = open(path, "x", encoding="utf-8")
            break
        except FileExistsError:
            number += 1
            path = f"{stem}-{number}.txt"
    with handle:
        handle.write(traceback.format_exc())
    return path


def _saved_traceback(directory):
    try:
        return f"traceback: {os.path.relpath(save_traceback(directory))}"
    except OSError as error:
        return f"the traceback could not be saved: {error.strerror}"


def _drop_stdout():
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _show(text, stream=None):
    """Print a command's result; a closed pipe (| head) ends the output, not the command."""
    try:
        print(text, file=stream or sys.stdout, flush=True)
    except BrokenPipeError:
        _drop_stdout()


def cmd_repro(args):
    data, failures = repro_module.find(args.target, args.failure)
    tree = find_tree(args.mbedtls_dir or summary.mbedtls_dir(data["mbedtls"]), log=_stderr)
    if tree.fingerprint() != data["mbedtls"]["fingerprint"]:
        _stderr(f"warning: the Mbed TLS tree {tree.path} differs from the report's "
                f"(fingerprint {tree.fingerprint()} vs {data['mbedtls']['fingerprint']})")
    jobs = [repro_module.job_of(data, failure, args.variant) for failure in failures]
    for job in jobs:
        Variant.parse(job.variant)
    progress = Progress()
    try:
        workdir = report.new_report_dir(label="repro")
        args.report_directory = workdir
        outcomes = [repro_module.replay(ensure_built(job.variant, tree, log=progress.log), data,
                                        job, failure, args.replays, workdir, progress.log)
                    for job, failure in zip(jobs, failures)]
    finally:
        progress.close()
    if args.json:
        _show(json.dumps(outcomes, indent=2))
    for outcome in outcomes:
        _show(f"{outcome['id']} {outcome['signature']}: reproduced {outcome['reproduced']}/"
              f"{outcome['replays']}\n  {outcome['command']}", sys.stderr if args.json else None)
    return EXIT_FAILURE if any(o["reproduced"] for o in outcomes) else EXIT_CLEAN


def cmd_merge(args):
    directories = {}      # real path -> the name given first: a report named twice counts once
    for name in args.reports:
        real = os.path.realpath(os.path.dirname(name) if name.endswith(".json") else name)
        directories.setdefault(real, name)
    if args.out and os.path.realpath(args.out) in directories:
        raise SetupError(f"--out {args.out}: is one of the reports being merged")
    reports = [summary.load(directory) for directory in directories.values()]
    data = summary.merge(reports)
    directory = args.out or report.new_report_dir(label="merged")
    try:
        os.makedirs(directory, exist_ok=True)
        report.write(directory, data)
    except OSError as error:
        raise SetupError(f"--out {directory}: cannot write the report ({error.strerror})") \
            from None
    _show(json.dumps(data, indent=2) if args.json else report.terminal(data, directory))
    return EXIT_CLEAN if data["verdict"] == "clean" else EXIT_FAILURE


def cmd_coverage(args):
    reports = [summary.load(directory) for directory in args.reports]
    result = coverage.compare(reports, args.reports)
    _show(json.dumps(result, indent=2) if args.json else coverage.format_compare(result))
    return EXIT_CLEAN


def cmd_check(args):
    if not (os.path.isfile(args.history) or history_binary.is_binary(args.history)):
        raise SetupError(f"{args.history}: no such file")
    try:
        result = check.check_file(args.history)
    except HistoryError as error:
        raise SetupError(f"{args.history}: {error}") from None
    _show(json.dumps(result.to_json(), indent=2) if args.json
          else check.format_text(result, all=args.all))
    return EXIT_CLEAN if result.verdict == "ok" else EXIT_FAILURE


def cmd_convert(args):
    """A binary history (a directory written by the driver) to its JSON Lines form, written to
    a temporary file beside the output and renamed over it only once complete."""
    if not history_binary.is_binary(args.binary):
        raise SetupError(f"{args.binary}: not a binary history (a directory with header.json)")
    source = os.path.realpath(args.binary)
    if os.path.realpath(args.output).startswith(source + os.sep):
        raise SetupError(f"{args.output}: inside the history it would be converted from")
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False,
                                             dir=os.path.dirname(os.path.abspath(args.output)),
                                             prefix=".convert-", suffix=".jsonl")
    except OSError as error:
        raise SetupError(f"{args.output}: {error.strerror}") from None
    try:
        with handle:
            calls = history_binary.to_jsonl(args.binary, handle)
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, args.output)
    except HistoryError as error:
        raise SetupError(f"{args.binary}: {error}") from None
    except OSError as error:
        raise SetupError(f"{args.output}: {error.strerror}") from None
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
    _show(f"{args.output}: {calls} calls")
    return EXIT_CLEAN


def cmd_list(args):
    if args.json:
        _show(json.dumps([{"name": s.name, "attacks": s.attacks, "family": s.family_name,
                           "engines": list(s.engines), "variant": s.variant}
                          for s in catalog.SCENARIOS], indent=2))
        return EXIT_CLEAN
    _show("\n".join(f"{s.name:<20} {s.attacks}" for s in catalog.SCENARIOS))
    return EXIT_CLEAN


def cmd_test(args):
    """Run pytest on tests/, with Debian's python3-pytest (and python3-cryptography) if this
    interpreter lacks pytest."""
    command = ["-m", "pytest", *args.pytest_args]   # pytest.ini: testpaths = tests
    for python in (sys.executable, apt.DEBIAN_PYTHON):
        if os.path.exists(python) and _has_pytest(python) and apt.has_cryptography(python):
            return subprocess.run([python, *command], cwd=REPO).returncode
    apt.require(["python3-pytest", apt.PYTHON_PACKAGE])
    return subprocess.run([apt.DEBIAN_PYTHON, *command], cwd=REPO).returncode


def _has_pytest(python):
    probe = subprocess.run([python, "-c", "import pytest"], capture_output=True)
    return probe.returncode == 0


def _stderr(text):
    print(text, file=sys.stderr)
