#!/usr/bin/env python3
"""Every headline figure in one run: driver throughput, checker cost, time to detect.

    python3 bench/bench_all.py [--quick] [--reports-dir reports] [--build-root DIR]

1. Driver throughput (bench_driver.calls_per_second): volatile-churn on the tsan and plain
   builds, 2/4/8/16 threads, history recording on and off, the default --lock-wait (spin); the
   median of --repeats runs, with the host's cross-core round trip probed around each run
   (bench/host_probe.py: on the 2-vCPU VMs a slow-host phase halves the 8-thread figure).
2. Checker cost against history length (bench_checker): real driver histories (plain driver,
   8 threads, binary form; the volatile-churn mix, and the register operations the C fast path
   accepts) of 1 k, 10 k, 100 k and 1 M calls, each checked in a fresh interpreter (wall and
   CPU seconds, peak memory).
3. Time to detect the narrow-window mutant per scheduling engine (bench_detect.measure).

Writes reports/<stamp>-bench/: bench.json (every figure), bench.md (the tables) and bench.svg
(throughput against threads per variant; checker CPU seconds against history length, log-log).
--quick: short runs, fewer points and one detection run per engine (a smoke run, not figures).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
import bench_checker  # noqa: E402
import bench_detect  # noqa: E402
import bench_driver  # noqa: E402
import host_probe  # noqa: E402
import svg_plot  # noqa: E402
from scenarios import catalog  # noqa: E402
from scenarios.checker import fast_check  # noqa: E402
from scenarios.setup.build import ensure_built  # noqa: E402
from scenarios.report import REPORTS_DIR, new_report_dir  # noqa: E402
from scenarios.setup.source import SetupError, find_tree  # noqa: E402

FULL = {"threads": (2, 4, 8, 16), "seconds": 3, "repeats": 3,
        "sizes": (1_000, 10_000, 100_000, 1_000_000),
        "detect": {"runs": 10, "budget": 60, "run_seconds": 3}}
QUICK = {"threads": (2, 8), "seconds": 0.5, "repeats": 1, "sizes": (1_000, 10_000),
         "detect": {"runs": 1, "budget": 20, "run_seconds": 1, "engines": ("os", "random")}}
VARIANTS = ("tsan", "plain")
HISTORIES = (("volatile-churn mix", bench_checker.DRIVER_MIX),      # (name, driver --mix)
             ("register ops (C fast path)", bench_checker.REGISTER_MIX))


def throughput(tree, plan, log):
    """[{variant, threads, history, calls_per_sec, round_trip_ns}]: medians over plan["repeats"]
    runs, and the host's cross-core round trip around each run (bench/host_probe.py)."""
    scenario = catalog.get("volatile-churn")
    rows = []
    for variant in VARIANTS:
        build = ensure_built(variant, tree, log=log)
        for threads in plan["threads"]:
            for record in (True, False):
                runs = [host_probe.probed(lambda: bench_driver.calls_per_second(
                            build, scenario, threads, plan["seconds"], repeat, record))
                        for repeat in range(plan["repeats"])]
                rows.append({"variant": variant, "threads": threads, "history": record,
                             "calls_per_sec": round(statistics.median(r for r, _ in runs)),
                             "round_trip_ns": [ns for _, ns in runs]})
                log(f"throughput {variant} {threads} threads history "
                    f"{'on' if record else 'off'}: {rows[-1]['calls_per_sec']:,} calls/s")
    return rows


def checker(tree, plan, log):
    """[{history, calls, seconds, cpu_seconds, peak_mb, verdict, decided_by}]: driver histories
    of each size, for each mix of HISTORIES."""
    build = ensure_built("plain", tree, log=log)
    driver = build.driver()
    # the C fast path of this very build (fast_check looks under build/ only)
    os.environ["PSA_STRESS_FAST_CHECK"] = os.path.join(build.directory,
                                                       f"lib{fast_check.TARGET}.so")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as scratch:
        for name, mix in HISTORIES:
            for calls in plan["sizes"]:
                path = bench_checker._driver_history(driver, scratch, calls, 8, True, mix)
                verdict, checked, seconds, cpu, peak, by = bench_checker.measure(path)
                shutil.rmtree(path)        # a binary history is a directory
                rows.append({"history": name, "calls": checked, "seconds": round(seconds, 3),
                             "cpu_seconds": round(cpu, 3), "peak_mb": round(peak),
                             "verdict": verdict, "decided_by": by})
                log(f"checker, {name}, {checked:,} calls: {cpu:.2f} CPU-s, {verdict} ({by})")
    return rows


