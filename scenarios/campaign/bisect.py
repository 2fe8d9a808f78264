"""Bisection: the first commit of an Mbed TLS git checkout that shows a failure's signature.

``run.py bisect --good REF --bad REF [--repo DIR] TARGET`` where TARGET is a failure id or a
report directory (the failure's job, as ``run.py repro`` reruns it), or a scenario name with
``stress`` flags (the job given directly). The order of work:

1. check the input: DIR is the top of a git work tree with no uncommitted changes and no bisection
   in progress, both refs name commits, good is an ancestor of bad;
2. on the bad commit, run the job ``--calibrate`` times: the reproduction rate of the signature
   (for a scenario, the signature seen in most runs, or ``--signature``); none -> bad input;
3. choose N, the runs per commit (``replays_needed``): with 95 % confidence the rate is at least
   its Clopper-Pearson lower bound p, and N is the least n with (1 - p)^n <= ``--miss``;
4. on the good commit, run N times: the signature there -> bad input (good is not good);
5. ``git bisect run`` this module as the step command (``python3 -m scenarios.campaign.bisect
   STATE``): it builds the checked-out commit and runs the job up to N times, stopping at the first
   run with the signature: exit 1 (bad), else 0 (good); a commit that is no 3.6.x tree, does not
   build, or lacks an operation the scenario calls is skipped (125); a harness error aborts the
   bisection (255);
6. the first bad commit, its subject, N and the rate on stdout (``--json``: as JSON), and a
   report in reports/<stamp>-bisect/ (docs/bisect.md: summary.txt, bisect.json, steps.jsonl,
   git-bisect-log.txt, state.json, the first bad commit's failing run).

Every step builds the checkout as an --mbedtls-dir tree: the build directory is keyed by the
tree's path, so the whole bisection shares one build directory and each step recompiles only the
files the checkout changed (scenarios/setup/build.py). The checkout is returned to its branch at the
end, whatever happens.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter

from scenarios import catalog, report
from scenarios.campaign import repro as repro_module
from scenarios.setup.build import Variant, ensure_built, unsupported
from scenarios.campaign.job import PASS_THROUGH, Job
from scenarios.cli.options import (EXIT_CLEAN, EXIT_FAILURE, add_stress_options,
                               add_target_options, non_empty, positive_int, scenario_overrides)
from scenarios.report import summary
from scenarios.campaign.shrink import signatures_of
from scenarios.campaign.signatures import signature_id
from scenarios.setup.source import REPO, SetupError, check_tree, find_tree

DEFAULT_CALIBRATION = 10
DEFAULT_MISS = 0.01
DEFAULT_MAX_RUNS = 100
CONFIDENCE = 0.95
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
STATE_FILE = "state.json"
STEPS_FILE = "steps.jsonl"
# git bisect run: 0 good, 1 bad, 125 skip (cannot be tested), >= 128 stop the bisection
STEP_GOOD, STEP_BAD, STEP_SKIP, STEP_ABORT = 0, 1, 125, 255
FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
SKIPPED_ONLY = re.compile(r"only 'skip'ped commits left.*?:\n((?:[0-9a-f]{40}\n?)+)", re.S)


def add_bisect_options(parser):
    """The bisect subcommand's flags: the stress flags (their positional is the TARGET) plus the
    refs, the checkout and the statistics."""
    add_stress_options(parser)
    add_target_options(parser)
    target = next(a for a in parser._actions if a.dest == "scenario")
    target.metavar = "TARGET"
    target.help = ("a failure id (12 hex digits) or a report directory, or a scenario name "
                   "followed by stress flags")
    parser.add_argument("--good", required=True, help="a commit without the failure")
    parser.add_argument("--bad", required=True, help="a commit with the failure (a descendant "
                        "of --good)")
    parser.add_argument("--repo", help="the Mbed TLS git checkout to bisect (default: "
                        "--mbedtls-dir, else the report's tree, else the tree under test)")
    parser.add_argument("--signature", help="the signature (text or id) to bisect, when a "
                        "scenario's runs show several (default: the most frequent on --bad)")
    parser.add_argument("--calibrate", type=positive_int, default=DEFAULT_CALIBRATION,
                        help="runs on --bad that measure the reproduction rate "
                        f"(default {DEFAULT_CALIBRATION})")
    parser.add_argument("--miss", type=probability, default=DEFAULT_MISS,
                        help="accepted probability of missing the failure at a bad commit "
                        f"(default {DEFAULT_MISS})")
    parser.add_argument("--max-runs", type=positive_int, default=DEFAULT_MAX_RUNS,
                        help="most runs per commit; a rarer failure is refused "
                        f"(default {DEFAULT_MAX_RUNS})")
    parser.add_argument("--reports-dir", default=report.REPORTS_DIR, type=non_empty,
                        help="where the report directory is created (default reports/)")


def probability(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in (0, 1)")
    return value


# ---- how many runs per commit ----

def rate_lower_bound(hits, runs, confidence=CONFIDENCE):
    """The one-sided Clopper-Pearson lower bound of a rate seen ``hits`` times in ``runs``: the
    least p for which ``hits`` or more successes have probability at least 1 - confidence."""
    if hits == 0:
        return 0.0
    alpha = 1 - confidence
    low, high = 0.0, 1.0
    for _ in range(60):                 # bisection on p: the tail grows with p
        middle = (low + high) / 2
        tail = sum(math.comb(runs, k) * middle ** k * (1 - middle) ** (runs - k)
                   for k in range(hits, runs + 1))
        low, high = (middle, high) if tail < alpha else (low, middle)
    return low


def replays_needed(hits, runs, miss=DEFAULT_MISS):
    """(rate lower bound p, N): the least N with (1 - p)^N <= miss, None when hits is 0."""
    low = rate_lower_bound(hits, runs)
    if low <= 0:
        return low, None
    if low >= 1:
        return low, 1
    return low, max(1, math.ceil(math.log(miss) / math.log(1 - low)))


# ---- git ----

class Repo:
    """A git work tree whose top is the Mbed TLS tree being bisected."""

    def __init__(self, path):
        self.path = os.path.realpath(path)

    def git(self, *args, check=True):
        result = subprocess.run(["git", "-C", self.path, *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SetupError(f"--repo {self.path}: git {args[0]} failed: {last}")
        return result

    def validate(self):
        """SetupError unless this is the top of a git work tree, clean, not mid-bisection."""
        if not os.path.isdir(self.path):
            raise SetupError(f"--repo {self.path}: no such directory")
        if shutil.which("git") is None:
            raise SetupError("git is not installed (Debian package git)")
        top = self.git("rev-parse", "--show-toplevel", check=False)
        if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != self.path:
            raise SetupError(f"--repo {self.path}: not the top of a git work tree")
        if self.git("status", "--porcelain", "--untracked-files=no").stdout.strip():
            raise SetupError(f"--repo {self.path}: uncommitted changes (commit or stash them)")
        if self.git("bisect", "log", check=False).returncode == 0:
            raise SetupError(f"--repo {self.path}: a bisection is in progress "
                             "(git bisect reset)")

    def commit(self, ref):
        result = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if result.returncode != 0:
            raise SetupError(f"--repo {self.path}: {ref!r} names no commit")
        return result.stdout.strip()

    def is_ancestor(self, older, newer):
        return self.git("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def subject(self, commit):
        return self.git("log", "-1", "--format=%s", commit).stdout.strip()

    def head(self):
        """The branch checked out, else the commit (detached HEAD)."""
        branch = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return branch.stdout.strip() if branch.returncode == 0 else self.commit("HEAD")

    def checkout(self, ref):
        self.git("checkout", "--quiet", "--detach", ref)


# ---- one commit ----

def test_commit(state, directory, runs, log, stop_at_hit=True):
    """Build the checked-out tree and run the job up to ``runs`` times (until the first run with
    the signature, when ``stop_at_hit``); the outcome as JSON. SetupError when the tree cannot
    be built or lacks an operation the job's scenario calls."""
    tree = check_tree(state["tree"], "--mbedtls-dir")
    started = time.monotonic()
    build = ensure_built(state["job"]["variant"], tree, log=log)
    built = time.monotonic()
    job, seen, hits, done = Job.from_json(state["job"]), Counter(), 0, 0
    why = unsupported(job.scenario, build.capabilities)
    if why:                 # its runs would pass without testing anything: the commit is skipped
        raise SetupError(why)
    for index in range(runs):
        run_dir = os.path.join(directory, f"run{index + 1}")
        signatures = signatures_of(job.run(build, run_dir))
        seen.update(signatures)
        done += 1
        hit = state["signature"] in signatures if state["signature"] else bool(signatures)
        hits += hit
        if not hit or hits > 1:
            shutil.rmtree(run_dir, ignore_errors=True)       # keep one failing run as evidence
        if hits and stop_at_hit:
            break
    return {"runs": done, "hits": hits, "signatures": dict(seen),
            "build_seconds": round(built - started, 1),
            "run_seconds": round(time.monotonic() - built, 1)}


