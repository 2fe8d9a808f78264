"""Fault injection (--faults storage/alloc/mutex) and the fault rules (scenarios/model/faults.py).

For each fault kind: a scenario of the catalogue runs on stock 3.6.6 with no unexpected failure,
and the checker both accepts hand-made histories of correct handling and rejects hand-made
mishandlings. A core mutant that ignores a failed write of a persistent key is caught under
storage faults, and only under them.
"""
import json
import subprocess

import pytest

from scenarios import catalog
from scenarios.campaign import runner
from scenarios.checker.check import check_file
from scenarios.checker.final_state import config_problems, problems
from scenarios.history.reader import load
from scenarios.model.faults import FaultRules, kinds
from scenarios.campaign.runner import run_scenario
from tests.stress_env import mutant_build, stock_build

AES = {"type": 0x2400, "bits": 128, "usage": 0x3, "alg": 0}   # EXPORT | COPY
MATERIAL = "11" * 16
PERSISTENT, VOLATILE = 7, 0x40000001


def write(tmp_path, spec, *calls, live=None):
    """A JSON Lines history: calls are (op, call, ret, status, args, out), one thread each."""
    header = {"format": "psa-stress-history", "version": 1,
              "key_store": {"kind": "dynamic", "slot_count": 32},
              "faults": {"spec": spec, "stopped_by_fault": False}}
    records = [{"thread": n, "seq": 0, "op": op, "call": call, "ret": ret, "status": status,
                "args": args, "out": out or {}}
               for n, (op, call, ret, status, args, out) in enumerate(calls)]
    end = {"records": len(records), "complete": True}
    if live is not None:
        end["live"] = live
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in [header, *records,
                                                                  {"end": end}]))
    return str(path)


def create(op_id, call, ret, status, lifetime=1, op="import"):
    args = dict(AES, lifetime=lifetime, id=op_id if lifetime else 0, material=MATERIAL)
    key = op_id if lifetime else VOLATILE
    return (op, call, ret, status, args, {"key": key} if status == "SUCCESS" else None)


def use(op, key, call, ret, status):
    out = {"material": MATERIAL} if op == "export" and status == "SUCCESS" else None
    return (op, call, ret, status, {"key": key}, out)


def verdict(tmp_path, spec, *calls):
    return check_file(write(tmp_path, spec, *calls))


# ---- the header: which kinds were injected --------------------------------------------------

def test_kinds_are_read_from_the_spec_with_a_positive_rate():
    assert kinds({"faults": {"spec": "storage=0.05,storage-delay=0.1,mutex=0"}}) == {"storage"}
    assert kinds({"faults": {"spec": "alloc=0.01,mutex=1e-3"}}) == {"alloc", "mutex"}
    assert kinds({"faults": {"spec": None}}) == kinds({}) == frozenset()
    assert kinds({"faults": {"spec": "storage-delay=0.5"}}) == frozenset()


# ---- storage faults -------------------------------------------------------------------------

def test_storage_errors_need_storage_faults(tmp_path):
    calls = (create(PERSISTENT, 1, 2, "STORAGE_FAILURE"), use("export", PERSISTENT, 3, 4,
                                                                "DATA_INVALID"))
    assert verdict(tmp_path, "storage=0.05", *calls).verdict == "ok"
    for spec in (None, "alloc=0.1", "storage-delay=0.5"):
        result = verdict(tmp_path, spec, *calls)
        assert result.verdict == "violation"
        assert {v.kind for v in result.violations} == {"static"}
        assert "no storage faults" in result.violations[0].message


def test_a_failed_creation_leaves_no_key(tmp_path):
    failed = create(PERSISTENT, 1, 2, "DATA_INVALID")
    absent = use("export", PERSISTENT, 3, 4, "INVALID_HANDLE")
    assert verdict(tmp_path, "storage=0.05", failed, absent).verdict == "ok"
    ghost = verdict(tmp_path, "storage=0.05", failed, use("export", PERSISTENT, 3, 4, "SUCCESS"))
    assert ghost.verdict == "violation"
    assert "state: ABSENT" in ghost.violations[0].message


def test_already_exists_proves_nothing_only_under_storage_faults(tmp_path):
    claim = create(PERSISTENT, 1, 2, "ALREADY_EXISTS")
    assert verdict(tmp_path, "storage=0.05", claim).verdict == "ok"
    assert verdict(tmp_path, "alloc=0.05", claim).verdict == "violation"


