"""The key-store configuration in the header decides whether INSUFFICIENT_MEMORY is legitimate."""
import random

from scenarios.checker import final_state
from scenarios.checker.final_state import config_problems
from scenarios.history.reader import CREATE_OPS, Call, History


def _history(kind, faults_spec):
    header = {"format": "psa-stress-history", "version": 1,
              "key_store": {"kind": kind, "slot_count": 16},
              "faults": {"spec": faults_spec, "mutex_failures": 0, "alloc_failures": 0}}
    oom = Call(0, 0, "import", 1, 2, "INSUFFICIENT_MEMORY", {"lifetime": 0, "id": 0}, {}, 2)
    return History("h.jsonl", header, [oom], True)


def test_oom_in_the_dynamic_store_without_faults_is_a_problem():
    problems = config_problems(_history("dynamic", None))
    assert len(problems) == 1 and "INSUFFICIENT_MEMORY" in problems[0]


def test_oom_is_legitimate_in_the_static_store_or_under_injected_faults():
    assert config_problems(_history("static", None)) == []
    assert config_problems(_history("dynamic", "alloc=0.01")) == []


def test_the_model_says_which_operations_create_or_remove():
    """Asked of the model: creates create, destroys and volatile closes remove, reads do
    nothing (so the binary scan skips them)."""
    assert ("create", "created") in final_state.roles("import", "SUCCESS", False)
    assert ("create", "created") in final_state.roles("copy", "SUCCESS", True)
    assert ("remove-certain", "key") in final_state.roles("destroy", "SUCCESS", True)
    assert ("remove-certain", "key") in final_state.roles("close", "SUCCESS", False)
    assert final_state.roles("close", "SUCCESS", True) == ()      # drops the cached copy only
    for op in ("export", "get_attributes", "sign", "export_public", "purge"):
        assert final_state.roles(op, "SUCCESS", False) == ()
    assert final_state.roles("import", "INVALID_ARGUMENT", False) == ()


def _reference(events):
    """The definition, quadratic: present iff some completed create was invoked after every
    removal returned; absent iff some completed certain removal was invoked after every
    create returned."""
    found = {}
    for key in {e[4] if e[0] in CREATE_OPS else e[3] for e in events}:
        creates = [e for e in events if e[0] in CREATE_OPS and e[4] == key]
        removals = [e for e in events if e[0] == "destroy" and e[3] == key]
        if any(c[6] and all(r[6] and r[6] < c[5] for r in removals) for c in creates):
            found[key] = "present"
        elif any(r[6] and all(c[6] and c[6] < r[5] for c in creates) for r in removals):
            found[key] = "absent"
    return found


def _random_events(rng, calls, keys):
    stamps = list(range(1, 2 * calls + 1))
    rng.shuffle(stamps)
    events = []
    for index in range(calls):
        call, ret = sorted(stamps[2 * index:2 * index + 2])
        key = rng.randrange(1, keys + 1)
        ret = None if rng.random() < 0.05 else ret
        status = None if ret is None else "SUCCESS"
        if rng.random() < 0.5:
            events.append(("import", status, True, 0, key, call, ret, 0, index))
        else:
            events.append(("destroy", status, True, key, None, call, ret, 0, index))
    return events


def test_settling_agrees_with_the_definition_on_random_histories():
    rng = random.Random(7)
    for _ in range(300):
        events = _random_events(rng, rng.randrange(1, 12), 3)
        settled = {k: v[0] for k, v in final_state._settle(events).items() if v[0]}
        assert settled == _reference(events), events


def test_settling_is_linear_in_the_calls_of_one_key():
    """200 000 creates and destroys of one key, each overlapping the next: quadratic settling
    would take minutes; the one-pass settle takes well under a second (not timed here: the
    suite asserts the verdict, bench/bench_final_state.py measures)."""
    events = []
    for index in range(100_000):
        stamp = 4 * index + 1
        events.append(("import", "SUCCESS", True, 0, 5, stamp, stamp + 3, 0, 2 * index))
        events.append(("destroy", "SUCCESS", True, 5, None, stamp + 2, stamp + 5, 1, index))
    settled = final_state._settle(events)
    assert settled[5] == (None, "")
    events.append(("import", "SUCCESS", True, 0, 5, 10**7, 10**7 + 1, 0, 10**6))
    assert final_state._settle(events)[5][0] == "present"
