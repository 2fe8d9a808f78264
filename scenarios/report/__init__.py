"""Reports: reports/<run>/ with summary.json (schema: docs/report-format.md), summary.md,
index.html (timelines), junit.xml, results.sarif and coverage-cells.json, all written from the summary data, so that
``merge`` can rewrite them for combined shards; and the one-screen terminal summary."""
import datetime
import json
import os

from scenarios.checker import coverage
from scenarios.report import junit, page, sarif, summary
from scenarios.setup.source import REPO, SetupError

REPORTS_DIR = os.path.join(REPO, "reports")
FILES = {"summary.md": summary.markdown, "index.html": page.render, "junit.xml": junit.render,
         "results.sarif": sarif.render, "coverage-cells.json": coverage.cells_file}


def new_report_dir(root=REPORTS_DIR, label=""):
    """A new directory under ``root``, named by the time: created atomically (os.mkdir), so two
    sessions starting in the same second get different names. SetupError when ``root`` cannot
    hold it."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + (f"-{label}" if label else "")
    if os.path.exists(root) and not os.path.isdir(root):
        raise SetupError(f"--reports-dir {root}: not a directory")
    try:
        os.makedirs(root, exist_ok=True)
        for suffix in range(1, 1000):
            path = os.path.join(root, stamp if suffix == 1 else f"{stamp}-{suffix}")
            try:
                os.mkdir(path)
                return path
            except FileExistsError:
                continue
    except OSError as error:
        raise SetupError(f"--reports-dir {root}: cannot create a report directory there "
                         f"({error.strerror})") from None
    raise SetupError(f"--reports-dir {root}: 999 report directories named {stamp} already")


def write(directory, data):
    """Every report file of ``data`` into ``directory``, each atomically (written beside, then
    renamed): a reader, or an ending in the middle, sees the old file or the new one."""
    _atomic(os.path.join(directory, "summary.json"), json.dumps(data, indent=2))
    for name, render in FILES.items():
        _atomic(os.path.join(directory, name), render(data))


def _atomic(path, text):
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def relative(directory):
    """The path of a report's index.html, relative to the working directory."""
    return os.path.relpath(os.path.join(directory, "index.html"))


def terminal(data, directory, most=12):
    """One screen: verdict, build time, per-scenario throughput, one line per distinct failure
    (at most ``most``), where the report is."""
    counts = data["counts"]
    verdict = data["verdict"].upper() + (" (INTERRUPTED)" if data.get("interrupted") else "")
    lines = [f"psa-stress {data['command']}: {verdict}  "
             f"(Mbed TLS {data['mbedtls']['version']}, {data['variant']}, "
             f"{counts['runs']} runs, {counts['calls']} calls, {data['elapsed_seconds']} s)"]
    if data.get("interrupted"):
        lines.append(f"  {data['interrupted']}")
    if data.get("build_seconds") is not None:
        lines.append(f"  build {data['build_seconds']} s; budget {data['budget_seconds']} s "
                     "from the build's end")
    plan = data.get("portfolio")
    if plan:
        ran = sum(1 for engines in plan["runs"].values() for runs in engines.values() if runs)
        skipped = plan.get("skipped") or {}
        lines.append(f"  portfolio: {ran}/{plan['pairs']} scenario x engine pairs run"
                     + (f"; {len(skipped)} skipped (the driver refused them: summary.md)"
                        if skipped else ""))
    rows = data["throughput"]
    if len(rows) <= 6:
        for name, row in rows.items():
            lines.append(f"  {name:<22} {row['runs']:>3} runs {row['calls']:>10} calls "
                         f"{row['calls_per_sec']:>8} calls/s")
    else:
        slowest = min(rows, key=lambda name: rows[name]["calls_per_sec"])
        lines.append(f"  {len(rows)} scenarios; slowest {slowest} "
                     f"{rows[slowest]['calls_per_sec']} calls/s (each one: summary.md)")
    for failure in data["failures"][:most]:
        state = "known" if failure["known"] else "NEW  "
        lines.append(f"  {state} {failure['id']} x{failure['count']:<3} "
                     f"{_clip(failure['signature'])}")
        if not failure["known"]:
            lines.append(f"        repro: {failure['repro']}")
    if len(data["failures"]) > most:
        lines.append(f"  ... and {len(data['failures']) - most} more distinct failures")
    lines.append(f"report: {relative(directory)}")
    return "\n".join(lines)


def _clip(text, width=100):
    return text if len(text) <= width else text[:width - 3] + "..."
