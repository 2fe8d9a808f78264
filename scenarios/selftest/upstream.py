"""Upstream's own threaded test suites as a second detector in the mutant matrix.

``test_suite_psa_crypto.concurrent`` (test_suite_psa_crypto.function with the concurrent .data)
and ``test_suite_psa_crypto_init`` are built from the SAME mutated workspace as psa-stress
(library/ and include/ of build/mutants/mbedtls) plus the stock tree's test framework (tests/,
framework/), with clang + ThreadSanitizer and the configuration of upstream's TSan CI component
(tests/scripts/components-sanitizers.sh, component_test_tsan): ``config.py full`` (which enables
MBEDTLS_TEST_HOOKS and so the framework's mutex-usage checks), MBEDTLS_THREADING_C and
_PTHREAD set, MBEDTLS_SELF_TEST and MBEDTLS_PSA_CRYPTO_SE_C unset. Optimisation is -O1 -g
(upstream uses -O3) to keep the builds short.

Only what the two suites need is built, out of tree in build/mutants/upstream/, by a generated
Makefile: the crypto library sources (library/CMakeLists.txt src_crypto), the framework helpers
(tests/src/*.c, framework/tests/src/*.c and drivers/*.c) and the two generated suites. make
recompiles from timestamps and dependency files; a content manifest (as in scenarios/setup/build.py)
touches every file whose content changed since the last build, so a mutant is never tested with
a stale library.

A suite run catches a mutant when a test case fails, TSan reports (its report text, or its exit
code 66), the suite crashes, or it hangs past the timeout.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from scenarios.setup.build import BUILD_ROOT, read_manifest, touch_changed
from scenarios.setup.source import SetupError, file_hashes

BUILD_DIR = os.path.join(BUILD_ROOT, "mutants", "upstream")
SUITES = {"test_suite_psa_crypto.concurrent": "test_suite_psa_crypto",
          "test_suite_psa_crypto_init": "test_suite_psa_crypto_init"}   # data name -> function
CONFIG_STEPS = (["full"], ["set", "MBEDTLS_THREADING_C"], ["set", "MBEDTLS_THREADING_PTHREAD"],
                ["unset", "MBEDTLS_SELF_TEST"], ["unset", "MBEDTLS_PSA_CRYPTO_SE_C"])
NEEDED = ("scripts/config.py", "framework/scripts/generate_test_code.py", "tests/src",
          "framework/tests/src", "tests/suites/test_suite_psa_crypto.concurrent.data",
          "tests/suites/test_suite_psa_crypto_init.function")
TEST_SOURCES = ("tests/src", "framework/tests/src", "framework/tests/src/drivers")
TEST_FRAMEWORK = ("tests/src", "tests/include", "framework/tests/src", "framework/tests/include")
TIMEOUT = 600                   # seconds per suite run before it counts as a hang (the
                                # stock suites' times: docs/selftest.md)
TSAN_EXIT = 66                  # ThreadSanitizer's exit code when it reported anything


@dataclass
class SuiteRun:
    """One run of one suite: what fired (empty: it passed) and the failing test cases."""
    suite: str
    seconds: float
    kinds: list = field(default_factory=list)      # test-failed | tsan | crash | hang
    failed_cases: list = field(default_factory=list)
    cases: int = 0                                 # test cases the suite reported it ran


def check_upstream_tree(stock):
    """SetupError (one line) unless the stock tree carries upstream's test framework."""
    missing = [name for name in NEEDED if not os.path.exists(os.path.join(stock.path, name))]
    if missing:
        raise SetupError(f"--upstream: {stock.path} has no upstream test framework "
                         f"({missing[0]} missing; it needs tests/ and framework/)")


