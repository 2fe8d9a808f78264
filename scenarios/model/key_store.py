"""The sequential PSA key-store model, split per key id for the linearizability search: the
states, the key descriptions, and the rows of key creation, destroy, export, get_attributes and
copy (key_use.py adds the other operations' rows; operations.py dispatches between the two).

Public API::

    KeyOp(source, key, rule, role, want)  # one step of one key id; .source: the history Call
    key_ops(call) -> [KeyOp]             # this module's operations (operations.key_ops: all)
    rule_*(state, op) -> next states     # the rules; @mutating / @binding mark, mutates(rule),
                                         # binds(rule) read, the state-changing ones
    LEGITIMATE, NEVER, WHY, SIMPLE_RULES # statuses, explanations, status -> rule
    create_ops(call), plain_desc(call, key), copied_desc(source, call, key)   # descriptions
    mark_read_only_exports(ops), is_ambiguous(descs)
    may_have / may_lack / algs_meet / raw_bytes_type / reported_usages / hkdf_sha256
    PUBLIC_PREFIX, public_hex(material), material_matches(known, exported)   # P-256 pairs
    describe_desc / describe_state / describe_op / short_hex   # text

State of one key id: ``ABSENT`` (None) or PRESENT, a frozenset of possible key descriptions
``(lifetime, id, type, bits, usages, alg, material)``: ``usages`` is the frozenset of usage
values get_attributes may report (a persistent key also gets the implicit flags of
``psa_extend_key_usage_flags`` when reloaded), ``None`` in any field means "unknown, anything
goes", and ``material`` is lower-case hex. More than one description is possible only for a
copy whose source could be one of several instances.

Partitioning (P-compositionality): every operation reads or writes one id, so the history is
linearizable iff every per-id projection is. Creates go to the id they return on SUCCESS, or to
the requested id when persistent; a failed volatile create has no id and gets only the static
check. A pending volatile create (no id known) may have created any volatile id: it is added,
as an optional create, to every volatile-range partition (an over-approximation: never a false
alarm).

``psa_copy_key`` is split into a read of the source (in the source's partition) and a create of
the destination (in the destination's partition), both on the copy's [call, ret] interval.
Because partitions are checked independently, the destination's description is computed
statically as the set of descriptions of every *candidate source instance*: each successful or
pending create I of the source id with ``I.call < copy.ret``, except those certainly dead before
the copy started, i.e. when some successful destroy or create X of the same id has
``X.call > I.ret`` and ``X.ret < copy.call`` (then I was linearized before X, X removed or
replaced I, and X returned before the copy was invoked). Every linearization of the real
history reads, at the copy's source LP, an instance that was created before the copy returned
and not yet removed when the copy was invoked, so it is in the candidate set: the split check
can miss a bug but never raises a false alarm. A candidate whose material is unknown (generated,
or copied from an unknown) leaves the copy's material unknown, to be bound by its first export.

Lazy binding: a generated key's material is unknown until its first export, which binds it; a
later export must return the same bytes. A binding export changes the (abstract) state, so an
export is read-only only when, statically, no ambiguous create (unknown or multiple materials)
can be the current instance at its LP without having been bound or removed by an operation
that returned before the export was invoked (see ``mark_read_only_exports``).
"""
import bisect
import hashlib
import hmac

from scenarios.history.reader import CREATE_OPS
from scenarios.model import crypto_ref

ABSENT = None
INF = float("inf")
USAGE_EXPORT, USAGE_COPY = 0x1, 0x2
VOLATILE_MIN, VOLATILE_MAX = 0x40000000, 0x7FFFFFFF
USER_MIN, USER_MAX = 1, 0x3FFFFFFF
ECC_P256_PAIR = 0x7112
HKDF_SHA256_CAPACITY = 255 * 32   # bytes (RFC 5869: at most 255 blocks)
LIFETIME, KEY_ID, TYPE, BITS, USAGES, ALG, MATERIAL = range(7)

