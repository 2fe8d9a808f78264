"""Reports: reports/<run>/ with summary.json (schema: docs/report-format.md), summary.md,
index.html (timelines), junit.xml and results.sarif, all written from the summary data, so that
``merge`` can rewrite them for combined shards; and the one-screen terminal summary."""
import datetime
import json
import os

from scenarios.report import junit, page, sarif, summary
from scenarios.source import REPO, SetupError

REPORTS_DIR = os.path.join(REPO, "reports")
FILES = {"summary.md": summary.markdown, "index.html": page.render, "junit.xml": junit.render,
         "results.sarif": sarif.render}


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
    """Every report file of ``data`` into ``directory``."""
    with open(os.path.join(directory, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    for name, render in FILES.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(render(data))


def terminal(data, directory):
    """One screen: verdict, per-scenario throughput, one line per distinct failure, where the
    report is."""
    counts = data["counts"]
    lines = [f"psa-stress {data['command']}: {data['verdict'].upper()}  "
             f"(Mbed TLS {data['mbedtls']['version']}, {data['variant']}, "
             f"{counts['runs']} runs, {counts['calls']} calls, {data['elapsed_seconds']} s)"]
    for name, row in data["throughput"].items():
        lines.append(f"  {name:<22} {row['runs']:>3} runs {row['calls']:>10} calls "
                     f"{row['calls_per_sec']:>8} calls/s")
    for failure in data["failures"][:12]:
        state = "known" if failure["known"] else "NEW  "
        lines.append(f"  {state} {failure['id']} x{failure['count']:<3} {failure['signature']}")
        lines.append(f"        repro: {failure['repro']}")
    if len(data["failures"]) > 12:
        lines.append(f"  ... and {len(data['failures']) - 12} more distinct failures")
    lines.append(f"report: {os.path.relpath(os.path.join(directory, 'index.html'))}")
    return "\n".join(lines)
