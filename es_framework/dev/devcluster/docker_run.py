"""The ``docker run`` command line of Mesos' Docker containerizer (development tool, not for production).

:func:`docker_run_argv` is pure: it builds the ``docker run`` arguments that start a task's
``DOCKER`` executor the way Mesos' ``Docker::RunOptions::create`` builds them (read in Mesos'
``src/docker/docker.cpp``):

- ``--cpu-shares`` (1024 per cpu) and ``--memory`` (at least 32 MB) from the resources of the
  task and its executor (``limit_resources=False`` leaves them out);
- ``-e`` for the agent's executor environment (``LIBPROCESS_IP``, the agent's
  ``--executor_environment_variables``, ``MESOS_AGENT_ENDPOINT``, ``MESOS_FRAMEWORK_ID``,
  ``MESOS_EXECUTOR_ID``, ``MESOS_DIRECTORY``/``MESOS_SANDBOX`` = ``/mnt/mesos/sandbox``,
  ``MESOS_CONTAINER_NAME``, ``MESOS_CHECKPOINT``, ``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, …)
  and for the ExecutorInfo command's variables (the agent's win, as in Mesos: ``RunOptions::create``
  skips a command variable the agent's environment has, so an agent's
  ``--executor_environment_variables`` replaces the task's value of the same name);
- ``-v`` for every ContainerInfo volume: ``host_path`` as a bind mount (an absolute host path is
  mapped to ``<workdir>/hostpaths/<agent>/<path>``, since every simulated agent shares this
  machine; a relative one is in the sandbox), a ``DOCKER_VOLUME`` source as ``<name>:<path>`` with
  one ``--volume-driver`` (two different drivers are an error; ``driver_options`` are dropped, as
  Mesos drops them), then the sandbox bind-mounted at ``/mnt/mesos/sandbox``;
- ``--net`` from ``docker.network`` (``HOST`` by default), ``--privileged``, ``-p`` port mappings
  (not with host networking), ``--name mesos-<agent>-<executor>``, ``--label`` entries of ours
  (Mesos adds none; we use them to find and remove our containers), then every
  ``docker.parameters`` entry as ``--<key>=<value>`` in order — so ``volume-driver``, ``volume``,
  ``mount`` and ``ulimit`` reach Docker as on a real agent;
- no ``--user``: Mesos never passes the framework user to ``docker run``; the image's ``USER``
  applies;
- the command: with ``shell`` (the default) ``--entrypoint /bin/sh`` and ``-c <value>``; without,
  ``<value> <arguments…>`` (every argument, unlike the Mesos containerizer's argv) after the image's
  ``ENTRYPOINT``.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Where Mesos mounts the sandbox in a Docker container (the agent's ``--sandbox_directory``).
SANDBOX_IN_CONTAINER = "/mnt/mesos/sandbox"
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
MIN_MEMORY_MB = 32
_DOCKER_NAME = re.compile(r"[^a-zA-Z0-9_.-]")
_NETWORKS = {"HOST": "host", "BRIDGE": "bridge", "NONE": "none"}


def is_docker_executor(task_info: Mapping[str, Any]) -> bool:
    """Whether the task's executor asks for the Docker containerizer."""
    executor = task_info.get("executor") or {}
    return bool((executor.get("container") or {}).get("type") == "DOCKER")


def container_name(agent_id: str, executor_id: str) -> str:
    """``mesos-<agent>-<executor>``, with what Docker does not allow in names replaced by ``_``."""
    return _DOCKER_NAME.sub("_", f"mesos-{agent_id}-{executor_id}")


