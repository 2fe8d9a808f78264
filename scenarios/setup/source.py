"""Find, check and (if need be) fetch the Mbed TLS source tree under test.

Search order (first hit wins):
  1. ``--mbedtls-dir DIR`` given by the user (any 3.6.x tree, e.g. a branch under investigation);
  2. the populated ``mbedtls`` git submodule of this repository;
  3. a cached unpack of Debian's source package ``mbedtls 3.6.6-0.1~deb13u1`` under ``.deps/``,
     fetched on first use with ``apt-get source`` through a private apt configuration whose
     archive URI is read from this machine's own apt sources;
  4. otherwise a SetupError that says what to do.

Every tree is checked before use: MBEDTLS_VERSION_STRING must be 3.6.x, the library sources must
be present, and the tree must support the pthread threading layer.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBMODULE_DIR = os.path.join(REPO, "mbedtls")
DEPS_DIR = os.path.join(REPO, ".deps")
DEBIAN_PACKAGE = "mbedtls"
DEBIAN_VERSION = "3.6.6-0.1~deb13u1"
DEBIAN_SUITE = "trixie"
CACHED_TREE = os.path.join(DEPS_DIR, "mbedtls-3.6.6")
APT_SOURCES = ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")

# Files whose presence proves "the library sources are here".
LIBRARY_FILES = ("library/psa_crypto.c", "library/psa_crypto_slot_management.c",
                 "library/threading.c", "include/psa/crypto.h")


class SetupError(Exception):
    """A problem with the environment or the user's input: one line, exit code 2."""


@dataclass
class Tree:
    path: str          # absolute path of the tree
    version: str       # MBEDTLS_VERSION_STRING
    origin: str        # "--mbedtls-dir", "submodule" or "debian-source"

    def manifest(self):
        """{absolute path: content hash} of everything the build reads (library/, include/)."""
        return file_hashes(os.path.join(self.path, sub) for sub in ("library", "include"))

    def fingerprint(self):
        """One content hash of the tree (as in reports)."""
        return combined_hash(self.manifest(), self.path)


def file_hashes(directories, suffixes=(".c", ".h")):
    """{path: sha256 prefix} of the matching files under the given directories."""
    hashes = {}
    for top in directories:
        for root, _dirs, files in os.walk(top):
            for name in files:
                if name.endswith(suffixes):
                    full = os.path.join(root, name)
                    with open(full, "rb") as handle:
                        hashes[full] = hashlib.sha256(handle.read()).hexdigest()[:16]
    return hashes


def combined_hash(hashes, base):
    """An order-independent digest of a file_hashes() result, with paths relative to base."""
    digest = hashlib.sha256()
    for path in sorted(hashes):
        digest.update(f"{os.path.relpath(path, base)}={hashes[path]};".encode())
    return digest.hexdigest()[:16]


def read_version(path):
    """MBEDTLS_VERSION_STRING of the tree at path, or SetupError."""
    header = os.path.join(path, "include", "mbedtls", "build_info.h")
    if not os.path.isfile(header):
        raise SetupError(f"{path} is not an Mbed TLS source tree (no include/mbedtls/build_info.h)")
    with open(header, encoding="utf-8", errors="replace") as handle:
        match = re.search(r'#define\s+MBEDTLS_VERSION_STRING\s+"([^"]+)"', handle.read())
    if not match:
        raise SetupError(f"{header} has no MBEDTLS_VERSION_STRING")
    return match.group(1)


def check_tree(path, origin):
    """Validate a candidate tree; return a Tree or raise SetupError with one clear line."""
    if not os.path.isdir(path):
        raise SetupError(f"--mbedtls-dir {path}: no such directory")
    path = os.path.abspath(path)
    version = read_version(path)
    if not re.fullmatch(r"3\.6\.\d+", version):
        raise SetupError(f"{path} is Mbed TLS {version}; psa-stress needs a 3.6.x tree")
    missing = [name for name in LIBRARY_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise SetupError(f"{path} lacks the library sources ({', '.join(missing)} missing)")
    if not _supports_pthread_key_store(path):
        raise SetupError(f"{path} cannot be built with threading "
                         "(no MBEDTLS_THREADING_PTHREAD key-slot mutex)")
    return Tree(path, version, origin)


def _supports_pthread_key_store(path):
    with open(os.path.join(path, "library", "threading.c"), errors="replace") as handle:
        threading_c = handle.read()
    with open(os.path.join(path, "library", "psa_crypto_slot_management.c"),
              errors="replace") as handle:
        slots_c = handle.read()
    return ("MBEDTLS_THREADING_PTHREAD" in threading_c
            and "mbedtls_threading_key_slot_mutex" in slots_c)


def find_tree(mbedtls_dir=None, fetch=True, log=print):
    """Resolve the tree to test, in the documented order."""
    if mbedtls_dir:
        return check_tree(mbedtls_dir, "--mbedtls-dir")
    if os.path.isfile(os.path.join(SUBMODULE_DIR, "include", "mbedtls", "build_info.h")):
        return check_tree(SUBMODULE_DIR, "submodule")
    if not os.path.isdir(CACHED_TREE) and fetch:
        fetch_debian_source(log)
    if os.path.isdir(CACHED_TREE):
        return check_tree(CACHED_TREE, "debian-source")
    raise SetupError("no Mbed TLS source: run `git submodule update --init --recursive`, "
                     "pass --mbedtls-dir DIR, or make Debian's source archive reachable by apt")


def debian_archive_uri():
    """The first archive URI of this machine's own apt sources (never hard-coded)."""
    for name in APT_SOURCES:
        if not os.path.isfile(name):
            continue
        with open(name, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                line = line.strip()
                match = re.match(r"URIs:\s*(\S+)", line) or re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)", line)
                if match and "security" not in match.group(1):
                    return match.group(1)
    return None


def fetch_debian_source(log=print):
    """apt-get source through a private apt configuration; unpack the upstream tarball."""
    uri = debian_archive_uri()
    if uri is None or shutil.which("apt-get") is None:
        raise SetupError("no Mbed TLS source and no apt archive to fetch it from: "
                         "run `git submodule update --init --recursive` or pass --mbedtls-dir DIR")
    apt_dir = os.path.join(DEPS_DIR, "apt")
    for sub in ("lists/partial", "archives/partial", "download"):
        os.makedirs(os.path.join(apt_dir, sub), exist_ok=True)
    sources = os.path.join(apt_dir, "sources.list")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    with open(sources, "w", encoding="utf-8") as handle:
        handle.write(f"deb-src [signed-by={keyring}] {uri} {DEBIAN_SUITE} main\n")
    options = ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={apt_dir}/lists", "-o", "Dir::Cache::pkgcache=",
               "-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Sandbox::User=root", "-q"]
    log(f"fetching Debian source package {DEBIAN_PACKAGE} {DEBIAN_VERSION} ...")
    download = os.path.join(apt_dir, "download")
    _apt(["apt-get", *options, "update"], apt_dir)
    _apt(["apt-get", *options, "source", "--download-only",
          f"{DEBIAN_PACKAGE}={DEBIAN_VERSION}"], download)
    tarballs = [name for name in os.listdir(download) if ".orig.tar" in name]
    if not tarballs:
        raise SetupError("apt-get source gave no upstream tarball for mbedtls")
    _unpack(os.path.join(download, tarballs[0]))


def _apt(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(f"could not fetch Mbed TLS from Debian's source archive: {last}")


def _unpack(tarball):
    staging = CACHED_TREE + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging)
    (top,) = os.listdir(staging)
    os.rename(os.path.join(staging, top), CACHED_TREE)
    os.rmdir(staging)
