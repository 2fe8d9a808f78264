"""The inside invariants (harness/inside/inspect.c) and the final-state check (scenarios/checker/final_state.py)
fire on known-bad inputs, and stay quiet on stock 3.6.6.

One mutated copy of 3.6.6 carries one mutation per invariant, each active only when the
environment variable PSA_STRESS_MUTANT names it, so a single (plain) build proves them all; the
same build with no mutation active runs clean, so the guards themselves change nothing.
"""
import json
import os
import subprocess

import pytest

from scenarios import catalog
from scenarios.checker import final_state
from scenarios.campaign.runner import INVARIANT_EXIT_CODE, run_scenario
from tests.stress_env import mutant_build, stock_build

GUARD = ('#include "common.h"\n',
         '#include "common.h"\n#include <stdlib.h>\n#include <string.h>\n'
         '#define MUTANT(name) (getenv("PSA_STRESS_MUTANT") != NULL && '
         'strcmp(getenv("PSA_STRESS_MUTANT"), name) == 0)\n')
SLOTS = "library/psa_crypto_slot_management.c"
CORE = "library/psa_crypto.c"
STORAGE = "library/psa_crypto_storage.c"
MUTATIONS = [   # (file, old, new): each old occurs exactly once
    (SLOTS, "    if (status != PSA_SUCCESS) {\n        psa_wipe_key_slot(*p_slot);\n",
     "    if (status != PSA_SUCCESS) {\n        if (!MUTANT(\"filling\")) {\n"
     "            psa_wipe_key_slot(*p_slot);\n        }\n"),
    (SLOTS, "        (slot->var.occupied.registered_readers == 1)) {\n"
            "        return psa_wipe_key_slot(slot);\n",
     "        (slot->var.occupied.registered_readers == 1) && !MUTANT(\"pending\")) {\n"
     "        return psa_wipe_key_slot(slot);\n"),
    (SLOTS, "    status = psa_unregister_read(slot);\n#if defined(MBEDTLS_THREADING_C)\n",
     "    status = MUTANT(\"readers\") ? PSA_SUCCESS : psa_unregister_read(slot);\n"
     "#if defined(MBEDTLS_THREADING_C)\n"),
    (SLOTS, "    status = psa_get_and_lock_key_slot_in_memory(key, p_slot);\n"
            "    if (status != PSA_ERROR_DOES_NOT_EXIST) {\n",
     "    status = psa_get_and_lock_key_slot_in_memory(key, p_slot);\n"
     "    if (MUTANT(\"duplicate\") && status == PSA_SUCCESS &&\n"
     "        !psa_key_id_is_volatile(MBEDTLS_SVC_KEY_ID_GET_KEY_ID(key))) {\n"
     "        psa_unregister_read(*p_slot);\n        status = PSA_ERROR_DOES_NOT_EXIST;\n    }\n"
     "    if (status != PSA_ERROR_DOES_NOT_EXIST) {\n"),
    (SLOTS, "    *key_id = volatile_key_id_of_index(slice_idx, slot_idx);\n",
     "    *key_id = MUTANT(\"placement\") ? (psa_key_id_t) (0x1000 + slot_idx) :\n"
     "              volatile_key_id_of_index(slice_idx, slot_idx);\n"),
    (CORE, "        status = psa_free_key_slot(slice_index, slot);\n",
     "        status = MUTANT(\"free-list\") ? PSA_SUCCESS : psa_free_key_slot(slice_index, slot);\n"),
    (STORAGE, "    psa_format_key_data_for_storage(data, data_length, attr, storage_data);\n",
     "    psa_format_key_data_for_storage(data, data_length, attr, storage_data);\n"
     "    if (MUTANT(\"storage\")) {\n        storage_data[storage_data_length - 1] ^= 1;\n    }\n"),
    (CORE, "        status = psa_destroy_persistent_key(slot->attr.id);\n",
     "        status = MUTANT(\"survive\") ? PSA_SUCCESS : "
     "psa_destroy_persistent_key(slot->attr.id);\n"),
]
# mutation -> what the driver must print
FIRES = {
    "filling": "left FILLING at quiescence",
    "pending": "left PENDING_DELETION at quiescence",
    "readers": "registered readers at quiescence",
    "duplicate": "two FULL slots hold key id",
    "placement": "holds volatile id 0x1",
    "free-list": "on the free list",
    "storage": "material differs from storage",
}
MIX = "import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3"


@pytest.fixture(scope="module")
def guarded_build():
    return mutant_build("plain", *[(path, *GUARD) for path in (SLOTS, CORE, STORAGE)],
                        *MUTATIONS)


