"""Run one scenario once: drive the core, collect sanitizer reports, check the history.

A run fails when any oracle fires: a sanitizer report, a checker violation, a crash (signal) or a
hang (no exit within the deadline). The run directory keeps the history and the sanitizer logs;
the caller deletes it when the run is clean.
"""
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from scenarios.checker import check
from scenarios.checker import coverage
from scenarios.checker import final_state
from scenarios.campaign import driver_output
from scenarios.campaign import sanitizers
from scenarios.history.schema import HistoryError

HANG_GRACE_SECONDS = 120     # TSan start-up/tear-down plus history writing
INVARIANT_EXIT_CODE = 4      # an inside invariant was violated (harness/inside/inspect.h)
HISTORY_WRITE_EXIT_CODE = 8  # no disk space for the history (harness/history/history_binary.h)
CHECK_MARGIN_SECONDS = 3     # with a timeout, the Python check stops this long before its end
# A run's history: the binary form (docs/history-format.md), crash-safe and read by the checker's
# C fast path; `run.py convert` turns it into JSON Lines.
HISTORY = "history"


@dataclass
class Failure:
    kind: str        # tsan | asan | violation | invariant | crash | hang | deadlock |
    #                  replay-diverged | driver-error | unknown | disk (a setup error: the
    #                  history could not be written, the run says nothing about the library)
    message: str     # one line
    details: str = ""
    known_issue: str = ""   # expected: the scenario's known issue (catalog.Scenario.known_issue)

    def to_json(self):
        return {"kind": self.kind, "message": self.message, "details": self.details,
                "known_issue": self.known_issue}


@dataclass
class RunResult:
    scenario: str
    seed: int
    variant: str
    directory: str
    ops: int = 0
    seconds: float = 0.0
    ops_per_sec: float = 0.0
    reloads: int = 0             # persistent keys the core loaded back from storage
    check: dict = None
    failures: list = field(default_factory=list)
    params: dict = None          # the job that made this run (scenarios/campaign/job.py), for repro
    cut: bool = False            # stopped by the session's budget before it ended: not judged
    coverage: dict = None        # operation pairs and hand-offs explored (checker/coverage.py)

    @property
    def clean(self):
        return not self.failures

    def to_json(self):
        return {"scenario": self.scenario, "seed": self.seed, "variant": self.variant,
                "clean": self.clean, "ops": self.ops, "seconds": round(self.seconds, 3),
                "ops_per_sec": round(self.ops_per_sec), "reloads": self.reloads,
                "check": self.check,
                "failures": [failure.to_json() for failure in self.failures],
                "directory": self.directory, "params": self.params, "cut": self.cut,
                "coverage": self.coverage}


def driver_command(build, scenario, seed, seconds, directory, threads=None, test_build=False,
                   extra=(), ops=None):
    """The driver's command line; with ``ops`` the run stops after that many calls (shrinking
    and repro), else after ``seconds``."""
    length = ["--ops", str(ops)] if ops else ["--seconds", str(seconds)]
    return [build.driver(test_build), "--threads", str(threads or scenario.threads),
            *length, "--seed", str(seed),
            "--history", os.path.join(directory, HISTORY),
            "--storage-dir", os.path.join(directory, "storage"),
            "--variant", build.variant.name, "--watchdog", str(driver_output.WATCHDOG_SECONDS),
            *scenario.driver_args(), *extra]


