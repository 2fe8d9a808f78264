"""scenarios/model/key_store.py: PSA rules, static checks, copy candidates and read-only exports."""
import json
import os

import pytest

from scenarios.checker import check
from scenarios.model import crypto_ref
from scenarios.model import key_store as model
from scenarios.model import key_use as model_use
from scenarios.history import reader as history_reader
from scenarios.checker.check import check_history
from scenarios.history.reader import parse
from scenarios.model import operations
from scenarios.model.operations import KeyStoreModel, static_problem

VOL = 0x40000000
K1, K2, K3 = VOL + 1, VOL + 2, VOL + 3
AES, CTR = 0x2400, 0x04C01000
A, B, C = "aa" * 16, "bb" * 16, "cc" * 16


def batch_partition(calls):
    """[(key id, [KeyOp])] of a whole history at once, smallest first: the per-key split the
    streaming check (checker/streaming.py) makes call by call, done in one batch here to look at
    the ops of one key. A pending volatile create is an optional create of every volatile id."""
    parts, creates, killers, wildcards = {}, {}, {}, []
    for call in calls:
        for op in operations.key_ops(call):
            if op.key is None:
                wildcards.append(op)
                continue
            parts.setdefault(op.key, []).append(op)
            if op.rule is model.rule_create:
                creates.setdefault(op.key, []).append(op)
            if op.ret is not None and op.rule in (model.rule_create, model.rule_destroy):
                killers.setdefault(op.key, []).append((op.call, op.ret))
    for key, ops in parts.items():
        if model.VOLATILE_MIN <= key <= model.VOLATILE_MAX:
            for wildcard in wildcards:
                op = model.KeyOp(wildcard.source, key, model.rule_create, wildcard.role)
                if wildcard.source.op != "copy":
                    op.descs = frozenset((model.plain_desc(wildcard.source, key),))
                ops.append(op)
                creates.setdefault(key, []).append(op)
    sources = operations.Sources(creates, killers)
    for ops in parts.values():
        ops.sort(key=lambda op: op.call)
        for op in ops:
            if op.rule is model.rule_create:
                sources.descs(op)
        model.mark_read_only_exports(ops)
    return sorted(parts.items(), key=lambda item: (len(item[1]), item[0]))


def attrs(lifetime=0, id=0, usage=3, alg=CTR, bits=128, type=AES):
    return {"lifetime": lifetime, "id": id, "type": type, "bits": bits, "usage": usage,
            "alg": alg}


def imp(material, **kw):
    return "import", dict(attrs(**kw), material=material)


def copy(src, lifetime=0, id=0, usage=3, alg=CTR):
    return "copy", {"src": src, "lifetime": lifetime, "id": id, "usage": usage, "alg": alg}


def on(op, key):
    return op, {"key": key}


def history(*steps, complete=True):
    """steps: (thread, call, ret, (op, args), status, out)."""
    seqs, records = {}, []
    for thread, call, ret, (op, args), status, out in sorted(steps, key=lambda s: s[1]):
        seqs[thread] = seqs.get(thread, -1) + 1
        record = {"thread": thread, "seq": seqs[thread], "op": op, "call": call, "ret": ret,
                  "status": status, "args": args}
        if out is not None:
            record["out"] = out
        records.append(record)
    header = {"format": "psa-stress-history", "version": 1, "threads": 8,
              "key_store": {"kind": "static", "slot_count": 32}}
    end = {"end": {"records": len(records), "complete": complete}}
    return parse([json.dumps(obj) for obj in (header, *records, end)])


def verdict(*steps, complete=True):
    return check_history(history(*steps, complete=complete)).verdict


def single_call(op_args, status, out=None, ret=2):
    return history((0, 1, ret, op_args, status, out)).calls[0]


@pytest.mark.parametrize("op_args, status, out, words", [
    (on("export", K1), "CORRUPTION_DETECTED", None, "must never surface"),
    (on("destroy", K1), "GENERIC_ERROR", None, "must never surface"),
    (on("get_attributes", K1), "BAD_STATE", None, "must never surface"),
    (on("export", K1), "DOES_NOT_EXIST", None, "must never surface"),
    (on("get_attributes", K1), "NOT_PERMITTED", None, "not a legitimate result"),
    (on("export", K1), "STATUS(-123)", None, "not a legitimate result"),
    (imp(A), "ALREADY_EXISTS", None, "not a legitimate result"),
    (imp(A), "INVALID_HANDLE", None, "not a legitimate result"),
    (imp(A, lifetime=1, id=5), "SUCCESS", {"key": 6}, "returned key 0x6"),
    (imp(A), "SUCCESS", {"key": 5}, "outside the volatile range"),
    (imp(A, id=5), "SUCCESS", {"key": K1}, "non-zero id"),
    (imp(A, lifetime=1, id=VOL + 9), "SUCCESS", {"key": VOL + 9}, "outside the user range"),
])
def test_static_problems(op_args, status, out, words):
    assert words in static_problem(single_call(op_args, status, out))