def test_a_destroy_failed_in_storage_leaves_the_key_or_not_but_decides_once(tmp_path):
    made = create(PERSISTENT, 1, 2, "SUCCESS")
    failed = use("destroy", PERSISTENT, 3, 4, "DATA_INVALID")
    for after in ("SUCCESS", "INVALID_HANDLE"):
        assert verdict(tmp_path, "storage=0.05", made, failed,
                       use("export", PERSISTENT, 5, 6, after)).verdict == "ok"
    flip_flop = verdict(tmp_path, "storage=0.05", made, failed,
                        use("export", PERSISTENT, 5, 6, "INVALID_HANDLE"),
                        use("export", PERSISTENT, 7, 8, "SUCCESS"))
    assert flip_flop.verdict == "violation"


def test_the_loser_of_a_destroy_race_may_see_invalid_handle_only_under_storage_faults(tmp_path):
    """3.6.6: a destroy that registered before a concurrent destroy failed in storage finds
    PENDING_DELETION and returns INVALID_HANDLE, although the storage object (the key)
    survives."""
    made = create(PERSISTENT, 1, 2, "SUCCESS")
    winner = use("destroy", PERSISTENT, 3, 6, "DATA_INVALID")
    loser = use("destroy", PERSISTENT, 4, 5, "INVALID_HANDLE")
    still = use("export", PERSISTENT, 7, 8, "SUCCESS")
    assert verdict(tmp_path, "storage=0.05", made, winner, loser, still).verdict == "ok"
    result = verdict(tmp_path, "alloc=0.05", made, loser, still)
    assert result.verdict == "violation" and result.violations[0].kind == "linearizability"


def test_a_storage_fault_does_not_excuse_a_destroy_that_succeeded(tmp_path):
    result = verdict(tmp_path, "storage=0.05", create(PERSISTENT, 1, 2, "SUCCESS"),
                     use("destroy", PERSISTENT, 3, 4, "SUCCESS"),
                     use("export", PERSISTENT, 5, 6, "SUCCESS"))
    assert result.verdict == "violation"


def test_final_state_under_storage_faults(tmp_path):
    made = create(PERSISTENT, 1, 2, "SUCCESS")
    failed_destroy = use("destroy", PERSISTENT, 3, 4, "STORAGE_FAILURE")
    for live in ([], [PERSISTENT]):      # the removal failed, or it did not
        assert problems(load(write(tmp_path, "storage=0.05", made, failed_destroy)), live) == []
    failed_create = create(PERSISTENT, 1, 2, "INSUFFICIENT_STORAGE")
    found = problems(load(write(tmp_path, "storage=0.05", failed_create)), [PERSISTENT])
    assert len(found) == 1 and "no call of the history created it" in found[0]


def test_the_fast_path_leaves_storage_errors_to_the_fault_rules(tmp_path):
    """The C fast path (binary histories) must not accept a storage error the header does not
    excuse: the same history is ok with its storage faults and a violation without them."""
    path = tmp_path / "h"    # serialised, so the same history every time: one the C core
    #                          accepts when it is not told storage errors are special
    subprocess.run([stock_build("tsan").driver(), "--threads", "2", "--ops", "400", "--seed", "2",
                    "--persistent-percent", "100", "--persistent-ids", "16",
                    "--mix", "import=3,export=3,get_attributes=2,destroy=1",
                    "--faults", "storage=0.02", "--sched", "random", "--history", str(path)],
                   cwd=tmp_path, check=True, capture_output=True)
    assert check_file(str(path)).verdict == "ok"
    header = json.loads((path / "header.json").read_text())
    header["faults"]["spec"] = None
    (path / "header.json").write_text(json.dumps(header))
    result = check_file(str(path))
    assert result.verdict == "violation" and not result.fast_path
    assert "no storage faults" in result.violations[0].message


# ---- allocation faults ----------------------------------------------------------------------

def test_a_failed_allocation_has_no_effect(tmp_path):
    made = create(PERSISTENT, 1, 2, "SUCCESS")
    failed_destroy = use("destroy", PERSISTENT, 3, 4, "INSUFFICIENT_MEMORY")
    assert verdict(tmp_path, "alloc=0.05", made, failed_destroy,
                   use("export", PERSISTENT, 5, 6, "SUCCESS")).verdict == "ok"
    gone = verdict(tmp_path, "alloc=0.05", made, failed_destroy,
                   use("export", PERSISTENT, 5, 6, "INVALID_HANDLE"))
    assert gone.verdict == "violation" and "present" in gone.violations[0].message.lower()
    ghost = verdict(tmp_path, "alloc=0.05", create(PERSISTENT, 1, 2, "INSUFFICIENT_MEMORY"),
                    use("export", PERSISTENT, 3, 4, "SUCCESS"))
    assert ghost.verdict == "violation"


