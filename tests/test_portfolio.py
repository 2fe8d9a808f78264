"""The default job's portfolio (scenarios/campaign/portfolio.py): it covers the whole catalogue,
every family early, every scenario x engine pair once before any twice, guided or not; guided,
no pair runs more than LEAD runs ahead of the least-run one; --scenarios and --sched narrow it.
Known-bad inputs: an unknown engine, an engine no chosen scenario can run under."""
import dataclasses

import pytest

from scenarios import catalog
from scenarios.campaign import portfolio
from scenarios.setup.source import SetupError


def _take(plan, runs, cov=lambda name, engine, k: None):
    """Run the plan ``runs`` times; ``cov`` gives the synthetic coverage of the k-th run."""
    pairs = []
    for k in range(runs):
        scenario, engine = plan.next()
        plan.done(scenario, engine, cov(scenario.name, engine, k))
        pairs.append((scenario.name, engine))
    return pairs


def _cells(*cells):
    return {"pairs": {first: {second: 1} for first, second in cells}}


def _greedy_pair(name, engine, k):
    """volatile-churn@pct finds a new cell every run; every other pair repeats a common one."""
    if (name, engine) == ("volatile-churn", "pct"):
        return _cells((f"import:SUCCESS{k}", "export:SUCCESS"))
    return _cells(("export:SUCCESS", "export:SUCCESS"))


@pytest.mark.parametrize("guided", [True, False])
def test_every_family_runs_within_the_first_round(guided):
    plan = portfolio.Plan(guided=guided)
    families = {s.family_name for s in catalog.SCENARIOS}
    first = _take(plan, len(families), _greedy_pair)
    assert {catalog.get(name).family_name for name, _ in first} == families


@pytest.mark.parametrize("guided", [True, False])
def test_every_pair_of_the_catalogue_runs_once_before_any_twice(guided):
    plan = portfolio.Plan(guided=guided)
    everything = {(s.name, e) for s in catalog.SCENARIOS for e in s.engines}
    assert plan.pairs() == len(everything)
    assert set(_take(plan, plan.pairs(), _greedy_pair)) == everything
    assert all(runs == 1 for row in plan.runs().values() for runs in row.values())


def test_guided_no_pair_runs_more_than_lead_runs_ahead():
    plan = portfolio.Plan(targets={})
    for _ in range(4 * plan.pairs()):
        _take(plan, 1, _greedy_pair)
        counts = [runs for row in plan.runs().values() for runs in row.values()]
        assert max(counts) - min(counts) <= portfolio.LEAD


def test_guided_gives_more_runs_to_the_pair_that_keeps_finding_new_cells():
    runs = {}
    for guided in (True, False):
        plan = portfolio.Plan(guided=guided, targets={})
        _take(plan, 3 * plan.pairs(), _greedy_pair)
        runs[guided] = plan.runs()["volatile-churn"]
    assert runs[False]["pct"] == 3 < runs[True]["pct"]
    assert runs[True]["os"] < runs[True]["pct"]


def test_unguided_ignores_the_coverage():
    assert _take(portfolio.Plan(guided=False), 200, _greedy_pair) == \
        _take(portfolio.Plan(guided=False), 200)


def test_guided_steers_the_mix_of_the_scenario_it_runs():
    churn = catalog.get("volatile-churn")
    target = "import:SUCCESS > export:SUCCESS"
    plan = portfolio.Plan([churn], targets={target: 1, "destroy:SUCCESS > export:SUCCESS": 1})
    first, _ = plan.next()
    assert first.mix == churn.mix
    plan.done(first, "os", _cells(("import:SUCCESS", "export:SUCCESS")))
    steered, _ = plan.next()
    assert steered.mix == "import=3,generate=2,copy=4,destroy=6,export=8,get_attributes=6"
    assert plan.describe()["guided"]["mixes"] == {"volatile-churn": steered.mix}


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
    assert described["guided"]["targets"] == len(plan.steering.targets) > 0
    assert set(described["guided"]["scores"]) == {f"{s.name}@{e}" for s in catalog.SCENARIOS
                                                  for e in s.engines}
    assert sum(r for row in described["runs"].values() for r in row.values()) == 3
    assert {s["scenario"] for f in described["families"] for s in f["scenarios"]} == \
        {s.name for s in catalog.SCENARIOS}


def test_guided_runs_each_family_s_representative_first():
    families = len({s.family_name for s in catalog.SCENARIOS})
    assert _take(portfolio.Plan(), families, _greedy_pair) == \
        _take(portfolio.Plan(guided=False), families)
    rounds = portfolio.Plan().pairs()
    assert _take(portfolio.Plan(), rounds, _greedy_pair) != \
        _take(portfolio.Plan(guided=False), rounds)
