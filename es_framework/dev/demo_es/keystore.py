"""The demo node's secure settings: its stand-in for ``elasticsearch-keystore`` (development tool, not Elasticsearch).

Elasticsearch reads its *secure settings* (passwords, passphrases) only from the keystore
``$ES_PATH_CONF/elasticsearch.keystore``, never from ``elasticsearch.yml`` ("Secure settings",
elastic.co/guide/en/elasticsearch/reference/8.x/secure-settings.html), and the keystore is managed with
``bin/elasticsearch-keystore`` ("elasticsearch-keystore", same reference: ``create``, ``list``,
``add [-f] [-x|--stdin] <settings>``, ``remove <settings>``). The executor fills it that way
(:mod:`es_framework.executor.keystore`), so the demo node has the same tool:
``python -m es_framework.dev.demo_es.keystore <command>``, which
:func:`~es_framework.dev.demo_es.node.write_launcher` also writes as ``bin/elasticsearch-keystore``.

What it is not: Elasticsearch's keystore is an AES-GCM encrypted binary file; the demo's is a JSON file
(mode 0600, marked as the demo's) that only this module reads. ``create`` adds ``keystore.seed`` as
Elasticsearch does. The secure settings the demo node uses: ``bootstrap.password`` (the ``elastic`` user's
password, see :mod:`.security`), ``xpack.security.{transport,http}.ssl.keystore.secure_password``,
``...truststore.secure_password`` and ``...secure_key_passphrase`` (see :mod:`.ssl_config`).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

KEYSTORE_FILE = "elasticsearch.keystore"
FORMAT = "es-mesos demo keystore (not Elasticsearch's format)"
#: The same JSON shape, written by the stand-in image's own ``elasticsearch-keystore``
#: (``tests/harness/standin/``), whose ``bin/elasticsearch`` runs this demo node.
FORMATS = frozenset({FORMAT, "es-mesos-standin-keystore"})
SEED = "keystore.seed"


class KeystoreError(Exception):
    """The keystore cannot be read or changed (the message says why)."""


def keystore_path(config_dir: Path) -> Path:
    return config_dir / KEYSTORE_FILE


def read_keystore(config_dir: Path | None) -> dict[str, str]:
    """The secure settings in ``<config_dir>/elasticsearch.keystore``; none without a keystore."""
    if config_dir is None:
        return {}
    path = keystore_path(config_dir)
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KeystoreError(f"failed to read the keystore [{path}]: {error}") from None
    if (
        not isinstance(document, dict)
        or document.get("format") not in FORMATS
        or not isinstance(document.get("entries"), dict)
    ):
        raise KeystoreError(f"the keystore [{path}] is not a demo node keystore")
    return {str(k): str(v) for k, v in document["entries"].items()}


def write_keystore(config_dir: Path, entries: dict[str, str]) -> None:
    path = keystore_path(config_dir)
    temporary = path.with_name(path.name + ".tmp")
    # Created 0600 before anything secret is written into it.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"format": FORMAT, "entries": dict(sorted(entries.items()))}, out)
    os.replace(temporary, path)


def run(argv: list[str], config_dir: Path, stdin: str = "") -> tuple[int, str]:
    """One ``elasticsearch-keystore`` command: (exit code, output). Exit codes as the real tool's: 0, 64 for a
    usage error, 78 for a keystore problem (``ExitCodes.USAGE`` / ``ExitCodes.CONFIG``)."""
    if not argv:
        return 64, "A command is required: create, list, add, remove"
    command, args = argv[0], argv[1:]
    exists = keystore_path(config_dir).exists()
    if command == "create":
        if not exists:
            write_keystore(config_dir, {SEED: secrets.token_urlsafe(20)})
        return 0, f"Created elasticsearch keystore in {config_dir}"
    if not exists:
        missing = keystore_path(config_dir)
        return 78, f"ERROR: Elasticsearch keystore not found at [{missing}]. Use 'create' command to create one."
    try:
        entries = read_keystore(config_dir)
    except KeystoreError as error:
        return 78, f"ERROR: {error}"
    if command == "list":
        return 0, "".join(f"{name}\n" for name in sorted(entries))
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return 64, f"ERROR: the setting names are missing for [{command}]"
    if command == "add":
        force = "-f" in args or "--force" in args
        if not ("-x" in args or "--stdin" in args):
            return 64, "ERROR: the demo keystore reads values from stdin only (-x)"
        values = stdin.split("\n")
        for index, name in enumerate(names):
            if name in entries and not force:
                return 78, f"ERROR: Setting [{name}] already exists (use -f to overwrite)"
            # As elasticsearch-keystore --stdin: one line of standard input per setting.
            entries[name] = values[index].rstrip("\r") if index < len(values) else ""
        write_keystore(config_dir, entries)
        return 0, ""
    if command == "remove":
        for name in names:
            if name not in entries:
                return 78, f"ERROR: Setting [{name}] does not exist in the keystore."
            del entries[name]
        write_keystore(config_dir, entries)
        return 0, ""
    return 64, f"ERROR: unknown command [{command}]"


def main(argv: list[str] | None = None) -> int:
    conf = os.environ.get("ES_PATH_CONF")
    if not conf:
        print("ERROR: ES_PATH_CONF is not set (the demo keystore lives in the config directory)", file=sys.stderr)
        return 78
    args = sys.argv[1:] if argv is None else argv
    stdin = sys.stdin.read() if ("-x" in args or "--stdin" in args) else ""
    code, output = run(args, Path(conf), stdin)
    if output:
        print(output, end="" if output.endswith("\n") else "\n", file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
