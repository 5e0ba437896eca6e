"""A private Docker engine for one test session (development tool).

:class:`DockerEngine` runs its own ``dockerd`` (Debian package ``docker.io``) with everything in a
fresh directory ``/tmp/esm-dkr-*``: data root, exec root, pid file, log (``dockerd.log``, the first
place to look when an image test fails) and the API socket. It never touches the machine's own
engine or ``/var/run/docker.sock``, and leaves nothing behind when stopped.

The engine runs with host networking only (``--bridge=none``, no iptables): test machines may not
allow bridges or NAT, and the tests need neither (builds and containers use ``--network host``).
Builds use BuildKit (see :func:`docker_client`): the classic builder would copy the whole image
once per instruction.

Where the images live decides how long a session takes, so the engine picks the cheapest storage
that works here:

* the engine's directory is a ``tmpfs`` mounted for the session (we are root, as ``dockerd`` needs):
  layers are written to memory, and :meth:`DockerEngine.stop` frees them all with one unmount,
  where deleting a data root of several GB from disk took minutes;
* the storage driver is ``overlay2``, which stores each layer's changes only; when ``dockerd``
  cannot use it here, ``vfs`` (a full copy of the image per layer: gigabytes for our images, works
  on any filesystem, including inside another container). ``vfs`` data is too big for memory, so it
  goes to disk under the test cache (``$ES_MESOS_TEST_CACHE``, default ``~/.cache/es-mesos-tests``),
  and is removed in the background when the engine stops (the next engine removes what is left).

The data goes to disk as well (overlay2 there too) when the tmpfs cannot be mounted or less than
:data:`TMPFS_MIN_AVAILABLE` of memory is available. ``ES_MESOS_TEST_DOCKER_STORAGE=vfs`` forces a
driver, ``ES_MESOS_TEST_DOCKER_TMPFS=0`` keeps the data on disk. An engine whose test process died
without stopping it (SIGKILL) is stopped and removed by the next engine that starts
(:func:`reap_orphaned_engines`).

``python -m es_framework.dev.docker_engine --check`` exits 1 with the reason when the engine cannot run
here (``scripts/test.sh`` uses it to decide whether to install ``docker.io`` and ``debootstrap``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from es_framework.dev.tool_check import check_main

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the Debian packages docker.io and debootstrap: "
    "apt-get install --no-install-recommends docker.io debootstrap"
)
#: A unix socket path must fit in ``sun_path`` (108 bytes with the NUL).
MAX_SOCKET_PATH = 107
#: Where every engine's directory is made (short: the socket is in it).
ROOT_PARENT = Path("/tmp")
ROOT_PREFIX = "esm-dkr-"
#: Tried in this order (see the module docstring).
STORAGE_DRIVERS = ("overlay2", "vfs")
STORAGE_ENV = "ES_MESOS_TEST_DOCKER_STORAGE"
TMPFS_ENV = "ES_MESOS_TEST_DOCKER_TMPFS"
#: The tmpfs only when this much memory is available: with overlay2 the images of a whole session
#: take about 1 GB of it (measured); the rest is room for the tests' own processes.
TMPFS_MIN_AVAILABLE = 6 * 2**30
#: The file in an engine's directory naming the process that owns it (pid and start time).
OWNER_FILE = "owner"

#: Where a long step reports progress (a line at a time); the default logs it.
Progress = Callable[[str], None]


def docker_problem() -> str | None:
    """Why a private engine (and the debootstrap'd base images) cannot run here, or ``None``."""
    missing = [tool for tool in ("dockerd", "docker", "debootstrap") if _which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found; {INSTALL_HINT}"
    if os.geteuid() != 0:
        return "the private Docker engine and debootstrap need root"
    return None


def _which(tool: str) -> str | None:
    # debootstrap and dockerd live in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin")


def docker_client() -> str:
    """The ``docker`` client to use: the one packaged with ``dockerd`` (docker.io's ``/usr/bin/docker``)
    when present. Its version matches the engine's, and it builds with BuildKit without the buildx
    plugin, which newer clients need for BuildKit and which docker.io does not ship."""
    packaged = Path("/usr/bin/docker")
    if packaged.is_file() and os.access(packaged, os.X_OK):
        return str(packaged)
    return _which("docker") or "docker"


def cache_dir() -> Path:
    """The tests' cache across runs (root filesystem tarballs, an on-disk engine's data)."""
    configured = os.environ.get("ES_MESOS_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "es-mesos-tests"


def log_progress(message: str) -> None:
    log.info("%s", message)


_steps = threading.local()


@contextlib.contextmanager
def progress_step(progress: Progress, what: str, detail: str = "", every: float = 30.0) -> Iterator[None]:
    """Report ``what`` (and ``detail``) when it starts, every ``every`` seconds while it runs, and when it
    ends: a long step (a build, a debootstrap, a teardown) must never look like a hung test run. Of
    steps inside steps (an image whose base is being debootstrapped), only the innermost reports
    while it runs."""
    started = time.monotonic()
    done = threading.Event()
    stack: list[str] = _steps.__dict__.setdefault("stack", [])
    token = f"{what}#{started}"

    def heartbeat() -> None:
        while not done.wait(every):
            if stack and stack[-1] == token:
                progress(f"{what}: still running after {time.monotonic() - started:.0f} s")

    progress(f"{what} ({detail}) ..." if detail else f"{what} ...")
    stack.append(token)
    beat = threading.Thread(target=heartbeat, name="progress", daemon=True)
    beat.start()
    try:
        yield
    except BaseException:
        progress(f"{what}: failed after {time.monotonic() - started:.1f} s")
        raise
    finally:
        done.set()
        beat.join()
        stack.remove(token)
    progress(f"{what}: done in {time.monotonic() - started:.1f} s")


class DockerCommandError(RuntimeError):
    """A ``docker`` command exited non-zero; the message carries its stderr."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"`{' '.join(args)}` exited with status {result.returncode}\n"
            f"--- stderr (last 6000 chars)\n{result.stderr[-6000:].strip()}\n"
            f"--- stdout (last 2000 chars)\n{result.stdout[-2000:].strip()}"
        )


class _DockerdExitedError(RuntimeError):
    """``dockerd`` exited while starting (e.g. its storage driver cannot work here)."""


class DockerEngine:
    """One ``dockerd`` in a directory of its own; :meth:`start` it, run :meth:`docker`, :meth:`stop` it."""

    def __init__(self, root: Path | None = None, *, progress: Progress = log_progress) -> None:
        # Short on purpose: the socket path must stay under 107 bytes.
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=ROOT_PARENT))
        self.socket = self.root / "docker.sock"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise ValueError(f"socket path too long for a unix socket: {self.socket}")
        self.host = f"unix://{self.socket}"
        self.log_file = self.root / "dockerd.log"
        self.progress = progress
        #: Chosen by :meth:`start`: the storage driver, and whether the directory is a tmpfs.
        self.storage_driver = ""
        self.on_tmpfs = False
        self.data_root = self.root / "data"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            _which("dockerd") or "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--storage-driver={self.storage_driver or STORAGE_DRIVERS[-1]}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.root / 'exec'}",
            f"--host={self.host}",
            f"--pidfile={self.root / 'docker.pid'}",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start ``dockerd`` on the cheapest storage that works here (see the module docstring) and
        wait until ``docker version`` answers."""
        if self.running:
            return
        problem = docker_problem()
        if problem:
            raise RuntimeError(problem)
        reap_orphaned_engines(self.progress, keep=self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)  # never leave an engine behind, even when a test run is interrupted
        self.on_tmpfs = _tmpfs_wanted() and _mount_tmpfs(self.root)
        (self.root / OWNER_FILE).write_text(_process_identity(os.getpid()), encoding="utf-8")
        forced = os.environ.get(STORAGE_ENV, "").strip()
        drivers = (forced,) if forced else STORAGE_DRIVERS
        for attempt, driver in enumerate(drivers):
            self.storage_driver = driver
            self.data_root = self._data_root_for(driver)
            try:
                self._run_dockerd(timeout)
            except _DockerdExitedError as error:
                if attempt + 1 == len(drivers):
                    self.stop()
                    raise RuntimeError(str(error)) from None
                self.progress(f"private Docker engine: storage driver {driver} does not work here; trying the next")
                log.info("%s", error)
                self._remove_data_root()
                continue
            where = "tmpfs" if self.on_tmpfs and self.data_root.is_relative_to(self.root) else "disk"
            self.progress(f"private Docker engine ready at {self.host} ({driver} on {where}: {self.data_root})")
            return

    def _data_root_for(self, driver: str) -> Path:
        if self.on_tmpfs and driver != "vfs":
            return self.root / "data"
        # vfs needs gigabytes (too many for memory), and a data root on disk takes minutes to
        # delete: it lives in the cache, where stop() hands it to a background removal.
        return cache_dir() / "docker-data" / self.root.name

    def _run_dockerd(self, timeout: float) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            # Own session: a Ctrl-C in the test terminal must not reach dockerd before we clean up.
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                status, self._process = self._process.returncode, None
                driver = self.storage_driver
                raise _DockerdExitedError(f"dockerd ({driver}) exited with status {status}\n{self.log_tail()}")
            if self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        tail = self.log_tail()  # before stop() deletes the log
        self.stop()
        raise RuntimeError(f"dockerd did not answer on {self.host} within {timeout:.0f} s\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        """Remove every container, stop ``dockerd`` (SIGTERM, then SIGKILL) and delete its directory
        (an unmount on tmpfs; a data root on disk is removed in the background)."""
        process, self._process = self._process, None
        if process is None and not self.root.exists():
            return
        with progress_step(self.progress, f"stopping the private Docker engine {self.root}"):
            if process is not None and process.poll() is None:
                with contextlib.suppress(Exception):
                    ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                    if ids:
                        self.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
                _terminate(process.pid, timeout, process)
            if self.root.exists():
                _remove_engine_dir(self.root)
                self.on_tmpfs = False
            self._remove_data_root()

    def _remove_data_root(self) -> None:
        if self.data_root.is_relative_to(self.root) or not self.data_root.exists():
            return
        unmount_under(self.data_root)
        remove_in_background(self.data_root, self.progress)

    def docker(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker -H <host> *args`` (text mode, output captured). With ``check``, a non-zero exit
        raises :class:`DockerCommandError` whose message carries stderr."""
        argv = [docker_client(), "-H", self.host, *args]
        env = dict(os.environ)
        # BuildKit: the classic builder creates a container for every instruction, and with vfs each
        # container is a full copy of the image (10x slower for our images).
        env["DOCKER_BUILDKIT"] = "1"
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_HOST", None)
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, input=input, env=env, check=False
        )
        if check and result.returncode != 0:
            raise DockerCommandError(argv, result)
        return result

    def log_tail(self, lines: int = 40) -> str:
        """The end of ``dockerd.log``, for failure messages."""
        if not self.log_file.is_file():
            return f"(no log in {self.root})"
        tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return f"--- {self.log_file} (last {len(tail)} lines)\n" + "\n".join(tail)


def _terminate(pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM (``dockerd`` then stops its containers and its containerd), SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process is not None else not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


# ---------------------------------------------------------------------- storage


def _tmpfs_wanted() -> bool:
    if os.environ.get(TMPFS_ENV, "").strip().lower() in ("0", "false", "no"):
        return False
    return _memory_available() >= TMPFS_MIN_AVAILABLE


def _memory_available() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _mount_tmpfs(directory: Path) -> bool:
    """Mount a fresh tmpfs on ``directory``; ``False`` when this machine does not let us."""
    # No size= : the default cap is half the memory, and a tmpfs takes only what it holds.
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0711", "esm-docker", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log.info("no tmpfs for the Docker engine (%s); its data goes to disk", result.stderr.strip())
    return result.returncode == 0


def _mounts_under(directory: Path, *, including_itself: bool = False) -> list[str]:
    """Mount points at or below ``directory``, innermost first."""
    prefix = str(directory).rstrip("/") + "/"
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        inside = {m for m in mounts if m.startswith(prefix) or (including_itself and m == str(directory))}
        return sorted(inside, key=len, reverse=True)
    return []


def unmount_under(directory: Path, *, including_itself: bool = False) -> None:
    """Unmount everything mounted below ``directory`` (and ``directory`` itself if asked), innermost
    first: a killed ``dockerd`` or a failed debootstrap leaves mounts that a removal must not follow.
    Lazy (``-l``): a mount still busy goes as soon as it is no longer used."""
    for mount in _mounts_under(directory, including_itself=including_itself):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _remove_engine_dir(root: Path) -> None:
    unmount_under(root, including_itself=True)
    # Only small files are left on disk now (the data root was on the tmpfs or elsewhere).
    shutil.rmtree(root, ignore_errors=True)


def remove_in_background(path: Path, progress: Progress = log_progress) -> None:
    """Move ``path`` into the cache's trash and delete it there in a process of its own: deleting
    gigabytes of small files takes minutes that no test run should wait for. Whatever a deletion
    leaves (e.g. killed at the end of a CI job) the next call deletes as well."""
    trash = cache_dir() / "docker-trash"
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(path, target)
    except OSError:
        target = path  # another filesystem: delete it where it is
    progress(f"removing {target} in the background")
    subprocess.Popen(
        ["rm", "-rf", "--one-file-system", "--", *sorted(str(p) for p in trash.iterdir()), str(target)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# ---------------------------------------------------------------------- orphaned engines


def _process_identity(pid: int) -> str:
    """``<pid> <start time>`` of a live process (a pid alone may be reused by another process later),
    ``<pid> ?`` when there is none (a zombie, killed but not yet reaped, is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
        if fields[0] not in ("Z", "X"):
            return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        pass
    return f"{pid} ?"


def _owner_alive(root: Path) -> bool:
    try:
        recorded = (root / OWNER_FILE).read_text(encoding="utf-8").strip()
        pid = int(recorded.split()[0])
    except (OSError, ValueError, IndexError):
        # No owner yet: an engine being set up right now, or one of a version without owners.
        return True
    return _process_identity(pid) == recorded


def reap_orphaned_engines(progress: Progress = log_progress, *, keep: Path | None = None) -> None:
    """Stop and remove the engines whose test process is gone (killed before it could stop them): their
    ``dockerd`` would run on, and a tmpfs would hold its memory until the machine restarts."""
    for root in sorted(ROOT_PARENT.glob(f"{ROOT_PREFIX}*")):
        if root == keep or not root.is_dir() or _owner_alive(root):
            continue
        progress(f"removing the orphaned private Docker engine {root}")
        with contextlib.suppress(OSError, ValueError):
            pid = int((root / "docker.pid").read_text(encoding="ascii").strip())
            if Path(f"/proc/{pid}/exe").resolve().name == "dockerd":
                _terminate(pid, 20.0)
        _remove_engine_dir(root)
        leftover = cache_dir() / "docker-data" / root.name
        if leftover.exists():
            unmount_under(leftover)
            remove_in_background(leftover, progress)


if __name__ == "__main__":
    sys.exit(check_main(sys.argv[1:], docker_problem, "es_framework.dev.docker_engine"))
