"""The key-store configuration in the header decides whether INSUFFICIENT_MEMORY is legitimate."""
from scenarios import final_state
from scenarios.final_state import config_problems
from scenarios.history import Call, History


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


def test_only_operations_that_never_create_or_remove_are_skipped():
    """The pure-read shortcut must keep every operation with a create or remove rule (a volatile
    close destroys) and skip the reads."""
    reads = final_state._pure_reads()
    assert {"export", "get_attributes", "sign", "export_public"} <= reads
    assert not {"close", "destroy", "import", "generate", "copy", "derive"} & reads
