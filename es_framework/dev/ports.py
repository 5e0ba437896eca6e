"""Free TCP ports for development tools and tests, safe across parallel test processes (development tool)."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

#: Where :func:`free_port` keeps its reservations (one lock file per port).
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "esm-ports"
#: Ports :func:`free_port` hands out: below the kernel's default ephemeral range (32768-60999) and
#: below Mesos' default offer range 31000-32000, which local mode and the Docker tests use as is.
RESERVED_PORTS = range(20000, 31000)
_held_ports: dict[int, int] = {}  # port -> the fd whose lock reserves it for this process
_held_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and that no other test process will be handed.

    A port found by binding port 0 is free for anyone again as soon as the probe closes: a server
    started seconds later may find it taken by another test process that probed the same way
    (with pytest-xdist, several do at once), and a client that connects to it while nothing listens
    may get it as its own source port and connect to itself. So the port comes from
    :data:`RESERVED_PORTS`, where the kernel never picks ports for ``bind(0)`` or outgoing
    connections, and this process keeps it reserved (an ``flock`` on ``PORT_LOCK_DIR/<port>``) until
    it exits; other processes skip it. Without a usable lock directory: a port from ``bind(0)``."""
    try:
        PORT_LOCK_DIR.mkdir(mode=0o1777, parents=True, exist_ok=True)
    except OSError:
        return _kernel_port()
    first = random.randrange(len(RESERVED_PORTS))
    for offset in range(len(RESERVED_PORTS)):
        port = RESERVED_PORTS[(first + offset) % len(RESERVED_PORTS)]
        with _held_lock:
            if port in _held_ports or not _reserve(port):
                continue
        if _bindable(port):
            return port
    return _kernel_port()


def _reserve(port: int) -> bool:
    # Called with _held_lock held.
    try:
        fd = os.open(PORT_LOCK_DIR / str(port), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_ports[port] = fd  # never closed: closing would release the reservation
    return True


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False  # in use by something that does not take part in the reservations
    return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
