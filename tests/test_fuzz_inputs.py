"""Fuzzed input: random byte corruptions of binary histories, type-mutated JSON Lines histories and
random flags. Every input is read or refused as bad input (HistoryError, exit 2), never a crash of
psa-stress (another exception, exit 3, a traceback, a signal).

The suite runs 10 000 cases in-process (4 000 type-mutated JSON Lines histories, 2 000 corrupted
binary histories through the Python readers and checker, 4 000 random command lines) and a few
through ``run.py check`` (with the checker's C fast path). A longer run, outside the suite:

    python3 -m tests.test_fuzz_inputs 10000
"""
import contextlib
import copy
import glob
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import pytest

from scenarios.checker import check
from scenarios.cli import dispatch as cli
from scenarios.checker import fast_check
from scenarios.history.reader import HistoryError
from tests.stress_env import REPO, RUN_PY, run_lines, stock_build

FIXTURES = [os.path.join(REPO, "tests", "histories", name) for name in
            ("ok_generate_and_derive.jsonl", "cov_ok_sign_verifies.jsonl",
             "cov_violation_close_survives.jsonl")]
DEEP = json.loads("[" * 200 + "]" * 200)
VALUES = [None, True, False, -1, 0, 1, 255, 65281, 2 ** 32, 2 ** 64, 10 ** 30, 1.5, float("nan"),
          "", "x", "SUCCESS", "ff", "thread-0000.bin", [], [1], {}, {"a": 1}, DEEP]
FLAG_WORDS = ["run", "stress", "nightly", "check", "convert", "merge", "repro", "list",
              "volatile-churn", "--threads", "--seed", "--ops", "--seconds", "--runs",
              "--budget", "--shard", "--scenarios", "--reports-dir", "--known-signatures",
              "--variant", "--volatile-pool", "--persistent-percent", "--out", "--replays",
              "--max-failures", "--run-seconds", "--shrink-budget", "--json", "--failure"]
FLAG_VALUES = ["", "0", "-1", "1", "1024", "1025", "100000", "1" + "0" * 30, "1.5", "nan",
               "1/0", "3/2", "x", "/nonexistent", "\u00e9", " "]


def _seed_run(directory):
    """A real binary history of the driver, and its JSON Lines form."""
    history = os.path.join(directory, "history")
    subprocess.run([stock_build().driver(), "--threads", "3", "--ops", "120", "--seed", "7",
                    "--history", history, "--storage-dir", os.path.join(directory, "storage")],
                   check=True, capture_output=True, timeout=300)
    lines = [json.dumps(obj) for obj in run_lines(directory)]
    return history, lines


# ---- mutations ----

def mutate_object(rng, obj):
    """Replace, delete or add one member somewhere inside ``obj`` (in place)."""
    parent, key = None, None
    node = obj
    while isinstance(node, (dict, list)) and node and (parent is None or rng.random() < 0.6):
        parent = node
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        node = node[key]
    if parent is None:
        obj[rng.choice(["thread", "x", "end"])] = rng.choice(VALUES)
        return
    action = rng.random()
    if action < 0.75:
        parent[key] = copy.deepcopy(rng.choice(VALUES))
    elif isinstance(parent, dict) and action < 0.9:
        del parent[key]
    elif isinstance(parent, dict):
        parent[rng.choice(["extra", "kdf", "out", "args"])] = rng.choice(VALUES)


def mutated_lines(rng, lines):
    """A JSON Lines history with one to three mutations: a member's type or value, a line
    dropped, doubled, swapped or cut, non-UTF-8 bytes."""
    lines = list(lines)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(lines))
        kind = rng.random()
        if kind < 0.7:
            obj = _object(lines[at])
            mutate_object(rng, obj)
            lines[at] = json.dumps(obj)
        elif kind < 0.8:
            del lines[at]
            if not lines:
                lines = ["{}"]
        elif kind < 0.85:
            lines.insert(at, lines[at])
        elif kind < 0.9:
            other = rng.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind < 0.95:
            lines[at] = lines[at][:rng.randrange(len(lines[at]) + 1)]
        else:
            lines[at] = lines[at] + "\udcff"
    return "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"


def _object(text):
    """The JSON object of a line, or a fresh one when an earlier mutation broke the line."""
    try:
        obj = json.loads(text)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def mutated_binary(rng, source, target):
    """A copy of the binary history ``source`` at ``target`` with one to three damages: bytes
    of a thread file flipped (often in its header page), a file cut, header.json or end.json
    type-mutated or garbled, a directory named like a thread file."""
    shutil.copytree(source, target)
    threads = sorted(glob.glob(os.path.join(target, "thread-*")))
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.45:
            _flip_bytes(rng, rng.choice(threads))
        elif kind < 0.55:
            path = rng.choice(threads)
            os.truncate(path, rng.randrange(os.path.getsize(path) + 1))
        elif kind < 0.85:
            _mutate_json_file(rng, os.path.join(target, rng.choice(["header.json",
                                                                    "end.json"])))
        elif kind < 0.95:
            name = rng.choice(["header.json", "end.json"])
            with open(os.path.join(target, name), "wb") as stream:
                stream.write(rng.randbytes(rng.randrange(40)))
        else:
            os.makedirs(os.path.join(target, "thread-9999.bin"), exist_ok=True)
    return target


