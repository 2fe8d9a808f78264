"""Suite reports: reports/<timestamp>/summary.json, summary.md, and the terminal summary."""
import datetime
import json
import os

from scenarios.source import REPO

REPORTS_DIR = os.path.join(REPO, "reports")
SCHEMA_VERSION = 1


def new_report_dir():
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(REPORTS_DIR, stamp)
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(REPORTS_DIR, f"{stamp}-{suffix}")
    os.makedirs(path)
    return path


def summary(tree, variant, budget, runs, elapsed):
    failed = [run for run in runs if not run.clean]
    return {
        "schema": SCHEMA_VERSION,
        "verdict": "failed" if failed else "clean",
        "mbedtls": {"path": tree.path, "version": tree.version, "origin": tree.origin,
                    "fingerprint": tree.fingerprint()},
        "variant": variant,
        "budget_seconds": budget,
        "elapsed_seconds": round(elapsed, 1),
        "runs": [run.to_json() for run in runs],
        "failures": sum(len(run.failures) for run in runs),
    }


def write(directory, data):
    with open(os.path.join(directory, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    with open(os.path.join(directory, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(data))


def markdown(data):
    tree = data["mbedtls"]
    lines = [f"# psa-stress: {data['verdict'].upper()}", "",
             f"- Mbed TLS {tree['version']} ({tree['origin']}: `{tree['path']}`, "
             f"fingerprint {tree['fingerprint']})",
             f"- variant `{data['variant']}`, budget {data['budget_seconds']} s, "
             f"elapsed {data['elapsed_seconds']} s", "",
             "| scenario | seed | calls | calls/s | checker | result |",
             "|---|---|---|---|---|---|"]
    for run in data["runs"]:
        checker = run["check"]["verdict"] if run["check"] else "-"
        result = "clean" if run["clean"] else ", ".join(f["kind"] for f in run["failures"])
        lines.append(f"| {run['scenario']} | {run['seed']} | {run['ops']} | "
                     f"{run['ops_per_sec']} | {checker} | {result} |")
    for run in data["runs"]:
        for failure in run["failures"]:
            lines += ["", f"## {run['scenario']} seed {run['seed']}: {failure['kind']}", "",
                      failure["message"], "", f"Run directory: `{run['directory']}`"]
            if failure["details"]:
                lines += ["", "```", failure["details"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def terminal(data, directory):
    """One screen: verdict, one line per run, where the report is."""
    lines = [f"psa-stress: {data['verdict'].upper()}  (Mbed TLS {data['mbedtls']['version']}, "
             f"{data['variant']}, {data['elapsed_seconds']} s)"]
    for run in data["runs"]:
        state = "clean" if run["clean"] else "FAILED"
        lines.append(f"  {run['scenario']:<20} seed {run['seed']:<6} {run['ops']:>9} calls "
                     f"{run['ops_per_sec']:>8} calls/s  {state}")
        for failure in run["failures"]:
            lines.append(f"    {failure['kind']}: {failure['message']}")
    lines.append(f"report: {os.path.relpath(directory)}/summary.md")
    return "\n".join(lines)