def _drive(build, directory, mutant=None, extra=()):
    env = dict(os.environ)
    env.pop("PSA_STRESS_MUTANT", None)
    if mutant:
        env["PSA_STRESS_MUTANT"] = mutant
    command = [build.driver(), "--threads", "4", "--ops", "6000", "--seed", "5", "--mix", MIX,
               "--persistent-ids", "4", "--persistent-percent", "50",
               "--history", str(directory / "history.jsonl"),
               "--storage-dir", str(directory / "storage"), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_mutant_build_is_clean_with_no_mutation_active(guarded_build, tmp_path):
    done = _drive(guarded_build, tmp_path, extra=["--barrier-every", "100"])
    assert done.returncode == 0, done.stderr
    assert "invariant violated" not in done.stderr
    assert final_state.check_file(str(tmp_path / "history.jsonl")) == []


@pytest.mark.slow
@pytest.mark.parametrize("mutant", sorted(FIRES))
def test_inside_invariant_fires_on_its_mutant(guarded_build, tmp_path, mutant):
    # barriers check many times per run, so a violation the run later repairs is seen too
    done = _drive(guarded_build, tmp_path, mutant, extra=["--barrier-every", "100"])
    assert done.returncode == INVARIANT_EXIT_CODE, done.stderr[-2000:]
    assert "invariant violated: " in done.stderr
    assert FIRES[mutant] in done.stderr, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["invariants"] == "violated"


@pytest.mark.slow
def test_barrier_catches_a_violation_during_the_run(guarded_build, tmp_path):
    done = _drive(guarded_build, tmp_path, "pending", extra=["--barrier-every", "50"])
    assert done.returncode == INVARIANT_EXIT_CODE
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["barriers"] > 0
    # the end-of-run check reports once; barriers add more reports of the same violation
    assert done.stderr.count("left PENDING_DELETION") > 1


@pytest.mark.slow
def test_key_surviving_destroy_fails_the_final_state(guarded_build, tmp_path):
    _drive(guarded_build, tmp_path, "survive")
    problems = final_state.check_file(str(tmp_path / "history.jsonl"))
    assert any("is live in the core after" in problem for problem in problems), problems


@pytest.mark.slow
def test_runner_reports_an_invariant_failure(guarded_build, tmp_path, monkeypatch):
    monkeypatch.setenv("PSA_STRESS_MUTANT", "readers")
    result = run_scenario(guarded_build, catalog.get("persistent-collide"), seed=3, seconds=1,
                          directory=str(tmp_path))
    kinds = [failure.kind for failure in result.failures]
    assert "invariant" in kinds, result.failures
    assert any("registered readers" in f.message for f in result.failures)


def test_stock_barrier_run_is_clean(tmp_path):
    done = _drive(stock_build("tsan"), tmp_path, extra=["--barrier-every", "100"])
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["invariants"] == "ok" and summary["barriers"] > 10


# ---- final_state on hand-made histories ----

HEADER = {"format": "psa-stress-history", "version": 1, "key_store": {"kind": "dynamic",
                                                                      "slot_count": 32},
          "threads": 2}
KEY = {"lifetime": 1, "id": 7, "type": 4608, "bits": 128, "usage": 3, "alg": 0,
       "material": "00" * 16}


def _history(tmp_path, records, live, kind="dynamic"):
    header = dict(HEADER, key_store={"kind": kind, "slot_count": 32})
    lines = [header] + records + [{"end": {"records": len(records), "complete": True,
                                           "live": live}}]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def _import(thread, seq, call, ret, status="SUCCESS"):
    record = {"thread": thread, "seq": seq, "op": "import", "call": call, "ret": ret,
              "status": status, "args": KEY}
    if status == "SUCCESS":
        record["out"] = {"key": 7}
    return record


def _destroy(thread, seq, call, ret):
    return {"thread": thread, "seq": seq, "op": "destroy", "call": call, "ret": ret,
            "status": "SUCCESS", "args": {"key": 7}}


def test_final_state_accepts_the_settled_live_set(tmp_path):
    path = _history(tmp_path, [_import(0, 0, 1, 2)], [7])
    assert final_state.check_file(path) == []


def test_final_state_flags_a_lost_key(tmp_path):
    path = _history(tmp_path, [_import(0, 0, 1, 2)], [])
    assert "neither in a key slot nor in storage" in final_state.check_file(path)[0]


def test_final_state_flags_a_key_surviving_destroy(tmp_path):
    path = _history(tmp_path, [_import(0, 0, 1, 2), _destroy(1, 0, 3, 4)], [7])
    assert "is live in the core after" in final_state.check_file(path)[0]


def test_final_state_leaves_overlapping_calls_unjudged(tmp_path):
    records = [_import(0, 0, 1, 4), _destroy(1, 0, 2, 3)]   # destroy inside the import
    for live in ([7], []):
        assert final_state.check_file(_history(tmp_path, records, live)) == []


def test_final_state_flags_a_key_nobody_created(tmp_path):
    path = _history(tmp_path, [_import(0, 0, 1, 2)], [7, 9])
    assert "no call of the history created it" in final_state.check_file(path)[0]


def test_insufficient_memory_needs_the_static_store(tmp_path):
    records = [_import(0, 0, 1, 2, "INSUFFICIENT_MEMORY")]
    assert "INSUFFICIENT_MEMORY" in final_state.check_file(_history(tmp_path, records, []))[0]
    assert final_state.check_file(_history(tmp_path, records, [], kind="static")) == []
