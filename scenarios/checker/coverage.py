"""Concurrency coverage: what a run explored, as counts over a stated universe
(docs/report-format.md "coverage").

Three metrics:

- **operation pairs**, computed from the history after the run (no cost to the driver): for each
  ordered pair of outcomes ``op:STATUS`` on one key id, how many times two calls overlapped in
  real time. Calls A and B overlap iff neither ``A.ret < B.call`` nor ``B.ret < A.call``
  (docs/history-format.md); the pair is ordered by invocation: the first outcome is the call
  invoked first. A call is on the key ids it names: its ``key`` (a copy's or derive_from's
  source too), and the id a create makes (``out.key`` on SUCCESS, the requested id of a
  persistent create otherwise). Two calls sharing two ids count once per shared id. Pending
  calls (no return) are counted apart, not paired.
- **key-slot mutex hand-offs**, recorded by the driver (end.json ``handoffs``,
  harness/inside/handoffs.h): for each release of the key-slot mutex by one thread followed by its
  acquisition by another, both threads in a call, the pair of sides ``op@function``: the call's
  operation and the core function that took the mutex for the critical section.
- **slot transitions**, recorded by the driver (end.json ``transitions``,
  harness/inside/transitions.h): each slot-state transition made inside a call, ``alone`` or
  ``contended`` (another thread registered as a reader of the slot, or waiting for the key-slot
  mutex in a call on the slot's key).

The universe of the pair metric is every ordered pair of the outcomes ``universe_outcomes()``:
the operations of the scenario catalogue that name a key, each with the statuses the model
accepts for it (scenarios/model/key_store.py, model/key_use.py ``LEGITIMATE``;
ALREADY_EXISTS for creates), minus the statuses only injected faults or a static key store produce (storage and memory
errors, INSUFFICIENT_ENTROPY, INSUFFICIENT_DATA). The hand-off universe is every ordered pair of
the sides ``universe_sides()``: each such operation with each core function that takes the
key-slot mutex on its path in Mbed TLS 3.6 (``CRITICAL_SECTIONS``). The transition universe is
every transition of ``TRANSITIONS`` with each of ``CONTENTION``. Each is an upper bound: some
cells cannot occur under a given scenario (spec mode lets no destroy overlap another call on its
id). Observed cells outside it are kept and listed as ``outside``.

Public API::

    of_history(path) -> dict     # a binary history directory or a JSON Lines file
    of_run(path) -> dict | None  # a run directory (its history/) or a history path
    merge(a, b) -> dict          # associative and commutative; None is the identity
    universe() -> {"pairs": [(first, second)], "handoffs": [...], "transitions": [...]}
    summary(cov, limit=None) -> {metric: {covered, total, fraction, uncovered, uncovered_count,
                                          outside, outside_count}}
    section(runs) -> dict | None # a report's top-level "coverage" from its runs' JSON
    newly_covered(before, after) -> {metric: [cells]}
    compare(reports, names) -> dict, format_compare(result) -> str    # run.py coverage
"""
import functools
import json
import os

from scenarios import catalog
from scenarios.history import binary as history_binary
from scenarios.history import schema as history_format
from scenarios.history import reader as history_module
from scenarios.model import key_store as model_module
from scenarios.model import key_use as model_use
from scenarios.setup.source import SetupError

VERSION = 2
METRICS = ("pairs", "handoffs", "transitions")
LABELS = {"pairs": "operation pairs", "handoffs": "key-slot hand-offs",
          "transitions": "slot transitions"}
LISTED = 100        # uncovered and outside cells a summary lists when limited (section())
_FAULT_ONLY = model_module.RESOURCE_ERRORS | {"INSUFFICIENT_ENTROPY", "INSUFFICIENT_DATA"}
_KEYLESS = frozenset(op for op, (ints, *_rest) in history_format.OPS.items()
                     if "key" not in ints and "src" not in ints
                     and op not in history_format.CREATE_OPS)
_TWO_KEYS = frozenset(op for op, (ints, *_rest) in history_format.OPS.items()
                      if "src" in ints)
_SCANNED = ("op", "status", "key", "out_key", "attrs.lifetime", "attrs.id")


def empty():
    return {"version": VERSION, "calls": 0, "pending": 0, **{m: {} for m in METRICS}}


# ---- the universe ----

@functools.lru_cache(maxsize=None)
def catalogue_ops():
    """The operations some scenario's mix names that name a key, in first-seen order."""
    seen = []
    for scenario in catalog.SCENARIOS:
        for item in scenario.mix.split(","):
            op = item.split("=")[0].strip()
            if op in history_format.OPS and op not in _KEYLESS and op not in seen:
                seen.append(op)
    return tuple(seen)


