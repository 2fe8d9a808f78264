"""The model's steps for key use, the key cache (purge, open, close), export_public, derive_from
and the random generator: the rows this module adds to model/key_store.py's tables.

model/key_store.py imports this module last and dispatches these operations here (``KEY_OPS``,
``key_ops``, ``static_problem``, ``derived_descs``, ``LEGITIMATE``, ``WHY``); the rules reuse
model/key_store.py's states and helpers. A key use reads its key at the lookup's linearization point and changes nothing:

- SUCCESS needs a PRESENT key whose policy allows the use (usage flag, algorithm, key type) and
  whose material, when known, yields the recorded output (recomputed with
  scenarios.model.crypto_ref); an unknown material (a generated key not yet exported) accepts any output;
- INVALID_SIGNATURE (verify, aead_decrypt) needs a PRESENT key that allows the use and whose
  material, when known, rejects the input;
- NOT_PERMITTED needs a PRESENT key whose policy may refuse the use; INVALID_ARGUMENT and
  NOT_SUPPORTED a PRESENT key; INVALID_HANDLE an ABSENT one; resource errors constrain nothing.

Cache operations (docs/properties.md §1.5): purge and the close of a persistent key
only drop a cached copy (no abstract effect, but SUCCESS needs the key PRESENT); purge returns
DOES_NOT_EXIST when the key is not cached (for a volatile id: ABSENT; for a persistent id:
nothing is known). Closing a volatile key destroys it; open is a lookup.
"""
from scenarios.model import crypto_ref as ref
from scenarios.model import key_store as m

ECC_P256_PAIR, DERIVE_TYPE = m.ECC_P256_PAIR, 0x1200
AES_TYPE, HMAC_TYPE = 0x2400, 0x1100
HKDF_SHA256 = 0x08000109
U_ENCRYPT, U_DECRYPT, U_SIGN_MESSAGE = 0x100, 0x200, 0x400
U_SIGN_HASH, U_VERIFY_HASH, U_DERIVE = 0x1000, 0x2000, 0x4000
STAGE_SETUP = 1      # mac_multipart "stage": the last step tried, 1 setup, 2 update, 3 finish


def _b(text):
    return bytes.fromhex(text)


# ---- what each use needs, and how its output follows from the key's material ---------------
# op -> (usage flag, key type, success(material, args, out) -> bool,
#        rejects(material, args) -> bool for INVALID_SIGNATURE, or None when it cannot fail so)

USES = {
    "sign": (U_SIGN_HASH, ECC_P256_PAIR,
             lambda k, a, o: ref.verify(_public(k), _b(a["input"]), _b(o["material"])),
             None),
    "verify": (U_VERIFY_HASH, ECC_P256_PAIR,
               lambda k, a, o: ref.verify(_public(k), _b(a["hash"]), _b(a["input"])),
               lambda k, a: not ref.verify(_public(k), _b(a["hash"]), _b(a["input"]))),
    "cipher_encrypt": (U_ENCRYPT, AES_TYPE,
                       lambda k, a, o: ref.aes128_encrypt(_b(k), _b(a["input"]))
                       == _b(o["material"]), None),
    "cipher_decrypt": (U_DECRYPT, AES_TYPE,
                       lambda k, a, o: ref.aes128_encrypt(_b(k), _b(o["material"]))
                       == _b(a["input"]), None),
    "mac": (U_SIGN_MESSAGE, HMAC_TYPE,
            lambda k, a, o: ref.hmac_sha256(_b(k), _b(a["input"])) == _b(o["material"]), None),
    "mac_multipart": (U_SIGN_MESSAGE, HMAC_TYPE,
                      lambda k, a, o: ref.hmac_sha256(_b(k), _b(a["message"]))
                      == _b(o["material"]), None),
    "aead_encrypt": (U_ENCRYPT, AES_TYPE,
                     lambda k, a, o: ref.gcm_seal(_b(k), _b(a["nonce"]), _b(a["input"]))
                     == _b(o["material"]), None),
    "aead_decrypt": (U_DECRYPT, AES_TYPE,
                     lambda k, a, o: ref.gcm_open(_b(k), _b(a["nonce"]), _b(a["input"]))
                     == _b(o["material"]),
                     lambda k, a: ref.gcm_open(_b(k), _b(a["nonce"]), _b(a["input"])) is None),
}
# The (digest, signature) pair of a successful sign or verify: the public keys it recovers
# bind a key pair whose material is still unknown (a generated key never exported).
SIGNED = {"sign": lambda a, o: (_b(a["input"]), _b(o["material"])),
           "verify": lambda a, o: (_b(a["hash"]), _b(a["input"]))}


