"""The sequential PSA key-store model, split per key id for the linearizability search.

Public API::

    static_problem(call) -> str | None   # a status the call may never return, or a bad output
    KeyStoreModel()                      # the model protocol used by linearizability.check:
        .partition(calls) -> [(key_id, [KeyOp])]   (calls without static problems)
        .init() / .step(state, op) / .is_read_only(op)
        .describe_op(op) / .describe_state(state) / .explain(state, op)
    KeyOp.source                         # the history Call a KeyOp comes from

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
that returned before the export was invoked (see ``_mark_read_only_exports``).
"""
import bisect
import hashlib
import hmac

from scenarios.history.reader import CREATE_OPS

ABSENT = None
INF = float("inf")
USAGE_EXPORT, USAGE_COPY = 0x1, 0x2
VOLATILE_MIN, VOLATILE_MAX = 0x40000000, 0x7FFFFFFF
USER_MIN, USER_MAX = 1, 0x3FFFFFFF
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


def static_problem(call):
    """Why ``call`` is wrong whatever the concurrency (None if nothing is)."""
    status, args = call.status, call.args
    problem = model_use.static_problem(call) if call.op in model_use.KEY_OPS else None
    if problem or status is None or (status == "SUCCESS" and call.op not in CREATE_OPS):
        return problem
    legitimate = LEGITIMATE.get(call.op) or model_use.LEGITIMATE[call.op]
    if status in NEVER and status not in legitimate:
        return f"{call.op} returned {status}, which must never surface from a public call"
    persistent = call.op in CREATE_OPS and is_persistent(args["lifetime"])
    if status not in legitimate and not (persistent and status == "ALREADY_EXISTS"):
        return f"{call.op} returned {status}, not a legitimate result of this call"
    if call.op in CREATE_OPS and status == "SUCCESS":
        return _created_id_problem(call, persistent)
    return None


def _created_id_problem(call, persistent):
    key, requested = call.out["key"], call.args["id"]
    if persistent:
        if not USER_MIN <= requested <= USER_MAX:
            return f"persistent {call.op} of id {requested:#x} outside the user range succeeded"
        if key != requested:
            return f"persistent {call.op} of id {requested:#x} returned key {key:#x}"
    elif requested != 0:
        return f"volatile {call.op} with non-zero id {requested:#x} succeeded"
    elif not VOLATILE_MIN <= key <= VOLATILE_MAX:
        return f"volatile {call.op} returned key {key:#x} outside the volatile range"
    return None


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
        self.readonly = rule not in _MUTATING
        self.role = role
        self.descs = None
        self.want, self.node = want, None    # node: a create's in materials.MaterialLinks


# ---- rules: rule(state, op) -> tuple of possible next states (empty: illegal) ----------------

def _create(state, op):
    return (op.descs,) if state is ABSENT and op.descs else ()


def _present(state, op):
    return (state,) if state is not ABSENT else ()


def _absent(state, op):
    return (state,) if state is ABSENT else ()


def _destroy(state, op):
    return (ABSENT,) if state is not ABSENT else ()


def _destroy_maybe(state, op):
    return (state, ABSENT) if state is not ABSENT else (state,)


def _destroy_denied(state, op):
    ok = state is not ABSENT and any(d[LIFETIME] & 0xFF == 0xFF for d in state)
    return (state,) if ok else ()


def _export(state, op):
    if state is ABSENT:
        return ()
    material = op.want
    if len(state) == 1:
        for desc in state:
            if desc[MATERIAL] == material:
                return (state,) if _may_have(desc, USAGE_EXPORT) else ()
    bound = frozenset(d if d[MATERIAL] is not None else d[:MATERIAL] + (material,)
                      for d in state if _may_have(d, USAGE_EXPORT) and (
                          d[MATERIAL] is None or model_use.material_matches(d[MATERIAL], material)))
    return (bound,) if bound else ()


def _export_denied(state, op):
    ok = state is not ABSENT and any(_may_lack(d, USAGE_EXPORT) for d in state)
    return (state,) if ok else ()


def _attributes(state, op):
    ok = state is not ABSENT and any(_shows(d, op.want) for d in state)
    return (state,) if ok else ()


