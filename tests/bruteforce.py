"""Random small PSA histories and a brute-force linearizability oracle (tests/test_bruteforce.py).

``random_history(rng)`` simulates a sequential key store under a random interleaving of at
most 6 calls on at most 3 threads (import, generate, copy, derive_from, destroy, export; every
call takes effect at points inside its interval, a copy or derive_from at two: the read of its
source, then the creation of its target), then perturbs one output, status or stamp half of the
time. It returns the records (JSON-form dicts, by call stamp) and the thread count.

``linearizable(records)`` tries every order of the calls' effect points that respects real time
(a call that returned before another was invoked takes every effect first; a read before its
create) against ONE sequential store holding every key, whose generated materials are unknowns
bound by their first export and carried by copies and derivations. Nothing is split per key,
nothing is approximated: it is the definition, feasible only because histories are tiny.

Run ``python3 tests/bruteforce.py N`` to compare the checkers on N cases outside the suite.
"""
import functools
import hashlib
import hmac
import random

VOLATILE = 0x40000000
AES, DERIVE_TYPE, HKDF = 0x2400, 0x1200, 0x08000109
EXPORT, COPY, DERIVE = 0x1, 0x2, 0x4000
INFO = "7073612d737472657373"
OPS = ("import", "generate", "copy", "derive_from", "destroy", "export")
WEIGHTS = (1, 3, 3, 2, 1, 4)
USAGES = (EXPORT | COPY, EXPORT | COPY | DERIVE, EXPORT, COPY | DERIVE, EXPORT | DERIVE)


def hkdf(salt, secret, info, length):
    prk = hmac.new(bytes.fromhex(salt), bytes.fromhex(secret), hashlib.sha256).digest()
    return hmac.new(prk, bytes.fromhex(info) + b"\x01", hashlib.sha256).digest()[:length].hex()


# ---- the sequential store: key = (type, usage, material term); a term is hex bytes, ("var",
# stamp) for a generated key, or ("hkdf", base term, salt) for a key derived from a stored one

def _value(term, bound):
    """The bytes of a term, or None while unknown."""
    if isinstance(term, str):
        return term
    if term[0] == "var":
        return bound.get(term)
    base = _value(term[1], bound)
    return hkdf(term[2], base, INFO, 16) if base is not None else bound.get(term)


def _bind(term, material, bound):
    """The bindings once the key holding ``term`` exported ``material``, or None if no binding
    allows it."""
    known = _value(term, bound)
    if known is not None:
        return bound if known == material else None
    bound = {**bound, term: material}
    for other, value in bound.items():      # a derivation whose base is now known
        if other[0] == "hkdf" and _value(other[1], bound) is not None \
                and hkdf(other[2], _value(other[1], bound), INFO, 16) != value:
            return None
    return bound


def _effects(record):
    """The effect points of a call: ('read', ...) then ('create', ...) for copy and
    derive_from, else one."""
    op, status = record["op"], record["status"]
    if status not in ("SUCCESS", "INVALID_HANDLE", "NOT_PERMITTED"):
        return ()                                  # a resource error: no effect
    if op in ("copy", "derive_from"):
        return ("read", "create") if status == "SUCCESS" else ("read",)
    return ("one",)


def _step(record, effect, keys, bound, carried):
    """(keys, bound, carried) after one effect point, or None if it is illegal there.
    ``carried``: what a copy or derive_from read from its source (its create uses it)."""
    op, status, args, out = record["op"], record["status"], record["args"], record.get("out")
    if op in ("import", "generate"):
        key = out["key"] if status == "SUCCESS" else None
        if key is None:
            return keys, bound, carried
        if key in keys:
            return None
        material = args["material"] if op == "import" else ("var", record["call"])
        return {**keys, key: (args["type"], args["usage"], material)}, bound, carried
    if op == "destroy":
        present = args["key"] in keys
        if status == "SUCCESS":
            return ({k: v for k, v in keys.items() if k != args["key"]}, bound, carried) \
                if present else None
        return (keys, bound, carried) if not present else None
    if op == "export":
        key = keys.get(args["key"])
        if status == "INVALID_HANDLE":
            return (keys, bound, carried) if key is None else None
        if key is None or (status == "NOT_PERMITTED") == bool(key[1] & EXPORT):
            return None
        if status == "NOT_PERMITTED":
            return keys, bound, carried
        bound = _bind(key[2], out["material"], bound)
        return None if bound is None else (keys, bound, carried)
    return _two_key(record, effect, keys, bound, carried)


