"""The key store's final state against the history: the live set the driver found inside the
core after the run must agree with every key the history settles.

The driver lists, in the history's end line, ``"live": [ids]``: the ids of the FULL key slots and
of the key files in storage once every worker has joined (harness/inside/inspect.c), without the
harness's own key. The model settles some ids at the end of a complete history:

- certainly present: a successful create C such that every call that may remove the key
  returned before C was invoked (nothing can remove it after C's linearization point);
- certainly absent: a successful removal R (say, a destroy) such that every create returned
  before R was invoked (nothing can re-create it after R's linearization point).

Other ids depend on the linearization and are not judged. Both rules need only, per key, the
latest return among its removals (or creates) and the latest invocation among its creates (or
removals), so settling is one pass over the calls that may create or remove a key: linear in
the history.

Which calls create or remove is asked of the model itself (``operations.key_ops`` of a sample call
of each operation and status, stepped from an absent and from a present state), so a new
operation needs no change here. A binary history without injected faults is scanned for just the
record fields this needs (a column scan, no call objects); any other history goes through the
full reader and the fault rules (scenarios/model/faults.py): a SERVICE_FAILURE under mutex faults
is pending, an ALREADY_EXISTS under storage faults settles nothing, and a destroy that failed
with a storage error may have left its key.

The configuration the header records is honoured too: INSUFFICIENT_MEMORY is a legitimate result
only in the static key store (``key_store.kind == "static"``: every slot can be taken) or when
the header records allocation faults (``alloc=R`` in ``faults.spec``); the dynamic store grows
instead.

Public API::

    check_file(path) -> [str]              # disagreements, one line each
    config_problems(history) -> [str]
    live_ids(path) -> list | None          # the end line's "live", None when absent
    problems(history, live) -> [str]
"""
import functools
import json
import os

from scenarios.history import reader as history_module
from scenarios.history import binary as history_binary
from scenarios.history import schema as history_format
from scenarios.model import key_store as model_module
from scenarios.model import operations
from scenarios.model.key_store import ABSENT, VOLATILE_MAX, VOLATILE_MIN
from scenarios.model.operations import KeyStoreModel
from scenarios.model.faults import FaultRules, kinds

TAIL_BYTES = 1 << 22     # the end line is the last line; a live list of 100k ids fits
MAX_CONFIG_PROBLEMS = 10
OOM = "INSUFFICIENT_MEMORY"
CREATE, REMOVE, REMOVE_CERTAIN = "create", "remove", "remove-certain"
# An event: one call that may create or remove a key, as a plain tuple
# (op, status, persistent, key, created, call, ret, thread, seq); created: the id a create
# makes (None: unknown).
OP, STATUS, PERSISTENT, KEY, CREATED, CALL, RET, THREAD, SEQ = range(9)
SCANNED = ("thread", "seq", "op", "status", "key", "out_key", "attrs.lifetime", "attrs.id")


def check_file(path):
    """The key-store configuration's problems, and the end line's live set compared with the
    history at ``path``."""
    live = live_ids(path)
    if history_binary.is_binary(path):
        history = history_binary.open_binary(path)      # header checked, calls not read yet
        if not kinds(history.header):
            events, ooms = _scan_binary(path, history.header)
            found = _oom_problems(history.header, ooms)
            if live is None or not history.complete:
                return found
            return found + _compare(_settle(events), live)
    history = history_module.load(path)
    found = config_problems(history)
    return found + (problems(history, live) if live is not None else [])


def config_problems(history):
    """Calls whose status the recorded key-store configuration rules out."""
    return _oom_problems(history.header, (f"line {call.line}: {call.op}"
                                          for call in history.calls if call.status == OOM))


def _oom_problems(header, calls):
    """One line for each of the first calls (``where`` strings) that returned
    INSUFFICIENT_MEMORY, when the configuration rules it out."""
    if header["key_store"].get("kind") == "static" or "alloc" in kinds(header):
        return []
    found = []
    for where in calls:
        if len(found) == MAX_CONFIG_PROBLEMS:
            break
        found.append(f"{where} returned INSUFFICIENT_MEMORY, but the dynamic key store "
                     "allocates slots on demand and no allocation fault was injected")
    return found


