"""The scenario catalogue: name -> workload for the driver, and the property it attacks.

A scenario is data only: which operations in which proportions, on how small a pool of ids, with
how many threads and which build variant. ``runner.py`` turns it into a driver command line.
"""
from dataclasses import dataclass

from scenarios.setup.source import SetupError

ENGINES = ("os", "delay", "pct", "random")       # the driver's --sched engines (nemesis.h)


@dataclass(frozen=True)
class Scenario:
    name: str
    attacks: str                  # the property under attack, one sentence
    mix: str                      # driver --mix: op=weight,...
    threads: int = 8
    volatile_pool: int = 8
    persistent_ids: int = 4
    persistent_percent: int = 0
    variant: str = "tsan"
    flags: tuple = ()             # driver switches: --overlap-destroy, --init-race, ...
    key_kinds: str = ""           # driver --key-kinds (kinds of key creates make); "": all
    # A known issue of the library under test (docs/known-issues.md): the failures of these
    # oracle kinds ("violation", "tsan", ...) are expected, reported with the reason, and do
    # not fail the suite. Empty: every failure counts.
    known_issue: str = ""
    known_oracles: tuple = ()
    # The scenarios of one family attack one part of the core (scenarios/campaign/portfolio.py
    # gives every family a run before any family gets a second); "": a family of its own.
    family: str = ""

    @property
    def family_name(self):
        return self.family or self.name

    @property
    def engines(self):
        """The scheduling engines this scenario can run under: the one its flags pin
        (``--sched``), else every engine of the nemesis."""
        if "--sched" in self.flags:
            return (self.flags[self.flags.index("--sched") + 1],)
        return ENGINES

    def driver_args(self):
        return ["--scenario", self.name, "--mix", self.mix,
                "--volatile-pool", str(self.volatile_pool),
                "--persistent-ids", str(self.persistent_ids),
                "--persistent-percent", str(self.persistent_percent), *self.flags,
                *(("--key-kinds", self.key_kinds) if self.key_kinds else ())]


