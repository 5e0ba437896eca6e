"""The node's Elasticsearch keystore: the secure settings es-mesos puts there before every start.

- ``bootstrap.password``: the ``elastic`` user's password (``ELASTIC_PASSWORD``), as the official
  image's entrypoint does. Elasticsearch uses it only while the ``elastic`` user has no password of
  its own in the ``.security`` index ("Built-in users", "The Elastic bootstrap password", Elasticsearch
  reference); once the password is changed it is ignored.
- ``xpack.security.transport.ssl.keystore.secure_password`` and
  ``xpack.security.transport.ssl.truststore.secure_password``: the certificate bundle's password
  (``ELASTICSEARCH_CERTIFICATES_PASSWORD``, ``--elasticsearchCertificatesPasswordFile``). es-mesos
  points the transport keystore and truststore at the same PKCS#12 bundle
  (:mod:`es_framework.core.es_settings`), and Elastic's TLS guide ("Encrypt internode
  communications") has both passwords added to the keystore for a bundle made with one. Both are
  secure settings: Elasticsearch reads them from the keystore only ("Transport TLS/SSL settings",
  "Secure settings"). HTTP stays plain (``xpack.security.http.ssl.enabled: false``), so the
  ``xpack.security.http.ssl.*.secure_password`` settings are not added: an HTTP SSL setting without
  HTTP TLS configured is an error at start in 8 (8.0 migration guide, "The
  xpack.security.http.ssl.enabled setting is now required to configure xpack.security.http.ssl
  settings").

Every value goes through ``elasticsearch-keystore add --stdin`` (``-x``), one setting a run, and
never through a command line, a log line or Elasticsearch's environment (``elasticsearch-keystore``
reference: ``add <settings>``, ``--stdin``). The keystore survives the regeneration of the config
directory, so a bundle password left from an earlier start (the operator switched to a bundle without
one) is removed: Elasticsearch would try it on the new bundle and fail.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from es_framework.contract import ENV_ELASTIC_PASSWORD
from es_framework.executor.logs import NodeLog
from es_framework.executor.process import popen_arguments
from es_framework.executor.settings import ExecutorError, NodeSettings

KEYSTORE_FILE = "elasticsearch.keystore"
#: Seconds elasticsearch-keystore may take (it starts a JVM).
KEYSTORE_TIMEOUT = 300.0
BOOTSTRAP_PASSWORD = "bootstrap.password"
#: The bundle's password, for the transport keystore and truststore (the same PKCS#12 file).
BUNDLE_PASSWORD_SETTINGS = (
    "xpack.security.transport.ssl.keystore.secure_password",
    "xpack.security.transport.ssl.truststore.secure_password",
)


def secure_settings(settings: NodeSettings) -> dict[str, str]:
    """The keystore entries this node needs, name -> value (in the order they are added)."""
    entries: dict[str, str] = {}
    if settings.elastic_password:
        entries[BOOTSTRAP_PASSWORD] = settings.elastic_password
    if settings.certificates_password:
        entries.update(dict.fromkeys(BUNDLE_PASSWORD_SETTINGS, settings.certificates_password))
    return entries


def keystore_tool(home: Path | None) -> Path | None:
    tool = home / "bin" / "elasticsearch-keystore" if home is not None else None
    return tool if tool is not None and os.access(tool, os.X_OK) else None


def fill_keystore(home: Path | None, settings: NodeSettings, run_as: Mapping[str, Any] | None, log: NodeLog) -> None:
    """Create the keystore if missing and put :func:`secure_settings` in it; remove a bundle password
    the node no longer has. Nothing to do without security (no password)."""
    entries = secure_settings(settings)
    if not entries:
        return
    tool = keystore_tool(home)
    if tool is None:
        log.info("no elasticsearch-keystore next to Elasticsearch: %s not set", ", ".join(entries))
        return
    env = {k: v for k, v in settings.child_env.items() if k != "ES_JAVA_OPTS"}
    env["ES_PATH_CONF"] = str(settings.config_path)
    arguments = popen_arguments(run_as, env)
    hidden = [value for value in entries.values() if value]

    def run(*args: str, stdin: str | None = None) -> str:
        try:
            result = subprocess.run(
                [str(tool), *args],
                input=(stdin or "").encode("utf-8"),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=settings.config_path,
                timeout=KEYSTORE_TIMEOUT,
                check=False,
                **arguments,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            reason = _redact(str(error), hidden)
            raise ExecutorError(f"elasticsearch-keystore {' '.join(args)} failed: {reason}") from error
        output = _redact(result.stdout.decode("utf-8", "replace"), hidden).strip()
        if result.returncode != 0:
            raise ExecutorError(
                f"elasticsearch-keystore {' '.join(args)} exited with code {result.returncode}: {output[-500:]}"
            )
        return output

    existed = (settings.config_path / KEYSTORE_FILE).exists()
    if not existed:
        run("create")
        log.info("created the keystore %s", settings.config_path / KEYSTORE_FILE)
    elif BUNDLE_PASSWORD_SETTINGS[0] not in entries:
        listed = set(run("list").split())
        for name in BUNDLE_PASSWORD_SETTINGS:
            if name in listed:
                run("remove", name)
                log.info("removed %s from the keystore: the certificate bundle has no password now", name)
    for name, value in entries.items():
        run("add", "-x", "-f", name, stdin=value)
    log.info("set in the keystore: %s", ", ".join(entries))


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "******")
    return text


def password_for_node(settings: NodeSettings, home: Path | None) -> NodeSettings:
    """``settings`` with ``ELASTIC_PASSWORD`` in Elasticsearch's own environment when there is no
    ``elasticsearch-keystore`` to put the bootstrap password in (a custom ``ELASTICSEARCH_COMMAND``,
    as in local mode and the tests): the official Docker image's entrypoint takes the password from that
    variable too, and the demo node reads it there. Only then, and only for that process: otherwise the
    variable stays hidden (:data:`~es_framework.executor.settings.CHILD_ENV_HIDDEN`)."""
    if not settings.elastic_password or keystore_tool(home) is not None:
        return settings
    child_env = {**settings.child_env, ENV_ELASTIC_PASSWORD: settings.elastic_password}
    return dataclasses.replace(settings, child_env=child_env)
