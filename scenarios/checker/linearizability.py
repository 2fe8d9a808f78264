"""Domain-free linearizability checker: Wing–Gong/Lowe search with P-compositional partitions.

Public API::

    check(model, items, budget=DEFAULT_BUDGET) -> [PartitionResult]
    PartitionResult: key, verdict (OK | VIOLATION | UNKNOWN), ops (count), steps, failure
    Failure: culprit, window, context, prefix, state, starts, message

``items`` are handed to ``model.partition(items)``, which returns ``[(key, [op])]``. An op has
``call`` and ``ret`` stamps (``ret`` None: pending, it may take effect at any point after its
call, or never). The model provides::

    init() -> state                        # hashable states
    step(state, op) -> tuple of states     # every possible next state; empty: illegal here
    is_read_only(op) -> bool               # op (with its result) never changes any state
    describe_op(op), describe_state(state), explain(state, op) -> str

``is_read_only`` must hold for the op and its result in *every* state where the op is legal,
never just in the current one: read-only ops that are legal are linearized greedily, without
ever trying to delay them (Lowe's memo cannot merge commuting observers; the greedy rule can).

Search, per partition: ops are cut into segments at quiescent points (no op in flight). Each
segment is searched with WGL (depth-first over a linked list of call/return events, memo of
(linearized bitset, state)) from a start state; its end states are produced lazily and the
segments are chained depth-first, so backtracking across a cut stays exact; failed
(segment, start state) pairs are remembered; segments of at most three completed ops are solved
by trying their real-time-respecting orders directly. Pending read-only ops are dropped; pending
mutating ops have no return event and are never forced. Every call to ``step`` counts against
``budget``; a partition that exhausts it is UNKNOWN, never OK.

On a violation the failing segment is shrunk, using only removals that keep a non-linearizable
history non-linearizable: truncation after the return of the op that could not be linearized
(ops still in flight become optional) and removal of read-only ops. ``Failure.window`` holds the
remaining ops, ``prefix`` the longest linearization found inside it, ``state`` the model state
after that prefix and ``message`` the model's reason why ``culprit`` cannot come next;
``starts`` are the possible states at the window's quiescent start and ``context`` the last
mutating ops before it (the likely authors of those states).
"""
import itertools

OK, VIOLATION, UNKNOWN = "ok", "violation", "unknown"
DEFAULT_BUDGET = 5_000_000
EXPLAIN_BUDGET = 200_000
MAX_SHRINK = 400
CONTEXT_OPS = 3
_KEEP_LIVE = 16
SMALL = 3
INF = _INF = float("inf")   # the ret of a pending op (compared with `is`)
_DONE = object()


class Failure:
    """Why a partition is not linearizable (see the module docstring)."""
    __slots__ = ("culprit", "window", "context", "prefix", "state", "starts", "message")

    def __init__(self, culprit, window, prefix, state, starts, message):
        self.culprit = culprit
        self.context = []
        self.window = window
        self.prefix = prefix
        self.state = state
        self.starts = starts
        self.message = message


class PartitionResult:
    __slots__ = ("key", "verdict", "ops", "steps", "failure")

    def __init__(self, key, verdict, ops, steps, failure=None):
        self.key = key
        self.verdict = verdict
        self.ops = ops
        self.steps = steps
        self.failure = failure


class OutOfBudget(Exception):
    """The search used up its budget of model steps."""


_OutOfBudget = OutOfBudget


def segment_ends(model, segment, start, budget):
    """(every distinct end state of ``segment`` from ``start``, model steps used); ``segment``
    is [(call, ret or inf, op)] sorted by call, with no quiescent point inside. Raises
    ``OutOfBudget``."""
    search = _Search(model, budget)
    return tuple(search.ends(segment, start)[0]), search.steps


def explain_segment(model, segment, starts):
    """The ``Failure`` of a segment that has no linearization from any of ``starts``."""
    return _Explainer(model).explain(segment, starts)


def check(model, items, budget=DEFAULT_BUDGET):
    """Check every partition of ``items``; one ``PartitionResult`` per partition."""
    return [check_partition(model, key, ops, budget) for key, ops in model.partition(items)]


