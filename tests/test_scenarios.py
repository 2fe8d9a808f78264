"""Each scenario of the catalogue without a known issue runs clean on stock Mbed TLS 3.6.6 (its
own TSan build variant), under the OS scheduler."""
import pytest

from scenarios import catalog
from scenarios.runner import run_scenario
from tests.stress_env import stock_build

SECONDS = 1.5


@pytest.mark.parametrize("name", [s.name for s in catalog.SCENARIOS if not s.known_issue])
def test_scenario_is_clean_on_stock(name, tmp_path):
    scenario = catalog.get(name)
    result = run_scenario(stock_build(scenario.variant), scenario, seed=7, seconds=SECONDS,
                          directory=str(tmp_path / name))
    assert result.failures == []
    assert result.ops > 200, "the driver barely ran"
    assert result.check["verdict"] == "ok"
