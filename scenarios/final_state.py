"""The key store's final state against the history: the live set the driver found inside the
core after the run must agree with every key the history settles.

The driver lists, in the history's end line, ``"live": [ids]``: the ids of the FULL key slots and
of the key files in storage once every worker has joined (harness/inspect.c), without the
harness's own key. The model settles some ids at the end of a complete history:

- certainly present: a successful create C such that every call that may remove the key
  returned before C was invoked (nothing can remove it after C's linearization point);
- certainly absent: a successful removal R (say, a destroy) such that every create returned
  before R was invoked (nothing can re-create it after R's linearization point).

Other ids depend on the linearization and are not judged.

The configuration the header records is honoured too: INSUFFICIENT_MEMORY is a legitimate result
only in the static key store (``key_store.kind == "static"``: every slot can be taken) or when
the header records allocation faults (``alloc=R`` in ``faults.spec``); the dynamic store grows
instead. The calls are admitted by the same fault rules as the checker's
(scenarios/model_faults.py): a SERVICE_FAILURE under mutex faults is pending, an ALREADY_EXISTS
under storage faults settles nothing, and a destroy that failed with a storage error may have
left its key (the storage object survives a failed removal), so it settles nothing either.
Whether an operation creates or removes is asked of the model itself (``step`` from an absent
and from a present state), so a new operation needs no change here.

Public API::

    check_file(path) -> [str]              # disagreements, one line each
    config_problems(history) -> [str]
    live_ids(path) -> list | None          # the end line's "live", None when absent
    problems(history, live) -> [str]
"""
import functools
import json
import os

from scenarios import history as history_module
from scenarios import model as model_module
from scenarios import model_use
from scenarios.model import ABSENT, KeyStoreModel
from scenarios.model_faults import FaultRules, kinds

TAIL_BYTES = 1 << 22     # the end line is the last line; a live list of 100k ids fits


def check_file(path):
    """The key-store configuration's problems, and the end line's live set compared with the
    history at ``path``."""
    history = history_module.load(path)
    live = live_ids(path)
    found = config_problems(history)
    return found + (problems(history, live) if live is not None else [])


def config_problems(history):
    """Calls whose status the recorded key-store configuration rules out."""
    header = history.header
    if header["key_store"].get("kind") == "static" or "alloc" in kinds(header):
        return []
    return [f"line {call.line}: {call.op} returned INSUFFICIENT_MEMORY, but the dynamic key "
            "store allocates slots on demand and no allocation fault was injected"
            for call in history.calls if call.status == "INSUFFICIENT_MEMORY"][:10]


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
    model = KeyStoreModel()
    rules = FaultRules(history.header)
    calls = [call for call in history.calls if rules.admit(call) == (None, True)]
    settled = {key: _settle(model, key, ops) for key, ops in _changes(calls).items()}
    found = []
    live = set(live)
    for key in sorted(live):
        verdict = settled.get(key)
        if key not in settled:
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


def _changes_existence(rule):
    """Can this model rule create or remove a key? (The mutating rules that are not mere
    material binders.)"""
    return rule in model_module._MUTATING and rule not in model_module._BINDERS


@functools.lru_cache(maxsize=None)
def _pure_reads():
    """Operations none of whose rules, for any status or key, can create or remove a key: their
    calls are skipped without building their model ops (most of a history)."""
    rules = {**{op: list(table.values()) for op, table in model_module._SIMPLE_RULES.items()},
             **{op: [rule for pair in table.values() for rule in pair]
                for op, table in model_use._CACHE_RULES.items()},
             **{op: [*model_use._USE_RULES.values(), model_use._signed]
                for op in model_use.USES}}
    return frozenset(op for op, candidates in rules.items()
                     if not any(_changes_existence(rule) for rule in candidates))


def _changes(calls):
    """key -> the ops that may change whether it exists, in call order. A volatile create whose
    id is unknown (pending) may have made any volatile key."""
    parts, wildcards, skip = {}, [], _pure_reads()
    for call in calls:
        if call.op in skip:
            continue
        for op in model_module._key_ops(call):
            if not _changes_existence(op.rule):
                continue
            if op.key is None:
                wildcards.append(op)
            else:
                parts.setdefault(op.key, []).append(op)
    for key, ops in parts.items():
        if model_module.VOLATILE_MIN <= key <= model_module.VOLATILE_MAX:
            ops.extend(wildcards)
    return parts


def _settle(model, key, ops):
    """("present" | "absent" | None, the call that settles it)."""
    probe = frozenset(((1 if key < 0x40000000 else 0, key) + (None,) * 5,))
    creates = [op for op in ops if _creates(model, op)]   # a pending one may have created it
    removals = [op for op in ops if ABSENT in model.step(probe, op)]
    for create in creates:
        if create.ret is not None and \
                all(r.ret is not None and r.ret < create.call for r in removals):
            return "present", f"{model.describe_op(create)} created it"
    for removal in removals:
        certain = model.step(probe, removal) == (ABSENT,)
        if removal.ret is not None and certain \
                and all(c.ret is not None and c.ret < removal.call for c in creates):
            return "absent", model.describe_op(removal)
    return None, ""


def _creates(model, op):
    if op.rule is model_module._create:   # its descriptions are the checker's business
        return True
    after = model.step(ABSENT, op)
    return bool(after) and ABSENT not in after
