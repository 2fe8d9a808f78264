"""The default job's allocation: which (scenario, engine) pairs run, in which order, how long.

``run.py`` and ``run.py nightly`` draw from the whole catalogue (scenarios/catalog.py): every
scenario, every build variant it needs, every scheduling engine it can run under, the
expected-failure scenarios included. Nothing here knows the bug under test; the order only
spreads the budget:

- runs are short (``RUN_SECONDS``), each on a fresh seed;
- the families (catalogue order) take turns, so any F consecutive runs touch all F families:
  a budget of a few runs per family already reaches every part of the core;
- a run takes, in the family whose turn it is, a pair run least often so far (a family with
  none left at the least count overall passes its turn), so every scenario x engine pair runs
  once before any runs twice, and P runs cover all P pairs;
- among equals, family i starts at engine i (mod its engines' count), so the first round
  spreads the engines across families;
- guided (the default; ``--unguided`` turns it off), the coverage of each run steers the rest
  (scenarios/campaign/steering.py, docs/steering.md): after its first run, in its turn a family
  runs, among its eligible pairs, the one of highest score (rare or still uncovered operation
  pairs), with that scenario's mix steered towards its uncovered pairs. Eligible: run least
  often overall while some pair has not run (so the first round is as above), then run fewer
  than ``LEAD`` runs more than the least-run pair of the plan (no pair falls further behind).

A scenario added to the catalogue joins its family (or its own) with no other edit.
``--scenarios`` and ``--sched`` narrow the plan; ``describe`` is what the report prints.

Public API::

    Plan(scenarios, engines=None, run_seconds=RUN_SECONDS, guided=True)
    Plan.next() -> (Scenario, engine)        # the next run's pair (guided: its mix steered)
    Plan.done(scenario, engine, cov=None)    # count a run of it and its coverage
    Plan.skip(scenario, engine, why)         # the driver refuses it: out of the plan
    Plan.variants() -> [variant names]       # every build the plan needs
    Plan.describe() -> dict                  # the allocation, as report JSON
"""
import dataclasses

from scenarios import catalog
from scenarios.campaign import steering
from scenarios.setup.source import SetupError

RUN_SECONDS = 2.0           # length of one run of the default job (driver seconds)
NIGHTLY_RUN_SECONDS = 3.0   # nightly: every pair of the catalogue within 600 s
LEAD = 3                    # guided: how many runs a pair may run ahead of the least-run one


class Plan:
    def __init__(self, scenarios=catalog.SCENARIOS, engines=None, run_seconds=RUN_SECONDS,
                 guided=True, targets=None):
        self.run_seconds = run_seconds
        self.families = []          # [(family name, [(scenario, its engines)])]
        for scenario in scenarios:
            usable = tuple(e for e in scenario.engines if engines is None or e in engines)
            if not usable:
                continue
            family = next((f for f in self.families if f[0] == scenario.family_name), None)
            if family is None:
                family = (scenario.family_name, [])
                self.families.append(family)
            family[1].append((scenario, usable))
        self.counts = {}            # (family index, pair order key) -> runs
        for index, (_, members) in enumerate(self.families):
            for position, (scenario, engines) in enumerate(members):
                for turn, engine in enumerate(engines):
                    order = ((turn - index) % len(engines), position)
                    self.counts[(index, order, scenario.name, engine)] = 0
        self.turn = 0
        self.skipped = {}           # "scenario@engine" -> why the driver refused it
        if not self.families:
            raise SetupError(f"no scenario of {', '.join(s.name for s in scenarios)} can run "
                             f"under --sched {','.join(engines or ())}")
        self.steering = None        # guided: the coverage so far (scenarios/campaign/steering.py)
        if guided:
            pairs = [(s, e) for _, members in self.families for s, engines in members
                     for e in engines]
            self.steering = steering.Steering(
                pairs, steering.load_reachable() if targets is None else targets)

    def next(self):
        """The scenario and engine of the next run (``done`` counts it). Invariant: the pair is
        eligible (docstring at the top); no family runs twice in a row while another family has
        an eligible pair."""
        fewest = min(self.counts.values())
        lead = LEAD if self.steering and fewest > 0 else 1
        for step in range(len(self.families)):
            index = (self.turn + step) % len(self.families)
            candidates = [pair for pair, runs in self.counts.items()
                          if pair[0] == index and runs < fewest + lead]
            if candidates:
                _, _, name, engine = min(candidates, key=self._rank)
                scenario = self._scenario(name)
                if self.steering:
                    scenario = dataclasses.replace(scenario, mix=self.steering.mix(scenario))
                return scenario, engine
        raise AssertionError("a pair at the least count always exists")

    def _rank(self, pair):
        """Unguided, and a family's first run: catalogue order (its first scenario, the family's
        representative). Guided: highest score, then least run, then that order."""
        if not self.steering or not any(runs for other, runs in self.counts.items()
                                        if other[0] == pair[0]):
            return 0, 0, pair
        return -self.steering.score(pair[2], pair[3]), self.counts[pair], pair

    def skip(self, scenario, engine, why):
        """Take a pair the driver refuses (on this tree, under this engine) out of the plan;
        the report lists it with the reason. False when no pair is left."""
        for pair in list(self.counts):
            if pair[2:] == (scenario.name, engine):
                del self.counts[pair]
        self.skipped[f"{scenario.name}@{engine}"] = why
        return bool(self.counts)

    def done(self, scenario, engine, cov=None):
        """Count a run of the pair and (guided) its coverage (scenarios/checker/coverage.py;
        None: the run left no history); the next turn is the following family's."""
        for pair in self.counts:
            if pair[2:] == (scenario.name, engine):
                self.counts[pair] += 1
                self.turn = pair[0] + 1
        if self.steering:
            self.steering.observe(scenario.name, engine, cov)

    def _scenario(self, name):
        return next(s for _, members in self.families for s, _ in members if s.name == name)

    def variants(self):
        """The build variants of every scenario of the plan, in first-use order."""
        found = []
        for _, members in self.families:
            for scenario, _ in members:
                if scenario.variant not in found:
                    found.append(scenario.variant)
        return found

    def pairs(self):
        return len(self.counts)

    def runs(self):
        """{scenario: {engine: runs}} so far."""
        table = {}
        for (_, _, name, engine), runs in self.counts.items():
            table.setdefault(name, {})[engine] = runs
        return table

    def describe(self):
        order = ("families take turns; in its turn a family runs a pair run least often so far"
                 if not self.steering else
                 f"families take turns; in its turn a family runs its eligible pair of highest "
                 f"coverage score (every pair once first, then no pair more than {LEAD} runs "
                 f"ahead of the least-run one), its mix steered to uncovered operation pairs")
        return {"run_seconds": self.run_seconds, "pairs": self.pairs(), "order": order,
                "guided": self.steering.describe() if self.steering else None,
                "runs": self.runs(), "skipped": dict(self.skipped),
                "families": [{"family": name,
                              "scenarios": [{"scenario": s.name, "engines": list(engines),
                                             "variant": s.variant} for s, engines in members]}
                             for name, members in self.families]}


def parse_engines(text):
    """--sched a,b for run/nightly: engine names of the nemesis, or None (all)."""
    if text is None:
        return None
    engines = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in engines if name not in catalog.ENGINES]
    if unknown or not text.strip():
        raise SetupError(f"--sched {text!r}: expected engines among "
                         f"{', '.join(catalog.ENGINES)}")
    return engines
