"""Key material shared across key ids: a copy holds its source's bytes, a key derived from a
stored key holds HKDF of its bytes (docs/checker.md §2, "Material across keys").

Public API::

    MaterialLinks()
        .alias(target, candidates)     # a copy or derive_from create (KeyOp) was resolved
        .reveal(export, candidates)    # a successful export (KeyOp) was resolved
        .reveal_public(op, candidates) # a successful export_public, sign or verify (KeyOp)
        .conflicts                     # [Conflict]: bytes no sequential execution explains
        .weakened                      # key -> why its check is weaker than exact (below)
    Conflict: key, message, calls (the history Calls that prove it)

The per-key check binds a generated key's unknown material inside its own partition only. This
module carries what one key's history teaches about another's: a union-find over create
*instances* (KeyOps of rule ``key_store.rule_create``). Every deduction holds in every
linearization of a correct execution (docs/checker.md §2), so a conflict is never a false alarm:

- an instance created by a copy whose only candidate source instance is S holds S's bytes: the
  two instances share one material (``alias``);
- a successful export whose key id has exactly one candidate instance I (same rule as a copy's
  candidates: I.call < export.ret, not removed by a create or destroy that returned before the
  export was invoked) read I: I's material is the exported bytes (``reveal``);
- an instance derived by derive_from from exactly one candidate S holds HKDF-SHA-256 of S's
  bytes (when the derived type's material is raw bytes), computed once S's bytes are known;
- a successful export_public, sign or verify whose key has one candidate instance I narrows
  the public keys I's P-256 pair may have (the one exported, or those the signature recovers):
  I's bytes, once known, must be a scalar of one of them, and two such sets must meet.

A copy or export with several candidate instances, one of them of unknown material, teaches
nothing here (its own partition still checks it against every candidate's description); a copy
whose candidate is a copy still in flight, or a copy cycle, takes "any key" from it; a key
derived from a stored one into a key pair has a material tied to nothing (``UNTIED_DERIVATION``:
model_use.derived_descs computes raw bytes only); a copy or
derive_from whose source may have changed while it ran (several candidates, or one that had not
returned when it was invoked) has its source's read and its target's creation checked in two
partitions that nothing ties (``SPLIT``). All are approximations (docs/checker.md §8), and each
key they touch is counted in ``weakened``.
Nodes live on their KeyOps (``KeyOp.node``): memory follows the instances still referenced.
"""
from scenarios.model import key_store as psa
from scenarios.model import key_use as model_use

ANY_KEY = ("a copy read a candidate that was itself a copy still in flight (or a copy cycle): "
           "that candidate stands for any key")
SEVERAL_SOURCES = ("copied or derived from one of several source instances, one of unknown "
                   "material: its bytes are not tied to its source's")
SEVERAL_INSTANCES = ("an export that may have read one of several instances, one of unknown "
                     "material, ties no bytes across keys")
WILDCARD = "a pending create with no id may have made it (added to every volatile id)"
UNBOUND_USE = ("a key use (cipher, MAC, AEAD, a failed verify) met a material still unknown, "
               "which accepts any output")
UNTIED_DERIVATION = ("derived from a stored key into a type whose material is not raw bytes "
                     "(a key pair): its bytes are not tied to its secret's")
SPLIT = ("copied or derived while its source changed (several candidate source instances, or "
         "one created while the copy ran): the source's read and the target's creation are "
         "checked in two partitions, not tied to each other")


class Conflict:
    __slots__ = ("key", "message", "calls")

    def __init__(self, key, message, calls):
        self.key = key
        self.message = message
        self.calls = calls


class _Node:
    """One instance's material: a union-find node; the root holds what is known."""
    __slots__ = ("parent", "value", "witness", "derived", "create", "shared", "publics",
                 "public_witness", "link")

    def __init__(self, create):
        self.parent = None
        self.value = None          # root: the bytes (hex), once known
        self.witness = None        # root: the Call that taught them
        self.derived = None        # root: [(node, derive_from Call)] computed from its bytes
        self.create = create       # the create Call of the instance
        self.shared = False        # root: its material is linked to another instance's
        self.link = None           # root: the first copy or derive_from that linked it
        self.publics = None        # root: the public keys (hex) its pair may have, if narrowed
        self.public_witness = None


