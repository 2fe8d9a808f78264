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
import json

from scenarios import history as history_module
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
    """The ``live`` list of the history file's end line (its last line), or None."""
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
    settled = {}
    for key, ops in model.partition(calls):
        settled[key] = _settle(model, key, ops)
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


def _settle(model, key, ops):
    """("present" | "absent" | None, the call that settles it)."""
    probe = frozenset(((1 if key < 0x40000000 else 0, key) + (None,) * 5,))
    creates = [op for op in ops if op.ret is not None and _creates(model, op)]
    removals = [op for op in ops if ABSENT in model.step(probe, op)]
    for create in creates:
        if all(r.ret is not None and r.ret < create.call for r in removals):
            return "present", f"{model.describe_op(create)} created it"
    for removal in removals:
        certain = model.step(probe, removal) == (ABSENT,)
        if removal.ret is not None and certain \
                and all(c.ret < removal.call for c in creates):
            return "absent", model.describe_op(removal)
    return None, ""


def _creates(model, op):
    after = model.step(ABSENT, op)
    return bool(after) and ABSENT not in after
