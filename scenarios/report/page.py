"""index.html: the report for a person, in one self-contained file (no network, no external
assets): summary, per-scenario throughput, one section per distinct failure with its timeline
(checker violations) or its two stacks (sanitizer reports), the shrinking result and the repro
command, the coverage (heat maps of operation pairs, key-slot hand-offs and slot transitions, the
cells never covered), then every run. A short inline script counts the timeline bars the browser
laid out (``data-timeline-bars`` on <body>), which the headless-browser test reads back."""
import math
from html import escape

from scenarios.checker import coverage

from scenarios.report.timeline import svg

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d232a;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:1px solid #ccd;padding-top:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccd;padding:3px 8px;
text-align:left}th{background:#eef}
.verdict-clean{color:#176f2c}.verdict-failed{color:#b3261e}
.tag{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;color:#fff}
.tag.new{background:#b3261e}.tag.known{background:#6b7280}
pre,code{font:12px/1.35 ui-monospace,monospace;background:#f5f5fa}pre{padding:8px;overflow:auto;white-space:pre-wrap}
.stacks{display:flex;gap:12px}.stacks>div{flex:1;min-width:0}
.scroll{overflow-x:auto;border:1px solid #ccd;padding:4px}
svg.timeline text{font:10px ui-monospace,monospace}
svg.timeline .lane{stroke:#dde;stroke-width:1}
svg.timeline .lane-label,svg.timeline .axis{fill:#555}
svg.timeline .call rect{fill:#cfe8d4;stroke:#3b7d4a}
svg.timeline .error rect{fill:#f3e3c3;stroke:#9a6b12}
svg.timeline .pending rect{fill:#eee;stroke:#888;stroke-dasharray:4 3}
svg.timeline .unordered rect{stroke:#e07b00;stroke-width:3}
svg.timeline .blamed rect{fill:#f7c5c0;stroke:#b3261e;stroke-width:3}
.legend span{margin-right:14px}
table.heat td{text-align:right;min-width:2.2em;font-size:12px}table.heat td.never{color:#b3261e}
table.heat th{font-size:11px;writing-mode:vertical-rl}table.heat th.row{writing-mode:initial}
ul.cells{columns:3;font:12px ui-monospace,monospace}
"""

SCRIPT = """
(function(){var n=0;document.querySelectorAll('svg.timeline rect.call').forEach(function(r){
var b=r.getBBox();if(b.width>0&&b.height>0)n++;});
document.body.setAttribute('data-timeline-bars',String(n));})();
"""


def render(data):
    body = [_summary(data), _throughput(data)]
    body += [_failure(failure) for failure in data["failures"]]
    if data.get("coverage"):
        body.append(_coverage(data["coverage"]))
    body.append(_runs(data))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>psa-stress: {escape(data['verdict'])}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n")


def _table(header, rows):
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    lines = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>"
                    for row in rows)
    return f"<table><tr>{head}</tr>{lines}</table>"


def _summary(data):
    tree, counts = data["mbedtls"], data["counts"]
    shards = ", ".join(f"{s['index']}/{s['count']}" for s in data["shards"]) or "-"
    rows = [("Mbed TLS", f"{tree['version']} ({tree['origin']}: {tree['path']}, "
                         f"fingerprint {tree['fingerprint']})"),
            ("command / variant", f"{data['command']} / {data['variant']}"),
            ("budget / elapsed", f"{data['budget_seconds']} s / {data['elapsed_seconds']} s"),
            ("shards", shards), ("runs", f"{counts['runs']} ({counts['failed_runs']} failed), "
                                          f"{counts['calls']} calls"),
            ("distinct failures", f"{counts['distinct_failures']} ({counts['new']} new, "
                                  f"{counts['known']} known)"),
            ("created", data["created"])]
    return (f"<h1>psa-stress report: <span class=\"verdict-{escape(data['verdict'])}\">"
            f"{escape(data['verdict'].upper())}</span></h1>" + _table(("", ""), rows))


def _throughput(data):
    rows = [(name, row["runs"], row["calls"], row["seconds"], row["calls_per_sec"])
            for name, row in data["throughput"].items()]
    return "<h2>Throughput per scenario</h2>" + _table(
        ("scenario", "runs", "calls", "seconds", "calls/s"), rows)


def _failure(failure):
    state = "known" if failure["known"] else "new"
    parts = [f"<h2 id=\"{escape(failure['id'])}\">{escape(failure['id'])} "
             f"<span class=\"tag {state}\">{state}</span> {escape(failure['signature'])}</h2>",
             f"<p>{escape(failure['message'])}</p>",
             _table(("count", "first seen", "last seen", "found by"),
                    [(failure["count"], failure["first_seen"], failure["last_seen"],
                      f"{failure['found_by']['run']} (scenario {failure['found_by']['scenario']},"
                      f" seed {failure['found_by']['seed']})")]),
             "<h3>Reproduce</h3>", f"<pre>{escape(failure['repro'] or '(no job recorded)')}</pre>",
             _shrink(failure["shrink"])]
    if failure["violation"]:
        parts.append(_violation(failure["violation"]))
    if failure["stacks"]:
        parts.append(_stacks(failure["stacks"]))
    return "<section class=\"failure\">" + "".join(parts) + "</section>"


def _shrink(shrink):
    if not shrink:
        return "<p>Not shrunk.</p>"
    before, after = shrink["original"], shrink["minimal"]
    if not shrink["reproduced"]:
        return (f"<p>Shrinking: the failure did not recur in {shrink['runs']} replays by call "
                "count; the repro command is the original run.</p>")
    rows = [(name, _param(before, name), _param(after, name))
            for name in ("threads", "ops", "volatile_pool", "persistent_ids")]
    kept = [step["change"] for step in shrink["steps"] if step["kept"]]
    return ("<h3>Shrunk</h3>" + _table(("parameter", "original", "minimal"), rows) +
            f"<p>{shrink['runs']} runs in {shrink['seconds']} s; kept: "
            f"{escape(', '.join(kept) or 'nothing')}</p>")


def _param(job, name):
    if name == "ops":
        return job["ops"] or f"{job['seconds']} s"
    return job["scenario"].get(name, "-")


def _violation(violation):
    prefix = "".join(f"<li><code>{escape(text)}</code></li>" for text in violation["prefix"])
    return ("<h3>Timeline of the failing window</h3><p class=\"legend\"><span>red: the call the "
            "checker cannot explain</span><span>orange outline: calls it could not order "
            "against it</span><span>dashed: never returned</span></p>"
            f"<div class=\"scroll\">{svg(violation)}</div>"
            f"<h3>Longest linearizable prefix ({len(violation['prefix'])} calls)</h3>"
            f"<ol>{prefix}</ol><p>Model state there: <code>{escape(str(violation['state']))}"
            "</code></p>")


def _stacks(stacks):
    columns = []
    for stack in stacks:
        frames = "\n".join(f"#{i} {f['function']} {f['file']}:{f['line']}"
                           for i, f in enumerate(stack["frames"]))
        columns.append(f"<div><h4>{escape(stack['title'])}</h4><pre>{escape(frames)}</pre></div>")
    return "<h3>Stacks</h3><div class=\"stacks\">" + "".join(columns) + "</div>"


def _runs(data):
    rows = [(run["id"], run["seed"], run["ops"], run["ops_per_sec"],
             run["check"]["verdict"] if run["check"] else "-",
             "clean" if run["clean"] else ", ".join(f["id"] for f in run["failures"]))
            for run in data["runs"]]
    return ("<h2>Runs</h2><details open><summary>" + str(len(rows)) + " runs</summary>" +
            _table(("run", "seed", "calls", "calls/s", "checker", "result"), rows) +
            "</details>")


def _summed(table, key):
    """{(key(first), key(second)): count summed} of a coverage table."""
    summed = {}
    for first, row in table.items():
        for second, count in row.items():
            cell = (key(first), key(second))
            summed[cell] = summed.get(cell, 0) + count
    return summed


def _coverage(section):
    """The coverage section: headline, the heat maps, the cells never covered (every one: the
    summary in summary.json lists only the first)."""
    full = coverage.summary(section)
    ops = section["universe"]["operations"]
    functions = list(dict.fromkeys(side.split("@")[1] for side in coverage.universe_sides()))
    by_op = _summed(section["pairs"], lambda outcome: outcome.split(":")[0])
    never = [f"{a} > {b}" for a in ops for b in ops if not by_op.get((a, b))]
    transitions = {(t, c): n for t, row in section.get("transitions", {}).items()
                   for c, n in row.items()}
    handoffs = section["handoffs"]
    return ("<h2 id=\"coverage\">Coverage</h2>"
            f"<p>{escape(coverage.headline(section))}, over {section['runs']} runs and "
            f"{section['calls']} calls ({section['pending']} pending, not paired). Universes "
            "(docs/report-format.md): ordered pairs of the "
            f"{len(section['universe']['outcomes'])} outcomes <code>op:STATUS</code> of the "
            f"catalogue's {len(ops)} key operations (statuses the model accepts, without those "
            "only faults produce); ordered pairs of the hand-off sides <code>op@function</code> "
            "(each operation with the core functions that take the key-slot mutex on its path); "
            "each slot transition alone or contended.</p>"
            "<h3>Operation pairs on one key id</h3><p>Row: the call invoked first; column: a "
            "call that overlapped it; counts summed over statuses.</p>"
            + _heat(ops, by_op) +
            "<h3>Key-slot mutex hand-offs</h3><p>Row: the releasing call's operation; column: "
            "the acquiring call's; summed over critical sections.</p>"
            + _heat(ops, _summed(handoffs, lambda side: side.split("@")[0])) +
            "<p>Row: the core function that took the mutex for the releasing critical section; "
            "column: the acquiring one's; summed over operations.</p>"
            + _heat(functions, _summed(handoffs, lambda side: side.split("@")[-1])) +
            "<h3>Slot transitions</h3><p>Contended: another thread registered as a reader of the "
            "slot, or waiting for the key-slot mutex in a call on the slot's key.</p>"
            + _heat(list(coverage.TRANSITIONS), transitions, list(coverage.CONTENTION)) +
            "<h3>Never covered</h3>"
            + _cells(f"operation pairs, by operation ({len(never)})", never)
            + "".join(_cells(f"{coverage.LABELS[m]} ({full[m]['uncovered_count']})",
                             full[m]["uncovered"]) for m in coverage.METRICS)
            + _cells("observed outside the universe "
                     f"({sum(full[m]['outside_count'] for m in coverage.METRICS)})",
                     [cell for m in coverage.METRICS for cell in full[m]["outside"]]))


def _heat(names, cells, columns=None):
    """A table of names x columns (default: names); a cell's shade grows with the log of its
    count."""
    columns = columns or names
    top = max(cells.values(), default=0)
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    rows = []
    for first in names:
        tds = []
        for second in columns:
            count = cells.get((first, second), 0)
            if not count:
                tds.append(f"<td class=\"never\" title=\"{escape(first)} &gt; "
                           f"{escape(second)}: never\">0</td>")
                continue
            light = 95 - round(55 * math.log1p(count) / math.log1p(top))
            tds.append(f"<td style=\"background:hsl(210,70%,{light}%)\" title=\""
                       f"{escape(first)} &gt; {escape(second)}\">{count}</td>")
        rows.append(f"<tr><th class=\"row\">{escape(first)}</th>{''.join(tds)}</tr>")
    return f"<div class=\"scroll\"><table class=\"heat\"><tr><th></th>{head}</tr>" \
        f"{''.join(rows)}</table></div>"


def _cells(title, cells):
    items = "".join(f"<li>{escape(cell)}</li>" for cell in cells)
    return f"<details><summary>{escape(title)}</summary><ul class=\"cells\">{items}</ul></details>"
