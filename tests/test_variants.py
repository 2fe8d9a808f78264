"""Every build variant is live and configured as its name says, and the static- and
dynamic-store scenarios run clean on stock 3.6.6.

- The canary (psa-stress-test only) must be reported in every variant: a data race under TSan,
  and in an ASan build, which cannot see races, a read after free.
- tsan-static16 is the static key store with 16 slots, recorded in the history header.
- eviction-storm really evicts: the driver counts reloads from storage (bench/ has the rate).
"""

import pytest

from scenarios import catalog
from scenarios.campaign.runner import run_scenario
from tests.stress_env import run_lines, stock_build

pytestmark = pytest.mark.slow     # every test drives the driver for seconds
VARIANTS = {"tsan": "tsan", "tsan-static16": "tsan", "asan": "asan"}   # variant -> report kind


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_canary_is_reported_in_every_variant(variant, tmp_path):
    result = run_scenario(stock_build(variant), catalog.get("volatile-churn"), seed=3, seconds=1,
                          directory=str(tmp_path), test_build=True, extra=["--canary"])
    reports = [f for f in result.failures if f.kind == VARIANTS[variant]]
    assert reports, result.failures
    assert all("canary" in f.details for f in reports)


def test_static16_variant_is_the_static_store(tmp_path):
    result = run_scenario(stock_build("tsan-static16"), catalog.get("persistent-collide"),
                          seed=2, seconds=1, directory=str(tmp_path))
    header = run_lines(str(tmp_path))[0]
    assert header["key_store"] == {"kind": "static", "slot_count": 16}
    assert result.failures == []


def test_eviction_storm_reloads_evicted_keys(tmp_path):
    scenario = catalog.get("eviction-storm")
    result = run_scenario(stock_build(scenario.variant), scenario, seed=4, seconds=3,
                          directory=str(tmp_path))
    assert result.failures == []
    assert result.reloads > 100, "40 persistent ids over 16 slots must reload evicted keys"


@pytest.mark.parametrize("name", ["init-race", "destroy-overlap", "quiescent-invariants"])
def test_mode_scenario_is_clean_on_stock(name, tmp_path):
    scenario = catalog.get(name)
    result = run_scenario(stock_build(scenario.variant), scenario, seed=7, seconds=60,
                          directory=str(tmp_path), ops=20000)
    assert result.failures == []
    assert result.check["verdict"] == "ok" and result.ops >= 20000
    header, *lines = run_lines(str(tmp_path))
    inits = {(r["thread"], r["seq"]) for r in lines if r.get("op") == "init"}
    assert header["spec_mode"] == ("beyond-spec" if name == "destroy-overlap" else "spec")
    if name == "init-race":   # each worker's first call, and its only init
        assert inits == {(thread, 0) for thread in range(scenario.threads)}
