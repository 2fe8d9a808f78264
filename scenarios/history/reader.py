"""Read and validate a psa-stress history file (JSON Lines, docs/history-format.md); the binary
form is read by scenarios/history/binary.py, and the format's definitions both share are in
scenarios/history/schema.py (re-exported here as part of this module's API).

Public API::

    open_history(path) -> History  # JSON Lines file or binary directory (history/binary.py);
                                   # History.calls is a one-pass iterator, validated as it goes
    load(path) -> History          # the same with History.calls a list
                                   # both raise HistoryError("line N: what is wrong")
    parse(lines) -> History        # JSON Lines text lines, calls as a list
    History.header                 # the header object, as parsed
    History.calls                  # Calls sorted by call stamp
    History.complete               # the end line's "complete" (set once calls are exhausted)
    check_derived_bits(op, args, where)   # HistoryError unless a derivation's bits fit HKDF
    check_end(end, where)          # HistoryError unless the end object is well-formed
    HEX, STATUS_NAME               # patterns of byte strings and status names
    Call: thread, seq, op, call, ret (None if pending), status (None if pending),
          args (dict), out (dict, {} unless SUCCESS), line (1-based line number)
    OPS, CREATE_OPS                # operation names
    gc_paused()                    # context manager: no cyclic GC (big histories)

Validation is one pass over the file, in bounded memory (the checker streams): every rule of the
format is checked and the first problem raises ``HistoryError`` naming the line, possibly after
earlier calls were handed out. Byte strings stay lower-case hex strings.
"""
import contextlib
import gc
import json

from scenarios.history import binary as history_binary
from scenarios.history.schema import (ATTRS, CREATE_OPS, HEX, OPS, STATUS_NAME,  # noqa: F401
                                      U16_MAX, U32_MAX, Call, History, HistoryError,
                                      check_derived_bits, check_end, check_header)

def open_history(path):
    """The history at ``path`` (JSON Lines file or binary directory), read lazily."""
    if history_binary.is_binary(path):
        return history_binary.open_binary(path)
    try:
        stream = open(path, encoding="utf-8")
    except OSError as error:
        raise HistoryError(f"line 1: cannot open ({error.strerror})") from None
    history = History(path, None, None, False)
    lines = _lines(stream)
    history.header = _check_header_line(next(lines, None))
    history.calls = _records(lines, history)
    return history


def _lines(stream):
    with stream:
        try:
            yield from enumerate(stream, 1)
        except UnicodeDecodeError as error:
            raise HistoryError(f"line ?: not UTF-8 ({error.reason})") from None


def load(path):
    """Read and validate the history at ``path``; return a ``History`` with a list of calls."""
    with gc_paused():
        history = open_history(path)
        history.calls = list(history.calls)
    return history


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: millions of live acyclic objects make it thrash."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(lines, path="<history>"):
    """Validate an iterable of JSON lines (header, records, end) into a ``History``."""
    history = History(path, None, None, False)
    numbered = enumerate(lines, 1)
    history.header = _check_header_line(next(numbered, None))
    history.calls = list(_records(numbered, history))
    return history


def _check_header_line(first):
    if first is None:
        raise HistoryError("line 1: empty file, no header")
    number, text = first
    return check_header(_json(text, number), f"line {number}")


def _records(numbered, history):
    """Yield the validated calls of (number, text) lines after the header; check the end line
    and set ``history.complete``."""
    reader = _Reader(history.header.get("threads"))
    end, number = None, 1
    for number, text in numbered:
        if end is not None:
            raise HistoryError(f"line {number}: data after the end line")
        obj = _json(text, number)
        if "end" in obj and "thread" not in obj:
            end = _check_end(obj, number)
        else:
            yield reader.record(obj, number)
    if end is None:
        raise HistoryError(f"line {number + 1}: truncated: no end line")
    records, complete = end
    if records != reader.count:
        raise HistoryError(f"line {number}: end.records is {records} but the file has "
                           f"{reader.count} call records")
    if complete and reader.pending is not None:
        raise HistoryError(f"line {reader.pending}: ret is null but end.complete is true")
    history.complete = complete


def _json(text, number):
    try:
        obj = json.loads(text)
    except ValueError as error:
        raise HistoryError(f"line {number}: not JSON ({error})") from None
    except RecursionError:
        raise HistoryError(f"line {number}: not a history line (nested too deeply)") from None
    if type(obj) is not dict:
        raise HistoryError(f"line {number}: not a JSON object")
    return obj


def _check_end(obj, number):
    end = obj["end"]
    check_end(end, f"line {number}: end line")
    return end["records"], end["complete"]


