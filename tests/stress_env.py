"""Shared set-up for the end-to-end tests: the stock tree, its builds, mutated copies."""
import functools
import io
import json
import os
import shutil
import subprocess
import sys

from scenarios import history_binary, runner
from scenarios.build import ensure_built
from scenarios.source import find_tree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(REPO, "run.py")


def quiet(_message):
    pass


@functools.lru_cache(maxsize=None)
def stock_tree():
    return find_tree(log=quiet)


@functools.lru_cache(maxsize=None)
def stock_build(variant="tsan"):
    return ensure_built(variant, stock_tree(), log=quiet)


def run_lines(directory):
    """A scenario run's history (runner.HISTORY, binary) as JSON Lines dicts: header first."""
    buffer = io.StringIO()
    history_binary.to_jsonl(os.path.join(directory, runner.HISTORY), buffer)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def run_py(*args, timeout=1800):
    """Run run.py as a user would; return the CompletedProcess (text)."""
    return subprocess.run([sys.executable, RUN_PY, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def mutated_copy(destination, path, old, new):
    """A copy of the stock tree (library/ and include/) with one exact edit applied."""
    source = stock_tree().path
    for sub in ("library", "include"):
        shutil.copytree(os.path.join(source, sub), os.path.join(destination, sub))
    apply_edit(destination, path, old, new)
    return str(destination)


def apply_edit(tree, path, old, new):
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``tree``/``path``."""
    target = os.path.join(tree, path)
    with open(target, encoding="utf-8") as handle:
        text = handle.read()
    assert text.count(old) == 1, f"mutation does not apply exactly once to {path}"
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text.replace(old, new))
