"""Debian packages psa-stress needs: installed with apt-get when running as root on Debian,
otherwise one error line that gives the exact apt-get command."""
import os
import shutil
import subprocess

from scenarios.source import SetupError


def require(missing, log=print):
    """Install the Debian packages in `missing` (a list), or explain how to."""
    if not missing:
        return
    line = "apt-get install -y " + " ".join(missing)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SetupError(f"missing packages; install them with: sudo {line}")
    log(f"installing {' '.join(missing)} with apt-get ...")
    result = subprocess.run(line.split(), capture_output=True, text=True,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise SetupError(f"`{line}` failed: {last}")