def check_partition(model, key, ops, budget=DEFAULT_BUDGET):
    entries = sorted(((op.call, _INF if op.ret is None else op.ret, op) for op in ops
                      if op.ret is not None or not model.is_read_only(op)), key=_by_call)
    chain = Chain(model, budget, (model.init(),))
    try:
        linearizable = all(chain.extend(segment) for segment in _segments(entries))
    except _OutOfBudget:
        return PartitionResult(key, UNKNOWN, len(ops), chain.steps)
    if linearizable:
        return PartitionResult(key, OK, len(ops), chain.steps)
    index, starts = chain.deepest
    failure = _Explainer(model).explain(chain.segments[index], starts)
    failure.context = chain.mutating_before(index)[-CONTEXT_OPS:]
    return PartitionResult(key, VIOLATION, len(ops), chain.steps, failure)


def _by_call(entry):
    return entry[0]


def _segments(entries):
    """Split (call, ret, op) entries sorted by call at every quiescent point."""
    segments, current, horizon = [], [], -1
    for entry in entries:
        if current and entry[0] > horizon:
            segments.append(current)
            current = []
        current.append(entry)
        if entry[1] > horizon:
            horizon = entry[1]
    if current:
        segments.append(current)
    return segments


class Chain:
    """Depth-first search for one linearization through a growing list of segments.

    ``starts`` are the exact states the first segment may start in. ``extend(segment)``
    appends the next segment and returns whether some linearization covers every segment so
    far: segment end states are produced lazily, and a dead end backtracks into earlier
    segments (frames older than ``_KEEP_LIVE`` are re-created on demand); failed
    (segment, start state) pairs are remembered, so the search is exact. After a False,
    ``deepest`` is (index of the deepest segment that had no linearization, the start states it
    failed from). Raises ``OutOfBudget``.
    """

    def __init__(self, model, budget, starts):
        self.model = model
        self.search = _Search(model, budget)
        self.starts = tuple(starts)
        self.segments = []
        self.path = [[-1, None, iter(self.starts), 0]]   # [index, start, ends, ends used]
        self.failed = set()
        self.deepest = (-1, [])
        self.tip = None          # the end state of the last segment on the current path

    @property
    def steps(self):
        return self.search.steps

    def extend(self, segment):
        self.segments.append(segment)
        if len(self.segments) == 1:
            resumed = self._backtrack()
            if resumed is None:
                self.deepest = (0, [])
                return False
            return self._run(resumed[0] + 1, resumed[1])
        return self._run(len(self.segments) - 1, self.tip)

    def _run(self, index, state):
        """Search forward from ``state`` at the start of segment ``index``."""
        segments, failed = self.segments, self.failed
        while index < len(segments):
            ends, more = self.search.ends(segments[index], state)
            end = next(ends, _DONE)
            if end is not _DONE and more:
                self._push([index, state, ends, 1])
            if end is _DONE or (index + 1, end) in failed:
                if end is _DONE:
                    self._note_dead_end(index, state)
                if not more or end is _DONE:
                    failed.add((index, state))
                resumed = self._backtrack()
                if resumed is None:
                    return False
                index, end = resumed
            index, state = index + 1, end
        self.tip = state
        return True

    def _push(self, frame):
        path = self.path
        path.append(frame)
        if len(path) > _KEEP_LIVE:
            path[-_KEEP_LIVE - 1][2] = None     # re-created on demand

    def _note_dead_end(self, index, state):
        deepest = self.deepest
        if index > deepest[0]:
            deepest = self.deepest = (index, [])
        if index == deepest[0]:
            deepest[1].append(state)

    def _backtrack(self):
        """Next untried (index, end state) from the deepest segment that has one."""
        path, failed = self.path, self.failed
        while path:
            frame = path[-1]
            index, start, ends, used = frame
            if ends is None:    # the search is deterministic: skip the ends already used
                ends = frame[2] = self._ends(index, start)
                for _ in range(used):
                    next(ends)
            end = next(ends, _DONE)
            if end is _DONE:
                if index >= 0:
                    failed.add((index, start))
                path.pop()
                continue
            frame[3] += 1
            if (index + 1, end) not in failed:
                return index, end
        return None

    def _ends(self, index, start):
        return iter(self.starts) if index < 0 else self.search.ends(self.segments[index],
                                                                      start)[0]

    def mutating_before(self, index):
        """The mutating ops of the segments before ``index``, in call order."""
        return [op for segment in self.segments[:index] for _, _, op in segment
                if not self.model.is_read_only(op)]