STORAGE_ERRORS = {"INSUFFICIENT_STORAGE", "STORAGE_FAILURE", "DATA_INVALID", "DATA_CORRUPT"}
RESOURCE_ERRORS = {"INSUFFICIENT_MEMORY"} | STORAGE_ERRORS
ARGUMENT_ERRORS = {"INVALID_ARGUMENT", "NOT_SUPPORTED", "NOT_PERMITTED"}
_CREATE_CODES = {"SUCCESS"} | RESOURCE_ERRORS | ARGUMENT_ERRORS
LEGITIMATE = {   # docs/properties.md §1.5 (ALREADY_EXISTS: persistent creates only)
    "import": _CREATE_CODES,
    "generate": _CREATE_CODES | {"INSUFFICIENT_ENTROPY"},
    "derive": _CREATE_CODES | {"INSUFFICIENT_DATA"},
    "copy": _CREATE_CODES | {"INVALID_HANDLE"},
    "destroy": {"SUCCESS", "INVALID_HANDLE", "NOT_PERMITTED"} | RESOURCE_ERRORS,
    "export": {"SUCCESS", "INVALID_HANDLE", "NOT_PERMITTED", "BUFFER_TOO_SMALL",
               "INVALID_ARGUMENT", "NOT_SUPPORTED"} | RESOURCE_ERRORS,
    "get_attributes": {"SUCCESS", "INVALID_HANDLE"} | RESOURCE_ERRORS,
}
NEVER = {"CORRUPTION_DETECTED", "SERVICE_FAILURE", "GENERIC_ERROR", "BAD_STATE",
         "DOES_NOT_EXIST"}


def is_persistent(lifetime):
    return lifetime != 0


def extend_usage(usage):
    """psa_extend_key_usage_flags: SIGN_HASH implies SIGN_MESSAGE, VERIFY_HASH VERIFY_MESSAGE."""
    if usage & 0x1000:
        usage |= 0x400
    if usage & 0x2000:
        usage |= 0x800
    return usage


class KeyOp:
    """One step of one key id's sub-history (a call, or one side of a copy)."""
    __slots__ = ("call", "ret", "key", "rule", "readonly", "source", "role", "descs", "want",
                 "node")

    def __init__(self, source, key, rule, role="", want=None):
        self.source = source
        self.call = source.call
        self.ret = source.ret
        self.key = key
        self.rule = rule
        self.readonly = not mutates(rule)
        self.role = role
        self.descs = None
        self.want, self.node = want, None    # node: a create's in materials.MaterialLinks


# ---- rules: rule(state, op) -> tuple of possible next states (empty: illegal) ----------------
# A rule that changes the state is marked @mutating; one that may bind an unknown material
# (and so changes the state) @binding. A KeyOp of an unmarked rule is read-only.

def mutating(rule):
    rule.mutates = True
    return rule


def binding(rule):
    rule.binds = True
    return mutating(rule)


def mutates(rule):
    return getattr(rule, "mutates", False)


def binds(rule):
    return getattr(rule, "binds", False)


@mutating
def rule_create(state, op):
    return (op.descs,) if state is ABSENT and op.descs else ()


def rule_present(state, op):
    return (state,) if state is not ABSENT else ()


def rule_absent(state, op):
    return (state,) if state is ABSENT else ()


@mutating
def rule_destroy(state, op):
    return (ABSENT,) if state is not ABSENT else ()


@mutating
def rule_destroy_maybe(state, op):
    return (state, ABSENT) if state is not ABSENT else (state,)


def rule_destroy_denied(state, op):
    ok = state is not ABSENT and any(d[LIFETIME] & 0xFF == 0xFF for d in state)
    return (state,) if ok else ()


@binding
def rule_export(state, op):
    if state is ABSENT:
        return ()
    material = op.want
    if len(state) == 1:
        for desc in state:
            if desc[MATERIAL] == material:
                return (state,) if may_have(desc, USAGE_EXPORT) else ()
    bound = frozenset(d if d[MATERIAL] is not None else d[:MATERIAL] + (material,)
                      for d in state if may_have(d, USAGE_EXPORT) and (
                          d[MATERIAL] is None or material_matches(d[MATERIAL], material)))
    return (bound,) if bound else ()


