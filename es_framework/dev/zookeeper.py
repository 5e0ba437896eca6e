"""A real, throwaway ZooKeeper for tests: the Debian package ``zookeeper`` (3.8), run with ``java``.

:class:`ZooKeeperServer` runs one standalone server on 127.0.0.1 and a free port, with its
``zoo.cfg``, data and log (``zookeeper.log``, the first place to look when a test fails) in a
directory of its own. It can be stopped and started again on the same port with the same data, to
simulate an outage (:meth:`ZooKeeperServer.outage`). Note that a session survives an outage of
any length when its client reconnects within the session timeout *after the restart* (the
server restores sessions from its data and restarts their clocks), exactly as in production; to
make a session expire, use :func:`expire_session`.

The classpath is narrowed on purpose: ``/usr/share/java/*`` holds several SLF4J bindings, so
SLF4J would pick none and ZooKeeper would log nothing. ``zookeeper.jar`` names its own
dependencies in its manifest (``Class-Path``); we add exactly one binding, ``slf4j-log4j12``, and
``log4j-1.2`` with a ``log4j.properties`` that writes to the work directory.

``python -m es_framework.dev.zookeeper --check`` exits 1 with the reason when ZooKeeper cannot run here
(``scripts/test.sh`` uses it to decide whether to install the package).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from es_framework.dev.ports import free_port
from es_framework.dev.tool_check import check_main

JAVA_DIR = Path("/usr/share/java")
#: The jars we put on the classpath: ZooKeeper (its manifest lists the rest) and one SLF4J binding.
JARS = ("zookeeper.jar", "slf4j-log4j12.jar", "log4j-1.2.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
INSTALL_HINT = "install the Debian package zookeeper: apt-get install --no-install-recommends zookeeper"

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File={log}
log4j.appender.FILE.Append=true
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t:%C{{1}}@%L] - %m%n
"""


def zookeeper_problem() -> str | None:
    """Why ZooKeeper cannot run on this machine, or ``None`` when it can."""
    missing = [str(JAVA_DIR / jar) for jar in JARS if not (JAVA_DIR / jar).is_file()]
    if missing:
        return f"ZooKeeper is not installed ({', '.join(missing)} missing); {INSTALL_HINT}"
    if shutil.which("java") is None:
        return f"java is not on PATH; {INSTALL_HINT} (it depends on default-jre)"
    return None


def in_ci() -> bool:
    """``CI`` is set (as CI services do): a test that cannot get ZooKeeper must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """Send a four-letter command (``srvr``, ``ruok``) and return the answer, ``""`` on any error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode("ascii"))
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


class ZooKeeperServer:
    """One standalone ZooKeeper in ``workdir`` (``zoo.cfg``, ``data/``, ``zookeeper.log``)."""

    def __init__(
        self, workdir: Path, port: int | None = None, tick_time_ms: int = 500, max_session_timeout_ms: int | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.tick_time_ms = tick_time_ms
        #: ZooKeeper's ceiling on a session's timeout (None: its default, 20 ticks).
        self.max_session_timeout_ms = max_session_timeout_ms
        self.data_dir = workdir / "data"
        self.log_file = workdir / "zookeeper.log"
        self.config_file = workdir / "zoo.cfg"
        self._process: subprocess.Popen[bytes] | None = None
        self._console = workdir / "console.log"

    @property
    def hosts(self) -> str:
        """The connection string, ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"zk://{self.hosts}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Sessions may last 2..20 ticks: 1 s to 10 s with the default 500 ms tick.
        self.config_file.write_text(
            f"tickTime={self.tick_time_ms}\n"
            f"dataDir={self.data_dir}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=srvr,ruok\n"
            "maxClientCnxns=0\n"
            + (f"maxSessionTimeout={self.max_session_timeout_ms}\n" if self.max_session_timeout_ms else ""),
            encoding="utf-8",
        )
        (self.workdir / "log4j.properties").write_text(LOG4J_PROPERTIES.format(log=self.log_file), encoding="utf-8")

    def command(self) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            "-Xmx256m",
            f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            ":".join(str(JAVA_DIR / jar) for jar in JARS),
            MAIN_CLASS,
            str(self.config_file),
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (same port, same data as before) and wait until it serves requests."""
        if self.running:
            return
        problem = zookeeper_problem()
        if problem:
            raise RuntimeError(problem)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with self._console.open("ab") as console:
            self._process = subprocess.Popen(
                self.command(), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=console, stderr=console
            )
        atexit.register(self.stop)  # never leave a server behind, even when a test run is interrupted
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with status {self._process.returncode}\n{self.log_tail()}")
            if "Mode: standalone" in four_letter_word(self.port, "srvr"):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not answer on {self.hosts} within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds. Data stays in place."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def outage(self, seconds: float = 0.0) -> Iterator[None]:
        """ZooKeeper is down inside the block (at least ``seconds`` long) and up again after it."""
        self.stop()
        started = time.monotonic()
        try:
            yield
        finally:
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            self.start()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log and console output, for failure messages."""
        out = []
        for path in (self.log_file, self._console):
            if path.is_file():
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out) or f"(no log in {self.workdir})"


def expire_session(hosts: str, session_id: int, password: bytes) -> None:
    """End a client's session on the server, as a partition longer than the session timeout would
    (stopping the server does not: a restarted server restores sessions). A second client attaches
    to the same session and closes it; the first then sees ``LOST`` and starts a new session."""
    from kazoo.client import KazooClient  # noqa: PLC0415 - only the session-expiry helper needs a client

    other = KazooClient(hosts, client_id=(session_id, password))
    other.start(10)
    other.stop()
    other.close()


if __name__ == "__main__":
    sys.exit(check_main(sys.argv[1:], zookeeper_problem, "es_framework.dev.zookeeper"))