@pytest.mark.parametrize("op_args, status, out", [
    (imp(A, lifetime=1, id=5), "ALREADY_EXISTS", None),
    (copy(K1), "INVALID_HANDLE", None),
    (("generate", attrs()), "INSUFFICIENT_ENTROPY", None),
    (on("export", K1), "BUFFER_TOO_SMALL", None),
    (on("destroy", K1), "STORAGE_FAILURE", None),
    (imp(A), "SUCCESS", {"key": K1}),
    (imp(A, lifetime=1, id=5), "SUCCESS", {"key": 5}),
])
def test_legitimate_results_have_no_static_problem(op_args, status, out):
    assert static_problem(single_call(op_args, status, out)) is None


def test_static_violation_is_reported_and_the_call_left_out_of_the_search():
    result = check_history(history((0, 1, 2, imp(A), "SUCCESS", {"key": K1}),
                                   (0, 3, 4, on("destroy", K1), "SERVICE_FAILURE", None),
                                   (0, 5, 6, on("export", K1), "SUCCESS", {"material": A})))
    assert [v.kind for v in result.violations] == ["static"]
    assert result.partitions_ok == 1


def test_persistent_and_volatile_keys_report_extended_usage():
    """psa_set_key_usage_flags extends SIGN_HASH to SIGN_MESSAGE for every key (crypto_struct.h);
    the real driver's volatile ECC keys report 0x1c00 for a requested 0x1800."""
    sign = dict(usage=0x1001, alg=0x06000609, type=0x7112, bits=256)
    persistent = (0, 1, 2, imp(A, lifetime=1, id=3, **sign), "SUCCESS", {"key": 3})
    volatile = (0, 1, 2, imp(A, **sign), "SUCCESS", {"key": K1})
    seen_p = (1, 3, 4, on("get_attributes", 3), "SUCCESS",
              attrs(lifetime=1, id=3, **dict(sign, usage=0x1401)))
    seen_v = (1, 3, 4, on("get_attributes", K1), "SUCCESS",
              attrs(lifetime=0, id=K1, **dict(sign, usage=0x1401)))
    assert verdict(persistent, seen_p) == "ok"
    assert verdict(volatile, seen_v) == "ok"
    seen_other = (1, 3, 4, on("get_attributes", K1), "SUCCESS",
                  attrs(lifetime=0, id=K1, **dict(sign, usage=0x2401)))
    assert verdict(volatile, seen_other) == "violation"


def test_copy_of_a_source_destroyed_before_the_copy_started_is_rejected_on_both_sides():
    result = check_history(history((0, 1, 2, imp(A), "SUCCESS", {"key": K1}),
                                   (0, 3, 4, on("destroy", K1), "SUCCESS", None),
                                   (1, 5, 6, copy(K1), "SUCCESS", {"key": K2})))
    messages = {v.key: v.message for v in result.violations}
    assert "the source is absent" in messages[K1]
    assert "no candidate source instance could have been copied" in messages[K2]


def test_copy_candidates_are_every_instance_that_may_be_live():
    """The source is destroyed and re-imported during the copy: either instance may be
    copied, a third material is impossible."""
    steps = [(0, 1, 2, imp(A), "SUCCESS", {"key": K1}),
             (1, 3, 20, copy(K1), "SUCCESS", {"key": K2}),
             (0, 4, 5, on("destroy", K1), "SUCCESS", None),
             (0, 6, 7, imp(B), "SUCCESS", {"key": K1})]
    result = batch_partition(history(*steps).calls)
    destination = dict(result)[K2][0]
    assert {d[-1] for d in destination.descs} == {A, B}
    for material, expected in ((A, "ok"), (B, "ok"), (C, "violation")):
        export = (1, 21, 22, on("export", K2), "SUCCESS", {"material": material})
        assert verdict(*steps, export) == expected


def test_copy_policy_is_the_intersection():
    steps = [(0, 1, 2, imp(A, usage=0x3, alg=CTR), "SUCCESS", {"key": K1}),
             (0, 3, 4, copy(K1, usage=0x1, alg=0), "SUCCESS", {"key": K2})]

    def shown(usage, alg):
        return (0, 5, 6, on("get_attributes", K2), "SUCCESS",
                attrs(id=K2, usage=usage, alg=alg))
    assert verdict(*steps, shown(0x1, 0)) == "ok"
    assert verdict(*steps, shown(0x1, CTR)) == "violation"
    assert verdict(*steps, shown(0x3, 0)) == "violation"


