"""Which changes of the target Elasticsearch version a running cluster may take (issue 12, day 2).

Elasticsearch's upgrade documentation (``setup-upgrade.html`` and ``rolling-upgrades.html`` of the
reference, 7.x and 8.x) sets the rules this module enforces:

* rolling upgrades are supported between minor versions of a major, and from the last minor of a
  major to the next major; "when upgrading to Elasticsearch 8.0 and later, you must first upgrade
  to 7.17" (the 8.x ``rolling-upgrades.html``), so 8.x is reachable from 7.17.x only;
* no major is skipped (a node reads indices of the previous major only);
* "in-place downgrades to earlier versions are not supported" (``setup-upgrade.html``): a node that
  ran a version has written its data in that version's format, and an older node refuses it.

The running versions are what each node reported (``GET /``'s ``version.number``, carried by
:class:`es_framework.contract.NodeReport` and kept in the node's record); the target is the one
:func:`es_framework.config.versions.target_version` settled on. A node that has not reported yet
(None) constrains nothing. Versions are compared only as far as both sides say: a target ``8.15``
is not a downgrade from a node on ``8.15.2``. A reported version that is not a version at all is
refused rather than guessed at (fail closed). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.config.versions import EsVersion, TargetVersion, version_in_text
from es_framework.core.node_state import ClusterState

#: The minor of each major that a rolling upgrade to the next major starts from.
LAST_MINOR_BEFORE_NEXT_MAJOR = {7: 17}


def _older(a: EsVersion, b: EsVersion) -> bool:
    """Whether ``a`` is certainly earlier than ``b``, comparing only the parts both name."""
    if a.major != b.major:
        return a.major < b.major
    if a.minor is None or b.minor is None:
        return False
    if a.minor != b.minor:
        return a.minor < b.minor
    if a.patch is None or b.patch is None:
        return False
    return a.patch < b.patch


def _path_refusal(node: int, text: str, running: EsVersion, target: EsVersion) -> str | None:
    """Why one node on ``running`` cannot go to ``target``, else None."""
    where = f"node {node} runs Elasticsearch {text}"
    if _older(target, running):
        return (
            f"{where}, and the target {target} is older: Elasticsearch does not support in-place downgrades "
            "(a node's data, once written by a version, is refused by older ones); restore a snapshot into a new "
            "cluster instead"
        )
    if target.major == running.major:
        return None  # a minor or patch upgrade: always a rolling-upgrade path
    if target.major > running.major + 1:
        return (
            f"{where}, and the target {target} skips a major: upgrade to {running.major + 1}.x first "
            f"(Elasticsearch reads the indices of the previous major only)"
        )
    last_minor = LAST_MINOR_BEFORE_NEXT_MAJOR.get(running.major)
    if last_minor is None:
        return f"{where}: es-mesos knows no upgrade path from {running.major}.x to {target}"
    if running.minor != last_minor:
        return (
            f"{where}, and {target.major}.x is reached from {running.major}.{last_minor} only: "
            f"upgrade to {running.major}.{last_minor} first (Elasticsearch rolling-upgrade paths)"
        )
    return None


def refuse_version_change(running: Mapping[int, str | None], target: str | None, *, new_cluster: bool) -> str | None:
    """Why the cluster may not go to ``target`` from the versions its nodes run, or None when it may.

    ``running`` maps a node index to the version the node reported (None: not reported yet);
    ``target`` is the target version's text (None: unknown). ``new_cluster``: no node has run yet,
    so there is nothing to upgrade from, and an unknown target is confirmed by the first node.

    Refused, with a reason naming the node and the versions: a target older than any node's
    version; a skipped major; a new major from anything but the previous major's last minor (8.x
    from 7.17.x only); an unknown target for an existing cluster whose nodes report versions (no
    path can be checked, and the image could be anything); a version that cannot be read.
    """
    reported = {node: text for node, text in sorted(running.items()) if text is not None}
    if target is None:
        if new_cluster or not reported:
            return None
        node, text = next(iter(reported.items()))
        return (
            f"the target version is unknown, and the cluster is running (node {node} runs Elasticsearch {text}): "
            "give --elasticsearchVersion so that the upgrade path can be checked"
        )
    wanted = version_in_text(target)
    if wanted is None:
        return f"the target version {target!r} is not an Elasticsearch version"
    for node, text in reported.items():
        found = version_in_text(text)
        if found is None:
            return (
                f"node {node} reports Elasticsearch {text!r}, which is not a version, so no upgrade path to "
                f"{wanted} can be checked"
            )
        reason = _path_refusal(node, text, found, wanted)
        if reason is not None:
            return reason
    return None


def running_versions(state: ClusterState) -> dict[int, str | None]:
    """Node id -> the Elasticsearch version its current task reported (None: not yet)."""
    return {node_id: record.version for node_id, record in state.nodes.items()}


def is_new_cluster(state: ClusterState) -> bool:
    """No cluster formed and no node ever ran: nothing to upgrade from."""
    return state.cluster_uuid is None and not any(r.seen_running for r in state.nodes.values())


#: The flags that choose what the nodes run (:func:`es_framework.core.config_record.config_values`).
DISTRIBUTION_FLAGS = ("elasticsearchDockerImage", "elasticsearchBinaryUrl", "frameworkUseDocker")


def distribution_changed(state: ClusterState, values: Mapping[str, Any]) -> bool:
    """Whether ``values`` (the configuration's, by flag name) name another image or distribution than
    the one the state recorded (False when none was recorded)."""
    stored = state.config.get("values") if state.config is not None else None
    if not isinstance(stored, Mapping):
        return False
    return any(stored.get(flag) != values.get(flag) for flag in DISTRIBUTION_FLAGS)


def start_refusal(state: ClusterState, target: TargetVersion, *, distribution_changed: bool) -> str | None:
    """Why a scheduler with the ``target`` version must not start on ``state``, naming where the target
    came from (a flag) and the versions; None when it may. Checked before anything is written: the
    scheduler refuses to start, and the cluster keeps running as it was.

    An unknown target with the image or distribution the nodes were launched from
    (``distribution_changed`` False) changes no version: the nodes go on with what they run, as
    before es-mesos knew versions. With another one, nothing says what the nodes would become."""
    wanted = str(target.version) if target.version is not None else None
    if wanted is None and not distribution_changed:
        return None
    reason = refuse_version_change(running_versions(state), wanted, new_cluster=is_new_cluster(state))
    if reason is None:
        return None
    said = f"{target.version} from {target.source}" if target.version is not None else str(target)
    return (
        f"the target Elasticsearch version ({said}) is refused: {reason}. Nothing was changed: the nodes keep "
        "running as they are; start the scheduler with a version the cluster can take"
    )


def upgrade_of(state: ClusterState, target: TargetVersion) -> tuple[str, str] | None:
    """(the running versions, the target) when some node reports a version older than ``target``:
    restarting the nodes into the target is then a version upgrade (Elasticsearch is yellow while a
    newer node's primaries have no node of its version for their replicas). None otherwise or unknown."""
    if target.version is None:
        return None
    older = sorted(
        {
            text
            for text in running_versions(state).values()
            if text is not None and (found := version_in_text(text)) is not None and _older(found, target.version)
        }
    )
    return (", ".join(older), str(target.version)) if older else None
