"""The checker's accept-only fast path: the C core (harness/checker_core/) on a binary history.

Public API::

    run_core(path) -> CoreAnswer | None   # None: no library, or not a complete binary history
    CoreAnswer: ok (bool), calls, keys (partitions), seconds, why (reason when not ok)
    fast_ok(path) -> CoreAnswer | None    # the answer only when it is ok
    library() -> ctypes.CDLL | None       # the core, built on demand (cached)

The core answers "ok" only when every call is statically clean and every key's sub-history is
linearizable under the register part of the model (import, generate, destroy, export,
get_attributes); anything else (another operation, a pending call, an unexpected status, a
violation, a segment too big to search) is "undecided" and ``scenarios.check`` then runs the
Python checker, which also writes every explanation. Which (operation, status) means which model
rule is computed here from model.py's own tables (``_action``), so the two cannot drift apart on
what is legitimate. ``PSA_STRESS_FAST_CHECK=0`` disables the fast path;
``PSA_STRESS_FAST_CHECK=/path/libpsa_stress_checker_core.so`` uses that library.
"""
import ctypes
import glob
import os
import subprocess
import time

from scenarios import history_binary
from scenarios import model as psa
from scenarios.history import HistoryError
from scenarios.model_use import KEY_OPS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(REPO, "harness", "checker_core", name)
           for name in ("checker_core.c", "checker_core.h", "segment.c", "segment.h")]
TARGET = "psa_stress_checker_core"
VERSION = 1
# record fields in the order of checker_core.c's enum field, with the type the core reads
FIELDS = (("call", "u64"), ("ret", "u64"), ("seq", "u32"), ("thread", "u16"), ("op", "u8"),
          ("status", "i32"), ("key", "u32"), ("out_key", "u32"), ("attrs.lifetime", "u32"),
          ("attrs.id", "u32"), ("attrs.type", "u16"), ("attrs.bits", "u16"),
          ("attrs.usage", "u32"), ("attrs.alg", "u32"), ("material", "bytes"),
          ("material_len", "u8"))
NOOP, CREATE, CREATE_IMPORT, PRESENT, ABSENT, DESTROY, EXPORT, EXPORT_DENIED, ATTRIBUTES = \
    range(1, 10)   # checker_core.h CORE_*; 0 (undecided) is never passed
_RULE_ACTIONS = {psa._destroy: DESTROY, psa._absent: ABSENT, psa._export: EXPORT,
                 psa._export_denied: EXPORT_DENIED, psa._attributes: ATTRIBUTES}
_CREATES = {"import": CREATE_IMPORT, "generate": CREATE}
_OPS = ("import", "generate", "destroy", "export", "get_attributes")
_loaded = []


class CoreAnswer:
    __slots__ = ("ok", "calls", "keys", "seconds", "why")

    def __init__(self, ok, calls, keys, seconds, why):
        self.ok = ok
        self.calls = calls
        self.keys = keys
        self.seconds = seconds
        self.why = why


def _action(op, status):
    """The core's action for ``op`` returning ``status`` (model._key_ops and the legitimacy
    part of model.static_problem), or None: undecided."""
    legitimate = psa.LEGITIMATE[op]
    if op in _CREATES:
        if status == "SUCCESS":
            return _CREATES[op]
        if status == "ALREADY_EXISTS":     # the core checks the create is persistent
            return PRESENT
        return NOOP if status in legitimate else None
    rule = psa._SIMPLE_RULES[op].get(status)
    if rule is None:
        return NOOP if status in legitimate else None
    return _RULE_ACTIONS.get(rule)


def _config(binary):
    """The core's int64 configuration array from header.json's ``binary``, or None."""
    layout = history_binary._Layout(binary)
    config = [VERSION, layout.size, layout.page]
    for name, kind in FIELDS:
        offset, size, actual = layout.fields.get(name, (None, None, None))
        if actual != kind:
            return None
        config += [offset, size]
    if config[3] != 0:      # the call stamp is the record's first field (history_binary)
        return None
    for code, op in enumerate(layout.ops):
        if op not in _OPS or op in KEY_OPS:
            continue
        for status_code, status in layout.statuses.items():
            action = _action(op, status)
            if action is not None:
                config += [code, status_code, action]
    return config


def library():
    """The core's shared library (found under build/, or built there), or None."""
    if not _loaded:
        _loaded.append(_load())
    return _loaded[0]


def _fresh_library():
    newest = max(os.path.getmtime(source) for source in SOURCES)
    for path in glob.glob(os.path.join(REPO, "build", "*", f"lib{TARGET}.so")):
        if os.path.getmtime(path) >= newest:
            return path
    return None


def _load():
    setting = os.environ.get("PSA_STRESS_FAST_CHECK", "")
    if setting == "0":
        return None
    try:
        path = setting or _fresh_library()
        if path is None:
            for cache in sorted(glob.glob(os.path.join(REPO, "build", "*", "CMakeCache.txt"))):
                subprocess.run(["cmake", "--build", os.path.dirname(cache), "--target", TARGET],
                               capture_output=True, timeout=300, check=False)
                path = _fresh_library()
                if path is not None:
                    break
        if path is None:
            return None
        lib = ctypes.CDLL(path)
        lib.core_check.restype = ctypes.c_int
        lib.core_check.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                   ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                                   ctypes.c_char_p, ctypes.c_size_t]
        return lib
    except (OSError, subprocess.SubprocessError, AttributeError):
        return None


def run_core(path):
    """The core's answer on the binary history ``path``; None when it cannot be asked (no
    library, not binary, bad or incomplete history: Python reports those)."""
    started = time.perf_counter()
    lib = library()
    if lib is None or not history_binary.is_binary(path):
        return None
    try:
        history = history_binary.open_binary(path)    # header.json, layout, end.json checked
        end = history_binary._read_json(os.path.join(path, "end.json"), "end.json")["end"]
        config = _config(history.header["binary"])
    except (HistoryError, KeyError, TypeError, OSError):
        return None
    records = end.get("records") if type(end) is dict else None
    if not history.complete or config is None or type(records) is not int:
        return None
    threads = sorted(name for name in os.listdir(path) if name.startswith("thread-"))
    paths = (ctypes.c_char_p * max(len(threads), 1))(
        *[os.fsencode(os.path.join(path, name)) for name in threads])
    out, why = (ctypes.c_int64 * 2)(), ctypes.create_string_buffer(256)
    ok = lib.core_check((ctypes.c_int64 * len(config))(*config), len(config), paths,
                        len(threads), records, out, why, len(why))
    return CoreAnswer(ok == 1, out[0], out[1], time.perf_counter() - started,
                      why.value.decode(errors="replace"))


def fast_ok(path):
    answer = run_core(path)
    return answer if answer is not None and answer.ok else None
