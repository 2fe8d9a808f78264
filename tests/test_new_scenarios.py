"""init-storm and full-cache-pinned: what they reach, that they stay clean on the stock tree, and
that each catches a bug of a mutated tree that the older scenario of its family, run the same
way, misses.

Every run here is by op count under a serialised engine (--sched random) with a fixed seed: the
interleaving, hence the verdict, is the same on every machine and at any load.
"""
import collections
import json
import os

import pytest

from scenarios import catalog
from scenarios.campaign import runner
from scenarios.setup.build import ensure_built
from scenarios.setup.source import check_tree
from tests.stress_env import mutated_copy, quiet, run_lines, stock_build

RANDOM = ["--sched", "random"]
OPS = 12_000

# psa_crypto_init's early way out asks only whether the key slots are set up: a worker whose
# init races another's returns SUCCESS before the random generator is seeded, and its generate
# fails BAD_STATE. One race at start rarely lands in that window; thousands of them do.
EARLY_INIT_RETURN = (
    "library/psa_crypto.c",
    "    if (psa_get_initialized()) {\n        return PSA_SUCCESS;\n    }\n",
    "    mbedtls_mutex_lock(&mbedtls_threading_psa_globaldata_mutex);\n"
    "    int slots_ready = global_data.initialized & PSA_CRYPTO_SUBSYSTEM_KEY_SLOTS_INITIALIZED;\n"
    "    mbedtls_mutex_unlock(&mbedtls_threading_psa_globaldata_mutex);\n"
    "    if (slots_ready) {\n        return PSA_SUCCESS;\n    }\n")

# When every slot of the cache has readers, the slot search recycles the first one anyway
# (a pinned key is wiped under its readers). Only a cache full of pinned keys reaches it: a
# cache full of volatile keys (eviction-mixed) still has slots without readers.
_SEARCH = (
    '    selected_slot = unused_persistent_key_slot = NULL;\n'
    '    for (slot_idx = 0; slot_idx < PERSISTENT_KEY_CACHE_COUNT; slot_idx++) {\n'
    '        psa_key_slot_t *slot = get_key_slot(KEY_SLOT_CACHE_SLICE_INDEX, slot_idx);\n'
    '        if (slot->state == PSA_SLOT_EMPTY) {\n'
    '            selected_slot = slot;\n'
    '            break;\n'
    '        }\n'
    '\n'
    '        if ((unused_persistent_key_slot == NULL) &&\n'
    '            (slot->state == PSA_SLOT_FULL) &&\n'
    '            (!psa_key_slot_has_readers(slot)) &&\n'
    '            (!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime))) {\n'
    '            unused_persistent_key_slot = slot;\n'
    '        }\n'
    '    }\n')
PINNED_CACHE_RECYCLED = (
    "library/psa_crypto_slot_management.c", _SEARCH,
    _SEARCH.replace(
        "    selected_slot = unused_persistent_key_slot = NULL;\n",
        "    selected_slot = unused_persistent_key_slot = NULL;\n    size_t busy = 0;\n").replace(
        "            unused_persistent_key_slot = slot;\n        }\n    }\n",
        "            unused_persistent_key_slot = slot;\n        }\n"
        "        busy += psa_key_slot_has_readers(slot);\n    }\n"
        "    if (selected_slot == NULL && busy == PERSISTENT_KEY_CACHE_COUNT) {\n"
        "        unused_persistent_key_slot = get_key_slot(KEY_SLOT_CACHE_SLICE_INDEX, 0);\n"
        "    }\n"))


def run(build, name, tmp_path, seed, ops=OPS, extra=RANDOM):
    scenario = catalog.get(name)
    return runner.run_scenario(build, scenario, seed, 60, str(tmp_path / f"{name}-{seed}"),
                               ops=ops, extra=extra)


def statuses(directory):
    """Counter of (op, status) over a run's history."""
    return collections.Counter((line["op"], line["status"]) for line in run_lines(directory)
                               if "op" in line)


def end_line(directory):
    """The driver's end line (end.json: the run.py reader keeps only records and complete)."""
    with open(os.path.join(directory, runner.HISTORY, "end.json"), encoding="utf-8") as handle:
        return json.load(handle)["end"]


# ---- the stock tree: clean, and the states are reached ----

