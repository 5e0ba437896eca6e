"""Locally built images for the Docker tests (development tools): no registry is reachable here.

Two Debian bookworm root filesystems are made with ``debootstrap --variant=minbase`` and imported
with ``docker import``:

* ``base`` (python3, python3-venv, ca-certificates, tini) under the stand-in Elasticsearch images
  ``es-mesos-test/elasticsearch-standin:<major>`` (7 and 8). Those mimic the official image where
  the executor depends on it (paths, uid 1000 / gid 0, ``/bin/tini``, default config files, the
  version in ``lib/elasticsearch-<version>.jar``, ``ELASTIC_CONTAINER``, ``USER 1000:0``), but
  ``bin/elasticsearch`` runs the es-mesos demo node and ``bin/elasticsearch-keystore`` is a small
  JSON-backed stand-in (files in ``tests/harness/standin/``);
* ``python-builder`` (the same plus gcc, libc6-dev, python3-dev), the stand-in for
  ``python:3.11-slim-*`` as the production Dockerfiles' builder/base stage. The compilers are in
  the cached root filesystem rather than installed by the Dockerfile, because every session starts
  with an empty engine: an ``apt-get install`` in a build would run (and download) every session.

Debootstrap takes about a minute, so each root filesystem is cached as a tarball in
``${ES_MESOS_TEST_CACHE:-~/.cache/es-mesos-tests}``, named by a hash of everything that decides its
content (debootstrap arguments, the mirror — ``$ES_MESOS_TEST_DEBIAN_MIRROR``, default
deb.debian.org — and the host's extra CA certificates). A tarball is written
under a temporary name and renamed when complete, under a lock, so a half-written or concurrent
cache is never used. The host's extra CA certificates (``/usr/local/share/ca-certificates``) go
into both root filesystems, so that pip and apt inside a build trust what the host trusts (a
TLS-intercepting proxy, for instance).

:class:`ImageBuilder` builds every image lazily, once per engine (i.e. per test session), with
``docker build --network host`` (the private engine has no bridge), and also builds the production
``docker/executor`` and ``docker/scheduler`` Dockerfiles against these stand-ins.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from es_framework import __version__
from es_framework.dev.docker_engine import (
    DockerEngine,
    Progress,
    cache_dir,
    log_progress,
    progress_step,
    unmount_under,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_DIR = Path(__file__).resolve().parent / "standin"
DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: Elasticsearch versions the stand-ins pretend to be, one per major.
STANDIN_VERSIONS = {7: "7.17.25", 8: "8.15.3"}
HOST_EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
#: Bump to invalidate every cached root filesystem (e.g. when the post-processing changes).
CACHE_FORMAT = 1

BASE_TAG = f"es-mesos-test/debian-base:{DEBIAN_SUITE}"
PYTHON_BUILDER_TAG = "es-mesos-test/python-builder:3.11"
STANDIN_REPO = "es-mesos-test/elasticsearch-standin"
EXECUTOR_REPO = "es-mesos-test/executor"
SCHEDULER_TAG = "es-mesos-test/scheduler:dev"
BUILD_TIMEOUT = 1800.0

IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    # Debian's pip vendors certifi; point it (and requests, urllib) at the system bundle.
    "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
    "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    'CMD ["/bin/bash"]',
)


def debian_mirror() -> str:
    return os.environ.get("ES_MESOS_TEST_DEBIAN_MIRROR") or DEFAULT_MIRROR


@dataclass(frozen=True)
class RootfsSpec:
    """One debootstrap'd root filesystem: its name and the packages added to minbase."""

    name: str
    packages: tuple[str, ...]
    suite: str = DEBIAN_SUITE
    mirror: str = DEFAULT_MIRROR

    def debootstrap_args(self, target: Path) -> list[str]:
        return ["--variant=minbase", f"--include={','.join(self.packages)}", self.suite, str(target), self.mirror]

    def cache_key(self) -> str:
        """A hash of everything that decides the tarball's content."""
        digest = hashlib.sha256()
        digest.update(json.dumps([CACHE_FORMAT, self.debootstrap_args(Path("TARGET"))]).encode())
        for cert in extra_ca_certificates():
            digest.update(cert.name.encode() + b"\0" + cert.read_bytes())
        return digest.hexdigest()[:20]

    def tarball(self, cache: Path) -> Path:
        return cache / f"rootfs-{self.name}-{self.suite}-{self.cache_key()}.tar"


BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini")
#: What the production Dockerfiles' builder stage needs to build http-parser and run PyInstaller
#: (gcc brings binutils' objdump, which PyInstaller requires on Linux).
BUILDER_PACKAGES = (*BASE_PACKAGES, "python3-dev", "gcc", "libc6-dev")


