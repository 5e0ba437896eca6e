"""Names (framework, cluster, role, image), labels and volume driver options."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import (
    ConfigError,
    parse_key_values,
    parse_labels,
    resolve_config,
)
from tests.config.support import (
    assert_rejected,
    cfg,
    no_db,
    only_problem,
)

# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["elasticsearch", "es-prod", "a", "es-prod-eu-west-b", "x" * 63])
def test_framework_names_accepted(name: str) -> None:
    assert cfg(frameworkName=name).framework_name == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("es1", "it ends with a digit, which makes volume names ambiguous"),
        ("es-2", "it ends with a digit"),
        ("Es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("-es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("es-", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("1es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("es_prod", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("", "it is empty"),
        ("x" * 64, "it is 64 characters long; at most 63 are allowed"),
    ],
)
def test_framework_names_rejected(name: str, why: str) -> None:
    message = assert_rejected("frameworkName", name, "is not allowed: ")
    assert why in message


def test_ambiguity_is_explained_for_names_ending_with_a_digit() -> None:
    assert "'es112data'" in only_problem(frameworkName="es1")


@no_db
@given(st.from_regex(r"[a-z](?:[a-z0-9-]{0,61}[a-z])?", fullmatch=True))
def test_any_name_of_the_documented_form_is_accepted(name: str) -> None:
    assert resolve_config({"frameworkName": name}, {}).framework_name == name


@no_db
@given(st.from_regex(r"[a-z][a-z0-9-]{0,40}[0-9]", fullmatch=True))
def test_any_name_ending_with_a_digit_is_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="ends with a digit"):
        resolve_config({"frameworkName": name}, {})


@pytest.mark.parametrize("name", ["mesos-ha", "prod_logs.2", "A1", "x" * 255])
def test_cluster_names_accepted(name: str) -> None:
    assert cfg(elasticsearchClusterName=name).cluster_name == name


@pytest.mark.parametrize("name", ["a/b", "a:b", "", "-a", ".a", "a b", "x" * 256, "../etc"])
def test_cluster_names_rejected(name: str) -> None:
    assert_rejected("elasticsearchClusterName", name, "must be letters, digits, '.', '_' or '-', starting with")


@pytest.mark.parametrize("role", ["*", "eng", "eng/es", "eng-team/es.search", "a.b"])
def test_roles_accepted(role: str) -> None:
    assert cfg(frameworkRole=role).role == role


@pytest.mark.parametrize(
    "role", ["-x", "a b", ".", "..", "a//b", "", "a/", "/a", "a/../b", "a/-b", "eng*", "a\\b", "a\tb"]
)
def test_roles_rejected(role: str) -> None:
    assert_rejected("frameworkRole", role, "must be '*' or a Mesos role name")


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "es-mesos/elasticsearch-executor:0.1.0",
        "registry.example.com/es-mesos/executor:1.0",
        "registry.example.com:5000/team/es__exec:v1.2_rc-3",
        "es@sha256:" + "a" * 64,
        "es:1.0@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_docker_images_accepted(image: str) -> None:
    assert cfg(elasticsearchDockerImage=image).docker_image == image


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Es/Executor",
        "es:",
        "es:tag with space",
        "es:-tag",
        "http://registry/es",
        "es@sha256:abc",
        "es//exec",
        "es/",
        "es:" + "t" * 129,
    ],
)
def test_docker_images_rejected(image: str) -> None:
    assert_rejected("elasticsearchDockerImage", image, "must be a Docker image reference")


# --- labels and volume options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b c=d", (("a", "b"), ("c", "d"))),
        ("a=b,c=d", (("a", "b"), ("c", "d"))),
        ("  a=b ,  c=d\tx=y=z ", (("a", "b"), ("c", "d"), ("x", "y=z"))),
        ("a=", (("a", ""),)),
        ("", ()),
        ("es-mesosx=1", (("es-mesosx", "1"),)),
    ],
)
def test_labels_accepted(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_labels(text) == expected
    assert cfg(executorLabels=text).executor_labels == expected


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("a=b a=c", "label 'a' is given twice"),
        ("a=b,a=b", "label 'a' is given twice"),
        ("es-mesos.node-id=1", "label keys starting with 'es-mesos.' belong to the framework; 'es-mesos.node-id'"),
        ("team=x es-mesos.cluster=y", "'es-mesos.cluster' is not allowed"),
        ("novalue", "must be key=value items separated by spaces or commas; 'novalue' is not"),
        ("=b", "must be key=value items separated by spaces or commas; '=b' is not"),
    ],
)
def test_labels_rejected(text: str, detail: str) -> None:
    assert_rejected("executorLabels", text, detail)


label_keys = st.from_regex(r"[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,15}", fullmatch=True).filter(
    lambda k: not k.startswith("es-mesos.")
)
label_values = st.from_regex(r"[A-Za-z0-9_.:/=-]{0,12}", fullmatch=True)


@no_db
@given(st.dictionaries(label_keys, label_values, max_size=6), st.sampled_from([" ", ",", " , ", "\n"]))
def test_parse_labels_round_trip(labels: dict[str, str], sep: str) -> None:
    text = sep.join(f"{k}={v}" for k, v in labels.items())
    assert parse_labels(text) == tuple(labels.items())


VOLUME_ALLOWED = "must be a comma-separated list of key=value"


def test_volume_options_keep_their_order() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeOptions="size=100,volumetype=io1,iops=3000")
    assert c.external_volume_options == (("size", "100"), ("volumetype", "io1"), ("iops", "3000"))
    assert parse_key_values(" iops=3000 , size=100 ") == (("iops", "3000"), ("size", "100"))
    assert parse_key_values("") == ()


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("size=1,size=2", "'size' is given twice"),
        ("size", "'size' is not"),
        ("size=", "'size=' is not"),
        ("size=100,,iops=1", "'' is not"),
        ("=100", "'=100' is not"),
        ("si ze=100", "'si ze=100' is not"),
        ("name='x'", """"name='x'" is not"""),
        ('name="x"', """'name="x"' is not"""),
    ],
)
@pytest.mark.parametrize("flag", ["externalVolumeOptions", "externalVolumeConfigOptions"])
def test_volume_options_rejected(flag: str, text: str, detail: str) -> None:
    message = assert_rejected(flag, text, VOLUME_ALLOWED, externalVolumeDriver="rexray")
    assert detail in message


option_keys = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
option_values = st.text(
    alphabet=st.characters(exclude_characters=",'\"", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda v: v == v.strip() and v != "")


@no_db
@given(st.dictionaries(option_keys, option_values, max_size=6))
def test_parse_key_values_round_trip(options: dict[str, str]) -> None:
    text = ",".join(f"{k}={v}" for k, v in options.items())
    parsed = parse_key_values(text)
    assert parsed == tuple(options.items())
    assert parse_key_values(",".join(f"{k}={v}" for k, v in parsed)) == parsed