def _copy_source(state, op):
    ok = state is not ABSENT and any(_may_have(d, USAGE_COPY) and _algs_meet(d[ALG], op.want)
                                     for d in state)
    return (state,) if ok else ()


def _copy_denied(state, op):
    ok = state is not ABSENT and any(_may_lack(d, USAGE_COPY) for d in state)
    return (state,) if ok else ()


def _copy_bad_argument(state, op):
    ok = state is not ABSENT and any(_may_have(d, USAGE_COPY) for d in state)
    return (state,) if ok else ()


_BINDERS = {_export}     # may bind an unknown material; model_use adds its own
_MUTATING = {_create, _destroy, _destroy_maybe} | _BINDERS


def _may_have(desc, flag):
    usages = desc[USAGES]
    return usages is None or any(u & flag for u in usages)


def _may_lack(desc, flag):
    usages = desc[USAGES]
    return usages is None or any(not u & flag for u in usages)


def _shows(desc, attrs):
    """Could get_attributes of a key described by ``desc`` return ``attrs``?"""
    lifetime, key, key_type, bits, usage, alg = attrs
    return (desc[LIFETIME] == lifetime and desc[KEY_ID] == key
            and desc[TYPE] in (None, key_type) and desc[BITS] in (None, bits)
            and (desc[USAGES] is None or usage in desc[USAGES])
            and desc[ALG] in (None, alg))


def _algs_meet(alg, requested):
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


_WHY = {
    _create: lambda s, op: ("no candidate source instance could have been copied"
                            if not op.descs else
                            "the id is already present: " + describe_state(s)),
    _present: lambda s, op: "the id is absent, nothing can already exist",
    _absent: lambda s, op: "the key is present: " + describe_state(s),
    _destroy: lambda s, op: "the key is absent, nothing to destroy",
    _destroy_denied: lambda s, op: "only a read-only lifetime refuses destroy; state: "
                                   + describe_state(s),
    _export: lambda s, op: "no present key has EXPORT usage and material "
                           f"{_short(op.want)}; state: " + describe_state(s),
    _export_denied: lambda s, op: "the key is absent or has EXPORT usage; state: "
                                  + describe_state(s),
    _attributes: lambda s, op: f"no present key has attributes {_attrs_text(op.want)}; "
                               "state: " + describe_state(s),
    _copy_source: lambda s, op: "the source is absent, lacks COPY usage or has an "
                                "incompatible algorithm; state: " + describe_state(s),
    _copy_denied: lambda s, op: "the source is absent or has COPY usage; state: "
                                + describe_state(s),
    _copy_bad_argument: lambda s, op: "the source is absent or lacks COPY usage (lookup "
                                      "fails first); state: " + describe_state(s),
}


# ---- descriptions -----------------------------------------------------------------------

def _raw_bytes_type(key_type):
    return key_type & 0x7000 in (0x1000, 0x2000) and key_type != 0x2301   # DES: parity fixed


def _usages(usage, lifetime):
    """psa_set_key_usage_flags extends the flags (crypto_struct.h): SIGN_HASH -> SIGN_MESSAGE."""
    if usage is None:
        return None
    return frozenset((extend_usage(usage),))


