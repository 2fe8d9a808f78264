"""A stress session: builds, a series of jobs, then shrinking, then the report.

``run``, ``stress`` and ``nightly`` are sessions that differ only in which jobs they run and when
they stop. The session

- builds every variant its jobs need first (``prepare``) and reports the build time on its own
  line; a capped session's wall-clock budget starts when the builds end, and every later stage
  (runs, checking, shrinking, the report) fits in it (``seconds_for``, ``finish``);
- prints the first occurrence of every new failure the moment its run is checked, with its id
  and repro command;
- rewrites the whole report (scenarios/report) after every run, each file atomically, so any
  ending leaves a valid report of the work done so far; ``finish(interrupted=...)`` marks it;
- bounds disk and output: a clean run's directory is deleted, an expected failure keeps no
  history, new failures keep theirs until ``max_disk`` bytes, and a failure's details are kept
  once per signature (later runs keep the message only).
"""
import os
import shutil
import time

from scenarios import report
from scenarios.setup.build import Variant, ensure_built, unsupported
from scenarios.campaign.job import Job
from scenarios.report import summary
from scenarios.campaign.runner import HISTORY
from scenarios.campaign.shrink import Shrinker
from scenarios.campaign.signatures import is_known
from scenarios.setup.source import SetupError

SHRINKABLE = ("tsan", "asan", "violation", "invariant", "crash")
REPORT_SECONDS = 3           # kept back from the budget for writing the last report
MIN_RUN_SECONDS = 0.5        # a shorter remainder ends the session
FIRST_POST_RATIO = 1.5       # checking time per stress second assumed before a scenario ran
POST_SLACK_SECONDS = 1.0
MIN_FREE_BYTES = 512 * 1_000_000     # free disk a run needs (its history and storage)


class Refused(Exception):
    """A job this tree or engine cannot run: the driver refused its flags, or (``every_engine``)
    the tree lacks an operation the scenario calls."""

    def __init__(self, reason, every_engine=False):
        super().__init__(reason)
        self.every_engine = every_engine