class MaterialLinks:
    """See the module docstring."""

    def __init__(self):
        self.conflicts = []
        self.weakened = {}

    def weaken(self, key, why):
        self.weakened.setdefault(key, why)

    def alias(self, target, candidates):
        """``target``: a copy's or derive_from's create KeyOp whose descriptions were just
        computed from ``candidates`` (the source instances)."""
        call = target.source
        if any(c.descs is None for c in candidates):
            self.weaken(target.key, ANY_KEY)
        if call.op == "derive_from" and not _derived_material_is_raw(call.args):
            self.weaken(target.key, UNTIED_DERIVATION)   # model_use.derived_descs: unknown
        if len(candidates) != 1:
            if any(_unknown(c.descs) for c in candidates):
                self.weaken(target.key, SEVERAL_SOURCES)
            if candidates:        # none: no instance to read, the target's create is refused
                self.weaken(target.key, SPLIT)
            return
        source = candidates[0]
        if not _settled_before(source, target.source):
            self.weaken(target.key, SPLIT)
        if source.node is None and target.node is None and _known_material(source.descs):
            return                 # one known material on both sides: the partitions check it
        if call.op == "copy":
            self._union(self._node(source), self._node(target), call)
        elif _derived_material_is_raw(call.args):
            root, node = self._find(self._node(source)), self._node(target)
            root.derived = (root.derived or []) + [(node, call)]
            root.shared = self._find(node).shared = True
            root.link = root.link or call
            if root.value is not None:
                self._propagate(root, [(self._node(target), call)])

    @staticmethod
    def may_learn(creates):
        """Could a reader of one of these instances teach something or be approximated? Not
        when each has one known material and is linked to nothing (per export: kept cheap)."""
        material = psa.MATERIAL
        for create in creates:
            descs = create.descs
            if create.node is not None or descs is None or len(descs) != 1:
                return True
            for desc in descs:
                if desc[material] is None:
                    return True
        return False

    def reveal(self, export, candidates):
        """A successful export whose key's candidate instances are ``candidates``."""
        instance = self._read(export, candidates)
        if instance is not None:
            self._learn(self._node(instance), export.want, export.source, instance.source)

    def reveal_public(self, op, candidates):
        """A successful export_public, sign or verify whose key's candidate instances are
        ``candidates``."""
        instance = self._read(op, candidates)
        if instance is None:
            return
        call = op.source
        if op.rule is model_use.rule_export_public:
            publics = frozenset((call.out["material"],))
        else:
            publics = frozenset(q.hex() for q in model_use.signed_publics(op))
        self._narrow(self._node(instance), publics, call, instance.source)

    def _read(self, op, candidates):
        """The one instance ``op`` read, if it can teach something across keys."""
        if len(candidates) != 1:
            if any(_unknown(c.descs) for c in candidates):
                self.weaken(op.key, SEVERAL_INSTANCES)
            return None
        instance = candidates[0]
        if instance.node is None and _known_material(instance.descs):
            return None            # one known material, linked to nothing: its partition
        return instance            # checks it

    # ---- union-find ----

    def _node(self, op):
        node = op.node
        if node is None:
            node = op.node = _Node(op.source)
            known = _known_material(op.descs)
            if known is not None:
                self._learn(node, known, op.source)
        return node

    @staticmethod
    def _find(node):
        while node.parent is not None:
            if node.parent.parent is not None:
                node.parent = node.parent.parent
            node = node.parent
        return node

    def _union(self, a, b, why):
        a, b = self._find(a), self._find(b)
        if a is b:
            return
        b.parent = a
        a.shared, a.link = True, a.link or b.link or why
        derived_b = b.derived or []
        if b.value is not None:
            self._learn(a, b.value, b.witness, why)    # and a's own derivations learn
        a.derived = ((a.derived or []) + derived_b) or None
        if a.value is not None:
            self._propagate(a, derived_b)
        if b.publics is not None:
            self._narrow(a, b.publics, b.public_witness, why)

    def _learn(self, node, value, witness, via=None):
        """The node's material is ``value``, as ``witness`` shows (of the instance created by
        ``via``)."""
        root = self._find(node)
        if root.value is None:
            if root.publics is not None and psa.public_hex(value) not in root.publics:
                self._conflict(root, psa.short_hex(value), witness, via)
                return
            root.value, root.witness = value, witness
            self._propagate(root, root.derived or [])
        elif root.value != value:
            self._conflict(root, psa.short_hex(value), witness, via if root.shared else None)

    def _narrow(self, node, publics, witness, via):
        """The node's pair has one of these public keys (hex)."""
        root = self._find(node)
        if root.value is not None:
            fits = psa.public_hex(root.value) in publics
        else:
            fits = root.publics is None or root.publics & publics
            if fits:
                root.publics = publics if root.publics is None else root.publics & publics
                root.public_witness = witness
        if not fits:
            self._conflict(root, "a pair whose public key is " + " or ".join(
                psa.short_hex(p) for p in sorted(publics)), witness, via)

    def _propagate(self, root, derived):
        for node, call in derived:
            args = call.args
            value = psa.hkdf_sha256(bytes.fromhex(args["salt"]), bytes.fromhex(root.value),
                                     bytes.fromhex(args["info"]), args["bits"] // 8).hex()
            self._learn(node, value, call, call)

    def _conflict(self, root, found, witness, why):
        """Two incompatible facts about one material (``found``: the text of the new one);
        within one instance (nothing shared) the key's own partition reports it."""
        if not root.shared and why is None:
            return
        known, taught = (psa.short_hex(root.value), root.witness) if root.value is not None else \
            ("a pair whose public key is " + " or ".join(psa.short_hex(p) for p in
                                                          sorted(root.publics)),
             root.public_witness)
        calls = [c for c in (root.create, why, root.link, taught, witness) if c is not None]
        calls = sorted({c.line: c for c in calls}.values(), key=lambda c: c.line)
        key = witness.out.get("key") if witness.op in psa.CREATE_OPS else witness.args["key"]
        self.conflicts.append(Conflict(key, (
            f"one key material, shared through copies or derivations from the instance created "
            f"at line {root.create.line}, is {known} (line {taught.line}) and {found} (line "
            f"{witness.line}): a copy holds its source's bytes and a key derived from a stored "
            f"key HKDF of them"), calls))


def _unknown(descs):
    """Unresolved, or some description's material is unknown (a plain loop: per export)."""
    if descs is None:
        return True
    for desc in descs:
        if desc[psa.MATERIAL] is None:
            return True
    return False


def _settled_before(instance, call):
    """Is the split exact for a ``call`` whose one candidate source is ``instance``? Yes when
    the instance returned before the call was invoked (its read can be placed right at the
    call's start, before the target's creation) and its descriptions agree on every attribute
    (the material is tied by the union-find)."""
    if instance.ret is None or instance.ret >= call.call or instance.descs is None:
        return False
    return len({desc[:psa.MATERIAL] for desc in instance.descs}) == 1


def _known_material(descs):
    """The one material every description has, if it is known bytes (per export: the one
    description case without a set)."""
    if not descs:
        return None
    if len(descs) == 1:
        for desc in descs:
            material = desc[psa.MATERIAL]
    else:
        materials = {d[psa.MATERIAL] for d in descs}
        if len(materials) != 1:
            return None
        material = next(iter(materials))
    return material if material is not None and ":" not in material else None


def _derived_material_is_raw(args):
    return psa.raw_bytes_type(args["type"]) and args["bits"] % 8 == 0 and args["bits"] > 0
