"""The test volume plugin: its protocol on the socket (no Docker), then a private dockerd using it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.volume_plugin import (
    DEFAULT_SOCKET_DIR,
    VolumePlugin,
    running_volume_plugin,
    shared_volume_plugin,
)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, the way dockerd talks to a legacy plugin."""

    def __init__(self, path: Path) -> None:
        super().__init__("plugin", timeout=5)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.unix_path)


def post(plugin: VolumePlugin, endpoint: str, body: object = None) -> tuple[int, dict[str, Any]]:
    conn = UnixHTTPConnection(plugin.socket_path)
    try:
        payload = b"null" if body is None else json.dumps(body).encode()
        conn.request(
            "POST", endpoint, body=payload, headers={"Content-Type": "application/vnd.docker.plugins.v1.2+json"}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[VolumePlugin]:
    # A private short socket directory: these tests need no Docker, and must not depend on root.
    socket_dir = Path(tempfile.mkdtemp(prefix="esmvp", dir="/tmp"))
    try:
        with running_volume_plugin(tmp_path / "storage", socket_dir=socket_dir) as running:
            yield running
    finally:
        for leftover in socket_dir.iterdir():
            leftover.unlink()
        socket_dir.rmdir()


def test_activate_capabilities_and_create_get_list_path_remove(plugin: VolumePlugin) -> None:
    assert post(plugin, "/Plugin.Activate") == (200, {"Implements": ["VolumeDriver"]})
    assert post(plugin, "/VolumeDriver.Capabilities") == (200, {"Capabilities": {"Scope": "global"}})

    status, answer = post(plugin, "/VolumeDriver.Create", {"Name": "es1data", "Opts": {"size": "5", "iops": "150"}})
    assert (status, answer["Err"]) == (200, "")
    assert plugin.options("es1data") == {"size": "5", "iops": "150"}
    assert plugin.volume_path("es1data").is_dir()
    assert not plugin.created_on_mount("es1data")

    _, got = post(plugin, "/VolumeDriver.Get", {"Name": "es1data"})
    assert got["Err"] == ""
    assert got["Volume"]["Name"] == "es1data"
    assert got["Volume"]["Mountpoint"] == ""  # not attached: no mount point, like block storage
    assert got["Volume"]["Status"]["opts"] == {"size": "5", "iops": "150"}
    _, listed = post(plugin, "/VolumeDriver.List")
    assert [v["Name"] for v in listed["Volumes"]] == ["es1data"]
    assert post(plugin, "/VolumeDriver.Path", {"Name": "es1data"})[1] == {"Mountpoint": "", "Err": ""}

    _, missing = post(plugin, "/VolumeDriver.Get", {"Name": "nope"})
    assert "not found" in missing["Err"]

    assert post(plugin, "/VolumeDriver.Remove", {"Name": "es1data"})[1] == {"Err": ""}
    assert not plugin.volume_path("es1data").exists()
    assert plugin.volume_names() == []
    assert [c.method for c in plugin.calls("es1data")] == ["Create", "Get", "Path", "Remove"]
    assert all(c.ok for c in plugin.calls("es1data"))
    assert not plugin.calls("nope")[0].ok


def test_second_attachment_is_refused_and_unmount_frees_the_volume(plugin: VolumePlugin) -> None:
    post(plugin, "/VolumeDriver.Create", {"Name": "es2data", "Opts": {}})
    _, first = post(plugin, "/VolumeDriver.Mount", {"Name": "es2data", "ID": "container-a"})
    assert first == {"Mountpoint": str(plugin.volume_path("es2data")), "Err": ""}
    assert plugin.attachments("es2data") == ["container-a"]
    assert post(plugin, "/VolumeDriver.Path", {"Name": "es2data"})[1]["Mountpoint"] == first["Mountpoint"]

    _, second = post(plugin, "/VolumeDriver.Mount", {"Name": "es2data", "ID": "container-b"})
    assert "attached to another instance" in second["Err"]
    assert "container-a" in second["Err"]
    assert plugin.attachments("es2data") == ["container-a"]

    _, removed = post(plugin, "/VolumeDriver.Remove", {"Name": "es2data"})
    assert "attached" in removed["Err"]
    assert plugin.volume_path("es2data").is_dir()

    assert post(plugin, "/VolumeDriver.Unmount", {"Name": "es2data", "ID": "container-a"})[1] == {"Err": ""}
    assert plugin.attachments("es2data") == []
    assert post(plugin, "/VolumeDriver.Mount", {"Name": "es2data", "ID": "container-b"})[1]["Err"] == ""
    assert plugin.attachments("es2data") == ["container-b"]
    assert plugin.max_concurrent_attachments("es2data") == 1
    mounts = plugin.calls("es2data", "Mount")
    assert [(c.id, c.ok) for c in mounts] == [("container-a", True), ("container-b", False), ("container-b", True)]
    assert plugin.preemptions() == []


def test_mount_of_unknown_volume_creates_it(plugin: VolumePlugin) -> None:
    _, answer = post(plugin, "/VolumeDriver.Mount", {"Name": "es3config", "ID": "c1"})
    assert answer["Err"] == ""
    assert plugin.created_on_mount("es3config")
    assert plugin.options("es3config") == {}
    (mount,) = plugin.calls("es3config", "Mount")
    assert mount.note == "created on first mount"
    assert plugin.calls(method="Create") == []


@pytest.mark.parametrize("how", ["plugin switch", "volume option"])
def test_preemption_force_releases_the_old_attachment(plugin: VolumePlugin, how: str) -> None:
    if how == "plugin switch":
        plugin.preempt = True
        post(plugin, "/VolumeDriver.Create", {"Name": "v", "Opts": {}})
    else:
        post(plugin, "/VolumeDriver.Create", {"Name": "v", "Opts": {"preempt": "true"}})
    post(plugin, "/VolumeDriver.Mount", {"Name": "v", "ID": "old"})
    assert post(plugin, "/VolumeDriver.Mount", {"Name": "v", "ID": "new"})[1]["Err"] == ""
    assert plugin.attachments("v") == ["new"]
    (preemption,) = plugin.preemptions("v")
    assert (preemption.released_id, preemption.by_id) == ("old", "new")
    assert plugin.calls("v", "Mount")[-1].note == "preempted old"
    # The preempted holder's own unmount later finds nothing to release, and takes nothing from "new".
    assert post(plugin, "/VolumeDriver.Unmount", {"Name": "v", "ID": "old"})[1] == {"Err": ""}
    assert plugin.attachments("v") == ["new"]
    assert plugin.max_concurrent_attachments("v") == 1


def test_concurrent_mounts_let_exactly_one_in(plugin: VolumePlugin) -> None:
    post(plugin, "/VolumeDriver.Create", {"Name": "race", "Opts": {}})
    answers: list[str] = []
    lock = threading.Lock()

    def mount(mount_id: str) -> None:
        err = post(plugin, "/VolumeDriver.Mount", {"Name": "race", "ID": mount_id})[1]["Err"]
        with lock:
            answers.append(err)

    threads = [threading.Thread(target=mount, args=(f"c{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a == "" for a in answers) == [False] * 7 + [True]
    assert len(plugin.attachments("race")) == 1
    assert plugin.max_concurrent_attachments("race") == 1


def test_malformed_and_unknown_calls(plugin: VolumePlugin) -> None:
    conn = UnixHTTPConnection(plugin.socket_path)
    try:
        conn.request("POST", "/VolumeDriver.Create", body=b"{not json")
        response = conn.getresponse()
        assert response.status == 400
        assert "malformed" in json.loads(response.read())["Err"]
    finally:
        conn.close()
    assert post(plugin, "/Nothing.Here", {})[0] == 404
    assert "Name is required" in post(plugin, "/VolumeDriver.Mount", {"ID": "x"})[1]["Err"]
    assert "ID is required" in post(plugin, "/VolumeDriver.Mount", {"Name": "y"})[1]["Err"]
    assert "unsupported" in post(plugin, "/VolumeDriver.Frobnicate", {"Name": "y"})[1]["Err"]


def test_reset_gives_empty_storage_behind_the_same_socket(plugin: VolumePlugin) -> None:
    post(plugin, "/VolumeDriver.Create", {"Name": "kept", "Opts": {"preempt": "true"}})
    post(plugin, "/VolumeDriver.Mount", {"Name": "kept", "ID": "a"})
    post(plugin, "/VolumeDriver.Mount", {"Name": "kept", "ID": "b"})
    plugin.preempt = True
    path = plugin.volume_path("kept")
    plugin.reset()
    assert not path.exists()
    assert (plugin.volume_names(), plugin.calls(), plugin.preemptions(), plugin.preempt) == ([], [], [], False)
    # What dockerd asks about a volume it still remembers: "not found", so it drops it and creates anew.
    assert "not found" in post(plugin, "/VolumeDriver.Get", {"Name": "kept"})[1]["Err"]
    assert post(plugin, "/VolumeDriver.Create", {"Name": "kept", "Opts": {}})[1] == {"Err": ""}
    assert plugin.attachments("kept") == []


def test_the_shared_plugin_is_one_per_process_where_docker_looks() -> None:
    plugin = shared_volume_plugin()
    assert shared_volume_plugin() is plugin
    assert plugin.name == f"esmtest{os.getpid()}"
    assert plugin.socket_path.is_socket()
    if os.geteuid() == 0:
        assert plugin.socket_path.parent == DEFAULT_SOCKET_DIR
    assert post(plugin, "/Plugin.Activate")[1] == {"Implements": ["VolumeDriver"]}


def test_stop_removes_the_socket(tmp_path: Path) -> None:
    socket_dir = Path(tempfile.mkdtemp(prefix="esmvp", dir="/tmp"))
    try:
        with running_volume_plugin(tmp_path / "s", socket_dir=socket_dir) as plugin:
            assert plugin.socket_path.is_socket()
            assert plugin.name.startswith("esmtest")
        assert not plugin.socket_path.exists()
    finally:
        socket_dir.rmdir()


# ---------------------------------------------------------------------- with a real dockerd


@pytest.fixture
def docker_plugin() -> Iterator[VolumePlugin]:
    """What the ``volume_plugin`` fixture gives a test: the session's plugin, reset."""
    plugin = shared_volume_plugin()
    plugin.reset()
    yield plugin
    plugin.reset()


@pytest.mark.docker
def test_docker_reaches_the_plugin_and_a_second_container_is_refused(
    docker_engine: Any, standin_image: Callable[[int], str], docker_plugin: VolumePlugin
) -> None:
    image = standin_image(8)
    driver = docker_plugin.name
    names: list[str] = []

    def run(name: str, *args: str, check: bool = True) -> Any:
        names.append(name)
        return docker_engine.docker("run", "-d", "--name", name, "--network", "host", *args, check=check)

    try:
        # The Mesos way with docker.parameters: --volume-driver + -v.
        run(f"{driver}-a", f"--volume-driver={driver}", "-v", "esdata1:/data", image, "sleep", "300")
        assert docker_plugin.attachments("esdata1") and len(docker_plugin.attachments("esdata1")) == 1
        # The --mount way, which carries per-volume options to the driver.
        mount = f"type=volume,source=esconf1,target=/conf,volume-driver={driver},volume-opt=size=5"
        run(f"{driver}-b", "--mount", mount, image, "sleep", "300")
        (create,) = docker_plugin.calls("esconf1", "Create")
        assert create.opts == {"size": "5"}
        assert len(docker_plugin.attachments("esconf1")) == 1

        # A second container on a volume another one holds must not start.
        refused = run(f"{driver}-c", f"--volume-driver={driver}", "-v", "esdata1:/data", image, "true", check=False)
        assert refused.returncode != 0
        assert "attached to another instance" in refused.stderr
        assert docker_plugin.max_concurrent_attachments("esdata1") == 1

        # Stopping the holder unmounts; then the next one attaches.
        docker_engine.docker("stop", "-t", "0", f"{driver}-a")
        assert docker_plugin.attachments("esdata1") == []
        run(f"{driver}-d", f"--volume-driver={driver}", "-v", "esdata1:/data", image, "sleep", "300")
        assert len(docker_plugin.attachments("esdata1")) == 1
        methods = [c.method for c in docker_plugin.calls("esdata1") if c.method in {"Mount", "Unmount"} and c.ok]
        assert methods == ["Mount", "Unmount", "Mount"]
        assert docker_plugin.max_concurrent_attachments("esdata1") == 1
    finally:
        docker_engine.docker("rm", "-f", *names, check=False)
    assert docker_plugin.attachments("esdata1") == []
    assert docker_plugin.attachments("esconf1") == []


@pytest.mark.docker
def test_docker_forgets_volumes_of_a_reset_plugin(
    docker_engine: Any, standin_image: Callable[[int], str], docker_plugin: VolumePlugin
) -> None:
    """What lets tests share one plugin: after a reset, the same volume name is created afresh."""
    image = standin_image(8)
    driver = docker_plugin.name
    mount = f"type=volume,source=reused,target=/data,volume-driver={driver}"
    docker_engine.docker("run", "--rm", "--network", "host", "--mount", mount + ",volume-opt=size=1", image, "true")
    assert docker_plugin.options("reused") == {"size": "1"}
    docker_plugin.reset()
    docker_engine.docker("run", "--rm", "--network", "host", "--mount", mount + ",volume-opt=size=7", image, "true")
    assert docker_plugin.options("reused") == {"size": "7"}
    assert [c.method for c in docker_plugin.calls("reused") if c.method in {"Create", "Mount", "Unmount"}] == [
        "Create",
        "Mount",
        "Unmount",
    ]
