"""A Docker volume plugin that behaves like external block storage (test tool, not for production).

:class:`VolumePlugin` serves Docker's legacy volume plugin protocol (facts.md §2: HTTP POST with JSON
bodies, ``/Plugin.Activate`` and ``/VolumeDriver.*``) on a unix socket, from a thread of the test
process, so a private ``dockerd`` (``es_framework.dev.docker_engine``) can mount its volumes with
``--volume-driver=<name>`` or ``--mount type=volume,…,volume-driver=<name>``. Docker finds legacy
plugins by name as ``/run/docker/plugins/<name>.sock``; that directory is fixed in moby's
``pkg/plugins`` (``defaultSocketsPath``) and does not follow ``--exec-root``, so a private engine
discovers the plugin there too.

It behaves the way REX-Ray does with a block-storage backend, which is what the framework's
fencing has to survive:

- a volume is a directory ``<root>/volumes/<name>``; ``Create`` records its ``Opts``; ``Get``,
  ``List``, ``Path``, ``Capabilities`` (scope ``global``: every agent sees the same volumes) work as
  in Docker's protocol; ``Remove`` is refused while the volume is attached;
- every ``Mount`` ``ID`` counts as an attachment, and a volume attached to one ID **refuses** a
  second one ("volume is attached to another instance"), unless preemption is on (the plugin's
  ``preempt`` switch, or ``preempt=true`` among the volume's options): then the old attachment is
  force-released, "equivalent to a power off" of its holder, and recorded in :meth:`preemptions`;
- a ``Mount`` of a volume never created creates it (REX-Ray creates on first mount) and says so in
  the call's ``note``; ``Unmount`` releases its ID.

Every call is recorded (:class:`PluginCall`: time, method, volume name, mount ID, options, result)
so tests can assert on the storage's view of the world: :meth:`VolumePlugin.calls`,
:meth:`~VolumePlugin.attachments`, :meth:`~VolumePlugin.max_concurrent_attachments` ("unmounted
before mounted again, never two attachments"). :meth:`VolumePlugin.handle` answers one call without
any socket, for tests of the behaviour alone.

Tests that run containers share one plugin per test process (:func:`shared_volume_plugin`, name
``esmtest<pid>``; why one name: see there): the ``volume_plugin`` fixture gives it to a test, reset to
empty storage, and ``volume_plugin_server`` (session scope) stops it and removes its socket at the
end. ``running_volume_plugin`` runs a private instance of another name, for tests of the plugin.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import shutil
import socketserver
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

logger = logging.getLogger(__name__)

#: Where Docker looks for legacy plugin sockets (moby pkg/plugins: ``defaultSocketsPath``).
DEFAULT_SOCKET_DIR = Path("/run/docker/plugins")
#: What Docker sends and expects (``application/vnd.docker.plugins.v1.x+json``).
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
#: A unix socket path must fit in ``sun_path`` (108 bytes with the NUL).
MAX_SOCKET_PATH = 107
TRUE_WORDS = frozenset({"true", "yes", "1", "on"})

_PER_VOLUME_METHODS = frozenset({"Create", "Mount", "Unmount", "Path", "Get", "Remove"})
_instances = itertools.count(1)


@dataclass(frozen=True)
class PluginCall:
    """One protocol call as the plugin saw it."""

    seq: int
    time: float
    method: str  # "Create", "Mount", … (the part after "VolumeDriver." or "Plugin.")
    name: str | None
    id: str | None
    opts: Mapping[str, str]
    #: ``"ok"`` or the ``Err`` the plugin answered.
    result: str
    #: What else happened: "created on first mount", "preempted <id>", "already exists", …
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass(frozen=True)
class Preemption:
    """A forced release: ``released_id`` lost the volume to ``by_id``."""

    time: float
    name: str
    released_id: str
    by_id: str


@dataclass
class _Volume:
    name: str
    path: Path
    opts: dict[str, str]
    created_on_mount: bool
    attachments: list[str] = field(default_factory=list)
    high_water: int = 0


class VolumePluginError(Exception):
    """A call the plugin refuses; its text becomes the protocol's ``Err``."""