@pytest.mark.parametrize("usage, status, expected", [
    (0x1, "NOT_PERMITTED", "ok"), (0x3, "NOT_PERMITTED", "violation"),
    (0x3, "INVALID_HANDLE", "violation"), (0x1, "SUCCESS", "violation"),
])
def test_copy_source_side_rules(usage, status, expected):
    out = {"key": K2} if status == "SUCCESS" else None
    assert verdict((0, 1, 2, imp(A, usage=usage), "SUCCESS", {"key": K1}),
                   (0, 3, 4, copy(K1), status, out)) == expected


def test_export_needs_export_usage():
    created = (0, 1, 2, imp(A, usage=0x2), "SUCCESS", {"key": K1})
    assert verdict(created, (0, 3, 4, on("export", K1), "NOT_PERMITTED", None)) == "ok"
    assert verdict(created, (0, 3, 4, on("export", K1), "SUCCESS", {"material": A})) == \
        "violation"


def test_derived_material_is_hkdf_sha256():
    # RFC 5869 test case 1, first 16 bytes of the OKM
    derive = ("derive", dict(attrs(), kdf="HKDF-SHA256", secret="0b" * 22,
                             salt="000102030405060708090a0b0c", info="f0f1f2f3f4f5f6f7f8f9"))
    created = (0, 1, 2, derive, "SUCCESS", {"key": K1})
    good = "3cb25f25faacd57a90434f64d0362f2a"
    assert verdict(created, (0, 3, 4, on("export", K1), "SUCCESS", {"material": good})) == "ok"
    assert verdict(created, (0, 3, 4, on("export", K1), "SUCCESS", {"material": A})) == \
        "violation"


def test_a_derived_p256_private_key_is_drawn_again_above_the_order():
    """psa_generate_derived_ecc_key_weierstrass_helper: k > n - 2 is drawn again; key = k + 1."""
    n = crypto_ref.N
    def stream(*draws):
        data = b"".join(k.to_bytes(32, "big") for k in draws)
        return lambda length: data[:length]
    assert crypto_ref.derived_private_key(stream(n - 2), 32) == (n - 1).to_bytes(32, "big")
    assert crypto_ref.derived_private_key(stream(0), 32) == (1).to_bytes(32, "big")
    again = crypto_ref.derived_private_key(stream(n - 1, 2 ** 256 - 1, 5), 96)
    assert again == (6).to_bytes(32, "big")
    assert crypto_ref.derived_private_key(stream(n - 1, n), 64) is None   # the stream ran out


def test_pending_volatile_create_may_have_made_any_volatile_key():
    pending = (0, 1, None, imp(A), None, None)
    export = (1, 2, 3, on("export", K3), "SUCCESS", {"material": A})
    assert verdict(pending, export, complete=False) == "ok"
    assert verdict((0, 1, None, imp(B), None, None), export, complete=False) == "violation"


def test_exports_are_read_only_only_when_they_cannot_bind_material():
    steps = [(0, 1, 2, ("generate", attrs()), "SUCCESS", {"key": K1}),
             (1, 3, 6, on("export", K1), "SUCCESS", {"material": A}),
             (2, 4, 7, on("export", K1), "SUCCESS", {"material": A}),
             (1, 8, 9, on("export", K1), "SUCCESS", {"material": A}),
             (0, 10, 11, imp(B), "SUCCESS", {"key": K2}),
             (0, 12, 13, on("export", K2), "SUCCESS", {"material": B})]
    parts = dict(batch_partition(history(*steps).calls))
    exports = [op for op in parts[K1] if op.source.op == "export"]
    assert [op.readonly for op in exports] == [False, False, True]
    assert [op.readonly for op in parts[K2] if op.source.op == "export"] == [True]


def test_pending_create_of_a_present_persistent_key_is_optional():
    assert verdict((0, 1, 2, imp(A, lifetime=1, id=4), "SUCCESS", {"key": 4}),
                   (1, 3, None, imp(B, lifetime=1, id=4), None, None),
                   (0, 4, 5, on("export", 4), "SUCCESS", {"material": A}),
                   complete=False) == "ok"


def test_describe_state_and_explain_name_the_key():
    model = KeyStoreModel()
    parts = dict(batch_partition(history((0, 1, 2, imp(A), "SUCCESS", {"key": K1}),
                                         (0, 3, 4, on("export", K1), "SUCCESS",
                                          {"material": B})).calls))
    create, export = parts[K1]
    state = model.step(model.init(), create)[0]
    assert model.step(state, export) == ()
    assert "material=aaaa" in model.describe_state(state)
    assert model.describe_state(model.init()) == "ABSENT"
    assert "export(0x40000001) -> SUCCESS" in model.explain(state, export)


