"""Bad input on the command line: one error line, exit code 2, never a traceback."""
import os

import pytest

from tests.stress_env import run_py

BAD_INVOCATIONS = [
    ["--no-such-flag"],
    ["run", "--budget", "zero"],
    ["run", "--budget", "-5"],
    ["run", "--variant", "msan"],
    ["run", "--scenarios", "no-such-scenario"],
    ["check"],
    ["check", "/nonexistent/history.jsonl"],
]


@pytest.mark.parametrize("argv", BAD_INVOCATIONS, ids=" ".join)
def test_bad_flags_give_one_line_and_exit_2(argv):
    result = run_py(*argv, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("run.py: error:")


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["check", "--help"],
                                  ["test", "--help"], ["list", "--help"]], ids=" ".join)
def test_help_everywhere(argv):
    result = run_py(*argv, timeout=60)
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_list_names_the_default_suite():
    result = run_py("list", timeout=60)
    assert result.returncode == 0
    for name in ("volatile-churn", "persistent-collide", "derive-copy"):
        assert name in result.stdout


def test_check_of_an_empty_file_is_bad_input(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_py("check", str(empty), timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
