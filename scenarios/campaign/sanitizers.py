"""Sanitizer options for a driver run, and the reports they leave behind.

Each run gets its own log prefix (``<run dir>/sanitizer``); the runtime appends ``.<pid>``.
TSan keeps going after a report (``halt_on_error=0``) so that every race of the run is seen, and
exits with its own code (66). Any report fails the run; its text is kept verbatim.
"""
import glob
import re
from dataclasses import dataclass

TSAN_EXIT_CODE = 66
ASAN_EXIT_CODE = 67
_REPORT_START = re.compile(r"^(WARNING: ThreadSanitizer: .*|=+\d*==ERROR: AddressSanitizer: .*"
                           r"|.*runtime error: .*)$", re.M)
_SUMMARY = re.compile(r"^SUMMARY: (\w+Sanitizer): (.*)$", re.M)


@dataclass
class SanitizerReport:
    kind: str       # e.g. "data race", "heap-use-after-free", "runtime error"
    summary: str    # the SUMMARY line (location), or the first line
    text: str       # the report, verbatim


def environment(log_prefix):
    """Environment additions for one driver run. (TSan's default 1 s sleep at exit waits for
    threads still running; the driver has joined every worker by then.)"""
    return {
        "TSAN_OPTIONS": f"exitcode={TSAN_EXIT_CODE} halt_on_error=0 log_path={log_prefix} "
                        "second_deadlock_stack=1 history_size=4 atexit_sleep_ms=0",
        "ASAN_OPTIONS": f"exitcode={ASAN_EXIT_CODE} log_path={log_prefix} detect_leaks=0",
        "UBSAN_OPTIONS": f"print_stacktrace=1 halt_on_error=1 log_path={log_prefix}",
    }


def collect(log_prefix):
    """Every sanitizer report written under log_prefix, in file order."""
    reports = []
    for path in sorted(glob.glob(log_prefix + ".*")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            reports.extend(parse(handle.read()))
    return reports


def parse(text):
    """Split a sanitizer log into reports."""
    starts = [match.start() for match in _REPORT_START.finditer(text)]
    reports = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        chunk = text[start:end].strip()
        first = chunk.splitlines()[0]
        kind = _kind(first)
        summary = _SUMMARY.search(chunk)
        reports.append(SanitizerReport(kind, summary.group(2) if summary else first, chunk))
    return reports


def _kind(first_line):
    for marker in ("ThreadSanitizer: ", "AddressSanitizer: "):
        if marker in first_line:
            return first_line.split(marker, 1)[1].split(" (")[0].split(" on ")[0].strip()
    return "runtime error"

