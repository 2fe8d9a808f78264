"""Streaming, per-key linearizability check of a PSA history: one pass, bounded memory.

Public API::

    StreamCheck(model, budget)     # model: scenarios.model.key_store.KeyStoreModel
        .feed(call)                # every statically valid call, in call-stamp order
        .finish() -> [KeyVerdict]  # closes what is open; the verdicts of the keys not "ok"
        .decided() -> [KeyVerdict] # stopped early: closes only the segments passed
        .keys_seen                 # number of distinct partitions (key ids)
    KeyVerdict: key, verdict (violation | unknown), failure (linearizability.Failure), reason

It computes exactly what ``linearizability.check_partition`` computes over each key's whole
sub-history (tests/test_model.py ``batch_partition`` makes them, for the tests; see
docs/checker.md), without holding the history:

- Each call is split by ``operations.key_ops`` into per-key ops (a copy: a read of the source and a
  create of the destination). Each key keeps its *open segment*: the ops since its last quiescent
  point. Calls arrive sorted by call stamp, so once the stream passes a segment's horizon (the
  largest ret in it) no later op can overlap it: the segment is closed when the key's next op
  arrives after the horizon, or by a sweep every few thousand calls, searched, and released.
- A key carries the exact **set** of model states its closed segments can end in (forward
  reachability): the per-key history is linearizable iff that set never becomes empty. A small
  segment (one op, most of them, or up to three completed ops) maps the set directly.
- A bigger segment (a hot key) starts a lazy **chain** (``linearizability.Chain``): the search
  looks for one linearization through the segments since the last exact set, producing end
  states only as far as needed and backtracking into earlier segments of the chain when a later
  one fails. The chain is cut back to an exact set at the first completed one-op create or
  destroy that it passes (every linearization ends in that op's one state), or, after
  ``_WINDOW_OPS`` ops, by computing the exact sets exhaustively.
- Copy destinations are resolved as soon as the stream passes the copy's ret (every candidate
  source instance has then been read); per source id only the creates that
  a future copy could still read are kept (``_StreamSources.prune``).
- A pending create with no id (crashed run) is an optional create of every volatile key.
- A key whose state is back to the initial one with nothing open is forgotten. The last mutating
  ops of a key (an explanation's context) are kept for the most recently active keys only.
"""
from heapq import heappop, heappush

from scenarios.model import key_store as psa
from scenarios.model import operations
from scenarios.model import key_use as model_use
from scenarios.model.materials import UNBOUND_USE, WILDCARD, MaterialLinks
from scenarios.checker.linearizability import INF as _INF
from scenarios.checker.linearizability import (SMALL, CONTEXT_OPS, UNKNOWN, VIOLATION, Chain,
                                               OutOfBudget, explain_segment, segment_ends)

_CONTEXTS = 4096    # keys whose last mutating ops are kept (explanations' context)
_SWEEP = 4096       # calls between two sweeps (at least; more when many keys are live)
_WINDOW_OPS = 50_000   # ops of a lazy chain before it is cut back exhaustively
_UNSETTLED = object()
# what teaches the material of the instance it read (materials.py)
_REVEALING = frozenset((psa.rule_export, model_use.rule_export_public, model_use.rule_signed))
# accept any output of an unknown material
_UNBOUND_USES = frozenset((model_use.rule_use, model_use.rule_use_rejected))
_CREATE, _DESTROY, _ABSENT, _MATERIAL = psa.rule_create, psa.rule_destroy, psa.ABSENT, psa.MATERIAL
_KEY_OPS = operations.key_ops


class KeyVerdict:
    __slots__ = ("key", "verdict", "failure", "reason")

    def __init__(self, key, verdict, failure=None, reason=None):
        self.key = key
        self.verdict = verdict
        self.failure = failure
        self.reason = reason