def record(report_dir, commit, subject, role, outcome):
    """Append one tested commit to the report's steps.jsonl."""
    line = {"commit": commit, "subject": subject, "role": role, **outcome}
    with open(os.path.join(report_dir, STEPS_FILE), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    return line


def step(state_path):
    """The command git bisect runs at each commit; its exit code is the verdict."""
    with open(state_path, encoding="utf-8") as handle:
        state = json.load(handle)
    report_dir = os.path.dirname(state_path)
    repo = Repo(state["tree"])
    commit = repo.commit("HEAD")
    try:
        outcome = test_commit(state, os.path.join(report_dir, commit[:12]), state["runs"],
                              _stderr)
    except SetupError as error:
        record(report_dir, commit, repo.subject(commit), "skip", {"error": str(error)})
        _stderr(f"bisect: {commit[:12]} cannot be tested, skipped: {error}")
        return STEP_SKIP
    verdict = "bad" if outcome["hits"] else "good"
    record(report_dir, commit, repo.subject(commit), verdict, outcome)
    _stderr(f"bisect: {commit[:12]} {verdict} ({outcome['hits']} of {outcome['runs']} runs "
            f"with the signature)")
    return STEP_BAD if outcome["hits"] else STEP_GOOD


def step_main(argv):
    """Entry point of ``python3 -m scenarios.campaign.bisect STATE``: a harness error stops the
    bisection (exit 255) instead of marking the commit bad."""
    try:
        return step(argv[0])
    except BaseException:                      # any bug here must not read as "bad"
        _stderr(traceback.format_exc())
        return STEP_ABORT


# ---- the command ----

def cmd_bisect(args):
    job, signature, tree_hint = target_job(args)
    repo = Repo(args.repo or args.mbedtls_dir or tree_hint or find_tree(log=_stderr).path)
    repo.validate()
    good, bad = repo.commit(args.good), repo.commit(args.bad)
    if good == bad or not repo.is_ancestor(good, bad):
        raise SetupError(f"--good {args.good} is not an ancestor of --bad {args.bad}")
    report_dir = report.new_report_dir(args.reports_dir, label="bisect")
    args.report_directory = report_dir
    state = {"tree": repo.path, "job": job.to_json(), "signature": signature}
    original = repo.head()
    previous = {signum: signal.signal(signum, _interrupted) for signum in INTERRUPTS}
    try:
        result = bisect(repo, good, bad, state, report_dir, args)
    finally:                        # the checkout goes back to its branch, whatever happened
        for signum in INTERRUPTS:   # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        repo.git("bisect", "reset", check=False)
        repo.git("checkout", "--quiet", original, check=False)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return finish(result, report_dir, args)


def _interrupted(signum, _frame):
    """SIGINT, SIGTERM: exit 130 / 143 (as the stress commands), after the clean-up."""
    _stderr(f"run.py: interrupted by {signal.Signals(signum).name}; the checkout is restored")
    raise SystemExit(128 + signum)


def target_job(args):
    """(job, signature or None, the report's tree or None) of the TARGET: a scenario name with
    stress flags, or a failure (id or report directory)."""
    if args.runs != 1:
        raise SetupError("--runs: bisect chooses the runs per commit itself (--miss)")
    if args.scenario in {scenario.name for scenario in catalog.SCENARIOS}:
        engine = {name: value for name in PASS_THROUGH
                  if (value := getattr(args, name.replace("-", "_")))}
        job = Job(catalog.get(args.scenario), args.seed, args.seconds, args.ops, engine,
                  args.canary, args.variant).replace(**scenario_overrides(args))
        return job, None, None
    given = [flag for flag in ("seed", "ops", "canary", *PASS_THROUGH)
             if getattr(args, flag.replace("-", "_")) not in (None, False, 1)]
    if given or scenario_overrides(args):
        raise SetupError(f"{args.scenario}: stress flags need a scenario name, not a failure")
    if not (os.path.exists(args.scenario) or repro_module.FAILURE_ID.fullmatch(args.scenario)):
        raise SetupError(f"{args.scenario}: not a scenario (run.py list), a failure id "
                         "(12 hex digits) or a report directory")
    data, failures = repro_module.find(args.scenario)
    failure = next((f for f in failures if args.signature in (f["signature"], f["id"])),
                   failures[0])
    job = repro_module.job_of(data, failure, args.variant)
    if "replay" in job.engine:   # a recorded schedule diverges once the code changes: use the seed
        job = job.replace(engine={k: v for k, v in job.engine.items() if k != "replay"})
    return job, failure["signature"], summary.mbedtls_dir(data["mbedtls"])


def resolve_signature(text, seen):
    """A --signature given as text or as its 12-digit id (looked up among those ``seen``)."""
    for signature in seen or ():
        if signature_id(signature) == text:
            return signature
    return text


def bisect(repo, good, bad, state, report_dir, args):
    """Calibrate on bad, check good, then git bisect run; the result as JSON."""
    Variant.parse(state["job"]["variant"])
    repo.checkout(bad)
    calibration = _test(repo, bad, "calibrate", state, report_dir, args.calibrate, False)
    state["signature"] = choose_signature(state["signature"], calibration, args.signature)
    hits = calibration["signatures"].get(state["signature"], 0)
    low, runs = replays_needed(hits, args.calibrate, args.miss)
    if runs is None:
        raise SetupError(f"the failure does not reproduce on --bad {args.bad} "
                         f"(0 of {args.calibrate} runs show {state['signature']})")
    if runs > args.max_runs:
        raise SetupError(f"the failure reproduces too rarely on --bad ({hits} of "
                         f"{args.calibrate} runs): {runs} runs per commit would be needed, "
                         f"more than --max-runs {args.max_runs}")
    state.update(runs=runs, rate={"hits": hits, "runs": args.calibrate, "lower_bound": low})
    _stderr(f"bisect: {state['signature']}: reproduced {hits}/{args.calibrate} on bad; rate "
            f">= {low:.3f} (95 % confidence), so {runs} runs per commit miss a present bug "
            f"with probability <= {args.miss}")
    repo.checkout(good)
    if _test(repo, good, "verify-good", state, report_dir, runs, True)["hits"]:
        raise SetupError(f"the failure reproduces on --good {args.good} too")
    state_path = os.path.join(report_dir, STATE_FILE)
    with open(state_path, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    return run_git_bisect(repo, good, bad, state, state_path, report_dir)


def _test(repo, commit, role, state, report_dir, runs, stop_at_hit):
    _stderr(f"bisect: {role} {commit[:12]} {repo.subject(commit)}")
    outcome = test_commit(state, os.path.join(report_dir, f"{role}-{commit[:12]}"), runs,
                          _stderr, stop_at_hit)
    return record(report_dir, commit, repo.subject(commit), role, outcome)


def choose_signature(signature, calibration, requested):
    """The signature to bisect: the failure's, the one requested, or the most frequent one of
    the calibration runs (ties: the first in sorted order)."""
    seen = calibration["signatures"]
    if requested:
        return resolve_signature(requested, seen)
    if signature:
        return signature
    if not seen:
        raise SetupError(f"the job does not reproduce on --bad (no failure in "
                         f"{calibration['runs']} runs)")
    return min(seen, key=lambda s: (-seen[s], s))


def run_git_bisect(repo, good, bad, state, state_path, report_dir):
    """git bisect start/run with this module as the step; the first bad commit, or the
    candidates when skipped commits leave several."""
    repo.git("bisect", "start", bad, good)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.monotonic()
    output, code = _run_session(["git", "-C", repo.path, "bisect", "run", sys.executable, "-m",
                                 "scenarios.campaign.bisect", state_path], env)
    log = repo.git("bisect", "log", check=False).stdout
    with open(os.path.join(report_dir, "git-bisect-log.txt"), "w", encoding="utf-8") as handle:
        handle.write(log + "\n" + output)
    found = FIRST_BAD.search(output)
    skipped = SKIPPED_ONLY.search(output)
    if not found and not skipped:
        raise RuntimeError(f"git bisect run ended without a verdict (exit {code}; "
                           f"{os.path.join(report_dir, 'git-bisect-log.txt')})")
    candidates = [found.group(1)] if found else skipped.group(1).split()
    return {"good": good, "bad": bad, "signature": state["signature"],
            "signature_id": signature_id(state["signature"]), "runs_per_commit": state["runs"],
            "rate": state["rate"], "job": state["job"],
            "first_bad": [{"commit": c, "subject": repo.subject(c)} for c in candidates],
            "steps": _steps(report_dir), "bisect_seconds": round(time.monotonic() - started, 1)}


def _run_session(command, env):
    """(stdout, exit code) of ``command`` run in a session of its own: when this process is
    interrupted, the whole session (git, the step, its build and driver) is ended with it, so
    that nothing runs on in the checkout once it is reset."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as process:
        try:
            output, _ = process.communicate()
        except BaseException:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
    return output, process.returncode


def _steps(report_dir):
    with open(os.path.join(report_dir, STEPS_FILE), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def finish(result, report_dir, args):
    """Write bisect.json, print the verdict; exit 0 when one commit is named, 1 when skipped
    commits leave several candidates."""
    with open(os.path.join(report_dir, "bisect.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    _prune(report_dir, result["first_bad"])
    rate = result["rate"]
    lines = [f"signature: {result['signature']} ({result['signature_id']})",
             f"rate on bad: {rate['hits']}/{rate['runs']} runs (>= {rate['lower_bound']:.3f} "
             f"at 95 % confidence); {result['runs_per_commit']} runs per commit "
             f"(miss probability <= {args.miss})",
             f"commits tested: {len(result['steps'])}; report: {os.path.relpath(report_dir)}"]
    first = result["first_bad"]
    if len(first) == 1:
        lines.append(f"first bad commit: {first[0]['commit']} {first[0]['subject']}")
    else:
        lines.append("first bad commit: one of (skipped commits in between):")
        lines += [f"  {c['commit']} {c['subject']}" for c in first]
    with open(os.path.join(report_dir, "summary.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        print("\n".join(lines), file=sys.stderr)
    else:
        print("\n".join(lines))
    return EXIT_CLEAN if len(first) == 1 else EXIT_FAILURE


def _prune(report_dir, first_bad):
    """Keep the failing run of the first bad commit(s) as evidence, not the other commits'."""
    keep = {candidate["commit"][:12] for candidate in first_bad}
    for name in os.listdir(report_dir):
        path = os.path.join(report_dir, name)
        if os.path.isdir(path) and name.rsplit("-", 1)[-1] not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _stderr(text):
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(step_main(sys.argv[1:]))