def rule_export_denied(state, op):
    ok = state is not ABSENT and any(may_lack(d, USAGE_EXPORT) for d in state)
    return (state,) if ok else ()


def rule_attributes(state, op):
    ok = state is not ABSENT and any(_shows(d, op.want) for d in state)
    return (state,) if ok else ()


def rule_copy_source(state, op):
    ok = state is not ABSENT and any(may_have(d, USAGE_COPY) and algs_meet(d[ALG], op.want)
                                     for d in state)
    return (state,) if ok else ()


def rule_copy_denied(state, op):
    ok = state is not ABSENT and any(may_lack(d, USAGE_COPY) for d in state)
    return (state,) if ok else ()


def rule_copy_bad_argument(state, op):
    ok = state is not ABSENT and any(may_have(d, USAGE_COPY) for d in state)
    return (state,) if ok else ()




def may_have(desc, flag):
    usages = desc[USAGES]
    return usages is None or any(u & flag for u in usages)


def may_lack(desc, flag):
    usages = desc[USAGES]
    return usages is None or any(not u & flag for u in usages)


def _shows(desc, attrs):
    """Could get_attributes of a key described by ``desc`` return ``attrs``?"""
    lifetime, key, key_type, bits, usage, alg = attrs
    return (desc[LIFETIME] == lifetime and desc[KEY_ID] == key
            and desc[TYPE] in (None, key_type) and desc[BITS] in (None, bits)
            and (desc[USAGES] is None or usage in desc[USAGES])
            and desc[ALG] in (None, alg))


def algs_meet(alg, requested):
    """Can psa_restrict_key_policy accept these two algorithms (wildcards included)?"""
    if alg is None or alg == requested or alg == 0 or requested == 0:
        return True
    category = alg & 0x7F000000
    return category == requested & 0x7F000000 and category in (0x05000000, 0x06000000)


def _alg_meet(alg, requested):
    if alg == requested:
        return alg
    if alg == 0 or requested == 0:
        return 0
    return None


WHY = {
    rule_create: lambda s, op: ("no candidate source instance could have been copied"
                                if not op.descs else
                                "the id is already present: " + describe_state(s)),
    rule_present: lambda s, op: "the id is absent, nothing can already exist",
    rule_absent: lambda s, op: "the key is present: " + describe_state(s),
    rule_destroy: lambda s, op: "the key is absent, nothing to destroy",
    rule_destroy_denied: lambda s, op: "only a read-only lifetime refuses destroy; state: "
                                       + describe_state(s),
    rule_export: lambda s, op: "no present key has EXPORT usage and material "
                               f"{short_hex(op.want)}; state: " + describe_state(s),
    rule_export_denied: lambda s, op: "the key is absent or has EXPORT usage; state: "
                                      + describe_state(s),
    rule_attributes: lambda s, op: f"no present key has attributes {_attrs_text(op.want)}; "
                                   "state: " + describe_state(s),
    rule_copy_source: lambda s, op: "the source is absent, lacks COPY usage or has an "
                                    "incompatible algorithm; state: " + describe_state(s),
    rule_copy_denied: lambda s, op: "the source is absent or has COPY usage; state: "
                                    + describe_state(s),
    rule_copy_bad_argument: lambda s, op: "the source is absent or lacks COPY usage (lookup "
                                          "fails first); state: " + describe_state(s),
}


# ---- descriptions -----------------------------------------------------------------------

def raw_bytes_type(key_type):
    return key_type & 0x7000 in (0x1000, 0x2000) and key_type != 0x2301   # DES: parity fixed


def reported_usages(usage, lifetime):
    """psa_set_key_usage_flags extends the flags (crypto_struct.h): SIGN_HASH -> SIGN_MESSAGE."""
    if usage is None:
        return None
    return frozenset((extend_usage(usage),))


