"""Preparing the node's data and config volumes before every start (:func:`prepare_node`).

- As root (how the scheduler starts the executor on both containerizers), the data and config
  directories, and a distribution fetched into the sandbox, are first given to Elasticsearch's user
  (:func:`es_framework.executor.process.run_as_for`) wherever they are not (a fresh volume belongs to
  root; its top-level ``lost+found`` stays root's); Elasticsearch then runs as that user.
- The config directory is regenerated on every start: everything but the keystore and ``certs/`` is
  removed, the distribution's ``config/*`` (but ``elasticsearch.yml``) is copied in, then
  ``elasticsearch.yml`` (see :mod:`es_framework.core.es_settings`) and ``unicast_hosts.txt`` are
  written. User settings this major refuses fail the task.
- ``ELASTICSEARCH_INITIAL_MASTER_NODES`` is dropped, with a warning, when the data path already holds
  a cluster (Elasticsearch 7: ``nodes/0/_state``, 8: ``_state``), unless the executor's marker
  :data:`UNFORMED_MARKER` (written into an empty data path, removed once a cluster uuid is seen)
  says that state never joined a cluster.
- With security enabled, the certificate bundle is copied to ``certs/elastic-certificates.p12``
  (0640); with a password and ``elasticsearch-keystore``, the secure settings are set
  (:mod:`es_framework.executor.keystore`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from es_framework import contract
from es_framework.config.versions import version_in_text
from es_framework.core.es_settings import (
    CA_CERTIFICATE_IN_CONFIG,
    CERTIFICATES_IN_CONFIG,
    NODE_CERTIFICATE_IN_CONFIG,
    NODE_KEY_IN_CONFIG,
    NodeConfig,
    Security,
    build_settings,
    render_yaml,
    validate_user_settings,
)
from es_framework.executor.keystore import KEYSTORE_FILE, fill_keystore
from es_framework.executor.logs import NodeLog
from es_framework.executor.process import elasticsearch_version
from es_framework.executor.settings import ExecutorError, NodeSettings

#: Files the executor writes itself into the config directory (never copied from the distribution).
ELASTICSEARCH_YML = "elasticsearch.yml"
UNICAST_HOSTS = "unicast_hosts.txt"
GENERATED_FILES = frozenset({ELASTICSEARCH_YML, UNICAST_HOSTS})
CERTS_DIR = "certs"
#: What survives the regeneration of the config directory: the keystore and the framework's certificates.
KEPT_CONFIG_ENTRIES = frozenset({KEYSTORE_FILE, CERTS_DIR})
#: Written into an empty data path; removed once the node reports a cluster uuid (see bootstrap_master_nodes).
UNFORMED_MARKER = ".es-mesos-unformed"
LOST_AND_FOUND = "lost+found"
#: Where Elasticsearch keeps its node and cluster state under ``path.data``: 7 in ``nodes/0/_state``, 8 in ``_state``.
STATE_DIRS = (Path("nodes") / "0" / "_state", Path("_state"))


# ---------------------------------------------------------------------- elasticsearch.yml and unicast_hosts.txt


def node_config(settings: NodeSettings, initial_master_nodes: tuple[str, ...]) -> NodeConfig:
    """What :func:`es_framework.core.es_settings.build_settings` needs, from the executor's settings."""
    return NodeConfig(
        cluster_name=settings.cluster_name,
        node_name=settings.node_name,
        roles=settings.roles,
        network_host=settings.network_host,
        publish_host=settings.publish_host,
        http_port=settings.http_port,
        transport_port=settings.transport_port,
        data_path=str(settings.data_path),
        initial_master_nodes=initial_master_nodes,
        security=Security(enabled=settings.security_enabled, pem=settings.tls is not None),
        user_settings=settings.user_settings,
    )


def render_elasticsearch_yml(
    settings: NodeSettings,
    major: int,
    initial_master_nodes: tuple[str, ...] | None = None,
    *,
    version: str | None = None,
) -> tuple[str, tuple[str, ...]]:
    """The node's ``elasticsearch.yml`` and the warnings to log.

    ``initial_master_nodes`` defaults to what the scheduler sent; the executor passes what is left
    of it after looking at the data path (:func:`bootstrap_master_nodes`).
    Raises :class:`ExecutorError` for user settings this Elasticsearch refuses: ``version`` (the
    version found, :func:`es_framework.executor.process.elasticsearch_version`) when it names a minor,
    else ``major`` (:func:`es_framework.core.es_settings.validate_user_settings`).
    """
    found = version_in_text(version) if version else None
    target = found if found is not None and found.major == major else major
    validation = validate_user_settings(settings.user_settings, target)
    if validation.errors:
        raise ExecutorError(
            f"the user's settings (--elasticsearchSettingsLocation) are refused by Elasticsearch {target}, the "
            "version this node runs: " + "; ".join(validation.errors)
        )
    masters = settings.initial_master_nodes if initial_master_nodes is None else initial_master_nodes
    generated = build_settings(node_config(settings, masters), major)
    header = (
        f"Written by es-mesos-executor for node {settings.node_id} ({settings.node_name}), task {settings.task_id}.",
        "Regenerated on every start of the node: edit the framework's configuration instead.",
    )
    return render_yaml(generated.settings, header), validation.warnings + generated.warnings