def test_oom_in_the_dynamic_store_needs_allocation_faults(tmp_path):
    oom = create(PERSISTENT, 1, 2, "INSUFFICIENT_MEMORY")
    assert config_problems(load(write(tmp_path, "alloc=0.01", oom))) == []
    assert len(config_problems(load(write(tmp_path, "storage=0.01", oom)))) == 1


# ---- mutex faults ---------------------------------------------------------------------------

def test_service_failure_is_pending_and_the_stop_is_reported(tmp_path):
    made = create(0, 1, 2, "SUCCESS", lifetime=0)
    failed = use("destroy", VOLATILE, 3, 4, "SERVICE_FAILURE")
    result = verdict(tmp_path, "mutex=0.01", made, failed)
    assert result.verdict == "ok"
    assert result.stopped and "SERVICE_FAILURE" in result.stopped
    assert verdict(tmp_path, "storage=0.01", made, failed).verdict == "violation"
    assert FaultRules({}).stopped({}) is None


def test_mutex_faults_do_not_excuse_a_destroy_that_leaves_its_key(tmp_path):
    """The 3.6.6 bug the mutex-faults scenario finds: destroy returns SUCCESS after its second
    lock failed, and the key is still in the core."""
    made = create(0, 1, 2, "SUCCESS", lifetime=0)
    destroyed = use("destroy", VOLATILE, 3, 4, "SUCCESS")
    history = load(write(tmp_path, "mutex=0.01", made, destroyed))
    assert problems(history, []) == []
    found = problems(history, [VOLATILE])
    assert len(found) == 1 and "destroy" in found[0]


# ---- the scenarios on stock 3.6.6 -----------------------------------------------------------

def _statuses(directory):
    return {call.status for call in load(f"{directory}/{runner.HISTORY}").calls}


def _header(directory):
    return load(f"{directory}/{runner.HISTORY}").header["faults"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["storage-faults", "alloc-faults", "mutex-faults"])
def test_fault_scenario_runs_clean_on_stock(tmp_path, name):
    """Under a serialised engine with a fixed seed and call count (the scenario's own engine
    when it pins one), so the run, its faults and its verdict do not depend on OS scheduling."""
    scenario = catalog.get(name)
    engine = () if "--sched" in scenario.flags else ("--sched", "random")
    result = run_scenario(stock_build(scenario.variant), scenario, seed=2, seconds=30,
                          directory=str(tmp_path), extra=engine, ops=20000)
    unexpected = [f for f in result.failures if not f.known_issue]
    assert not unexpected, unexpected
    assert result.check["verdict"] == "ok"
    faults = _header(tmp_path)
    if name == "storage-faults":
        assert faults["storage_failures"] > 0 and faults["storage_delays"] > 0
        assert {"STORAGE_FAILURE", "DATA_INVALID"} & _statuses(tmp_path)
    elif name == "alloc-faults":
        assert faults["alloc_failures"] > 0 and "INSUFFICIENT_MEMORY" in _statuses(tmp_path)
    else:
        assert faults["stopped_by_fault"] and result.check["stopped"]


IGNORE_FAILED_WRITE = (   # psa_finish_key_creation publishes the key although its write failed
    "library/psa_crypto.c",
    "            status = psa_save_persistent_key(&slot->attr,\n"
    "                                             slot->key.data,\n"
    "                                             slot->key.bytes);\n",
    "            status = psa_save_persistent_key(&slot->attr,\n"
    "                                             slot->key.data,\n"
    "                                             slot->key.bytes);\n"
    "            if (status != PSA_ERROR_ALREADY_EXISTS) {\n"
    "                status = PSA_SUCCESS;\n"
    "            }\n")


@pytest.mark.slow
def test_a_core_that_ignores_a_failed_write_is_caught_only_under_storage_faults(tmp_path):
    build = mutant_build("tsan", IGNORE_FAILED_WRITE)
    scenario = catalog.get("storage-faults")
    serialised = {"seed": 3, "seconds": 60, "ops": 2000}    # the same interleaving and faults
    caught = run_scenario(build, scenario, directory=str(tmp_path / "on"),
                          extra=["--sched", "random"], **serialised)
    assert {f.kind for f in caught.failures} & {"violation", "invariant"}, caught.failures
    quiet_run = run_scenario(build, scenario, directory=str(tmp_path / "off"),
                             extra=["--sched", "random", "--faults", "storage=0"], **serialised)
    assert quiet_run.clean, quiet_run.failures
