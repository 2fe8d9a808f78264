"""Debian packages psa-stress needs: installed with apt-get when running as root on Debian,
otherwise one error line that gives the exact apt-get command.

The model's reference cryptography is Debian's python3-cryptography (scenarios/model/crypto_ref.py).
run.py calls ``ensure_python`` before anything imports it: under an interpreter that cannot
import ``cryptography`` (e.g. a pyenv one, which does not see Debian's dist-packages), run.py
runs itself again under Debian's own interpreter, installing the package first if need be."""
import importlib
import os
import shutil
import subprocess
import sys

from scenarios.setup.source import SetupError

DEBIAN_PYTHON = "/usr/bin/python3"
PYTHON_PACKAGE = "python3-cryptography"
_PROBE = "import cryptography.hazmat.primitives.ciphers.aead"


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


def has_cryptography(python):
    """Can the interpreter `python` (a path) import python3-cryptography?"""
    return os.path.exists(python) and \
        subprocess.run([python, "-c", _PROBE], capture_output=True).returncode == 0


def _imports_here():
    importlib.invalidate_caches()
    try:
        importlib.import_module(_PROBE.split()[1])
    except ImportError:
        return False
    return True


def ensure_python(argv, log=print):
    """Return when this interpreter can import cryptography; otherwise replace this process
    with `argv` run by Debian's python3 (installing python3-cryptography there when missing),
    or raise SetupError."""
    if _imports_here():
        return
    if not has_cryptography(DEBIAN_PYTHON):
        require([PYTHON_PACKAGE], log)
    if sys.executable != DEBIAN_PYTHON:     # after the exec it is: no second exec
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, *argv])
    if not _imports_here():
        raise SetupError(f"{DEBIAN_PYTHON} cannot import cryptography although "
                         f"{PYTHON_PACKAGE} is installed")
