"""bench/: the one-run benchmark writes its tables and a well-formed SVG; the SVG plotter puts
points where their values say; the detection table reads its figures right; the host probe
measures a round trip and keeps slow-host runs out of the normal-host medians."""
import glob
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.stress_env import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import bench_detect  # noqa: E402
import host_probe  # noqa: E402
import svg_plot  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _points(polyline):
    return [tuple(float(v) for v in pair.split(",")) for pair in polyline.get("points").split()]


@pytest.mark.slow
def test_quick_run_writes_tables_and_svg(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_all.py"),
                           "--quick", "--reports-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    (directory,) = glob.glob(str(tmp_path / "*-bench"))
    with open(os.path.join(directory, "bench.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    assert {(r["variant"], r["threads"], r["history"]) for r in data["throughput"]} == \
        {(v, t, h) for v in ("tsan", "plain") for t in (2, 8) for h in (True, False)}
    assert all(r["calls_per_sec"] > 0 for r in data["throughput"])
    assert all(len(r["round_trip_ns"]) == 1 and r["round_trip_ns"][0] > 0
               for r in data["throughput"])
    assert [r["calls"] for r in data["checker"]] == [1_000, 10_000] * 2
    assert all(r["verdict"] == "ok" for r in data["checker"])
    assert [r["engine"] for r in data["detection"]["engines"]] == ["os", "random"]
    with open(os.path.join(directory, "bench.md"), encoding="utf-8") as handle:
        table = handle.read()
    assert "| slowest round trip, ns |" in table
    assert "| tsan | 8 |" in table and "| 10,000 |" in table and "| random |" in table
    root = ET.parse(os.path.join(directory, "bench.svg")).getroot()
    assert root.tag == SVG + "svg"
    charts = root.findall(SVG + "g")
    assert len(charts) == 2
    assert len(charts[0].findall(SVG + "polyline")) == 4        # tsan/plain x history on/off
    lines = charts[1].findall(SVG + "polyline")                 # two histories, two lengths
    assert [len(_points(line)) for line in lines] == [2, 2]


def test_svg_places_points_by_value():
    chart = {"title": "t", "x_label": "x", "y_label": "y", "log_x": True, "log_y": True,
             "series": [("a", [(10, 1), (1000, 100)]), ("b", [(100, 10)])]}
    root = ET.fromstring(svg_plot.document([chart]))
    (a, b) = [_points(line) for line in root.iter(SVG + "polyline")]
    (low, high), (middle,) = a, b
    # log-log: 100 lies halfway between 10 and 1000 on both axes; larger y is higher (smaller px)
    assert abs(middle[0] - (low[0] + high[0]) / 2) < 0.2
    assert abs(middle[1] - (low[1] + high[1]) / 2) < 0.2
    assert low[0] < high[0] and low[1] > high[1]
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(0 <= x <= width and 0 <= y <= height for x, y in a + b)


def test_svg_escapes_names():
    chart = {"title": "a < b & c", "x_label": "x", "y_label": "y",
             "series": [("<tsan>", [(1, 1), (2, 3)])]}
    root = ET.fromstring(svg_plot.document([chart]))
    assert "<tsan>" in [text.text for text in root.iter(SVG + "text")]


def test_detection_table_counts_and_quantiles():
    row = bench_detect._row("pct", 10, [30.0, 10.0, 20.0], ["violation: x"] * 3)
    assert (row["detected"], row["min"], row["median"], row["max"]) == (3, 10.0, 20.0, 30.0)
    missed = bench_detect._row("os", 10, [], [])
    table = bench_detect.markdown({"mutant": "m", "scenario": "s", "variant": "tsan",
                                   "lock_wait": "sleep", "runs": 10, "budget_seconds": 60,
                                   "engines": [row, missed]})
    assert "--lock-wait sleep" in table.splitlines()[0]
    assert "| pct | 3/10 | 10.0 | 20.0 | 30.0 |" in table
    assert "| os | 0/10 | - | - | - |" in table


def test_unknown_mutant_is_one_error_line_and_exit_2():
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_detect.py"),
                           "--mutant", "no-such-mutant"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["bench_detect: unknown mutant 'no-such-mutant'"]


def test_cross_core_probe_measures_a_round_trip():
    if len(os.sched_getaffinity(0)) < 2:
        with pytest.raises(host_probe.ProbeError, match="two usable CPUs"):
            host_probe.round_trip_ns()
        return
    rate, ns = host_probe.probed(lambda: 42)
    assert rate == 42
    assert 1 <= ns < 1_000_000   # a cache line crosses the cores in tens of ns to a few us


def test_runs_on_a_slow_host_are_left_out_of_the_normal_host_medians():
    samples = [(300_000, 100.0), (180_000, 470.0), (350_000, 120.0), (310_000, 200.0)]
    threshold = host_probe.normal_threshold([ns for _, ns in samples])
    assert threshold == 200.0
    assert host_probe.on_normal_host(samples, threshold) == [300_000, 350_000, 310_000]


@pytest.mark.slow
def test_driver_bench_reports_all_runs_and_normal_host_runs():
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_driver.py"),
                           "--seconds", "0.3", "--repeats", "2", "--variants", "plain",
                           "--lock-waits", "spin"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    header, columns, row = done.stdout.strip().splitlines()[-3:]
    assert "normal host: cross-core round trip <= " in header
    assert "normal host: on" in columns
    assert row.startswith("plain    spin") and "/2, " in row
