"""Benchmark the history checker: time, CPU time and peak memory of `check_file` per history.

    python3 bench/bench_checker.py [--driver build/plain/psa-stress] [--jsonl]
                                   [--sizes 10000,100000,1000000] [--seed 1]
                                   [--scenarios all] [--python-up-to 100000] [--keep DIR]

Histories: the driver's real ones of the volatile-churn and derive-copy scenarios, or of
``--scenarios`` (``all``: every scenario of ``run.py list``; binary form, checked by the C fast
path, and up to ``--python-up-to`` calls also by Python alone; JSON Lines with --jsonl; each line
says who decided: C, C with Python explaining one violation per root cause, or Python and why
the core left it; ``--keep DIR`` keeps those the core left to Python there, to reproduce),
synthetic ones of the same lengths (to show cost is linear in length), and a
hot key (16 threads, one volatile id, 20 k calls). Each is checked in a fresh interpreter,
so peak memory (ru_maxrss) is that one check's. Targets: 1 M calls <= 5 s reading included,
hot key 20 k <= 2 s, peak <= 500 MB, >= 300 k calls/s on a 1 M-call history of any scenario
(docs/benchmarks.md).

``simulate`` is a discrete-event simulation of the sequential key store: each call gets an
interval [call, ret] and a linearization point inside it; results are computed by applying the
calls in linearization-point order, so every generated history is linearizable. The pytest
randomised test (tests/test_check.py) reuses it with small sizes and pending calls.
"""
import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

VOLATILE_MIN = 0x40000000
AES, CTR = 0x2400, 0x04C01000
EXPORT, COPY, SIGN_MESSAGE, SIGN_HASH = 0x1, 0x2, 0x400, 0x1000
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from scenarios import catalog  # noqa: E402  (after the path insert)

DRIVER_MIX = "import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3"  # volatile-churn
REGISTER_MIX = "import=3,generate=1,destroy=3,export=4,get_attributes=3"
DEFAULT_SCENARIOS = "volatile-churn,derive-copy"   # --scenarios: any of the catalogue's
PYTHON_UP_TO = 100_000   # also measure the Python path (no C fast path) up to this length
MIX = (("import", 3), ("generate", 2), ("derive", 1), ("copy", 1), ("destroy", 4),
       ("export", 6), ("get_attributes", 3))


def _hkdf(salt, secret, info, length):
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


