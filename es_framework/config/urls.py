"""The one URL grammar of es-mesos (``zk://``, ``file://``, ``http(s)://``) and the rules of each use.

**The grammar**, shared by every flag that takes one of these URLs:

``zk://[user:password@]host[:port][,host[:port]...][/path]``
    Split as Mesos splits it (``zookeeper::URL::parse``, apache/mesos ``src/zookeeper/url.hpp``):
    the path starts at the first ``/`` after ``zk://`` and the credentials end at the *last* ``@``
    before it, so a raw ``@`` in a password works. Unlike Mesos, the credentials are
    percent-decoded (RFC 3986 §3.2.1 userinfo), so ``:``, ``@``, ``/`` and ``%`` inside them are
    written ``%3A``, ``%40``, ``%2F`` and ``%25``; a Mesos URL whose password holds a raw ``%``
    needs it written ``%25`` here. The user name must not contain ``:``: ZooKeeper's ``digest``
    scheme splits ``user:password`` at the first ``:`` (``DigestAuthenticationProvider``). The
    port defaults to 2181. The path follows ZooKeeper's znode rules (ZooKeeper Programmer's
    Guide, "The ZooKeeper Data Model"): no empty, ``.`` or ``..`` part, no control or reserved
    characters, and the token ``zookeeper`` is reserved; slashes around it are dropped.
``file://[localhost]/absolute/path``
    The path is percent-decoded (RFC 8089), as ``Path.as_uri()`` encodes it.
``[http[s]://]host[:port][/]``
    A Mesos master's HTTP address; no credentials, no path.

A host is an IPv4 address, an IPv6 address in brackets (``[::1]:2181``), or a DNS name: labels of
1-63 letters, digits, ``-`` and ``_`` (starting and ending with a letter or digit) joined by ``.``, at most
253 characters, whose last label is not all digits (RFC 1123 §2.1: a host name never has the
dotted-decimal form, so ``1.2.3`` or ``999.0.0.1`` is neither a name nor an address). Parsed hosts
are ``(host, port)`` pairs with IPv6 hosts *without* brackets (:func:`format_host` adds them back).
Scheme names are case-insensitive (RFC 3986 §3.1). Whether a name resolves is not grammar: the
scheduler checks it where it may do I/O (``es_framework/app/startup.py``).

**Credentials stay secret.** No :class:`UrlError` message contains them, parsed credentials are
:class:`~es_framework.config.values.Secret`, ``str()`` of a parsed URL masks them, and
:func:`redact_url` masks them in raw text with the same split as the parser, so whatever the
parser takes for credentials is what gets masked.

**The rules of each use** are the ``parse_*`` functions below the grammar:

- Mesos master (``--mesosMaster``, ``--zookeeperMesosUrl``): a ``zk://`` URL needs a path, because
  Mesos will not detect a master at ``/``: ``MasterDetector::create`` (apache/mesos
  ``src/master/detector/detector.cpp``) fails with "Expecting a (chroot) path for ZooKeeper ('/' is
  not supported)".
- State (``--frameworkStateUrl``): ``zk://`` whose path is optional (a chroot; the state lives at
  ``[/chroot]/<frameworkName>/<clusterName>``), or ``file://`` naming an absolute directory other
  than ``/``. Without the flag the state goes to the Mesos master's ensemble and credentials,
  without the Mesos path (:func:`state_url_for_mesos_master`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import overload
from urllib.parse import quote, unquote

from es_framework.config.values import LOCAL_MASTER, MesosMaster, Secret

ZK_DEFAULT_PORT = 2181
MESOS_DEFAULT_PORT = 5050

ZK_MASTER_FORM = "zk://[user:password@]host:port[,host:port...]/path"
MASTER_FORMS = (
    "host[:port] or http(s)://host[:port] (port 5050 if left out), zk://host:port[,...]/path, or local (local mode)"
)
ZK_STATE_FORM = "zk://[user:password@]host:port[,host:port...][/chroot]"
FILE_STATE_FORM = "file:///absolute/directory"


class UrlError(ValueError):
    """A URL outside the grammar or the rules of its use; the message never shows credentials."""


class StateUrlError(UrlError):
    """A state URL that is not ``zk://…`` or ``file:///…``."""


