"""A history the disk cannot hold: the driver stops with HISTORY_EXIT_WRITE and one line, and the
runner files it as a disk (setup) failure, never as a crash of the library."""
import os
import resource
import subprocess

import pytest

from scenarios.campaign import runner
from tests.stress_env import stock_build

LIMIT = 4 << 20      # far below one chunk of records (harness/history/history.c CHUNK_RECORDS)


def driver(history, storage, preexec_fn=None):
    return subprocess.run([stock_build().driver(), "--threads", "2", "--seconds", "2",
                           "--history", history, "--storage-dir", storage],
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn)


def judged(completed):
    result = runner.RunResult("s", 1, "tsan", "/nonexistent")
    runner._judge_exit(result, completed)
    return [(failure.kind, failure.message) for failure in result.failures]


def assert_history_write_error(completed, reason):
    assert completed.returncode == runner.HISTORY_WRITE_EXIT_CODE, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert lines[-1].startswith("psa-stress: history write error:") and reason in lines[-1]
    assert judged(completed) == [("disk", lines[-1][len("psa-stress: "):])]


@pytest.mark.slow
def test_file_size_limit_is_a_history_write_error(tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    completed = driver(str(tmp_path / "h"), str(tmp_path / "s"), limit)
    assert_history_write_error(completed, "File too large")


def test_full_file_system_is_a_history_write_error(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        completed = driver(str(mount / "h"), str(tmp_path / "s"))
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert_history_write_error(completed, "No space left on device")


def test_a_signal_is_still_a_crash():
    """The oracle of the tests above: a driver killed by a signal is a crash."""
    completed = subprocess.CompletedProcess([], -7, "", "")
    assert judged(completed) == [("crash", "the driver died of signal SIGBUS")]
