"""The checker's fast path: the C core (harness/checker/) on a binary history.

Public API::

    run_core(path) -> CoreAnswer | None   # None: no library, or not a complete binary history
    CoreAnswer: ok (bool), violated (bool), calls, keys (partitions), seconds, why (reason when
                undecided), weakened ([{key, reason}]: keys checked by an approximation, as
                Python's), violations ([CoreViolation] when violated)
    CoreViolation: kind ("linearizability" | "material"), key, op, status, action, until,
                   signature
    fast_ok(path) -> CoreAnswer | None    # the answer only when it is ok
    explained(path, recheck, violation) -> CheckResult | None   # after fast_ok(path) was None
    library() -> ctypes.CDLL | None       # the core, built on demand (cached)

The core answers "ok" only when every call is statically clean and every key's sub-history is
linearizable under the model for the operations it covers (creates, including copy, derive and
derive_from with HKDF-SHA-256 recomputed in C; destroy, export, get_attributes, purge, open,
close, key use). When every call is covered but some keys' segments have no linearization, or
a material shared across keys shows two values, it answers "violated" with each violation's
signature (its culprit's operation, status and model action). ``explained`` then has Python
(``recheck``: scenarios.checker.check.check_history) confirm and explain the first violation of each
signature on the calls up to it that touch its key or a key linked to it by copies (the
records up to it are read as tuples, history/binary.py Records, and only those calls are made
Call objects), and counts the others under the cause Python gave that first one: a history with
thousands of failures of one root cause costs one small Python check. A violation Python does not confirm (the core's
libcrypto refusing what Python computes) makes it return None. Anything else (another
operation, a pending call, an unexpected status, a static problem, a search over its budget)
is "undecided" and ``scenarios.checker.check`` then runs the Python checker on the whole
history. Which (operation, status) means which model rule is computed here by asking
model/key_store.py itself (``_entry``: ``static_problem`` and ``_key_ops`` of a sample call),
so the two cannot drift apart on what is legitimate. ``PSA_STRESS_FAST_CHECK=0``
disables the fast path; ``PSA_STRESS_FAST_CHECK=/path/libpsa_stress_checker_core.so`` uses
that library.
"""
import bisect
import ctypes
import glob
import os
import subprocess
import time

from scenarios.history import binary as history_binary
from scenarios.model import key_store as psa
from scenarios.model import operations
from scenarios.model import materials
from scenarios.model import key_use as model_use
from scenarios.model.faults import FaultRules
from scenarios.history.reader import CREATE_OPS, Call, HistoryError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE_DIR = os.path.join(REPO, "harness", "checker")
TARGET = "psa_stress_checker_core"
WIDE = TARGET + "_wide"   # the same core with 256 descriptions per state (harness/checker/state.h)
FULL_STATE = "more descriptions than a state holds"   # checker_core.h CORE_FULL_STATE's end
VERSION = 6       # checker_core.h CORE_VERSION, and the layout of the configuration below
MAX_OPS, MAX_FIELDS, CFG_FIELDS = 64, 24, 9
# record fields in the order of core.h's enum field, with the type the core reads (salt and the
# key uses' fields may be absent: then the operations that read them are left to Python)
FIELDS = (("call", "u64"), ("ret", "u64"), ("seq", "u32"), ("thread", "u16"), ("op", "u8"),
          ("status", "i32"), ("key", "u32"), ("out_key", "u32"), ("attrs.lifetime", "u32"),
          ("attrs.id", "u32"), ("attrs.type", "u16"), ("attrs.bits", "u16"),
          ("attrs.usage", "u32"), ("attrs.alg", "u32"), ("material", "bytes"),
          ("material_len", "u8"), ("salt", "bytes"), ("input", "bytes"), ("input_len", "u8"),
          ("mid", "u64"), ("stage", "u8"))
OPTIONAL_FIELDS = {"salt", "input", "input_len", "mid", "stage"}
# checker_core.h: variants, key actions (CORE_*), create actions (MAKE_*), checks (CHECK_*)
(VOLATILE_ID, PERSISTENT_ID, ID_ZERO, VOLATILE_CREATE, PERSISTENT_CREATE) = range(5)
(NOOP, _CREATE, PRESENT, ABSENT, DESTROY, EXPORT, EXPORT_DENIED, ATTRIBUTES, COPY_SOURCE,
 COPY_DENIED, COPY_BAD_ARG, DERIVE_SOURCE, DERIVE_DENIED, USE, USE_REJECTED, USE_DENIED,
 PUBLIC_REFUSED, SIGNED, EXPORT_PUBLIC, DESTROY_MAYBE) = range(20)
