"""summary.json: the report as data (schema in docs/report-format.md), built from runs, merged
across shards, loaded back for ``repro`` and ``merge``; and summary.md, its readable twin."""
import datetime
import json
import os

from scenarios.checker import coverage
from scenarios.campaign.job import Job
from scenarios.campaign.signatures import deduplicate, failure_signature, signature_id
from scenarios.setup.source import SetupError

FORMAT = "psa-stress-report"
VERSION = 2
DEFAULT_TREES = ("submodule", "debian-source")
# what load() checks of a report: the members merge and repro read first
_TOP_LEVEL = {"mbedtls": dict, "variant": str, "runs": list, "failures": list, "shards": list,
              "budget_seconds": (int, float), "elapsed_seconds": (int, float)}
_JSON_TYPES = {dict: "object", str: "string", list: "array", (int, float): "number"}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_json(result, shard=None):
    """A RunResult as report JSON: an id unique across shards, the time it finished, and each
    failure's signature."""
    data = result.to_json()
    prefix = f"shard{shard['index']}of{shard['count']}/" if shard else ""
    data["id"] = f"{prefix}{data['scenario']}-seed{data['seed']}"
    data["shard"] = shard
    data["finished"] = now()
    for failure in data["failures"]:
        failure["signature"] = failure_signature(failure, data["check"])
        failure["id"] = signature_id(failure["signature"])
    return data


def build(meta, runs, shrinks=None, known=frozenset(), covered=None):
    """The report: ``meta`` (command, mbedtls, variant, budget_seconds, elapsed_seconds, shards)
    plus the runs, their distinct failures (with the shrunk case when there is one), the
    per-scenario throughput and the coverage: merged from the runs' own (``covered``: already
    merged, for reports whose runs keep only their cell counts). Each run keeps its number of
    covered cells per metric, not its tables."""
    shrinks = shrinks or {}
    failures = []
    for entry in deduplicate(runs, known):
        item = entry.to_json()
        item["shrink"] = shrinks.get(entry.signature)
        item["repro"] = repro_command(meta, runs, item)
        failures.append(item)
    new = [item for item in failures if not item["known"]]
    return {"format": FORMAT, "version": VERSION, "created": now(), **meta,
            "verdict": "failed" if new else "clean",
            "counts": {"runs": len(runs), "failed_runs": sum(not r["clean"] for r in runs),
                       "distinct_failures": len(failures), "new": len(new),
                       "known": len(failures) - len(new),
                       "calls": sum(r["ops"] for r in runs)},
            "throughput": throughput(runs),
            "coverage": coverage.section(runs) if covered is None else covered,
            "runs": [_compact(run) for run in runs],
            "failures": failures}


def _compact(run):
    if not isinstance(run.get("coverage"), dict) or "calls" not in run["coverage"]:
        return run
    return {**run, "coverage": coverage.cell_counts(run["coverage"])}


def repro_params(runs, failure):
    """The job (as JSON) that reruns a failure: the minimal case, or, when shrinking did not
    reproduce it, the run that found it. None for runs that recorded no job."""
    if failure["shrink"] and failure["shrink"]["reproduced"]:
        return failure["shrink"]["minimal"]
    return next(r["params"] for r in runs if r["id"] == failure["found_by"]["run"])


def mbedtls_dir(tree):
    """The --mbedtls-dir a repro needs: none for the default trees (found again anywhere)."""
    return None if tree["origin"] in DEFAULT_TREES else tree["path"]


def repro_command(meta, runs, failure):
    params = repro_params(runs, failure)
    if not params:
        return None
    return Job.from_json(params).command(mbedtls_dir(meta["mbedtls"]))


def throughput(runs):
    table = {}
    for run in runs:
        row = table.setdefault(run["scenario"], {"runs": 0, "calls": 0, "seconds": 0.0})
        row["runs"] += 1
        row["calls"] += run["ops"]
        row["seconds"] += run["seconds"]
    for row in table.values():
        row["calls_per_sec"] = round(row["calls"] / row["seconds"]) if row["seconds"] else 0
        row["seconds"] = round(row["seconds"], 1)
    return table


def merge(reports):
    """One report from several (shards of one nightly): same tree and variant required. A
    report that lacks a field the merge reads is a SetupError naming it."""
    try:
        return _merge(reports)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SetupError(f"cannot merge: a report has a missing or malformed field "
                         f"({type(error).__name__}: {error})") from None