def hkdf_sha256(salt, secret, info, length):
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    block, out, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _material(call):
    args = call.args
    if call.op == "import":
        return args["material"]
    if call.op != "derive":
        return None
    salt, secret, info = (bytes.fromhex(args[name]) for name in ("salt", "secret", "info"))
    if raw_bytes_type(args["type"]) and args["bits"] % 8 == 0 and args["bits"] > 0:
        return hkdf_sha256(salt, secret, info, args["bits"] // 8).hex()
    if args["type"] == ECC_P256_PAIR and args["bits"] == 256:
        scalar = crypto_ref.derived_private_key(
            lambda length: hkdf_sha256(salt, secret, info, length), HKDF_SHA256_CAPACITY)
        return scalar.hex() if scalar else None
    return None


def plain_desc(call, key):
    args = call.args
    bits = args["bits"]
    if bits == 0:
        raw = call.op == "import" and raw_bytes_type(args["type"])
        bits = len(args["material"]) * 4 if raw else None
    lifetime = args["lifetime"]
    return (lifetime, key, args["type"], bits, reported_usages(args["usage"], lifetime),
            args["alg"], _material(call))


def copied_desc(source, call, key):
    args = call.args
    lifetime, usage = args["lifetime"], args["usage"]
    usages = None
    if source[USAGES] is not None:
        usages = frozenset(v for u in source[USAGES]
                           for v in reported_usages(extend_usage(usage) & u, lifetime))
    return (lifetime, key, source[TYPE], source[BITS], usages,
            _alg_meet(source[ALG], args["alg"]) if source[ALG] is not None else None,
            source[MATERIAL])


SIMPLE_RULES = {   # op -> status (None: pending) -> rule; missing: constrains nothing
    "destroy": {"SUCCESS": rule_destroy, "INVALID_HANDLE": rule_absent,
                "NOT_PERMITTED": rule_destroy_denied, None: rule_destroy,
                **{code: rule_destroy_maybe for code in STORAGE_ERRORS}},
    "export": {"SUCCESS": rule_export, "INVALID_HANDLE": rule_absent,
               "NOT_PERMITTED": rule_export_denied},
    "get_attributes": {"SUCCESS": rule_attributes, "INVALID_HANDLE": rule_absent},
}


def key_ops(call):
    """The KeyOps of one statically valid call of this module's operations (none for calls that
    constrain nothing)."""
    rules = SIMPLE_RULES.get(call.op)
    if rules is None:
        return create_ops(call)
    rule = rules.get(call.status)
    key = call.args["key"]
    if rule is None or (key == 0 and rule is rule_destroy):
        return ()
    want = None
    if rule is rule_export:
        want = call.out["material"]
    elif rule is rule_attributes:
        out = call.out
        want = (out["lifetime"], out["id"], out["type"], out["bits"], out["usage"], out["alg"])
    return (KeyOp(call, key, rule, "", want),)


_COPY_SOURCE_RULES = {
    "SUCCESS": rule_copy_source, "ALREADY_EXISTS": rule_copy_source, "INVALID_HANDLE": rule_absent,
    "NOT_PERMITTED": rule_copy_denied, "INVALID_ARGUMENT": rule_copy_bad_argument,
}


def create_ops(call):
    status, args = call.status, call.args
    persistent = is_persistent(args["lifetime"])
    copy = call.op in ("copy", "derive_from")   # descs resolved from the source by _Sources
    role = " (destination)" if copy else ""
    ops = []
    if copy and status in _COPY_SOURCE_RULES:
        ops.append(KeyOp(call, args["src"], _COPY_SOURCE_RULES[status], " (source)",
                         want=args["alg"]))
    if status is None or status == "SUCCESS":
        key = call.out["key"] if status else (args["id"] if persistent else None)
        op = KeyOp(call, key, rule_create, role)
        if not copy and key is not None:
            op.descs = frozenset((plain_desc(call, key),))
        ops.append(op)
    elif status == "ALREADY_EXISTS":
        ops.append(KeyOp(call, args["id"], rule_present, role))
    return ops


def mark_read_only_exports(ops):
    """Mark export SUCCESS ops that can never bind or narrow the state as read-only.

    ``ops`` are sorted by call. An ambiguous create I (unknown or several materials) is settled
    once some op X with ``X.call > I.ret`` returned: a successful create or destroy (I is then
    gone) or a successful export (it bound I's material, if I was still the current instance).
    An export E is read-only when every ambiguous create with ``I.call < E.ret`` is settled
    before ``E.call``.
    """
    exports = [op for op in ops if binds(op.rule) and op.ret is not None]
    ambiguous = [op for op in ops if op.rule is rule_create and is_ambiguous(op.descs)]
    if not ambiguous:
        for op in exports:
            op.readonly = True
        return
    settlers = [op for op in ops if op.ret is not None
                and (op.rule is rule_create or op.rule is rule_destroy or binds(op.rule))]
    settler_calls = [op.call for op in settlers]
    suffix_min, low = [INF] * (len(settlers) + 1), INF
    for index in range(len(settlers) - 1, -1, -1):
        low = min(low, settlers[index].ret)
        suffix_min[index] = low
    ambiguous_calls, worst, top = [], [], -1
    for op in ambiguous:
        if op.ret is None:
            top = INF
        else:
            top = max(top, suffix_min[bisect.bisect_right(settler_calls, op.ret)])
        ambiguous_calls.append(op.call)
        worst.append(top)
    for op in exports:
        index = bisect.bisect_left(ambiguous_calls, op.ret)
        op.readonly = index == 0 or worst[index - 1] < op.call


def is_ambiguous(descs):
    materials = {d[MATERIAL] for d in descs}
    return None in materials or len(materials) > 1


# ---- P-256 key pairs known only by their public key --------------------------------------
# A generated key pair's private scalar is unknown until it is exported; its public key is
# often known earlier (export_public, or recovered from a signature: key_use.py). Such a
# material is "pub:" + the public key's hex; the private scalar an export returns must then map
# to it.

PUBLIC_PREFIX = "pub:"


def public_hex(material):
    """The public key (hex) of a known P-256 material, a private scalar or a "pub:" one; None
    for an invalid scalar."""
    if material.startswith(PUBLIC_PREFIX):
        return material[len(PUBLIC_PREFIX):]
    public = crypto_ref.public_key(bytes.fromhex(material))
    return public.hex() if public else None


def material_matches(known, exported):
    """Does an exported key (hex) agree with a known material (rule_export)?"""
    if known.startswith(PUBLIC_PREFIX):
        return public_hex(exported) == known[len(PUBLIC_PREFIX):]
    return known == exported


# ---- text ------------------------------------------------------------------------------

def short_hex(material):
    if material is None:
        return "unknown"
    return material if len(material) <= 16 else material[:16] + "…"


def _attrs_text(attrs):
    lifetime, key, key_type, bits, usage, alg = attrs
    return (f"(lifetime={lifetime} id={key:#x} type={key_type:#06x} bits={bits} "
            f"usage={usage:#x} alg={alg:#010x})")


def _field(value, form):
    return "?" if value is None else format(value, form)


def describe_desc(desc):
    lifetime, key, key_type, bits, usages, alg, material = desc
    usage = "?" if usages is None else "|".join(sorted(f"{u:#x}" for u in usages))
    return (f"PRESENT(lifetime={lifetime} id={_field(key, '#x')} type={_field(key_type, '#06x')}"
            f" bits={_field(bits, 'd')} usage={usage} alg={_field(alg, '#010x')}"
            f" material={short_hex(material)})")


def describe_state(state):
    if state is ABSENT:
        return "ABSENT"
    return " or ".join(sorted(describe_desc(d) for d in state))


def describe_op(op):
    call = op.source
    args = call.args
    target = args.get("key", args.get("src"))
    if call.op in CREATE_OPS and not op.role.endswith("(source)"):
        target = f"lifetime={args['lifetime']} id={args['id']:#x}"
    elif target is not None:
        target = f"{target:#x}"
    text = f"t{call.thread}#{call.seq} {call.op}{op.role}({target}) -> {call.status or 'pending'}"
    if call.status == "SUCCESS" and "key" in call.out:
        text += f" key={call.out['key']:#x}"
    if call.status == "SUCCESS" and "material" in call.out:
        text += f" material={short_hex(call.out['material'])}"
    if op.rule is rule_attributes:
        text += " " + _attrs_text(op.want)
    return text