# ---- P-256 key pairs known only by their public key (key_store.PUBLIC_PREFIX) -----------------

def _public(material):
    public = m.public_hex(material)
    return _b(public) if public else b""


def _bind_public(state, publics, fits):
    """The state narrowed to the descriptions ``fits`` accepts, where a P-256 pair whose
    material is unknown becomes one description per candidate public key."""
    bound = set()
    for d in state:
        if d[m.MATERIAL] is None and d[m.TYPE] in (None, ECC_P256_PAIR):
            bound.update(d[:m.TYPE] + (ECC_P256_PAIR,) + d[m.TYPE + 1:m.MATERIAL]
                         + (m.PUBLIC_PREFIX + q.hex(),) for q in publics)
        elif fits(d):
            bound.add(d)
    bound = frozenset(d for d in bound if fits(d))
    return (bound,) if bound else ()


def _consistent(desc, op, check):
    """Does the instance's material (if known) agree with the call? Memoised per op."""
    material = desc[m.MATERIAL]
    if material is None:
        return True
    memo = op.want
    key = (material, check)
    if key not in memo:
        call = op.source
        try:
            if check == "success":
                memo[key] = bool(USES[call.op][2](material, call.args, call.out))
            else:
                memo[key] = bool(USES[call.op][3](material, call.args))
        except ValueError:          # a material of a size this reference does not cover
            memo[key] = True
    return memo[key]


def _allows(desc, flag, alg, key_type):
    """Could this key's policy and type allow the use?"""
    return m.may_have(desc, flag) and desc[m.ALG] in (None, alg) \
        and desc[m.TYPE] in (None, key_type)


def _may_refuse(desc, flag, alg):
    return m.may_lack(desc, flag) or desc[m.ALG] != alg


def _spec(op):
    flag, key_type, _, _ = USES[op.source.op]
    return flag, op.source.args["alg"], key_type


def _allowed_use(state, op, check):
    """A PRESENT key allows the use and its material (if known) agrees with ``check``."""
    if state is m.ABSENT:
        return ()
    flag, alg, key_type = _spec(op)
    ok = any(_allows(d, flag, alg, key_type) and _consistent(d, op, check) for d in state)
    return (state,) if ok else ()


def rule_use(state, op):
    return _allowed_use(state, op, "success")


@m.binding
def rule_signed(state, op):
    """A successful sign or verify: as rule_use, and it binds an unknown key pair to the public
    keys its signature recovers (so the signature is checked, whatever comes later)."""
    if state is m.ABSENT or all(d[m.MATERIAL] is not None for d in state):
        return rule_use(state, op)
    flag, alg, key_type = _spec(op)
    return _bind_public(state, signed_publics(op),
                        lambda d: _allows(d, flag, alg, key_type) and _consistent(d, op, "success"))


def signed_publics(op):
    """The public keys a successful sign or verify's signature recovers (memoised in op.want)."""
    if "publics" not in op.want:
        call = op.source
        op.want["publics"] = ref.recover(*SIGNED[call.op](call.args, call.out))
    return op.want["publics"]


def rule_use_rejected(state, op):
    return _allowed_use(state, op, "rejects")


def rule_use_denied(state, op):
    if state is m.ABSENT:
        return ()
    flag, alg, _ = _spec(op)
    return (state,) if any(_may_refuse(d, flag, alg) for d in state) else ()