class Session:
    def __init__(self, command, tree, progress, known=frozenset(), shard=None, budget=0,
                 reports_root=report.REPORTS_DIR, max_disk=300 * 1_000_000, capped=True):
        self.command = command
        self.builds = {}
        self.tree = tree
        self.progress = progress
        self.known = known
        self.shard = shard
        self.budget = budget
        self.capped = capped and command != "stress"
        self.started = time.monotonic()
        self.deadline = None          # set when the builds end (prepare)
        self.build_seconds = 0.0
        self.plan = None              # the portfolio (campaign/portfolio.py), when there is one
        label = f"shard{shard['index']}of{shard['count']}" if shard else command
        self.directory = report.new_report_dir(reports_root, label)
        self.runs = []
        self.signatures = set()       # new (not known) failure signatures seen
        self.detailed = set()         # signatures whose details some run already keeps
        self.post_ratio = {}          # scenario -> seconds of checking per stress second
        self.max_disk = max_disk
        self.kept_bytes = 0

    # ---- builds and the clock ----

    def prepare(self, variants):
        """Build every variant (on first use), then start the budget's clock."""
        started = time.monotonic()
        for variant in variants:
            self.build(variant)
        self.build_seconds = time.monotonic() - started
        cap = f"; budget {self.budget} s from now" if self.capped else ""
        self.progress.log(f"build: {self.build_seconds:.0f} s ({', '.join(variants)}){cap}")
        self.deadline = time.monotonic() + self.budget

    def build(self, variant):
        """The build of ``variant`` (built or brought up to date on first use)."""
        if variant not in self.builds:
            Variant.parse(variant)
            self.progress.update(f"building {variant} from Mbed TLS {self.tree.version} ...")
            self.builds[variant] = ensure_built(variant, self.tree, log=self.progress.log)
        return self.builds[variant]

    def remaining(self):
        """Seconds left of a capped session's budget (None: not capped)."""
        if not self.capped or self.deadline is None:
            return None
        return self.deadline - time.monotonic() - REPORT_SECONDS

    def seconds_for(self, scenario, wanted):
        """How long the next run of ``scenario`` may stress so that its checking still fits in
        the budget, or None when no useful run fits any more."""
        left = self.remaining()
        if left is None:
            return wanted
        ratio = self.post_ratio.get(scenario.name, FIRST_POST_RATIO)
        seconds = min(wanted, (left - POST_SLACK_SECONDS) / (1 + ratio))
        return round(seconds, 1) if seconds >= MIN_RUN_SECONDS else None

    # ---- runs ----

    def run(self, job, refusable=False):
        """Run one job, record it, keep its directory only if it failed; return its JSON. With
        ``refusable``, a driver that refuses the job's flags (exit 2: the tree or the engine
        cannot run this scenario) is no setup error: the run is not recorded and Refused is
        raised with the driver's reason."""
        name = f"{job.scenario.name}-seed{job.seed}"
        self._check_disk()
        engine = job.engine.get("sched", "")
        reason = unsupported(job.scenario, self.build(job.variant).capabilities)
        if reason:            # the tree lacks an operation: it would pass without testing
            if refusable:
                self.progress.log(f"skipped {job.scenario.name}: {reason}")
                raise Refused(reason, every_engine=True)
            raise SetupError(f"{job.scenario.name}: {reason}")
        self.progress.update(f"{name}{'@' + engine if engine else ''}: stressing "
                             f"{job.ops or job.seconds}{' calls' if job.ops else ' s'} on "
                             f"{job.threads} threads")
        left = self.remaining()
        started = time.monotonic()
        result = job.run(self.build(job.variant), os.path.join(self.directory, name),
                         timeout=None if left is None else max(left, 1) + REPORT_SECONDS)
        if result.seconds:
            post = max(0.0, time.monotonic() - started - result.seconds)
            self.post_ratio[job.scenario.name] = post / result.seconds
        data = summary.run_json(result, self.shard)
        refused = self._refused(data)
        if refused and refusable:
            shutil.rmtree(result.directory, ignore_errors=True)
            self.progress.log(f"skipped {job.scenario.name}@{engine or 'os'}: {refused}")
            raise Refused(refused)
        self._refuse_setup_errors(data, refused)
        self._keep(result, data)
        self.runs.append(data)
        self._announce(data)
        self._write(interrupted=None)
        return data

    def new_failures(self):
        """Distinct failure signatures seen so far that are not known."""
        return len(self.signatures)

    @staticmethod
    def _refused(data):
        """The driver's reason when it refused the job's flags (exit 2), else None."""
        for failure in data["failures"]:
            if failure["kind"] == "driver-error" and failure["message"].startswith(
                    "driver exit code 2:"):
                return failure["message"].split(": ", 1)[1]
        return None

    @staticmethod
    def _refuse_setup_errors(data, refused):
        """A driver that refused its flags is bad input for run.py too, and a history it could
        not write (a full disk) a setup error: neither is a failure of the library."""
        if refused:
            raise SetupError(refused)
        for failure in data["failures"]:
            if failure["kind"] == "disk":
                raise SetupError(failure["message"])

    def _keep(self, result, data):
        """Delete what the report does not need: a clean run's directory, an expected
        failure's history, a new failure's history past the disk budget; details once per
        signature."""
        if result.clean:
            shutil.rmtree(result.directory, ignore_errors=True)
            return
        new = [f for f in data["failures"] if self._is_new(f)]
        history = os.path.join(result.directory, HISTORY)
        size = _tree_bytes(history)
        if not new or self.kept_bytes + size > self.max_disk:
            shutil.rmtree(history, ignore_errors=True)
            data["history_dropped"] = "expected failures only" if not new else \
                f"over --max-disk ({self.max_disk // 1_000_000} MB kept already)"
        else:
            self.kept_bytes += size
        for failure in data["failures"]:
            if failure["signature"] in self.detailed:
                failure["details"] = ""
            self.detailed.add(failure["signature"])

    def _is_new(self, failure):
        return not failure.get("known_issue") and not is_known(failure["signature"], self.known)

    def _announce(self, data):
        """The live counters; a run that shows a new failure gets a line, and each new failure's
    first occurrence its id, message and repro command (a clean run or a known failure adds
    no line: the report has every run)."""
        fresh = []
        for failure in data["failures"]:
            if self._is_new(failure) and failure["signature"] not in self.signatures:
                self.signatures.add(failure["signature"])
                fresh.append(failure)
        if fresh:
            self.progress.log(f"{data['id']}: {data['ops']} calls, {data['ops_per_sec']:.0f} "
                              f"calls/s, {_failures_text(data['failures'])}")
        for failure in fresh:
            command = Job.from_json(data["params"]).command(
                summary.mbedtls_dir(self._tree_json())) if data["params"] else "-"
            self.progress.log(f"NEW FAILURE {failure['id']} {failure['signature']}\n"
                              f"  {_clip(failure['message'])}\n  repro: {command}")
        calls = sum(run["ops"] for run in self.runs)
        seconds = sum(run["seconds"] for run in self.runs)
        self.progress.stats(runs=len(self.runs), calls_per_sec=calls / seconds if seconds else 0,
                            failures=sum(not run["clean"] for run in self.runs))

    def _check_disk(self):
        free = shutil.disk_usage(self.directory).free
        if free < MIN_FREE_BYTES:
            raise SetupError(f"only {free // 1_000_000} MB free under {self.directory}: a run "
                             f"needs about {MIN_FREE_BYTES // 1_000_000} MB for its history")

    # ---- the end ----

    def finish(self, shrink_budget, interrupted=None):
        """Shrink the new failures (within the budget), write the report; return (data,
        directory)."""
        left = self.remaining()
        if left is not None:
            shrink_budget = min(shrink_budget, left)
        shrinks = self._shrink_all(shrink_budget) if shrink_budget > 0 else {}
        self._sweep()
        return self._write(interrupted, shrinks), self.directory

    def finish_quietly(self, why):
        """The report of an ending by an error: written if at all possible, never raising."""
        try:
            self._sweep()
            self._write(why)
        except Exception:       # the report cannot be written (a full disk): the error says why
            pass

    def _sweep(self):
        """Delete the directory of a run the report does not hold (the one in flight when the
        session was interrupted): nothing is kept that no report indexes."""
        indexed = {os.path.basename(run["directory"]) for run in self.runs}
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if os.path.isdir(path) and name not in indexed and not name.startswith("shrink-"):
                shutil.rmtree(path, ignore_errors=True)

    def _write(self, interrupted, shrinks=None):
        meta = {"command": self.command, "mbedtls": self._tree_json(),
                "variant": ",".join(sorted(self.builds)), "budget_seconds": self.budget,
                "elapsed_seconds": round(time.monotonic() - self.started, 1),
                "build_seconds": round(self.build_seconds, 1), "interrupted": interrupted,
                "portfolio": self.plan.describe() if self.plan else None,
                "kept_bytes": self.kept_bytes, "shards": [self.shard] if self.shard else []}
        data = summary.build(meta, self.runs, shrinks, self.known)
        report.write(self.directory, data)
        return data

    def _tree_json(self):
        tree = self.tree
        return {"path": tree.path, "version": tree.version, "origin": tree.origin,
                "fingerprint": tree.fingerprint()}

    def _shrink_all(self, budget):
        deadline = time.monotonic() + budget
        shrinks = {}
        for run in self.runs:
            for failure in run["failures"]:
                signature = failure["signature"]
                if (signature in shrinks or not self._is_new(failure) or not run["params"]
                        or failure["kind"] not in SHRINKABLE):
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 1:
                    return shrinks
                self.progress.update(f"shrinking {failure['id']} {signature} "
                                     f"({remaining:.0f} s left)")
                job = Job.from_json(run["params"])
                shrinker = Shrinker(self.build(job.variant),
                                    os.path.join(self.directory, f"shrink-{failure['id']}"),
                                    remaining, log=self.progress.log)
                shrunk = shrinker.shrink(job, signature, run["ops"])
                shrinks[signature] = shrunk.to_json()
                self.progress.log(_shrink_line(failure["id"], shrunk))
        return shrinks


def _failures_text(failures, most=3):
    """FAILED: the run's distinct failures, at most ``most`` of them, one line."""
    shown = [f"{f['id']} {_clip(f['signature'], 80)}" for f in failures[:most]]
    more = f" (+{len(failures) - most} more)" if len(failures) > most else ""
    return "FAILED: " + "; ".join(shown) + more


def _clip(text, width=160):
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _shrink_line(failure_id, shrunk):
    if not shrunk.reproduced:
        return f"shrink {failure_id}: not reproduced by call count in {shrunk.runs} runs"
    before, after = shrunk.original, shrunk.minimal
    preemptions = shrunk.preemptions
    switches = (f", preemptions {preemptions['before']} -> {preemptions['after']}"
                if preemptions else "")
    return (f"shrink {failure_id}: {before.threads} threads x "
            f"{before.ops or str(before.seconds) + ' s'} -> {after.threads} threads x "
            f"{after.ops} calls, volatile pool {before.scenario.volatile_pool} -> "
            f"{after.scenario.volatile_pool}{switches} ({shrunk.runs} runs, "
            f"{shrunk.seconds:.0f} s)")