def _two_key(record, effect, keys, bound, carried):
    op, status, args, out = record["op"], record["status"], record["args"], record.get("out")
    if effect == "read":
        source = keys.get(args["src"])
        if status == "INVALID_HANDLE":
            return (keys, bound, carried) if source is None else None
        if source is None:
            return None
        flag = COPY if op == "copy" else DERIVE
        allowed = bool(source[1] & flag) and (op == "copy" or source[0] == DERIVE_TYPE)
        if allowed != (status == "SUCCESS"):
            return None
        return keys, bound, {**carried, record["call"]: source}
    key, source = out["key"], carried[record["call"]]
    if key in keys:
        return None
    if op == "copy":
        made = (source[0], source[1] & args["usage"], source[2])
    else:
        made = (args["type"], args["usage"], ("hkdf", source[2], args["salt"]))
        if _value(made[2], bound) is not None:
            made = made[:2] + (_value(made[2], bound),)
    return {**keys, key: made}, bound, carried


def linearizable(records):
    """Is there an order of every effect point, respecting real time, legal in one store?"""
    points = [(index, effect) for index, record in enumerate(records)
              for effect in _effects(record)]
    before = []
    for index, effect in points:
        record = records[index]
        mask = 0
        for other, (j, other_effect) in enumerate(points):
            if records[j]["ret"] < record["call"] or (j == index and other_effect == "read"
                                                      and effect == "create"):
                mask |= 1 << other
        before.append(mask)
    full = (1 << len(points)) - 1

    @functools.lru_cache(maxsize=None)
    def search(placed, state):
        if placed == full:
            return True
        keys, bound, carried = (dict(part) for part in state)
        for position, (index, effect) in enumerate(points):
            if placed >> position & 1 or before[position] & placed != before[position]:
                continue
            after = _step(records[index], effect, keys, bound, carried)
            if after is not None and search(placed | 1 << position,
                                            tuple(frozenset(p.items()) for p in after)):
                return True
        return False
    return search(0, (frozenset(), frozenset(), frozenset()))


# ---- random histories ------------------------------------------------------------------------

def _args(rng, op, live, known):
    """A call's arguments, chosen when it is invoked."""
    ids = sorted(live) if live and rng.random() < 0.85 else [VOLATILE + 1, VOLATILE + 2]
    if op in ("import", "generate"):
        key_type = rng.choice((AES, DERIVE_TYPE))
        args = {"lifetime": 0, "id": 0, "type": key_type, "bits": 128,
                "usage": rng.choice(USAGES) & (~DERIVE if key_type == AES else ~0), "alg": HKDF}
        if op == "import":
            known[0] += 1
            args["material"] = f"{known[0]:02x}" * 16
        return args
    if op == "copy":
        return {"src": rng.choice(ids), "lifetime": 0, "id": 0,
                "usage": rng.choice(USAGES), "alg": HKDF}
    if op == "derive_from":
        return {"lifetime": 0, "id": 0, "type": AES, "bits": 128, "usage": EXPORT | COPY,
                "alg": HKDF, "src": rng.choice(ids), "kdf": "HKDF-SHA256",
                "salt": f"{rng.randrange(256):02x}" * 16, "info": INFO}
    return {"key": rng.choice(ids)}


class _Store:
    """The simulated implementation: volatile ids 1..3, lowest free first."""

    def __init__(self, rng):
        self.rng = rng
        self.keys = {}

    def free_id(self):
        return next((VOLATILE + i for i in (1, 2, 3) if VOLATILE + i not in self.keys), None)

    def effect(self, record, effect, carried):
        """Apply one effect point, filling the record's status and outputs."""
        op, args = record["op"], record["args"]
        if op in ("import", "generate") or effect == "create":
            key = self.free_id()
            if key is None:
                record["status"] = "INSUFFICIENT_MEMORY"
                return
            if op == "import":
                made = (args["type"], args["usage"], args["material"])
            elif op == "generate":
                made = (args["type"], args["usage"], self.rng.randbytes(16).hex())
            elif op == "copy":
                made = (carried[0], carried[1] & args["usage"], carried[2])
            else:
                made = (AES, args["usage"], hkdf(args["salt"], carried[2], INFO, 16))
            self.keys[key] = made
            record["status"], record["out"] = "SUCCESS", {"key": key}
        elif op == "destroy":
            record["status"] = "SUCCESS" if self.keys.pop(args["key"], None) else \
                "INVALID_HANDLE"
        elif op == "export":
            key = self.keys.get(args["key"])
            record["status"] = "INVALID_HANDLE" if key is None else \
                "NOT_PERMITTED" if not key[1] & EXPORT else "SUCCESS"
            if key is not None and key[1] & EXPORT:
                record["out"] = {"material": key[2]}
        else:
            return self._read(record, carried)

    def _read(self, record, carried):
        source = self.keys.get(record["args"]["src"])
        if source is None:
            record["status"] = "INVALID_HANDLE"
            return None
        if not source[1] & (COPY if record["op"] == "copy" else DERIVE):   # DERIVE: a DERIVE key
            record["status"] = "NOT_PERMITTED"
            return None
        return source