@m.binding
def rule_export_public(state, op):
    """SUCCESS: a present P-256 key pair with this public key; binds an unknown one to it."""
    if state is m.ABSENT:
        return ()
    public = op.source.out["material"]
    return _bind_public(state, (_b(public),),
                        lambda d: d[m.TYPE] in (None, ECC_P256_PAIR) and
                        (d[m.MATERIAL] is None or m.public_hex(d[m.MATERIAL]) == public))


def rule_export_public_refused(state, op):
    """INVALID_ARGUMENT: a symmetric key has no public part."""
    ok = state is not m.ABSENT and any(d[m.TYPE] is None or d[m.TYPE] & 0x4000 == 0
                                       for d in state)
    return (state,) if ok else ()


def rule_derive_source(state, op):
    ok = state is not m.ABSENT and any(_allows(d, U_DERIVE, HKDF_SHA256, DERIVE_TYPE)
                                       for d in state)
    return (state,) if ok else ()


def rule_derive_denied(state, op):
    ok = state is not m.ABSENT and any(_may_refuse(d, U_DERIVE, HKDF_SHA256) for d in state)
    return (state,) if ok else ()


WHY = {
    rule_signed: lambda s, op: "no present key allows this use and yields this output (a public "
                               "key under which the signature verifies); state: "
                               + m.describe_state(s),
    rule_use: lambda s, op: "no present key allows this use and yields this output from its "
                            "material; state: " + m.describe_state(s),
    rule_use_rejected: lambda s, op: "no present key allows this use and rejects this input; "
                                     "state: " + m.describe_state(s),
    rule_use_denied: lambda s, op: "the key is absent, or its policy allows this use; state: "
                                   + m.describe_state(s),
    rule_export_public: lambda s, op: "no present P-256 key pair has this public key; state: "
                                      + m.describe_state(s),
    rule_export_public_refused: lambda s, op: "the key is absent or a key pair; state: "
                                              + m.describe_state(s),
    rule_derive_source: lambda s, op: "the secret key is absent or not an HKDF-SHA-256 DERIVE key "
                                      "with DERIVE usage; state: " + m.describe_state(s),
    rule_derive_denied: lambda s, op: "the secret key is absent or allows the derivation; state: "
                                      + m.describe_state(s),
}


# ---- the tables: legitimate statuses, and status -> rule per operation ----------------------

_USE_CODES = {"SUCCESS", "INVALID_HANDLE", "NOT_PERMITTED", "INVALID_ARGUMENT",
              "NOT_SUPPORTED"} | m.RESOURCE_ERRORS
_RANDOM_CODES = {"SUCCESS", "INSUFFICIENT_ENTROPY", "NOT_SUPPORTED"}
LEGITIMATE = {
    "purge": {"SUCCESS", "DOES_NOT_EXIST", "INVALID_HANDLE"},
    "open": {"SUCCESS", "DOES_NOT_EXIST", "NOT_SUPPORTED"} | m.RESOURCE_ERRORS,
    "close": {"SUCCESS", "INVALID_HANDLE"},
    "export_public": {"SUCCESS", "INVALID_HANDLE", "INVALID_ARGUMENT", "BUFFER_TOO_SMALL",
                      "NOT_SUPPORTED"} | m.RESOURCE_ERRORS,
    "derive_from": m.LEGITIMATE["derive"] | {"INVALID_HANDLE"},
    **{op: _USE_CODES | ({"INVALID_SIGNATURE"} if USES[op][3] else set()) for op in USES},
    "random": _RANDOM_CODES, "reseed": _RANDOM_CODES, "deplete": _RANDOM_CODES,
    "init": {"SUCCESS", "INSUFFICIENT_MEMORY", "INSUFFICIENT_ENTROPY"},   # no key: a no-op step
}
KEY_OPS = frozenset(LEGITIMATE)

_USE_RULES = {"SUCCESS": rule_use, "INVALID_SIGNATURE": rule_use_rejected,
              "NOT_PERMITTED": rule_use_denied, "INVALID_ARGUMENT": m.rule_present,
              "NOT_SUPPORTED": m.rule_present, "INVALID_HANDLE": m.rule_absent}
