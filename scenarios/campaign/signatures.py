"""Failure signatures: what makes two failures "the same bug", and the table that deduplicates them.

A sanitizer report's signature is its kind plus the sorted pair of the top *in-library* frames of
its first two stacks, at function level (``data race: psa_get_and_lock_key_slot |
psa_reserve_free_key_slot``): line numbers, addresses, thread numbers and the order in which the
two threads happened to be reported do not change it. In-library means a frame whose file is in
the Mbed TLS tree (``library/``, ``include/``); a report with no such frame (the harness's own
canary) uses its top frame outside the sanitizer runtime instead.

A checker violation's signature is the violation kind plus the operation and status of the call
the checker blamed; a crash's is the signal; an inside invariant's is its message without numbers;
a hang and a driver error have one signature each.

A signature's id is the first 12 hex digits of its SHA-256: short enough for a command line
(``run.py repro ID``) and stable across runs, machines and shards.
"""
import hashlib
import os
import re
import signal
from dataclasses import dataclass, field

from scenarios.setup.source import SetupError

_FRAME = re.compile(r"^\s*#(\d+)\s+(\S+)\s+(\S+)")
_LOCATION = re.compile(r"^(.*?):(\d+)(?::(\d+))?$")
# Stack headers that describe where memory, a thread or a mutex came from, not an access.
_CONTEXT_HEADER = re.compile(r"^\s*(Location is|Thread T\d+.*created|Mutex M\d+.*created|"
                             r"previously allocated|allocated by|Thread T\d+ created)", re.I)
_SANITIZER_KIND = re.compile(r"(?:Thread|Address)Sanitizer: ([^(\n]+?)(?: \(| on |\n|$)")
_NUMBERS = re.compile(r"0x[0-9a-f]+|\d+")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+| \(pid=\d+\)")
_LIBRARY_DIRS = ("/library/", "/include/mbedtls/", "/include/psa/", "/tf-psa-crypto/")
# A crash message names its signal ("signal SIGBUS") or describes it ("fatal signal Bus error").
_SIGNAL_NAMES = {signal.strsignal(number): number.name for number in signal.Signals
                 if signal.strsignal(number)}
_CRASH_SIGNAL = re.compile(r"signal (.+)$")
_RUNTIME_FUNCTIONS = re.compile(r"^(__tsan|__asan|__ubsan|__interceptor|__sanitizer|pthread_|"
                                r"malloc$|calloc$|free$|realloc$|memcpy$|memset$|memmove$|<null>)")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str          # absolute path as the sanitizer printed it, or "" when unknown
    line: int = 0
    column: int = 0

    def to_json(self):
        return {"function": self.function, "file": self.file, "line": self.line,
                "column": self.column}

    @property
    def in_library(self):
        return any(part in self.file for part in _LIBRARY_DIRS)

    @property
    def in_runtime(self):
        return not self.file or bool(_RUNTIME_FUNCTIONS.match(self.function))


@dataclass
class Stack:
    title: str         # e.g. "Write of size 4 by thread T4", the address removed
    frames: list

    def to_json(self):
        return {"title": self.title, "frames": [frame.to_json() for frame in self.frames]}


def parse_stacks(text):
    """The stacks of one sanitizer report: each block of ``#N function file:line`` lines with
    the line above it as its title."""
    stacks, header, frames = [], "", []
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match:
            frames.append(_frame(match.group(2), match.group(3)))
            continue
        if frames:
            stacks.append(Stack(header, frames))
            frames = []
        if line.strip():
            header = line.strip()
    if frames:
        stacks.append(Stack(header, frames))
    return stacks


def _frame(function, location):
    match = _LOCATION.match(location)
    if location == "<null>" or not match:
        return Frame(function, "")
    return Frame(function, match.group(1), int(match.group(2)), int(match.group(3) or 0))


def access_stacks(text):
    """The (up to) two stacks that show the conflicting accesses, without allocation and
    thread-creation context."""
    stacks = [stack for stack in parse_stacks(text) if not _CONTEXT_HEADER.match(stack.title)]
    for stack in stacks:
        stack.title = _ADDRESS.sub("", stack.title).strip(" :")
    return stacks[:2]


def top_frame(stack):
    """The top in-library frame of a stack, else its top frame outside the sanitizer runtime."""
    for frame in stack.frames:
        if frame.in_library:
            return frame
    for frame in stack.frames:
        if not frame.in_runtime:
            return frame
    return stack.frames[0]


def sanitizer_signature(kind, text):
    """kind + the sorted pair of top frames of the two access stacks (function level)."""
    functions = sorted(top_frame(stack).function for stack in access_stacks(text))
    return f"{kind}: {' | '.join(functions) or '?'}"