def _statuses(op):
    legitimate = model_module.LEGITIMATE.get(op) or model_use.LEGITIMATE[op]
    extra = {"ALREADY_EXISTS"} if op in history_format.CREATE_OPS else set()
    return sorted((set(legitimate) | extra) - _FAULT_ONLY,
                  key=lambda status: (status != "SUCCESS", status))


@functools.lru_cache(maxsize=None)
def universe_outcomes():
    """Every ``op:STATUS`` of the pair universe, SUCCESS first per operation."""
    return tuple(f"{op}:{status}" for op in catalogue_ops() for status in _statuses(op))


# The core functions of Mbed TLS 3.6 that take the key-slot mutex (library/psa_crypto.c,
# psa_crypto_slot_management.c), by what an operation does: look a key up and let it go, create
# one, destroy one, purge or close one.
LOOKUP = ("psa_get_and_lock_key_slot", "psa_unregister_read_under_mutex")
CREATION = ("psa_start_key_creation", "psa_finish_key_creation", "psa_fail_key_creation")
CRITICAL_SECTIONS = {"destroy": ("psa_get_and_lock_key_slot", "psa_destroy_key"),
                     "purge": ("psa_purge_key",), "close": ("psa_close_key",),
                     "import": CREATION, "generate": CREATION}
_FROM_KEY = LOOKUP + CREATION       # copy, derive, derive_from: read a key, create one

TRANSITIONS = ("EMPTY>FILLING", "FILLING>FULL", "FILLING>EMPTY", "FULL>PENDING_DELETION",
               "PENDING_DELETION>EMPTY", "FULL>EMPTY(evict)", "FULL>EMPTY(unload)")
CONTENTION = ("alone", "contended")


def critical_sections(op):
    """The core functions taking the key-slot mutex on ``op``'s path."""
    if op in CRITICAL_SECTIONS:
        return CRITICAL_SECTIONS[op]
    return _FROM_KEY if op in history_format.CREATE_OPS else LOOKUP


@functools.lru_cache(maxsize=None)
def universe_sides():
    """Every hand-off side ``op@function`` of the universe."""
    return tuple(f"{op}@{function}" for op in catalogue_ops()
                 for function in critical_sections(op))


def universe():
    outcomes, sides = universe_outcomes(), universe_sides()
    return {"pairs": [(a, b) for a in outcomes for b in outcomes],
            "handoffs": [(a, b) for a in sides for b in sides],
            "transitions": [(t, c) for t in TRANSITIONS for c in CONTENTION]}


# ---- operation pairs of one history ----

def of_run(path):
    """The coverage of a run directory (its ``history``) or of a history path; None when there
    is no history."""
    history = os.path.join(path, "history")     # runner.HISTORY (runner imports this module)
    path = history if os.path.exists(history) else path
    return of_history(path) if os.path.exists(path) else None


def of_history(path):
    """The coverage of the history at ``path`` (HistoryError when it is malformed)."""
    result = empty()
    with history_module.gc_paused():      # a million small tuples, no cycles
        if history_binary.is_binary(path):
            per_key = _binary_keys(path, result)
        else:
            per_key = _jsonl_keys(path, result)
        result["pairs"] = _pairs(per_key)
        end = _end(path)
        for metric in ("handoffs", "transitions"):
            table = end.get(metric)
            result[metric] = _checked_table(table) if isinstance(table, dict) else {}
    return result


def _pairs(per_key):
    """{first: {second: overlaps}}: a sweep per key over its calls sorted by invocation, with
    the calls still running (ret past the new call's invocation) kept in ``active``."""
    counts = {}
    for calls in per_key.values():
        calls.sort()
        active = []
        for call, ret, outcome in calls:
            if active:
                active = [item for item in active if item[0] > call]
                for _, earlier in active:
                    pair = (earlier, outcome)
                    counts[pair] = counts.get(pair, 0) + 1
            active.append((ret, outcome))
    nested = {}
    for (first, second), count in counts.items():
        nested.setdefault(first, {})[second] = count
    return nested


# How a call's key ids follow from its record (docstring at the top), per (op, status):
# its key, the created id (out key on SUCCESS, the requested id of a persistent create), both.
NONE, KEY, CREATED, BOTH = range(4)


def _mode(op, status):
    if op in _KEYLESS:
        return NONE
    if op not in history_format.CREATE_OPS:
        return KEY
    return BOTH if op in _TWO_KEYS else CREATED


