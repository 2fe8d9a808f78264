"""scenarios/checker/linearizability.py against a toy register model and a brute-force oracle."""
import itertools
import random

import pytest

from scenarios.checker.linearizability import OK, UNKNOWN, VIOLATION, check, check_partition


class Op:
    """A register operation: write v, read v, maybe v (write that may not take effect),
    touch (adds 100 or nothing), put_if_absent v (identity when the register is set)."""
    __slots__ = ("kind", "value", "call", "ret", "key")

    def __init__(self, kind, value, call, ret, key=0):
        self.kind, self.value, self.call, self.ret, self.key = kind, value, call, ret, key

    def __repr__(self):
        return f"{self.kind}({self.value})[{self.call},{self.ret}]"


class Register:
    """Toy model; ``lie`` marks put_if_absent read-only (wrongly) to expose the greedy trap."""

    def __init__(self, lie=False):
        self.lie = lie

    def init(self):
        return None

    def step(self, state, op):
        if op.kind == "write":
            return (op.value,)
        if op.kind == "read":
            return (state,) if state == op.value else ()
        if op.kind == "maybe":
            return (state, op.value) if state != op.value else (state,)
        if op.kind == "touch":
            return (state, (state or 0) + 100)
        if op.kind == "put_if_absent":
            return (op.value,) if state is None else (state,)
        if op.kind == "clear":
            return (None,)
        raise AssertionError(op.kind)

    def is_read_only(self, op):
        return op.kind == "read" or (self.lie and op.kind == "put_if_absent")

    def partition(self, ops):
        parts = {}
        for op in ops:
            parts.setdefault(op.key, []).append(op)
        return sorted(parts.items())

    def describe_op(self, op):
        return repr(op)

    def describe_state(self, state):
        return repr(state)

    def explain(self, state, op):
        return f"{op!r} impossible in state {state!r}"


def verdict(ops, model=None, budget=1_000_000):
    results = check(model or Register(), ops, budget)
    assert len(results) == 1
    return results[0]


def brute_force(ops, model):
    """Linearizable iff some order of all completed ops plus any subset of pending ones
    respects real time and is legal sequentially."""
    done = [op for op in ops if op.ret is not None]
    pending = [op for op in ops if op.ret is None]
    for size in range(len(pending) + 1):
        for chosen in itertools.combinations(pending, size):
            for order in itertools.permutations(done + list(chosen)):
                if any((later.ret or float("inf")) < earlier.call
                       for i, earlier in enumerate(order) for later in order[i + 1:]):
                    continue
                states = {model.init()}
                for op in order:
                    states = {after for before in states for after in model.step(before, op)}
                if states:
                    return True
    return False


def test_sequential_history_ok_and_stale_read_rejected():
    ops = [Op("write", 1, 1, 2), Op("read", 1, 3, 4), Op("write", 2, 5, 6), Op("read", 2, 7, 8)]
    assert verdict(ops).verdict == OK
    stale = ops + [Op("read", 1, 9, 10)]
    result = verdict(stale)
    assert result.verdict == VIOLATION
    assert result.failure.culprit is stale[-1]
    assert stale[-1] in result.failure.window
    assert result.failure.state == 2
    assert "impossible in state 2" in result.failure.message


def test_concurrent_ops_may_linearize_in_either_order():
    ops = [Op("write", 1, 1, 10), Op("read", 0, 2, 3), Op("read", 1, 4, 5)]
    ops[1].value = None   # a read of the initial state, before the write's LP
    assert verdict(ops).verdict == OK
    ops.append(Op("read", None, 11, 12))
    assert verdict(ops).verdict == VIOLATION


def test_backtracking_across_a_quiescent_cut_into_a_wide_segment():
    writes = [Op("write", v, v, 10 + v) for v in range(1, 6)]   # 5 concurrent writes
    assert verdict(writes + [Op("read", 1, 20, 21)]).verdict == OK
    assert verdict(writes + [Op("read", 9, 20, 21)]).verdict == VIOLATION