def ensure_built(workspace, stock, directory=None, log=print):
    """Build (incrementally) the two suites from ``workspace``'s library with ``stock``'s test
    framework in ``directory`` (default BUILD_DIR); return it. SetupError when it fails."""
    directory = directory or BUILD_DIR
    check_upstream_tree(stock)
    if shutil.which("clang") is None:
        raise SetupError("--upstream needs clang (upstream's TSan CI component builds with it)")
    os.makedirs(directory, exist_ok=True)
    _write_if_changed(os.path.join(directory, "Makefile"), makefile(workspace, stock, directory))
    _configure(workspace, stock, directory)
    manifest_path = os.path.join(directory, "upstream.manifest.json")
    current = file_hashes([os.path.join(workspace, "library"), os.path.join(workspace, "include")]
                          + [os.path.join(stock.path, sub) for sub in TEST_FRAMEWORK])
    previous = read_manifest(manifest_path)
    if not previous:                                # objects of unknown provenance: start over
        shutil.rmtree(os.path.join(directory, "obj"), ignore_errors=True)
        log(f"building upstream's suites in {directory} ...")
    elif touch_changed(current, previous):         # content changed: make must recompile
        log("upstream suites: rebuilding the changed files")
    result = subprocess.run(["make", "-C", directory, "-j2", "all"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if "error" in line.lower()] or ["make failed"]
        raise SetupError(f"upstream suites build failed: {errors[0].strip()}")
    _write_if_changed(manifest_path, json.dumps(current, sort_keys=True))
    return directory


def _configure(workspace, stock, directory):
    """Upstream's TSan CI configuration, written by upstream's own config.py into copies kept in
    the build directory (rewritten only when their content changes: no needless rebuild)."""
    with tempfile.TemporaryDirectory() as scratch:
        names = {"mbedtls_config.h": "include/mbedtls/mbedtls_config.h",
                 "crypto_config.h": "include/psa/crypto_config.h"}
        for name, path in names.items():
            shutil.copyfile(os.path.join(workspace, path), os.path.join(scratch, name))
        for step in CONFIG_STEPS:
            subprocess.run([sys.executable, os.path.join(stock.path, "scripts", "config.py"),
                            "-f", os.path.join(scratch, "mbedtls_config.h"),
                            "-c", os.path.join(scratch, "crypto_config.h"), *step],
                           check=True, capture_output=True, cwd=scratch)
        for name in names:
            with open(os.path.join(scratch, name), encoding="utf-8") as handle:
                _write_if_changed(os.path.join(directory, "upstream_" + name), handle.read())


def crypto_sources(workspace):
    """The library files of libmbedcrypto, as upstream's library/CMakeLists.txt lists them."""
    with open(os.path.join(workspace, "library", "CMakeLists.txt"), encoding="utf-8") as handle:
        match = re.search(r"set\(src_crypto(.*?)\)", handle.read(), re.S)
    if not match:
        raise SetupError(f"{workspace}/library/CMakeLists.txt has no src_crypto list")
    return match.group(1).split()


def makefile(workspace, stock, directory):
    """The Makefile of the two suites (every object also depends on the Makefile itself, so
    a change of flags or paths rebuilds everything)."""
    up, lib = stock.path, os.path.join(workspace, "library")
    tests = [f"{sub}/{name}" for sub in TEST_SOURCES
             for name in sorted(os.listdir(os.path.join(up, sub))) if name.endswith(".c")]
    objects = " ".join(f"obj/{path[:-2]}.o" for path in tests)
    library = " ".join(f"obj/library/{name[:-2]}.o" for name in crypto_sources(workspace))
    suites = " ".join(SUITES)
    gen = [f"{data}.c: {up}/tests/suites/{function}.function "
           f"{up}/tests/suites/{data}.data Makefile\n"
           f"\t{sys.executable} {up}/framework/scripts/generate_test_code.py "
           f"-f {up}/tests/suites/{function}.function -d {up}/tests/suites/{data}.data "
           f"-t {up}/tests/suites/main_test.function -p {up}/tests/suites/host_test.function "
           f"-s {up}/tests/suites --helpers-file {up}/tests/suites/helpers.function -o .\n"
           f"{data}: obj/suites/{data}.o $(TEST_OBJS) libmbedcrypto.a\n"
           f"\t$(CC) -fsanitize=thread -o $@ $^ -lpthread\n"
           for data, function in SUITES.items()]
    return f"""# generated by scenarios/selftest/upstream.py: upstream's two threaded suites, TSan
CC := clang
CFLAGS := -fsanitize=thread -O1 -g -MMD -MP \\
  '-DMBEDTLS_CONFIG_FILE="{directory}/upstream_mbedtls_config.h"' \\
  '-DMBEDTLS_PSA_CRYPTO_CONFIG_FILE="{directory}/upstream_crypto_config.h"' \\
  -I{up}/tests/include -I{up}/framework/tests/include -I{workspace}/include -I{lib}
TEST_OBJS := {objects}
LIB_OBJS := {library}

all: {suites}

obj/library/%.o: {lib}/%.c Makefile
\t@mkdir -p $(@D)
\t$(CC) $(CFLAGS) -c $< -o $@
obj/%.o: {up}/%.c Makefile
\t@mkdir -p $(@D)
\t$(CC) $(CFLAGS) -c $< -o $@
obj/suites/%.o: %.c
\t@mkdir -p $(@D)
\t$(CC) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -c $< -o $@
libmbedcrypto.a: $(LIB_OBJS)
\trm -f $@ && ar rcs $@ $^
{"".join(gen)}
-include $(shell find obj -name '*.d' 2>/dev/null)
"""


def measure(tree, stock, runs, workdir, log=print):
    """Build the suites from the workspace as it is now, run both ``runs`` times; the matrix
    entry: runs that caught it, what fired (kind -> runs), suites that fired, failing cases,
    test cases each suite ran, seconds per run (both suites)."""
    directory = ensure_built(tree.path, stock, log=log)
    entry = {"runs": runs, "caught": 0, "kinds": {}, "suites": {}, "failed_cases": [],
             "cases": {}, "seconds": []}
    for run in range(runs):
        rundir = os.path.join(workdir, f"run{run}")
        os.makedirs(rundir, exist_ok=True)
        if not _tally(entry, run_suites(directory, rundir)):
            os.rmdir(rundir)                # nothing fired: no log was kept
    return entry


def _tally(entry, results):
    """Add one run of both suites to the entry; True when any suite caught the mutant."""
    entry["seconds"].append(round(sum(result.seconds for result in results), 1))
    entry["cases"] = {result.suite: result.cases for result in results}
    fired = [result for result in results if result.kinds]
    entry["caught"] += bool(fired)
    for kind in sorted({kind for result in fired for kind in result.kinds}):
        entry["kinds"][kind] = entry["kinds"].get(kind, 0) + 1
    for result in fired:
        entry["suites"][result.suite] = entry["suites"].get(result.suite, 0) + 1
        entry["failed_cases"] = list(dict.fromkeys(entry["failed_cases"] + result.failed_cases))
    return bool(fired)


def run_suites(directory, workdir, timeout=TIMEOUT):
    """Each suite once, each in a fresh directory (its persistent keys and NV seed file)."""
    return [run_suite(directory, name, workdir, timeout) for name in SUITES]


def run_suite(directory, name, workdir, timeout=TIMEOUT):
    """One suite run; its output is kept in workdir/<suite>.log when something fired."""
    scratch = tempfile.mkdtemp(prefix=name + "-", dir=workdir)
    for file in (name, name + ".datax"):
        os.symlink(os.path.join(directory, file), os.path.join(scratch, file))
    with open(os.path.join(scratch, "seedfile"), "wb") as handle:   # entropy NV seed (full)
        handle.write(os.urandom(64))
    started = time.monotonic()
    try:
        done = subprocess.run([f"./{name}", f"./{name}.datax"], cwd=scratch, text=True,
                              capture_output=True, errors="replace", timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output, code = _text(expired.stdout) + _text(expired.stderr), None
    run = SuiteRun(name, round(time.monotonic() - started, 1))
    run.kinds, run.failed_cases = classify(output, code)
    run.cases = ran_cases(output)
    shutil.rmtree(scratch, ignore_errors=True)
    if run.kinds:
        with open(os.path.join(workdir, f"{name}.log"), "w", encoding="utf-8") as handle:
            handle.write(output)
    return run


def classify(output, code):
    """(kinds, failed test cases) of one suite run: exit code None means it timed out."""
    failed = [match.group(1) for match in re.finditer(r"^(\S.*?)[ .]*FAILED\s*$", output, re.M)]
    kinds = []
    if failed or re.search(r"^FAILED \(", output, re.M):     # the suite's last line
        kinds.append("test-failed")
    if "WARNING: ThreadSanitizer" in output or code == TSAN_EXIT:
        kinds.append("tsan")
    if code is None:
        kinds.append("hang")
    elif code < 0 or (code not in (0, TSAN_EXIT) and not kinds):
        kinds.append("crash")
    return kinds, failed


def ran_cases(output):
    """N of the suite's last line "PASSED|FAILED (M / N tests (K skipped))", else 0."""
    match = re.search(r"\((\d+) / (\d+) tests", output)
    return int(match.group(2)) if match else 0


def _text(data):
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _write_if_changed(path, text):
    """Write only a new content (an unchanged file keeps its mtime: make does nothing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