# checker_core.h USE_*: the key uses the core recomputes (model_use.USES)
USE_KINDS = {op: kind for kind, op in enumerate(
    ("sign", "verify", "cipher_encrypt", "cipher_decrypt", "mac", "mac_multipart",
     "aead_encrypt", "aead_decrypt"), start=1)}
MAKES = {"import": 1, "generate": 2, "derive": 3, "copy": 4, "derive_from": 5}
MAKE_NONE, MAKE_PRESENT = 0, 6
# core_check's out[] (checker_core.h): records, keys, n, v, then n keys checked by an
# approximation, then v violations of VIOLATION_INTS ints
OUT_WEAK, OUT_VIOLATIONS, OUT_WEAK_IDS, CORE_MAX_WEAK = 2, 3, 4, 4096
OUT_VIOLATION_LIST, VIOLATION_INTS, CORE_MAX_VIOLATIONS = OUT_WEAK_IDS + CORE_MAX_WEAK, 3, 4096
CORE_OUT = OUT_VIOLATION_LIST + VIOLATION_INTS * CORE_MAX_VIOLATIONS
VIOLATION_KINDS = {1: "linearizability", 2: "material"}
OK, VIOLATED = 1, 2   # core_check's answers (0: undecided)
WEAK_REASONS = {1: materials.ANY_KEY, 2: materials.SEVERAL_SOURCES,
                3: materials.SEVERAL_INSTANCES, 4: materials.UNBOUND_USE,
                5: materials.UNTIED_DERIVATION, 6: materials.SPLIT}
CHECK_NONE, CHECK_CREATED_ID, CHECK_SAME_KEY, CHECK_MULTIPART = range(4)
_KEY_ACTIONS = {psa.rule_present: PRESENT, psa.rule_absent: ABSENT, psa.rule_destroy: DESTROY,
                psa.rule_export: EXPORT, psa.rule_export_denied: EXPORT_DENIED,
                psa.rule_attributes: ATTRIBUTES, psa.rule_copy_source: COPY_SOURCE,
                psa.rule_copy_denied: COPY_DENIED, psa.rule_copy_bad_argument: COPY_BAD_ARG,
                model_use.rule_derive_source: DERIVE_SOURCE,
                model_use.rule_derive_denied: DERIVE_DENIED,
                model_use.rule_use: USE, model_use.rule_use_rejected: USE_REJECTED,
                model_use.rule_use_denied: USE_DENIED,
                model_use.rule_export_public_refused: PUBLIC_REFUSED, model_use.rule_signed: SIGNED,
                model_use.rule_export_public: EXPORT_PUBLIC,
                psa.rule_destroy_maybe: DESTROY_MAYBE}
# the record fields (or header constants) the core reads each operation's inputs from
_MATERIAL = ("cut", ("material", "material_len"))
_INPUT = ("input", False, ("cut", ("input", "input_len")))
_USE_INPUTS = (_INPUT, ("material", True, _MATERIAL))
_INPUTS = {"import": (("material", False, _MATERIAL),),
           "export": (("material", True, _MATERIAL),),
           "derive": (("salt", False, ("bytes", "salt")), ("secret", False, "const"),
                      ("info", False, "const")),
           "derive_from": (("salt", False, ("bytes", "salt")), ("info", False, "const")),
           "export_public": (("material", True, _MATERIAL),),
           "sign": _USE_INPUTS, "cipher_encrypt": _USE_INPUTS, "cipher_decrypt": _USE_INPUTS,
           "mac": _USE_INPUTS, "verify": (("hash", False, "const"), _INPUT),
           "aead_encrypt": (("nonce", False, "const"),) + _USE_INPUTS,
           "aead_decrypt": (("nonce", False, "const"),) + _USE_INPUTS,
           "mac_multipart": (("message", False, "const"), ("material", True, _MATERIAL),
                             ("mid", False, ("int", "mid")), ("stage", False, ("int", "stage")))}
# the constants passed to the core, in checker_core.h's order (CFG_SECRET_LEN ...)
_CONSTANTS = (("derive", "secret"), ("derive", "info"), ("derive_from", "info"),
              ("verify", "hash"), ("aead_encrypt", "nonce"), ("mac_multipart", "message"))
_loaded = []


class CoreAnswer:
    __slots__ = ("ok", "violated", "calls", "keys", "seconds", "why", "weakened", "violations")

    def __init__(self, ok, calls, keys, seconds, why, weakened=(), violations=()):
        self.ok = ok
        self.violated = bool(violations)
        self.calls = calls
        self.keys = keys
        self.seconds = seconds
        self.why = why
        self.weakened = [{"key": value & 0xFFFFFFFF, "reason": WEAK_REASONS[value >> 32]}
                         for value in weakened]   # as check.CheckResult.weakened
        self.violations = list(violations)