def random_history(rng, calls=None, threads=None):
    """(records, threads) of a simulated run, perturbed half of the time (module docstring)."""
    threads = threads or rng.randint(1, 3)
    count = calls or rng.randint(1, 6)
    plan = [[] for _ in range(threads)]
    ops = rng.choices(OPS, WEIGHTS, k=count)
    if count >= 4 and rng.random() < 0.5:      # a generated key, shared, exported twice
        ops[:4] = ["generate", rng.choice(("copy", "derive_from")), "export", "export"]
    for op in ops:
        plan[rng.randrange(threads)].append(op)
    steps = {t: [] for t in range(threads)}
    for thread, ops in enumerate(plan):
        for op in ops:
            steps[thread] += [("call", op), *(("lp", n) for n in
                                              range(2 if op in ("copy", "derive_from") else 1)),
                              ("ret", op)]
    records = _run(rng, steps)
    if rng.random() < 0.5:
        _perturb(rng, records)
    return sorted(records, key=lambda r: r["call"]), threads


def _run(rng, steps):
    store, known, stamp, records = _Store(rng), [0], 0, []
    current, carried, seqs = {}, {}, {}
    while any(steps.values()):
        thread = rng.choice([t for t, left in steps.items() if left])
        kind, what = steps[thread].pop(0)
        stamp += 1
        if kind == "call":
            seqs[thread] = seqs.get(thread, -1) + 1
            record = {"thread": thread, "seq": seqs[thread], "op": what, "call": stamp,
                      "ret": None, "status": None, "args": _args(rng, what, store.keys, known)}
            current[thread] = record
            records.append(record)
        elif kind == "lp":
            record = current[thread]
            if record["status"] not in (None, "SUCCESS") or (what == 1 and thread not in
                                                              carried):
                continue                           # the read failed: no create
            effect = "create" if what == 1 else "read"
            if effect == "read" and record["op"] in ("copy", "derive_from"):
                source = store.effect(record, "read", None)
                if source is not None:
                    carried[thread] = source
            else:
                store.effect(record, effect, carried.pop(thread, None))
        else:
            current[thread]["ret"] = stamp
            carried.pop(thread, None)
    return records


def _perturb(rng, records):
    victim = rng.choice(records)
    choice = rng.choice((0, 0, 0, 1, 2))
    if choice == 0 and victim.get("out", {}).get("material"):
        victim["out"]["material"] = rng.choice([r["out"]["material"] for r in records
                                                if r.get("out", {}).get("material")]
                                               + [r["args"]["material"] for r in records
                                                  if "material" in r["args"]] + ["ee" * 16])
    elif choice == 1 and victim["op"] in ("destroy", "export") and victim["status"] in (
            "SUCCESS", "INVALID_HANDLE"):
        victim["status"] = "INVALID_HANDLE" if victim["status"] == "SUCCESS" else "SUCCESS"
        victim.pop("out", None)
        if victim["status"] == "SUCCESS" and victim["op"] == "export":
            victim["out"] = {"material": rng.choice(["ee" * 16, "01" * 16])}
    elif choice == 2 and len(records) > 1:
        other = rng.choice(records)
        victim["ret"], other["ret"] = other["ret"], victim["ret"]
        if victim["ret"] <= victim["call"] or other["ret"] <= other["call"]:
            victim["ret"], other["ret"] = other["ret"], victim["ret"]


def _main(cases):
    """Python vs brute force on every case, the C core on every case Python rejects and on
    every tenth it accepts; prints the counts."""
    import itertools
    import os
    import sys
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from scenarios.checker import fast_check
    from tests.test_bruteforce import compare_many
    from tests.test_fast_check import write_binary
    core = {True: 0, False: 0}
    names = itertools.count()
    with tempfile.TemporaryDirectory() as directory:
        def core_check(records, threads, verdict):
            number = next(names)
            if verdict == "ok" and number % 10:
                return
            answer = fast_check.run_core(write_binary(os.path.join(directory, str(number)),
                                                      records, threads))
            assert not answer.ok or verdict == "ok", records
            core[answer.ok] += 1
        counts = compare_many(cases, seed=int(os.environ.get("SEED", "2026")),
                              core_check=core_check if fast_check.library() else None)
    print(f"{cases} cases: (brute force, Python) {counts}; C core ok {core[True]}, "
          f"left to Python {core[False]}; no disagreement")


if __name__ == "__main__":
    import sys
    _main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