class _Key:
    """One key id's search state between segments: ``states`` is the exact set of states the
    key can be in after its closed segments, or, while ``chain`` is not None, before the
    segments of that lazy chain (``window`` ops, some of which may create an ambiguous key)."""
    __slots__ = ("states", "segment", "horizon", "steps", "chain", "window", "window_ambiguous",
                 "uses")

    def __init__(self, init):
        self.states = init
        self.segment = []
        self.horizon = -1
        self.steps = 0
        self.chain = None
        self.window = 0
        self.window_ambiguous = False
        self.uses = False         # the open segment has a key use (_UNBOUND_USES)

    def ambiguous(self):
        """Could a segment start in a state whose material is unknown or multiple?"""
        if self.window_ambiguous:
            return True
        for state in self.states:
            if state is not _ABSENT:
                if len(state) != 1:
                    if psa.is_ambiguous(state):
                        return True
                else:
                    for desc in state:
                        if desc[_MATERIAL] is None:
                            return True
        return False


class _StreamSources(operations.Sources):
    """Candidate source instances of copies (operations.Sources) over a sliding window."""

    def __init__(self, links):
        super().__init__({}, {}, links)
        self.lists = {}       # id -> [creates in call order], [killer (call, ret)]
        self.position = -1    # the stream's call stamp: later creates are still unread
        self.dirty = set()    # ids whose list gained a killer since the last prune_all

    def descs(self, op):
        """As operations.Sources.descs, but a copy that has not returned yet may still gain
        candidates: until then it stands for any key (sound, and not remembered)."""
        if op.descs is None and (op.ret is None or op.ret > self.position) \
                and self.position is not _INF:
            return frozenset(((op.source.args["lifetime"], op.key) + (None,) * 5,))
        return super().descs(op)

    def add_create(self, op):
        """Register a create; the number of creates now listed for its key."""
        listed = self.lists.get(op.key)
        if listed is None:
            listed = self.lists[op.key] = ([], [])
        listed[0].append(op)
        return len(listed[0])

    def add_killer(self, key, call, ret):
        listed = self.lists.get(key)
        if listed is None:
            listed = self.lists[key] = ([], [])
        listed[1].append((call, ret))
        self.dirty.add(key)

    def _candidates(self, copy):
        return self.candidates(copy.args["src"], copy)

    def candidates(self, key, reader):
        """Creates I of ``key`` with I.call < reader.ret that no killer X (X.call > I.ret,
        X.ret < reader.call) certainly removed before the reader (a copy's or an export's
        Call) started: I returned no earlier than the last such killer was invoked."""
        creates, killers = self.lists.get(key, ((), ()))
        end = _INF if reader.ret is None else reader.ret
        last, invoked = -1, reader.call
        for call, kret in killers:
            if kret < invoked and call > last:
                last = call
        return [op for op in creates if op.call < end and op.source is not reader
                and (op.ret is None or op.ret >= last)]

    def prune(self, key, watermark):
        """Forget what no copy invoked at or after ``watermark`` can need."""
        creates, killers = self.lists[key]
        dead = [(call, ret) for call, ret in killers if ret < watermark]
        if dead:
            first_kill = max(call for call, _ in dead)
            creates[:] = [op for op in creates if op.ret is None or op.ret >= first_kill]
            killers[:] = [k for k in killers if k[1] >= watermark]
        if not creates and not killers:
            del self.lists[key]

    def prune_all(self, watermark):
        """Prune the lists that gained a killer since the last time (only a killer lets a
        list shrink)."""
        for key in self.dirty:
            if key in self.lists:
                self.prune(key, watermark)
        self.dirty = {key for key in self.dirty if key in self.lists and self.lists[key][1]}


