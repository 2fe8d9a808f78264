"""Bad input on the command line: one error line, exit code 2, never a traceback."""
import json
import os
import subprocess
import sys

import pytest

from scenarios import report
from scenarios.cli import dispatch as cli
from scenarios.campaign import signatures
from scenarios.history.reader import load
from scenarios.report import summary
from scenarios.campaign.runner import RunResult
from scenarios.setup.source import SetupError
from tests.stress_env import REPO, RUN_PY, run_py
from tests.test_history_binary import two_threads
from tests.test_history_binary import write as write_binary

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


@pytest.mark.slow
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


# ---- bad input reached after the flags: still one line and exit 2 ----

HISTORIES = os.path.join(REPO, "tests", "histories")


def test_traceback_files_never_overwrite_each_other(tmp_path):
    paths = []
    for _ in range(3):
        try:
            raise KeyError("deliberate")
        except KeyError:
            paths.append(cli.save_traceback(str(tmp_path)))
    assert len(set(paths)) == 3 and all("deliberate" in open(p).read() for p in paths)


@pytest.mark.parametrize("argv, code", [
    (["list"], 0),
    (["check", os.path.join(HISTORIES, "cov_violation_close_survives.jsonl")], 1),
])
def test_a_closed_stdout_ends_the_output_quietly(argv, code):
    """`run.py ... | head -1`: the reader goes away; no traceback, no harness error."""
    process = subprocess.Popen([sys.executable, RUN_PY, *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=REPO)
    process.stdout.close()           # before run.py writes anything: every write fails
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == code, stderr
    assert stderr == ""


def test_a_reports_dir_that_is_a_file_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for root in (blocker, blocker / "below"):
        with pytest.raises(SetupError, match=f"--reports-dir {root}"):
            report.new_report_dir(str(root))


def test_report_directories_are_created_atomically(monkeypatch, tmp_path):
    """Another session may create the same name between a check and the creation: simulated by
    a check that never sees it."""
    first = report.new_report_dir(str(tmp_path), "run")
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    second = report.new_report_dir(str(tmp_path), "run")
    assert first != second and os.path.isdir(second)


def test_known_signatures_not_utf8_is_a_setup_error(tmp_path):
    bad = tmp_path / "known.txt"
    bad.write_bytes(b"crash: SIGSEGV\n\xff\xfe\n")
    with pytest.raises(SetupError, match="not UTF-8"):
        signatures.load_known(str(bad))
    assert signatures.load_known(str(tmp_path / "absent")) == frozenset()


def test_a_crash_signature_keeps_the_signal_s_name():
    for message in ("the driver died of signal SIGBUS", "CRASH: fatal signal Bus error",
                    "expected failure (x): CRASH: fatal signal Bus error"):
        assert signatures.failure_signature({"kind": "crash", "message": message}) == \
            "crash: SIGBUS"
    assert signatures.failure_signature({"kind": "crash", "message": "CRASH: fatal signal "
                                         "Segmentation fault"}) == "crash: SIGSEGV"


def small_report(directory, calls=5):
    result = RunResult("volatile-churn", 1, "tsan", str(directory), ops=calls, seconds=1.0)
    meta = {"command": "stress", "mbedtls": {"version": "3.6.6", "fingerprint": "f",
                                             "origin": "submodule", "path": "/x"},
            "variant": "tsan", "budget_seconds": 1, "elapsed_seconds": 1, "shards": []}
    os.makedirs(directory)
    report.write(str(directory), summary.build(meta, [summary.run_json(result)]))
    return str(directory)


def test_merge_counts_a_report_named_twice_once_and_never_overwrites_it(tmp_path):
    shard = small_report(tmp_path / "a")
    out = tmp_path / "merged"
    result = run_py("merge", shard, shard + "/", "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "summary.json").read_text())["counts"]["runs"] == 1
    before = open(os.path.join(shard, "summary.json")).read()
    for argv in (["merge", shard, "--out", shard],
                 ["merge", shard, "--out", str(tmp_path / "a" / "summary.json" / "x")]):
        result = run_py(*argv, timeout=120)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "--out" in result.stderr
    assert open(os.path.join(shard, "summary.json")).read() == before


def test_merge_of_a_malformed_report_is_bad_input(tmp_path):
    shard = small_report(tmp_path / "a")
    data = json.loads(open(os.path.join(shard, "summary.json")).read())
    data["runs"] = [{"id": 1}]
    with open(os.path.join(shard, "summary.json"), "w") as handle:
        json.dump(data, handle)
    with pytest.raises(SetupError, match="missing or malformed field"):
        summary.merge([summary.load(shard)])
    data["runs"] = 5
    with open(os.path.join(shard, "summary.json"), "w") as handle:
        json.dump(data, handle)
    with pytest.raises(SetupError, match="runs must be a JSON array"):
        summary.load(shard)


def convert(binary, output):
    return run_py("convert", str(binary), str(output), timeout=120)


def test_convert_writes_the_output_only_when_complete(tmp_path):
    binary = write_binary(tmp_path / "h", two_threads())
    good = tmp_path / "out.jsonl"
    assert convert(binary, good).returncode == 0 and load(str(good)).calls
    inside = tmp_path / "h" / "thread-0000.bin"
    kept = inside.read_bytes()
    result = convert(binary, inside)
    assert result.returncode == 2 and "inside the history" in result.stderr
    assert inside.read_bytes() == kept
    os.truncate(tmp_path / "h" / "thread-0001.bin", 100)          # now unreadable
    before = good.read_text()
    result = convert(binary, good)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert good.read_text() == before
    assert convert(binary, tmp_path / "new.jsonl").returncode == 2
    assert sorted(os.listdir(tmp_path)) == ["h", "out.jsonl"]
