"""A job: everything needed to run the driver once, as data that survives a report.

A job is a scenario (with any parameter overridden), a seed, a length (seconds, or an exact number
of calls), engine flags passed through to the driver (``--sched``, ``--faults``), and whether the
test driver with its racy canary is used. ``to_json``/``from_json`` keep it in summary.json, so a
report alone is enough to rerun a failure; ``argv`` is the ``run.py stress`` command line that
reruns it by hand.
"""
import dataclasses
import shlex
from dataclasses import dataclass, field

from scenarios import catalog
from scenarios.campaign.runner import run_scenario

# driver flags owned by the nemesis, passed verbatim (replay: a schedule file, the shrinker's)
PASS_THROUGH = ("sched", "lock-wait", "faults", "pct-depth", "replay")


@dataclass
class Job:
    scenario: catalog.Scenario
    seed: int
    seconds: float = 10
    ops: int = None                      # exact call count; overrides seconds when set
    engine: dict = field(default_factory=dict)     # {"sched": "pct", "faults": "..."}
    canary: bool = False
    build_variant: str = None            # None: the scenario's own variant

    @property
    def variant(self):
        return self.build_variant or self.scenario.variant

    @property
    def threads(self):
        return self.scenario.threads

    def extra(self):
        flags = [item for name, value in self.engine.items() for item in (f"--{name}", value)]
        return flags + (["--canary"] if self.canary else [])

    def run(self, build, directory, timeout=None):
        """Run once (the driver killed after ``timeout`` s, if given); the RunResult carries
        this job (``params``) for the report."""
        result = run_scenario(build, self.scenario, self.seed, self.wait_seconds(), directory,
                              self.threads, self.canary, self.extra(), self.ops, timeout)
        result.params = self.to_json()
        return result

    def wait_seconds(self):
        """The driver's time budget; with an op count, the allowance before it counts as hung."""
        return self.seconds if not self.ops else max(10, self.ops // 200)

    def replace(self, **changes):
        """A copy with some scenario parameters or job fields changed."""
        scenario_fields = {f.name for f in dataclasses.fields(catalog.Scenario)}
        scenario_changes = {k: v for k, v in changes.items() if k in scenario_fields}
        job_changes = {k: v for k, v in changes.items() if k not in scenario_fields}
        return dataclasses.replace(self, scenario=dataclasses.replace(self.scenario,
                                                                      **scenario_changes),
                                   **job_changes)

    def to_json(self):
        return {"scenario": dataclasses.asdict(self.scenario), "seed": self.seed,
                "seconds": self.seconds, "ops": self.ops, "engine": dict(self.engine),
                "canary": self.canary, "variant": self.variant}

    @classmethod
    def from_json(cls, data):
        """The job of a report; scenario fields this version does not know are dropped, missing
        ones take the catalogue's defaults."""
        known = {f.name for f in dataclasses.fields(catalog.Scenario)}
        fields = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in data["scenario"].items() if k in known}
        return cls(catalog.Scenario(**fields), data["seed"], data.get("seconds", 10),
                   data.get("ops"), dict(data.get("engine", {})), data.get("canary", False),
                   data.get("variant"))

    def argv(self, mbedtls_dir=None):
        """``run.py stress ...`` arguments that rerun exactly this job."""
        args = ["stress", self.scenario.name, "--seed", str(self.seed)]
        args += ["--ops", str(self.ops)] if self.ops else ["--seconds", str(self.seconds)]
        for name, value in scenario_parameters(self.scenario).items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        for name, value in self.engine.items():
            args += [f"--{name}", value]
        if self.canary:
            args.append("--canary")
        args += ["--variant", self.variant]
        if mbedtls_dir:
            args += ["--mbedtls-dir", mbedtls_dir]
        return args

    def command(self, mbedtls_dir=None):
        return "python3 run.py " + shlex.join(self.argv(mbedtls_dir))


def scenario_parameters(scenario):
    """The scenario's tunable fields: its integers, and the strings it passes to the driver
    (``--mix``); not its name, prose, variant (the job's) or bookkeeping."""
    driver_args = set(scenario.driver_args())
    return {f.name: getattr(scenario, f.name) for f in dataclasses.fields(scenario)
            if f.name != "name" and (f.type in (int, "int") or (
                f.type in (str, "str") and getattr(scenario, f.name) in driver_args))}