class CoreViolation:
    """One violation the core found: a key whose segment has no linearization (the culprit:
    the op its deepest search could not take), or a material conflict (no culprit); ``until``:
    the stamp up to which the calls show it."""
    __slots__ = ("kind", "key", "op", "status", "action", "until")

    def __init__(self, ints, layout):
        head, status, self.until = ints
        self.kind = VIOLATION_KINDS[head >> 48]
        self.key = head & 0xFFFFFFFF
        self.action = head >> 40 & 0xFF
        self.op = layout.ops[head >> 32 & 0xFF] if self.action else None
        self.status = layout.statuses.get(status) if self.action else None

    @property
    def signature(self):
        """What a root cause is to the core: the kind, and the culprit's op, status, action."""
        return self.kind, self.op, self.status, self.action


def _sample(op, status, variant, out_key=0):
    """A call of ``op`` returning ``status`` for ``variant`` (its id's range, or a create's
    lifetime), with every argument any operation has."""
    persistent = variant in (PERSISTENT_ID, PERSISTENT_CREATE)
    key = (psa.VOLATILE_MIN + 1, 1, 0, 2, 2)[variant]
    args = {"key": key, "src": key, "lifetime": int(persistent), "id": int(persistent),
            "type": 0x2400, "bits": 128, "usage": 1, "alg": 0, "material": "00" * 16,
            "secret": "00", "salt": "00", "info": "00", "kdf": "HKDF-SHA256", "input": "00",
            "hash": "00", "nonce": "00", "message": "00", "mid": 2, "stage": 1}
    created = 1 if persistent else psa.VOLATILE_MIN + 1
    out = {"key": (created if op in CREATE_OPS else key) + out_key, "material": "00",
           "lifetime": 0, "id": key, "type": 0x2400, "bits": 128, "usage": 1, "alg": 0}
    return Call(0, 0, op, 1, 3, status, args, out if status == "SUCCESS" else {}, 0)


def _entry(op, status, variant, rules):
    """(key action, create action, check) of the core for ``op`` returning ``status`` (model
    _key_ops and static_problem, under the faults the run injected: ``rules``, a
    model/faults.py FaultRules), or None: undecided."""
    call = _sample(op, status, variant)
    try:
        problem, checked = rules.admit(call)
        if problem is not None or call.status != status:   # forbidden, or made pending
            return None
        key_ops = operations.key_ops(call) if checked else ()
        wrong_handle = operations.static_problem(_sample(op, status, variant, out_key=1))
    except (KeyError, TypeError, ValueError):      # an operation the core cannot read
        return None
    key_action, make = NOOP, MAKE_NONE
    for key_op in key_ops:
        if op in CREATE_OPS and not key_op.role.endswith(("(source)", "(secret)")):
            if key_op.rule is psa.rule_create and key_op.key == call.out["key"]:
                make = MAKES[op]
            elif key_op.rule is psa.rule_present and key_op.key == call.args["id"]:
                make = MAKE_PRESENT
            else:
                return None
        elif key_op.rule in _KEY_ACTIONS and key_op.key == call.args["key"]:
            key_action = _KEY_ACTIONS[key_op.rule]
        else:
            return None
    if make not in (MAKE_NONE, MAKE_PRESENT):
        check = CHECK_CREATED_ID
    elif op == "mac_multipart":
        check = CHECK_MULTIPART
    else:
        check = CHECK_SAME_KEY if wrong_handle else CHECK_NONE
    flag, key_type = model_use.USES[op][:2] if op in model_use.USES else (0, 0)
    return key_action, make, check, USE_KINDS.get(op, 0), flag, key_type


def _inputs(layout, constants):
    """The operations whose inputs the core can read, and the bytes of the constants of
    ``_CONSTANTS`` (None when absent)."""
    readable, found = set(), {}
    for op, needs in _INPUTS.items():
        try:
            sources = [history_binary.field_of(name, is_out, want[0] != "int", layout, op,
                                                constants) for name, is_out, want in needs]
        except HistoryError:
            continue
        if all(want == "const" and kind == "const" or (kind, source) == want
               for (_, _, want), (kind, source) in zip(needs, sources)):
            readable.add(op)
            found.update({(op, name): bytes.fromhex(source)
                          for (name, _, want), (_, source) in zip(needs, sources)
                          if want == "const"})
    if found.get(("aead_decrypt", "nonce")) != found.get(("aead_encrypt", "nonce")):
        readable.discard("aead_decrypt")    # the core reads one nonce for both
    return readable, [found.get(name) for name in _CONSTANTS]


