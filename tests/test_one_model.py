"""One model: the rules live in the Python tables of scenarios/model/key_store.py, and every checker path
reads them -- the Python checker, the C fast path (whose (operation, status) table
scenarios/checker/fast_check.py derives from the model at each check) and the final-state settling
(scenarios/checker/final_state.py asks the model which calls create or remove). A rule changed in one
place changes every path: here a deliberately wrong rule (a successful export needs an ABSENT
key) must make all of them reject a history they accepted."""
import pytest

from scenarios import catalog
from scenarios.checker import check
from scenarios.checker import fast_check
from scenarios.checker import final_state
from scenarios.model import key_store
from scenarios.campaign.job import Job
from tests.stress_env import stock_build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    directory = tmp_path_factory.mktemp("one-model")
    job = Job(catalog.get("volatile-churn"), 5, ops=3000).replace(threads=2)
    result = job.run(stock_build("tsan"), str(directory))
    assert result.clean, [f.message for f in result.failures]
    return str(directory / "history")


def test_a_rule_changed_in_the_model_changes_every_checker_path(history, monkeypatch):
    if fast_check.library() is None:
        pytest.skip("the checker's C fast path could not be built here")
    assert fast_check.fast_ok(history) is not None
    assert check.check_file(history).verdict == "ok"
    monkeypatch.setitem(key_store.SIMPLE_RULES["export"], "SUCCESS", key_store.rule_absent)
    assert fast_check.fast_ok(history) is None, "the C core kept its own copy of the rule"
    assert check.check_file(history, final=False).verdict == "violation"


def test_final_state_asks_the_model_which_calls_remove(monkeypatch):
    final_state.roles.cache_clear()
    assert final_state.roles("export", "SUCCESS", False) == ()
    monkeypatch.setitem(key_store.SIMPLE_RULES["export"], "SUCCESS", key_store.rule_destroy)
    final_state.roles.cache_clear()
    try:
        assert ("remove-certain", "key") in final_state.roles("export", "SUCCESS", False)
    finally:
        final_state.roles.cache_clear()
