"""The mutant catalogue applies exactly to 3.6.6, refuses trees it does not fit, and a small
subset is detected (a regression in detection power turns CI red).

The subset runs under a serialised engine with a fixed seed and a fixed number of calls: the
interleaving, and so the detection, is the same on every run whatever the machine's load."""
import os

import pytest

from mutants.catalog import MUTANTS
from scenarios import catalog
from scenarios.selftest import mutants
from scenarios.campaign.runner import run_scenario
from scenarios.setup.source import SetupError
from tests.stress_env import mutant_build, stock_tree

# mutant id -> (scenario, engine, seed, calls): a run that detects it
CI_SUBSET = {
    "unlocked-reserve": ("volatile-churn", "pct", 1, 4000),
    "double-destroy": ("persistent-collide", "random", 1, 4000),
}
KINDS = {"tsan": "tsan", "checker": "violation", "invariant": "invariant", "crash": "crash"}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_each_mutant_is_one_exact_edit_of_3_6_6(mutant):
    with open(os.path.join(stock_tree().path, mutant.path), encoding="utf-8") as handle:
        assert handle.read().count(mutant.old) == 1
    assert mutant.old != mutant.new and mutant.oracles and mutant.breaks


def test_catalogue_is_large_enough_and_ids_unique():
    assert len(MUTANTS) >= 15
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)


def test_a_mutant_that_does_not_fit_is_refused(monkeypatch, tmp_path):
    bad = MUTANTS[0].__class__(**{**MUTANTS[0].__dict__, "old": "no such text\n"})
    monkeypatch.setattr(mutants, "WORKSPACE", str(tmp_path / "ws"))
    with pytest.raises(SetupError, match="does not apply"):
        mutants.apply(bad, stock_tree())


@pytest.mark.slow
@pytest.mark.parametrize("mutant_id", sorted(CI_SUBSET))
def test_ci_subset_is_detected(mutant_id, tmp_path):
    (mutant,) = mutants.select(mutant_id)
    scenario, engine, seed, calls = CI_SUBSET[mutant_id]
    result = run_scenario(mutant_build("tsan", (mutant.path, mutant.old, mutant.new)),
                          catalog.get(scenario), seed, seconds=60, directory=str(tmp_path),
                          ops=calls, extra=["--sched", engine])
    kinds = {failure.kind for failure in result.failures}
    assert kinds & {KINDS[oracle] for oracle in mutant.oracles}, \
        f"{mutant_id} escaped its oracles ({scenario}, --sched {engine}, seed {seed})"
    assert "driver-error" not in kinds, "the mutant broke the driver instead"


def test_every_scenario_hint_names_a_catalogued_scenario():
    from scenarios import catalog
    names = {scenario.name for scenario in catalog.SCENARIOS}
    assert {hint for m in MUTANTS for hint in m.scenarios} <= names


class _Outcome:
    """A scenario run that fails after `seconds` of (simulated) stress."""
    def __init__(self, seconds, clean=False):
        self.seconds, self.clean, self.scenario, self.directory = seconds, clean, "s", ""
        self.failures = [] if clean else [type("F", (), {"kind": "violation"})()]


_A, _B = ((type("S", (), {"variant": "tsan", "name": name})(), "os") for name in "ab")


def _fake_runs(monkeypatch, outcomes):
    clock = [0.0]
    monkeypatch.setattr(mutants.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(mutants, "ensure_built", lambda *a, **k: clock.__setitem__(0, clock[0] + 50))

    def run_scenario(*_args, **_kwargs):
        outcome = outcomes.pop(0)
        clock[0] += outcome.seconds
        return outcome
    monkeypatch.setattr(mutants, "run_scenario", run_scenario)


def test_build_time_is_off_the_clock_and_late_detections_are_misses(monkeypatch):
    _fake_runs(monkeypatch, [_Outcome(40, clean=True), _Outcome(15),      # run 1: 55 s
                             _Outcome(40, clean=True), _Outcome(25)])     # run 2: 65 s: late
    row = mutants.Detection("m", "t", ("violation",), 2)
    assert mutants._one_run(row, [_A, _B], None, 0, 60, "", strict=False) == 55
    assert mutants._one_run(row, [_A, _B], None, 1, 60, "", strict=False) is None
    assert row.detected == [55] and row.late == [65]


def test_stock_counts_every_failure_even_past_the_budget(monkeypatch):
    _fake_runs(monkeypatch, [_Outcome(59, clean=True), _Outcome(5)])
    row = mutants.Detection("stock", "t", (), 1)
    assert mutants._one_run(row, [_A], None, 0, 60, "", strict=True) == 64


def test_upstream_runs_on_the_same_mutated_tree(monkeypatch, tmp_path):
    """measure(upstream_runs=N) hands upstream.measure the workspace holding THIS mutant."""
    seen = []

    def fake(tree, _stock, runs, _workdir, _log):
        with open(os.path.join(tree.path, MUTANTS[0].path), encoding="utf-8") as handle:
            seen.append((MUTANTS[0].old not in handle.read(), runs))
        return {"runs": runs, "caught": 0, "kinds": {}}
    monkeypatch.setattr(mutants, "WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(mutants.upstream, "measure", fake)
    row = mutants.measure(MUTANTS[0], stock_tree(), 0, 60, str(tmp_path), lambda _m: None, 2)
    assert seen == [(True, 2)] and row.to_json()["upstream"]["runs"] == 2


def test_portfolio_tries_hinted_engines_first_then_every_engine():
    (narrow,) = mutants.select("split-volatile-reserve")
    pairs = [(scenario.name, engine) for scenario, engine in mutants.portfolio(narrow)]
    assert pairs[:2] == [("volatile-churn", "random"), ("volatile-churn", "delay")]
    assert {engine for _, engine in pairs} == set(mutants.ENGINES)
    assert len(pairs) == len(set(pairs)) and "close-in-use" not in {name for name, _ in pairs}
