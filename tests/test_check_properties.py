"""Property-based tests of the whole checker (stdlib only, seeded, thousands of cases).

1. Histories simulated from the sequential store under random interleavings (every call takes
   effect at a point inside its interval) are linearizable: the checker must accept them all.
2. One perturbed output, status or stamp: the streaming checker's verdict must equal that of a
   brute-force checker that tries every real-time-respecting order of each key's ops (pending
   ops optional) with the model's full state sets — no segments, no greedy commits, no read-only
   marking, the whole history in memory (tests/test_model.py batch_partition).
3. The same with every segment forced through the streaming checker's lazy chain
   (linearizability.Chain), cut back at settled ops, or exhaustively with a tiny window.
"""
import functools
import random

import pytest

from scenarios.checker import streaming as partition
from scenarios.checker.check import check_history
from scenarios.model.operations import KeyStoreModel
from tests.test_check import as_history, bench
from tests.test_model import batch_partition

CASES = 2500


def brute_force_ok(calls):
    model = KeyStoreModel()
    return all(_key_ok(model, ops) for _, ops in batch_partition(calls))


def _key_ok(model, ops):
    ops = tuple(sorted(ops, key=lambda op: op.call))
    done_mask = sum(1 << i for i, op in enumerate(ops) if op.ret is not None)
    before = [sum(1 << j for j, other in enumerate(ops)
                  if other.ret is not None and other.ret < op.call) for op in ops]

    @functools.lru_cache(maxsize=None)
    def search(placed, state):
        if placed & done_mask == done_mask:
            return True
        for i, op in enumerate(ops):
            if not placed >> i & 1 and before[i] & placed == before[i]:
                if any(search(placed | 1 << i, after) for after in model.step(state, op)):
                    return True
        return False
    return search(0, model.init())


def simulate(rng, case, cut=None):
    threads = rng.randint(2, 4)
    records = bench.simulate(seed=case, calls=rng.randint(4, 12), threads=threads,
                             volatile_pool=rng.randint(1, 2), persistent_ids=rng.randint(0, 1),
                             cut=cut)
    return records, threads


def test_simulated_histories_are_all_accepted():
    rng = random.Random(11)
    for case in range(CASES):
        cut = rng.choice((None, None, None, 0.7))
        records, threads = simulate(rng, case, cut)
        history = as_history(records, threads, complete=cut is None)
        assert check_history(history).verdict == "ok", case
        for budget in (1, 2, 3, 5):   # a budget can make a key unknown, never violated
            assert check_history(history, budget=budget).verdict in ("ok", "unknown"), case


def _perturb_output(rng, records):
    victims = [r for r in records if r["status"] == "SUCCESS" and r.get("out")]
    if not victims:
        return False
    victim = rng.choice(victims)
    out = victim["out"]
    if "material" in out:
        others = [r["args"].get("material") for r in records if r["args"].get("material")]
        out["material"] = rng.choice(others + ["ff" * 16])
    elif "bits" in out:
        out[rng.choice(("bits", "usage", "alg", "lifetime"))] ^= rng.choice((0x1, 0x80))
    else:
        out["key"] = rng.choice([r["out"]["key"] for r in victims if "key" in r["out"]])
    return True


def _perturb_status(rng, records):
    victims = [r for r in records if r["op"] in ("destroy", "export", "get_attributes")
               and r["status"] in ("SUCCESS", "INVALID_HANDLE")]
    if not victims:
        return False
    victim = rng.choice(victims)
    if victim["status"] == "SUCCESS":
        victim["status"] = "INVALID_HANDLE"
        victim.pop("out", None)
    elif victim["op"] == "destroy":
        victim["status"] = "SUCCESS"
    else:
        return False
    return True


def _perturb_stamp(rng, records):
    """Move one call's call or ret stamp to another free point of its thread's timeline."""
    for record in records:
        record["call"] *= 4
        record["ret"] = None if record["ret"] is None else record["ret"] * 4
    victim = rng.choice([r for r in records if r["ret"] is not None])
    mine = sorted((r for r in records if r["thread"] == victim["thread"]),
                  key=lambda r: r["call"])
    index = mine.index(victim)
    low = mine[index - 1]["ret"] if index else 0
    high = mine[index + 1]["call"] if index + 1 < len(mine) else victim["ret"] + 40
    if rng.random() < 0.5:
        victim["call"] = rng.randrange(low // 4, victim["ret"] // 4) * 4 + 1
    else:
        victim["ret"] = rng.randrange(victim["call"] // 4 + 1, high // 4 + 1) * 4 - 1
    records.sort(key=lambda r: r["call"])
    return True


@pytest.mark.parametrize("perturb, least", [(_perturb_output, 100), (_perturb_status, 100),
                                            (_perturb_stamp, 5)])
def test_one_perturbation_gives_the_brute_force_verdict(perturb, least):
    """``least``: how many cases of each verdict the perturbation must produce at least."""
    rng = random.Random(perturb.__name__)
    verdicts = {"ok": 0, "violation": 0}
    for case in range(CASES // 3):
        records, threads = simulate(rng, 10_000 + case)
        if not perturb(rng, records):
            continue
        history = as_history(records, threads)
        result = check_history(history)
        if any(v.kind == "static" for v in result.violations):
            continue                     # no concurrency question left (e.g. a bad key id)
        expected = "ok" if brute_force_ok(history.calls) else "violation"
        assert result.verdict == expected, (case, records)
        verdicts[expected] += 1
    assert min(verdicts.values()) >= least, verdicts    # both sides exercised


@pytest.mark.parametrize("window", [partition._WINDOW_OPS, 2])
def test_lazy_chains_give_the_brute_force_verdict(monkeypatch, window):
    """No segment takes the direct-step fast path: each goes through the key's lazy chain,
    which is cut back at settled ops (default window) or exhaustively (window of 2 ops)."""
    monkeypatch.setattr(partition, "_is_small", lambda segment: False)
    monkeypatch.setattr(partition, "_WINDOW_OPS", window)
    rng = random.Random(f"lazy-{window}")
    perturbations = (_perturb_output, _perturb_status, _perturb_stamp)
    verdicts = {"ok": 0, "violation": 0}
    for case in range(CASES // 3):
        cut = rng.choice((None, None, 0.8))
        records, threads = simulate(rng, 20_000 + case, cut)
        if any(r["ret"] is not None for r in records):
            rng.choice(perturbations)(rng, records)
        history = as_history(records, threads, complete=cut is None)
        result = check_history(history)
        if any(v.kind == "static" for v in result.violations):
            continue
        expected = "ok" if brute_force_ok(history.calls) else "violation"
        assert result.verdict == expected, (case, records)
        verdicts[expected] += 1
    assert min(verdicts.values()) >= 100, verdicts