@pytest.mark.parametrize("engine", catalog.ENGINES)
def test_init_storm_is_clean_and_reinitialises_under_every_engine(tmp_path, engine):
    result = run(stock_build("tsan"), "init-storm", tmp_path, seed=5, ops=4000,
                 extra=["--sched", engine])
    assert result.failures == [], result.failures
    threads = catalog.get("init-storm").threads
    end = end_line(result.directory)
    assert end["reinits"] >= 10 and end["barriers"] == end["reinits"]
    counts = statuses(result.directory)
    # every worker's first init, then at least one after each free, and every init succeeds
    assert counts[("init", "SUCCESS")] >= threads + end["reinits"]
    assert {status for op, status in counts if op == "init"} == {"SUCCESS"}


@pytest.mark.parametrize("engine", catalog.ENGINES)
def test_full_cache_pinned_is_clean_under_every_engine(tmp_path, engine):
    result = run(stock_build("tsan-static16"), "full-cache-pinned", tmp_path, seed=5, ops=4000,
                 extra=["--sched", engine])
    assert result.failures == [], result.failures


@pytest.mark.parametrize("engine", ["pct", "random"])
def test_full_cache_pinned_lookups_of_present_keys_find_no_slot(tmp_path, engine):
    """Serialised, so the pinners' share of the run is the seed's, not the machine's."""
    result = run(stock_build("tsan-static16"), "full-cache-pinned", tmp_path, seed=5, ops=4000,
                 extra=["--sched", engine])
    assert result.failures == [], result.failures
    counts = statuses(result.directory)
    for lookup in ("export", "get_attributes", "open", "copy", "import"):
        assert counts[(lookup, "INSUFFICIENT_MEMORY")] > 0, counts
    for lookup in ("export", "get_attributes", "open"):
        assert counts[(lookup, "SUCCESS")] > 0, counts


def test_reinit_flags_are_checked(tmp_path):
    build = stock_build("tsan")
    scenario = catalog.get("init-storm")
    for extra, words in ((["--mix", "derive=1,export=1"], "cannot have derive"),
                         (["--barrier-every", "5"], "mutually exclusive"),
                         (["--pinners", "1"], "cannot be combined")):
        result = runner.run_scenario(build, scenario, 1, 5, str(tmp_path / words[:6]), ops=100,
                                     extra=extra)
        assert [f.kind for f in result.failures] == ["driver-error"], result.failures
        assert words in result.failures[0].message + result.failures[0].details


# ---- known-bad trees: the new scenario catches, the old one run the same way does not ----

def mutant_build(tmp_path, mutation, variant):
    tree = check_tree(mutated_copy(tmp_path / "mbedtls", *mutation), "--mbedtls-dir")
    return ensure_built(variant, tree, log=quiet)


@pytest.mark.slow
def test_init_storm_catches_an_early_init_return_and_init_race_does_not(tmp_path):
    build = mutant_build(tmp_path, EARLY_INIT_RETURN, "tsan")
    for seed in (1, 2, 3):
        old = run(build, "init-race", tmp_path, seed)
        assert old.failures == [], old.failures
    new = run(build, "init-storm", tmp_path, seed=1)
    assert [f.kind for f in new.failures] == ["violation"], new.failures
    assert "generate returned BAD_STATE" in new.failures[0].message


@pytest.mark.slow
def test_full_cache_pinned_catches_a_pinned_slot_recycled_and_eviction_scenarios_do_not(
        tmp_path):
    build = mutant_build(tmp_path, PINNED_CACHE_RECYCLED, "tsan-static16")
    for name in ("eviction-storm", "eviction-mixed"):
        for seed in (1, 2):
            old = run(build, name, tmp_path, seed)
            assert old.failures == [], (name, old.failures)
    new = run(build, "full-cache-pinned", tmp_path, seed=1)
    violations = [f for f in new.failures if f.kind == "violation"]
    assert violations and "CORRUPTION_DETECTED" in violations[0].message, new.failures


@pytest.mark.slow
def test_a_pinner_reports_a_status_its_release_may_not_return(tmp_path):
    """The pinners' own oracle (harness/nemesis/pinner.h), seen without TSan's exit code in front."""
    build = mutant_build(tmp_path, PINNED_CACHE_RECYCLED, "plain-static16")
    result = run(build, "full-cache-pinned", tmp_path, seed=1)
    invariants = [f for f in result.failures if f.kind == "invariant"]
    assert invariants and "a pinner's release of persistent id" in invariants[0].message, \
        result.failures