def detection(plan, log):
    settings = dict(plan["detect"])
    engines = settings.pop("engines", bench_detect.ENGINES)
    return bench_detect.measure(bench_detect.NARROW_MUTANT, engines, log=log, **settings)


def markdown(data):
    lines = [f"Measured {data['date']} on {data['machine']}.", "",
             "Driver throughput, volatile-churn, calls/s (median of "
             f"{data['plan']['repeats']} runs of {data['plan']['seconds']} s):", "",
             "| variant | threads | history on | history off | on/off | slowest round trip, ns |",
             "|---|---|---|---|---|---|"]
    rows = {(r["variant"], r["threads"], r["history"]): r for r in data["throughput"]}
    for variant, threads, _ in sorted(k for k in rows if k[2]):
        on, off = rows[(variant, threads, True)], rows[(variant, threads, False)]
        slowest = max(on["round_trip_ns"] + off["round_trip_ns"])
        lines.append(f"| {variant} | {threads} | {on['calls_per_sec']:,} | "
                     f"{off['calls_per_sec']:,} | {on['calls_per_sec'] / off['calls_per_sec']:.2f} "
                     f"| {slowest:.0f} |")
    lines += ["", "Checker, driver histories (8 threads, binary form), fresh interpreter each:",
              "", "| history | calls | wall s | CPU s | calls/CPU-s | peak MB | verdict |",
              "|---|---|---|---|---|---|---|"]
    for row in data["checker"]:
        rate = row["calls"] / row["cpu_seconds"] if row["cpu_seconds"] else 0
        lines.append(f"| {row['history']} | {row['calls']:,} | {row['seconds']} | "
                     f"{row['cpu_seconds']} | {rate:,.0f} | {row['peak_mb']} | "
                     f"{row['verdict']} |")
    lines += ["", "Time to detect, per scheduling engine:", "",
              bench_detect.markdown(data["detection"])]
    return "\n".join(lines)


def charts(data):
    """Throughput against threads per variant and history setting (log y: tsan and plain
    differ tenfold); checker cost against history length, log-log."""
    series = {}
    for row in data["throughput"]:
        name = f"{row['variant']}, history {'on' if row['history'] else 'off'}"
        series.setdefault(name, []).append((row["threads"], row["calls_per_sec"]))
    cost = {}
    for row in data["checker"]:
        cost.setdefault(row["history"], []).append((row["calls"], max(row["cpu_seconds"], 1e-3)))
    return [{"title": "Driver throughput (volatile-churn)", "x_label": "threads",
             "y_label": "calls/s", "log_y": True, "series": sorted(series.items())},
            {"title": "Checker cost", "x_label": "history length (calls)",
             "y_label": "CPU seconds", "log_x": True, "log_y": True,
             "series": list(cost.items())}]


def write(directory, data):
    with open(os.path.join(directory, "bench.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    with open(os.path.join(directory, "bench.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(data))
    with open(os.path.join(directory, "bench.svg"), "w", encoding="utf-8") as handle:
        handle.write(svg_plot.document(charts(data)))


def machine():
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"load average at start {load}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (not figures)")
    parser.add_argument("--reports-dir", default=REPORTS_DIR)
    parser.add_argument("--build-root", help="build directory root (default build/)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.build_root:
        bench_detect.use_build_root(args.build_root)
    log = lambda message: print(message, flush=True)  # noqa: E731
    data = {"schema": 1, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "quick": args.quick, "plan": plan}
    try:
        tree = find_tree(log=lambda _m: None)
        data["throughput"] = throughput(tree, plan, log)
        data["checker"] = checker(tree, plan, log)
        data["detection"] = detection(plan, log)
    except (SetupError, host_probe.ProbeError) as error:
        print(f"bench_all: {error}", file=sys.stderr)
        return 2
    directory = new_report_dir(args.reports_dir, label="bench")
    write(directory, data)
    print(markdown(data), end="")
    print(f"report: {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