def _hkdf_sha256(salt, secret, info, length):
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
    if call.op == "derive" and _raw_bytes_type(args["type"]) and args["bits"] % 8 == 0 \
            and args["bits"] > 0:
        return _hkdf_sha256(bytes.fromhex(args["salt"]), bytes.fromhex(args["secret"]),
                            bytes.fromhex(args["info"]), args["bits"] // 8).hex()
    return None


def _plain_desc(call, key):
    args = call.args
    bits = args["bits"]
    if bits == 0:
        raw = call.op == "import" and _raw_bytes_type(args["type"])
        bits = len(args["material"]) * 4 if raw else None
    lifetime = args["lifetime"]
    return (lifetime, key, args["type"], bits, _usages(args["usage"], lifetime),
            args["alg"], _material(call))


def _copied_desc(source, call, key):
    args = call.args
    lifetime, usage = args["lifetime"], args["usage"]
    usages = None
    if source[USAGES] is not None:
        usages = frozenset(v for u in source[USAGES]
                           for v in _usages(extend_usage(usage) & u, lifetime))
    return (lifetime, key, source[TYPE], source[BITS], usages,
            _alg_meet(source[ALG], args["alg"]) if source[ALG] is not None else None,
            source[MATERIAL])


class _Sources:
    """Static candidate source instances of each copy (see the module docstring)."""

    def __init__(self, creates, killers, links=None):
        self.links, self.creates = links, {}     # links: materials.MaterialLinks, or None
        for key, ops in creates.items():
            ops.sort(key=lambda op: op.call)
            rets, top = [], -1
            for op in ops:
                top = max(top, INF if op.ret is None else op.ret)
                rets.append(top)
            self.creates[key] = (ops, [op.call for op in ops], rets)
        self.killers = {}
        for key, spans in killers.items():
            spans.sort(key=lambda span: span[1])
            calls, top = [], -1
            for call, _ in spans:
                top = max(top, call)
                calls.append(top)
            self.killers[key] = ([ret for _, ret in spans], calls)
        self.busy = set()

    def descs(self, op):
        """The descriptions ``op`` (a create) may give its key; copies are resolved here."""
        if op.descs is None:
            if op in self.busy:    # copy cycle: give up precision, stay sound
                lifetime = op.source.args["lifetime"]
                return frozenset(((lifetime, op.key) + (None,) * 5,))
            self.busy.add(op)
            self._copy_descs(op)
            self.busy.discard(op)
        return op.descs

    def _copy_descs(self, op):
        """Every candidate's description, never widened to "any key" (sets scale)."""
        call, key, options, candidates = op.source, op.key, set(), self._candidates(op.source)
        for candidate in candidates:
            for source in self.descs(candidate):
                if call.op == "derive_from":
                    options.update(model_use.derived_descs(source, call, key))
                elif _may_have(source, USAGE_COPY) and _algs_meet(source[ALG], call.args["alg"]):
                    options.add(_copied_desc(source, call, key))
        op.descs = frozenset(options)
        if self.links is not None:
            self.links.alias(op, candidates)

    def _candidates(self, copy):
        src = copy.args["src"]
        end = INF if copy.ret is None else copy.ret
        found = []
        ops, calls, top_rets = self.creates.get(src, ((), (), ()))
        threshold = self._dead_before(src, copy.call)
        index = bisect.bisect_left(calls, end) - 1
        while index >= 0 and top_rets[index] >= threshold:
            op = ops[index]
            if (op.ret is None or op.ret >= threshold) and op.source is not copy:
                found.append(op)
            index -= 1
        return found

    def _dead_before(self, key, stamp):
        """Creates of ``key`` returning before this are dead when ``stamp`` is reached."""
        rets, top_calls = self.killers.get(key, ((), ()))
        index = bisect.bisect_left(rets, stamp)
        return top_calls[index - 1] if index else -1


class KeyStoreModel:
    """The per-id PSA key-store model, in the protocol of ``linearizability.check``."""

    def init(self):
        return ABSENT

    def step(self, state, op):
        return op.rule(state, op)

    def is_read_only(self, op):
        return op.readonly

    def describe_op(self, op):
        return describe_op(op)

    def describe_state(self, state):
        return describe_state(state)

    def explain(self, state, op):
        why = _WHY.get(op.rule) or model_use.WHY[op.rule]
        return describe_op(op) + " is impossible: " + why(state, op)

    def partition(self, calls):
        """[(key id, [KeyOp])], smallest partition first."""
        parts, creates, killers, wildcards = {}, {}, {}, []
        for call in calls:
            for op in _key_ops(call):
                key = op.key
                if key is None:
                    wildcards.append(op)
                    continue
                ops = parts.get(key)
                if ops is None:
                    ops = parts[key] = []
                ops.append(op)
                if op.rule is _create:
                    creates.setdefault(key, []).append(op)
                if op.ret is not None and (op.rule is _create or op.rule is _destroy):
                    killers.setdefault(key, []).append((op.call, op.ret))
        self._add_wildcards(parts, creates, wildcards)
        sources = _Sources(creates, killers)
        for ops in parts.values():
            ops.sort(key=_by_call)
            for op in ops:
                if op.rule is _create:
                    sources.descs(op)
            _mark_read_only_exports(ops)
        return sorted(parts.items(), key=lambda item: (len(item[1]), item[0]))

    @staticmethod
    def _add_wildcards(parts, creates, wildcards):
        for key, ops in parts.items():
            if not VOLATILE_MIN <= key <= VOLATILE_MAX:
                continue
            for wildcard in wildcards:
                op = KeyOp(wildcard.source, key, _create, wildcard.role)
                if wildcard.source.op != "copy":
                    op.descs = frozenset((_plain_desc(wildcard.source, key),))
                ops.append(op)
                creates.setdefault(key, []).append(op)


_SIMPLE_RULES = {   # op -> status (None: pending) -> rule; missing: constrains nothing
    "destroy": {"SUCCESS": _destroy, "INVALID_HANDLE": _absent, "NOT_PERMITTED": _destroy_denied,
                None: _destroy, **{code: _destroy_maybe for code in STORAGE_ERRORS}},
    "export": {"SUCCESS": _export, "INVALID_HANDLE": _absent, "NOT_PERMITTED": _export_denied},
    "get_attributes": {"SUCCESS": _attributes, "INVALID_HANDLE": _absent},
}


def _by_call(op):
    return op.call


def _key_ops(call):
    """The KeyOps of one statically valid call (none for calls that constrain nothing)."""
    if call.op in model_use.KEY_OPS:
        return model_use.key_ops(call)
    rules = _SIMPLE_RULES.get(call.op)
    if rules is None:
        return _create_ops(call)
    rule = rules.get(call.status)
    key = call.args["key"]
    if rule is None or (key == 0 and rule is _destroy):
        return ()
    want = None
    if rule is _export:
        want = call.out["material"]
    elif rule is _attributes:
        out = call.out
        want = (out["lifetime"], out["id"], out["type"], out["bits"], out["usage"], out["alg"])
    return (KeyOp(call, key, rule, "", want),)


_COPY_SOURCE_RULES = {
    "SUCCESS": _copy_source, "ALREADY_EXISTS": _copy_source, "INVALID_HANDLE": _absent,
    "NOT_PERMITTED": _copy_denied, "INVALID_ARGUMENT": _copy_bad_argument,
}


def _create_ops(call):
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
        op = KeyOp(call, key, _create, role)
        if not copy and key is not None:
            op.descs = frozenset((_plain_desc(call, key),))
        ops.append(op)
    elif status == "ALREADY_EXISTS":
        ops.append(KeyOp(call, args["id"], _present, role))
    return ops


def _mark_read_only_exports(ops):
    """Mark export SUCCESS ops that can never bind or narrow the state as read-only.

    ``ops`` are sorted by call. An ambiguous create I (unknown or several materials) is settled
    once some op X with ``X.call > I.ret`` returned: a successful create or destroy (I is then
    gone) or a successful export (it bound I's material, if I was still the current instance).
    An export E is read-only when every ambiguous create with ``I.call < E.ret`` is settled
    before ``E.call``.
    """
    exports = [op for op in ops if op.rule in _BINDERS and op.ret is not None]
    ambiguous = [op for op in ops if op.rule is _create and _ambiguous(op.descs)]
    if not ambiguous:
        for op in exports:
            op.readonly = True
        return
    settlers = [op for op in ops if op.ret is not None
                and (op.rule is _create or op.rule is _destroy or op.rule in _BINDERS)]
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


def _ambiguous(descs):
    materials = {d[MATERIAL] for d in descs}
    return None in materials or len(materials) > 1


# ---- text ------------------------------------------------------------------------------

def _short(material):
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
            f" material={_short(material)})")


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
        text += f" material={_short(call.out['material'])}"
    if op.rule is _attributes:
        text += " " + _attrs_text(op.want)
    return text
from scenarios.model import key_use as model_use  # noqa: E402  (the other operations' rows; it imports us: last)