def base_rootfs() -> RootfsSpec:
    return RootfsSpec("base", BASE_PACKAGES, mirror=debian_mirror())


def builder_rootfs() -> RootfsSpec:
    return RootfsSpec("python-builder", BUILDER_PACKAGES, mirror=debian_mirror())


def extra_ca_certificates() -> list[Path]:
    if not HOST_EXTRA_CA_DIR.is_dir():
        return []
    return sorted(p for p in HOST_EXTRA_CA_DIR.rglob("*.crt") if p.is_file())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created): one debootstrap per tarball, even across sessions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_logged(argv: list[str], log_file: Path, what: str, timeout: float) -> None:
    with log_file.open("ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if result.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        raise RuntimeError(f"{what} failed with status {result.returncode} (log: {log_file})\n" + "\n".join(tail))


def cached_rootfs(spec: RootfsSpec, cache: Path | None = None, progress: Progress = log_progress) -> Path:
    """The tarball of ``spec``'s root filesystem, debootstrapped now if it is not cached yet."""
    cache = cache if cache is not None else cache_dir()
    target = spec.tarball(cache)
    if target.is_file():
        return target
    with _locked(cache / f".{target.name}.lock"):
        if target.is_file():  # another session made it while we waited
            return target
        work = Path(tempfile.mkdtemp(prefix=f"esm-rootfs-{spec.name}-", dir="/tmp"))
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        log_file = cache / f"{target.stem}.log"
        try:
            with progress_step(progress, f"debootstrap {spec.name}", f"once: cached as {target}; log {log_file}"):
                root = work / "root"
                log_file.write_text("", encoding="utf-8")
                _run_logged(["debootstrap", *spec.debootstrap_args(root)], log_file, "debootstrap", timeout=1800)
                _postprocess_rootfs(root, log_file)
                _run_logged(
                    ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."],
                    log_file,
                    "tar",
                    timeout=600,
                )
                os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            # A failed debootstrap can leave /proc or /sys mounted in the target; rmtree must not follow them.
            unmount_under(work)
            shutil.rmtree(work, ignore_errors=True)
    return target


def _postprocess_rootfs(root: Path, log_file: Path) -> None:
    certs = extra_ca_certificates()
    if certs:
        dest = root / HOST_EXTRA_CA_DIR.relative_to("/")
        dest.mkdir(parents=True, exist_ok=True)
        for cert in certs:
            shutil.copy2(cert, dest / cert.name)
        _run_logged(["chroot", str(root), "update-ca-certificates"], log_file, "update-ca-certificates", timeout=120)
    # Downloaded packages and package lists only make the tarball bigger (a build runs apt-get update).
    for junk in (root / "var/cache/apt/archives").glob("*.deb"):
        junk.unlink()
    lists = root / "var/lib/apt/lists"
    if lists.is_dir():
        for entry in lists.iterdir():
            if entry.is_file():
                entry.unlink()


def demo_node_sources() -> dict[str, Path]:
    """The files the stand-in's ``bin/elasticsearch`` needs: ``es_framework/__init__.py``,
    ``es_framework/dev/__init__.py`` and ``es_framework/dev/demo_es/``. Fails if the demo node imports
    anything else of the project, or is not there (the image would then start a broken node)."""
    package = REPO_ROOT / "es_framework"
    files = {
        "es_framework/__init__.py": package / "__init__.py",
        "es_framework/dev/__init__.py": package / "dev" / "__init__.py",
    }
    demo = package / "dev" / "demo_es"
    if not (demo / "__main__.py").is_file():
        raise RuntimeError(f"the demo node is not in {demo}: the stand-in image would start nothing")
    for path in sorted(demo.rglob("*.py")):
        files[path.relative_to(REPO_ROOT).as_posix()] = path
    for relative, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                shipped = name in ("es_framework", "es_framework.dev") or name.startswith("es_framework.dev.demo_es")
                if name.split(".")[0] in ("es_framework", "strategies", "identity") and not shipped:
                    raise RuntimeError(f"{relative} imports {name}: the stand-in image only ships the demo node")
    return files


def _substitute(text: str, version: str) -> str:
    return text.replace("@ES_VERSION@", version).replace("@ES_MAJOR@", version.split(".", maxsplit=1)[0])


def write_standin_context(context: Path, major: int) -> str:
    """Lay out the stand-in image's build context for ``major`` in ``context``; returns the version."""
    version = STANDIN_VERSIONS[major]
    shutil.copy2(STANDIN_DIR / "Dockerfile", context / "Dockerfile")
    home = context / "es-home"
    for sub in ("bin", "config/jvm.options.d", "data", "logs", "lib", "plugins"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for script in ("elasticsearch", "elasticsearch-keystore"):
        target = home / "bin" / script
        target.write_text(_substitute((STANDIN_DIR / script).read_text(encoding="utf-8"), version), encoding="utf-8")
        target.chmod(0o755)
    config = STANDIN_DIR / "config"
    for name, source in (
        ("elasticsearch.yml", config / "elasticsearch.yml"),
        ("log4j2.properties", config / "log4j2.properties"),
        ("jvm.options", config / f"jvm.options-{major}"),
    ):
        (home / "config" / name).write_text(_substitute(source.read_text(encoding="utf-8"), version), encoding="utf-8")
    # The executor reads the version from this name, as it does in the real image.
    (home / "lib" / f"elasticsearch-{version}.jar").write_bytes(b"")
    for path in home.rglob("*"):
        if path.is_dir():
            path.chmod(0o775)
    python = context / "standin-python"
    for relative, source in demo_node_sources().items():
        (python / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, python / relative)
    return version


class ImageBuilder:
    """Builds the test images on one engine, each at most once (lazily, thread-safe)."""

    def __init__(self, engine: DockerEngine, cache: Path | None = None, progress: Progress | None = None) -> None:
        self.engine = engine
        self.cache = cache if cache is not None else cache_dir()
        self.progress = progress if progress is not None else engine.progress
        self._lock = threading.RLock()
        self._done: dict[str, str] = {}
        #: Seconds each image took, for reports.
        self.timings: dict[str, float] = {}

    def _once(self, key: str, build: Callable[[], str]) -> str:
        with self._lock:
            if key not in self._done:
                started = time.monotonic()
                with progress_step(self.progress, f"image {key}"):
                    self._done[key] = build()
                self.timings[key] = time.monotonic() - started
            return self._done[key]

    def _import(self, spec: RootfsSpec, tag: str) -> str:
        tarball = cached_rootfs(spec, self.cache, self.progress)
        changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
        self.engine.docker("import", *changes, str(tarball), tag, timeout=BUILD_TIMEOUT)
        return tag

    def build(self, context: Path, tag: str, *, dockerfile: Path | None = None, **build_args: str) -> str:
        """``docker build --network host`` of ``context`` as ``tag``."""
        argv = ["build", "--network", "host", "--tag", tag]
        if dockerfile is not None:
            argv += ["--file", str(dockerfile)]
        for name, value in build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        self.engine.docker(*argv, str(context), timeout=BUILD_TIMEOUT)
        return tag

    def base(self) -> str:
        """The imported minbase root filesystem (under the stand-in Elasticsearch images)."""
        return self._once("base", lambda: self._import(base_rootfs(), BASE_TAG))

    def python_builder(self) -> str:
        """The stand-in for ``python:3.11-slim-*`` (Debian's CPython 3.11 with a C toolchain)."""
        return self._once("python-builder", lambda: self._import(builder_rootfs(), PYTHON_BUILDER_TAG))

    def standin(self, major: int) -> str:
        """``es-mesos-test/elasticsearch-standin:<major>`` (7 or 8)."""
        if major not in STANDIN_VERSIONS:
            raise ValueError(f"no stand-in for Elasticsearch {major}; known: {sorted(STANDIN_VERSIONS)}")

        def build() -> str:
            base = self.base()
            with tempfile.TemporaryDirectory(prefix="esm-standin-") as tmp:
                version = write_standin_context(Path(tmp), major)
                tag = self.build(Path(tmp), f"{STANDIN_REPO}:{major}", BASE=base, ES_VERSION=version)
            self.engine.docker("tag", tag, f"{STANDIN_REPO}:{version}")
            return tag

        return self._once(f"standin-{major}", build)

    def executor(self, major: int) -> str:
        """``docker/executor/Dockerfile`` built FROM the stand-in for ``major``."""

        def build() -> str:
            return self.build(
                REPO_ROOT,
                f"{EXECUTOR_REPO}:{major}",
                dockerfile=REPO_ROOT / "docker" / "executor" / "Dockerfile",
                BASE=self.standin(major),
                BUILDER=self.python_builder(),
                ES_VERSION=STANDIN_VERSIONS[major],
                ES_MESOS_VERSION=__version__,
            )

        return self._once(f"executor-{major}", build)

    def scheduler(self) -> str:
        """``docker/scheduler/Dockerfile`` built FROM the python stand-in."""

        def build() -> str:
            return self.build(
                REPO_ROOT,
                SCHEDULER_TAG,
                dockerfile=REPO_ROOT / "docker" / "scheduler" / "Dockerfile",
                BASE=self.python_builder(),
                ES_MESOS_VERSION=__version__,
            )

        return self._once("scheduler", build)