# --- parsed URLs ---------------------------------------------------------------------------------


def format_host(host: str) -> str:
    """``host`` as it is written in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ZooKeeperUrl:
    """A parsed ``zk://`` URL. ``str()`` never shows the credentials."""

    hosts: tuple[tuple[str, int], ...]
    #: ``""`` or an absolute znode path such as ``/mesos`` (for the state store: its chroot).
    path: str = ""
    #: ``user:password`` (percent-decoded) for ZooKeeper's digest scheme.
    auth: Secret | None = None

    @property
    def hosts_string(self) -> str:
        """``h1:p1,h2:p2``: kazoo's ``hosts`` argument, without the path (the state store prefixes
        its paths itself, so that a missing chroot is created like any other parent) or credentials."""
        return ",".join(f"{format_host(h)}:{p}" for h, p in self.hosts)

    def __str__(self) -> str:
        return "zk://" + ("****@" if self.auth else "") + self.hosts_string + self.path

    def reveal(self) -> str:
        """The URL *with* its credentials (percent-encoded), which parses back to this URL: to hand
        to another parser (e.g. :func:`parse_state_url`), never to show."""
        if self.auth is None:
            return f"zk://{self.hosts_string}{self.path}"
        user, _, password = self.auth.reveal().partition(":")
        return f"zk://{quote(user, safe='')}:{quote(password, safe='')}@{self.hosts_string}{self.path}"


@dataclass(frozen=True)
class FileUrl:
    """A parsed ``file://`` URL: an absolute local path."""

    path: Path

    def __str__(self) -> str:
        return f"file://{self.path}"


