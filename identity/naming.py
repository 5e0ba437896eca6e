"""Names derived from a node id: framework-name rules, volume names and node names.

A framework name must end with a letter so that ``<framework><id><suffix>`` splits back into
one framework and one id: with ``es1`` allowed, ``es1`` + node 12 and ``es11`` + node 2 would
both name the volume ``es112data`` and two clusters would share a disk.
"""

from __future__ import annotations

import re

#: Lowercase letters, digits and ``-``; starts and ends with a letter. Valid as a Docker volume
#: name prefix, for the usual volume drivers (REX-Ray, EBS tags, Ceph RBD) and as a DNS label.
FRAMEWORK_NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]*[a-z])?")
#: A DNS label (Mesos-DNS uses the framework name as one) is at most 63 characters.
FRAMEWORK_NAME_MAX_LENGTH = 63

CONFIG_VOLUME_SUFFIX = "config"
DATA_VOLUME_SUFFIX = "data"


class FrameworkNameError(ValueError):
    """A framework name that would give invalid or ambiguous volume names."""


def framework_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a framework name, or None when it can."""
    if not name:
        return "it is empty"
    if len(name) > FRAMEWORK_NAME_MAX_LENGTH:
        return f"it is {len(name)} characters long; at most {FRAMEWORK_NAME_MAX_LENGTH} are allowed (a DNS label)"
    if not FRAMEWORK_NAME_PATTERN.fullmatch(name):
        if name[-1].isdigit():
            return (
                "it ends with a digit, which makes volume names ambiguous "
                "(framework 'es1' with node 12 and framework 'es11' with node 2 would both use 'es112data')"
            )
        return "use lowercase letters, digits and '-', starting and ending with a letter"
    return None


def validate_framework_name(name: str) -> str:
    problem = framework_name_problem(name)
    if problem is not None:
        raise FrameworkNameError(f"invalid framework name {name!r}: {problem}")
    return name


def _check_node_id(node_id: int) -> None:
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 1:
        raise ValueError(f"node id must be an integer of 1 or greater, got {node_id!r}")


def node_name(framework_name: str, node_id: int) -> str:
    """The node's name, ``<framework><id>``: Elasticsearch's ``node.name`` and the Mesos task name.

    It is the identity that survives replacement: the same id on another agent is the same node.
    """
    validate_framework_name(framework_name)
    _check_node_id(node_id)
    return f"{framework_name}{node_id}"


def volume_names(framework_name: str, node_id: int) -> tuple[str, str]:
    """The node's ``(config, data)`` volume names, e.g. ``("elasticsearch1config", "elasticsearch1data")``."""
    name = node_name(framework_name, node_id)
    return f"{name}{CONFIG_VOLUME_SUFFIX}", f"{name}{DATA_VOLUME_SUFFIX}"
