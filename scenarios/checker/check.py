"""Check one history file: static checks, then per-key linearizability against the PSA model.

Public API::

    check_file(path, budget=DEFAULT_BUDGET, final=True, deadline=None) -> CheckResult
        # scenarios.history.reader.HistoryError on bad input; final: also compare the end line's live
        # set and the key-store configuration (scenarios/checker/final_state.py)
    check_history(history, budget=DEFAULT_BUDGET, deadline=None) -> CheckResult
    format_text(result, all=False) -> str    # terminal report: one block per root cause
                                             # (all: every violation)
    CheckResult: verdict ("ok" | "violation" | "unknown"), partitions_ok, partitions_violated,
                 partitions_unknown, calls, seconds, violations, stopped (why the run stopped
                 early, or None), weakened ([{key, reason}]: keys checked by an approximation,
                 docs/checker.md §8), to_json()
    Violation: kind ("static" | "linearizability" | "material" | "final-state"), key, message, window (call
               summaries), prefix (descriptions), state (description), cause (the root cause:
               operation, status and the rule it breaks; the same for one bug across runs)

A verdict is "violation" if any call has a forbidden status, any partition is not linearizable,
or one key material shared across keys shows two values (scenarios/model/materials.py), else
"unknown" if any partition ran out of budget, else "ok"; a disagreement of the final state
(scenarios/checker/final_state.py) is a violation too. What the injected faults (the header's
``faults``) allow is decided by scenarios/model/faults.py.

The history is read once, as a stream (scenarios/checker/streaming.py): memory is bounded by the calls in
flight per key, not by the history's length.
"""
import re
import time

from scenarios.checker import fast_check
from scenarios.checker import final_state
from scenarios.history import reader as history_module
from scenarios.checker.linearizability import DEFAULT_BUDGET, OK, UNKNOWN, VIOLATION
from scenarios.model.operations import KeyStoreModel
from scenarios.model.faults import FaultRules
from scenarios.checker.streaming import StreamCheck, verdict_counts


_NUMBER = re.compile(r"0x[0-9a-f]+|[0-9a-f]{16,}…?|\d+")
DEADLINE_EVERY = 4096      # calls between two looks at the clock (check_history's deadline)
MATERIAL_CAUSE = ("material: export -> SUCCESS: a copy's or a derived key's bytes differ from "
                  "its source's")


class Violation:
    __slots__ = ("kind", "key", "message", "window", "prefix", "state", "cause")

    def __init__(self, kind, key, message, window, prefix=(), state=None, cause=None):
        """``window``: call summaries (``summarize``); ``prefix``: op descriptions."""
        self.kind = kind
        self.key = key
        self.message = message
        self.window = window
        self.prefix = list(prefix)
        self.state = state
        self.cause = cause or f"{kind}: {_NUMBER.sub('N', message)}"

    def to_json(self):
        return {"kind": self.kind, "key": self.key, "message": self.message,
                "window": self.window, "prefix": self.prefix, "state": self.state,
                "cause": self.cause}


class CheckResult:
    __slots__ = ("path", "verdict", "partitions_ok", "partitions_violated",
                 "partitions_unknown", "calls", "seconds", "violations", "complete", "unknown",
                 "fast_path", "stopped", "weakened", "cut")

    def __init__(self, path, calls, complete):
        self.path = path
        self.verdict = OK
        self.partitions_ok = self.partitions_violated = self.partitions_unknown = 0
        self.calls = calls
        self.seconds = 0.0
        self.violations = []
        self.complete = complete
        self.unknown = []         # {"key", "reason"} of each partition left unverified
        self.fast_path = False    # accepted by the C core (scenarios/checker/fast_check.py)
        self.stopped = None       # the run stopped at an injected fault (model/faults.py)
        self.weakened = []        # {"key", "reason"} of each key checked by an approximation
        self.cut = None           # calls checked when the caller's deadline stopped the check

    def to_json(self):
        return {"history": str(self.path), "verdict": self.verdict, "calls": self.calls,
                "complete": self.complete, "seconds": round(self.seconds, 3),
                "partitions": {"ok": self.partitions_ok, "violated": self.partitions_violated,
                               "unknown": self.partitions_unknown},
                "violations": [v.to_json() for v in self.violations],
                "unknown": self.unknown, "fast_path": self.fast_path, "stopped": self.stopped,
                "weakened": self.weakened, "cut": self.cut}


