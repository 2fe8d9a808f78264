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
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from scenarios import tools
from scenarios.source import REPO, SetupError, file_hashes

SANITIZERS = {"tsan": "thread", "plain": "none", "asan": "address"}
BUILD_ROOT = os.path.join(REPO, "build")
HARNESS_DIR = os.path.join(REPO, "harness")
APT_PACKAGES = {"cmake": "cmake", "make": "make", "clang": "clang"}


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

    def driver(self, test_build=False):
        return os.path.join(self.directory, "psa-stress-test" if test_build else "psa-stress")


def ensure_tools(log=print):
    """cmake, make and a C compiler (clang preferred, gcc accepted)."""
    missing = [pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None]
    if "clang" in missing and shutil.which("gcc"):
        missing.remove("clang")
    tools.require(missing, log)


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
        _configure(variant, tree, directory, log)
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
    _run(command, "build")
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


def _configure(variant, tree, directory, log):
    compiler = "clang" if shutil.which("clang") else "gcc"
    log(f"configuring {variant.name} ({compiler}) in {os.path.relpath(directory, REPO)} ...")
    _run(["cmake", "-S", REPO, "-B", directory, f"-DCMAKE_C_COMPILER={compiler}",
          f"-DMBEDTLS_DIR={tree.path}", f"-DPSA_STRESS_SANITIZER={SANITIZERS[variant.sanitizer]}",
          f"-DPSA_STRESS_KEY_STORE={variant.key_store}",
          f"-DPSA_STRESS_KEY_SLOT_COUNT={variant.slot_count}"], "configure")


def _run(command, what):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if "error" in line.lower()]
        detail = errors[0] if errors else (result.stderr.strip().splitlines() or ["?"])[-1]
        raise SetupError(f"CMake {what} failed: {detail.strip()}")
