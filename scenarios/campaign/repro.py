"""Reproduce a failure from its report alone: find it (a report directory, or a failure id looked
up in reports/), rerun its job -- the minimal case when shrinking found one -- a number of times,
and count the replays that failed with the same signature."""
import glob
import os
import re
import shutil

from scenarios.campaign.job import Job
from scenarios.report import REPORTS_DIR, summary
from scenarios.campaign.shrink import signatures_of
from scenarios.setup.source import SetupError

FAILURE_ID = re.compile(r"[0-9a-f]{12}")


def find(target, failure_id=None, reports_root=REPORTS_DIR):
    """(report data, [failures]) for a report directory (optionally one failure of it) or for a
    failure id (the newest report that has it)."""
    if os.path.exists(target):
        data = summary.load(target)
        return data, _select(data, failure_id, target)
    if not FAILURE_ID.fullmatch(target):
        raise SetupError(f"{target}: no such report directory, and not a failure id "
                         "(12 hex digits)")
    for path in sorted(glob.glob(os.path.join(reports_root, "*", "summary.json")), reverse=True):
        try:
            data = summary.load(path)
        except SetupError:
            continue
        found = [f for f in data["failures"] if f["id"] == target]
        if found:
            return data, found
    raise SetupError(f"failure {target} is in no report under {os.path.relpath(reports_root)}")


def _select(data, failure_id, target):
    failures = data["failures"]
    if failure_id:
        failures = [f for f in failures if f["id"] == failure_id]
        if not failures:
            raise SetupError(f"{target}: the report has no failure {failure_id}")
        return failures
    if not failures:
        raise SetupError(f"{target}: the report has no failures to reproduce")
    return [f for f in failures if not f["known"]] or failures


def job_of(data, failure, variant=None):
    """The job that reruns ``failure`` (on ``variant`` when given)."""
    params = summary.repro_params(data["runs"], failure)
    if not params:
        raise SetupError(f"failure {failure['id']}: its report recorded no job to rerun")
    job = Job.from_json(params)
    schedule = job.engine.get("replay")
    if schedule and not os.path.isfile(schedule):
        raise SetupError(f"failure {failure['id']}: its minimal schedule {schedule} is missing "
                         "(it lives in the report's shrink-<id>/ directory)")
    return job.replace(build_variant=variant) if variant else job


def replay(build, data, job, failure, replays, workdir, log):
    """Rerun ``job`` ``replays`` times; the outcome as JSON."""
    reproduced = 0
    for index in range(replays):
        directory = os.path.join(workdir, f"{failure['id']}-replay{index + 1}")
        hit = failure["signature"] in signatures_of(job.run(build, directory))
        reproduced += hit
        log(f"{failure['id']} replay {index + 1}/{replays}: "
            f"{'reproduced' if hit else 'not reproduced'}")
        if not hit:
            shutil.rmtree(directory, ignore_errors=True)
    return {"id": failure["id"], "signature": failure["signature"], "replays": replays,
            "reproduced": reproduced, "job": job.to_json(),
            "command": job.command(summary.mbedtls_dir(data["mbedtls"]))}
