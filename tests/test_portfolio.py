"""The default job's portfolio (scenarios/campaign/portfolio.py): it covers the whole catalogue, every
family early, every scenario x engine pair once before any twice; --scenarios and --sched
narrow it. Known-bad inputs: an unknown engine, an engine no chosen scenario can run under."""
import dataclasses

import pytest

from scenarios import catalog
from scenarios.campaign import portfolio
from scenarios.setup.source import SetupError


def _take(plan, runs):
    pairs = []
    for _ in range(runs):
        scenario, engine = plan.next()
        plan.done(scenario, engine)
        pairs.append((scenario.name, engine))
    return pairs


def test_every_family_runs_within_the_first_round():
    plan = portfolio.Plan()
    families = {s.family_name for s in catalog.SCENARIOS}
    first = _take(plan, len(families))
    assert {catalog.get(name).family_name for name, _ in first} == families


def test_every_pair_of_the_catalogue_runs_once_before_any_twice():
    plan = portfolio.Plan()
    everything = {(s.name, e) for s in catalog.SCENARIOS for e in s.engines}
    assert plan.pairs() == len(everything)
    assert set(_take(plan, plan.pairs())) == everything
    assert all(runs == 1 for row in plan.runs().values() for runs in row.values())


def test_a_scenario_added_to_the_catalogue_runs_without_other_edits():
    extra = dataclasses.replace(catalog.get("volatile-churn"), name="brand-new", family="")
    plan = portfolio.Plan((*catalog.SCENARIOS, extra))
    pairs = _take(plan, plan.pairs())
    assert {engine for name, engine in pairs if name == "brand-new"} == set(catalog.ENGINES)
    first_round = _take(portfolio.Plan((*catalog.SCENARIOS, extra)),
                        len({s.family_name for s in catalog.SCENARIOS}) + 1)
    assert "brand-new" in {name for name, _ in first_round}


def test_the_first_round_spreads_the_engines():
    plan = portfolio.Plan()
    first = _take(plan, 8)
    assert {engine for _, engine in first} == set(catalog.ENGINES)


def test_a_pinned_engine_is_the_only_one():
    mutex = catalog.get("mutex-faults")
    assert mutex.engines == ("pct",)
    plan = portfolio.Plan([mutex])
    assert _take(plan, 3) == [("mutex-faults", "pct")] * 3


def test_sched_and_scenarios_narrow_the_plan():
    chosen = [catalog.get("volatile-churn"), catalog.get("derive-copy")]
    plan = portfolio.Plan(chosen, portfolio.parse_engines("random,pct"))
    assert set(_take(plan, 4)) == {(s.name, e) for s in chosen for e in ("random", "pct")}
    assert plan.variants() == ["tsan"]
    assert portfolio.Plan().variants() == ["tsan", "tsan-static16"]


@pytest.mark.parametrize("text", ["fast", "", "os,,pct"])
def test_unknown_engines_are_refused(text):
    with pytest.raises(SetupError):
        portfolio.parse_engines(text)


def test_an_engine_no_scenario_can_run_under_is_refused():
    with pytest.raises(SetupError):
        portfolio.Plan([catalog.get("mutex-faults")], ("os",))


def test_the_allocation_is_printed_as_data():
    plan = portfolio.Plan()
    _take(plan, 3)
    described = plan.describe()
    assert described["pairs"] == plan.pairs()
    assert sum(r for row in described["runs"].values() for r in row.values()) == 3
    assert {s["scenario"] for f in described["families"] for s in f["scenarios"]} == \
        {s.name for s in catalog.SCENARIOS}
