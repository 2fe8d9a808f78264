"""Build variants of libmbedcrypto + the stress driver with CMake, out of tree, on demand.

A variant name is ``<sanitizer>[-static<N>]``:
  tsan  ThreadSanitizer (default; clang when present, else gcc), -O2 -g
  plain the same without sanitizer (throughput)
  asan  AddressSanitizer + UndefinedBehaviorSanitizer
  ...-static16  the static key store (MBEDTLS_PSA_KEY_STORE_DYNAMIC off) with 16 slots

The build directory is ``build/<variant>/`` for the default tree and
``build/<variant>@<hash of the tree path>/`` for any other tree. make rebuilds what changed, and
a content manifest of the tree and of harness/ kept in the build directory makes sure every file
whose content changed is recompiled, so a mutated tree is never tested with a stale library.

What the tree offers (key store kind, slot count, operations) differs between 3.6.x releases;
CMake probes the tree and the driver reports the result (``psa-stress --describe``), which
``Build.capabilities`` reads. ``unsupported`` says why a scenario cannot run on a build. A failed
configure or build keeps its full output in the build directory (configure.log, build.log) and
raises one line: the first compiler or CMake error and the log's path.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from scenarios.setup import apt
from scenarios.setup.source import REPO, SetupError, file_hashes

SANITIZERS = {"tsan": "thread", "plain": "none", "asan": "address"}
BUILD_ROOT = os.path.join(REPO, "build")
HARNESS_DIR = os.path.join(REPO, "harness")
# tool (or header, by path) -> Debian package; libcrypto is the checker core's (CMakeLists.txt)
APT_PACKAGES = {"cmake": "cmake", "make": "make", "clang": "clang",
                "/usr/include/openssl/evp.h": "libssl-dev"}


@dataclass
class Variant:
    name: str
    sanitizer: str       # tsan | plain | asan
    key_store: str       # dynamic | static
    slot_count: int

    @classmethod
    def parse(cls, name):
        match = re.fullmatch(r"(tsan|plain|asan)(?:-static(\d+))?", name)
        if not match:
            raise SetupError(f"unknown build variant {name!r} "
                             "(expected tsan, plain or asan, optionally with -static<N>)")
        if match.group(2):
            return cls(name, match.group(1), "static", int(match.group(2)))
        return cls(name, match.group(1), "dynamic", 32)


@dataclass
class Build:
    variant: Variant
    directory: str
    _capabilities: dict = field(default=None, repr=False, compare=False)

    def driver(self, test_build=False):
        return os.path.join(self.directory, "psa-stress-test" if test_build else "psa-stress")

    @property
    def capabilities(self):
        """What this build of the tree offers, as the driver reports it (harness/driver/describe.h):
        {"mbedtls_version", "key_store": {"kind", "slot_count"}, "operations": [...]}."""
        if self._capabilities is None:
            result = subprocess.run([self.driver(), "--describe"], capture_output=True,
                                    text=True)
            try:
                self._capabilities = json.loads(result.stdout)
            except ValueError:
                raise SetupError(f"{self.driver()} --describe failed: "
                                 f"{result.stderr.strip() or result.stdout.strip()}") from None
        return self._capabilities


def scenario_operations(scenario):
    """The driver operations a scenario calls: its mix's names with a positive weight, plus the
    per-worker init of --init-race and --reinit-every."""
    names = set()
    for item in scenario.mix.split(","):
        name, _, weight = item.partition("=")
        if name.strip() and weight.strip() != "0":
            names.add(name.strip())
    if {"--init-race", "--reinit-every"} & set(scenario.flags):
        names.add("init")
    return names


def unsupported(scenario, capabilities):
    """Why ``scenario`` cannot run on a build with these capabilities, or None when it can: a
    scenario that calls an operation the tree lacks would only record NOT_SUPPORTED for it, and
    pass without testing what it attacks."""
    missing = sorted(scenario_operations(scenario) - set(capabilities["operations"]))
    if not missing:
        return None
    return (f"Mbed TLS {capabilities['mbedtls_version']} lacks the operation"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            "(psa-stress --describe)")


def ensure_tools(log=print):
    """cmake, make, a C compiler (clang preferred, gcc accepted) and libcrypto's headers."""
    missing = [pkg for tool, pkg in APT_PACKAGES.items()
               if shutil.which(tool) is None and not os.path.isfile(tool)]
    if "clang" in missing and shutil.which("gcc"):
        missing.remove("clang")
    apt.require(missing, log)