@dataclass(frozen=True)
class HttpUrl:
    """A parsed ``http(s)://host:port`` address."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{format_host(self.host)}:{self.port}"


StateUrl = ZooKeeperUrl | FileUrl


# --- the grammar ---------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_PORT = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?))(?::(?P<port>[0-9]+))?"
)


def _split_scheme(text: str) -> tuple[str, str] | None:
    """``(scheme in lowercase, rest after ://)``, or ``None`` without ``://``."""
    scheme, sep, rest = text.partition("://")
    return (scheme.lower(), rest) if sep else None


def _shown_scheme(scheme: str) -> str:
    # Only a well-formed scheme is echoed: text before a misplaced "://" may hold a password.
    return repr(scheme) if _SCHEME.fullmatch(scheme) else "(not a URL scheme)"


def _split_authority(rest: str) -> tuple[str | None, str, str]:
    """``rest`` (after ``scheme://``) → ``(raw credentials or None, hosts, path)``; the path keeps
    its leading ``/``. The credentials end at the last ``@`` before the first ``/``, as in Mesos."""
    authority, slash, path = rest.partition("/")
    credentials, at, hosts = authority.rpartition("@")
    return (credentials if at else None), hosts, slash + path


@overload
def redact_url(url: str) -> str: ...


@overload
def redact_url(url: None) -> None: ...


def redact_url(url: str | None) -> str | None:
    """``url`` with any ``user:password@`` masked, for logs, messages and stored state."""
    if url is None:
        return None
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    credentials, hosts, path = _split_authority(rest)
    return url if credentials is None else f"{scheme}://****@{hosts}{path}"


def redact_credentials(message: str, url: str) -> str:
    """``message`` with every occurrence of the credentials of ``url`` masked."""
    split = _split_scheme(url)
    credentials = _split_authority(split[1])[0] if split else None
    return message.replace(credentials, "****") if credentials else message


def _credentials(raw: str) -> Secret:
    user, colon, password = raw.partition(":")
    if not user or not colon or not password:
        raise UrlError("the credentials must be user:password")
    try:
        user, password = unquote(user, errors="strict"), unquote(password, errors="strict")
    except UnicodeDecodeError:
        raise UrlError("the credentials are not valid percent-encoded UTF-8") from None
    if ":" in user:
        raise UrlError("the user name must not contain ':' (ZooKeeper's digest scheme splits at the first ':')")
    return Secret(f"{user}:{password}")


_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_MAX_NAME_LENGTH = 253


def _host_problem(name: str) -> str | None:
    """Why ``name`` (matched by the name part of :data:`_HOST_PORT`) is neither an IPv4 address nor
    a DNS name (see the module's documentation), or ``None``."""
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return f"{name!r} is not an IPv4 address"
        return None
    if len(name) > _MAX_NAME_LENGTH:
        return f"a host name has at most {_MAX_NAME_LENGTH} characters"
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return f"{name!r} is not a host name (labels of 1-63 letters, digits, '-' or '_' joined by '.')"
    if labels[-1].isdigit():
        return f"{name!r} is not a host name (its last label is all digits)"
    return None


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` → ``(host, port)``; an IPv6 host is bracketed in ``item``, bare in the result."""
    match = _HOST_PORT.fullmatch(item)
    if not match:
        raise UrlError(f"{item!r} is not host[:port]")
    host = match["ipv6"] or match["name"]
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlError(f"{item!r} is not host[:port] ({host!r} is not an IPv6 address)") from None
    else:
        problem = _host_problem(host)
        if problem is not None:
            raise UrlError(f"{item!r} is not host[:port] ({problem})")
    if match["port"] is None:
        return host, default_port
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise UrlError(f"port {port} is outside 1-65535")
    return host, port


def _znode_path(raw: str) -> str:
    """``""`` or the absolute znode path ``/a/b`` of the URL path ``raw``."""
    stripped = raw.strip("/")
    if not stripped:
        return ""
    path = "/" + stripped
    # PathUtils.validatePath also refuses U+FFF0-U+FFFF; isprintable() covers the control characters.
    bad_character = not path.isprintable() or any("\ufff0" <= c <= "\uffff" for c in path)
    if bad_character or any(part in ("", ".", "..", "zookeeper") for part in stripped.split("/")):
        raise UrlError(f"the path {path!r} is not a valid znode path")
    return path


def parse_zk_url(text: str) -> ZooKeeperUrl:
    """The grammar of ``zk://`` URLs (see the module's documentation); the path is optional here."""
    split = _split_scheme(text.strip())
    if split is None or split[0] != "zk":
        raise UrlError("not a zk:// URL")
    credentials, hosts_text, path = _split_authority(split[1])
    auth = None if credentials is None else _credentials(credentials)
    if not hosts_text:
        raise UrlError("no host given")
    hosts = tuple(_host_port(item, ZK_DEFAULT_PORT) for item in hosts_text.split(","))
    return ZooKeeperUrl(hosts=hosts, path=_znode_path(path), auth=auth)


def parse_file_url(text: str) -> FileUrl:
    """The grammar of ``file://`` URLs: a local host (empty or ``localhost``) and an absolute path."""
    split = _split_scheme(text.strip())
    if split is None or split[0] != "file":
        raise UrlError("not a file:// URL")
    host, slash, path = split[1].partition("/")
    if host not in ("", "localhost") or not slash:
        raise UrlError("not an absolute local path")
    try:
        decoded = "/" + unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise UrlError("the path is not valid percent-encoded UTF-8") from None
    if "\x00" in decoded or any(part in (".", "..") for part in decoded.split("/")):
        raise UrlError("the path has '.' or '..' parts or a NUL character")
    return FileUrl(path=Path(decoded.rstrip("/") or "/"))


def parse_http_url(text: str, default_port: int) -> HttpUrl:
    """The grammar of ``[http[s]://]host[:port][/]`` (``http`` when the scheme is left out)."""
    stripped = text.strip()
    split = _split_scheme(stripped)
    scheme, rest = split if split is not None else ("http", stripped)
    if scheme not in ("http", "https"):
        raise UrlError(f"scheme {_shown_scheme(scheme)} is neither http nor https")
    credentials, host_text, path = _split_authority(rest)
    if credentials is not None:
        raise UrlError("credentials are not allowed in an HTTP address")
    if path not in ("", "/"):
        raise UrlError("nothing may follow host:port")
    host, port = _host_port(host_text, default_port)
    return HttpUrl(scheme=scheme, host=host, port=port)


# --- the Mesos master ----------------------------------------------------------------------------


def parse_mesos_zk_url(text: str) -> MesosMaster:
    """A Mesos master's ``zk://`` URL (``--zookeeperMesosUrl``): the path is required (see above)."""
    allowed = f"must be {ZK_MASTER_FORM}"
    try:
        url = parse_zk_url(text)
    except UrlError as exc:
        raise UrlError(f"{allowed} ({exc})") from None
    if not url.path:
        raise UrlError(f"{allowed} (the path, e.g. /mesos, is missing)")
    return MesosMaster(
        kind="zk", url=f"zk://{url.hosts_string}{url.path}", hosts=url.hosts, path=url.path, zk_auth=url.auth
    )


def parse_mesos_master(text: str) -> MesosMaster:
    """``--mesosMaster``: ``local``, a ``zk://`` URL (path required) or an HTTP address: ``host``,
    ``host:port`` or ``http(s)://host[:port]`` (port 5050 when left out, Mesos' default). Anything
    else is refused; a bare word such as ``notaurl`` is a host name by this grammar, which the
    scheduler then resolves (``es_framework/app/startup.py``)."""
    stripped = text.strip()
    if stripped == LOCAL_MASTER:
        return MesosMaster(kind="local", url=LOCAL_MASTER, hosts=())
    split = _split_scheme(stripped)
    if split is not None and split[0] == "zk":
        return parse_mesos_zk_url(stripped)
    try:
        url = parse_http_url(stripped, MESOS_DEFAULT_PORT)
    except UrlError as exc:
        raise UrlError(f"must be {MASTER_FORMS} ({exc})") from None
    return MesosMaster(kind="http", url=str(url), hosts=((url.host, url.port),))


# --- the state -----------------------------------------------------------------------------------


def parse_state_url(text: str) -> StateUrl:
    """``--frameworkStateUrl``: ``zk://`` (path optional: a chroot) or ``file://`` naming an
    absolute directory other than ``/``; anything else raises :class:`StateUrlError`."""
    split = _split_scheme(text.strip())
    if split is None:
        # Not echoed: without a scheme we cannot tell credentials from the rest.
        raise StateUrlError(f"the state URL has no scheme; use {ZK_STATE_FORM} or {FILE_STATE_FORM}")
    scheme = split[0]
    if scheme == "zk":
        try:
            return parse_zk_url(text)
        except UrlError as exc:
            raise StateUrlError(f"must be {ZK_STATE_FORM} ({exc})") from None
    if scheme == "file":
        allowed = f"a file:// state URL must name an absolute local directory other than / ({FILE_STATE_FORM})"
        try:
            url = parse_file_url(text)
        except UrlError as exc:
            raise StateUrlError(f"{allowed}: {exc}") from None
        if url.path == Path("/"):
            raise StateUrlError(f"{allowed}: it names /")
        return url
    raise StateUrlError(
        f"state URL scheme {_shown_scheme(scheme)} is not supported; use {ZK_STATE_FORM} or {FILE_STATE_FORM}"
    )


def state_url_for_mesos_master(master: MesosMaster | None) -> ZooKeeperUrl | None:
    """The default state URL: the ZooKeeper ensemble (and credentials) that Mesos uses, without
    its ``/mesos`` path, so the state lives at ``/<frameworkName>/<clusterName>`` as in the Java
    framework. ``None`` when Mesos is not found through ZooKeeper."""
    if master is None or master.kind != "zk":
        return None
    return ZooKeeperUrl(hosts=master.hosts, auth=master.zk_auth)
