"""The one URL grammar (es_framework/config/urls.py): the Mesos master, ZooKeeper and state URLs,
their credentials, and the rules of each use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import (
    FileUrl,
    MesosMaster,
    Secret,
    StateUrlError,
    ZooKeeperUrl,
    parse_mesos_master,
    parse_state_url,
    redact_url,
    state_url_for_mesos_master,
)
from es_framework.config.urls import format_host, parse_zk_url
from tests.config.support import (
    assert_rejected,
    cfg,
    no_db,
    only_problem,
    problems,
)

ZK_PASSWORD = "zkPa55word"


def test_zookeeper_credentials_are_kept_secret() -> None:
    c = cfg(mesosMaster=f"zk://super:{ZK_PASSWORD}@zk1:2181,zk2:2182/mesos")
    assert c.mesos_master is not None
    assert c.mesos_master.url == "zk://zk1:2181,zk2:2182/mesos"
    assert c.mesos_master.zk_auth == Secret(f"super:{ZK_PASSWORD}")
    assert c.mesos_master.zk_auth.reveal() == f"super:{ZK_PASSWORD}"
    for shown in (repr(c), str(c), json.dumps(c.public_dict()), str(c.mesos_master)):
        assert ZK_PASSWORD not in shown


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("mesosMaster", f"zk://super:{ZK_PASSWORD}@zk1:2181"),
        ("zookeeperMesosUrl", f"zk://super:{ZK_PASSWORD}@zk1:99999/mesos"),
        ("mesosMaster", f"http://super:{ZK_PASSWORD}@master:5050"),
    ],
)
def test_url_credentials_never_appear_in_error_messages(flag: str, value: str) -> None:
    message = only_problem(**{flag: value})
    assert ZK_PASSWORD not in message
    assert message.startswith(f"--{flag}: '") and "****@" in message


# --- ZooKeeper and Mesos master ---------------------------------------------------------------------

ZK_ALLOWED = "must be zk://[user:password@]host:port[,host:port...]/path"
MASTER_ALLOWED = (
    "must be host[:port] or http(s)://host[:port] (port 5050 if left out), zk://host:port[,...]/path, "
    "or local (local mode)"
)


@pytest.mark.parametrize("flag", ["zookeeperMesosUrl", "mesosMaster"])
@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("zk://h:2181", "(the path, e.g. /mesos, is missing)"),
        ("zk://h:2181/", "(the path, e.g. /mesos, is missing)"),
        ("zk://h:2181///", "(the path, e.g. /mesos, is missing)"),
        ("zk:///mesos", "(no host given)"),
        ("zk://h:99999/mesos", "(port 99999 is outside 1-65535)"),
        ("zk://h:0/mesos", "(port 0 is outside 1-65535)"),
        ("zk://h:abc/mesos", "('h:abc' is not host[:port])"),
        ("zk://h1:2181,,h2/mesos", "('' is not host[:port])"),
        ("zk://h:2181/a//b", "(the path '/a//b' is not a valid znode path)"),
        ("zk://h:2181/mesos/../x", "is not a valid znode path"),
    ],
)
def test_bad_zookeeper_urls(flag: str, value: str, detail: str) -> None:
    message = assert_rejected(flag, value, ZK_ALLOWED)
    assert detail in message


@pytest.mark.parametrize("value", ["http://h:5050", "h:2181/mesos", "zk:/h:2181/mesos"])
def test_zookeeper_flag_takes_only_zk_urls(value: str) -> None:
    assert_rejected("zookeeperMesosUrl", value, ZK_ALLOWED)


@pytest.mark.parametrize("flag", ["zookeeperMesosUrl", "mesosMaster"])
@pytest.mark.parametrize(
    ("value", "url", "hosts", "path"),
    [
        ("zk://h:2181/mesos", "zk://h:2181/mesos", (("h", 2181),), "/mesos"),
        ("zk://h/mesos/", "zk://h:2181/mesos", (("h", 2181),), "/mesos"),
        (
            "zk://a:1,b:2,10.0.0.3/x/mesos",
            "zk://a:1,b:2,10.0.0.3:2181/x/mesos",
            (("a", 1), ("b", 2), ("10.0.0.3", 2181)),
            "/x/mesos",
        ),
        # One host form everywhere: an IPv6 host without its brackets (the URL keeps them).
        ("zk://[::1]:2181/mesos", "zk://[::1]:2181/mesos", (("::1", 2181),), "/mesos"),
    ],
)
def test_good_zookeeper_urls(flag: str, value: str, url: str, hosts: tuple[tuple[str, int], ...], path: str) -> None:
    master = cfg(**{flag: value}).mesos_master
    assert master == MesosMaster(kind="zk", url=url, hosts=hosts, path=path)
    assert str(master) == url


@pytest.mark.parametrize(
    ("value", "url", "host"),
    [
        ("h:5050", "http://h:5050", ("h", 5050)),
        ("master.example.com:5051", "http://master.example.com:5051", ("master.example.com", 5051)),
        ("h", "http://h:5050", ("h", 5050)),
        ("http://h", "http://h:5050", ("h", 5050)),
        ("http://h:5050/", "http://h:5050", ("h", 5050)),
        ("[::1]:5050", "http://[::1]:5050", ("::1", 5050)),
        ("10.0.0.1", "http://10.0.0.1:5050", ("10.0.0.1", 5050)),
        # A bare word is a host name by the grammar; whether it resolves is checked at start
        # (es_framework/app/startup.py), never here.
        ("notaurl", "http://notaurl:5050", ("notaurl", 5050)),
        ("mesos_1.example.com", "http://mesos_1.example.com:5050", ("mesos_1.example.com", 5050)),
    ],
)
def test_mesos_master_http_forms(value: str, url: str, host: tuple[str, int]) -> None:
    master = cfg(mesosMaster=value).mesos_master
    assert master == MesosMaster(kind="http", url=url, hosts=(host,))
    assert master.path == "" and master.zk_auth is None


@pytest.mark.parametrize(
    ("value", "url", "port"), [("https://h:5051", "https://h:5051", 5051), (" https://h ", "https://h:5050", 5050)]
)
def test_an_https_master_is_read_and_refused_never_downgraded_to_plain_http(value: str, url: str, port: int) -> None:
    assert parse_mesos_master(value) == MesosMaster(kind="http", url=url, hosts=(("h", port),))
    message = only_problem(mesosMaster=value, frameworkStateUrl="file:///tmp/state")
    assert f"--mesosMaster {url!r}" in message and "speaks plain HTTP only" in message, message


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("ftp://x", ""),
        ("http://h:99999", "(port 99999 is outside 1-65535)"),
        ("http://h/api", ""),
        ("http://h:5050?x=1", ""),
        ("http://h:5050#frag", ""),
        ("h:abc", "('h:abc' is not host[:port])"),
        ("-h:5050", "is not host[:port]"),
        ("http://[::1", ""),
        ("http://", "('' is not host[:port])"),
        ("not a url", "('not a url' is not host[:port])"),
        ("master/mesos", "(nothing may follow host:port)"),
        ("1.2.3", "('1.2.3' is not an IPv4 address)"),
        ("999.0.0.1:5050", "('999.0.0.1' is not an IPv4 address)"),
        ("10.0.0.01", "('10.0.0.01' is not an IPv4 address)"),
        ("a..b", "('a..b' is not a host name"),
        ("a.-b", "('a.-b' is not a host name"),
        ("master.123", "('master.123' is not a host name (its last label is all digits))"),
        ("x" * 64 + ".example.com", "is not a host name"),
        (".".join(["a" * 60] * 5), "a host name has at most 253 characters"),
    ],
)
def test_mesos_master_junk(value: str, detail: str) -> None:
    message = assert_rejected("mesosMaster", value, MASTER_ALLOWED)
    assert detail in message


def test_mesos_master_is_optional_and_falls_back_to_zookeeper_url() -> None:
    assert cfg(mesosMaster="").mesos_master is None
    assert cfg(mesosMaster="   ").mesos_master is None
    master = cfg(zookeeperMesosUrl="zk://h:2181/mesos").mesos_master
    assert master is not None and master.kind == "zk" and master.url == "zk://h:2181/mesos"


@pytest.mark.parametrize(
    ("master", "zk"),
    [
        ("zk://a:2181/mesos", "zk://b:2181/mesos"),
        ("zk://a:2181/mesos", "zk://a:2181/other"),
        ("a:5050", "zk://a:2181/mesos"),
    ],
)
def test_mesos_master_and_zookeeper_url_must_agree(master: str, zk: str) -> None:
    message = only_problem(mesosMaster=master, zookeeperMesosUrl=zk)
    assert message.startswith("--mesosMaster '")
    assert "--zookeeperMesosUrl" in message and "disagree; give one of them" in message


def test_mesos_master_and_zookeeper_url_agreeing_is_fine() -> None:
    c = cfg(mesosMaster="zk://a/mesos/", zookeeperMesosUrl="zk://a:2181/mesos")
    assert c.mesos_master is not None and c.mesos_master.url == "zk://a:2181/mesos"


def test_no_disagreement_noise_when_one_side_is_invalid() -> None:
    found = problems(mesosMaster="ftp://x", zookeeperMesosUrl="zk://a:2181/mesos")
    assert len(found) == 1 and found[0].startswith("--mesosMaster: 'ftp://x' ")


def test_url_credentials_are_masked_in_the_public_configuration(tmp_path: Path) -> None:
    config = cfg(
        frameworkUseDocker="false",
        elasticsearchBinaryUrl="https://deploy:hunter2@artifacts.example.com/elasticsearch.tar.gz",
    )
    assert config.binary_url == "https://deploy:hunter2@artifacts.example.com/elasticsearch.tar.gz"
    shown = config.public_dict()["elasticsearchBinaryUrl"]
    assert shown == "https://****@artifacts.example.com/elasticsearch.tar.gz"


def test_state_url_is_validated_and_its_credentials_never_shown() -> None:
    config = cfg(frameworkStateUrl="zk://es:s3cret@zk1:2181/es")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.public_dict())
    assert config.public_dict()["frameworkStateUrl"] == "zk://****@zk1:2181/es"
    assert_rejected("frameworkStateUrl", "ftp://x", "state URL scheme 'ftp' is not supported")
    message = only_problem(frameworkStateUrl="zk://es:s3cret@zk1:99999/es")
    assert "s3cret" not in message and "port 99999 is outside 1-65535" in message


# --- state URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hosts", "chroot"),
    [
        ("zk://zk1:2181", (("zk1", 2181),), ""),
        ("zk://zk1", (("zk1", 2181),), ""),
        ("zk://zk1:2181/", (("zk1", 2181),), ""),
        ("zk://zk1:2181,zk2:2182,10.0.0.3:2183/es", (("zk1", 2181), ("zk2", 2182), ("10.0.0.3", 2183)), "/es"),
        ("  zk://zk1:2181/es/prod/  ", (("zk1", 2181),), "/es/prod"),
        ("ZK://[::1]:2181/x", (("::1", 2181),), "/x"),
    ],
)
def test_zk_urls(text: str, hosts: tuple[tuple[str, int], ...], chroot: str) -> None:
    url = parse_state_url(text)
    assert url == ZooKeeperUrl(hosts=hosts, path=chroot)


def test_zk_url_credentials_are_kept_secret() -> None:
    url = parse_state_url("zk://sched:p%40ss:word@zk1:2181,zk2:2181/es")
    assert isinstance(url, ZooKeeperUrl)
    assert url.auth == Secret("sched:p@ss:word")
    assert str(url) == "zk://****@zk1:2181,zk2:2181/es"
    assert "word" not in repr(url) and "word" not in url.hosts_string
    assert url.hosts_string == "zk1:2181,zk2:2181"


@pytest.mark.parametrize(
    ("text", "path"),
    [("file:///var/lib/es-mesos", "/var/lib/es-mesos"), ("file://localhost/tmp/x/", "/tmp/x")],
)
def test_file_urls(text: str, path: str) -> None:
    assert parse_state_url(text) == FileUrl(path=Path(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no scheme"),
        ("zk1:2181", "no scheme"),
        ("/var/lib/state", "no scheme"),
        ("http://zk1:2181", "scheme 'http' is not supported"),
        ("zk://", "no host given"),
        ("zk:///es", "no host given"),
        ("zk://zk1:0", "port 0 is outside 1-65535"),
        ("zk://zk1:99999", "port 99999 is outside 1-65535"),
        ("zk://zk1:abc", "'zk1:abc' is not host[:port]"),
        ("zk://zk1:2181,/es", "'' is not host[:port]"),
        ("zk://zk1:2181/a//b", "not a valid znode path"),
        ("zk://zk1:2181/a/../b", "not a valid znode path"),
        ("zk://zk1:2181/zookeeper", "not a valid znode path"),
        ("zk://user@zk1:2181", "user:password"),
        ("zk://:pw@zk1:2181", "user:password"),
        ("file://relative/dir", "absolute local directory"),
        ("file://", "absolute local directory"),
        ("file:///", "other than /"),
        ("file:///a/../b", "other than /"),
    ],
)
def test_bad_urls_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(StateUrlError, match=re.escape(message)):
        parse_state_url(text)


def test_errors_never_show_the_password() -> None:
    for text in (
        "zkx://u:hunter2@h:1/x",
        "zk://u:hunter2@h:0/x",
        "zk://u:hunter2@/x",
        "u:hunter2@h:1",
        "u:hunter2@h://x",
    ):
        with pytest.raises(StateUrlError) as info:
            parse_state_url(text)
        assert "hunter2" not in str(info.value), text


def test_default_state_url_is_the_mesos_ensemble_without_its_path() -> None:
    master = MesosMaster(
        kind="zk",
        url="zk://a:2181,b:2181/mesos",
        hosts=(("a", 2181), ("b", 2181)),
        path="/mesos",
        zk_auth=Secret("u:p"),
    )
    assert state_url_for_mesos_master(master) == ZooKeeperUrl(hosts=(("a", 2181), ("b", 2181)), auth=Secret("u:p"))
    assert state_url_for_mesos_master(None) is None
    http = MesosMaster(kind="http", url="http://m:5050", hosts=(("m", 5050),))
    assert state_url_for_mesos_master(http) is None


# --- one grammar for every use ----------------------------------------------------------------------
# The Mesos master and the state once had a zk:// parser each, and they disagreed: credentials were
# percent-decoded for the state only and split at the first '@' for the master only, IPv6 hosts kept
# their brackets for the master only, and the znode path rules differed. Now there is one grammar.


def test_only_the_mesos_master_needs_a_path() -> None:
    assert parse_state_url("zk://h:2181") == ZooKeeperUrl(hosts=(("h", 2181),))
    with pytest.raises(ValueError, match=re.escape("(the path, e.g. /mesos, is missing)")):
        parse_mesos_master("zk://h:2181")


def test_master_credentials_are_percent_decoded_like_state_ones() -> None:
    master = cfg(zookeeperMesosUrl="zk://sched:p%40ss%3Aword@zk1/mesos").mesos_master
    assert master is not None and master.zk_auth == Secret("sched:p@ss:word")
    assert master.url == "zk://zk1:2181/mesos"


def test_the_credentials_end_at_the_last_at_sign_as_in_mesos() -> None:
    master = cfg(mesosMaster="zk://u:p@ss@h:2181/mesos").mesos_master
    assert master is not None and master.zk_auth == Secret("u:p@ss") and master.hosts == (("h", 2181),)
    state = parse_state_url("zk://u:p@ss@h:2181")
    assert isinstance(state, ZooKeeperUrl) and state.auth == Secret("u:p@ss")


@pytest.mark.parametrize("text", ["zk://a%3Ab:pw@h:2181/mesos", "zk://user@h:2181/mesos", "zk://:pw@h:2181/mesos"])
def test_both_uses_refuse_the_same_credentials(text: str) -> None:
    with pytest.raises(ValueError, match="user"):
        parse_mesos_master(text)
    with pytest.raises(StateUrlError, match="user"):
        parse_state_url(text)


@pytest.mark.parametrize("path", ["/zookeeper", "/a//b", "/a/../b", "/a/./b", "/mes\nos", "/x\ufffd"])
def test_both_uses_share_the_znode_path_rules(path: str) -> None:
    with pytest.raises(ValueError, match="is not a valid znode path"):
        parse_mesos_master(f"zk://h{path}")
    with pytest.raises(StateUrlError, match="is not a valid znode path"):
        parse_state_url(f"zk://h{path}")


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("ZK://zk_1:2181,Zk2", (("zk_1", 2181), ("Zk2", 2181))),
        ("zk://10.0.0.1,[::1]:2182,[2001:db8::7]", (("10.0.0.1", 2181), ("::1", 2182), ("2001:db8::7", 2181))),
    ],
)
def test_both_uses_share_the_host_and_scheme_rules(text: str, hosts: tuple[tuple[str, int], ...]) -> None:
    assert parse_mesos_master(text + "/mesos").hosts == hosts
    state = parse_state_url(text)
    assert isinstance(state, ZooKeeperUrl) and state.hosts == hosts


@pytest.mark.parametrize(
    "text", ["zk://a:2181, b:2181", "zk://-a:2181", "zk://[::g]:2181", "zk://a:2181:1", "zk://1.2.3", "zk://a..b"]
)
def test_both_uses_refuse_the_same_hosts(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("is not host[:port]")):
        parse_mesos_master(text + "/mesos")
    with pytest.raises(StateUrlError, match=re.escape("is not host[:port]")):
        parse_state_url(text)


def test_an_ipv6_master_gives_a_usable_default_state_url() -> None:
    master = cfg(mesosMaster="zk://u:p@[::1]:2181,[fe80::1]/mesos").mesos_master
    state = state_url_for_mesos_master(master)
    assert state is not None and state.hosts_string == "[::1]:2181,[fe80::1]:2181"
    assert str(state) == "zk://****@[::1]:2181,[fe80::1]:2181"
    assert parse_state_url(state.reveal()) == state


def test_a_file_settings_location_is_percent_decoded(tmp_path: Path) -> None:
    settings = tmp_path / "my settings.yml"
    settings.write_text("")
    assert cfg(elasticsearchSettingsLocation=settings.as_uri()).settings_location == settings.as_uri()
    assert parse_state_url((tmp_path / "a b").as_uri()) == FileUrl(path=tmp_path / "a b")


def test_local_mode_messages_mask_url_credentials() -> None:
    message = only_problem(mesosMaster="local", elasticsearchBinaryUrl="https://u:hunter2@x.example.com/es.tgz")
    assert "hunter2" not in message and "https://****@x.example.com/es.tgz" in message


#: DNS names as the grammar takes them: labels joined by '.', the last one not all digits.
hostnames = (
    st.lists(st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,8}[A-Za-z0-9])?", fullmatch=True), min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda name: not name.rsplit(".", 1)[-1].isdigit())
)
zk_hosts = st.lists(
    st.tuples(st.one_of(hostnames, st.ip_addresses().map(str)), st.integers(1, 65535)), min_size=1, max_size=4
)
users = st.text(min_size=1, max_size=12).filter(lambda u: ":" not in u)
passwords = st.text(min_size=1, max_size=12)
znode_paths = st.lists(
    st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True).filter(lambda p: p not in (".", "..", "zookeeper")),
    max_size=3,
).map(lambda parts: "".join(f"/{p}" for p in parts))


def _authority(hosts: list[tuple[str, int]]) -> str:
    return ",".join(f"{format_host(h)}:{p}" for h, p in hosts)


@no_db
@given(zk_hosts, st.none() | st.tuples(users, passwords), znode_paths)
def test_zk_urls_round_trip(hosts: list[tuple[str, int]], credentials: tuple[str, str] | None, path: str) -> None:
    userinfo = "" if credentials is None else f"{quote(credentials[0], safe='')}:{quote(credentials[1], safe='')}@"
    url = parse_zk_url(f"zk://{userinfo}{_authority(hosts)}{path}")
    assert url.hosts == tuple(hosts) and url.path == path
    assert url.auth == (None if credentials is None else Secret(":".join(credentials)))
    assert str(url) == "zk://" + ("****@" if credentials else "") + _authority(hosts) + path
    assert parse_zk_url(url.reveal()) == url


@no_db
@given(zk_hosts, users, passwords)
def test_master_and_state_read_the_same_url_alike(hosts: list[tuple[str, int]], user: str, password: str) -> None:
    text = f"zk://{quote(user, safe='')}:{quote(password, safe='')}@{_authority(hosts)}"
    master = parse_mesos_master(f"{text}/mesos")
    state = parse_state_url(text)
    assert isinstance(state, ZooKeeperUrl)
    assert master.zk_auth == state.auth == Secret(f"{user}:{password}")
    assert master.hosts == state.hosts == tuple(hosts)
    assert state_url_for_mesos_master(master) == state


#: Raw (not percent-encoded) credentials: anything but '/', which starts the path in Mesos' grammar too.
raw_credentials = st.text(st.characters(exclude_characters="/", exclude_categories=["Cs"]), max_size=12)


@no_db
@given(raw_credentials, raw_credentials)
def test_raw_credentials_never_reach_a_message(user: str, password: str) -> None:
    secret = "S3cr3t-" + password
    for flag, text in (
        ("mesosMaster", f"zk://{user}:{secret}@zk1:99999/mesos"),
        ("zookeeperMesosUrl", f"zk://{user}:{secret}@zk1:0/mesos"),
        ("frameworkStateUrl", f"zk://{user}:{secret}@zk1:abc"),
        ("mesosMaster", f"http://{user}:{secret}@master:5050"),
    ):
        (message,) = problems(**{flag: text})
        assert "S3cr3t" not in message, message
        assert redact_url(text).startswith(text.split("://")[0] + "://****@")