def _config(layout, header):
    """(the core's int64 configuration array, the constants' bytes) from header.json and the
    layout of its ``binary``, or None."""
    binary, rules = header["binary"], FaultRules(header)
    parts = _inputs(layout, binary.get("constants") or {})
    config = [VERSION, layout.size, layout.page] + [-1 if p is None else len(p)
                                                    for p in parts[1]]
    for name, kind in FIELDS:
        offset, size, actual = layout.fields.get(name, (0, 0, kind))
        if actual != kind or (size == 0 and name not in OPTIONAL_FIELDS):
            return None
        config += [offset, size]
    config += [0, 0] * (MAX_FIELDS - len(FIELDS))
    if config[CFG_FIELDS] != 0:   # the call stamp is the record's first field (history_binary)
        return None
    for code, op in enumerate(layout.ops[:MAX_OPS]):
        if op in _INPUTS and op not in parts[0]:
            continue
        variants = (VOLATILE_CREATE, PERSISTENT_CREATE) if op in CREATE_OPS else \
            (VOLATILE_ID, PERSISTENT_ID, ID_ZERO)
        for status_code, status in layout.statuses.items():
            for variant in variants:
                entry = _entry(op, status, variant, rules) if -255 <= status_code <= 0 \
                    else None
                if entry is not None:
                    config += [code, status_code, variant, *entry]
    return config, b"".join(p for p in parts[1] if p is not None)


def library():
    """The core's shared library (found under build/, or built there), or None."""
    return _libraries()[0]


def _libraries():
    """[the core, the wide core or None], loaded once: the wide one (WIDE) is asked only for
    the histories the core leaves undecided because a state would hold more descriptions than
    its 32, so the others keep the core's smaller states."""
    if not _loaded:
        core = _load(TARGET)
        _loaded.extend([core, _load(WIDE) if core is not None else None])
    return _loaded


def _fresh_library(target):
    newest = max(os.path.getmtime(os.path.join(CORE_DIR, name)) for name in os.listdir(CORE_DIR))
    for path in glob.glob(os.path.join(REPO, "build", "*", f"lib{target}.so")):
        if os.path.getmtime(path) >= newest:
            return path
    return None


def _load(target):
    """``target``'s library: PSA_STRESS_FAST_CHECK's path (the wide one: its sibling, if any),
    or a fresh one under build/ (built there if need be), or None."""
    setting = os.environ.get("PSA_STRESS_FAST_CHECK", "")
    if setting == "0":
        return None
    try:
        if setting:
            sibling = os.path.join(os.path.dirname(setting), f"lib{target}.so")
            path = setting if target == TARGET else sibling if os.path.isfile(sibling) else None
            if path is None:
                return None
        else:
            path = _fresh_library(target)
        for cache in sorted(glob.glob(os.path.join(REPO, "build", "*", "CMakeCache.txt"))):
            if path is not None:
                break
            subprocess.run(["cmake", "--build", os.path.dirname(cache), "--target", target],
                           capture_output=True, timeout=300, check=False)
            path = _fresh_library(target)
        if path is None:
            return None
        lib = ctypes.CDLL(path)
        lib.core_check.restype = ctypes.c_int
        lib.core_check.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int,
                                   ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                   ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                                   ctypes.c_char_p, ctypes.c_size_t]
        return lib
    except (OSError, subprocess.SubprocessError, AttributeError):
        return None


def run_core(path):
    """The core's answer on the binary history ``path``; None when it cannot be asked (no
    library, not binary, bad or incomplete history: Python reports those)."""
    started = time.perf_counter()
    lib, wide = _libraries()
    if lib is None or not history_binary.is_binary(path):
        return None
    try:
        history = history_binary.open_binary(path)    # header.json, layout, end.json checked
        end = history_binary.read_json(os.path.join(path, "end.json"), "end.json")["end"]
        layout = history_binary.Layout(history.header["binary"])
        config = _config(layout, history.header)
    except (HistoryError, KeyError, TypeError, OSError):
        return None
    records = end.get("records") if type(end) is dict else None
    if not history.complete or config is None or type(records) is not int:
        return None
    threads = sorted(name for name in os.listdir(path) if name.startswith("thread-"))
    paths = (ctypes.c_char_p * max(len(threads), 1))(
        *[os.fsencode(os.path.join(path, name)) for name in threads])
    out, why = (ctypes.c_int64 * CORE_OUT)(), ctypes.create_string_buffer(256)
    config, consts = config
    for core in (lib, wide):
        ok = core.core_check((ctypes.c_int64 * len(config))(*config), len(config), consts,
                             paths, len(threads), records, out, why, len(why))
        if ok or wide is None or FULL_STATE.encode() not in why.value:
            break
    weak = out[OUT_WEAK_IDS:OUT_WEAK_IDS + out[OUT_WEAK]]
    found = out[OUT_VIOLATION_LIST:OUT_VIOLATION_LIST + VIOLATION_INTS * out[OUT_VIOLATIONS]]
    violations = [CoreViolation(found[i:i + VIOLATION_INTS], layout)
                  for i in range(0, len(found), VIOLATION_INTS)] if ok == VIOLATED else []
    return CoreAnswer(ok == OK, out[0], out[1], time.perf_counter() - started,
                      why.value.decode(errors="replace"), weak, violations)