class StreamCheck:
    """Feed calls in call order; see the module docstring."""

    def __init__(self, model, budget):
        self.model = model
        self.budget = budget
        self.init = (model.init(),)
        self.keys = {}
        self.open = {}            # key -> entry, of the keys with an open segment
        self.copies = []          # (ret, op) of copy destinations and exports not resolved yet
        self.links = MaterialLinks()
        self.sources = _StreamSources(self.links)
        self.wildcards = []
        self.in_flight = {}       # thread -> its last Call
        self.done = {}            # key -> KeyVerdict (violated or unknown: no more checking)
        self.seen = set()
        self.contexts = {}        # key -> its last mutating ops, for the recently active keys
        self.fed = 0
        self.next_sweep = _SWEEP
        self.position = -1

    @property
    def keys_seen(self):
        return len(self.seen)

    def feed(self, call):
        """One statically valid call, the next by call stamp."""
        self.position = self.sources.position = stamp = call.call
        copies = self.copies
        while copies and copies[0][0] < stamp:   # every candidate source has been read
            self._resolve(heappop(copies)[1])
        self.in_flight[call.thread] = call
        self.fed += 1
        if self.fed >= self.next_sweep:
            self._sweep()
        for op in _KEY_OPS(call):
            key = op.key
            if key is None:
                self._add_wildcard(op)
            else:
                self._add(key, op)

    def finish(self):
        self.position = self.sources.position = _INF
        for _, op in sorted(self.copies, key=lambda item: item[0]):
            self._resolve(op)
        self.copies = []
        for key, entry in list(self.open.items()):
            self._close(key, entry)
        return list(self.done.values())

    def decided(self):
        """The verdicts so far, for a check stopped early: the segments the stream has passed
        are closed first (every call that overlaps them was fed); the open ones stay
        undecided."""
        self._sweep()
        return list(self.done.values())

    def _resolve(self, op):
        """A copy's or derive_from's create, or a revealing op (``_REVEALING``), once the
        stream has passed its ret: every candidate instance has been read."""
        if op.rule is _CREATE:
            self.sources.descs(op)
        else:
            self._reveal(op)

    def _reveal(self, op):
        """What an export, export_public, sign or verify teaches about the material of the
        instance it read (model/materials.py)."""
        listed = self.sources.lists.get(op.key)
        if listed is not None and self.links.may_learn(listed[0]):
            candidates = self.sources.candidates(op.key, op.source)
            if op.rule is psa.rule_export:
                self.links.reveal(op, candidates)
            else:                 # export_public, sign, verify: SUCCESS
                self.links.reveal_public(op, candidates)

    def _sweep(self):
        """Close every segment the stream has passed (the others close when their key's next
        op arrives after their horizon) and prune the copy sources. Runs every
        ``_SWEEP`` calls or more: amortised O(1) per call."""
        position = self.position
        for key, entry in list(self.open.items()):
            if entry.horizon < position:
                self._close(key, entry)
        self.next_sweep = self.fed + max(_SWEEP, len(self.open))
        self.sources.prune_all(self._watermark())

    def _remember(self, key, ops):
        """Note the key's last mutating ops (an explanation's context), for the most recently
        active keys only; ``ops``: a new list, kept."""
        contexts = self.contexts
        known = contexts.pop(key, None)
        if known is None:
            known = ops if len(ops) <= CONTEXT_OPS else ops[-CONTEXT_OPS:]
        else:
            known += ops
            del known[:-CONTEXT_OPS]
        contexts[key] = known
        if len(contexts) > _CONTEXTS:
            del contexts[next(iter(contexts))]

    # ---- ops into segments ----

    def _add(self, key, op):
        """Every create and destroy counts as a copy source or killer, and every copy and
        export is resolved, even on a key already violated or unknown: one key's verdict never
        changes another's."""
        rule = op.rule
        if op.ret is not None:
            if rule is _CREATE:
                self.sources.add_killer(key, op.call, op.ret)
                if op.descs is None:
                    heappush(self.copies, (op.ret, op))
            elif rule is _DESTROY:
                self.sources.add_killer(key, op.call, op.ret)
            elif rule in _REVEALING:
                heappush(self.copies, (op.ret, op))
        entry = self.keys.get(key)
        if entry is None:
            if key in self.done:
                if rule is _CREATE:
                    self._register(key, op)
                return
            entry = self._new_key(key)
        elif entry.segment and op.call > entry.horizon:   # a quiescent point: close
            self._close(key, entry)
            if self.keys.get(key) is not entry:    # violated, unknown or forgotten
                if key in self.done:
                    if rule is _CREATE:
                        self._register(key, op)
                    return
                entry = self._new_key(key)
        self._append(key, entry, op)
        if rule is _CREATE:
            self._register(key, op)

    def _new_key(self, key):
        self.seen.add(key)
        entry = self.keys[key] = _Key(self.init)
        if self.wildcards and psa.VOLATILE_MIN <= key <= psa.VOLATILE_MAX:
            self.links.weaken(key, WILDCARD)
            for wildcard in self.wildcards:
                self._add_create(key, entry, self._wild_op(wildcard, key))
        return entry

    def _add_create(self, key, entry, op):
        self._append(key, entry, op)
        self._register(key, op)

    def _register(self, key, op):
        """A create as a candidate source instance of later copies and exports."""
        count = self.sources.add_create(op)
        if count > 8 and count & (count - 1) == 0:     # at 16, 32, 64...: amortised O(1)
            self.sources.prune(key, self._watermark())

    def _append(self, key, entry, op):
        ret = _INF if op.ret is None else op.ret
        if not entry.segment:
            self.open[key] = entry
        entry.segment.append((op.call, ret, op))
        if op.rule in _UNBOUND_USES:
            entry.uses = True
        if ret > entry.horizon:
            entry.horizon = ret

    def _add_wildcard(self, op):
        self.wildcards.append(op)
        for key in [k for k in self.keys if psa.VOLATILE_MIN <= k <= psa.VOLATILE_MAX]:
            self.links.weaken(key, WILDCARD)
            self._add_create(key, self.keys[key], self._wild_op(op, key))
        for key in [k for k in self.done if psa.VOLATILE_MIN <= k <= psa.VOLATILE_MAX]:
            self._register(key, self._wild_op(op, key))

    @staticmethod
    def _wild_op(wildcard, key):
        op = psa.KeyOp(wildcard.source, key, psa.rule_create, wildcard.role)
        if wildcard.source.op != "copy":
            op.descs = frozenset((psa.plain_desc(wildcard.source, key),))
        return op

    def _watermark(self):
        """No call still to be resolved was invoked before this stamp."""
        position = self.position
        open_calls = [call.call for call in self.in_flight.values()
                      if call.ret is None or call.ret > position]
        return min(open_calls, default=position)

    # ---- closing a segment ----

    def _close(self, key, entry):
        segment, entry.segment, entry.horizon = entry.segment, [], -1
        del self.open[key]
        if entry.uses:
            entry.uses = False
            if self._unbound(entry, segment):
                self.links.weaken(key, UNBOUND_USE)
        single = len(segment) == 1
        try:
            if entry.chain is not None or not (single or _is_small(segment)):
                if not self._extend(key, entry, segment):
                    return
            elif not self._close_small(key, entry, segment):
                return
        except OutOfBudget:
            self._give_up(key, KeyVerdict(key, UNKNOWN, reason=f"search budget of "
                                          f"{self.budget} model steps exhausted"))
            return
        if single:
            if not segment[0][2].readonly:
                self._remember(key, [segment[0][2]])
        else:
            mutating = [op for _, _, op in segment if not op.readonly]
            if mutating:
                self._remember(key, mutating)
        if entry.states == self.init and entry.chain is None and not self.wildcards:
            del self.keys[key]      # back in its initial state with nothing open

    def _close_small(self, key, entry, segment):
        """Exact end states of a small segment from the key's exact state set (the common
        case: one op, one state, a direct model step); False if there is none."""
        states = entry.states
        if len(segment) == 1 and len(states) == 1 and segment[0][1] is not _INF:
            op = segment[0][2]
            rule = op.rule
            if rule is _CREATE:
                if op.descs is None:
                    self.sources.descs(op)
            elif not op.readonly and psa.binds(rule):    # a binder is mutating: read-only
                op.readonly = not entry.ambiguous()         # ops skip the test
            entry.steps += 1
            ends = rule(states[0], op)
            if len(ends) > 1:
                ends = tuple(dict.fromkeys(ends))
        else:
            for _, _, op in segment:
                if op.rule is psa.rule_create:
                    self.sources.descs(op)
            self._mark_read_only(segment, entry)
            ends = self._step(entry, segment)
        if not ends:
            self._violated(key, entry, segment, states)
            return False
        if entry.steps > self.budget:
            raise OutOfBudget()
        entry.states = ends
        return True

    def _unbound(self, entry, segment):
        """Could a key use of the segment meet a material still unknown?"""
        descs = [d for state in entry.states if state is not psa.ABSENT for d in state]
        for _, _, op in segment:
            if op.rule is psa.rule_create:
                descs.extend(self.sources.descs(op))
        return entry.chain is not None or any(d[psa.MATERIAL] is None for d in descs)

    def _extend(self, key, entry, segment):
        """Add a segment to the key's lazy chain (linearizability.Chain): end states are only
        searched as far as needed, and the chain is cut back to an exact state set as soon as
        one is known."""
        for _, _, op in segment:
            if op.rule is psa.rule_create:
                self.sources.descs(op)
        chain = entry.chain
        if chain is None:
            chain = entry.chain = Chain(self.model, self.budget - entry.steps, entry.states)
            entry.window, entry.window_ambiguous = 0, False
        self._mark_read_only(segment, entry)
        entry.window_ambiguous = entry.window_ambiguous or any(
            op.rule is psa.rule_create and psa.is_ambiguous(op.descs) for _, _, op in segment)
        entry.window += len(segment)
        if not chain.extend(segment):
            index, starts = chain.deepest
            failing = chain.segments[index]
            self._violated(key, entry, failing, starts)
            return False
        end = _settled_end(segment)
        if end is not _UNSETTLED:     # every linearization ends in this one state
            entry.states = (end,)
        elif entry.window > _WINDOW_OPS:
            states = entry.states
            for closed in chain.segments:
                entry.states = states = self._step(entry, closed, states)
        else:
            return True
        entry.steps += chain.steps
        entry.chain = None
        return True

    def _step(self, entry, segment, states=None):
        """The states the segment can end in, from every state it can start in (default: the
        key's exact state set)."""
        states = entry.states if states is None else states
        ends = {}
        if len(segment) == 1:
            _, ret, op = segment[0]
            rule = op.rule
            entry.steps += len(states)
            for state in states:
                if ret is _INF:
                    ends[state] = True
                for after in rule(state, op):
                    ends[after] = True
        else:
            for state in states:
                found, steps = segment_ends(self.model, segment, state,
                                            self.budget - entry.steps)
                entry.steps += steps
                ends.update(dict.fromkeys(found))
        if entry.steps > self.budget:
            raise OutOfBudget()
        return tuple(ends)

    @staticmethod
    def _mark_read_only(segment, entry):
        """Exports may be committed greedily only if nothing can bind them (model docstring):
        no start state has unknown material and the segment's own creates are settled."""
        exports = [op for _, _, op in segment if psa.binds(op.rule)]
        if not exports:
            return
        if entry.ambiguous():
            for op in exports:
                op.readonly = False
        else:
            psa.mark_read_only_exports([op for _, _, op in segment])

    def _violated(self, key, entry, segment, starts):
        failure = explain_segment(self.model, segment, list(starts))
        failure.context = list(self.contexts.get(key, ()))
        self._give_up(key, KeyVerdict(key, VIOLATION, failure))

    def _give_up(self, key, verdict):
        self.done[key] = verdict
        self.keys.pop(key, None)


def _is_small(segment):
    """Solved by a direct model step or by trying every order (linearizability._small)."""
    return len(segment) == 1 or (len(segment) <= SMALL
                                 and all(ret is not _INF for _, ret, _ in segment))


def _settled_end(segment):
    """The one state a one-op segment ends in from any state it is legal in (a completed
    create or destroy), else ``_UNSETTLED``."""
    if len(segment) != 1 or segment[0][1] is _INF:
        return _UNSETTLED
    op = segment[0][2]
    if op.rule is psa.rule_create:
        return op.descs
    return psa.ABSENT if op.rule is psa.rule_destroy else _UNSETTLED


def verdict_counts(check, verdicts):
    """(ok, violated, unknown) partition counts; a key whose material conflicts with another
    key's (materials.py) is violated."""
    violated = {v.key for v in verdicts if v.verdict == VIOLATION}
    violated.update(conflict.key for conflict in check.links.conflicts)
    unknown = sum(1 for v in verdicts if v.verdict == UNKNOWN and v.key not in violated)
    return check.keys_seen - len(violated) - unknown, len(violated), unknown

