"""The steering rule (scenarios/campaign/steering.py) on synthetic coverage: deterministic, no
driver. Known-bad inputs: a malformed reference, a pair that never produces anything (scores
nothing)."""
import dataclasses
import json

import pytest

from scenarios import catalog
from scenarios.campaign import steering
from scenarios.checker import coverage
from scenarios.setup.source import SetupError


def _scenario(name, mix):
    return dataclasses.replace(catalog.get("volatile-churn"), name=name, mix=mix)


def _cov(*cells):
    """A coverage dict covering ``cells`` ("a:S > b:S")."""
    pairs = {}
    for cell in cells:
        first, second = cell.split(" > ")
        pairs.setdefault(first, {})[second] = 1
    return {"pairs": pairs}


RARE = "destroy:SUCCESS > export:INVALID_HANDLE"
COMMON = "export:SUCCESS > export:SUCCESS"
OTHER = "import:SUCCESS > export:SUCCESS"
A = _scenario("a", "import=1,export=1,destroy=1,get_attributes=1")
B = _scenario("b", "import=1,export=1")


def _steer(targets=(RARE, COMMON, OTHER)):
    return steering.Steering([(A, "os"), (A, "pct"), (B, "os")], targets)


def test_a_pair_that_alone_produces_a_rare_cell_outscores_one_of_common_cells():
    steer = _steer(targets=())
    steer.observe("a", "os", _cov(RARE, COMMON))
    steer.observe("b", "os", _cov(COMMON))
    assert steer.score("a", "os") == pytest.approx(1.5)       # RARE alone, half of COMMON
    assert steer.score("b", "os") == pytest.approx(0.5)


def test_reruns_dilute_what_a_pair_found():
    steer = _steer(targets=())
    steer.observe("a", "os", _cov(RARE))
    first = steer.score("a", "os")
    steer.observe("a", "os", _cov(RARE))
    assert steer.score("a", "os") < first


def test_a_pair_that_produces_nothing_scores_nothing():
    steer = _steer(targets=())
    steer.observe("a", "os", None)
    assert steer.score("a", "os") == 0


def test_uncovered_targets_go_to_the_pairs_whose_mix_names_both_operations():
    steer = _steer()
    # RARE (destroy, export) only A's mix names: A's two engines split it
    assert steer.candidates[RARE] == [("a", "os"), ("a", "pct")]
    assert steer.score("a", "os") == pytest.approx(1 / 2 + 1 / 3 + 1 / 3)
    assert steer.score("b", "os") == pytest.approx(1 / 3 + 1 / 3)
    steer.observe("b", "os", _cov(COMMON, OTHER))         # covered: no potential left for B
    assert steer.score("b", "os") == pytest.approx(2.0)   # its credit: both cells, alone
    assert steer.score("a", "pct") == pytest.approx(1 / 2)


def test_a_run_without_the_cell_lowers_its_potential_and_its_scenario_s():
    steer = _steer(targets=(RARE,))
    steer.observe("a", "os", _cov())
    assert steer.score("a", "os") == pytest.approx(1 / 2 / 3)
    assert steer.score("a", "pct") == pytest.approx(1 / 2 / 2)


def test_the_mix_halves_spent_operations_only():
    steer = _steer(targets=(RARE, COMMON))
    assert steer.mix(A) == A.mix                          # nothing spent yet
    steer.observe("a", "os", _cov(COMMON))                # export > export covered
    assert steer.mix(A) == A.mix                          # destroy and export: RARE left
    steer = _steer(targets=(RARE, OTHER))
    steer.observe("a", "os", _cov(OTHER))                 # import: in no uncovered target
    assert steering.mix_ops(steer.mix(A)) == {"import": 1, "export": 2, "destroy": 2,
                                              "get_attributes": 2}
    steer.observe("a", "os", _cov(RARE))                  # all spent: the catalogue's mix
    assert steer.mix(A) == A.mix


def test_the_steered_mix_never_adds_or_zeroes_an_operation():
    steer = _steer(targets=(RARE, OTHER))
    steer.observe("a", "os", _cov(OTHER))
    for scenario in (A, B):
        weights = steering.mix_ops(steer.mix(scenario))
        assert set(weights) == set(steering.mix_ops(scenario.mix))
        assert min(weights.values()) > 0


def test_the_reference_is_data_inside_the_universe(tmp_path):
    cells = steering.load_reachable()
    universe = {f"{a} > {b}" for a, b in coverage.universe()["pairs"]}
    assert cells and set(cells) <= universe and min(cells.values()) >= 1
    with open(steering.REACHABLE, encoding="utf-8") as stream:
        assert json.load(stream)["command"].startswith("python3 bench/bench_guided.py reference")


@pytest.mark.parametrize("text", ["", "{", '{"pairs": [1]}', '{"pairs": {"a": {"b": "x"}}}',
                                  '{"pairs": {"a": {"b": 0}}}', '{"pairs": {"a": 3}}'])
def test_a_malformed_reference_is_refused(tmp_path, text):
    path = tmp_path / "reachable.json"
    path.write_text(text)
    with pytest.raises(SetupError):
        steering.load_reachable(str(path))