def _scalars(resources: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for resource in resources:
        value = (resource.get("scalar") or {}).get("value")
        if resource.get("type", "SCALAR") == "SCALAR" and isinstance(value, int | float):
            name = str(resource.get("name"))
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def docker_run_argv(
    task_info: Mapping[str, Any],
    *,
    name: str,
    sandbox: str | Path,
    agent_env: Mapping[str, str] | None = None,
    host_path: Callable[[str], str] | None = None,
    labels: Mapping[str, str] | None = None,
    limit_resources: bool = True,
) -> list[str]:
    """The ``docker`` arguments (from ``run`` on) that start the task's executor container as Mesos'
    Docker containerizer would (see the module docstring). ``sandbox`` is the sandbox on this
    machine; ``agent_env`` the agent's executor environment (wins over the command's variables);
    ``host_path`` maps an absolute ``host_path`` to the directory that stands in for it. Raises
    ``ValueError`` for what Mesos refuses too."""
    executor = task_info.get("executor")
    if not isinstance(executor, Mapping):
        raise ValueError("the task has no ExecutorInfo (command tasks are not run in Docker here)")
    container = executor.get("container") or {}
    if container.get("type") != "DOCKER":
        raise ValueError(f"the executor's container type is {container.get('type')!r}, not DOCKER")
    docker = container.get("docker") or {}
    image = str(docker.get("image") or "")
    if not image:
        raise ValueError("No docker image given in the ExecutorInfo's ContainerInfo")
    command = executor.get("command") or {}
    argv = ["run", "-d"]

    if bool(docker.get("privileged")):
        argv.append("--privileged")
    if limit_resources:
        totals = _scalars([*(task_info.get("resources") or []), *(executor.get("resources") or [])])
        if "cpus" in totals:
            argv += ["--cpu-shares", str(max(int(CPU_SHARES_PER_CPU * totals["cpus"]), MIN_CPU_SHARES))]
        if "mem" in totals:
            argv += ["--memory", str(int(max(totals["mem"], MIN_MEMORY_MB)) * 1024 * 1024)]

    env: dict[str, str] = {}
    for variable in (command.get("environment") or {}).get("variables") or []:
        if "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    env.update(agent_env or {})
    env["MESOS_SANDBOX"] = SANDBOX_IN_CONTAINER
    env["MESOS_CONTAINER_NAME"] = name
    for key in sorted(env):
        argv += ["-e", f"{key}={env[key]}"]

    volume_driver: str | None = None
    for volume in container.get("volumes") or []:
        target = str(volume.get("container_path") or "")
        if not target:
            raise ValueError("a volume has no container_path")
        target = target if posixpath.isabs(target) else posixpath.join(SANDBOX_IN_CONTAINER, target)
        mode = {"RW": "rw", "RO": "ro"}.get(str(volume.get("mode", "RW")))
        if mode is None:
            raise ValueError(f"Unsupported volume mode {volume.get('mode')!r}")
        source = volume.get("source") or {}
        if volume.get("host_path"):
            host = str(volume["host_path"])
            if not posixpath.isabs(host):
                if not posixpath.isabs(str(volume.get("container_path"))):
                    raise ValueError(f"Both host_path {host!r} and container_path of a volume are relative")
                local = posixpath.join(str(sandbox), host)
            else:
                local = host_path(host) if host_path is not None else host
            argv += ["-v", f"{local}:{target}:{mode}"]
        elif source:
            if source.get("type") != "DOCKER_VOLUME":
                logger.info(
                    "volume of type %s ignored: the Docker containerizer supports DOCKER_VOLUME", source.get("type")
                )
                continue
            docker_volume = source.get("docker_volume") or {}
            if not docker_volume.get("name"):
                raise ValueError("a DOCKER_VOLUME volume has no name")
            driver = docker_volume.get("driver")
            if driver:
                if volume_driver is not None and driver != volume_driver:
                    raise ValueError("Only one volume driver is supported")
                volume_driver = str(driver)
            argv += ["-v", f"{docker_volume['name']}:{target}:{mode}"]
        else:
            raise ValueError("Host path or volume source is required")
    argv += ["-v", f"{sandbox}:{SANDBOX_IN_CONTAINER}"]
    if docker.get("volume_driver"):  # the deprecated DockerInfo field
        if volume_driver is not None and docker["volume_driver"] != volume_driver:
            raise ValueError("Only one volume driver per task is supported")
        volume_driver = str(docker["volume_driver"])
    if volume_driver is not None:
        argv.append(f"--volume-driver={volume_driver}")

    network_mode = str(docker.get("network") or "HOST")
    if network_mode == "USER":
        infos = container.get("network_infos") or []
        if len(infos) != 1 or not infos[0].get("name"):
            raise ValueError("a USER network needs exactly one named network_info")
        network = str(infos[0]["name"])
    elif network_mode in _NETWORKS:
        network = _NETWORKS[network_mode]
    else:
        raise ValueError(f"Unsupported Network mode: {network_mode}")
    argv += ["--net", network]
    if container.get("hostname"):
        if network == "host":
            raise ValueError("Unable to set hostname with host network mode")
        argv += ["--hostname", str(container["hostname"])]
    for mapping in docker.get("port_mappings") or []:
        if network in {"host", "none"}:
            raise ValueError("Port mappings are only supported for bridge and user-defined networks")
        spec = f"{mapping['host_port']}:{mapping['container_port']}"
        if mapping.get("protocol"):
            spec += f"/{str(mapping['protocol']).lower()}"
        argv += ["-p", spec]

    shell = bool(command.get("shell", True))
    value = command.get("value")
    if shell:
        if not value:
            raise ValueError("Shell specified but no command value provided")
        argv += ["--entrypoint", "/bin/sh"]
    argv += ["--name", name]
    for key in sorted(labels or {}):
        argv += ["--label", f"{key}={(labels or {})[key]}"]
    for parameter in docker.get("parameters") or []:
        argv.append(f"--{parameter.get('key')}={parameter.get('value', '')}")
    argv.append(image)
    if shell:
        argv += ["-c", str(value)]
    else:
        if value:
            argv.append(str(value))
        argv += [str(a) for a in command.get("arguments") or []]
    return argv
