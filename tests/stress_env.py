"""Shared set-up for the end-to-end tests: the stock tree, its builds, mutated copies."""
import atexit
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

from scenarios.history import binary as history_binary
from scenarios.campaign import runner
from scenarios.setup.build import BUILD_ROOT, Variant, build_directory, ensure_built
from scenarios.setup.source import check_tree, find_tree

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
    _copy_stock(destination)
    apply_edit(destination, path, old, new)
    return str(destination)


def _copy_stock(destination):
    source = stock_tree().path
    for sub in ("library", "include"):
        shutil.copytree(os.path.join(source, sub), os.path.join(destination, sub))


def apply_edit(tree, path, old, new):
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``tree``/``path``."""
    target = os.path.join(tree, path)
    with open(target, encoding="utf-8") as handle:
        text = handle.read()
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(_edit(text, path, old, new))


def _edit(text, path, old, new):
    assert text.count(old) == 1, f"mutation does not apply exactly once to {path}"
    return text.replace(old, new)


# The session's one mutated tree: its path and the files edited in it (see mutated_tree).
_MUTATED = {"tree": None, "edited": set()}


def mutated_tree(*edits):
    """The session's one mutated copy of the stock tree, carrying exactly ``edits`` ((path, old,
    new) each, applied in order) on top of the stock files. Every test of a mutated core shares
    it, so each build variant of it is fully built once per session and each later mutant costs
    an incremental build; a file is rewritten only when its content changes."""
    if _MUTATED["tree"] is None:
        destination = os.path.join(tempfile.mkdtemp(prefix="psa-stress-mutated-"), "mbedtls")
        _copy_stock(destination)
        _MUTATED["tree"] = destination
        atexit.register(_discard_mutated_tree, destination)
    tree = _MUTATED["tree"]
    paths = {path for path, _old, _new in edits}
    for path in paths | _MUTATED["edited"]:
        with open(os.path.join(stock_tree().path, path), encoding="utf-8") as handle:
            text = handle.read()
        for edit_path, old, new in edits:
            if edit_path == path:
                text = _edit(text, path, old, new)
        _write_if_changed(os.path.join(tree, path), text)
    _MUTATED["edited"] = paths
    return check_tree(tree, "--mbedtls-dir")


def _write_if_changed(target, text):
    with open(target, encoding="utf-8") as handle:
        if handle.read() == text:
            return
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text)


def mutant_build(variant, *edits):
    """A build of ``variant`` of the session's mutated tree carrying exactly ``edits``."""
    return ensure_built(variant, mutated_tree(*edits), log=quiet)


def _discard_mutated_tree(tree):
    """At exit: the mutated tree and every build of it (build/<variant>@<tag of its path>)."""
    suffix = build_directory(Variant.parse("plain"), check_tree(tree, "tree"))[-9:]   # @<tag>
    for name in os.listdir(BUILD_ROOT):
        if name.endswith(suffix):
            shutil.rmtree(os.path.join(BUILD_ROOT, name), ignore_errors=True)
    shutil.rmtree(os.path.dirname(tree), ignore_errors=True)
