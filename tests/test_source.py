"""Finding and checking the Mbed TLS tree: wrong trees are refused with one line and exit 2."""
import os

import pytest

from scenarios.setup.source import SetupError, check_tree, debian_archive_uri
from tests.stress_env import run_py, stock_tree


def fake_tree(root, version="3.6.6", library=True, threading=True):
    os.makedirs(root / "include" / "mbedtls")
    (root / "include" / "mbedtls" / "build_info.h").write_text(
        f'#define MBEDTLS_VERSION_STRING         "{version}"\n')
    if library:
        os.makedirs(root / "library")
        os.makedirs(root / "include" / "psa")
        (root / "include" / "psa" / "crypto.h").write_text("")
        (root / "library" / "psa_crypto.c").write_text("")
        mutex = "mbedtls_threading_key_slot_mutex" if threading else ""
        (root / "library" / "psa_crypto_slot_management.c").write_text(mutex)
        (root / "library" / "threading.c").write_text(
            "MBEDTLS_THREADING_PTHREAD" if threading else "")
    return root


@pytest.mark.parametrize("kwargs, message", [
    ({"version": "3.5.2"}, "needs a 3.6.x tree"),
    ({"version": "4.0.0"}, "needs a 3.6.x tree"),
    ({"library": False}, "lacks the library sources"),
    ({"threading": False}, "cannot be built with threading"),
])
def test_wrong_trees_are_refused(tmp_path, kwargs, message):
    tree = fake_tree(tmp_path / "tree", **kwargs)
    with pytest.raises(SetupError, match=message):
        check_tree(str(tree), "--mbedtls-dir")
    result = run_py("--mbedtls-dir", str(tree), "--budget", "1", timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_directory_and_non_tree(tmp_path):
    for path in (tmp_path / "absent", tmp_path):
        result = run_py("--mbedtls-dir", str(path), timeout=120)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1


def test_stock_tree_is_3_6_6():
    tree = stock_tree()
    assert tree.version == "3.6.6"
    assert tree.origin in ("submodule", "debian-source")
    assert len(tree.fingerprint()) == 16


def test_archive_uri_comes_from_the_machine():
    uri = debian_archive_uri()
    assert uri is None or uri.startswith(("http://", "https://", "file:", "mirror+"))