class _Search:
    """WGL search of one segment, counting model steps against a budget."""

    def __init__(self, model, budget):
        self.model = model
        self.budget = budget
        self.steps = 0

    def ends(self, segment, start, trace=None):
        """(iterator over the distinct end states of ``segment`` from ``start``, whether there
        may be more than one)."""
        if len(segment) == 1 and trace is None:
            _, ret, op = segment[0]
            self._count()
            nexts = self.model.step(start, op)
            if ret is _INF:
                nexts = (start,) + tuple(s for s in nexts if s != start)
            return iter(nexts), len(nexts) > 1
        if len(segment) <= SMALL and trace is None and segment[-1][1] is not _INF \
                and all(entry[1] is not _INF for entry in segment):
            ends = self._small(segment, start)
            return iter(ends), len(ends) > 1
        return self._wgl(segment, start, trace), True

    def _small(self, segment, start):
        """All end states of a tiny segment, by trying every real-time-respecting order."""
        step, ends = self.model.step, {}
        for order in itertools.permutations(segment):
            if any(later[1] < earlier[0] for i, earlier in enumerate(order)
                   for later in order[i + 1:]):
                continue
            states = (start,)
            for _, _, op in order:
                self.steps += len(states)
                states = {after for before in states for after in step(before, op)}
                if not states:
                    break
            for state in states:
                ends[state] = True
        if self.steps > self.budget:
            raise _OutOfBudget()
        return tuple(ends)

    def _count(self):
        self.steps += 1
        if self.steps > self.budget:
            raise _OutOfBudget()

    def _wgl(self, segment, start, trace):
        step, count = self.model.step, self._count
        ops = [entry[2] for entry in segment]
        read_only = [self.model.is_read_only(op) for op in ops]
        links = _Links(segment)
        nxt, is_call, node_op, lift, unlift = (links.nxt, links.is_call, links.node_op,
                                               links.lift, links.unlift)
        remaining = links.completed
        lin, state, memo, stack, yielded = 0, start, set(), [], set()
        mode, node = "fresh", 0
        while True:
            if mode == "fresh":
                if remaining == 0:
                    if state not in yielded:
                        yielded.add(state)
                        yield state
                    mode = "back"
                else:    # greedy: commit the first legal read-only op of the frontier
                    mode, node = "scan", nxt[0]
                    x = node
                    while is_call[x]:
                        i = node_op[x]
                        if read_only[i]:
                            count()
                            if step(state, ops[i]):
                                config = (lin | 1 << i, state)
                                if config in memo:
                                    mode = "back"
                                else:
                                    memo.add(config)
                                    stack.append((x, state, lin, None, 0))
                                    lift(x)
                                    lin, mode = config[0], "fresh"
                                    remaining -= links.has_return[i]
                                break
                        x = nxt[x]
            if mode == "scan":
                x, mode = node, "back"
                while is_call[x]:
                    i = node_op[x]
                    if not read_only[i]:
                        count()
                        nexts = step(state, ops[i])
                        k = _untried(nexts, 0, lin | 1 << i, memo)
                        if k is not None:
                            stack.append((x, state, lin, nexts, k))
                            lift(x)
                            lin, state, mode = lin | 1 << i, nexts[k], "fresh"
                            remaining -= links.has_return[i]
                            break
                    x = nxt[x]
                if mode == "back" and trace is not None:
                    trace.record(stack, ops, node_op, state, x)
            if mode == "back":
                if not stack:
                    return
                x, state, lin, nexts, k = stack.pop()
                unlift(x)
                i = node_op[x]
                remaining += links.has_return[i]
                if nexts is None:       # greedy frame: no alternative to try
                    continue
                k = _untried(nexts, k + 1, lin | 1 << i, memo)
                if k is None:
                    mode, node = "scan", nxt[x]
                else:
                    stack.append((x, state, lin, nexts, k))
                    lift(x)
                    lin, state, mode = lin | 1 << i, nexts[k], "fresh"
                    remaining -= links.has_return[i]