class _Reader:
    """Per-record validation with the cross-record state (sort order, per-thread sequence)."""

    def __init__(self, threads):
        self.count = 0
        self.pending = None          # line of the first pending call
        self.threads = threads
        self.last_call = -1
        self.thread_last = {}        # thread -> its previous Call
        self.statuses = set()        # status names already validated
        self.future_rets = {}        # ret stamps above last_call -> line (uniqueness check)

    def record(self, obj, number):
        try:
            call = Call(obj["thread"], obj["seq"], obj["op"], obj["call"], obj["ret"],
                        obj["status"], obj["args"], obj.get("out") or {}, number)
        except KeyError as missing:
            raise HistoryError(f"line {number}: record has no {missing}") from None
        spec = OPS.get(call.op) if type(call.op) is str else None
        if spec is None:
            raise HistoryError(f"line {number}: unknown op {call.op!r}")
        self._check_stamps(call)
        self._check_thread(call)
        if call.ret is None:
            if call.status is not None:
                raise HistoryError(f"line {number}: pending call (ret null) has a status")
        elif type(call.status) is not str or call.status not in self.statuses:
            self._check_status(call)
        _check_fields(call.args, spec[0], spec[1], "args", number)
        if call.status == "SUCCESS":
            _check_fields(call.out, spec[2], spec[3], "out", number)
        elif type(call.out) is not dict:
            raise HistoryError(f"line {number}: out must be an object")
        if call.op == "derive" and call.args.get("kdf") != "HKDF-SHA256":
            raise HistoryError(f"line {number}: derive kdf must be 'HKDF-SHA256'")
        check_derived_bits(call.op, call.args, f"line {number}")
        self.count += 1
        if call.ret is None and self.pending is None:
            self.pending = number
        return call

    def _check_stamps(self, call):
        number, stamp, ret = call.line, call.call, call.ret
        if type(stamp) is not int or stamp < 0:
            raise HistoryError(f"line {number}: call must be a non-negative integer")
        if ret is not None and (type(ret) is not int or ret <= stamp):
            raise HistoryError(f"line {number}: call {stamp} >= ret {ret!r}")
        if stamp <= self.last_call:
            raise HistoryError(f"line {number}: records not sorted by call "
                               f"({stamp} after {self.last_call})")
        self._check_unique(stamp, ret, number)
        self.last_call = stamp

    def _check_unique(self, stamp, ret, number):
        """Stamps come from one counter: no stamp may be used twice. Only rets above the last
        call stamp can still collide, so at most one per thread is remembered."""
        future = self.future_rets
        if stamp in future or ret in future:
            raise HistoryError(f"line {number}: stamp {stamp if stamp in future else ret} is "
                               f"used twice")
        if ret is not None:
            future[ret] = number
        if len(future) > 64:
            for old in [r for r in future if r <= stamp]:
                del future[old]

    def _check_thread(self, call):
        number, thread = call.line, call.thread
        previous = self.thread_last.get(thread) if type(thread) is int else None
        if previous is None and (type(thread) is not int or thread < 0 or
                                 (self.threads is not None and thread >= self.threads)):
            raise HistoryError(f"line {number}: bad thread {thread!r}")
        expected = 0 if previous is None else previous.seq + 1
        if call.seq != expected or type(call.seq) is not int:
            raise HistoryError(f"line {number}: thread {thread} seq {call.seq!r}, "
                               f"expected {expected} (gap or disorder)")
        if previous is not None and (previous.ret is None or previous.ret > call.call):
            raise HistoryError(f"line {number}: thread {thread} call at {call.call} overlaps "
                               f"its previous call (line {previous.line}, ret {previous.ret})")
        self.thread_last[thread] = call

    def _check_status(self, call):
        if type(call.status) is not str or not STATUS_NAME.fullmatch(call.status):
            raise HistoryError(f"line {call.line}: bad status {call.status!r}")
        self.statuses.add(call.status)


def _check_fields(values, ints, hexes, where, number):
    if type(values) is not dict:
        raise HistoryError(f"line {number}: {where} must be an object")
    for name in ints:
        value = values.get(name)
        if type(value) is not int or not 0 <= value <= U16_MAX.get(name, U32_MAX):
            raise HistoryError(f"line {number}: {where}.{name} must be an integer in 0.."
                               f"{U16_MAX.get(name, U32_MAX)}")
    for name in hexes:
        value = values.get(name)
        if type(value) is not str or not HEX.fullmatch(value):
            raise HistoryError(f"line {number}: {where}.{name} must be lower-case hex bytes")
