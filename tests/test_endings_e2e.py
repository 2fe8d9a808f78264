"""Every ending leaves a report, with the real driver: SIGTERM or SIGINT to run.py in the middle
of a session stops the driver (no orphan keeps writing), writes the report of the runs done --
the first run's failure included -- and exits 143 / 130. A driver killed by a signal still
reports the calls its history holds."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scenarios import catalog
from scenarios.campaign.job import Job
from tests.stress_env import REPO, RUN_PY, stock_build

pytestmark = pytest.mark.slow


def _summary(reports):
    found = glob.glob(os.path.join(reports, "*", "summary.json"))
    if not found:
        return None
    try:
        with open(found[0], encoding="utf-8") as handle:
            return json.load(handle)
    except ValueError:          # never: the report is replaced atomically
        raise


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_session_keeps_the_first_runs_failure(tmp_path, signum, code):
    stock_build("tsan")
    reports = str(tmp_path / "reports")
    marker = str(tmp_path / "reports")
    process = subprocess.Popen([sys.executable, RUN_PY, "stress", "close-in-use", "--seconds",
                                "2", "--threads", "4", "--runs", "3", "--reports-dir", reports,
                                "--shrink-budget", "0"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        data = _summary(reports)
        if data and data["counts"]["runs"] >= 1:
            break
        time.sleep(0.2)
    time.sleep(1)                                   # run 2 is under way
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    data = _summary(reports)
    assert data["interrupted"] == f"interrupted by {signal.Signals(signum).name}"
    assert data["counts"]["runs"] >= 1 and data["failures"], "run 1's failure was lost"
    assert f"interrupted by {signal.Signals(signum).name}" in err
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert survivors.stdout.strip() == "", "the driver outlived run.py"


def test_a_killed_driver_reports_the_calls_of_its_history(tmp_path):
    """--watchdog cannot kill it; SIGKILL after a while stands for a crash the driver cannot
    report: the run's call count comes from the history."""
    build = stock_build("tsan")
    job = Job(catalog.get("volatile-churn"), 5, seconds=30).replace(threads=2)
    directory = str(tmp_path / "run")
    killer = subprocess.Popen(["sh", "-c", f"sleep 3; pkill -KILL -f '{directory}/history'"])
    result = job.run(build, directory)
    killer.wait()
    assert any(f.kind == "crash" for f in result.failures)
    assert result.ops > 1000, "a killed run reported no calls"