class VolumePlugin:
    """See the module docstring. ``start()`` serves it, ``stop()`` removes the socket."""

    def __init__(
        self,
        root: Path,
        *,
        name: str | None = None,
        socket_dir: Path = DEFAULT_SOCKET_DIR,
        preempt: bool = False,
        volume_mode: int = 0o755,
    ) -> None:
        self.name = name or f"esmtest{os.getpid()}x{next(_instances)}"
        self.root = Path(root)
        self.socket_path = Path(socket_dir) / f"{self.name}.sock"
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(f"socket path too long for a unix socket: {self.socket_path}")
        #: Plugin-level preemption (REX-Ray's ``preempt: true``); a volume's ``preempt=true`` option also enables it.
        self.preempt = preempt
        #: Mode of a fresh volume's directory: like a freshly formatted filesystem, root's and 0755 by
        #: default, so whoever runs as uid 1000 in the container has to prepare it (as on real storage).
        self.volume_mode = volume_mode
        self._lock = threading.Lock()
        self._volumes: dict[str, _Volume] = {}
        self._calls: list[PluginCall] = []
        self._preemptions: list[Preemption] = []
        self._seq = itertools.count(1)
        self._server: _UnixHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> VolumePlugin:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a stale socket of a crashed run with the same name
        server = _UnixHTTPServer(str(self.socket_path), _Handler)
        server.plugin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"volume-plugin-{self.name}", daemon=True
        )
        self._thread.start()
        logger.info("volume plugin %s serving on %s (volumes in %s)", self.name, self.socket_path, self.root)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def __enter__(self) -> VolumePlugin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what tests look at

    def calls(self, name: str | None = None, method: str | None = None) -> list[PluginCall]:
        """Recorded calls, oldest first, optionally only those about volume ``name`` / of ``method``."""
        with self._lock:
            return [
                c for c in self._calls if (name is None or c.name == name) and (method is None or c.method == method)
            ]

    def attachments(self, name: str) -> list[str]:
        """The mount IDs holding volume ``name`` now (empty if none or unknown)."""
        with self._lock:
            volume = self._volumes.get(name)
            return list(volume.attachments) if volume else []

    def max_concurrent_attachments(self, name: str) -> int:
        """The most IDs that ever held volume ``name`` at once (1 means never shared)."""
        with self._lock:
            volume = self._volumes.get(name)
            return volume.high_water if volume else 0

    def preemptions(self, name: str | None = None) -> list[Preemption]:
        with self._lock:
            return [p for p in self._preemptions if name is None or p.name == name]

    def volume_names(self) -> list[str]:
        with self._lock:
            return sorted(self._volumes)

    def options(self, name: str) -> dict[str, str]:
        """The options volume ``name`` was created with (``KeyError`` if it does not exist)."""
        with self._lock:
            return dict(self._volumes[name].opts)

    def created_on_mount(self, name: str) -> bool:
        with self._lock:
            return self._volumes[name].created_on_mount

    def volume_path(self, name: str) -> Path:
        """Where volume ``name``'s content lives on this machine (whether or not it exists yet)."""
        return self.root / "volumes" / name

    def reset(self) -> None:
        """Forget every volume (their content too), call and preemption, and turn preemption off: a
        fresh storage backend behind the same plugin name. Docker's own references to the old
        volumes are harmless: it asks ``Get``, hears "not found", drops them and calls ``Create``."""
        with self._lock:
            for volume in self._volumes.values():
                shutil.rmtree(volume.path, ignore_errors=True)
            self._volumes.clear()
            self._calls.clear()
            self._preemptions.clear()
            self.preempt = False

    # ------------------------------------------------------------------ the protocol

    def handle(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one call (``path`` like ``/VolumeDriver.Mount``); never raises for a refused call,
        which is answered with ``Err`` like any plugin does."""
        method = path.rsplit(".", 1)[-1] if path.startswith(("/VolumeDriver.", "/Plugin.")) else path
        name = body.get("Name")
        mount_id = body.get("ID")
        opts = {str(k): str(v) for k, v in (body.get("Opts") or {}).items()}
        with self._lock:
            note = ""
            try:
                answer, note = self._answer(method, name if isinstance(name, str) else None, mount_id, opts)
                result = "ok"
            except VolumePluginError as error:
                answer, result = {"Err": str(error)}, str(error)
            self._calls.append(
                PluginCall(
                    seq=next(self._seq),
                    time=time.time(),
                    method=method,
                    name=name if isinstance(name, str) else None,
                    id=mount_id if isinstance(mount_id, str) else None,
                    opts=opts,
                    result=result,
                    note=note,
                )
            )
        # dockerd probes with Get before it creates: "not found" there is routine, not a warning.
        level = logging.INFO if result == "ok" or method == "Get" else logging.WARNING
        logger.log(level, "volume plugin %s: %s %s %s -> %s %s", self.name, method, name, mount_id or "", result, note)
        return answer

    def _answer(self, method: str, name: str | None, mount_id: Any, opts: dict[str, str]) -> tuple[dict[str, Any], str]:
        # Called with the lock held.
        if method == "Activate":
            return {"Implements": ["VolumeDriver"]}, ""
        if method == "Capabilities":
            return {"Capabilities": {"Scope": "global"}}, ""
        if method == "List":
            return {
                "Volumes": [{"Name": v.name, "Mountpoint": self._mountpoint(v)} for v in self._volumes.values()],
                "Err": "",
            }, ""
        if method not in _PER_VOLUME_METHODS:
            raise VolumePluginError(f"unsupported call {method}")
        if not name:
            raise VolumePluginError(f"{method}: a volume Name is required")
        volume = self._volumes.get(name)
        if method == "Create":
            if volume is not None:
                return {"Err": ""}, "already exists"
            self._create(name, opts, on_mount=False)
            return {"Err": ""}, ""
        if method == "Mount":
            if not isinstance(mount_id, str) or not mount_id:
                raise VolumePluginError(f"Mount of {name}: an ID is required")
            note = ""
            if volume is None:
                volume = self._create(name, {}, on_mount=True)
                note = "created on first mount"
            if mount_id not in volume.attachments:
                holders = list(volume.attachments)
                if holders:
                    if not (self.preempt or volume.opts.get("preempt", "").lower() in TRUE_WORDS):
                        raise VolumePluginError(
                            f"volume {name} is attached to another instance ({', '.join(holders)}); preemption is off"
                        )
                    now = time.time()
                    for holder in holders:
                        self._preemptions.append(Preemption(now, name, holder, mount_id))
                    volume.attachments.clear()
                    note = ", ".join(filter(None, [note, f"preempted {', '.join(holders)}"]))
                volume.attachments.append(mount_id)
                volume.high_water = max(volume.high_water, len(volume.attachments))
            return {"Mountpoint": str(volume.path), "Err": ""}, note
        if volume is None:
            raise VolumePluginError(f"volume {name} not found")
        if method == "Unmount":
            if mount_id in volume.attachments:
                volume.attachments.remove(mount_id)
                return {"Err": ""}, ""
            # Docker unmounting an attachment it lost to preemption: nothing left to release.
            return {"Err": ""}, "not attached"
        if method == "Path":
            return {"Mountpoint": self._mountpoint(volume), "Err": ""}, ""
        if method == "Get":
            return {
                "Volume": {
                    "Name": volume.name,
                    "Mountpoint": self._mountpoint(volume),
                    "Status": {"opts": dict(volume.opts), "attachments": list(volume.attachments)},
                },
                "Err": "",
            }, ""
        if method == "Remove":
            if volume.attachments:
                raise VolumePluginError(
                    f"volume {name} is attached ({', '.join(volume.attachments)}) and cannot be removed"
                )
            shutil.rmtree(volume.path, ignore_errors=True)
            del self._volumes[name]
            return {"Err": ""}, ""
        raise AssertionError(f"unhandled {method}")  # _PER_VOLUME_METHODS and the branches above disagree

    def _create(self, name: str, opts: dict[str, str], *, on_mount: bool) -> _Volume:
        if "/" in name or name in {".", ".."}:
            raise VolumePluginError(f"invalid volume name {name!r}")
        path = self.volume_path(name)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(self.volume_mode)
        volume = _Volume(name=name, path=path, opts=opts, created_on_mount=on_mount)
        self._volumes[name] = volume
        return volume

    @staticmethod
    def _mountpoint(volume: _Volume) -> str:
        # Block storage has a mount point only while attached (REX-Ray answers the same way).
        return str(volume.path) if volume.attachments else ""


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    #: The listen backlog. socketserver's default of 5 is below what a dockerd starting several
    #: containers (or a test racing mounts) connects at once, and a unix socket whose backlog is full
    #: does not queue a non-blocking client (Go's dialer; Python's socket with a timeout): its connect
    #: fails at once with EAGAIN (BlockingIOError).
    request_queue_size = 128
    plugin: VolumePlugin


class _Handler(BaseHTTPRequestHandler):
    server: _UnixHTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            # Docker sends ``null`` (or nothing) for calls without arguments.
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError) as error:
            self._send(400, {"Err": f"malformed request body: {error}"})
            return
        if not self.path.startswith(("/VolumeDriver.", "/Plugin.")):
            self._send(404, {"Err": f"unknown endpoint {self.path}"})
            return
        self._send(200, self.server.plugin.handle(self.path, body if isinstance(body, dict) else {}))

    def _send(self, status: int, document: Mapping[str, Any]) -> None:
        payload = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def address_string(self) -> str:
        return "docker"  # a unix socket peer has no address

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("volume plugin http: " + format, *args)


def plugin_socket_dir() -> Path:
    """Docker's plugin directory when this process may create sockets there (root), else a fresh
    short temporary directory (Docker will not find the plugin there; the protocol still works)."""
    try:
        DEFAULT_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        if os.access(DEFAULT_SOCKET_DIR, os.W_OK | os.X_OK):
            return DEFAULT_SOCKET_DIR
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="esmvp", dir="/tmp"))


@contextlib.contextmanager
def running_volume_plugin(
    root: Path, *, socket_dir: Path | None = None, preempt: bool = False
) -> Iterator[VolumePlugin]:
    """A started :class:`VolumePlugin` of its own name keeping its volumes in ``root``; stopped
    (socket removed) on exit. For tests of the plugin itself: tests that run containers use
    :func:`shared_volume_plugin` (see there why)."""
    directory = socket_dir if socket_dir is not None else plugin_socket_dir()
    plugin = VolumePlugin(root, socket_dir=directory, preempt=preempt).start()
    try:
        yield plugin
    finally:
        plugin.stop()
        if directory != DEFAULT_SOCKET_DIR and socket_dir is None:
            shutil.rmtree(directory, ignore_errors=True)


#: The shared plugin, under key "plugin" while it runs.
_shared: dict[str, VolumePlugin] = {}
_shared_lock = threading.Lock()


def shared_volume_plugin() -> VolumePlugin:
    """The one plugin of this test process (``esmtest<pid>``), started on first use and stopped at
    exit (or by :func:`stop_shared_volume_plugin`).

    One name per session on purpose: a ``dockerd`` remembers which driver each volume name belongs
    to, and a later plugin under another name would meet those references (Docker then waits ~30 s
    for the vanished driver and refuses the name as a conflict). Tests share it and :meth:`~VolumePlugin.reset`
    it instead."""
    with _shared_lock:
        if "plugin" not in _shared:
            root = Path(tempfile.mkdtemp(prefix="esm-volumes-", dir="/tmp"))
            plugin = VolumePlugin(root, name=f"esmtest{os.getpid()}", socket_dir=plugin_socket_dir())
            _shared["plugin"] = plugin.start()
            atexit.register(stop_shared_volume_plugin)
        return _shared["plugin"]


def stop_shared_volume_plugin() -> None:
    """Stop the shared plugin: its socket and its volumes' directory go."""
    with _shared_lock:
        plugin = _shared.pop("plugin", None)
    if plugin is not None:
        plugin.stop()
        shutil.rmtree(plugin.root, ignore_errors=True)
        if plugin.socket_path.parent != DEFAULT_SOCKET_DIR:
            shutil.rmtree(plugin.socket_path.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def volume_plugin_server() -> Iterator[VolumePlugin]:
    """The session's :func:`shared_volume_plugin`, stopped (socket removed) when the session ends."""
    yield shared_volume_plugin()
    stop_shared_volume_plugin()


@pytest.fixture
def volume_plugin(volume_plugin_server: VolumePlugin) -> Iterator[VolumePlugin]:
    """The session's volume plugin, :meth:`~VolumePlugin.reset` before and after the test: empty
    storage, no calls recorded, preemption off. Its ``name`` is the ``--volume-driver``. Remove the
    test's containers before the test ends: the reset deletes the volumes under them."""
    volume_plugin_server.reset()
    yield volume_plugin_server
    volume_plugin_server.reset()
