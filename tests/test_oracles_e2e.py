"""The run-level oracles fire on known-bad inputs: a racy canary, a mutated core.

- The canary (compiled only into psa-stress-test) races on purpose: TSan must report it and the
  run must fail with the report kept verbatim.
- A copy of 3.6.6 whose psa_start_key_creation reserves a slot without the key-slot mutex must
  make `run.py --mbedtls-dir COPY` exit 1.
"""
import pytest

from scenarios import catalog
from scenarios.setup.build import ensure_built
from scenarios.campaign.runner import run_scenario
from tests.stress_env import apply_edit, mutated_tree, quiet, run_py, stock_build

UNLOCKED_RESERVE = (
    "library/psa_crypto.c",
    """#if defined(MBEDTLS_THREADING_C)
    PSA_THREADING_CHK_RET(mbedtls_mutex_lock(
                              &mbedtls_threading_key_slot_mutex));
#endif
    status = psa_reserve_free_key_slot(
        key_is_volatile ? &volatile_key_id : NULL,
        p_slot);
#if defined(MBEDTLS_THREADING_C)
    PSA_THREADING_CHK_RET(mbedtls_mutex_unlock(
                              &mbedtls_threading_key_slot_mutex));
#endif""",
    """    status = psa_reserve_free_key_slot(
        key_is_volatile ? &volatile_key_id : NULL,
        p_slot);""")


def test_tsan_canary_fails_the_run(tmp_path):
    result = run_scenario(stock_build("tsan"), catalog.get("volatile-churn"), seed=3, seconds=1,
                          directory=str(tmp_path), test_build=True, extra=["--canary"])
    kinds = {failure.kind for failure in result.failures}
    assert kinds == {"tsan"}, result.failures
    assert any("data race" in f.message and "canary" in f.details for f in result.failures)


def test_production_driver_has_no_canary(tmp_path):
    result = run_scenario(stock_build("tsan"), catalog.get("volatile-churn"), seed=3, seconds=1,
                          directory=str(tmp_path), extra=["--canary"])
    assert {f.kind for f in result.failures} == {"driver-error"}
    assert "unknown flag" in result.failures[0].message or "canary" in result.failures[0].message


@pytest.mark.slow
def test_unlocked_slot_reservation_is_caught(tmp_path):
    # pct: a serialised engine, so the seed fixes the interleaving and the detection
    result = run_py("--mbedtls-dir", mutated_tree(UNLOCKED_RESERVE).path, "--budget", "6",
                    "--scenarios", "volatile-churn", "--sched", "pct", "--seed", "11",
                    "--reports-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout


@pytest.mark.slow
def test_editing_a_tree_in_place_rebuilds_the_library(tmp_path):
    """A tree edited after its first build must never be tested with the stale library."""
    tree = mutated_tree(("library/psa_crypto.c", "psa_status_t psa_crypto_init(void)\n{",
                         "psa_status_t psa_crypto_init(void)\n{\n    /* in-place edit below */"))
    scenario = catalog.get("volatile-churn")
    first = run_scenario(ensure_built("plain", tree, log=quiet), scenario, 1, 1,
                         str(tmp_path / "run1"))
    assert first.failures == []
    apply_edit(tree.path, "library/psa_crypto.c", "/* in-place edit below */",
               "return PSA_ERROR_BAD_STATE;")
    second = run_scenario(ensure_built("plain", tree, log=quiet), scenario, 1, 1,
                          str(tmp_path / "run2"))
    assert {f.kind for f in second.failures} == {"driver-error"}
    assert "exit code" in second.failures[0].message
