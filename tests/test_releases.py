"""Any 3.6.x release: what the tree offers is probed from the tree (CMakeLists.txt), the driver
reports it (psa-stress --describe), a scenario the tree cannot run gets a reason, and a tree that
does not compile gives one line naming the first compiler error (docs/releases.md).

Only the stock 3.6.6 tree is needed: the probes are proven on copies of it with one declaration
removed, which is how the older releases differ.
"""
import os
import re

import pytest

from scenarios import catalog
from scenarios.setup.build import Variant, configure, first_error, scenario_operations, unsupported
from scenarios.setup.source import check_tree
from tests.stress_env import REPO, mutated_copy, quiet, run_py, stock_build

MAKE_OUTPUT = f"""\
[ 31%] Building C object CMakeFiles/stress_mbedcrypto.dir/work/t/library/error.c.o
[ 32%] Building C object CMakeFiles/stress_mbedcrypto.dir/harness/inside/slot_walk.c.o
{REPO}/harness/inside/inspect.c:123:24: error: no member named 'var' in 'psa_key_slot_t'
    if (slot->var.occupied.registered_readers != 0) {{
        ~~~~  ^
{REPO}/harness/inside/inspect.c:160:30: error: no member named 'var' in 'psa_key_slot_t'
2 errors generated.
make[2]: *** [CMakeFiles/psa-stress.dir/build.make:90: CMakeFiles/psa-stress.dir/harness/inside/inspect.c.o] Error 1
make[1]: *** [CMakeFiles/Makefile2:120: CMakeFiles/psa-stress.dir/all] Error 2
"""


def test_first_error_is_the_first_compiler_error():
    assert first_error(MAKE_OUTPUT) == ("harness/inside/inspect.c:123: no member named 'var' in "
                                        "'psa_key_slot_t'")
    gcc = "/tmp/t/library/x.c:7:1: fatal error: psa/crypto.h: No such file or directory"
    assert first_error(gcc) == "/tmp/t/library/x.c:7: psa/crypto.h: No such file or directory"


def test_first_error_without_a_compiler_error_is_never_a_progress_line():
    cmake = ("-- Configuring incomplete\nCMake Error at CMakeLists.txt:16 (message):\n"
             "  MBEDTLS_DIR=/x is not an Mbed TLS 3.6.x source tree\n\n")
    assert first_error(cmake) == ("CMake Error at CMakeLists.txt:16 (message): MBEDTLS_DIR=/x "
                                  "is not an Mbed TLS 3.6.x source tree")
    progress_only = "[ 31%] Building C object a.c.o\nmake[2]: *** [x] Error 1\nld: cannot find -lm\n"
    assert first_error(progress_only) == "ld: cannot find -lm"


def test_driver_describes_the_stock_tree():
    dynamic = stock_build("tsan").capabilities
    assert dynamic["mbedtls_version"] == "3.6.6"
    assert dynamic["key_store"] == {"kind": "dynamic", "slot_count": 32}
    assert {"reseed", "deplete", "import", "init"} <= set(dynamic["operations"])
    static = stock_build("tsan-static16").capabilities
    assert static["key_store"] == {"kind": "static", "slot_count": 16}


OLD_RELEASE = {"mbedtls_version": "3.6.0", "key_store": {"kind": "static", "slot_count": 32},
               "operations": ["import", "generate", "destroy", "export", "random", "init"]}


def test_scenario_needing_a_missing_operation_is_unsupported():
    rng = catalog.get("rng-reseed-race")
    assert scenario_operations(rng) >= {"reseed", "deplete", "random"}
    reason = unsupported(rng, OLD_RELEASE)
    assert reason == "Mbed TLS 3.6.0 lacks the operations deplete, reseed (psa-stress --describe)"
    assert unsupported(rng, stock_build("tsan").capabilities) is None
    init_race = catalog.get("init-race")
    assert "init" in scenario_operations(init_race)
    assert unsupported(init_race, dict(OLD_RELEASE, operations=["import"])) is not None
    reinit = catalog.Scenario("reinit", "", mix="import=1,export=0", flags=("--reinit-every", "9"))
    assert scenario_operations(reinit) == {"import", "init"}


def test_every_catalogue_scenario_runs_on_the_stock_tree():
    capabilities = stock_build("tsan").capabilities
    assert [s.name for s in catalog.SCENARIOS if unsupported(s, capabilities)] == []


def _probes(directory):
    with open(os.path.join(directory, "CMakeCache.txt"), encoding="utf-8") as handle:
        cache = handle.read()
    return {name: value == "1" for name, value
            in re.findall(r"^(PSA_STRESS_\w+):INTERNAL=(\S*)$", cache, re.M)}


def _without_slot_union(tree):
    """3.6.0's slot layout in a 3.6.6 header: a plain reader count, no union with the free-list
    link. The header still compiles (its one reader of the count is edited too)."""
    path = os.path.join(tree, "library", "psa_crypto_core.h")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    text, unions = re.subn(r"\n    union \{\n.*?\n    \} var;\n", "\n    size_t registered_readers;\n",
                           text, flags=re.S)
    assert unions == 1
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _remove_declaration(name):
    return ("include/psa/crypto_extra.h", f"psa_status_t {name}(", f"psa_status_t {name}_absent(")


@pytest.mark.parametrize("edit, probe", [
    (_remove_declaration("psa_random_reseed"), "PSA_STRESS_HAVE_RANDOM_RESEED"),
    (_remove_declaration("psa_random_deplete"), "PSA_STRESS_HAVE_RANDOM_DEPLETE"),
    (("library/psa_crypto_core.h", "slot->var.occupied.registered_readers",
      "slot->registered_readers"), "PSA_STRESS_SLOT_UNION"),
])
def test_configure_probes_the_tree_itself(tmp_path, edit, probe):
    stock = _probes(stock_build("tsan").directory)
    assert stock[probe], "the stock tree has it"
    copy = mutated_copy(tmp_path / "tree", *edit)
    if probe == "PSA_STRESS_SLOT_UNION":
        _without_slot_union(copy)
    directory = str(tmp_path / "build")
    configure(Variant.parse("plain"), check_tree(copy, "--mbedtls-dir"), directory, log=quiet)
    probed = _probes(directory)
    assert not probed[probe]
    assert {k: v for k, v in probed.items() if k != probe} == \
        {k: v for k, v in stock.items() if k != probe}


def test_a_tree_that_does_not_compile_gives_its_first_error(tmp_path):
    copy = mutated_copy(tmp_path / "tree", "include/mbedtls/build_info.h",
                        "#define MBEDTLS_VERSION_STRING_FULL",
                        "#error psa-stress test: this tree does not compile\n"
                        "#define MBEDTLS_VERSION_STRING_FULL")
    result = run_py("--mbedtls-dir", copy, "--budget", "1", "--variant", "plain", timeout=600)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "%]" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("run.py:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    match = re.fullmatch(r"run\.py: error: CMake build failed: \S+/include/mbedtls/build_info\.h:"
                         r"\d+: psa-stress test: this tree does not compile \(full log: (\S+)\)",
                         errors[0])
    assert match, errors[0]
    with open(os.path.join(REPO, match.group(1)), encoding="utf-8") as handle:
        assert "this tree does not compile" in handle.read()
