"""The coverage scenarios on stock Mbed TLS 3.6.6 (TSan build): each runs clean and really makes
the calls it is about; each known issue reproduces with its expected oracle and is reported as
known, not as a new failure.

The runs are serialised (--sched random) with a fixed seed and number of calls: the interleaving,
so what the run makes and finds, is the same on every run whatever the machine's load."""
import collections

import pytest

from scenarios import catalog
from scenarios.campaign.runner import run_scenario
from tests.stress_env import run_lines, stock_build

pytestmark = pytest.mark.slow     # every test drives the driver for seconds
CALLS = 20000

# scenario -> operations that must each return SUCCESS and some failure status in one short run
CLEAN = {
    "lookup-missing": ("open", "purge", "export_public", "get_attributes", "export"),
    "multi-destroy": ("destroy",),
    "cache-vs-use": ("purge", "close", "open", "sign", "mac", "cipher_encrypt"),
    "copy-chain": ("copy", "sign", "mac", "cipher_encrypt"),
    "derive-from-destroyed": ("derive_from",),
    "key-use-vs-destroy": ("sign", "verify", "cipher_encrypt", "cipher_decrypt", "mac",
                           "aead_encrypt", "aead_decrypt", "mac_multipart"),
}


def serialised_run(name, seed, directory):
    return run_scenario(stock_build("tsan"), catalog.get(name), seed, seconds=60,
                        directory=directory, ops=CALLS, extra=["--sched", "random"])


def statuses(directory):
    """(op, status) -> count over the run's history."""
    counts = collections.Counter()
    for record in run_lines(directory):
        if "op" in record:
            counts[record["op"], record["status"]] += 1
    return counts


def records(directory, op, status):
    return [r for r in run_lines(directory) if r.get("op") == op and r.get("status") == status]


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_coverage_scenario_is_clean_and_makes_its_calls(name, tmp_path):
    result = serialised_run(name, 7, str(tmp_path))
    assert result.failures == []
    assert result.check["verdict"] == "ok"
    counts = statuses(str(tmp_path))
    for op in CLEAN[name]:
        assert counts[op, "SUCCESS"] > 0, f"{op} never succeeded"
        assert any(n for (o, s), n in counts.items() if o == op and s != "SUCCESS"), \
            f"{op} never failed"


def test_multipart_mac_outlives_a_destroy_between_setup_and_finish(tmp_path):
    """Some successful multi-part MAC had its key destroyed after the setup returned and before
    the operation finished (the checker verified its MAC against the old material). The driver
    has a scheduling point before each update (harness/driver/client_use.c), where the serialised
    engine may run the destroy."""
    result = serialised_run("key-use-vs-destroy", 5, str(tmp_path))
    assert result.failures == []
    destroys = records(str(tmp_path), "destroy", "SUCCESS")
    outlived = [m for m in records(str(tmp_path), "mac_multipart", "SUCCESS")
                if any(d["args"]["key"] == m["args"]["key"] and
                       m["args"]["mid"] < d["call"] and d["ret"] < m["ret"]
                       for d in destroys)]
    assert outlived


@pytest.mark.parametrize("name, oracle", [("close-in-use", "violation"),
                                          ("rng-reseed-race", "tsan")])
def test_known_issue_reproduces_and_is_marked_known(name, oracle, tmp_path):
    """The issue trips its main oracle (close-in-use may also trip the final-state invariant:
    the surviving key is live in the core but destroyed in the model)."""
    scenario = catalog.get(name)
    assert scenario.known_issue and oracle in scenario.known_oracles
    result = serialised_run(name, 1, str(tmp_path))
    kinds = {f.kind for f in result.failures}
    assert oracle in kinds, "the known issue did not reproduce"
    assert kinds <= set(scenario.known_oracles)
    assert all(f.known_issue == scenario.known_issue for f in result.failures)
    assert not any("expected failure" in f.message for f in result.failures)  # the real text