class _Store:
    """The sequential key store the simulation linearizes into."""

    def __init__(self, rng, volatile_pool):
        self.rng = rng
        self.keys = {}
        self.pool = volatile_pool
        self.fresh = 0

    def material(self):
        self.fresh += 1
        return self.fresh.to_bytes(8, "big").hex() + self.rng.getrandbits(64).to_bytes(8, "big").hex()

    def allocate(self, args):
        if args["lifetime"]:
            return args["id"] if args["id"] not in self.keys else None
        for index in range(1, self.pool + 1):
            if VOLATILE_MIN + index not in self.keys:
                return VOLATILE_MIN + index
        return None

    def apply(self, op, args):
        """(status, out) of ``op`` at its linearization point."""
        if self.rng.random() < 0.01:
            return "INSUFFICIENT_MEMORY", None
        return getattr(self, "do_" + op)(args)

    def _create(self, args, desc):
        key = self.allocate(args)
        if key is None:
            return ("ALREADY_EXISTS" if args["lifetime"] else "INSUFFICIENT_MEMORY"), None
        desc = dict(desc, id=key)
        self.keys[key] = desc
        return "SUCCESS", {"key": key}

    def do_import(self, args):
        return self._create(args, dict(args))

    def do_generate(self, args):
        return self._create(args, dict(args, material=self.material()))

    def do_derive(self, args):
        material = _hkdf(bytes.fromhex(args["salt"]), bytes.fromhex(args["secret"]),
                         bytes.fromhex(args["info"]), args["bits"] // 8).hex()
        return self._create(args, dict(args, material=material))

    def do_copy(self, args):
        source, refusal = self._usable(args["src"], COPY)
        if refusal:
            return refusal, None
        if args["alg"] not in (0, source["alg"]) and source["alg"] != 0:
            return "INVALID_ARGUMENT", None
        alg = source["alg"] if args["alg"] == source["alg"] else 0
        desc = dict(source, lifetime=args["lifetime"], usage=source["usage"] & args["usage"],
                    alg=alg)
        return self._create(args, desc)

    def do_destroy(self, args):
        return ("SUCCESS", None) if self.keys.pop(args["key"], None) else ("INVALID_HANDLE", None)

    def do_export(self, args):
        key, refusal = self._usable(args["key"], EXPORT)
        if refusal:
            return refusal, None
        return "SUCCESS", {"material": key["material"]}

    def _usable(self, key_id, usage):
        """(key, None) when the key exists with the usage flag, else (None, the refusal)."""
        key = self.keys.get(key_id)
        if key is None:
            return None, "INVALID_HANDLE"
        if not key["usage"] & usage:
            return None, "NOT_PERMITTED"
        return key, None

    def do_get_attributes(self, args):
        key = self.keys.get(args["key"])
        if key is None:
            return "INVALID_HANDLE", None
        out = {name: key[name] for name in ("lifetime", "id", "type", "bits", "usage", "alg")}
        if out["usage"] & SIGN_HASH:
            out["usage"] |= SIGN_MESSAGE     # PSA reports the usage SIGN_HASH implies
        return "SUCCESS", out


def _target(rng, volatile_pool, persistent_ids):
    if persistent_ids and rng.random() < 0.3:
        return rng.randint(1, persistent_ids)
    return VOLATILE_MIN + rng.randint(1, volatile_pool)


def _arguments(rng, op, store, volatile_pool, persistent_ids):
    if op in ("destroy", "export", "get_attributes"):
        return {"key": _target(rng, volatile_pool, persistent_ids)}
    persistent = persistent_ids and rng.random() < 0.3
    lifetime, key = (1, rng.randint(1, persistent_ids)) if persistent else (0, 0)
    usage = rng.choice((EXPORT | COPY, EXPORT | COPY, EXPORT, COPY, EXPORT | COPY | SIGN_HASH))
    alg = rng.choice((CTR, CTR, 0))
    if op == "copy":
        return {"src": _target(rng, volatile_pool, persistent_ids), "lifetime": lifetime,
                "id": key, "usage": usage, "alg": alg}
    args = {"lifetime": lifetime, "id": key, "type": AES, "bits": 128, "usage": usage, "alg": alg}
    if op == "import":
        args["material"] = store.material()
    elif op == "derive":
        args.update(kdf="HKDF-SHA256", secret=store.material(), salt="5a5a", info="0102")
    return args


def simulate(seed, calls, threads=8, volatile_pool=8, persistent_ids=4, cut=None, mix=MIX):
    """Records (dicts, sorted by call) of a linearizable history; ``cut`` in (0, 1) stops the
    run early: calls in flight at the cut are pending, later ones are not recorded; ``mix`` is
    ((op, weight), ...)."""
    rng = random.Random(seed)
    store = _Store(rng, volatile_pool)
    ops, clocks = [], [rng.random() for _ in range(threads)]
    weights = [w for _, w in mix]
    names = [n for n, _ in mix]
    for index in range(calls):
        thread = index % threads
        start = clocks[thread] + rng.expovariate(5.0)
        end = start + rng.expovariate(1.0)
        clocks[thread] = end
        op = rng.choices(names, weights)[0]
        ops.append([start, start + (end - start) * rng.random(), end, thread, op,
                    _arguments(rng, op, store, volatile_pool, persistent_ids), None, None])
    for entry in sorted(ops, key=lambda e: e[1]):
        entry[6], entry[7] = store.apply(entry[4], entry[5])
    horizon = None
    if cut is not None:
        horizon = sorted(e[0] for e in ops)[int(len(ops) * cut)]
        ops = [e for e in ops if e[0] < horizon]
    return _stamp(ops, horizon)


def _stamp(ops, horizon):
    times = [e[0] for e in ops] + [e[2] for e in ops if horizon is None or e[2] < horizon]
    stamp = {t: n for n, t in enumerate(sorted(times), 1)}
    records, seqs = [], {}
    for start, _, end, thread, op, args, status, out in sorted(ops, key=lambda e: e[0]):
        seq = seqs.get(thread, 0)
        seqs[thread] = seq + 1
        done = end in stamp and (horizon is None or end < horizon)
        record = {"thread": thread, "seq": seq, "op": op, "call": stamp[start],
                  "ret": stamp[end] if done else None, "status": status if done else None,
                  "args": args}
        if done and status == "SUCCESS" and out:
            record["out"] = out
        records.append(record)
    return records


def write_history(path, records, threads, complete=True, seed=0):
    header = {"format": "psa-stress-history", "version": 1, "mbedtls_version": "3.6.6",
              "variant": "synthetic", "key_store": {"kind": "dynamic", "slot_count": 32},
              "threads": threads, "seed": seed, "scenario": "bench"}
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(header) + "\n")
        for record in records:
            stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        stream.write(json.dumps({"end": {"records": len(records), "complete": complete}}) + "\n")


