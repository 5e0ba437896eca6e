"""The closest known names to a misspelt flag or ``ES_MESOS_*`` variable (es_framework/config/suggest.py)."""

from __future__ import annotations

from es_framework.config import FLAGS, resolve_config
from es_framework.config.suggest import closest_names, did_you_mean

KNOWN = {"--elasticsearchNodes", "--elasticsearchNofile", "--elasticsearchMasterNodes", "--useIpAddress"}


def test_closest_names() -> None:
    assert closest_names("--elasticsearchNodez", KNOWN) == ["--elasticsearchNodes"]
    assert closest_names("--ELASTICSEARCHNODES", KNOWN) == ["--elasticsearchNodes"]
    assert closest_names("--useip", KNOWN) == ["--useIpAddress"]  # a prefix in another case
    assert closest_names("--bogus", KNOWN) == []
    assert closest_names("--x", []) == []


def test_did_you_mean() -> None:
    assert did_you_mean("--elasticsearchNodez", KNOWN) == "; did you mean --elasticsearchNodes?"
    assert did_you_mean("--elasticsearchNo", KNOWN) == "; did you mean --elasticsearchNodes or --elasticsearchNofile?"
    assert did_you_mean("--bogus", KNOWN) == ""


def test_every_real_flag_is_its_own_closest_name_when_misspelt_by_one_letter() -> None:
    known = {f"--{spec.name}" for spec in FLAGS}
    for name in sorted(known):
        typo = name[:-1] + ("z" if name[-1] != "z" else "y")
        assert name in closest_names(typo, known), typo


def test_a_misspelt_variable_is_named_with_the_one_meant() -> None:
    config = resolve_config({}, {"ES_MESOS_ELASTICSEARCH_NODEZ": "5", "ES_MESOS_NOTHING_LIKE_IT": "1"})
    assert config.elasticsearch_nodes == 3
    assert [w for w in config.warnings if w.startswith("ES_MESOS_")] == [
        "ES_MESOS_ELASTICSEARCH_NODEZ is set but is not one of es-framework's variables, so it is ignored; "
        "did you mean ES_MESOS_ELASTICSEARCH_NODES?",
        "ES_MESOS_NOTHING_LIKE_IT is set but is not one of es-framework's variables, so it is ignored (a typo?)",
    ]


def test_a_common_prefix_does_not_make_names_similar() -> None:
    known = {"ES_MESOS_CONSTRAINTS", "ES_MESOS_ELASTICSEARCH_NODES"}
    assert closest_names("ES_MESOS_NOTHING_LIKE_IT", known, common_prefix="ES_MESOS_") == []
    assert closest_names("ES_MESOS_", known, common_prefix="ES_MESOS_") == []
    assert closest_names("ES_MESOS_CONSTRAINT", known, common_prefix="ES_MESOS_") == ["ES_MESOS_CONSTRAINTS"]
