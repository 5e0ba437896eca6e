"""Set an executor's resource limits, then become it (development tool, not for production).

``python rlimit_launch.py '<RLimit JSON list>' -- <executor argv>`` is the part of Mesos'
``mesos-containerizer launch`` that applies ``ContainerInfo.rlimit_info`` for the ``posix/rlimits``
isolator: ``installResourceLimits`` (apache/mesos ``src/slave/containerizer/mesos/launch.cpp``) sets
every limit in order with ``rlimits::set`` (``src/posix/rlimits.cpp``) before it execs the executor,
and the first one that fails ends the launch with "Failed to set <type> limit: <error>" on stderr
and a failed exit. As there, a limit with neither ``soft`` nor ``hard`` is unlimited, one with only
one of them is "Invalid rlimit values", and a type this platform lacks "Could not convert rlimit:
Resource type '<type>' not supported". Raising a hard limit takes privileges (``CAP_SYS_RESOURCE``),
as it does for a real agent, which runs as root.

The process backend (:mod:`.processes`) runs it by path, with the standard library only, so that
nothing but the limits changes the executor's start.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def set_limits(limits: Sequence[Mapping[str, Any]]) -> str | None:
    """Set ``limits`` on this process, in order; the first failure's message, or None."""
    for limit in limits:
        kind = str(limit.get("type", "UNKNOWN"))
        prefix = f"Failed to set {kind} limit: "
        if kind == "UNKNOWN":
            return prefix + "Could not convert rlimit: Unknown rlimit type"
        number = getattr(resource, "RLIMIT_" + kind.removeprefix("RLMT_"), None) if kind.startswith("RLMT_") else None
        if not isinstance(number, int):
            return prefix + f"Could not convert rlimit: Resource type '{kind}' not supported"
        soft, hard = limit.get("soft"), limit.get("hard")
        if soft is None and hard is None:
            values = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        elif soft is None or hard is None:
            return prefix + "Invalid rlimit values"
        else:
            values = (int(soft), int(hard))
        try:
            resource.setrlimit(number, values)
        except ValueError as error:
            # CPython reports setrlimit's EPERM and EINVAL as ValueError: name them as Mesos' ErrnoError does.
            return prefix + os.strerror(errno.EPERM if "not allowed" in str(error) else errno.EINVAL)
        except OSError as error:
            return prefix + os.strerror(error.errno or errno.EINVAL)
    return None


def main(argv: Sequence[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: rlimit_launch.py '<RLimit JSON list>' -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    failure = set_limits(json.loads(argv[1]))
    if failure is not None:
        print(failure, file=sys.stderr)
        return 1
    os.execvp(argv[3], list(argv[3:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