def measure(path, fast=True):
    """Check ``path`` in a fresh interpreter: (verdict, calls, seconds, cpu seconds, peak MB,
    who decided: C, C with Python explaining one violation per signature, or Python and why
    the core left it); ``fast=False`` disables the C fast path (scenarios/checker/fast_check.py)."""
    code = ("import json, resource, sys, time; sys.path.insert(0, sys.argv[2]);"
            "from scenarios.checker.check import check_file;"
            "t, c = time.perf_counter(), time.process_time(); r = check_file(sys.argv[1], final=False);"
            "w, p = time.perf_counter() - t, time.process_time() - c;"
            "m = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
            "from scenarios.checker import fast_check;"
            "a = None if r.fast_path or sys.argv[3] == '0' else fast_check.run_core(sys.argv[1]);"
            "by = 'C' if r.fast_path else 'python' if a is None else 'C, Python explains %d' % len("
            "{v.signature for v in a.violations}) if a.violated else 'python (%s)' % a.why;"
            "print(json.dumps([r.verdict, r.calls, w, p, m, by]))")
    env = dict(os.environ, **({} if fast else {"PSA_STRESS_FAST_CHECK": "0"}))
    out = subprocess.run([sys.executable, "-c", code, path, ROOT, str(int(fast))], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def _report(label, path, fast=True):
    """One line: calls, wall and CPU seconds of check_file (reading included), calls/s on
    both, peak memory, verdict, and which checker decided it (C, or Python and why); returns
    the latter."""
    verdict, calls, seconds, cpu, peak, by = measure(path, fast)
    print(f"{label:<46} {calls:>9,} calls  {seconds:6.2f} s {calls / seconds:>9,.0f}/s  "
          f"cpu {cpu:6.2f} s {calls / cpu:>9,.0f}/cpu-s  peak {peak:5.0f} MB  {verdict}  {by}",
          flush=True)
    return by


def _keep(path, keep, name, calls):
    """Move the history ``path`` into the directory ``keep`` (the core left it to Python)."""
    os.makedirs(keep, exist_ok=True)
    kept = os.path.join(keep, f"{name}-{calls}-{len(os.listdir(keep))}")
    shutil.move(path, kept)
    print(f"  kept {kept}", flush=True)


def _driver_history(driver, directory, calls, threads, binary, mix=DRIVER_MIX, extra=()):
    """A real history of the driver: ``threads`` threads, ``calls`` calls of ``mix``, the
    catalogue's default pool of shared ids; ``extra``: more driver flags."""
    path = os.path.join(directory, f"driver-{calls}-{threads}-{len(mix)}-{len(extra)}"
                        + ("" if binary else ".jsonl"))
    subprocess.run([driver, "--threads", str(threads), "--ops", str(calls), "--mix", mix,
                    *extra, "--history", path], check=False, capture_output=True)
    return path     # a run that fails (a known issue, a crash) still leaves its history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", help="psa-stress executable: also measure its real histories")
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="history lengths (calls), comma-separated")
    parser.add_argument("--jsonl", action="store_true",
                        help="also measure the driver's JSON Lines form (slower to read)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                        help="with --driver: the catalogue's scenarios whose workloads make the "
                        f"real histories, or all (default {DEFAULT_SCENARIOS})")
    parser.add_argument("--python-up-to", type=int, default=PYTHON_UP_TO,
                        help="also check with Python alone the real histories up to this length "
                        f"(default {PYTHON_UP_TO}; 0: never)")
    parser.add_argument("--keep", metavar="DIR",
                        help="with --driver: keep in DIR the real histories the C core left "
                        "to Python (to reproduce them)")
    options = parser.parse_args()
    names = [s.name for s in catalog.SCENARIOS] if options.scenarios == "all" else \
        options.scenarios.split(",")
    sizes = [int(size) for size in options.sizes.split(",")]
    directory = tempfile.mkdtemp(prefix="bench-checker-")
    try:
        if options.driver:
            for calls in sizes:
                for name in names:
                    scenario = catalog.get(name)
                    path = _driver_history(options.driver, directory, calls, scenario.threads,
                                           True, scenario.mix, scenario.driver_args())
                    by = _report(f"driver {name}, binary, C fast path", path)
                    if calls <= options.python_up_to:
                        _report(f"driver {name}, binary, Python only", path, fast=False)
                    if options.keep and by.startswith("python"):
                        _keep(path, options.keep, name, calls)
                    else:
                        shutil.rmtree(path)    # a 1 M-call history takes about 230 MB
                if options.jsonl:
                    _report("driver volatile-churn, JSON Lines", _driver_history(
                        options.driver, directory, calls, 8, False))
        for calls in sizes:
            path = os.path.join(directory, f"synthetic-{calls}.jsonl")
            write_history(path, simulate(options.seed, calls, 8), 8, seed=options.seed)
            _report("synthetic JSON Lines, 8 threads, 8+4 ids", path)
        path = os.path.join(directory, "hot.jsonl")
        write_history(path, simulate(options.seed, 20_000, 16, volatile_pool=1, persistent_ids=0),
                      16, seed=options.seed)
        _report("synthetic hot key: 16 threads, one id", path)
    finally:
        shutil.rmtree(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
