"""The mutant detection matrix (run.py mutants): matrix.json (the data), matrix.md and
matrix.html (self-contained, no external assets). One row per mutant, the stock tree first (its
false-positive row); psa-stress's columns and, when --upstream ran, upstream's threaded suites
side by side, with the mutants upstream misses and psa-stress catches marked."""
import json
import os
from html import escape

from scenarios.report.page import STYLE

UPSTREAM_SUITES = ("test_suite_psa_crypto.concurrent", "test_suite_psa_crypto_init")
HEADER = ("mutant", "default job detected", "median s", "max s", "late exits (of full runs)",
          "oracles",          "caught by", "hinted portfolio", "upstream suites", "upstream: what fired",
          "only psa-stress")


def write_matrix(directory, rows, budget):
    """matrix.json, matrix.md and matrix.html of the Detection rows; returns the data."""
    data = {"schema": 2, "budget_seconds_per_run": budget,
            "upstream_suites": list(UPSTREAM_SUITES) if rows[0].upstream else [],
            "rows": [row.to_json() for row in rows]}
    with open(os.path.join(directory, "matrix.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    for name, render in (("matrix.md", matrix_markdown), ("matrix.html", matrix_html)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(render(data))
    return data


def cells(row):
    """The table cells of one matrix.json row, as text (HEADER order)."""
    oracles = ", ".join(f"{k} {v}" for k, v in sorted(row["oracles"].items())) or "-"
    stress = f"{row['detected']}/{row['runs']}" if row["runs"] else "not run"
    up = row.get("upstream")
    if up is None:
        up_cells = ("not run", "-", "-")
    else:
        fired = ", ".join(f"{k} {v}" for k, v in sorted(up["kinds"].items())) or "-"
        if up["failed_cases"]:
            fired += f" ({'; '.join(up['failed_cases'][:2])})"
        up_cells = (f"{up['caught']}/{up['runs']}", fired, "yes" if only_stress(row) else "")
    hinted = row.get("hinted")
    hinted_cell = f"{hinted['detected']}/{hinted['runs']}, median " \
        f"{_number(hinted['median_seconds'])} s" if hinted else "not run"
    full = row.get("full_runs", row["runs"])
    late = f"{len(row['late_seconds'])}/{full}" if row["runs"] else "-"
    return (row["mutant"], stress, _number(row["median_seconds"]), _number(row["max_seconds"]),
            late, oracles, ", ".join(sorted(row["scenarios"])) or "-",
            hinted_cell, *up_cells)


def only_stress(row):
    """A mutant psa-stress caught in some run and upstream's suites caught in none."""
    up = row.get("upstream")
    return bool(row["mutant"] != "stock" and row["detected"] and up and not up["caught"])


def matrix_markdown(data):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in data["rows"]]
    return "\n".join(lines) + "\n"


def matrix_html(data):
    head = "".join(f"<th>{escape(cell)}</th>" for cell in HEADER)
    body = "".join(_html_row(row) for row in data["rows"])
    runs = {row["upstream"]["runs"] for row in data["rows"] if row.get("upstream")}
    note = (f"Upstream suites ({', '.join(data['upstream_suites'])}), built from the same mutated "
            f"tree with TSan, run {', '.join(map(str, sorted(runs)))} time(s) per mutant; "
            "caught = a failing test case, a TSan report, a crash or a hang."
            if data["upstream_suites"] else "Upstream suites not run (use --upstream).")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>psa-stress: mutant detection matrix</title><style>{STYLE}"
            ".only{background:#fde8c8}</style></head><body>"
            "<h1>Mutant detection matrix</h1>"
            "<p>Each psa-stress run is the default job, <code>run.py --mbedtls-dir TREE --budget "
            f"{escape(str(data['budget_seconds_per_run']))}</code>, unhinted; times count from "
            "the end of its build to its first NEW FAILURE line; a late exit is a run that "
            "ended more than 10 s after its budget (counted over the runs that went to their "
            "end; with --full-runs K the later runs stop at their first NEW FAILURE line). "
            f"{escape(note)} Highlighted rows: missed by upstream's suites, caught by "
            f"psa-stress.</p><table><tr>{head}</tr>{body}</table></body></html>\n")


def _html_row(row):
    css = " class=\"only\"" if only_stress(row) else ""
    return f"<tr{css}>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells(row)) + "</tr>"


def _number(value):
    return "-" if value is None else str(value)
