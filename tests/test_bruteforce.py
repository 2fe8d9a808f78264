"""The checker against the definition: random small histories (tests/bruteforce.py: at most 6
calls on at most 3 threads, with copies, derivations from stored keys and generated keys, half of
them perturbed) checked by the Python checker, by the C fast path, and by a brute-force search of
every real-time-respecting order of every call's effect points in one store holding every key.

The Python checker must give the brute force's verdict on every case, except that it may
accept a history the brute force rejects when it counts some key as not fully checked (an
approximation of docs/checker.md §8: tests/histories/ok_copy_read_and_create_checked_apart.jsonl
is such a case); the C core must never accept what Python rejects (it may leave anything to
Python). ``python3 tests/bruteforce.py N`` runs N cases
outside the suite.
"""
import itertools
import json
import random

from scenarios.checker import fast_check
from scenarios.checker.check import check_history
from scenarios.history.reader import HistoryError
from tests.bruteforce import linearizable, random_history
from tests.test_check import SPLIT_FIXTURE, as_history, fixture
from tests.test_fast_check import core, write_binary   # noqa: F401  (core: a fixture)

CASES = 20_000


def compare(records, threads):
    """(brute force verdict, Python verdict), or None for a perturbation the reader rejects;
    Python's "ok" is "ok, weakened" when it counted a key as not fully checked."""
    try:
        result = check_history(as_history(records, threads))
    except HistoryError:
        return None
    weakened = ", weakened" if result.verdict == "ok" and result.weakened else ""
    return linearizable(records), result.verdict + weakened


def compare_many(cases, seed, core_check=None):
    """Counts of (brute force ok, Python verdict) over ``cases`` random histories; raises on a
    disagreement. ``core_check(records, threads, verdict)``: also ask the C core."""
    rng, counts = random.Random(seed), {}
    for case in range(cases):
        records, threads = random_history(rng)
        pair = compare(records, threads)
        counts[pair] = counts.get(pair, 0) + 1
        if pair is not None and pair[1] != ("ok" if pair[0] else "violation") \
                and pair[1] != "ok, weakened":
            raise AssertionError(f"case {case}: brute force {pair[0]}, Python {pair[1]}: "
                                 f"{records}")
        if pair is not None and core_check is not None:
            core_check(records, threads, pair[1].split(",")[0])
    return counts


def test_python_checker_gives_the_definition_s_verdict():
    counts = compare_many(CASES, seed=2026)
    assert counts[True, "ok"] + counts.get((True, "ok, weakened"), 0) > CASES // 2
    assert counts[False, "violation"] > CASES // 40


def test_only_a_counted_approximation_accepts_what_the_definition_rejects():
    """The oracle above on a known case: a copy whose source read and target creation are
    checked apart (tests/test_check.py, SPLIT_FIXTURE)."""
    with open(fixture(SPLIT_FIXTURE), encoding="utf-8") as stream:
        records = [json.loads(line) for line in stream][1:-1]
    assert compare(records, 3) == (False, "ok, weakened")
    records[-1]["out"]["material"] = records[0]["args"]["material"]    # T exports A: legal
    assert compare(records, 3) == (True, "ok, weakened")


def test_c_core_never_accepts_what_the_definition_rejects(core, tmp_path):   # noqa: F811
    answers, names = {}, itertools.count()

    def core_check(records, threads, verdict):
        if verdict == "ok" and answers.get(True, 0) >= 300:
            return                                 # enough accepted cases: save the disk
        path = write_binary(tmp_path / str(next(names)), records, threads)
        answer = fast_check.run_core(path)
        assert not answer.ok or verdict == "ok", (answer.why, records)
        answers[answer.ok] = answers.get(answer.ok, 0) + 1
    compare_many(CASES // 4, seed=15, core_check=core_check)
    assert answers[True] >= 300 and answers[False] > 50
