"""A stress session: a series of jobs on one build, then shrinking, then the report.

``run``, ``stress`` and ``nightly`` are sessions that differ only in which jobs they run and when
they stop. The session keeps the live progress line up to date (elapsed, runs, calls/s,
failures), deletes a clean run's directory, and at the end shrinks every new failure within the
shrink budget and writes reports/<run>/ (scenarios/report).
"""
import os
import shutil
import time

from scenarios import report
from scenarios.build import Variant, ensure_built
from scenarios.job import Job
from scenarios.report import summary
from scenarios.shrink import Shrinker
from scenarios.signatures import is_known

SHRINKABLE = ("tsan", "asan", "violation", "invariant", "crash")


class Session:
    def __init__(self, command, tree, progress, known=frozenset(), shard=None,
                 budget=0, reports_root=report.REPORTS_DIR):
        self.command = command
        self.builds = {}
        self.tree = tree
        self.progress = progress
        self.known = known
        self.shard = shard
        self.budget = budget
        self.started = time.monotonic()
        label = f"shard{shard['index']}of{shard['count']}" if shard else command
        self.directory = report.new_report_dir(reports_root, label)
        self.runs = []
        self.signatures = set()

    def run(self, job):
        """Run one job, record it, keep its directory only if it failed; return its JSON."""
        name = f"{job.scenario.name}-seed{job.seed}"
        self.progress.update(f"{name}: stressing {job.ops or job.seconds}"
                             f"{' calls' if job.ops else ' s'} on {job.threads} threads")
        result = job.run(self.build(job.variant), os.path.join(self.directory, name))
        if result.clean:
            shutil.rmtree(result.directory, ignore_errors=True)
        data = summary.run_json(result, self.shard)
        self.runs.append(data)
        self.signatures.update(f["signature"] for f in data["failures"]
                               if not self._known(f["signature"]) and not f.get("known_issue"))
        self._stats()
        state = "clean" if result.clean else "FAILED: " + "; ".join(
            f"{f['id']} {f['signature']}" for f in data["failures"])
        self.progress.log(f"{data['id']}: {result.ops} calls, {result.ops_per_sec:.0f} "
                          f"calls/s, {state}")
        return data

    def build(self, variant):
        """The build of ``variant`` (built or brought up to date on first use)."""
        if variant not in self.builds:
            Variant.parse(variant)
            self.progress.update(f"building {variant} from Mbed TLS {self.tree.version} ...")
            self.builds[variant] = ensure_built(variant, self.tree, log=self.progress.log)
        return self.builds[variant]

    def new_failures(self):
        """Distinct failure signatures seen so far that are not known."""
        return len(self.signatures)

    def finish(self, shrink_budget):
        """Shrink the new failures, write the report; return (data, directory)."""
        shrinks = self._shrink_all(shrink_budget) if shrink_budget > 0 else {}
        tree = self.tree
        meta = {"command": self.command,
                "mbedtls": {"path": tree.path, "version": tree.version, "origin": tree.origin,
                            "fingerprint": tree.fingerprint()},
                "variant": ",".join(sorted(self.builds)), "budget_seconds": self.budget,
                "elapsed_seconds": round(time.monotonic() - self.started, 1),
                "shards": [self.shard] if self.shard else []}
        data = summary.build(meta, self.runs, shrinks, self.known)
        report.write(self.directory, data)
        return data, self.directory

    def _known(self, signature):
        return is_known(signature, self.known)

    def _stats(self):
        calls = sum(run["ops"] for run in self.runs)
        seconds = sum(run["seconds"] for run in self.runs)
        self.progress.stats(runs=len(self.runs), calls_per_sec=calls / seconds if seconds else 0,
                            failures=sum(not run["clean"] for run in self.runs))

    def _shrink_all(self, budget):
        deadline = time.monotonic() + budget
        shrinks = {}
        for run in self.runs:
            for failure in run["failures"]:
                signature = failure["signature"]
                if (signature in shrinks or self._known(signature) or not run["params"]
                        or failure.get("known_issue")
                        or failure["kind"] not in SHRINKABLE):
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
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
