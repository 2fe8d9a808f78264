"""The mutation catalogue: small, realistic bugs injected into a COPY of an Mbed TLS 3.6.x tree.

Each mutant is one exact edit (``old`` must occur exactly once in ``path``; otherwise the mutant
does not apply to that tree and is refused). ``breaks`` names the property the bug violates
(docs/properties.md §2-§4) and ``oracles`` the oracle(s) expected to catch it:
``tsan`` (data race report), ``checker`` (linearizability / static status check),
``invariant`` (inside invariants at quiescence), ``crash`` (sanitizer abort or signal).
``scenarios`` lists where to look first and ``engines`` with which scheduling engines (the
portfolio tries each hinted scenario under each hinted engine, in order, before the default
suite under every engine).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    title: str
    path: str
    old: str
    new: str
    breaks: str
    oracles: tuple
    scenarios: tuple = ("volatile-churn",)
    engines: tuple = ("os",)


_LOCK = """#if defined(MBEDTLS_THREADING_C)
    PSA_THREADING_CHK_RET(mbedtls_mutex_lock(
                              &mbedtls_threading_key_slot_mutex));
#endif
"""
_UNLOCK = """#if defined(MBEDTLS_THREADING_C)
    PSA_THREADING_CHK_RET(mbedtls_mutex_unlock(
                              &mbedtls_threading_key_slot_mutex));
#endif
"""
_RESERVE = """    status = psa_reserve_free_key_slot(
        key_is_volatile ? &volatile_key_id : NULL,
        p_slot);