# ---- key use, the key cache, export_public, derive_from (scenarios/model/key_use.py) -------------
# Hand-made histories tests/histories/cov_*: each "ok" one must be linearizable and each
# "violation" one must be reported, with the reason named here.

COV_HISTORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "histories")
COV_VIOLATIONS = {
    "cov_violation_aead_bad_tag_accepted": "yields this output",
    "cov_violation_cipher_wrong_output": "yields this output",
    "cov_violation_close_survives": "no present key has attributes",
    "cov_violation_derive_from_wrong_material": "no present key has EXPORT usage and material",
    "cov_violation_export_public_other_key": "has this public key",
    # generated key pairs: the model binds their public key from signatures and export_public
    "cov_violation_generated_export_other_scalar": "no present key has EXPORT usage",
    "cov_violation_generated_signature_other_public": "has this public key",
    "cov_violation_generated_signed_by_two_keys": "a public key under which the signature",
    "cov_violation_mac_after_destroy": "yields this output",
    "cov_violation_mac_denied_with_flag": "policy allows this use",
    "cov_violation_mac_wrong_material": "yields this output",
    "cov_violation_multipart_fails_after_setup": "must keep its own copy of the key",
    "cov_violation_purge_volatile_present": "the key is present",
    "cov_violation_sign_other_key": "yields this output",
}
COV_OK = sorted(name[:-6] for name in os.listdir(COV_HISTORIES) if name.startswith("cov_ok_"))


@pytest.mark.parametrize("name", COV_OK)
def test_cov_linearizable_history_is_accepted(name):
    result = check.check_file(os.path.join(COV_HISTORIES, name + ".jsonl"))
    assert result.verdict == "ok", check.format_text(result)


@pytest.mark.parametrize("name", sorted(COV_VIOLATIONS))
def test_cov_violation_is_reported_with_its_reason(name):
    result = check.check_file(os.path.join(COV_HISTORIES, name + ".jsonl"))
    assert result.verdict == "violation"
    assert COV_VIOLATIONS[name] in check.format_text(result)


def test_cov_every_violation_history_is_listed():
    names = {n[:-6] for n in os.listdir(COV_HISTORIES) if n.startswith("cov_violation_")}
    assert names == set(COV_VIOLATIONS)


def test_every_driver_operation_has_a_model_row():
    """history.OPS (what the reader accepts) and the model's legitimate statuses agree."""
    legitimate = set(model.LEGITIMATE) | set(model_use.LEGITIMATE)
    assert set(history_reader.OPS) == legitimate


def test_usage_flags_are_extended_like_psa_set_key_usage_flags():
    """crypto_struct.h: SIGN_HASH implies SIGN_MESSAGE, VERIFY_HASH implies VERIFY_MESSAGE, for
    every key: the key reports the implied flag, never the bare one."""
    assert model.reported_usages(0x1000, 0) == frozenset((0x1400,))
    assert model.reported_usages(0x2001, 1) == frozenset((0x2801,))
    assert model.reported_usages(0x3, 0) == frozenset((0x3,))


@pytest.mark.parametrize("usage, shown, expected", [
    (0x1001, 0x1401, "ok"), (0x1001, 0x1001, "violation"),
    (0x2001, 0x2801, "ok"), (0x2001, 0x2001, "violation")])
def test_a_key_without_its_implied_usage_flag_is_a_violation(usage, shown, expected):
    sign = dict(alg=0x06000609, type=0x7112, bits=256)
    create = (0, 1, 2, imp(A, usage=usage, **sign), "SUCCESS", {"key": K1})
    seen = (1, 3, 4, on("get_attributes", K1), "SUCCESS",
            attrs(lifetime=0, id=K1, usage=shown, **sign))
    assert verdict(create, seen) == expected


@pytest.mark.parametrize("status", ["INVALID_HANDLE", "NOT_PERMITTED"])
def test_outputs_on_a_failed_call_are_malformed_input(status):
    """docs/history-format.md: ``out`` only on SUCCESS; a failed export with bytes is rejected
    as a static problem (and its bytes never reach the search)."""
    create = (0, 1, 2, imp(A), "SUCCESS", {"key": K1})
    failed = (1, 3, 4, on("export", K1), status, {"material": A})
    result = check_history(history(create, failed))
    assert [v.kind for v in result.violations] == ["static"]
    assert "outputs only on SUCCESS" in result.violations[0].message
    assert verdict(create, (1, 3, 4, on("export", K1), "SUCCESS", {"material": A})) == "ok"