def _add(per_key, mode, created, key, entry):
    """Files ``entry`` under the key ids a call names; ``created``: the id it makes, or 0."""
    if mode != CREATED and key:
        per_key.setdefault(key, []).append(entry)
    if mode >= CREATED and created:
        per_key.setdefault(created, []).append(entry)


def _jsonl_keys(path, result):
    per_key = {}
    for call in history_module.open_history(path).calls:
        result["calls"] += 1
        if call.ret is None:
            result["pending"] += 1
            continue
        args, mode = call.args, _mode(call.op, call.status)
        created = call.out.get("key", 0) if call.status == "SUCCESS" else \
            args.get("id", 0) if model_module.is_persistent(args.get("lifetime", 0)) else 0
        _add(per_key, mode, created, args.get("key", args.get("src", 0)),
             (call.call, call.ret, f"{call.op}:{call.status}"))
    return per_key


def _binary_keys(path, result):
    """key id -> [(call, ret, outcome)] of every returned record, from a scan of a few record
    fields; counts the calls and the pending ones into ``result``."""
    header = history_binary.open_binary(path).header      # validates header.json
    binary = header["binary"]
    kinds = {}
    per_key, calls, pending = {}, 0, 0
    get = per_key.get
    for stream in history_binary.columns(path, binary, _SCANNED):
        for call, ret, op, status, key, out_key, lifetime, requested in stream:
            calls += 1
            if not ret:
                pending += 1
                continue
            kind = kinds.get((op, status))
            if kind is None:
                kind = kinds[(op, status)] = _kind(binary, op, status)
            mode, success, outcome = kind
            if mode == NONE:
                continue
            entry = (call, ret, outcome)
            if mode != CREATED and key:             # inline _add: the hot loop
                found = get(key)
                if found is None:
                    per_key[key] = [entry]
                else:
                    found.append(entry)
            if mode >= CREATED:
                created = out_key if success else (requested if lifetime else 0)
                if created:
                    per_key.setdefault(created, []).append(entry)
    result["calls"], result["pending"] = calls, pending
    return per_key


def _kind(binary, op, status):
    """(mode, SUCCESS?, outcome name) of a record's operation and status codes."""
    names = binary["ops"]
    op_name = names[op] if op < len(names) else f"op{op}"
    status_name = binary["statuses"].get(str(status)) or f"STATUS({status})"
    return _mode(op_name, status_name), status_name == "SUCCESS", f"{op_name}:{status_name}"


def _end(path):
    """The history's end object (end.json of a binary history, the last line of a JSON Lines
    one), or {} when there is none to read."""
    try:
        if history_binary.is_binary(path):
            with open(os.path.join(path, "end.json"), encoding="utf-8") as stream:
                end = json.load(stream).get("end")
        else:
            with open(path, "rb") as stream:
                stream.seek(max(0, os.path.getsize(path) - 65536))
                end = json.loads(stream.read().splitlines()[-1]).get("end")
    except (OSError, ValueError, IndexError, AttributeError):
        return {}
    return end if isinstance(end, dict) else {}


def _checked_table(table):
    return {str(a): {str(b): n for b, n in row.items() if type(n) is int and n > 0}
            for a, row in table.items() if isinstance(row, dict)}


# ---- merging and summarising ----

def _merge_table(a, b):
    merged = {first: dict(row) for first, row in a.items()}
    for first, row in b.items():
        into = merged.setdefault(first, {})
        for second, count in row.items():
            into[second] = into.get(second, 0) + count
    return merged


def merge(a, b):
    """The coverage of both: counts added. None (no coverage) is the identity."""
    if a is None or b is None:
        return b if a is None else a
    return {"version": VERSION, "calls": a.get("calls", 0) + b.get("calls", 0),
            "pending": a.get("pending", 0) + b.get("pending", 0),
            **{m: _merge_table(a.get(m, {}), b.get(m, {})) for m in METRICS}}


def merge_all(items):
    return functools.reduce(merge, items, None)


def _listed(cells, limit):
    return cells if limit is None else cells[:limit]


def _metric(table, cells, limit):
    covered = sum(1 for a, b in cells if table.get(a, {}).get(b, 0) > 0)
    inside = set(cells)
    outside = sorted(f"{a} > {b}" for a, row in table.items() for b, n in row.items()
                     if n and (a, b) not in inside)
    uncovered = [f"{a} > {b}" for a, b in cells if not table.get(a, {}).get(b, 0)]
    return {"covered": covered, "total": len(cells),
            "fraction": round(covered / len(cells), 4) if cells else 0.0,
            "uncovered_count": len(uncovered), "uncovered": _listed(uncovered, limit),
            "outside_count": len(outside), "outside": _listed(outside, limit)}


