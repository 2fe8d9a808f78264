#!/usr/bin/env python3
"""Eviction rate: how many evicted persistent keys the core reloads from storage per run.

    python3 bench/bench_reloads.py [--seconds 10] [--seeds 1,2,3] [--scenario eviction-storm]

Runs the scenario (default eviction-storm: 40 persistent ids over the 16 slots of the static
store, variant tsan-static16) once per seed and prints calls, reloads and reloads/s per run.
The driver counts reloads by wrapping psa_load_persistent_key (harness/inside/reloads.c). Target: >= 1000 reloads in a 10 s run.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scenarios import catalog  # noqa: E402
from scenarios.setup.build import ensure_built  # noqa: E402
from scenarios.campaign.runner import run_scenario  # noqa: E402
from scenarios.setup.source import find_tree  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--scenario", default="eviction-storm")
    args = parser.parse_args()
    scenario = catalog.get(args.scenario)
    build = ensure_built(scenario.variant, find_tree())
    print(f"{'seed':>5} {'calls':>10} {'reloads':>10} {'reloads/s':>10}  verdict")
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            result = run_scenario(build, scenario, seed, args.seconds, directory)
        verdict = "clean" if result.clean else ", ".join(f.kind for f in result.failures)
        print(f"{seed:>5} {result.ops:>10} {result.reloads:>10} "
              f"{result.reloads / args.seconds:>10.0f}  {verdict}")


if __name__ == "__main__":
    main()