def unicast_hosts_text(hosts: tuple[str, ...] | list[str]) -> str:
    """``unicast_hosts.txt``: one ``host:port`` a line (Elasticsearch's file-based seed hosts provider)."""
    return "# Written by es-mesos-executor.\n" + "".join(f"{h}\n" for h in hosts)


def write_unicast_hosts(config_path: Path, hosts: tuple[str, ...] | list[str]) -> None:
    """Replace ``unicast_hosts.txt`` atomically (Elasticsearch may read it at any moment)."""
    target = config_path / UNICAST_HOSTS
    tmp = config_path / f".{UNICAST_HOSTS}.tmp"
    tmp.write_text(unicast_hosts_text(hosts), encoding="utf-8")
    os.replace(tmp, target)


# ---------------------------------------------------------------------- bootstrapping over existing data


def existing_cluster(data_path: Path) -> str | None:
    """Why ``data_path`` already holds a cluster's state, or None when it holds none."""
    for state in (data_path / relative for relative in STATE_DIRS):
        try:
            if state.is_dir() and any(state.iterdir()):
                return f"{state} holds Elasticsearch node state"
        except OSError as error:
            return f"{state} cannot be read ({error})"
    return None


def bootstrap_master_nodes(settings: NodeSettings, log: NodeLog) -> tuple[str, ...]:
    """The ``cluster.initial_master_nodes`` to write: the scheduler's, unless the data path already
    holds a cluster (never bootstrap a second cluster over existing data).

    State left by an earlier start on the same data path that never saw a cluster uuid (a node that
    failed a bootstrap check, say) does not count: :data:`UNFORMED_MARKER`, written while the data
    path was empty and removed once a uuid is seen, tells that case apart.
    """
    evidence = existing_cluster(settings.data_path)
    if evidence is None:
        with contextlib.suppress(OSError):
            (settings.data_path / UNFORMED_MARKER).write_text(
                "es-mesos: this data path has not joined a cluster yet\n", encoding="utf-8"
            )
    if not settings.initial_master_nodes:
        return ()
    if evidence is None:
        return settings.initial_master_nodes
    if (settings.data_path / UNFORMED_MARKER).exists():
        log.info("keeping cluster.initial_master_nodes: %s, but this node never joined a cluster", evidence)
        return settings.initial_master_nodes
    log.warning(
        "not writing cluster.initial_master_nodes %s: %s, and bootstrapping over existing data would make a new "
        "cluster; the node joins the cluster its data belongs to",
        list(settings.initial_master_nodes),
        evidence,
    )
    return ()


def note_cluster_joined(data_path: Path) -> None:
    """The node reported a cluster uuid: from now on its state on ``data_path`` belongs to a cluster."""
    with contextlib.suppress(OSError):
        (data_path / UNFORMED_MARKER).unlink(missing_ok=True)


# ---------------------------------------------------------------------- the config directory


def regenerate_config_dir(config_path: Path, defaults: Path | None, files: Mapping[str, str]) -> None:
    """Empty ``config_path`` of all but :data:`KEPT_CONFIG_ENTRIES`, copy in the distribution's defaults
    (``defaults``, without the files the executor writes), then write ``files``.

    An upgrade therefore never carries an old major's ``jvm.options`` or log4j files forward, while
    the keystore survives.
    """
    config_path.mkdir(parents=True, exist_ok=True)
    for entry in config_path.iterdir():
        if entry.name in KEPT_CONFIG_ENTRIES:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if defaults is not None and defaults.is_dir():
        for entry in sorted(defaults.iterdir()):
            target = config_path / entry.name
            if entry.name in GENERATED_FILES or entry.name == CERTS_DIR:
                continue
            if target.exists():
                continue  # the keystore on the volume wins over the image's
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
    for name, text in files.items():
        (config_path / name).write_text(text, encoding="utf-8")


def install_certificates(settings: NodeSettings, owner: tuple[int, int] | None) -> None:
    """Copy the certificate bundle into ``<config>/certs/`` (mode 0640, owned by Elasticsearch's user)."""
    source = settings.certificates
    if source is None:
        return
    if not source.is_file():
        raise ExecutorError(f"the certificate bundle {source} ({contract.ENV_CERTIFICATES}) is not in the sandbox")
    certs = settings.config_path / CERTS_DIR
    certs.mkdir(mode=0o750, exist_ok=True)
    target = settings.config_path / CERTIFICATES_IN_CONFIG
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o640)
    if owner is not None:
        os.chown(certs, *owner)
        os.chown(tmp, *owner)
    os.replace(tmp, target)


