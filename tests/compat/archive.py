"""Validators taken from Debian's archive, run from an extracted tree (nothing is installed).

Each Debian suite (bullseye, bookworm, trixie) gets a scratch apt state under the compat cache
(<cache>/apt/<suite>: sources.list, lists, archives). A validator's packages and the libraries they
depend on are downloaded with `apt-get download PKG=VERSION` and unpacked with `dpkg-deb -x` into
<cache>/root/<suite>. A dynamically linked binary runs through that suite's own dynamic loader with
only that suite's libraries (a trixie binary needs trixie's glibc, newer than the machine's).

The mirror is $DEBIAN_MIRROR, with the same default as scripts/build-images. The cache directory is
$PRODREADY_COMPAT_CACHE, else CACHE_DIR/compat of scripts/lib.sh. Lists older than a week are
refreshed; a warm run needs no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 7 * 24 * 3600
# Dependencies followed when unpacking a validator: shared libraries and the Python runtime.
FOLLOW = re.compile(r"^(lib|lua-|python3(\.[0-9]+)?(-minimal)?$)")
# Not followed: what no validator loads (PostgreSQL's JIT pulls LLVM and Z3, nginx's dynamic modules image
# libraries, Prometheus' web UI JavaScript: several hundred MB unpacked).
SKIP = re.compile(r"perl|^libc-bin$|^libc-l10n$|^libpam-modules|^libpam-runtime$|^libllvm|^libz3-|^libnginx-mod-|^libjs-")


def cache_dir() -> Path:
    if os.environ.get("PRODREADY_COMPAT_CACHE"):
        return Path(os.environ["PRODREADY_COMPAT_CACHE"])
    base = os.environ.get("PRODREADY_CACHE") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prodready-webstack")
    return Path(base) / "compat"


def upstream(version: str) -> str:
    """5:6.0.16-1+deb11u2 -> 6.0.16; 0.21.0+ds-4+b5 -> 0.21.0; 1:8.4p1-5 -> 8.4p1."""
    version = version.split(":", 1)[-1]
    version = version.rsplit("-", 1)[0] if "-" in version else version
    return re.split(r"[+~]", version)[0]


class ArchiveError(RuntimeError):
    pass


def _run(argv: Sequence[str], timeout: int = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    if result.returncode != 0:
        raise ArchiveError(f"{' '.join(argv[:3])} ...: {(result.stderr or result.stdout).strip()[-800:]}")
    return result


@dataclass
class Suite:
    name: str

    @property
    def state(self) -> Path:
        return cache_dir() / "apt" / self.name

    @property
    def root(self) -> Path:
        return cache_dir() / "root" / self.name

    def _options(self) -> list[str]:
        return [f"-oDir::Etc::SourceList={self.state / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State::Lists={self.state / 'lists'}", f"-oDir::Cache={self.state / 'cache'}",
                "-oDir::State::status=/dev/null", "-oAPT::Architecture=amd64", "-oAPT::Sandbox::User=root",
                "-oAcquire::Retries=3", "-qq"]

    def update(self, force: bool = False) -> None:
        stamp = self.state / "lists" / "updated"
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE:
            return
        for sub in ("lists/partial", "cache/archives/partial", "debs"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        (self.state / "sources.list").write_text(f"deb [signed-by={KEYRING}] {MIRROR} {self.name} main\n")
        _run(["apt-get", *self._options(), "update"], timeout=300)
        stamp.touch()

    def versions(self, packages: Sequence[str]) -> dict[str, str]:
        """The version of each of PACKAGES this suite offers (its candidate)."""
        self.update()
        out = _run(["apt-cache", *self._options(), "policy", *packages]).stdout
        found = dict(re.findall(r"^(\S+):\n(?:  .*\n)*?  Candidate: (\S+)", out, re.M))
        missing = [p for p in packages if found.get(p, "(none)") == "(none)"]
        if missing:
            raise ArchiveError(f"{self.name} has no package {', '.join(missing)}")
        return {p: found[p] for p in packages}

    def has(self, package: str) -> bool:
        try:
            self.version(package)
        except ArchiveError:
            return False
        return True

    def version(self, package: str) -> str:
        return self.versions([package])[package]

    def closure(self, packages: Iterable[str]) -> dict[str, str]:
        """PACKAGES plus the libraries (and Python runtime) they depend on, first alternative of each: name -> version.
        Remembered per package list until the lists are refreshed."""
        wanted = list(dict.fromkeys(packages))
        self.update()
        memo = self.state / "closures" / (f"{hashlib.sha256((FOLLOW.pattern + SKIP.pattern).encode()).hexdigest()[:8]}-"
                                          + "_".join(sorted(wanted)) + ".json")
        if memo.exists() and memo.stat().st_mtime >= (self.state / "lists" / "updated").stat().st_mtime:
            return dict(json.loads(memo.read_text()))
        seen: set[str] = set(wanted)
        queue = list(wanted)
        while queue:
            batch, queue = queue, []
            out = _run(["apt-cache", *self._options(), "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", *batch]).stdout
            alternative = False
            for line in out.splitlines():
                match = re.match(r"^ (\||\s)(?:Pre)?Depends: (\S+)", line)
                if not match:
                    continue
                first = not alternative
                alternative = match.group(1) == "|"
                name = match.group(2).split(":")[0]
                if first and not name.startswith("<") and FOLLOW.match(name) and not SKIP.search(name) and name not in seen:
                    seen.add(name)
                    queue.append(name)
        result = self.versions(sorted(seen))
        memo.parent.mkdir(exist_ok=True)
        memo.write_text(json.dumps(result))
        return result

    def unpack(self, packages: Iterable[str]) -> dict[str, str]:
        """Download and unpack PACKAGES with their libraries into self.root (cached); name -> version."""
        versions = self.closure(packages)
        stamps = self.root / ".unpacked"
        stamps.mkdir(parents=True, exist_ok=True)
        missing = {n: v for n, v in versions.items() if not (stamps / f"{n}_{v.replace(':', '%3a')}").exists()}
        if any(any(stamps.glob(f"{name}_*")) for name in missing):  # the mirror moved on: unpack this suite afresh
            shutil.rmtree(self.root)
            return self.unpack(packages)
        self._download(missing)
        for name, version in missing.items():
            self._extract(self._deb(name, version))
            (stamps / f"{name}_{version.replace(':', '%3a')}").touch()
        return versions

    def _deb(self, name: str, version: str) -> Path:
        found = sorted((self.state / "debs").glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
        if not found:
            raise ArchiveError(f"apt-get download {name}={version} left no .deb")
        return found[0]

    def _download(self, versions: dict[str, str]) -> None:
        """The .debs of VERSIONS not cached yet, in one apt-get call (the lists are refreshed once if that fails)."""
        debs = self.state / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        wanted = [f"{n}={v}" for n, v in versions.items() if not any(debs.glob(f"{n}_{v.replace(':', '%3a')}_*.deb"))]
        if not wanted:
            return
        try:
            _run(["apt-get", *self._options(), "download", *wanted], cwd=debs)
        except ArchiveError:
            self.update(force=True)
            _run(["apt-get", *self._options(), "download", *wanted], cwd=debs)

    def _extract(self, deb: Path) -> None:
        _run(["dpkg-deb", "-x", str(deb), str(self.root)])

    # ---------------------------------------------------------------- running what was unpacked
    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def library_path(self) -> str:
        dirs = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib"]
        return ":".join(str(self.root / d) for d in dirs)

    def command(self, binary: str, *args: str, extra_libs: Sequence[str] = ()) -> list[str]:
        """argv running BINARY (a path in the suite) with this suite's loader and libraries."""
        exe = self.path(binary)
        if not exe.exists():
            raise ArchiveError(f"{binary} is not in the unpacked {self.name} packages")
        if not _is_dynamic(exe):
            return [str(exe), *args]
        loader = next((p for p in (self.path("lib64/ld-linux-x86-64.so.2"), self.path("usr/lib64/ld-linux-x86-64.so.2"),
                                   self.path("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
                                   self.path("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")) if p.exists()), None)
        if loader is None:
            raise ArchiveError(f"no dynamic loader in the unpacked {self.name} libc6")
        libs = ":".join([*(str(self.path(d)) for d in extra_libs), self.library_path()])
        return [str(loader), "--inhibit-cache", "--library-path", libs, str(exe), *args]


def _is_dynamic(path: Path) -> bool:
    """Whether the ELF file at PATH has a program interpreter (PT_INTERP)."""
    with path.resolve().open("rb") as handle:
        header = handle.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))