def run_scenario(build, scenario, seed, seconds, directory, threads=None, test_build=False,
                 extra=(), ops=None, timeout=None):
    """Run the driver once and apply every oracle; return a RunResult. With ``ops``, ``seconds``
    only bounds the wait (hang detection). ``timeout``: the caller's budget; a driver still
    running then is killed and the run is ``cut``, not judged (shorter than the hang limit)."""
    os.makedirs(directory, exist_ok=True)
    result = RunResult(scenario.name, seed, build.variant.name, directory)
    log_prefix = os.path.join(directory, "sanitizer")
    command = driver_command(build, scenario, seed, seconds, directory, threads, test_build, extra,
                             ops)
    env = dict(os.environ, **sanitizers.environment(log_prefix))
    started = time.monotonic()
    hang_limit = seconds * 4 + HANG_GRACE_SECONDS
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=min(hang_limit, timeout or hang_limit))
    except subprocess.TimeoutExpired:
        if timeout is not None and timeout < hang_limit:
            result.cut = True
            return result
        result.failures.append(Failure("hang", f"the driver did not finish within "
                                               f"{hang_limit} s"))
        return result
    result.seconds = time.monotonic() - started
    _read_driver_summary(result, completed.stdout)
    _judge_exit(result, completed)
    for report in sanitizers.collect(log_prefix):
        tool = "tsan" if "ThreadSanitizer" in report.text else "asan"
        result.failures.append(Failure(tool, f"{report.kind}: {report.summary}", report.text))
    deadline = None if timeout is None else started + timeout - CHECK_MARGIN_SECONDS
    _check_history(result, os.path.join(directory, HISTORY), deadline)
    if not result.ops and result.check:        # the driver died before its summary line
        result.ops = result.check["calls"]
        result.ops_per_sec = result.ops / result.seconds if result.seconds else 0.0
    shutil.rmtree(os.path.join(directory, "storage"), ignore_errors=True)
    _mark_known_issue(result, scenario)
    return result


def _mark_known_issue(result, scenario):
    """Failures of the oracle a known issue trips are expected: marked with the reason (the
    report counts them as known, and shows the real message); any other failure still
    counts."""
    for failure in result.failures:
        if scenario.known_issue and failure.kind in scenario.known_oracles:
            failure.known_issue = scenario.known_issue


def _read_driver_summary(result, stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            summary = json.loads(line)
            result.ops = summary.get("ops", 0)
            result.ops_per_sec = summary.get("ops_per_sec", 0.0)
            result.reloads = summary.get("reloads", 0)
            return


def _judge_exit(result, completed):
    code = completed.returncode
    found = driver_output.failure(completed.stderr)   # hang, deadlock, replay divergence, crash
    if found is not None:
        result.failures.append(Failure(*found))
        return
    if code in (0, sanitizers.TSAN_EXIT_CODE, sanitizers.ASAN_EXIT_CODE):
        return
    if code == HISTORY_WRITE_EXIT_CODE:
        last = (completed.stderr.strip().splitlines() or ["history write error"])[-1]
        result.failures.append(Failure("disk", last.removeprefix("psa-stress: ")))
        return
    if code == INVARIANT_EXIT_CODE:
        violated = [line for line in completed.stderr.splitlines()
                    if line.startswith("invariant violated: ")]
        result.failures.append(Failure("invariant", (violated or ["invariant violated"])[0],
                                       "\n".join(violated)))
        return
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        result.failures.append(Failure("crash", f"the driver died of signal {name}",
                                       completed.stderr[-4000:]))
    else:
        last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        result.failures.append(Failure("driver-error", f"driver exit code {code}: {last}",
                                       completed.stderr[-4000:]))


def _check_history(result, history_path, deadline=None):
    if not os.path.isdir(history_path):
        if result.clean:
            result.failures.append(Failure("driver-error", "the driver wrote no history"))
        return
    try:
        verdict = check.check_file(history_path, final=False, deadline=deadline)  # final: below
    except HistoryError as error:
        result.failures.append(Failure("driver-error", f"unreadable history: {error}"))
        return
    result.check = verdict.to_json()
    judged = verdict.cut is None or verdict.violations   # cut with nothing found: not judged
    if judged and verdict.verdict != "ok":
        result.failures.append(Failure(verdict.verdict, _headline(verdict),
                                       check.format_text(verdict)))
    _final_state(result, final_state.check_file(history_path))
    result.coverage = coverage.of_history(history_path)


def _final_state(result, problems, shown=20):
    """One failure for the final state's disagreements: the first as the message (and the
    signature), the count and the first ``shown`` in the details (one root cause often shows
    on many keys)."""
    if problems:
        result.failures.append(Failure(
            "invariant", f"final state: {problems[0]}",
            f"{len(problems)} disagreements of the final state, the first {shown}:\n"
            + "\n".join(problems[:shown])))


def _headline(verdict):
    """One line for a checker finding: the first violation, or why the verdict is unknown."""
    if not verdict.violations:
        return (f"{verdict.partitions_unknown} key partitions unverified "
                "(checker search budget exhausted)")
    first = verdict.violations[0]
    more = len(verdict.violations) - 1
    return f"{first.kind}: {first.message}" + (f" (+{more} more)" if more else "")
