"""Each scenario of the default suite runs clean on stock Mbed TLS 3.6.6 (TSan build)."""
import pytest

from scenarios import catalog
from scenarios.runner import run_scenario
from tests.stress_env import stock_build

SECONDS = 3


@pytest.mark.parametrize("name", [name for name in catalog.DEFAULT_SUITE
                                  if not catalog.get(name).known_issue])
def test_scenario_is_clean_on_stock(name, tmp_path):
    result = run_scenario(stock_build("tsan"), catalog.get(name), seed=7, seconds=SECONDS,
                          directory=str(tmp_path / name))
    assert result.failures == []
    assert result.ops > 1000, "the driver barely ran"
    assert result.check["verdict"] == "ok"
