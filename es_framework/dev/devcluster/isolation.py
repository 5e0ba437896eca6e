"""What a simulated agent's Mesos containerizer accepts, by its ``--isolation`` (development tool, not for production).

A Mesos 1.12 agent runs the Mesos containerizer with the isolators its ``--isolation`` flag names
(default ``posix/cpu,posix/mem``: ``src/slave/flags.cpp``), completed by ``MesosContainerizer::create``
(``src/slave/containerizer/mesos/containerizer.cpp``): deprecated names are replaced (``process`` →
``posix/cpu,posix/mem``, ``cgroups`` → ``cgroups/cpu,cgroups/mem``, ``posix/disk`` → ``disk/du``), a
name given twice is an error, there is exactly one filesystem isolator (``filesystem/posix`` when none
is named; two are an error), and ``filesystem/linux`` brings ``volume/image``, ``volume/host_path`` and
``volume/sandbox_path`` with it. ``volume/host_path`` refuses to be created without ``filesystem/linux``
(``isolators/volume/host_path.cpp``), so such an agent never starts: :func:`isolators` raises for each
of these errors, as the agent would exit.

The isolators prepare a container in dependency order, the filesystem isolator first; the first
failure fails the launch, and the agent reports ``TASK_FAILED``, ``SOURCE_AGENT``,
``REASON_CONTAINER_LAUNCH_FAILED``, "Failed to launch container: <failure>" (``Slave::executorLaunched``
and ``Slave::sendExecutorTerminatedStatusUpdate`` in ``src/slave/slave.cpp``). Only an executor in a
``MESOS`` container (or in none) meets these isolators; a ``DOCKER`` one goes to the Docker
containerizer. What :func:`launch_failure`, :func:`unmounted_volumes` and :func:`as_launched` simulate:

- ``filesystem/posix`` (``isolators/filesystem/posix.cpp``, ``prepare``): a ContainerInfo with an image
  fails with "Container root filesystems not supported", one with any volume at all (a ``host_path``
  volume and a ``DOCKER_VOLUME`` source alike) with "Volumes in ContainerInfo is not supported". Without
  an image the executor sees the agent's own filesystem.
- ``filesystem/linux`` with ``volume/host_path`` (``isolators/volume/host_path.cpp``) mounts ``host_path``
  volumes; ``docker/volume`` (``isolators/docker/volume/isolator.cpp``) mounts ``DOCKER_VOLUME`` sources
  through dvdcli. Every other isolator skips a ``DOCKER_VOLUME`` source, so on an agent without
  ``docker/volume`` nothing is mounted and its container path stays a plain sandbox directory: the data
  would be lost with the sandbox. The executor backends are given the task without such volumes.
- ``posix/rlimits`` (``isolators/posix/rlimits.cpp``, ``prepare``) is the only isolator that reads
  ``ContainerInfo.rlimit_info``: it hands the limits to the launcher, which sets them on the executor
  before it execs it (``installResourceLimits`` in ``src/slave/containerizer/mesos/launch.cpp``;
  ``rlimits::set`` in ``src/posix/rlimits.cpp``: a limit with neither soft nor hard is unlimited, one
  with only one of them "Invalid rlimit values"; a limit that cannot be set fails the launch with
  "Failed to set <type> limit: <error>"). Without the isolator the field is ignored without a word, and
  no isolator refuses it. :func:`as_launched` leaves it out of the task the executor backend is given
  unless the agent runs ``posix/rlimits``; :func:`rlimits_of` reads what is left, and the process
  backend sets it on the executor it starts (:mod:`.rlimit_launch`).

Not simulated: launchers (``filesystem/linux`` needs ``--launcher=linux``), container images
(``--image_providers``), a ``host_path`` missing on the agent ("Path '…' in HOST_PATH volume does not
exist" unless ``--host_path_volume_force_creation``), isolator modules such as mesos-module-dvdi (its
``DVDI_VOLUME_*`` variables are honoured on every agent) and agents without the Mesos containerizer.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Mesos' ``--isolation`` default on Linux (``src/slave/flags.cpp``).
DEFAULT_ISOLATION = "posix/cpu,posix/mem"
#: How an agent that mounts external volumes for the Mesos containerizer (REX-Ray through dvdcli) runs.
DOCKER_VOLUME_ISOLATION = "filesystem/linux,docker/volume"

_DEPRECATED = {
    "process": ("posix/cpu", "posix/mem"),
    "cgroups": ("cgroups/cpu", "cgroups/mem"),
    "posix/disk": ("disk/du",),
}
#: What ``filesystem/linux`` always brings, "for backwards compatibility".
_WITH_FILESYSTEM_LINUX = ("volume/image", "volume/host_path", "volume/sandbox_path")

#: The isolator that applies ``ContainerInfo.rlimit_info``.
RLIMITS_ISOLATOR = "posix/rlimits"

LAUNCH_FAILED = "Failed to launch container: "
ROOTFS_NOT_SUPPORTED = "Container root filesystems not supported"
VOLUMES_NOT_SUPPORTED = "Volumes in ContainerInfo is not supported"


class IsolationError(ValueError):
    """An ``--isolation`` with which a Mesos agent would not start."""


def isolators(isolation: str) -> frozenset[str]:
    """The isolators a Mesos 1.12 agent started with ``--isolation=<isolation>`` runs."""
    names = [n.strip() for n in isolation.split(",") if n.strip()]
    if len(names) != len(set(names)):
        raise IsolationError(f"Duplicate entries found in --isolation flag '{isolation}'")
    out: set[str] = set()
    for name in names:
        out.update(_DEPRECATED.get(name, (name,)))
    filesystems = [n for n in out if n.startswith("filesystem/")]
    if not filesystems:
        out.add("filesystem/posix")
    elif len(filesystems) > 1:
        raise IsolationError("Using multiple filesystem isolators simultaneously is disallowed")
    if "volume/host_path" in out and "filesystem/linux" not in out:
        raise IsolationError("Failed to create isolator 'volume/host_path': 'filesystem/linux' isolator must be used")
    if "filesystem/linux" in out:
        out.update(_WITH_FILESYSTEM_LINUX)
    return frozenset(out)


def mesos_container(task_info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ContainerInfo the Mesos containerizer's isolators see for the task's executor (the task's
    own for a command task, which Mesos hands its command executor), or None when the executor runs
    in the Docker containerizer or has none."""
    executor = task_info.get("executor")
    container = (executor.get("container") if isinstance(executor, Mapping) else task_info.get("container")) or {}
    if not isinstance(container, Mapping) or not container or container.get("type") == "DOCKER":
        return None
    return container