def _merge(reports):
    first = reports[0]
    for other in reports[1:]:
        if other["mbedtls"]["fingerprint"] != first["mbedtls"]["fingerprint"]:
            raise SetupError("cannot merge reports of different Mbed TLS trees "
                             f"({first['mbedtls']['fingerprint']} vs "
                             f"{other['mbedtls']['fingerprint']})")
        if other["variant"] != first["variant"]:
            raise SetupError(f"cannot merge variants {first['variant']} and {other['variant']}")
    shrinks, known = {}, set()
    for report in reports:
        for failure in report["failures"]:
            if failure["shrink"]:
                shrinks.setdefault(failure["signature"], failure["shrink"])
            if failure["known"]:
                known.add(failure["signature"])
    meta = {"command": "merge", "mbedtls": first["mbedtls"], "variant": first["variant"],
            "budget_seconds": max(r["budget_seconds"] for r in reports),
            "elapsed_seconds": max(r["elapsed_seconds"] for r in reports),
            "shards": sorted({json.dumps(s) for r in reports for s in r["shards"]})}
    meta["shards"] = [json.loads(s) for s in meta["shards"]]
    runs = [run for report in reports for run in report["runs"]]
    covered = coverage.merged_sections(report.get("coverage") for report in reports)
    return build(meta, runs, shrinks, frozenset(known), covered)


def load(directory):
    """summary.json of a report directory; SetupError unless it is a report of this version."""
    path = directory if directory.endswith(".json") else os.path.join(directory, "summary.json")
    if not os.path.isfile(path):
        raise SetupError(f"{directory}: not a psa-stress report (no summary.json)")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise SetupError(f"{path}: unreadable report: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SetupError(f"{path}: not a psa-stress report")
    if data.get("version") != VERSION:
        raise SetupError(f"{path}: report format version {data.get('version')}, this psa-stress "
                         f"reads version {VERSION}")
    for name, kind in _TOP_LEVEL.items():
        if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
            raise SetupError(f"{path}: malformed report: {name} must be a JSON "
                             f"{_JSON_TYPES[kind]}")
    for name in ("runs", "failures"):
        if not all(isinstance(item, dict) for item in data[name]):
            raise SetupError(f"{path}: malformed report: {name} must hold objects")
    return data


def _portfolio_markdown(plan):
    """The default job's allocation: runs per scenario x engine pair."""
    if not plan:
        return []
    engines = sorted({e for row in plan["runs"].values() for e in row})
    lines = ["", f"Portfolio ({plan['order']}; runs of {plan['run_seconds']} s):", "",
             "| scenario | " + " | ".join(engines) + " |", "|---" * (len(engines) + 1) + "|"]
    for name, row in plan["runs"].items():
        lines.append(f"| {name} | " + " | ".join(str(row.get(e, "-")) for e in engines) + " |")
    skipped = plan.get("skipped") or {}
    if skipped:
        lines += ["", "Skipped (the driver refused them):", ""]
        lines += [f"- `{pair}`: {why}" for pair, why in sorted(skipped.items())]
    return lines


def markdown(data):
    tree = data["mbedtls"]
    lines = [f"# psa-stress: {data['verdict'].upper()}", "",
             f"- Mbed TLS {tree['version']} ({tree['origin']}: `{tree['path']}`, "
             f"fingerprint {tree['fingerprint']})",
             f"- `{data['command']}`, variant `{data['variant']}`, budget "
             f"{data['budget_seconds']} s, elapsed {data['elapsed_seconds']} s, build "
             f"{data.get('build_seconds', '-')} s",
             *([f"- **interrupted**: {data['interrupted']}"] if data.get("interrupted") else []),
             *([f"- {coverage.headline(data['coverage'])}"] if data.get("coverage") else []),
             *_portfolio_markdown(data.get("portfolio")), "",
             "| scenario | seed | calls | calls/s | checker | result |",
             "|---|---|---|---|---|---|"]
    for run in data["runs"]:
        checker = run["check"]["verdict"] if run["check"] else "-"
        result = "clean" if run["clean"] else ", ".join(f["id"] for f in run["failures"])
        lines.append(f"| {run['id']} | {run['seed']} | {run['ops']} | "
                     f"{run['ops_per_sec']} | {checker} | {result} |")
    for failure in data["failures"]:
        state = "known" if failure["known"] else "NEW"
        lines += ["", f"## {failure['id']} ({state}, {failure['count']}x): "
                      f"{failure['signature']}", "", failure["message"], "",
                  f"Found by `{failure['found_by']['run']}`.", "",
                  f"Reproduce: `{failure['repro']}`"]
    return "\n".join(lines) + "\n"
