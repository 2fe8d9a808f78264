"""Shrinking: the smallest job that still fails with the same signature, within a time budget.

Greedy, in the manner of delta debugging over the job's parameters rather than its input: the
failing run is first replayed as an exact call count (the calls it made), then each reducer in turn
proposes a smaller job -- fewer calls, fewer threads, a smaller volatile id pool, fewer persistent
ids -- and the proposal is kept when one of ``attempts`` runs fails with the *same* signature
(scenarios/campaign/signatures.py). Races are not deterministic, so a proposal that does not fail
within its attempts (one on a serialised engine, whose runs are) is dropped, not proven correct. It
stops when no reducer makes progress or the budget is spent; the last kept job is the minimal case.

On a serialised engine (pct, random) every run records its schedule, the PCT depth is one more
reducer, and then the preemptions of the minimal case's schedule are taken out, in halves then
smaller chunks (ddmin's complement step): an edited schedule (scenarios/campaign/schedule.py) is
replayed and kept when the run still fails the same way; the schedule it really took becomes the
current one. The minimal job finally replays that recorded schedule exactly (``--replay``), checked
once, so its repro command runs the minimal interleaving.
"""
import os
import shutil
import time
from dataclasses import dataclass, field

from scenarios.campaign import schedule
from scenarios.campaign.signatures import failure_signature

DEFAULT_ATTEMPTS = 3
MAX_START_OPS = 20000
PCT_DEFAULT_DEPTH = 3       # the driver's --pct-depth default (harness/driver/main.c)


@dataclass
class Shrunk:
    original: object            # Job
    minimal: object             # Job (== original when nothing could be removed)
    reproduced: bool            # the op-count replay of the original failed the same way
    steps: list = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    directory: str = None       # the minimal case's last failing run (history, sanitizer log)
    preemptions: dict = None    # serialised engines: {"before": N, "after": M}

    def to_json(self):
        return {"original": self.original.to_json(), "minimal": self.minimal.to_json(),
                "reproduced": self.reproduced, "steps": self.steps, "runs": self.runs,
                "seconds": round(self.seconds, 1), "directory": self.directory,
                "preemptions": self.preemptions}


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
            before = _preemptions(state.directory)
            self._reduce(state, signature)
            if before is not None:
                exact = self._fewer_preemptions(state, signature)
                after = _preemptions(state.directory)
                state.preemptions = {"before": before, "after": after, "exact_replay": exact}
                self.log(f"shrink: preemptions {before} -> {after}")
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
                self._record(state, name, directory, smaller)
                if directory:
                    progress = True
                    break

    def _fewer_preemptions(self, state, signature):
        """Take preemptions out of the current schedule, chunk by chunk, while the failure stays;
        then pin the minimal job to the schedule its last failing run recorded. True when the
        pinned job failed the same way."""
        edited = os.path.join(self.workdir, "edited-schedule.txt")
        size = None
        while not self._out_of_time():
            current = schedule.load(os.path.join(state.directory, schedule.FILE_NAME))
            points = schedule.preemptions(current)
            size = min(size or len(points), len(points))
            if size == 0 or not self._drop_a_chunk(state, signature, current, points, size,
                                                   edited):
                if size <= 1:
                    break
                size //= 2
        if os.path.exists(edited):
            os.remove(edited)
        return self._pin_schedule(state, signature)

    def _drop_a_chunk(self, state, signature, current, points, size, edited):
        """Try removing each chunk of ``size`` preemptions; True at the first one kept."""
        for start in range(0, len(points), size):
            if self._out_of_time():
                return False
            chunk = points[start:start + size]
            schedule.write_edited(current, chunk, edited)
            directory = self._fails(_replaying(state.minimal, edited), signature, attempts=1)
            if directory and _preemptions(directory) >= len(points):
                shutil.rmtree(directory, ignore_errors=True)   # failed, but took no fewer
                directory = None
            name = f"preemptions {len(points)} -> {len(points) - len(chunk)} (schedule edited)"
            self._record(state, name, directory)
            if directory:
                return True
        return False

    def _pin_schedule(self, state, signature):
        """The minimal job replays its last failing run's schedule exactly, if that fails; True
        when it did."""
        recorded = os.path.join(state.directory, schedule.FILE_NAME)
        pinned = os.path.join(self.workdir, "minimal-schedule.txt")
        shutil.copyfile(recorded, pinned)
        job = _replaying(state.minimal, pinned)
        directory = self._fails(job, signature, attempts=1)
        self._record(state, "exact replay of the minimal schedule", directory, job)
        return bool(directory)

    def _record(self, state, name, directory, job=None):
        """Log a proposal; when it failed (``directory``) it becomes the minimal case."""
        state.steps.append({"change": name, "kept": bool(directory)})
        self.log(f"shrink: {name}: {'kept' if directory else 'no failure, dropped'}")
        if directory:
            shutil.rmtree(state.directory, ignore_errors=True)
            state.directory = directory
            state.minimal = job or state.minimal

    def _fails(self, job, signature, attempts=None):
        """The directory of a run of ``job`` that failed with ``signature``, or None. A
        serialised run records its schedule there; it is deterministic (the same job takes the
        same schedule), so one attempt is enough."""
        attempts = attempts or (1 if schedule.serialised(job) else self.attempts)
        for _ in range(attempts):
            if self._out_of_time():
                return None
            self.count += 1
            directory = os.path.abspath(os.path.join(self.workdir, f"attempt{self.count}"))
            result = _recording(job, directory).run(self.build, directory)
            if signature in signatures_of(result):
                return directory
            shutil.rmtree(directory, ignore_errors=True)
        return None

    def _out_of_time(self):
        return time.monotonic() >= self.deadline


def _preemptions(directory):
    """The preemptions of the schedule a run recorded in ``directory``; None when it has none
    (not a serialised engine)."""
    path = os.path.join(directory, schedule.FILE_NAME)
    return len(schedule.preemptions(schedule.load(path))) if os.path.exists(path) else None


def _recording(job, directory):
    """``job`` recording its schedule into ``directory`` when it runs on a serialised engine."""
    if not schedule.serialised(job):
        return job
    return job.replace(engine=dict(job.engine, **{
        "schedule-out": os.path.join(directory, schedule.FILE_NAME)}))


def _replaying(job, path):
    """``job`` replaying the schedule file ``path``."""
    return job.replace(engine=dict(job.engine, replay=path))


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
    smaller = [(f"{label} {old} -> {new}", job.replace(**{field_name: new}))
               for label, old, field_name, new in candidates]
    depth = int(job.engine.get("pct-depth", PCT_DEFAULT_DEPTH))
    if job.engine.get("sched") == "pct" and "replay" not in job.engine and depth > 1:
        smaller.append((f"pct depth {depth} -> {depth - 1}",
                        job.replace(engine=dict(job.engine, **{"pct-depth": str(depth - 1)}))))
    return smaller
