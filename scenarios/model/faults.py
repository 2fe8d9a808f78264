"""The fault rules: what the nemesis's injected faults (the history header's ``faults``) allow on
top of the key-store model (scenarios/model/key_store.py), and what they never excuse.

Public API::

    FaultRules(header)        # the kinds the run injected: .storage, .mutex, .alloc
    FaultRules.admit(call) -> (problem | None, checked)
        # problem: a static violation; checked: whether the linearizability check gets the call
    FaultRules.stopped(header) -> str | None   # after admitting every call: why the run
                                               # stopped early (an injected lock failure), or None
    kinds(header) -> frozenset               # {"storage", "mutex", "alloc"} injected at a rate > 0

The rules (Mbed TLS 3.6.6; docs/properties.md §1.4-1.5 and the storage code):

- **Storage errors** (INSUFFICIENT_STORAGE, STORAGE_FAILURE, DATA_INVALID, DATA_CORRUPT) are
  legitimate only when the run injected storage faults (``--faults storage=R``): the driver's
  storage is a fresh directory on a working disk, so without faults such a status is a bug.
- **A failed creation** (any error status) leaves no key and no storage object: the model gives
  it no step at all, so a later export, attribute read or ALREADY_EXISTS of that id needs another
  create. This holds under storage faults because the harness injects one failure at a time
  (harness/nemesis/faults.h): 3.6.6 removes the object it wrote when the read-back fails.
- **ALREADY_EXISTS under storage faults** constrains nothing: 3.6.6 decides it with
  ``psa_is_key_present_in_storage``, which reads *any* failure of ``psa_its_get_info`` as
  "present", so an injected failure there makes a create of an absent id return ALREADY_EXISTS
  with no effect. Without storage faults it still needs a present key.
- **A failed destroy**: INVALID_HANDLE (absent) and NOT_PERMITTED (read-only) as the model says;
  INSUFFICIENT_MEMORY leaves the key intact (destroy fails in its lookup, before any change). A
  storage error leaves the key intact *or* gone (model ``_destroy_maybe``): 3.6.6 marks the slot
  PENDING_DELETION before ``psa_destroy_persistent_key`` and does not roll back, so the cached
  copy is dropped whatever happens, and the key survives exactly when the storage object does (a
  failed removal) — the next lookup reloads it. Nothing else is allowed: a destroy that failed
  in its own lookup (a failed load) changes nothing, which the model's "intact" branch covers.
- **A destroy's INVALID_HANDLE under storage faults** constrains nothing: a second destroy that
  registered on the slot before the failing one marked it PENDING_DELETION finds that state,
  returns INVALID_HANDLE ("another thread destroyed it", psa_destroy_key L1313-1322), and the key
  survives through its storage object (seen on stock 3.6.6: destroy -> DATA_INVALID, the
  overlapping destroy -> INVALID_HANDLE, a later get_attributes -> SUCCESS). Destroys may
  overlap each other in spec mode. Without storage faults INVALID_HANDLE still needs ABSENT.
- **SERVICE_FAILURE** under mutex faults: an injected lock failure surfaces as SERVICE_FAILURE,
  and the core promises nothing about what the call did: the call is treated as pending (it may
  or may not have taken effect). The driver stops every worker at its next operation boundary,
  so these calls sit at the end of the history, where pending calls belong; the header's
  ``faults.stopped_by_fault`` says so and ``stopped`` reports it. Without mutex faults
  SERVICE_FAILURE stays forbidden (model.NEVER).
- **Outputs on a failed call** (``out`` with a status other than SUCCESS) are malformed input,
  reported as a static problem (docs/history-format.md: ``out`` only on SUCCESS).
- **INSUFFICIENT_MEMORY** is legitimate whatever was injected (slot exhaustion); allocation
  faults only make it frequent. In the dynamic store without any fault it is a configuration
  problem (scenarios/checker/final_state.py).
"""
from scenarios.history.reader import CREATE_OPS
from scenarios.model.key_store import STORAGE_ERRORS, is_persistent
from scenarios.model.operations import static_problem

FAILURE_KINDS = ("storage", "mutex", "alloc")


def kinds(header):
    """The fault kinds the header's ``faults.spec`` injects at a rate above 0 (an unreadable
    rate counts as injected: the rules then only allow more)."""
    spec = (header.get("faults") or {}).get("spec") or ""
    found = set()
    for item in spec.split(","):
        kind, _, rate = item.strip().partition("=")
        if kind in FAILURE_KINDS and _positive(rate):
            found.add(kind)
    return frozenset(found)


def _positive(rate):
    try:
        return float(rate) > 0
    except ValueError:
        return True


class FaultRules:
    """The fault rules of one history (see the module docstring)."""
    __slots__ = ("storage", "mutex", "alloc", "service_failures")

    def __init__(self, header):
        injected = kinds(header)
        self.storage = "storage" in injected
        self.mutex = "mutex" in injected
        self.alloc = "alloc" in injected
        self.service_failures = 0

    def admit(self, call):
        """(static problem or None, whether the linearizability check gets ``call``). A
        SERVICE_FAILURE under mutex faults is turned into a pending call first."""
        if self.mutex and call.status == "SERVICE_FAILURE":
            self.service_failures += 1
            _as_pending(call)
        if call.status != "SUCCESS" and call.out:
            return (f"{call.op} returned {call.status or 'nothing (pending)'} with outputs "
                    f"({', '.join(sorted(call.out))}): a call has outputs only on SUCCESS"), False
        if call.status in STORAGE_ERRORS and not self.storage:
            return (f"{call.op} returned {call.status}, a storage error, but the run injected "
                    "no storage faults (--faults storage=R)"), False
        problem = static_problem(call)
        if problem is not None:
            return problem, False
        return None, not (self.storage and (_exists_claim(call) or _absence_claim(call)))

    def stopped(self, header):
        """One line when the run stopped at an injected lock failure, else None. The header
        says so (``faults.stopped_by_fault``: JSON Lines histories are written after the run);
        a binary history's header is written before it, so the SERVICE_FAILUREs admitted so
        far say so too."""
        faults = header.get("faults") or {}
        if not (faults.get("stopped_by_fault") or self.service_failures):
            return None
        calls = (f"{self.service_failures} call(s) returned SERVICE_FAILURE, checked as pending"
                 if self.service_failures else "no call returned SERVICE_FAILURE")
        return (f"the run stopped cleanly at an injected lock failure ({calls}); every worker "
                "stopped at its next call")


def _exists_claim(call):
    """A persistent create that returned ALREADY_EXISTS (under storage faults: no claim)."""
    return (call.status == "ALREADY_EXISTS" and call.op in CREATE_OPS
            and is_persistent(call.args["lifetime"]))


def _absence_claim(call):
    """A destroy that returned INVALID_HANDLE (under storage faults: no claim)."""
    return call.op == "destroy" and call.status == "INVALID_HANDLE"


def _as_pending(call):
    """The call as if it never returned: it may or may not have taken effect."""
    call.status, call.ret, call.out = None, None, {}