SCENARIOS = (
    Scenario(
        "volatile-churn",
        "Volatile ids are reused at once after destroy (LIFO free list): a lookup through a "
        "stale id must see either nothing or the new key, never a mix, and no two live keys "
        "share an id (H1, H4-H6, H8).",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3",
        # symmetric keys only: the key store, not P-256 arithmetic, is what this churns
        key_kinds="aes,hmac,derive",
        family="churn"),
    Scenario(
        "persistent-collide",
        "Creates of the same few persistent ids collide: at most one succeeds while the id is "
        "absent, ALREADY_EXISTS needs a live key, a destroy makes the id absent at once, and "
        "storage and slots agree (H2-H4, A8).",
        mix="import=3,generate=1,destroy=3,export=4,get_attributes=2",
        persistent_ids=3, persistent_percent=100,
        family="persistent"),
    Scenario(
        "derive-copy",
        "Keys derived or copied while other threads destroy the source: a copy holds exactly its "
        "source's material with the intersected policy, a derived key holds the HKDF output, "
        "and a destroyed source yields INVALID_HANDLE, never a half-built key (H1, H7, H8).",
        mix="derive=3,copy=3,import=2,generate=1,destroy=3,export=4,get_attributes=2",
        persistent_percent=25,
        family="derive-copy"),
    Scenario(
        "eviction-storm",
        "More persistent ids (40) than cache slots (static store, 16): keys are evicted and "
        "reloaded from storage all the time while readers pin some of them; a reload must "
        "bring back exactly the stored key, creates may fail INSUFFICIENT_MEMORY only because "
        "every slot is pinned, and the cache never holds one id twice (H2, H7, I3, I6).",
        mix="import=2,generate=1,copy=1,destroy=1,export=6,get_attributes=6",
        persistent_ids=40, persistent_percent=100, variant="tsan-static16",
        family="eviction"),
    Scenario(
        "eviction-mixed",
        "Volatile and persistent keys share the 16 slots of the static store while persistent "
        "keys are evicted and reloaded: eviction may only ever pick an unpinned persistent key, "
        "so a live volatile key never disappears and volatile ids stay unique (H5, H6, I4).",
        mix="import=3,generate=1,destroy=2,export=6,get_attributes=6",
        volatile_pool=6, persistent_ids=24, persistent_percent=60, variant="tsan-static16",
        family="eviction"),
    Scenario(
        "full-cache-pinned",
        "Static store (16 slots), 24 persistent ids: two pinner threads keep every slot pinned "
        "(registered as read) for long stretches while the workers look up, copy and create "
        "existing persistent keys that are not cached: with nothing to evict a lookup may fail "
        "INSUFFICIENT_MEMORY, never INVALID_HANDLE or DOES_NOT_EXIST for a key the history "
        "proves present, and a create never half-succeeds (H2, I2, I3).",
        mix="import=3,generate=1,copy=1,export=6,get_attributes=6,open=2,purge=2,close=1",
        persistent_ids=24, persistent_percent=100, variant="tsan-static16",
        flags=("--pinners", "2"),
        family="eviction"),
    Scenario(
        "init-race",
        "Every worker calls psa_crypto_init itself, racing the others, right before its first "
        "key-store calls: all inits succeed, TSan sees no race on the global state, and the "
        "calls that follow behave as after a single init.",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3",
        persistent_percent=25, flags=("--init-race",),
        family="init"),
    Scenario(
        "init-storm",
        "Every 16 calls per worker a quiescent barrier: the last worker to arrive checks the "
        "slots (I1-I6), destroys every volatile key (recorded) and frees the core with "
        "mbedtls_psa_crypto_free; then every worker races psa_crypto_init again and its first "
        "key-store calls, thousands of times a minute: all inits succeed, TSan sees no race on "
        "the initialisation flags or the global data, persistent keys survive every free, and "
        "the calls after each init behave as after a single init.",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3",
        persistent_percent=25, flags=("--init-race", "--reinit-every", "16"),
        family="init"),
    Scenario(
        "destroy-overlap",
        "Beyond spec (--overlap-destroy): destroys overlap the other calls on their key; a use "
        "may succeed with the old material or fail INVALID_HANDLE, but never returns "
        "CORRUPTION_DETECTED or another key's material, and no key survives a successful "
        "destroy (slots and storage checked after the run).",
        mix="import=3,copy=2,destroy=4,export=4,get_attributes=3",
        volatile_pool=4, persistent_ids=3, persistent_percent=50,
        flags=("--overlap-destroy",),
        family="destroy-races"),
    Scenario(
        "quiescent-invariants",
        "The core's own slot state at quiescent barriers every 200 calls per worker: no slot "
        "FILLING or PENDING_DELETION, no readers, no duplicate id, ids placed by lifetime, "
        "free lists whole, cached keys equal to storage (I1-I6).",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3",
        persistent_percent=40, flags=("--barrier-every", "200"),
        family="churn"),
    Scenario(
        "lookup-missing",
        "Lookups (export, get_attributes, open, purge, export_public, and copies, whose error "
        "path releases the slot a failed lookup returned) of missing and just-destroyed ids, "
        "volatile and persistent, race creates that reuse those slots at once: a lookup sees "
        "ABSENT (INVALID_HANDLE, DOES_NOT_EXIST) or the whole new key, never a half-built one "
        "or a stale slot (the stale-pointer bug class, docs/properties.md §5; H1, H4-H6, H9).",
        mix="import=3,generate=1,destroy=4,export=3,get_attributes=3,open=2,purge=2,"
            "export_public=1,copy=2",
        volatile_pool=4, persistent_ids=4, persistent_percent=50,
        family="persistent"),
    Scenario(
        "multi-destroy",
        "Beyond spec: two and three destroys (and closes of persistent ids) of one key race: "
        "exactly one destroy returns SUCCESS, the others INVALID_HANDLE, and the id is ABSENT "
        "afterwards (the double-destroy bug class, docs/properties.md §5; H3).",
        mix="import=3,generate=1,destroy=9,get_attributes=2,export=1",
        volatile_pool=2, persistent_ids=2, persistent_percent=50,
        flags=("--overlap-destroy",),
        family="destroy-races"),
    Scenario(
        "cache-vs-use",
        "Beyond spec, persistent keys: destroy, purge and close race uses (sign, MAC, cipher, "
        "export) and reloads of the same key: purge and close only drop the cached copy, a use "
        "computes with the stored material or fails INVALID_HANDLE after a destroy, and purge "
        "returns DOES_NOT_EXIST only when nothing is cached (H2, H7, §1.5).",
        mix="import=3,generate=1,destroy=2,purge=3,close=3,open=2,sign=2,mac=2,"
            "cipher_encrypt=2,export=2,get_attributes=2",
        persistent_ids=3, persistent_percent=100, flags=("--overlap-destroy",),
        family="key-use"),
    Scenario(
        "copy-chain",
        "Copies of copies of keys while their sources are destroyed and their ids reused: each "
        "link holds its source's material with the intersected policy, and uses of a copy "
        "(sign, MAC, cipher) compute with that material (H1, H7, H8).",
        mix="copy=6,import=2,generate=1,destroy=2,export=3,get_attributes=2,sign=1,mac=1,"
            "cipher_encrypt=1",
        volatile_pool=4, persistent_percent=25,
        family="derive-copy"),
    Scenario(
        "derive-from-destroyed",
        "Beyond spec: psa_key_derivation_output_key reads a DERIVE key of the store that other "
        "threads destroy meanwhile: the derived key holds HKDF of that key's material, or the "
        "derivation fails INVALID_HANDLE, never a key from wiped material (H1, H7).",
        mix="derive_from=5,import=3,destroy=3,export=3,get_attributes=1",
        volatile_pool=4, persistent_percent=25, flags=("--overlap-destroy",),
        family="derive-copy"),
    Scenario(
        "key-use-vs-destroy",
        "Beyond spec: sign/verify (ECDSA P-256), cipher (AES-ECB), MAC (HMAC-SHA-256), AEAD "
        "(AES-GCM) and a multi-part MAC set up before a concurrent destroy and finished after "
        "it: every output matches the material the model holds for the key, a use fails only "
        "INVALID_HANDLE (absent) or NOT_PERMITTED (policy), and a multi-part operation that "
        "set up always finishes with the old material (§1.5 key use).",
        mix="import=4,generate=1,destroy=3,sign=2,verify=1,cipher_encrypt=2,cipher_decrypt=1,"
            "mac=2,aead_encrypt=2,aead_decrypt=1,mac_multipart=3,export=1",
        volatile_pool=4, persistent_percent=25, flags=("--overlap-destroy",),
        family="key-use"),
    Scenario(
        "close-in-use",
        "Beyond spec: psa_close_key of a volatile key while other threads use it: a SUCCESS "
        "close destroys the key (crypto_compat.h), so no later lookup may find it (H3).",
        mix="import=2,generate=1,sign=6,export=3,get_attributes=3,close=2",
        volatile_pool=2, flags=("--overlap-destroy",),
        known_issue="3.6.6: psa_close_key of a volatile key in use by another thread returns "
                    "SUCCESS but the key survives (docs/known-issues.md)",
        known_oracles=("violation", "invariant"),
        family="destroy-races"),
    Scenario(
        "rng-reseed-race",
        "psa_random_reseed and psa_random_deplete race psa_generate_random and key generation: "
        "the random generator's state must be touched under one lock (TSan).",
        mix="random=6,reseed=1,deplete=1,generate=1,import=1,destroy=2",
        known_issue="3.6.6: psa_random_reseed/psa_random_deplete hold only the rngdata mutex, "
                    "generation only the DRBG mutex (docs/known-issues.md)",
        known_oracles=("tsan",),
        family="rng"),
    Scenario(
        "storage-faults",
        "The nemesis fails 5% of the ITS calls (set, get, get_info, remove) and delays 5% "
        "(--faults storage): a failed create leaves no key and no storage object, a failed "
        "destroy leaves the key intact or gone with its storage object, reloads after purge "
        "bring back the stored key or fail with a storage error, and slots agree with storage "
        "(scenarios/model/faults.py; I6).",
        mix="import=3,generate=1,copy=1,destroy=3,purge=2,export=4,get_attributes=3",
        persistent_ids=4, persistent_percent=80,
        flags=("--faults", "storage=0.05,storage-delay=0.05"),
        family="faults"),
    Scenario(
        "alloc-faults",
        "The nemesis fails 2% of the core's allocations (--faults alloc): a call fails "
        "INSUFFICIENT_MEMORY with no effect (a failed create leaves no key, a failed destroy "
        "the key intact), and nothing leaks or corrupts a slot.",
        mix="import=3,generate=1,copy=2,destroy=3,purge=1,export=4,get_attributes=3",
        persistent_percent=30, flags=("--faults", "alloc=0.02"),
        known_issue="3.6.6: when the allocation fails as mbedtls_entropy_func resets its "
                    "accumulator, the accumulator stays marked started with no hash context "
                    "and the next reseed dereferences NULL in mbedtls_sha512_update "
                    "(docs/known-issues.md)",
        known_oracles=("crash",),
        family="faults"),
    Scenario(
        "mutex-faults",
        "Under PCT, the nemesis fails a lock of the core's mutexes (--faults mutex): the call "
        "must return SERVICE_FAILURE without corrupting the store, and the run stops cleanly at "
        "the first one (the checker treats that call as pending).",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3",
        persistent_percent=30, flags=("--faults", "mutex=0.001", "--sched", "pct"),
        known_issue="3.6.6 mishandles a failed lock: psa_destroy_key returns SUCCESS without "
                    "destroying the key when its second lock fails, then unlocks the key-slot "
                    "mutex it does not hold; psa_get_key_slots_initialized, psa_get_initialized "
                    "and psa_fail_key_creation unlock after a failed lock; "
                    "psa_unregister_read_under_mutex leaks its reader",
        known_oracles=("tsan", "invariant"),
        family="faults"),
)


def get(name):
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in SCENARIOS)
    raise SetupError(f"unknown scenario {name!r} (known: {known})")
