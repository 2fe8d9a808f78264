"""The host's state while a benchmark runs: its cross-core cache-line round trip
(bench/cross_core_probe.c), probed before and after every driver run.

On the 2-vCPU VMs this project runs on, a round trip is normally about 100 ns; in some phases of
tens of seconds the host places the vCPUs so that it takes 4-5x that, and the 8-thread driver,
whose key-slot mutex, ticket counter and TSan sync words cross the cores on every call, slows
down by up to 2x while single-threaded code does not slow at all. bench_driver reports its
medians over all runs and over the runs on a normal host (both probes within NORMAL_FACTOR of
the fastest probe of the whole benchmark), so that a figure says which it is.
"""
import os
import shutil
import subprocess

BENCH = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(BENCH, "cross_core_probe.c")
BINARY = os.path.join(os.path.dirname(BENCH), "build", "bench", "cross-core-probe")
NORMAL_FACTOR = 2.0


class ProbeError(Exception):
    """The probe cannot be built or run here (no C compiler, fewer than two CPUs)."""


def _compiled():
    """The probe's binary, compiled (again) when missing or older than its source."""
    if os.path.exists(BINARY) and os.path.getmtime(BINARY) >= os.path.getmtime(SOURCE):
        return BINARY
    compiler = next((c for c in ("cc", "clang", "gcc") if shutil.which(c)), None)
    if compiler is None:
        raise ProbeError("no C compiler for bench/cross_core_probe.c")
    os.makedirs(os.path.dirname(BINARY), exist_ok=True)
    done = subprocess.run([compiler, "-O2", "-pthread", SOURCE, "-o", BINARY],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ProbeError(f"cross_core_probe.c does not compile: {done.stderr.strip()[:200]}")
    return BINARY


def round_trip_ns():
    """One probe: the median cross-core round trip, in ns."""
    done = subprocess.run([_compiled()], capture_output=True, text=True)
    if done.returncode != 0:
        raise ProbeError(done.stderr.strip() or f"cross-core-probe exited {done.returncode}")
    return float(done.stdout.strip())


def probed(run):
    """run() between two probes: (its result, the slower of the two round trips in ns)."""
    before = round_trip_ns()
    result = run()
    return result, max(before, round_trip_ns())


def normal_threshold(round_trips):
    """The slowest round trip (ns) of a normal host: NORMAL_FACTOR x the fastest one probed."""
    return NORMAL_FACTOR * min(round_trips)


def on_normal_host(samples, threshold):
    """samples: [(value, round_trip_ns)] -> the values whose round trip is <= threshold."""
    return [value for value, ns in samples if ns <= threshold]