def live_ids(path):
    """The ``live`` list of the history's end line (a JSON Lines file's last line, a binary
    history's end.json), or None."""
    if os.path.isdir(path):
        path = os.path.join(path, "end.json")
        if not os.path.isfile(path):
            return None
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - TAIL_BYTES))
        lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    try:
        end = json.loads(lines[-1]).get("end") if lines else None
    except ValueError:
        return None
    return end.get("live") if isinstance(end, dict) else None


def problems(history, live):
    """Where the core's final live set disagrees with what the history settles."""
    if not history.complete:
        return []
    rules = FaultRules(history.header)
    events = (event for call in history.calls if rules.admit(call) == (None, True)
              for event in _events_of_call(call))
    return _compare(_settle(events), live)


def _compare(settled, live):
    found = []
    live = set(live)
    for key in sorted(live):
        verdict = settled.get(key)
        if verdict is None:
            found.append(f"key {key:#x} is live in the core, but no call of the history "
                         "created it")
        elif verdict[0] == "absent":
            found.append(f"key {key:#x} is live in the core after {verdict[1]}, which no "
                         "create follows")
    for key, (state, why) in sorted(settled.items()):
        if state == "present" and key not in live:
            found.append(f"key {key:#x} is neither in a key slot nor in storage, but "
                         f"{why} and nothing can have removed it since")
    return found


# ---- which calls create or remove: asked of the model ----

def _sample(op, status, persistent):
    """A call of ``op`` returning ``status`` (None: pending) on a volatile or persistent id,
    with every argument and output the history format gives the operation."""
    ints, hexes, out_ints, out_hexes = history_format.OPS[op]
    key = 1 if persistent else VOLATILE_MIN
    values = {"key": key, "src": key, "lifetime": int(persistent), "id": key if persistent else 0,
              "type": 0x2400, "bits": 128, "usage": 0, "alg": 0}
    args = {name: values.get(name, 1) for name in ints}
    args.update((name, "00" * 16) for name in hexes)
    out = {name: values.get(name, 1) for name in out_ints}
    out.update((name, "00" * 16) for name in out_hexes)
    return history_format.Call(0, 0, op, 1, None if status is None else 2, status, args,
                               out if status == "SUCCESS" else {}, 0)


@functools.lru_cache(maxsize=None)
def roles(op, status, persistent):
    """What a call of ``op`` returning ``status`` does to whether its key exists: a tuple of
    (role, target) with role CREATE, REMOVE or REMOVE_CERTAIN and target "created" (the id it
    creates) or "key" (the id it names)."""
    model, call = KeyStoreModel(), _sample(op, status, persistent)
    try:
        key_ops = operations.key_ops(call)
    except (KeyError, TypeError, ValueError):
        return ()
    found = []
    for key_op in key_ops:
        if not model_module.mutates(key_op.rule) or model_module.binds(key_op.rule):
            continue
        target = "key" if key_op.key == call.args.get("key") and \
            op not in history_format.CREATE_OPS else "created"
        key_op.key = call.args.get("key", VOLATILE_MIN)
        present = frozenset(((int(persistent), key_op.key) + (None,) * 5,))
        if _creates(model, key_op):
            found.append((CREATE, target))
        after = model.step(present, key_op)
        if ABSENT in after:
            found.append((REMOVE_CERTAIN if after == (ABSENT,) else REMOVE, target))
    return tuple(found)


def _creates(model, op):
    if op.rule is model_module.rule_create:
        return True
    after = model.step(ABSENT, op)
    return bool(after) and ABSENT not in after


def _relevant_ops(header):
    """The operations of the binary layout some status of which creates or removes a key."""
    statuses = [None, *header["binary"]["statuses"].values()]
    return frozenset(op for op in header["binary"]["ops"] if op in history_format.OPS
                     and any(roles(op, s, p) for s in statuses for p in (False, True)))