def launch_failure(running: frozenset[str], task_info: Mapping[str, Any]) -> str | None:
    """Why an agent running ``running`` isolators fails to launch the task's container (the isolator's
    failure, without the agent's "Failed to launch container: " prefix), or None when it launches."""
    container = mesos_container(task_info)
    if container is None:
        return None
    if "filesystem/posix" in running:
        if (container.get("mesos") or {}).get("image"):
            return ROOTFS_NOT_SUPPORTED
        if container.get("volumes"):
            return VOLUMES_NOT_SUPPORTED
    return None


def _mounted(running: frozenset[str], volume: Mapping[str, Any]) -> bool:
    source = volume.get("source") or {}
    if source.get("type") == "DOCKER_VOLUME":
        return "docker/volume" in running
    return True


def unmounted_volumes(running: frozenset[str], task_info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The volumes of the task's container that no isolator of ``running`` mounts (Mesos skips them)."""
    container = mesos_container(task_info)
    if container is None:
        return []
    return [v for v in container.get("volumes") or [] if not _mounted(running, v)]


def as_mounted(running: frozenset[str], task_info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the task for the executor backend, without the volumes the agent does not mount."""
    out: dict[str, Any] = copy.deepcopy(dict(task_info))
    container = mesos_container(out)
    if container is not None and container.get("volumes"):
        assert isinstance(container, dict)
        container["volumes"] = [v for v in container["volumes"] if _mounted(running, v)]
    return out


def as_launched(running: frozenset[str], task_info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the task as the agent's isolators hand it to the executor backend: without the volumes
    no isolator mounts (:func:`as_mounted`) and, unless ``posix/rlimits`` runs, without ``rlimit_info``."""
    out = as_mounted(running, task_info)
    container = mesos_container(out)
    if container is not None and "rlimit_info" in container and RLIMITS_ISOLATOR not in running:
        assert isinstance(container, dict)
        del container["rlimit_info"]
    return out


def ignored_rlimits(running: frozenset[str], task_info: Mapping[str, Any]) -> bool:
    """Whether the task asks for limits that the agent, without ``posix/rlimits``, silently ignores."""
    container = mesos_container(task_info)
    return container is not None and bool(container.get("rlimit_info")) and RLIMITS_ISOLATOR not in running


def rlimits_of(task_info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``RLimitInfo.RLimit`` entries (``type``, optional ``soft`` and ``hard``) of the task's Mesos
    container, as given (none without ``rlimit_info``)."""
    container = mesos_container(task_info)
    limits = ((container or {}).get("rlimit_info") or {}).get("rlimits") or []
    return [dict(limit) for limit in limits if isinstance(limit, Mapping)]