# op -> status -> (rule for a volatile id, rule for a persistent id); None: constrains nothing
_CACHE_RULES = {
    "purge": {"SUCCESS": (m.rule_present, m.rule_present), "DOES_NOT_EXIST": (m.rule_absent, None),
              "INVALID_HANDLE": (m.rule_absent, m.rule_absent)},
    "open": {"SUCCESS": (m.rule_present, m.rule_present),
             "DOES_NOT_EXIST": (m.rule_absent, m.rule_absent)},
    "close": {"SUCCESS": (m.rule_destroy, m.rule_present), "INVALID_HANDLE": (m.rule_absent, None)},
    "export_public": {"SUCCESS": (rule_export_public,) * 2, "INVALID_HANDLE": (m.rule_absent,) * 2,
                      "INVALID_ARGUMENT": (rule_export_public_refused,) * 2},
}
_DERIVE_SOURCE_RULES = {"SUCCESS": rule_derive_source, "ALREADY_EXISTS": rule_derive_source,
                        "NOT_PERMITTED": rule_derive_denied, "INVALID_HANDLE": m.rule_absent,
                        "INVALID_ARGUMENT": m.rule_present, "NOT_SUPPORTED": m.rule_present}


def key_ops(call):
    """The KeyOps of one statically valid call of an operation of KEY_OPS."""
    if call.op == "derive_from":
        return _derive_from_ops(call)
    key = call.args.get("key")
    if call.op in USES:
        rule = rule_signed if call.op in SIGNED and call.status == "SUCCESS" \
            else _USE_RULES.get(call.status)
    elif call.op in _CACHE_RULES and key:
        pair = _CACHE_RULES[call.op].get(call.status)
        rule = pair and pair[not m.VOLATILE_MIN <= key <= m.VOLATILE_MAX]
    else:
        rule = None       # the random generator, and id 0 (close: SUCCESS; purge: rejected)
    if rule is None:
        return ()
    op = m.KeyOp(call, key, rule, "", want={})
    if call.op == "mac_multipart":
        op.ret = call.args["mid"]   # only the setup looks the key up; mid: its return ticket
    return (op,)


def _derive_from_ops(call):
    """A read of the secret key (in its partition) and a create, like copy (model/key_store.py)."""
    ops = []
    rule = _DERIVE_SOURCE_RULES.get(call.status)
    if rule is not None:
        ops.append(m.KeyOp(call, call.args["src"], rule, " (secret)"))
    return ops + [op for op in m.create_ops(call) if op.role != " (source)"]


def derived_descs(source, call, key):
    """The descriptions (none or one) of the key derive_from makes from a secret key described
    by ``source``: none when that secret could not have been used."""
    if not _allows(source, U_DERIVE, HKDF_SHA256, DERIVE_TYPE):
        return ()
    desc = m.plain_desc(call, key)
    args, material = call.args, None
    if source[m.MATERIAL] is not None and m.raw_bytes_type(args["type"]) \
            and args["bits"] % 8 == 0 and args["bits"] > 0:
        material = m.hkdf_sha256(_b(args["salt"]), _b(source[m.MATERIAL]), _b(args["info"]),
                                  args["bits"] // 8).hex()
    return (desc[:m.MATERIAL] + (material,),)


def static_problem(call):
    """Problems of these operations that no interleaving explains (None if none)."""
    args = call.args
    if call.op == "open" and call.status == "SUCCESS" and call.out["key"] != args["key"]:
        return f"open of key {args['key']:#x} returned handle {call.out['key']:#x}"
    if call.op != "mac_multipart" or call.status is None:
        return None
    if not call.call < args["mid"] < call.ret:
        return "the multi-part setup's ticket is outside the call"
    if call.status != "SUCCESS" and args["stage"] > STAGE_SETUP:
        step = "update" if args["stage"] == STAGE_SETUP + 1 else "finish"
        return (f"multi-part MAC failed with {call.status} at {step} after its setup "
                "succeeded: the operation must keep its own copy of the key")
    return None

