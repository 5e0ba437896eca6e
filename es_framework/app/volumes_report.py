"""``es-framework volumes``: the volume inventory, offline, from the stored state.

It reads the state where the scheduler keeps it (:func:`es_framework.app.store.state_url`: the
same flags find it) and never writes: no leader lock is taken, so it runs next to a running
scheduler, and a file store's directory is not even created. What it prints is what
``GET /v1/volumes`` answers (:func:`es_framework.core.volume_inventory.volume_inventory`), as a
table or, with ``--json``, the same JSON document.
"""

from __future__ import annotations

import json

from es_framework.app.startup import RefusedError
from es_framework.app.store import open_store, state_url
from es_framework.config import Config, ConfigError, redact_url
from es_framework.core.node_state import ClusterState
from es_framework.core.state_document import state_from_json
from es_framework.core.volume_inventory import VolumeInventory, VolumeRow, iso_time, volume_inventory
from es_framework.shell import volume_profile_file
from es_framework.shell.state_store import FileStateStore

HEADERS = ("NODE", "VOLUME", "DRIVER", "PROFILE", "OPTIONS", "HELD BY", "LAST ATTACHED ON", "NOTES")


def read_state(config: Config) -> ClusterState | None:
    """The stored state of ``config``'s cluster, read without the leader lock; None when none is
    stored. Raises :class:`RefusedError` when no state URL follows from the flags, a
    ``StateStoreError`` when the store cannot be read, ``NodeStateError`` when the state is corrupt."""
    try:
        state_url(config)
    except ValueError as exc:
        raise RefusedError(str(exc)) from None
    store = open_store(config)
    try:
        if not isinstance(store, FileStateStore):
            # Connect to ZooKeeper. A file store reads without starting: its start creates directories.
            store.start()
        stored = store.read()
    finally:
        store.close()
    return None if stored is None else state_from_json(stored.document, config.framework_name)


def volumes_report(config: Config, *, as_json: bool = False) -> str:
    """The text ``es-framework volumes`` prints. Raises :class:`RefusedError` when no state is stored."""
    try:
        # The profiles of --volumeProfileFile, checked as at start: what the volumes are compared with.
        config = volume_profile_file.load(config)
    except ConfigError as exc:
        raise RefusedError(str(exc)) from None
    state = read_state(config)
    if state is None:
        raise RefusedError(
            f"no state stored for cluster {config.cluster_name} of framework {config.framework_name} at "
            f"{redact_url(state_url(config))}: give the flags the scheduler runs with (--frameworkStateUrl or "
            "--zookeeperMesosUrl, --frameworkName, --elasticsearchClusterName)"
        )
    inventory = volume_inventory(state, config)
    if as_json:
        return json.dumps(inventory.to_json(), indent=2, ensure_ascii=False)
    return "\n".join(format_inventory(inventory, config))


def format_inventory(inventory: VolumeInventory, config: Config) -> list[str]:
    """The inventory as an aligned table with a heading and a summary line."""
    heading = (
        f"volumes of cluster {config.cluster_name} (framework {config.framework_name}): "
        f"{inventory.desired_nodes} node(s) desired"
    )
    if inventory.torn_down_at is not None:
        heading += f"; the framework was torn down at {iso_time(inventory.torn_down_at)}"
    if not inventory.rows:
        return [heading, "no external volumes recorded"]
    table = [HEADERS, *(_cells(row) for row in inventory.rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() for cells in table
    ]
    summary = (
        f"{inventory.total} volume(s): {inventory.held} held by a task, {inventory.orphans} orphan(s), "
        f"{inventory.profile_differs} with another profile configured, {inventory.removed} removed"
    )
    return [heading, *lines, summary]


def _cells(row: VolumeRow) -> tuple[str, ...]:
    # The task id is in --json; the table stays narrow.
    held = row.holder_state or "-"
    if row.held and row.held_since is not None:
        held += f" since {iso_time(row.held_since)}"
    where = "-"
    if row.last_agent_id is not None:
        where = f"{row.last_hostname or '?'} [{row.last_agent_id}]"
        if row.last_zone:
            where += f" zone {row.last_zone}"
        if row.last_launched_at is not None:
            where += f" at {iso_time(row.last_launched_at)}"
    notes = []
    if not row.recorded:
        notes.append("not recorded (launched before the state kept the inventory)")
    if row.orphan_reason:
        notes.append(f"orphan: {row.orphan_reason}")
    if row.profile_differs:
        notes.append(f"profile differs: the configuration names {row.configured_profile}")
    if row.removed_at is not None:
        notes.append(f"removed at {iso_time(row.removed_at)}")
    elif row.removal_status is not None:
        notes.append(
            f"removal {row.removal_status} (attempt {row.removal_attempts})"
            + (f": {row.removal_error}" if row.removal_error else "")
        )
    options = ",".join(f"{key}={value}" for key, value in row.options) or "-"
    return (
        str(row.node_id),
        row.name,
        row.driver or "?",
        row.profile or "?",
        options,
        held,
        where,
        "; ".join(notes) or "-",
    )