def _flip_bytes(rng, path):
    size = os.path.getsize(path)
    if size == 0:
        return
    with open(path, "r+b") as stream:
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(min(size, 4096 + 224 * 8) if rng.random() < 0.7 else size)
            stream.seek(at)
            stream.write(bytes([rng.randrange(256)]))


def _mutate_json_file(rng, path):
    try:
        with open(path, encoding="utf-8") as stream:
            obj = _object(stream.read())
    except (OSError, ValueError):
        return
    if rng.random() < 0.7 and isinstance(obj.get("binary"), dict):
        mutate_object(rng, obj["binary"])
    else:
        mutate_object(rng, obj)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(obj, stream)


def random_argv(rng):
    return [rng.choice(FLAG_WORDS if rng.random() < 0.6 else FLAG_VALUES)
            for _ in range(rng.randint(1, 6))]


# ---- oracles ----

def read_or_refuse(path):
    """check.check_file's answer: a verdict, or "refused" (HistoryError). Any other exception
    propagates: a bug of psa-stress."""
    try:
        return check.check_file(path).verdict
    except HistoryError:
        return "refused"


def parse_or_refuse(argv):
    """0 when the flags parse, else the parser's exit code (which must be 2). Like run.py, a
    command line that does not start with a subcommand is one of ``run``."""
    argv = argv if argv[0] in cli.SUBCOMMANDS else ["run", *argv]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            cli.make_parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code
    return 0


def run_check(path):
    before = set(glob.glob(os.path.join(REPO, "reports", "harness-error-*")))
    result = subprocess.run([sys.executable, RUN_PY, "check", path], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode in (0, 1, 2), (path, result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert set(glob.glob(os.path.join(REPO, "reports", "harness-error-*"))) == before
    return result.returncode


# ---- the suite ----

@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    history, lines = _seed_run(str(tmp_path_factory.mktemp("seed")))
    fixtures = []
    for path in FIXTURES:
        with open(path, encoding="utf-8") as stream:
            fixtures.append(stream.read().splitlines())
    return history, [lines] + fixtures


@pytest.mark.slow
def test_type_mutated_json_lines_are_read_or_refused(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(fast_check, "fast_ok", lambda path: None)
    rng = random.Random(15)
    answers = []
    for case in range(4000):
        path = tmp_path / "case.jsonl"
        path.write_bytes(mutated_lines(rng, rng.choice(seeds[1])))
        answers.append(read_or_refuse(str(path)))
    assert answers.count("refused") > 500      # the mutations do break histories


@pytest.mark.slow
def test_corrupted_binary_histories_are_read_or_refused(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(fast_check, "fast_ok", lambda path: None)
    rng = random.Random(15)
    answers = []
    for case in range(2000):
        answers.append(read_or_refuse(mutated_binary(rng, seeds[0], str(tmp_path / "case"))))
        shutil.rmtree(tmp_path / "case")
    assert answers.count("refused") > 200


@pytest.mark.slow
def test_random_flags_parse_or_exit_2():
    rng = random.Random(15)
    codes = [parse_or_refuse(random_argv(rng)) for _ in range(4000)]
    assert set(codes) <= {0, 2} and codes.count(2) > 1000


def test_run_py_check_with_the_fast_path_never_crashes(seeds, tmp_path):
    rng = random.Random(16)
    codes = [run_check(mutated_binary(rng, seeds[0], str(tmp_path / str(case))))
             for case in range(4)]
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_bytes(mutated_lines(rng, seeds[1][0]))
    codes.append(run_check(str(bad_jsonl)))
    codes.append(run_check(seeds[0]))
    assert codes[-1] == 0 and 2 in codes


# ---- the long run ----

def main(count):
    """``count`` malformed inputs in-process, the C fast path included; prints the tally."""
    rng = random.Random(count)
    tally = {}
    with tempfile.TemporaryDirectory() as work:
        history, lines = _seed_run(work)
        jsonl = [lines] + [open(p, encoding="utf-8").read().splitlines() for p in FIXTURES]
        for case in range(count):
            kind = ("jsonl", "binary", "flags")[case % 3]
            if kind == "flags":
                answer = parse_or_refuse(random_argv(rng))
                assert answer in (0, 2), answer
            elif kind == "jsonl":
                path = os.path.join(work, "case.jsonl")
                with open(path, "wb") as stream:
                    stream.write(mutated_lines(rng, rng.choice(jsonl)))
                answer = read_or_refuse(path)
            else:
                path = mutated_binary(rng, history, os.path.join(work, f"case{case}"))
                answer = read_or_refuse(path)
                shutil.rmtree(path)
            tally[(kind, answer)] = tally.get((kind, answer), 0) + 1
    for (kind, answer), number in sorted(tally.items(), key=str):
        print(f"{kind:<7} {answer!s:<10} {number}")
    print(f"{count} inputs, none crashed psa-stress")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
