"""A private Docker engine for one test session (development tool).

:class:`DockerEngine` runs its own ``dockerd`` (Debian package ``docker.io``) with everything in a
fresh directory under ``/tmp``: data root, exec root, pid file, log (``dockerd.log``, the first place
to look when an image test fails) and the API socket. It never touches the machine's own engine or
``/var/run/docker.sock``, and leaves nothing behind when stopped.

The engine runs with host networking only (``--bridge=none``, no iptables): test machines may not
allow bridges or NAT, and the tests need neither (builds and containers use ``--network host``).
Storage is ``vfs``, which works on any filesystem, including inside another container; it copies
each layer in full, which is slow for big images but fine for ours. Builds use BuildKit (see
:func:`docker_client`): the classic builder would copy the whole image once per instruction.

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
import time
from pathlib import Path

from es_framework.dev.tool_check import check_main

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the Debian packages docker.io and debootstrap: "
    "apt-get install --no-install-recommends docker.io debootstrap"
)
#: A unix socket path must fit in ``sun_path`` (108 bytes with the NUL).
MAX_SOCKET_PATH = 107


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


class DockerCommandError(RuntimeError):
    """A ``docker`` command exited non-zero; the message carries its stderr."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"`{' '.join(args)}` exited with status {result.returncode}\n"
            f"--- stderr (last 6000 chars)\n{result.stderr[-6000:].strip()}\n"
            f"--- stdout (last 2000 chars)\n{result.stdout[-2000:].strip()}"
        )


class DockerEngine:
    """One ``dockerd`` in a directory of its own; :meth:`start` it, run :meth:`docker`, :meth:`stop` it."""

    def __init__(self, root: Path | None = None) -> None:
        # Short on purpose: the socket path must stay under 107 bytes.
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="esm-dkr-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise ValueError(f"socket path too long for a unix socket: {self.socket}")
        self.host = f"unix://{self.socket}"
        self.log_file = self.root / "dockerd.log"
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
            "--storage-driver=vfs",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--host={self.host}",
            f"--pidfile={self.root / 'docker.pid'}",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start ``dockerd`` and wait until ``docker version`` answers."""
        if self.running:
            return
        problem = docker_problem()
        if problem:
            raise RuntimeError(problem)
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            # Own session: a Ctrl-C in the test terminal must not reach dockerd before we clean up.
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        atexit.register(self.stop)  # never leave an engine behind, even when a test run is interrupted
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited with status {self._process.returncode}\n{self.log_tail()}")
            if self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                log.info("private Docker engine ready at %s", self.host)
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer on {self.host} within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Remove every container, stop ``dockerd`` (SIGTERM, then SIGKILL) and delete its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(Exception):
                ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    self.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root.exists():
            self._unmount_leftovers()
            shutil.rmtree(self.root, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        # A killed dockerd can leave mounts (netns, container rootfs) under its roots; rmtree
        # cannot delete through them. Innermost first.
        prefix = str(self.root) + "/"
        with contextlib.suppress(OSError):
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
            for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
                subprocess.run(["umount", "-l", mount], check=False, capture_output=True)

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


if __name__ == "__main__":
    sys.exit(check_main(sys.argv[1:], docker_problem, "es_framework.dev.docker_engine"))
