"""The workload generator's --key-kinds: creates make only keys of the kinds named, and an
unknown kind is refused with one line (exit 2)."""
import json
import subprocess

import pytest

from tests.stress_env import stock_build

ECC_P256_PAIR = 0x7112


def _created_types(tmp_path, kinds):
    history = tmp_path / f"{kinds}.jsonl"
    subprocess.run([stock_build("plain").driver(), "--threads", "2", "--ops", "400",
                    "--mix", "import=1,generate=1", "--key-kinds", kinds,
                    "--history", str(history)], check=True, capture_output=True)
    records = [json.loads(line) for line in history.read_text().splitlines()[1:]]
    return {r["args"]["type"] for r in records if "op" in r}


@pytest.mark.parametrize("kinds, has_ecc", [("ecc", True), ("aes,hmac,derive", False)])
def test_creates_make_only_the_kinds_asked_for(tmp_path, kinds, has_ecc):
    types = _created_types(tmp_path, kinds)
    assert (ECC_P256_PAIR in types) == has_ecc
    assert has_ecc == (types == {ECC_P256_PAIR})


def test_an_unknown_kind_is_one_line_and_exit_2():
    result = subprocess.run([stock_build("plain").driver(), "--key-kinds", "aes,rsa"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == ("psa-stress: error: --key-kinds: unknown kind 'rsa' "
                                     "(aes, hmac, ecc, derive)")
