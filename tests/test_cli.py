"""Bad input on the command line: one error line, exit code 2, never a traceback."""
import json

import pytest

from scenarios import cli
from tests.stress_env import run_py

BAD_INVOCATIONS = [
    ["--no-such-flag"],
    ["run", "--budget", "zero"],
    ["run", "--budget", "-5"],
    ["run", "--variant", "msan"],
    ["run", "--scenarios", "no-such-scenario"],
    ["check"],
    ["check", "/nonexistent/history.jsonl"],
    ["nightly", "--shard", "3/2"],
    ["nightly", "--shard", "0/2"],
    ["nightly", "--budget", "-1"],
    ["stress", "no-such-scenario"],
    ["stress", "volatile-churn", "--seconds", "1", "--ops", "5"],
    ["repro", "/nonexistent/report"],
    ["repro", "0123456789ab"],
    ["merge", "/nonexistent/report"],
    ["convert", "/nonexistent/history.bin", "/tmp/out.jsonl"],
    ["run", "--threads", "0"],
    ["run", "--threads", "100000"],
    ["run", "--seed", "1" + "0" * 30],
    ["stress", "volatile-churn", "--threads", "1025"],
    ["stress", "volatile-churn", "--ops", str(2 ** 32)],
    ["stress", "volatile-churn", "--persistent-percent", "101"],
    ["stress", "volatile-churn", "--volatile-pool", "0"],
    ["run", "--scenarios", ""],
    ["run", "--reports-dir", ""],
    ["nightly", "--known-signatures", "/nonexistent/known.txt"],
]


@pytest.mark.parametrize("argv", BAD_INVOCATIONS, ids=" ".join)
def test_bad_flags_give_one_line_and_exit_2(argv):
    result = run_py(*argv, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("run.py: error:")


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["check", "--help"],
                                  ["test", "--help"], ["list", "--help"], ["stress", "--help"],
                                  ["nightly", "--help"], ["repro", "--help"],
                                  ["merge", "--help"], ["convert", "--help"]], ids=" ".join)
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


def test_a_report_of_another_version_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"format": "psa-stress-report",
                                                       "version": 1}))
    for argv in (["repro", str(tmp_path)], ["merge", str(tmp_path)]):
        result = run_py(*argv, timeout=60)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "version 1" in result.stderr


def test_a_flag_the_driver_refuses_is_bad_input(tmp_path):
    result = run_py("stress", "volatile-churn", "--mix", "import=x", "--seconds", "1",
                    "--reports-dir", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("run.py: error:")
    assert "Traceback" not in result.stderr


def test_a_harness_bug_is_exit_3_with_the_traceback_in_a_file(monkeypatch, capsys, tmp_path):
    def broken(args):
        args.report_directory = str(tmp_path)
        raise KeyError("deliberate")
    monkeypatch.setattr(cli, "cmd_list", broken)
    assert cli.main(["list"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("run.py: harness error: KeyError")
    saved = (tmp_path / "harness-error.txt").read_text()
    assert "Traceback" in saved and "deliberate" in saved


def test_test_subcommand_forwards_every_argument_to_pytest():
    result = run_py("test", "-q", "--co", "-p", "no:cacheprovider", "tests/test_final_state.py",
                    timeout=120)
    assert result.returncode == 0, result.stderr
    assert "test_oom_in_the_dynamic_store_without_faults_is_a_problem" in result.stdout
