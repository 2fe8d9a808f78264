"""The nemesis's own failure reports in the driver's stderr (harness/nemesis/nemesis.h, watchdog.h).

The driver prints one marker line per finding and, for hangs, deadlocks and crashes, every
thread's stack between two marker lines. The exit code alone is not enough: under TSan the
runtime replaces a non-zero exit code with 66 when it has reported anything, so the markers are
authoritative.
"""
WATCHDOG_SECONDS = 60        # --watchdog for every run: no completed call for this long = hang
STACKS_BEGIN = "==== psa-stress stacks begin ===="
STACKS_END = "==== psa-stress stacks end ===="
MAX_DETAILS = 30000

_MARKERS = (   # (prefix of the marker line, failure kind)
    ("psa-stress: HANG:", "hang"),
    ("psa-stress: DEADLOCK:", "deadlock"),
    ("psa-stress: REPLAY DIVERGED", "replay-diverged"),
    ("psa-stress: CRASH:", "crash"),
)


def stacks(stderr):
    """The text between the stack markers (empty when there is none)."""
    start = stderr.find(STACKS_BEGIN)
    if start < 0:
        return ""
    end = stderr.find(STACKS_END, start)
    return stderr[start + len(STACKS_BEGIN):end if end >= 0 else len(stderr)].strip()


def failure(stderr):
    """(kind, message, details) for the first nemesis finding in stderr, or None."""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        for prefix, kind in _MARKERS:
            if line.startswith(prefix):
                wait_for = [text for text in lines[index + 1:] if text.startswith("  thread ")]
                details = "\n".join(wait_for + [stacks(stderr)]).strip()
                return kind, line[len("psa-stress: "):], details[:MAX_DETAILS]
    return None
