"""The schedule file of the serialised engines (format: harness/nemesis/schedule.h) as the shrinker
uses it: its steps, its preemptions, and an edited copy with some preemptions taken out.

A preemption is a scheduling point where the thread that reached it could have gone on running
(an op boundary, a lock, an unlock, a step with no mutex: kinds O X L U C) and another thread
was chosen.
Removing one means recording "the thread continues" there; the driver replays such an edited file
point by point where it still applies (schedule.h, "edited"), and records what it really did.
"""
import json
from dataclasses import dataclass

PREEMPTIBLE = "OXLUC"       # kinds of point reached by a running thread that could continue
FILE_NAME = "schedule.txt"  # the recording in a run directory (--schedule-out)
SERIALISED = ("pct", "random")


@dataclass
class Schedule:
    header: dict
    steps: list             # [chosen, kind, at, mutex] as in the file; at is "-" for nobody
    complete: bool          # the file has its end line


def load(path):
    """The schedule in ``path``; ValueError when it is not one."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("format") != "psa-stress-schedule":
        raise ValueError(f"{path}: not a psa-stress schedule")
    body = lines[1:]
    complete = bool(body) and body[-1].startswith("end ")
    steps = [line.split() for line in (body[:-1] if complete else body)]
    if any(len(step) != 4 for step in steps):
        raise ValueError(f"{path}: a line is not a schedule step")
    return Schedule(header, steps, complete)


def preemptions(schedule):
    """The indexes of the steps that are preemptions."""
    return [index for index, (chosen, kind, at, _mutex) in enumerate(schedule.steps)
            if kind in PREEMPTIBLE and at != "-" and chosen != at]


def write_edited(schedule, removed, path):
    """Write ``schedule`` with the preemptions at the step indexes ``removed`` taken out (the
    thread that reached the point continues), marked edited so the driver follows it loosely."""
    removed = set(removed)
    header = dict(schedule.header, edited=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(header, separators=(",", ":")) + "\n")
        for index, (chosen, kind, at, mutex) in enumerate(schedule.steps):
            handle.write(f"{at if index in removed else chosen} {kind} {at} {mutex}\n")


def serialised(job):
    """True when ``job`` runs on a serialised engine, whose runs record a schedule."""
    return job.engine.get("sched") in SERIALISED or "replay" in job.engine