"""

MUTANTS = (
    Mutant("unlocked-reserve", "slot reservation in psa_start_key_creation without the mutex",
           "library/psa_crypto.c", _LOCK + _RESERVE + _UNLOCK, _RESERVE,
           "P1: slot state changes only under the key-slot mutex", ("tsan",)),
    Mutant("unlocked-unregister", "psa_unregister_read_under_mutex takes no mutex",
           "library/psa_crypto_slot_management.c",
           "    status = PSA_SUCCESS;\n    PSA_THREADING_CHK_RET(mbedtls_mutex_lock(\n"
           "                              &mbedtls_threading_key_slot_mutex));\n"
           "#endif\n    status = psa_unregister_read(slot);\n"
           "#if defined(MBEDTLS_THREADING_C)\n    PSA_THREADING_CHK_RET(mbedtls_mutex_unlock(\n"
           "                              &mbedtls_threading_key_slot_mutex));\n#endif\n",
           "    status = PSA_SUCCESS;\n#endif\n    status = psa_unregister_read(slot);\n",
           "P1: reader counts change only under the key-slot mutex", ("tsan",)),
    Mutant("volatile-search-any-state", "volatile lookup accepts FILLING/PENDING_DELETION slots",
           "library/psa_crypto_slot_management.c",
           "        if (slot != NULL &&\n            slot->state == PSA_SLOT_FULL &&\n",
           "        if (slot != NULL &&\n            slot->state != PSA_SLOT_EMPTY &&\n",
           "P3: lookups ignore FILLING and PENDING_DELETION slots", ("checker", "crash", "tsan")),
    Mutant("persistent-search-any-state", "persistent lookup accepts non-FULL slots",
           "library/psa_crypto_slot_management.c",
           "            if ((slot->state == PSA_SLOT_FULL) &&\n"
           "                (mbedtls_svc_key_id_equal(key, slot->attr.id))) {",
           "            if ((slot->state != PSA_SLOT_EMPTY) &&\n"
           "                (mbedtls_svc_key_id_equal(key, slot->attr.id))) {",
           "P3: lookups ignore FILLING and PENDING_DELETION slots", ("checker", "crash"),
           ("persistent-collide",)),
    Mutant("wipe-pending-with-readers", "the unregister of ANY reader wipes a PENDING_DELETION slot",
           "library/psa_crypto_slot_management.c",
           "    if ((slot->state == PSA_SLOT_PENDING_DELETION) &&\n"
           "        (slot->var.occupied.registered_readers == 1)) {",
           "    if ((slot->state == PSA_SLOT_PENDING_DELETION) &&\n"
           "        (slot->var.occupied.registered_readers >= 1)) {",
           "P3/P4: only the last reader wipes a slot", ("crash", "checker", "tsan"),
           # the wipe needs a destroy overlapping readers of its key: beyond-spec scenarios
           scenarios=("destroy-overlap", "key-use-vs-destroy")),
    Mutant("missing-reader-decrement", "psa_unregister_read forgets to decrement",
           "library/psa_crypto_slot_management.c",
           "        slot->var.occupied.registered_readers--;\n        return PSA_SUCCESS;",
           "        return PSA_SUCCESS;",
           "Q2: no registered readers at quiescence; destroyed keys are freed",
           ("invariant", "checker")),
    Mutant("evict-slot-with-readers", "eviction picks a persistent slot that has readers",
           "library/psa_crypto_slot_management.c",
           "            (slot->state == PSA_SLOT_FULL) &&\n"
           "            (!psa_key_slot_has_readers(slot)) &&\n",
           "            (slot->state == PSA_SLOT_FULL) &&\n",
           "P4: a slot with readers is never wiped", ("crash", "checker", "tsan"),
           ("eviction-storm", "persistent-collide")),
    Mutant("evict-volatile", "eviction may pick a volatile key (it is lost for good)",
           "library/psa_crypto_slot_management.c",
           "            (!psa_key_slot_has_readers(slot)) &&\n"
           "            (!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime))) {",
           "            (!psa_key_slot_has_readers(slot))) {",
           "H5: a live key never disappears (static store only)", ("checker",),
           ("eviction-mixed",)),
    Mutant("publish-before-save", "a new key is briefly FULL (visible) before it is saved",
           "library/psa_crypto.c",
           "#if defined(MBEDTLS_PSA_CRYPTO_STORAGE_C)\n"
           "    if (!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime)) {\n"
           "#if defined(MBEDTLS_PSA_CRYPTO_SE_C)\n        if (driver != NULL) {\n"
           "            psa_se_key_data_storage_t data;",
           "    slot->state = PSA_SLOT_FULL;\n"
           "    mbedtls_mutex_unlock(&mbedtls_threading_key_slot_mutex);\n"
           "    mbedtls_mutex_lock(&mbedtls_threading_key_slot_mutex);\n"
           "    slot->state = PSA_SLOT_FILLING;\n"
           "#if defined(MBEDTLS_PSA_CRYPTO_STORAGE_C)\n"
           "    if (!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime)) {\n"
           "#if defined(MBEDTLS_PSA_CRYPTO_SE_C)\n        if (driver != NULL) {\n"
           "            psa_se_key_data_storage_t data;",
           "P2/P3: a key becomes visible once, complete, at its linearization point",
           ("checker", "invariant")),
    Mutant("storage-remove-outside-lock", "destroy drops the mutex before removing the ITS file",
           "library/psa_crypto.c",
           "        status = psa_destroy_persistent_key(slot->attr.id);",
           "        mbedtls_mutex_unlock(&mbedtls_threading_key_slot_mutex);\n"
           "        status = psa_destroy_persistent_key(slot->attr.id);\n"
           "        mbedtls_mutex_lock(&mbedtls_threading_key_slot_mutex);",
           "A8: storage changes in the same critical section as the slot transition",
           ("checker", "tsan"), ("persistent-collide",)),
    Mutant("stale-slot-pointer", "a failed persistent load leaves *p_slot set (the stale-pointer bug class, fixed in 3.6.1)",
           "library/psa_crypto_slot_management.c",
           "    if (status != PSA_SUCCESS) {\n        *p_slot = NULL;\n    }\n",
           "",
           "A9: a thread unregisters only slots it registered", ("crash", "checker", "invariant"),
           ("key-use-vs-destroy", "lookup-missing")),
    Mutant("attributes-after-unregister", "psa_get_key_attributes copies after unregistering",
           "library/psa_crypto.c",
           "    *attributes = slot->attr;\n\n#if defined(MBEDTLS_PSA_CRYPTO_SE_C)\n"
           "    if (psa_get_se_driver_entry(slot->attr.lifetime) != NULL) {\n"
           "        psa_set_key_slot_number(attributes,\n"
           "                                psa_key_slot_get_slot_number(slot));\n"
           "    }\n#endif /* MBEDTLS_PSA_CRYPTO_SE_C */\n\n"
           "    return psa_unregister_read_under_mutex(slot);",
           "    status = psa_unregister_read_under_mutex(slot);\n"
           "    *attributes = slot->attr;\n    return status;",
           "use of slot data only while registered as a reader", ("tsan", "checker"),
           # the copy races a wipe only when a destroy overlaps it: a beyond-spec scenario
           scenarios=("destroy-overlap", "volatile-churn")),
    Mutant("double-destroy", "destroy no longer re-checks PENDING_DELETION (the double-destroy bug class)",
           "library/psa_crypto.c",
           "    if (slot->state == PSA_SLOT_PENDING_DELETION) {\n"
           "        /* Another thread has destroyed the key between us locking the slot",
           "    if (0) {\n"
           "        /* Another thread has destroyed the key between us locking the slot",
           "H3: of concurrent destroys of one key exactly one succeeds", ("checker",),
           ("persistent-collide", "volatile-churn")),
    Mutant("load-drops-lock", "persistent load releases the mutex between miss and FULL",
           "library/psa_crypto_slot_management.c",
           "    (*p_slot)->attr.id = key;\n",
           "    PSA_THREADING_CHK_RET(mbedtls_mutex_unlock(\n"
           "                              &mbedtls_threading_key_slot_mutex));\n"
           "    PSA_THREADING_CHK_RET(mbedtls_mutex_lock(\n"
           "                              &mbedtls_threading_key_slot_mutex));\n"
           "    (*p_slot)->attr.id = key;\n",
           "P5/P6: no key is loaded into two FULL slots", ("checker", "invariant"),
           ("persistent-collide", "eviction-storm")),
    Mutant("close-ignores-readers", "psa_close_key wipes a slot other threads are reading",
           "library/psa_crypto_slot_management.c",
           "    if (slot->var.occupied.registered_readers == 1) {\n"
           "        status = psa_wipe_key_slot(slot);\n    } else {",
           "    if (slot->var.occupied.registered_readers >= 1) {\n"
           "        status = psa_wipe_key_slot(slot);\n    } else {",
           "P4: a slot with other readers is never wiped", ("crash", "tsan", "checker"),
           ("cache-vs-use",)),
    Mutant("purge-ignores-readers", "psa_purge_key wipes a persistent slot in use",
           "library/psa_crypto_slot_management.c",
           "    if ((!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime)) &&\n"
           "        (slot->var.occupied.registered_readers == 1)) {",
           "    if (!PSA_KEY_LIFETIME_IS_VOLATILE(slot->attr.lifetime)) {",
           "P4: a slot with other readers is never wiped", ("crash", "tsan", "checker"),
           ("cache-vs-use",)),
    Mutant("unlocked-drbg", "CTR_DRBG generation without its context mutex",
           "library/ctr_drbg.c",
           "#if defined(MBEDTLS_THREADING_C)\n"
           "    if ((ret = mbedtls_mutex_lock(&ctx->mutex)) != 0) {\n        return ret;\n    }\n"
           "#endif\n\n    ret = mbedtls_ctr_drbg_random_with_add(ctx, output, output_len, NULL, 0);"
           "\n\n#if defined(MBEDTLS_THREADING_C)\n"
           "    if (mbedtls_mutex_unlock(&ctx->mutex) != 0) {\n"
           "        return MBEDTLS_ERR_THREADING_MUTEX_ERROR;\n    }\n#endif\n",
           "    ret = mbedtls_ctr_drbg_random_with_add(ctx, output, output_len, NULL, 0);\n",
           "RNG state is only touched under its mutex", ("tsan",),
           # concurrent draws: ECDSA signing (blinding) and key generation, P-256 included
           scenarios=("key-use-vs-destroy", "derive-copy")),
    Mutant("split-volatile-reserve",
           "narrow window: volatile slot reservation reads the free-list head, drops the mutex "
           "for a few instructions, then pops it",
           "library/psa_crypto_slot_management.c",
           "    size_t slot_idx = global_data.first_free_slot_index[slice_idx];\n",
           "    size_t slot_idx = global_data.first_free_slot_index[slice_idx];\n"
           "    mbedtls_mutex_unlock(&mbedtls_threading_key_slot_mutex);\n"
           "    mbedtls_mutex_lock(&mbedtls_threading_key_slot_mutex);\n",
           "P1: a slot is reserved in one critical section (a creation or destroy that takes "
           "the mutex in the window: two creations share a slot, or a free-list entry is lost)",
           ("checker", "invariant"), engines=("random", "delay")),
)


def by_id(mutant_id):
    for mutant in MUTANTS:
        if mutant.id == mutant_id:
            return mutant
    return None
