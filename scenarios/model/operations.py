"""The whole key-store model: every operation's rows, from key_store.py (key creation,
destroy, export, attributes, copy) and key_use.py (key use, the key cache, export_public,
derive_from, the random generator), dispatched by operation.

Public API::

    static_problem(call) -> str | None   # a status the call may never return, or a bad output
    key_ops(call) -> [KeyOp]             # the per-key steps of one statically valid call
    Sources(creates, killers, links)     # candidate source instances of copies (key_store.py)
    KeyStoreModel()                      # one key id's model, for the streaming check and
        .init() / .step(state, op) / .is_read_only(op)    # the linearizability search
        .describe_op(op) / .describe_state(state) / .explain(state, op)
"""
import bisect

from scenarios.history.reader import CREATE_OPS
from scenarios.model import key_store as ks
from scenarios.model import key_use


def static_problem(call):
    """Why ``call`` is wrong whatever the concurrency (None if nothing is)."""
    status, args = call.status, call.args
    problem = key_use.static_problem(call) if call.op in key_use.KEY_OPS else None
    if problem or status is None or (status == "SUCCESS" and call.op not in CREATE_OPS):
        return problem
    legitimate = ks.LEGITIMATE.get(call.op) or key_use.LEGITIMATE[call.op]
    if status in ks.NEVER and status not in legitimate:
        return f"{call.op} returned {status}, which must never surface from a public call"
    persistent = call.op in CREATE_OPS and ks.is_persistent(args["lifetime"])
    if status not in legitimate and not (persistent and status == "ALREADY_EXISTS"):
        return f"{call.op} returned {status}, not a legitimate result of this call"
    if call.op in CREATE_OPS and status == "SUCCESS":
        return _created_id_problem(call, persistent)
    return None


def _created_id_problem(call, persistent):
    key, requested = call.out["key"], call.args["id"]
    if persistent:
        if not ks.USER_MIN <= requested <= ks.USER_MAX:
            return f"persistent {call.op} of id {requested:#x} outside the user range succeeded"
        if key != requested:
            return f"persistent {call.op} of id {requested:#x} returned key {key:#x}"
    elif requested != 0:
        return f"volatile {call.op} with non-zero id {requested:#x} succeeded"
    elif not ks.VOLATILE_MIN <= key <= ks.VOLATILE_MAX:
        return f"volatile {call.op} returned key {key:#x} outside the volatile range"
    return None


def key_ops(call):
    """The KeyOps of one statically valid call (none for calls that constrain nothing)."""
    if call.op in key_use.KEY_OPS:
        return key_use.key_ops(call)
    return ks.key_ops(call)


class Sources:
    """Static candidate source instances of each copy (key_store.py's docstring says which)."""

    def __init__(self, creates, killers, links=None):
        self.links, self.creates = links, {}     # links: materials.MaterialLinks, or None
        for key, ops in creates.items():
            ops.sort(key=lambda op: op.call)
            rets, top = [], -1
            for op in ops:
                top = max(top, ks.INF if op.ret is None else op.ret)
                rets.append(top)
            self.creates[key] = (ops, [op.call for op in ops], rets)
        self.killers = {}
        for key, spans in killers.items():
            spans.sort(key=lambda span: span[1])
            calls, top = [], -1
            for call, _ in spans:
                top = max(top, call)
                calls.append(top)
            self.killers[key] = ([ret for _, ret in spans], calls)
        self.busy = set()

    def descs(self, op):
        """The descriptions ``op`` (a create) may give its key; copies are resolved here."""
        if op.descs is None:
            if op in self.busy:    # copy cycle: give up precision, stay sound
                lifetime = op.source.args["lifetime"]
                return frozenset(((lifetime, op.key) + (None,) * 5,))
            self.busy.add(op)
            self._copy_descs(op)
            self.busy.discard(op)
        return op.descs

    def _copy_descs(self, op):
        """Every candidate's description, never widened to "any key" (sets scale)."""
        call, key, options, candidates = op.source, op.key, set(), self._candidates(op.source)
        for candidate in candidates:
            for source in self.descs(candidate):
                if call.op == "derive_from":
                    options.update(key_use.derived_descs(source, call, key))
                elif ks.may_have(source, ks.USAGE_COPY) \
                        and ks.algs_meet(source[ks.ALG], call.args["alg"]):
                    options.add(ks.copied_desc(source, call, key))
        op.descs = frozenset(options)
        if self.links is not None:
            self.links.alias(op, candidates)

    def _candidates(self, copy):
        src = copy.args["src"]
        end = ks.INF if copy.ret is None else copy.ret
        found = []
        ops, calls, top_rets = self.creates.get(src, ((), (), ()))
        threshold = self._dead_before(src, copy.call)
        index = bisect.bisect_left(calls, end) - 1
        while index >= 0 and top_rets[index] >= threshold:
            op = ops[index]
            if (op.ret is None or op.ret >= threshold) and op.source is not copy:
                found.append(op)
            index -= 1
        return found

    def _dead_before(self, key, stamp):
        """Creates of ``key`` returning before this are dead when ``stamp`` is reached."""
        rets, top_calls = self.killers.get(key, ((), ()))
        index = bisect.bisect_left(rets, stamp)
        return top_calls[index - 1] if index else -1


class KeyStoreModel:
    """One key id's PSA key-store model, in the per-partition protocol of linearizability.py
    (the streaming check splits the history by key id itself: checker/streaming.py)."""

    def init(self):
        return ks.ABSENT

    def step(self, state, op):
        return op.rule(state, op)

    def is_read_only(self, op):
        return op.readonly

    def describe_op(self, op):
        return ks.describe_op(op)

    def describe_state(self, state):
        return ks.describe_state(state)

    def explain(self, state, op):
        why = ks.WHY.get(op.rule) or key_use.WHY[op.rule]
        return ks.describe_op(op) + " is impossible: " + why(state, op)