def summary(cov, limit=None):
    """Per metric: covered cells of the universe, its size, the fraction, the uncovered cells
    (``first > second``, in the universe's order) and the observed cells outside the universe,
    each list with its length; ``limit`` keeps only the first cells of each list."""
    cov = cov or empty()
    cells = universe()
    return {m: _metric(cov.get(m, {}), cells[m], limit) for m in METRICS}


def newly_covered(before, after):
    """Per metric, the cells ``after`` covered that ``before`` did not (``first > second``)."""
    found = {}
    for metric in METRICS:
        old = (before or {}).get(metric, {})
        found[metric] = sorted(f"{a} > {b}" for a, row in (after or {}).get(metric, {}).items()
                               for b, n in row.items() if n and not old.get(a, {}).get(b, 0))
    return found


def section(runs):
    """The report's top-level ``coverage`` (docs/report-format.md): the runs' coverage merged,
    the universe and the summary, whose lists of cells are cut at ``LISTED`` (the report's
    coverage-cells.json has them whole); None when no run recorded any."""
    found = [run["coverage"] for run in runs if run.get("coverage") is not None]
    return _section(merge_all(found), len(found))


def merged_sections(sections):
    """The top-level ``coverage`` of reports merged (run.py merge): their sections' counts
    added, their runs summed; None when none has any."""
    found = [item for item in sections if item]
    return _section(merge_all(found), sum(item.get("runs", 0) for item in found))


def _section(merged, runs):
    if merged is None:
        return None
    return {**merged, "runs": runs,
            "universe": {"outcomes": list(universe_outcomes()),
                         "operations": list(catalogue_ops()),
                         "sides": list(universe_sides()),
                         "transitions": list(TRANSITIONS), "contention": list(CONTENTION)},
            "summary": summary(merged, LISTED)}


def cell_counts(cov):
    """A run's coverage as summary.json keeps it: the number of cells it covered per metric
    (the tables themselves are merged into the report's section)."""
    return None if cov is None else {
        m: sum(1 for row in cov.get(m, {}).values() for n in row.values() if n) for m in METRICS}


def cells(section_data):
    """Every uncovered and outside cell of a report's coverage, per metric (coverage-cells.json)."""
    full = summary(section_data)
    return {m: {key: full[m][key] for key in ("uncovered", "outside")} for m in METRICS}


def cells_file(data):
    """coverage-cells.json of a report (docs/report-format.md): ``cells`` of its coverage."""
    found = data.get("coverage")
    return json.dumps(cells(found) if found else {}, indent=1)


def _fractions(item):
    return ", ".join(f"{LABELS[m]} {item[m]['covered']}/{item[m]['total']} "
                     f"({100 * item[m]['fraction']:.1f} %)" for m in METRICS)


def headline(section_data):
    """One line: covered / total per metric."""
    return "coverage: " + _fractions(section_data["summary"])


def of_report(data, name):
    """A loaded report's coverage (its ``coverage``, else merged from its runs)."""
    found = data.get("coverage")
    if not found:
        raise SetupError(f"{name}: the report records no coverage")
    return found


def compare(reports, names):
    """The coverage of ``reports`` (loaded summary.json objects) merged, and per report what it
    covered that none of the reports before it did."""
    sections = [of_report(data, name) for data, name in zip(reports, names)]
    merged, per_report = None, []
    for section_data, name in zip(sections, names):
        own = summary(section_data)
        per_report.append({"report": name, "calls": section_data["calls"],
                           **{m: _counts(own[m]) for m in METRICS},
                           "new": newly_covered(merged, section_data) if merged else None})
        merged = merge(merged, section_data)
    total = summary(merged)
    return {"merged": {"calls": merged["calls"],
                       **{m: {**_counts(total[m]), "uncovered": total[m]["uncovered"]}
                          for m in METRICS}},
            "reports": per_report}


def _counts(metric):
    return {key: metric[key] for key in ("covered", "total", "fraction")}


def format_compare(result):
    lines = [f"merged ({len(result['reports'])} reports, {result['merged']['calls']} calls): "
             f"{_fractions(result['merged'])}"]
    for item in result["reports"]:
        lines.append(f"{item['report']}: {_fractions(item)}")
        if item["new"] is not None:
            new = item["new"]
            lines.append("  new against the reports before it: " +
                         ", ".join(f"{len(new[m])} {LABELS[m]}" for m in METRICS))
            lines += [f"    {LABELS[m]}: {cell}" for m in METRICS for cell in new[m]]
    return "\n".join(lines)