def test_backtracking_past_many_segments_with_choices():
    """Segment 0 ends in 1 or 2; 24 later segments may each add 100: only the order that
    ends segment 0 in 1 and never adds satisfies the final read (forces re-creation of
    dropped segment searches)."""
    ops = [Op("write", 1, 1, 4), Op("write", 2, 2, 3)]
    stamp = 10
    for _ in range(24):
        ops.append(Op("touch", None, stamp, stamp + 1))
        stamp += 2
    ops.append(Op("read", 1, stamp, stamp + 1))
    assert verdict(ops).verdict == OK
    ops[-1].value = 3
    assert verdict(ops).verdict == VIOLATION


def test_pending_ops_may_or_may_not_take_effect():
    pending = Op("write", 7, 1, None)
    assert verdict([pending, Op("read", None, 2, 3), Op("read", 7, 4, 5)]).verdict == OK
    assert verdict([pending, Op("read", None, 2, 3), Op("read", None, 4, 5)]).verdict == OK
    flip_back = [pending, Op("read", 7, 2, 3), Op("read", None, 4, 5)]
    assert verdict(flip_back).verdict == VIOLATION


def test_greedy_read_only_commit_trusts_the_model_so_the_flag_must_not_depend_on_state():
    """put_if_absent is the identity when the register is set, but not read-only: it must be
    delayed past the clear. A model that calls it read-only gets a false alarm (the trap)."""
    ops = [Op("write", 1, 1, 2), Op("clear", None, 3, 10),
           Op("put_if_absent", 5, 4, None), Op("read", 5, 11, 12)]
    assert verdict(ops, Register()).verdict == OK
    assert verdict(ops, Register(lie=True)).verdict == VIOLATION


def test_budget_exhaustion_is_unknown_never_ok():
    ops = [Op("write", v, v, 20 + v) for v in range(1, 9)] + [Op("read", 1, 40, 41)]
    result = verdict(ops, budget=5)
    assert result.verdict == UNKNOWN and result.failure is None
    assert verdict(ops).verdict == OK


def test_partitions_are_checked_independently():
    ops = [Op("write", 1, 1, 2, key="a"), Op("read", 1, 3, 4, key="b"),
           Op("write", 1, 5, 6, key="b")]
    results = {r.key: r.verdict for r in check(Register(), ops)}
    assert results == {"a": OK, "b": VIOLATION}


def test_window_is_shrunk_to_the_failing_ops():
    """Many irrelevant reads overlap the failing one; the window drops them."""
    ops = [Op("write", 1, 1, 2)]
    ops += [Op("read", 1, 3 + i, 100 + i) for i in range(10)]
    ops.append(Op("read", 2, 50, 60))
    result = verdict(ops)
    assert result.verdict == VIOLATION
    assert result.failure.culprit is ops[-1]
    assert result.failure.window == [ops[-1]]
    assert result.failure.context == [ops[0]]


def random_history(rng, size):
    kinds = ("write", "read", "maybe", "clear", "put_if_absent")
    ops, clocks = [], [0.0, 0.0, 0.0]
    for _ in range(size):
        thread = rng.randrange(3)
        start = clocks[thread] + rng.random()
        end = start + rng.random() * 3
        clocks[thread] = end
        ops.append([start, end, rng.choice(kinds), rng.choice((None, 1, 2))])
    times = sorted(t for op in ops for t in op[:2])
    stamp = {t: n for n, t in enumerate(times, 1)}
    history = []
    for start, end, kind, value in ops:
        pending = rng.random() < 0.1 and kind != "read"
        history.append(Op(kind, value, stamp[start], None if pending else stamp[end]))
    return history


def test_agrees_with_brute_force_on_random_small_histories():
    rng = random.Random(20240601)
    outcomes = {True: 0, False: 0}
    for _ in range(400):
        ops = random_history(rng, rng.randint(1, 6))
        expected = brute_force(ops, Register())
        got = verdict(ops).verdict
        assert got == (OK if expected else VIOLATION), ops
        outcomes[expected] += 1
    assert min(outcomes.values()) > 50   # both verdicts were exercised


def test_check_partition_on_empty_input():
    assert check_partition(Register(), "k", []).verdict == OK


@pytest.mark.parametrize("budget", [10, 100])
def test_budget_is_counted_in_steps(budget):
    ops = [Op("write", v, v, 30 + v) for v in range(1, 12)]
    result = verdict(ops + [Op("read", 1, 50, 51)], budget=budget)
    assert result.verdict == UNKNOWN
    assert result.steps > budget
