"""Shrinking: the smallest job that still fails with the same signature, within a time budget.

Greedy, in the manner of delta debugging over the job's parameters rather than its input: the
failing run is first replayed as an exact call count (the calls it made), then each reducer in
turn proposes a smaller job -- fewer calls, fewer threads, a smaller volatile id pool, fewer
persistent ids -- and the proposal is kept when one of ``attempts`` runs fails with the *same*
signature (scenarios/signatures.py). Races are not deterministic, so a proposal that does not
fail within its attempts is dropped, not proven correct. It stops when no reducer makes progress
or the budget is spent; the last kept job is the minimal case.
"""
import os
import shutil
import time
from dataclasses import dataclass, field

from scenarios.signatures import failure_signature

DEFAULT_ATTEMPTS = 3
MAX_START_OPS = 20000


@dataclass
class Shrunk:
    original: object            # Job
    minimal: object             # Job (== original when nothing could be removed)
    reproduced: bool            # the op-count replay of the original failed the same way
    steps: list = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    directory: str = None       # the minimal case's last failing run (history, sanitizer log)

    def to_json(self):
        return {"original": self.original.to_json(), "minimal": self.minimal.to_json(),
                "reproduced": self.reproduced, "steps": self.steps, "runs": self.runs,
                "seconds": round(self.seconds, 1), "directory": self.directory}


def signatures_of(result):
    """The failure signatures of one RunResult."""
    data = result.to_json()
    return {failure_signature(failure, data["check"]) for failure in data["failures"]}


class Shrinker:
    def __init__(self, build, workdir, budget, attempts=DEFAULT_ATTEMPTS, log=None):
        self.build = build
        self.workdir = workdir
        self.deadline = time.monotonic() + budget
        self.attempts = attempts
        self.log = log or (lambda _text: None)
        self.count = 0

    def shrink(self, job, signature, calls):
        """Minimise ``job`` (whose run made ``calls`` calls) keeping ``signature``."""
        started = time.monotonic()
        start = job.replace(ops=max(job.threads, min(calls or MAX_START_OPS, MAX_START_OPS)))
        state = Shrunk(job, job, False)
        state.directory = self._fails(start, signature)
        if state.directory:
            state.minimal, state.reproduced = start, True
            self._reduce(state, signature)
        state.runs, state.seconds = self.count, time.monotonic() - started
        return state

    def _reduce(self, state, signature):
        """Try the reducers of the current minimal job in order; after every success start over
        from the smaller job; stop when none succeeds or time is up."""
        progress = True
        while progress and not self._out_of_time():
            progress = False
            for name, smaller in reducers(state.minimal):
                if self._out_of_time():
                    return
                directory = self._fails(smaller, signature)
                state.steps.append({"change": name, "kept": bool(directory)})
                self.log(f"shrink: {name}: {'kept' if directory else 'no failure, dropped'}")
                if directory:
                    shutil.rmtree(state.directory, ignore_errors=True)
                    state.minimal, state.directory, progress = smaller, directory, True
                    break

    def _fails(self, job, signature):
        """The directory of a run of ``job`` that failed with ``signature``, or None."""
        for _ in range(self.attempts):
            if self._out_of_time():
                return None
            self.count += 1
            directory = os.path.join(self.workdir, f"attempt{self.count}")
            result = job.run(self.build, directory)
            if signature in signatures_of(result):
                return directory
            shutil.rmtree(directory, ignore_errors=True)
        return None

    def _out_of_time(self):
        return time.monotonic() >= self.deadline


def reducers(job):
    """Smaller variants of ``job``, most effective first: (description, job)."""
    scenario = job.scenario
    candidates = []
    if job.ops > job.threads:
        candidates.append(("calls", job.ops, "ops", max(job.threads, job.ops // 2)))
    if job.threads > 1:
        threads = max(1, job.threads // 2)
        candidates.append(("threads", job.threads, "threads", threads))
    if scenario.volatile_pool > 1:
        candidates.append(("volatile ids", scenario.volatile_pool, "volatile_pool",
                           max(1, scenario.volatile_pool // 2)))
    if scenario.persistent_ids > 1:
        candidates.append(("persistent ids", scenario.persistent_ids, "persistent_ids",
                           max(1, scenario.persistent_ids // 2)))
    return [(f"{label} {old} -> {new}", job.replace(**{field_name: new}))
            for label, old, field_name, new in candidates]