def violation_signature(violation):
    """The checker's root cause (operation, status and the rule it breaks:
    scenarios/checker/check.py), so that one bug keeps one id across runs; for a verdict without
    one (an older report), the violation kind plus the blamed call's operation and status. The
    checker's message starts with the blamed call's text; when no window call matches, the window's
    operations."""
    if violation.get("cause"):
        return f"violation {violation['cause']}"
    window = violation.get("window") or []
    message = violation.get("message", "")
    for call in window:
        if call.get("text") and message.startswith(call["text"]):
            return f"violation {violation['kind']}: {call['op']} -> {call['status'] or 'pending'}"
    if len(window) == 1:
        call = window[0]
        return f"violation {violation['kind']}: {call['op']} -> {call['status'] or 'pending'}"
    ops = sorted({call["op"] for call in window})
    return f"violation {violation['kind']}: {', '.join(ops)}"


def failure_signature(failure, check=None):
    """The signature of one run failure (a runner.Failure as JSON) given the run's check JSON."""
    kind = failure["kind"]
    if kind in ("tsan", "asan"):
        match = _SANITIZER_KIND.search(failure.get("details", ""))
        sanitizer_kind = match.group(1).strip() if match else failure["message"].split(":", 1)[0]
        return f"{kind} {sanitizer_signature(sanitizer_kind, failure.get('details', ''))}"
    if kind in ("violation", "unknown") and check and check.get("violations"):
        return violation_signature(check["violations"][0])
    if kind == "crash":
        return f"crash: {crash_signal(failure['message'])}"
    if kind == "invariant":
        return f"invariant: {_NUMBERS.sub('N', failure['message'])}"
    return kind


def crash_signal(message):
    """The signal's name (SIGSEGV) of a crash message, whichever way the message names it."""
    match = _CRASH_SIGNAL.search(message)
    text = match.group(1).strip() if match else message
    return _SIGNAL_NAMES.get(text, text)


def signature_id(signature):
    return hashlib.sha256(signature.encode()).hexdigest()[:12]


# ---- deduplication ----

@dataclass
class Entry:
    """One distinct failure: every run failure with this signature."""
    signature: str
    kind: str
    message: str
    known: bool
    first_seen: str
    last_seen: str
    found_by: dict                      # the first run: {"run", "scenario", "seed"}
    runs: list = field(default_factory=list)
    stacks: list = field(default_factory=list)
    violation: dict = None

    @property
    def id(self):
        return signature_id(self.signature)

    def to_json(self):
        return {"id": self.id, "signature": self.signature, "kind": self.kind,
                "message": self.message, "known": self.known, "count": len(self.runs),
                "first_seen": self.first_seen, "last_seen": self.last_seen,
                "found_by": self.found_by, "runs": self.runs,
                "stacks": [stack.to_json() for stack in self.stacks],
                "violation": self.violation}


def deduplicate(runs, known=frozenset()):
    """Distinct failures of a list of run JSON objects (each with "id" and "finished"), in order of
    first appearance; a run failure counts once per occurrence."""
    table = {}
    for run in runs:
        for failure in run["failures"]:
            signature = failure["signature"]
            entry = table.get(signature)
            if entry is None:
                entry = table[signature] = _new_entry(signature, failure, run, known)
            entry.runs.append(run["id"])
            entry.first_seen = min(entry.first_seen, run["finished"])
            entry.last_seen = max(entry.last_seen, run["finished"])
    return list(table.values())


def _new_entry(signature, failure, run, known):
    entry = Entry(signature, failure["kind"], failure["message"],
                  is_known(signature, known) or bool(failure.get("known_issue")),
                  run["finished"], run["finished"],
                  {"run": run["id"], "scenario": run["scenario"], "seed": run["seed"]})
    if failure["kind"] in ("tsan", "asan"):
        entry.stacks = access_stacks(failure.get("details", ""))
    elif run.get("check") and run["check"].get("violations"):
        entry.violation = run["check"]["violations"][0]
    return entry


# ---- known signatures ----

def is_known(signature, known):
    return signature in known or signature_id(signature) in known


def load_known(path):
    """Accepted signatures: one per line, either the signature text or its 12-digit id; text
    after '#' is a comment. A missing file is an empty set (the command line refuses a missing
    file other than the default one); an unreadable one is a SetupError."""
    if not path or not os.path.exists(path):
        return frozenset()
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else f"not UTF-8 ({error.reason})"
        raise SetupError(f"--known-signatures {path}: {reason}") from None
    return frozenset(text for text in (line.split("#", 1)[0].strip() for line in lines) if text)