def check_file(path, budget=DEFAULT_BUDGET, final=True, deadline=None):
    """Read (one pass, JSON Lines or binary), validate and check the history at ``path``;
    ``final``: and its final state (another pass, scenarios/checker/final_state.py);
    ``deadline`` (time.monotonic()): where the Python path stops (``check_history``)."""
    started = time.perf_counter()
    fast = fast_check.fast_ok(path)    # ok; violations Python confirms; else checked below
    if fast is not None:
        result = CheckResult(path, fast.calls, True)
        result.partitions_ok, result.fast_path, result.weakened = fast.keys, True, fast.weakened
        header = history_module.open_history(path).header
        result.stopped = FaultRules(header).stopped(header)
    else:
        result = (fast_check.explained(path, lambda h: check_history(h, budget, deadline),
                                       Violation)
                  or check_history(history_module.open_history(path), budget, deadline))
    if final:
        for problem in final_state.check_file(path):
            result.violations.append(Violation("final-state", None, problem, []))
            result.verdict = VIOLATION
    result.seconds = time.perf_counter() - started
    return result


def check_history(history, budget=DEFAULT_BUDGET, deadline=None):
    """Static checks and per-key linearizability of a loaded ``History``. Past ``deadline``
    (time.monotonic(), checked every ``DEADLINE_EVERY`` calls) the check stops: the keys it
    had already found violated stay violated (a key's segment is decided only once every call
    that overlaps it was fed), every other key is unknown, and ``cut`` says how many calls
    were checked."""
    with history_module.gc_paused():
        return _check(history, budget, deadline)


def _check(history, budget, deadline):
    started = time.perf_counter()
    result = CheckResult(history.path, 0, history.complete)
    model = KeyStoreModel()
    stream = StreamCheck(model, budget)
    rules = FaultRules(history.header)
    count, admit, feed = 0, rules.admit, stream.feed
    for count, call in enumerate(history.calls, 1):
        if deadline is not None and not count % DEADLINE_EVERY and time.monotonic() > deadline:
            result.cut = count - 1
            break
        problem, checked = admit(call)
        if problem is not None:
            result.violations.append(Violation("static", _call_key(call), problem,
                                               [summarize(call)]))
        elif checked:
            feed(call)
    verdicts = stream.finish() if result.cut is None else stream.decided()
    result.calls = count if result.cut is None else result.cut
    result.complete = history.complete
    result.stopped = rules.stopped(history.header)
    result.partitions_ok, result.partitions_violated, result.partitions_unknown = \
        verdict_counts(stream, verdicts)
    if result.cut is not None:        # no key is fully checked: none counts as ok
        result.partitions_unknown += result.partitions_ok
        result.partitions_ok = 0
    for part in sorted(verdicts, key=lambda v: v.key):
        if part.verdict == VIOLATION:
            result.violations.append(_linearizability_violation(model, part))
        else:
            result.unknown.append({"key": part.key, "reason": part.reason})
    violated = {v.key for v in result.violations}
    for conflict in stream.links.conflicts:
        if conflict.key not in violated:      # else its own partition explains it
            result.violations.append(Violation(
                "material", conflict.key, conflict.message,
                [summarize(call) for call in conflict.calls], cause=MATERIAL_CAUSE))
    result.weakened = [{"key": key, "reason": why}
                       for key, why in sorted(stream.links.weakened.items())]
    if result.violations:
        result.verdict = VIOLATION
    elif result.partitions_unknown:
        result.verdict = UNKNOWN
    result.seconds = time.perf_counter() - started
    return result


