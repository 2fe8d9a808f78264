"""The scenario catalogue: name -> workload for the driver, and the property it attacks.

A scenario is data only: which operations in which proportions, on how small a pool of ids, with
how many threads and which build variant. ``runner.py`` turns it into a driver command line.
"""
from dataclasses import dataclass

from scenarios.source import SetupError


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

    def driver_args(self):
        return ["--scenario", self.name, "--mix", self.mix,
                "--volatile-pool", str(self.volatile_pool),
                "--persistent-ids", str(self.persistent_ids),
                "--persistent-percent", str(self.persistent_percent)]


SCENARIOS = (
    Scenario(
        "volatile-churn",
        "Volatile ids are reused at once after destroy (LIFO free list): a lookup through a "
        "stale id must see either nothing or the new key, never a mix, and no two live keys "
        "share an id (H1, H4-H6, H8).",
        mix="import=3,generate=1,copy=2,destroy=3,export=4,get_attributes=3"),
    Scenario(
        "persistent-collide",
        "Creates of the same few persistent ids collide: at most one succeeds while the id is "
        "absent, ALREADY_EXISTS needs a live key, a destroy makes the id absent at once, and "
        "storage and slots agree (H2-H4, A8).",
        mix="import=3,generate=1,destroy=3,export=4,get_attributes=2",
        persistent_ids=3, persistent_percent=100),
    Scenario(
        "derive-copy",
        "Keys derived or copied while other threads destroy the source: a copy holds exactly its "
        "source's material with the intersected policy, a derived key holds the HKDF output, "
        "and a destroyed source yields INVALID_HANDLE, never a half-built key (H1, H7, H8).",
        mix="derive=3,copy=3,import=2,generate=1,destroy=3,export=4,get_attributes=2",
        persistent_percent=25),
)

DEFAULT_SUITE = ("volatile-churn", "persistent-collide", "derive-copy")


def get(name):
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in SCENARIOS)
    raise SetupError(f"unknown scenario {name!r} (known: {known})")