def _scan_binary(path, header):
    """(the Events of a binary history's calls that may create or remove a key, the first
    calls that returned INSUFFICIENT_MEMORY), from a scan of a few record fields."""
    binary = header["binary"]
    relevant = _relevant_ops(header)
    ops = [op if op in relevant else None for op in binary["ops"]]
    statuses = {int(code): name for code, name in binary["statuses"].items()}
    oom_code = next((code for code, name in statuses.items() if name == OOM), None)
    events, ooms = [], []
    for record in _records(path, binary):
        call, ret, thread, seq, code, status, key, out_key, lifetime, key_id = record
        if status == oom_code and len(ooms) < MAX_CONFIG_PROBLEMS and ret:
            ooms.append(f"t{thread}#{seq} {binary['ops'][code]}")
        op = ops[code] if code < len(ops) else None
        if op is None:
            continue
        status = statuses.get(status, f"STATUS({status})") if ret else None
        create = op in history_format.CREATE_OPS
        persistent = model_module.is_persistent(lifetime) if create else \
            not VOLATILE_MIN <= key <= VOLATILE_MAX
        created = out_key if status == "SUCCESS" else (key_id if persistent else None)
        events.append((op, status, persistent, key, created, call, ret or None, thread, seq))
    return events, ooms


def _records(path, binary):
    """(call, ret, *SCANNED) of every record of the binary history ``path``; a pending record
    has ret 0."""
    for stream in history_binary.columns(path, binary, SCANNED):
        yield from stream


def _events_of_call(call):
    """The Events of one Call (the full reader's path)."""
    args, persistent = call.args, _persistent_call(call)
    if not roles(call.op, call.status, persistent):
        return ()
    created = call.out.get("key") if call.status == "SUCCESS" else \
        (args.get("id") if persistent else None)
    return ((call.op, call.status, persistent, args.get("key"), created, call.call, call.ret,
             call.thread, call.seq),)


def _persistent_call(call):
    if call.op in history_format.CREATE_OPS:
        return model_module.is_persistent(call.args.get("lifetime", 0))
    return not VOLATILE_MIN <= call.args.get("key", 0) <= VOLATILE_MAX


# ---- settling, one pass ----

class _Key:
    """Per key, what settling needs of the calls that may create or remove it: the completed
    create and certain removal invoked last, the latest returns, whether one is pending."""
    __slots__ = ("last_create", "last_removal", "create_open", "remove_open",
                 "last_create_ret", "last_remove_ret")

    def __init__(self):
        self.last_create = self.last_removal = None
        self.create_open = self.remove_open = False
        self.last_create_ret = self.last_remove_ret = 0


def _settle(events):
    """key -> ("present" | "absent", the call that settles it); unsettled keys map to
    (None, "")."""
    keys, wildcard, known = {}, False, {}
    for event in events:
        signature = event[:3]
        found = known.get(signature)
        if found is None:
            found = known[signature] = roles(*signature)
        for role, target in found:
            key = event[CREATED] if target == "created" else event[KEY]
            if key is None:                 # a pending volatile create: any volatile id
                wildcard = True
                continue
            if key == 0:                    # PSA_KEY_ID_NULL names no key (destroy: a no-op)
                continue
            state = keys.get(key)
            if state is None:
                state = keys[key] = _Key()
            _record(state, role, event)
    return {key: _verdict(state, wildcard and VOLATILE_MIN <= key <= VOLATILE_MAX)
            for key, state in keys.items()}


def _record(state, role, event):
    ret = event[RET]
    if role == CREATE:
        if ret is None:
            state.create_open = True
            return
        state.last_create_ret = max(state.last_create_ret, ret)
        if state.last_create is None or event[CALL] > state.last_create[CALL]:
            state.last_create = event
    elif ret is None:
        state.remove_open = True
    else:
        state.last_remove_ret = max(state.last_remove_ret, ret)
        if role == REMOVE_CERTAIN and (state.last_removal is None
                                       or event[CALL] > state.last_removal[CALL]):
            state.last_removal = event


def _verdict(state, maybe_created):
    """Present: a completed create invoked after every removal returned (none pending); the
    last-invoked create is the one to try. Absent: likewise for a certain removal."""
    create, removal = state.last_create, state.last_removal
    if not state.remove_open and create is not None and create[CALL] > state.last_remove_ret:
        return "present", f"{_describe(create)} created it"
    if not state.create_open and not maybe_created and removal is not None \
            and removal[CALL] > state.last_create_ret:
        return "absent", _describe(removal)
    return None, ""


def _describe(event):
    op = event[OP]
    key = event[CREATED] if op in history_format.CREATE_OPS else event[KEY]
    return f"t{event[THREAD]}#{event[SEQ]} {op}({key:#x}) -> {event[STATUS]}"
