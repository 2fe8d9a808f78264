"""Each scenario of the catalogue without a known issue runs clean on stock Mbed TLS 3.6.6 (its
own TSan build variant), under the OS scheduler, for a fixed number of calls (a time-bound run
of the fastest scenarios makes hundreds of thousands of calls, which only lengthen the check)."""
import pytest

from scenarios import catalog
from scenarios.campaign.runner import run_scenario
from tests.stress_env import stock_build

pytestmark = pytest.mark.slow     # every test drives the driver for seconds
CALLS = 20000


@pytest.mark.parametrize("name", [s.name for s in catalog.SCENARIOS if not s.known_issue])
def test_scenario_is_clean_on_stock(name, tmp_path):
    scenario = catalog.get(name)
    result = run_scenario(stock_build(scenario.variant), scenario, seed=7, seconds=60,
                          directory=str(tmp_path / name), ops=CALLS)
    assert result.failures == []
    assert result.ops >= CALLS, "the driver did not make every call"
    assert result.check["verdict"] == "ok"
