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

from scenarios import check, sanitizers
from scenarios.history import HistoryError

HANG_GRACE_SECONDS = 120     # TSan start-up/tear-down plus history writing


@dataclass
class Failure:
    kind: str        # tsan | asan | violation | crash | hang | driver-error | unknown
    message: str     # one line
    details: str = ""

    def to_json(self):
        return {"kind": self.kind, "message": self.message, "details": self.details}


@dataclass
class RunResult:
    scenario: str
    seed: int
    variant: str
    directory: str
    ops: int = 0
    seconds: float = 0.0
    ops_per_sec: float = 0.0
    check: dict = None
    failures: list = field(default_factory=list)

    @property
    def clean(self):
        return not self.failures

    def to_json(self):
        return {"scenario": self.scenario, "seed": self.seed, "variant": self.variant,
                "clean": self.clean, "ops": self.ops, "seconds": round(self.seconds, 3),
                "ops_per_sec": round(self.ops_per_sec), "check": self.check,
                "failures": [failure.to_json() for failure in self.failures],
                "directory": self.directory}


def driver_command(build, scenario, seed, seconds, directory, threads=None, test_build=False,
                   extra=()):
    return [build.driver(test_build), "--threads", str(threads or scenario.threads),
            "--seconds", str(seconds), "--seed", str(seed),
            "--history", os.path.join(directory, "history.jsonl"),
            "--storage-dir", os.path.join(directory, "storage"),
            "--variant", build.variant.name, *scenario.driver_args(), *extra]


def run_scenario(build, scenario, seed, seconds, directory, threads=None, test_build=False,
                 extra=()):
    """Run the driver once and apply every oracle; return a RunResult."""
    os.makedirs(directory, exist_ok=True)
    result = RunResult(scenario.name, seed, build.variant.name, directory)
    log_prefix = os.path.join(directory, "sanitizer")
    command = driver_command(build, scenario, seed, seconds, directory, threads, test_build, extra)
    env = dict(os.environ, **sanitizers.environment(log_prefix))
    started = time.monotonic()
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=seconds * 4 + HANG_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        result.failures.append(Failure("hang", f"the driver did not finish within "
                                               f"{seconds * 4 + HANG_GRACE_SECONDS} s"))
        return result
    result.seconds = time.monotonic() - started
    _read_driver_summary(result, completed.stdout)
    _judge_exit(result, completed)
    for report in sanitizers.collect(log_prefix):
        tool = "tsan" if "ThreadSanitizer" in report.text else "asan"
        result.failures.append(Failure(tool, f"{report.kind}: {report.summary}", report.text))
    _check_history(result, os.path.join(directory, "history.jsonl"))
    shutil.rmtree(os.path.join(directory, "storage"), ignore_errors=True)
    return result


def _read_driver_summary(result, stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            summary = json.loads(line)
            result.ops = summary.get("ops", 0)
            result.ops_per_sec = summary.get("ops_per_sec", 0.0)
            return


def _judge_exit(result, completed):
    code = completed.returncode
    if code in (0, sanitizers.TSAN_EXIT_CODE, sanitizers.ASAN_EXIT_CODE):
        return
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        result.failures.append(Failure("crash", f"the driver died of signal {name}",
                                       completed.stderr[-4000:]))
    else:
        last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        result.failures.append(Failure("driver-error", f"driver exit code {code}: {last}",
                                       completed.stderr[-4000:]))


def _check_history(result, history_path):
    if not os.path.isfile(history_path):
        if result.clean:
            result.failures.append(Failure("driver-error", "the driver wrote no history"))
        return
    try:
        verdict = check.check_file(history_path)
    except HistoryError as error:
        result.failures.append(Failure("driver-error", f"unreadable history: {error}"))
        return
    result.check = verdict.to_json()
    if verdict.verdict != "ok":
        result.failures.append(Failure(verdict.verdict, _headline(verdict),
                                       check.format_text(verdict)))


def _headline(verdict):
    """One line for a checker finding: the first violation, or why the verdict is unknown."""
    if not verdict.violations:
        return (f"{verdict.partitions_unknown} key partitions unverified "
                "(checker search budget exhausted)")
    first = verdict.violations[0]
    more = len(verdict.violations) - 1
    return f"{first.kind}: {first.message}" + (f" (+{more} more)" if more else "")