def _linearizability_violation(model, part):
    failure = part.failure
    window, seen = [], set()
    for op in failure.context + failure.window:
        if op.source.line not in seen:
            seen.add(op.source.line)
            window.append(summarize(op.source, model.describe_op(op)))
    starts = " / ".join(model.describe_state(s) for s in failure.starts)
    message = f"{failure.message} (state at the last quiescent point: {starts})"
    culprit = failure.culprit
    rule = culprit.rule.__name__.removeprefix("rule_")
    where = culprit.rule.__module__.replace(".", "/") + ".py"     # the model's module
    cause = (f"linearizability: {culprit.source.op}{culprit.role} -> "
             f"{culprit.source.status or 'pending'} breaks rule {rule} ({where})")
    return Violation("linearizability", part.key, message, window,
                     [model.describe_op(op) for op in failure.prefix],
                     model.describe_state(failure.state), cause)


def _call_key(call):
    if "key" in call.args:
        return call.args["key"]
    if call.status == "SUCCESS" and "key" in call.out:
        return call.out["key"]
    return call.args.get("id")


def summarize(call, text=None):
    """A call as a JSON-ready dict (for windows in reports)."""
    return {"thread": call.thread, "seq": call.seq, "op": call.op, "call": call.call,
            "ret": call.ret, "status": call.status, "line": call.line,
            "args": call.args, "out": call.out, "text": text or _call_text(call)}


def _call_text(call):
    args = ", ".join(f"{k}={_value(v)}" for k, v in call.args.items())
    out = ", ".join(f"{k}={_value(v)}" for k, v in call.out.items())
    return f"t{call.thread}#{call.seq} {call.op}({args}) -> {call.status or 'pending'}" + \
        (f" [{out}]" if out else "")


def _value(value):
    if isinstance(value, int) and value > 0xFFFF:
        return f"{value:#x}"
    if isinstance(value, str) and len(value) > 16:
        return value[:16] + "…"
    return str(value)


def format_text(result, all=False):
    """The terminal report: verdict line, the keys not fully checked, then one block per root
    cause (its first violation, with its window), or every violation with ``all``."""
    lines = [f"{result.path}: {result.verdict.upper()} - {result.calls} calls, "
             f"partitions {result.partitions_ok} ok / {result.partitions_violated} violated / "
             f"{result.partitions_unknown} unknown, {result.seconds:.2f} s"
             + ("" if result.complete else " (run cut short: pending calls)")]
    if result.stopped:
        lines.append(f"  {result.stopped}")
    if result.cut is not None:
        lines.append(f"  the check stopped at the job's budget after {result.cut} calls: "
                     "no key is fully checked")
    reasons = {}
    for weak in result.weakened:
        reasons[weak["reason"]] = reasons.get(weak["reason"], 0) + 1
    lines.extend(f"  {count} key{'s' if count > 1 else ''} not fully checked: {reason}"
                 for reason, count in reasons.items())
    for unknown in result.unknown:
        lines.append(f"  unknown: key {unknown['key']:#x} not verified: {unknown['reason']}")
    causes = {}
    for violation in result.violations:
        causes.setdefault(violation.cause, []).append(violation)
    for number, (cause, found) in enumerate(causes.items(), 1):
        more = "" if len(found) == 1 or all else "; --all shows each"
        lines.append(f"root cause {number}/{len(causes)}: {cause} ({len(found)} "
                     f"violation{'s' if len(found) > 1 else ''}{more})")
        for violation in found if all else found[:1]:
            lines.extend(_violation_text(violation))
    return "\n".join(lines)


def _violation_text(violation):
    """One violation: its message, window, and (linearizability) prefix and state."""
    key = "?" if violation.key is None else f"{violation.key:#x}"
    lines = [f"[{violation.kind}] key {key}: {violation.message}"]
    if violation.window:
        lines.append(f"  window ({len(violation.window)} calls):")
    for call in violation.window:
        ret = "pending" if call["ret"] is None else call["ret"]
        lines.append(f"    [{call['call']:>10} .. {ret:>10}] line {call['line']:>7}  "
                     f"{call['text']}")
    if violation.kind == "linearizability":
        lines.append(f"  longest linearizable prefix in the window ({len(violation.prefix)} ops):")
        lines.extend(f"    {text}" for text in violation.prefix)
        lines.append(f"  model state there: {violation.state}")
    return lines