def build_directory(variant, tree):
    default_tree = tree.origin in ("submodule", "debian-source")
    if default_tree:
        return os.path.join(BUILD_ROOT, variant.name)
    tag = hashlib.sha256(tree.path.encode()).hexdigest()[:8]
    return os.path.join(BUILD_ROOT, f"{variant.name}@{tag}")


def ensure_built(variant_name, tree, log=print):
    """Configure (once) and build the variant; return a Build. Raises SetupError on failure.

    make decides what to rebuild from timestamps; a content manifest kept in the build directory
    catches the edits timestamps miss (a file copied in with an old mtime): every file whose
    content changed since the last build is touched first, so that it is recompiled.
    """
    variant = Variant.parse(variant_name)
    ensure_tools(log)
    directory = build_directory(variant, tree)
    fresh = not os.path.isfile(os.path.join(directory, "CMakeCache.txt"))
    if fresh:
        configure(variant, tree, directory, log)
    manifest_path = os.path.join(directory, "psa-stress.manifest.json")
    current = tree.manifest()
    current.update(file_hashes([HARNESS_DIR]))
    previous = read_manifest(manifest_path)
    command = ["cmake", "--build", directory, "-j", str(os.cpu_count() or 2)]
    if previous:
        changed = touch_changed(current, previous)
        if changed:
            log(f"rebuilding {variant.name}: {changed} source files changed "
                f"(tree {tree.path} or harness)")
    elif not fresh:
        command.append("--clean-first")     # a build of unknown provenance: start over
    _run(command, "build", directory)
    with open(manifest_path, "w", encoding="utf-8") as handle:
        json.dump(current, handle)
    return Build(variant, directory)


def touch_changed(current, previous):
    """Content manifests (path -> digest): touch every file whose content changed, so that the
    build tool recompiles it whatever its mtime; the number of such files."""
    changed = [path for path, digest in current.items() if previous.get(path) != digest]
    for path in changed:
        os.utime(path)
    return len(changed)


def read_manifest(path):
    """The content manifest a build left, or {} (none, or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return {}


def configure(variant, tree, directory, log=print):
    """Run CMake's configure step (it probes the tree: CMakeLists.txt) into ``directory``."""
    compiler = "clang" if shutil.which("clang") else "gcc"
    log(f"configuring {variant.name} ({compiler}) in {os.path.relpath(directory, REPO)} ...")
    _run(["cmake", "-S", REPO, "-B", directory, f"-DCMAKE_C_COMPILER={compiler}",
          f"-DMBEDTLS_DIR={tree.path}", f"-DPSA_STRESS_SANITIZER={SANITIZERS[variant.sanitizer]}",
          f"-DPSA_STRESS_KEY_STORE={variant.key_store}",
          f"-DPSA_STRESS_KEY_SLOT_COUNT={variant.slot_count}"], "configure", directory)


def _run(command, what, directory):
    """Run a CMake step; on failure keep its output in <directory>/<what>.log and raise one line
    naming the first error."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return
    os.makedirs(directory, exist_ok=True)
    log_path = os.path.join(directory, f"{what}.log")
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    detail = first_error(result.stderr + "\n" + result.stdout)
    raise SetupError(f"CMake {what} failed: {detail} (full log: {os.path.relpath(log_path)})")


COMPILER_ERROR = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s*"
                            r"(?:fatal )?error:\s*(?P<message>.+)$")


def first_error(output):
    """The first compiler error of a build's output as "file:line: message", else CMake's first
    error with its explanation, else the last line that is not a make progress line."""
    lines = output.splitlines()
    for line in lines:
        match = COMPILER_ERROR.match(line.strip())
        if match:
            return f"{_short_path(match['file'])}:{match['line']}: {match['message'].strip()}"
    for i, line in enumerate(lines):
        if line.startswith("CMake Error"):
            following = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
            return f"{line.strip()} {following}".strip()
    quiet = [line.strip() for line in lines
             if line.strip() and not re.match(r"\[\s*\d+%\]|(g?make)(\[\d+\])?:", line.strip())]
    return quiet[-1] if quiet else "no error message (see the log)"


def _short_path(path):
    """A compiler's file path, relative to this repository when it is inside it."""
    relative = os.path.relpath(path, REPO) if os.path.isabs(path) else path
    return path if relative.startswith("..") else relative