def install_node_tls(settings: NodeSettings, owner: tuple[int, int] | None) -> None:
    """``--elasticsearchSecurity auto``: write the node's key (mode 0600), its certificate and the CA's
    (0644) into ``<config>/certs/``, owned by Elasticsearch's user; each file replaced atomically, the
    key never readable by anyone else, not even for a moment (created 0600, then renamed)."""
    tls = settings.tls
    if tls is None:
        return
    certs = settings.config_path / CERTS_DIR
    certs.mkdir(mode=0o750, exist_ok=True)
    if owner is not None:
        os.chown(certs, *owner)
    for relative, text, mode in (
        (NODE_KEY_IN_CONFIG, tls.key, 0o600),
        (NODE_CERTIFICATE_IN_CONFIG, tls.certificate, 0o644),
        (CA_CERTIFICATE_IN_CONFIG, tls.ca, 0o644),
    ):
        target = settings.config_path / relative
        tmp = target.with_name(target.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(text)
        os.chmod(tmp, mode)  # the umask may have taken bits off the certificates
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, target)


# ---------------------------------------------------------------------- owners


def chown_tree(root: Path, uid: int, gid: int, log: NodeLog) -> int:
    """Give ``root`` and everything under it to uid:gid where it belongs to someone else (a freshly
    attached volume belongs to root). ``lost+found`` at the top stays root's: Elasticsearch never
    needs it. Returns how many entries changed owner."""
    changed = 0

    def fix(path: str) -> None:
        nonlocal changed
        info = os.lstat(path)
        if info.st_uid != uid or info.st_gid != gid:
            os.chown(path, uid, gid, follow_symlinks=False)
            changed += 1

    fix(str(root))
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root and LOST_AND_FOUND in dirs:
            dirs.remove(LOST_AND_FOUND)
            log.info("leaving %s/%s to root", root, LOST_AND_FOUND)
        for name in dirs + files:
            fix(os.path.join(directory, name))
    return changed


def owned_roots(settings: NodeSettings, home: Path | None) -> list[Path]:
    """What Elasticsearch's user must own: the data and config directories, and a distribution fetched
    into the sandbox. The Mesos fetcher fetches as the executor's user (``os::su`` in apache/mesos
    ``src/launcher/fetcher.cpp``), root since the executor runs as root, and Elasticsearch writes under
    its home (``logs/``, the default ``path.logs``); the image's distribution is the image's business."""
    roots = [settings.data_path]
    roots.append(settings.config_volume if settings.config_volume is not None else settings.config_path)
    if home is not None and home.resolve().is_relative_to(settings.sandbox.resolve()):
        roots.append(home)
    return roots


def prepare_volumes(settings: NodeSettings, owner: tuple[int, int], log: NodeLog, home: Path | None = None) -> None:
    """As root: give the directories of :func:`owned_roots` to Elasticsearch's user wherever they are not
    (a fresh volume, or a directory an operator created, belongs to root), before privileges are dropped."""
    for root in owned_roots(settings, home):
        changed = chown_tree(root, *owner, log)
        if changed:
            log.info("gave %d entries under %s to %d:%d", changed, root, *owner)


# ---------------------------------------------------------------------- all of it


def prepare_node(
    settings: NodeSettings,
    home: Path | None,
    log: NodeLog | None = None,
    *,
    run_as: Mapping[str, Any] | None = None,
) -> int:
    """Prepare the data and config directories and write the node's configuration; returns the major."""
    log = log or NodeLog(settings.node_id, settings.task_id)
    major, version = elasticsearch_version(home, settings.version_override)
    owner = (int(run_as["user"]), int(run_as["group"])) if run_as else None
    try:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        settings.config_path.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            prepare_volumes(settings, owner, log, home)
        masters = bootstrap_master_nodes(settings, log)
        text, warnings = render_elasticsearch_yml(settings, major, masters, version=version)
        for warning in warnings:
            log.warning("%s", warning)
        regenerate_config_dir(
            settings.config_path,
            home / "config" if home is not None else None,
            {ELASTICSEARCH_YML: text, UNICAST_HOSTS: unicast_hosts_text(settings.seed_hosts)},
        )
        install_certificates(settings, owner)
        install_node_tls(settings, owner)
        if owner is not None:
            chown_tree(settings.config_path, *owner, log)
            with contextlib.suppress(FileNotFoundError):
                os.chown(settings.data_path / UNFORMED_MARKER, *owner)
        fill_keystore(home, settings, run_as, log)
    except OSError as error:
        raise ExecutorError(f"cannot prepare the node's directories: {error}") from error
    log.info("configured for Elasticsearch %s in %s", version, settings.config_path)
    return major