_violated = {}   # path -> the violated answer of the last fast_ok(path), for explained()


def fast_ok(path):
    """The core's answer on ``path`` when it is ok, else None (when the core found violations,
    ``explained(path, ...)`` then uses its answer)."""
    answer = run_core(path)
    _violated.clear()
    if answer is not None and answer.violated:
        _violated[path] = answer
    return answer if answer is not None and answer.ok else None


def explained(path, recheck, violation):
    """The CheckResult of the history at ``path`` whose last fast_ok found violations, or None
    (no such answer, or Python did not confirm one: check the whole history). ``recheck``:
    History -> CheckResult (the Python checker); ``violation``: check.Violation."""
    answer = _violated.pop(path, None)
    if answer is None:
        return None
    violated = {v.key for v in answer.violations if v.kind == "linearizability"}
    found = [v for v in answer.violations if v.kind == "linearizability" or v.key not in violated]
    firsts, confirmed, result = {}, {}, None
    for found_first in sorted(found, key=lambda v: v.until):
        firsts.setdefault(found_first.signature, found_first)
    prefix = _Prefix(path, max(first.until for first in firsts.values()))
    for signature, first in firsts.items():
        checked = recheck(prefix.around(first))
        confirmed[signature] = _confirmation(checked, first)
        if confirmed[signature] is None:
            return None
        result = result or checked
    explained_first = sorted(found, key=lambda v: (v is not firsts[v.signature],
                                                   v.kind != "linearizability", v.key))
    result.violations = [confirmed[v.signature] if v is firsts[v.signature]
                         else _counted(v, confirmed[v.signature], firsts[v.signature], violation)
                         for v in explained_first]   # the report's headline is the first
    result.path, result.calls, result.complete, result.verdict = path, answer.calls, True, \
        "violation"
    result.partitions_ok = answer.keys - len(violated)
    result.partitions_violated, result.partitions_unknown = len(violated), 0
    result.unknown, result.weakened = [], answer.weakened
    return result


class _Prefix:
    """The history's records invoked up to a stamp (read once, as tuples), and the groups of key
    ids that calls naming two keys (copies, derivations) link."""

    def __init__(self, path, until):
        self.records, self.parent = history_binary.Records(path, until), {}
        for ids in self.records.names:
            if len(ids) > 1:
                ids = [self.root(key) for key in ids]
                for other in ids[1:]:
                    self.parent[other] = ids[0]
        self.groups = [self.root(ids[0]) if ids else None for ids in self.records.names]

    def root(self, key):
        """The group of ``key``; the keys on the way are made to point at it (path compression:
        a chain of copies of copies costs amortised near-constant time per call, not its
        length)."""
        parent, top = self.parent, key
        while parent.get(top, top) != top:
            top = parent[top]
        while key != top:
            parent[key], key = top, parent[key]
        return top

    def around(self, found):
        """The calls invoked up to ``found.until`` that name its key or a key linked to it:
        every call its verdict depends on (only their Calls are made)."""
        group, end = self.root(found.key), bisect.bisect_right(self.records.stamps, found.until)
        return self.records.history([at for at, g in zip(range(end), self.groups) if g == group])


def _confirmation(checked, found):
    """Python's violation for the core's ``found`` in ``checked``, or None."""
    for violation in checked.violations:
        if violation.kind == found.kind and (violation.key == found.key
                                             or found.kind == "material"):
            return violation
    return None


def _counted(found, explanation, first, violation):
    """A violation of the same signature as ``first``, counted under its explanation's cause."""
    culprit = f"{found.op} -> {found.status}: " if found.op else ""
    return violation(found.kind, found.key, (
        f"{culprit}found by the C core up to stamp {found.until}, same root cause as key "
        f"{first.key:#x} (explained there)"), [],
        state=f"not explained here (see key {first.key:#x})", cause=explanation.cause)