def _untried(nexts, first, lin, memo):
    """Index of the first next state from ``first`` whose configuration is new (memoised)."""
    for k in range(first, len(nexts)):
        config = (lin, nexts[k])
        if config not in memo:
            memo.add(config)
            return k
    return None


class _Links:
    """Doubly linked list of a segment's call and return events (Porcupine's entry list).

    Node 0 is the head, ``end`` the tail sentinel; a pending op has no return node.
    """

    def __init__(self, segment):
        events = []
        for i, (call, ret, _) in enumerate(segment):
            events.append((call, i, True))
            if ret is not _INF:
                events.append((ret, i, False))
        events.sort()
        size = len(events)
        end = size + 1
        self.nxt = list(range(1, end + 1))
        self.prv = list(range(-1, end))
        self.is_call = [False] * (end + 1)
        self.node_op = [0] * (end + 1)
        self.match = [0] * (end + 1)
        self.has_return = [0] * len(segment)
        call_node = {}
        for node, (_, i, is_call) in enumerate(events, 1):
            self.node_op[node] = i
            self.is_call[node] = is_call
            if is_call:
                call_node[i] = node
            else:
                self.match[call_node[i]] = node
                self.has_return[i] = 1
        self.completed = sum(self.has_return)

    def lift(self, x):
        nxt, prv = self.nxt, self.prv
        nxt[prv[x]] = nxt[x]
        prv[nxt[x]] = prv[x]
        r = self.match[x]
        if r:
            nxt[prv[r]] = nxt[r]
            prv[nxt[r]] = prv[r]

    def unlift(self, x):
        nxt, prv = self.nxt, self.prv
        r = self.match[x]
        if r:
            nxt[prv[r]] = r
            prv[nxt[r]] = r
        nxt[prv[x]] = x
        prv[nxt[x]] = x


class _Trace:
    """Keeps the deepest configuration reached and the op that blocked it."""

    def __init__(self):
        self.depth = -1
        self.prefix = []
        self.state = None
        self.culprit = None

    def record(self, stack, ops, node_op, state, blocking):
        if len(stack) > self.depth:
            self.depth = len(stack)
            self.prefix = [ops[node_op[frame[0]]] for frame in stack]
            self.state = state
            self.culprit = ops[node_op[blocking]]


class _Explainer:
    """Shrinks a failing segment into a small window and explains it."""

    def __init__(self, model):
        self.model = model

    def fails(self, entries, starts):
        """True if ``entries`` has no linearization from any start (False if unsure)."""
        search = _Search(self.model, EXPLAIN_BUDGET)
        try:
            return all(next(search.ends(entries, s)[0], _DONE) is _DONE for s in starts)
        except _OutOfBudget:
            return False

    def trace(self, entries, start):
        trace = _Trace()
        search = _Search(self.model, EXPLAIN_BUDGET)
        try:
            for _ in search.ends(entries, start, trace)[0]:
                break
        except _OutOfBudget:
            pass
        return trace

    def explain(self, segment, starts):
        culprit = self.trace(segment, starts[0]).culprit
        window = segment
        if culprit is not None:
            cut = culprit.ret
            truncated = [(c, r if r <= cut else _INF, op) for c, r, op in segment if c < cut]
            truncated = [e for e in truncated
                         if e[1] is not _INF or not self.model.is_read_only(e[2])]
            if self.fails(truncated, starts):
                window = truncated
        window = self.shrink(window, starts, culprit)
        trace = self.trace(window, starts[0])
        culprit = trace.culprit or culprit or window[-1][2]
        state = trace.state if trace.depth >= 0 else starts[0]
        return Failure(culprit, [e[2] for e in window], trace.prefix, state, starts,
                       self.model.explain(state, culprit))

    def shrink(self, window, starts, culprit):
        """Drop completed read-only ops one by one while the window still fails."""
        if len(window) > MAX_SHRINK:
            return window
        index = 0
        while index < len(window):
            call, ret, op = window[index]
            if op is not culprit and ret is not _INF and self.model.is_read_only(op):
                smaller = window[:index] + window[index + 1:]
                if self.fails(smaller, starts):
                    window = smaller
                    continue
            index += 1
        return window
