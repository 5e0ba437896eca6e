"""Storage profiles: the shipped tables, the profile file's schema, resolution and its errors."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import Config, ConfigError
from es_framework.core.profile_schema import tables_from_document
from es_framework.core.profile_tables import (
    LOCAL,
    REXRAY,
    SCALEIO,
    SHIPPED,
    DriverTable,
    Profile,
    VolumeProfileError,
    base_driver_name,
    check_options,
    check_value,
    free_form_table,
    shipped_table_for,
)
from es_framework.core.volume_profiles import (
    check_profiles,
    profile_catalog,
    profile_overrides,
    received_name,
    resolve_role,
    role_volumes,
    table_for,
    volume_specs,
    volumes_are_zonal,
)
from tests.harness.builders import config


def cfg(document: dict[str, Any] | None = None, /, **flags: str) -> Config:
    c = config(**flags)
    return replace(c, volume_profiles=tables_from_document(document, "/etc/p.yaml")) if document else c


def problems_of(c: Config) -> tuple[str, ...]:
    with pytest.raises(VolumeProfileError) as caught:
        check_profiles(c)
    return caught.value.problems


def schema_problems(document: Any) -> tuple[str, ...]:
    with pytest.raises(VolumeProfileError) as caught:
        tables_from_document(document, "/etc/p.yaml")
    return caught.value.problems


# --- the shipped tables -----------------------------------------------------------------------


@pytest.mark.parametrize("table", list(SHIPPED.values()), ids=list(SHIPPED))
def test_every_shipped_profile_is_valid_under_its_own_table(table: DriverTable) -> None:
    assert "default" in table.profiles
    for profile in table.profiles.values():
        for part in ("options", "config", "data"):
            assert check_options(table, getattr(profile, part), f"{table.name}.{profile.name}") == []
        for role in ("config", "data"):
            final = {table.canonical(k): v for k, v in profile.options_for(role)}
            assert table.check is None or table.check(final) == [], (profile.name, role)


def test_rexray_keeps_todays_options_by_default() -> None:
    # Existing REX-Ray users see no change: config volumes 1 GiB, data volumes the driver's default.
    c = cfg(externalVolumeDriver="rexray")
    config_spec, data_spec = volume_specs(c, 3)
    assert (config_spec.name, config_spec.profile, config_spec.options) == (
        "elasticsearch3config",
        "default",
        (("size", "1"),),
    )
    assert (data_spec.name, data_spec.profile, data_spec.options) == ("elasticsearch3data", "default", ())


def test_rexray_gold_is_encrypted_io1_with_30_iops_per_gib() -> None:
    gold = REXRAY.profiles["gold"]
    data = dict(gold.options_for("data"))
    config_ = dict(gold.options_for("config"))
    assert data == {"volumetype": "io1", "encrypted": "true", "size": "100", "iops": "3000"}
    assert config_ == {"volumetype": "io1", "encrypted": "true", "size": "4", "iops": "120"}
    assert int(data["iops"]) == 30 * int(data["size"])
    assert REXRAY.zonal and not REXRAY.profile_in_name
    assert {"default", "gold", "silver", "bronze"} <= set(REXRAY.profiles)


def test_scaleio_ships_default_only_and_lists_no_iops() -> None:
    assert set(SCALEIO.profiles) == {"default"}
    assert SCALEIO.profiles["default"].options_for("config") == (("size", "1"),)
    assert SCALEIO.kind_of("iops") is None and SCALEIO.kind_of("volumeType") == "text"
    assert not SCALEIO.zonal


def test_local_gets_no_options_at_all() -> None:
    c = cfg(externalVolumeDriver="local")
    assert [spec.options for spec in volume_specs(c, 1)] == [(), ()]
    assert LOCAL.scope == "local" and LOCAL.closed and set(LOCAL.profiles) == {"default"}


@pytest.mark.parametrize(
    ("driver", "table"),
    [
        ("rexray", "rexray"),
        ("rexray/ebs", "rexray"),
        ("rexray/ebs:0.11.4", "rexray"),
        ("REXRAY", "rexray"),
        ("scaleio", "scaleio"),
        ("rexray/scaleio:latest", "scaleio"),
        ("local", "local"),
        ("pxd", None),
        ("registry.example.com:5000/rexray/ebs", None),
    ],
)
def test_driver_names_map_to_tables(driver: str, table: str | None) -> None:
    found = shipped_table_for(driver)
    assert (found.name if found else None) == table
    assert table_for(cfg(externalVolumeDriver=driver)).name == (table or driver)


def test_base_driver_name_strips_a_tag_only() -> None:
    assert base_driver_name("rexray/ebs:0.11.4") == "rexray/ebs"
    assert base_driver_name("host:5000/rexray/ebs") == "host:5000/rexray/ebs"
    assert base_driver_name("rexray") == "rexray"


def test_free_form_has_default_only_and_takes_anything() -> None:
    table = free_form_table("pxd")
    assert set(table.profiles) == {"default"} and table.kinds is None and table.source == "free-form"
    c = cfg(externalVolumeDriver="pxd", externalVolumeOptions="repl=3,whatever=x")
    assert check_profiles(c) == ()
    assert volume_specs(c, 1)[1].options == (("repl", "3"), ("whatever", "x"))


# --- option kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "out"),
    [
        ("int", "3000", "3000"),
        ("int", "007", "7"),
        ("bool", "True", "true"),
        ("bool", "no", "false"),
        ("text", "anything", "anything"),
        (("io1", "gp2"), "gp2", "gp2"),
    ],
)
def test_values_of_each_kind(kind: Any, value: str, out: str) -> None:
    assert check_value(kind, value) == out


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", "fast"),
        ("int", "-1"),
        ("int", "1.5"),
        ("int", "²"),
        ("bool", "maybe"),
        (("io1",), "IO1"),
        ("text", "a,b"),
    ],
)
def test_values_of_the_wrong_kind_are_refused(kind: Any, value: str) -> None:
    with pytest.raises(ValueError, match=repr(value).replace("\\", "\\\\")[1:-1]):
        check_value(kind, value)


# --- errors at start --------------------------------------------------------------------------


def test_unknown_profile_names_flag_value_and_known_profiles() -> None:
    (problem,) = problems_of(cfg(externalVolumeDriver="rexray", volumeProfile="data=platinum"))
    assert problem.startswith("--volumeProfile data=platinum: rexray has no profile 'platinum'")
    assert "default, gold, silver, bronze" in problem and "--volumeProfileFile" in problem


def test_non_default_profile_for_a_driver_without_a_table() -> None:
    (problem,) = problems_of(cfg(externalVolumeDriver="pxd", volumeProfile="config=gold"))
    assert "--volumeProfile config=gold: driver 'pxd' has no profile table" in problem


def test_local_has_no_gold() -> None:
    (problem,) = problems_of(cfg(externalVolumeDriver="local", volumeProfile="data=gold"))
    assert problem.startswith("--volumeProfile data=gold: local has no profile 'gold'")


def test_every_problem_is_reported_at_once_and_is_a_config_error() -> None:
    c = cfg(externalVolumeDriver="rexray", volumeProfile="data=x,config=y")
    with pytest.raises(ConfigError) as caught:
        check_profiles(c)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"externalVolumeOptions": "iops=fast"}, "--externalVolumeOptions iops=fast: 'fast' is not a whole number"),
        ({"externalVolumeConfigOptions": "encrypted=maybe"}, "--externalVolumeConfigOptions encrypted=maybe"),
        ({"externalVolumeOptions": "volumetype=ssd"}, "'ssd' is not one of standard|gp2|gp3|io1|io2|st1|sc1"),
        ({"externalVolumeOptions": "type=gp2,volumeType=io1"}, "type and volumeType are one option to rexray"),
    ],
)
def test_explicit_options_of_the_wrong_kind(flags: dict[str, str], expected: str) -> None:
    assert any(expected in p for p in problems_of(cfg(externalVolumeDriver="rexray", **flags)))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"externalVolumeOptions": "volumetype=io1"}, "EBS volumetype=io1 needs iops"),
        ({"externalVolumeOptions": "volumetype=gp2,iops=300"}, "EBS takes iops for gp3, io1, io2 only"),
        ({"volumeProfile": "data=gold", "externalVolumeOptions": "size=10"}, "at most 50 IOPS per GiB"),
        ({"volumeProfile": "data=silver", "externalVolumeOptions": "iops=500"}, "not for volumetype=gp2"),
    ],
)
def test_ebs_combinations_ebs_refuses(flags: dict[str, str], expected: str) -> None:
    (problem,) = problems_of(cfg(externalVolumeDriver="rexray", **flags))
    assert problem.startswith("the data volume (--volumeProfile data=") and expected in problem


def test_a_closed_driver_refuses_unknown_options_and_warns_about_quota_size() -> None:
    (problem,) = problems_of(cfg(externalVolumeDriver="local", externalVolumeOptions="volumetype=io1"))
    assert problem.startswith("--externalVolumeOptions volumetype=io1: local refuses options it does not take")
    (warning,) = check_profiles(cfg(externalVolumeDriver="local", externalVolumeConfigOptions="size=1G"))
    assert "quota size requested but no quota support" in warning


def test_an_open_table_passes_unlisted_options_with_a_warning() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeOptions="fsType=xfs")
    (warning,) = check_profiles(c)
    assert warning.startswith("--externalVolumeOptions fsType=xfs: not an option rexray's profile table lists")
    assert ("fsType", "xfs") in volume_specs(c, 1)[1].options


def test_no_driver_means_nothing_to_check() -> None:
    c = cfg()
    assert check_profiles(c) == () and profile_overrides(c) == () and not volumes_are_zonal(c)
    assert [r.options for r in role_volumes(c)] == [(), ()]


def test_volume_specs_refuses_what_check_profiles_refuses() -> None:
    with pytest.raises(VolumeProfileError):
        volume_specs(cfg(externalVolumeDriver="rexray", volumeProfile="data=nope"), 1)


# --- resolution and overrides -----------------------------------------------------------------


def test_explicit_options_come_after_the_profile_and_win() -> None:
    c = cfg(externalVolumeDriver="rexray", volumeProfile="data=gold", externalVolumeOptions="size=500,iops=6000")
    data = volume_specs(c, 1)[1]
    assert data.profile == "gold"
    assert data.options == (("volumetype", "io1"), ("encrypted", "true"), ("size", "500"), ("iops", "6000"))
    messages = [o.message() for o in profile_overrides(c)]
    assert messages == [
        "--externalVolumeOptions size=500 overrides size=100 of storage profile 'gold' for every data volume",
        "--externalVolumeOptions iops=6000 overrides iops=3000 of storage profile 'gold' for every data volume",
    ]


def test_the_config_flag_overrides_the_rexray_config_size() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeConfigOptions="size=2")
    assert volume_specs(c, 1)[0].options == (("size", "2"),)
    (override,) = profile_overrides(c)
    assert (override.role, override.flag, override.profile_value, override.value) == (
        "config",
        "--externalVolumeConfigOptions",
        "1",
        "2",
    )


def test_an_alias_or_another_case_overrides_the_same_rexray_option() -> None:
    c = cfg(externalVolumeDriver="rexray", volumeProfile="data=silver", externalVolumeOptions="Type=st1,size=500")
    data = volume_specs(c, 1)[1]
    assert data.options == (("Type", "st1"), ("size", "500"))
    assert [o.key for o in profile_overrides(c)] == ["Type"]


def test_the_same_value_given_again_is_no_override() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeConfigOptions="size=1")
    assert profile_overrides(c) == ()


def test_bools_reach_the_driver_as_true_or_false() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeOptions="encrypted=YES")
    assert volume_specs(c, 1)[1].options == (("encrypted", "true"),)


KEYS = st.sampled_from(["size", "iops", "encrypted", "Size", "IOPS", "volumetype", "type", "foo", "bar"])
VALUES = st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True)


@given(
    profile_opts=st.dictionaries(KEYS, VALUES, max_size=5),
    role_opts=st.dictionaries(KEYS, VALUES, max_size=5),
    explicit=st.dictionaries(KEYS, VALUES, max_size=5),
    case_insensitive=st.booleans(),
)
def test_resolution_laws(
    profile_opts: dict[str, str], role_opts: dict[str, str], explicit: dict[str, str], case_insensitive: bool
) -> None:
    table = replace(free_form_table("x"), case_insensitive=case_insensitive)
    # As the profile file and check_profiles leave them: a profile spelled canonically, no option twice.
    profile_opts = {table.canonical(k): v for k, v in profile_opts.items()}
    role_opts = {table.canonical(k): v for k, v in role_opts.items()}
    explicit = {
        k: v for k, v in explicit.items() if k == min(e for e in explicit if table.canonical(e) == table.canonical(k))
    }
    profile = Profile("p", options=tuple(profile_opts.items()), data=tuple(role_opts.items()))
    explicit_pairs = tuple(explicit.items())
    resolved = resolve_role(table, profile, "data", explicit_pairs)
    canon = table.canonical
    # 1. every explicit option is there, last, unchanged (free-form: no normalisation).
    assert resolved.options[len(resolved.options) - len(explicit_pairs) :] == explicit_pairs
    # 2. nothing the explicit options name survives from the profile.
    kept = resolved.options[: len(resolved.options) - len(explicit_pairs)]
    assert not {canon(k) for k, _ in kept} & {canon(k) for k in explicit}
    # 3. every profile option the explicit ones do not name is kept; the role's win over both roles'.
    wanted = dict(profile.options_for("data"))
    assert dict(kept) == {k: v for k, v in wanted.items() if canon(k) not in {canon(e) for e in explicit}}
    # 4. an override is reported exactly when a value changed.
    changed = {(e, v, ev) for k, v in wanted.items() for e, ev in explicit.items() if canon(k) == canon(e) and v != ev}
    assert {(o.key, o.profile_value, o.value) for o in resolved.overrides} == changed
    # 5. the config role never sees the data role's own options.
    assert not set(role_opts.items()) - set(profile_opts.items()) & set(profile.options_for("config"))


# --- name@profile -----------------------------------------------------------------------------

FLOCKERISH = {"drivers": {"flockerish": {"profile_in_name": True, "profiles": {"gold": {}, "silver": None}}}}


def test_name_at_profile_only_for_drivers_that_read_it_and_never_at_default() -> None:
    c = cfg(FLOCKERISH, externalVolumeDriver="flockerish", volumeProfile="data=gold")
    config_spec, data_spec = volume_specs(c, 4)
    assert data_spec.name == "elasticsearch4data"  # the identity keeps the bare name
    assert received_name(c, data_spec) == "elasticsearch4data@gold"
    assert received_name(c, config_spec) == "elasticsearch4config"  # name@default is name
    gold = cfg(externalVolumeDriver="rexray", volumeProfile="data=gold")
    assert received_name(gold, volume_specs(gold, 4)[1]) == "elasticsearch4data"


# --- the profile file's schema ----------------------------------------------------------------


def test_file_adds_and_replaces_profiles_of_a_shipped_table() -> None:
    document = {
        "drivers": {
            "rexray": {
                "profiles": {
                    "platinum": {
                        "description": "io1 10k",
                        "options": {"volumetype": "io1", "encrypted": True},
                        "data": {"size": 500, "iops": 10000},
                        "config": {"size": 4, "iops": 200},
                    },
                    "default": {"config": {"size": 2}},
                }
            }
        }
    }
    c = cfg(document, externalVolumeDriver="rexray", volumeProfile="data=platinum")
    table = table_for(c)
    assert set(table.profiles) == {"default", "gold", "silver", "bronze", "platinum"}
    assert table.profiles["platinum"].source == "file" and table.zonal
    config_spec, data_spec = volume_specs(c, 1)
    assert config_spec.options == (("size", "2"),)
    assert dict(data_spec.options) == {"volumetype": "io1", "encrypted": "true", "size": "500", "iops": "10000"}


def test_file_alias_takes_a_shipped_table_under_another_driver_name() -> None:
    c = cfg({"drivers": {"ebs": {"table": "rexray"}}}, externalVolumeDriver="ebs", volumeProfile="data=gold")
    assert table_for(c).zonal and volumes_are_zonal(c)
    assert dict(volume_specs(c, 1)[1].options)["volumetype"] == "io1"


def test_file_free_form_driver_with_seed_knobs() -> None:
    document = {
        "drivers": {
            "hedvig": {
                "description": "Hedvig",
                "options": {
                    "compression": "bool",
                    "snapshot": "text",
                    "replication": "int",
                    "residence": ["ssd", "hdd"],
                },
                "zonal": True,
                "profiles": {"gold": {"options": {"compression": False, "replication": 3, "residence": "ssd"}}},
            }
        }
    }
    c = cfg(document, externalVolumeDriver="hedvig", volumeProfile="data=gold")
    assert volume_specs(c, 1)[1].options == (("compression", "false"), ("replication", "3"), ("residence", "ssd"))
    assert volumes_are_zonal(c)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "the file must be a mapping"),
        ({"drivers": []}, "drivers: must be a mapping"),
        ({"drivers": {}, "profiles": {}}, "(top level).profiles: not a field here"),
        (
            {"drivers": {"rexray": {"profiles": {"gold": {"options": {"snapshot": "daily"}}}}}},
            "option 'snapshot' is not one rexray takes",
        ),
        (
            {"drivers": {"rexray": {"profiles": {"g": {"data": {"iops": "fast"}}}}}},
            "drivers.rexray.profiles.g.data: option iops: 'fast' is not a whole number",
        ),
        ({"drivers": {"rexray": {"zonal": False}}}, "drivers.rexray (rexray's table).zonal: not a field here"),
        ({"drivers": {"x": {"table": "ebs"}}}, "drivers.x.table: 'ebs' is not a shipped table"),
        ({"drivers": {"x": {"options": {"a": "float"}}}}, "drivers.x.options.a: 'float' is not a kind"),
        ({"drivers": {"x": {"zonal": "yes"}}}, "drivers.x.zonal: must be true or false"),
        ({"drivers": {"x": {"profiles": {"bad name": {}}}}}, "'bad name' is not a profile name"),
        (
            {"drivers": {"x": {"profiles": {"g": {"data": {"size": 1.5}}}}}},
            "drivers.x.profiles.g.data.size: 1.5 is not a string",
        ),
        ({"drivers": {"x": {"profiles": {"g": {"data": {"o": "a,b"}}}}}}, "without commas"),
        ({"drivers": {"x": {"profiles": {"g": {"datum": {}}}}}}, "drivers.x.profiles.g.datum: not a field here"),
        (
            {"drivers": {"x": {"options": {"a": "int"}, "profiles": {"g": {"options": {"b": 1}}}}}},
            "option 'b' is not one x takes",
        ),
        ({"drivers": {"rexray/ebs": {}, "REXRAY/EBS:1": {}}}, "the same driver as drivers.rexray/ebs"),
        ({"drivers": {"x": []}}, "drivers.x: must be a mapping"),
        ({"drivers": {"x": {"profiles": []}}}, "drivers.x.profiles: must be a mapping"),
    ],
)
def test_schema_problems_name_their_path(document: Any, expected: str) -> None:
    problems = schema_problems(document)
    assert all(p.startswith("--volumeProfileFile /etc/p.yaml: ") for p in problems)
    assert any(expected in p for p in problems), problems


def test_a_free_form_table_from_the_file_checks_its_listed_kinds_only_if_given() -> None:
    tables = tables_from_document({"drivers": {"x": {"profiles": {"g": {"options": {"any": "thing"}}}}}}, "f")
    assert tables["x"].kinds is None and tables["x"].profiles["g"].options == (("any", "thing"),)


# --- what other modules ask -------------------------------------------------------------------


def test_zonal_follows_the_table() -> None:
    assert volumes_are_zonal(cfg(externalVolumeDriver="rexray/ebs"))
    assert not volumes_are_zonal(cfg(externalVolumeDriver="scaleio"))
    assert not volumes_are_zonal(cfg(externalVolumeDriver="local"))
    assert not volumes_are_zonal(cfg(externalVolumeDriver="pxd"))


def test_catalog_lists_every_profile_per_driver_default_first() -> None:
    c = cfg(
        {"drivers": {"pxd": {"profiles": {"gold": {"options": {"repl": 3}}}}}},
        externalVolumeDriver="pxd",
        volumeProfile="data=gold",
        externalVolumeOptions="repl=2",
    )
    catalog = profile_catalog(c)
    assert [e["name"] for e in catalog] == ["default", "bronze", "gold", "silver"]
    gold = catalog[2]
    assert gold["selected_for"] == ["data"]
    assert set(gold["drivers"]) == {"rexray", "pxd"}
    pxd = gold["drivers"]["pxd"]
    assert pxd["in_use"] and pxd["source"] == "file" and pxd["options"]["data"] == {"repl": "3"}
    assert pxd["effective"] == {"data": {"repl": "2"}}
    assert not gold["drivers"]["rexray"]["in_use"] and "effective" not in gold["drivers"]["rexray"]
    assert gold["drivers"]["rexray"]["options"]["data"]["volumetype"] == "io1"
    default = catalog[0]
    assert default["selected_for"] == ["config"] and set(default["drivers"]) == {"rexray", "scaleio", "local", "pxd"}


def test_catalog_without_a_driver_lists_the_shipped_tables() -> None:
    catalog = profile_catalog(cfg())
    assert all(e["selected_for"] == [] for e in catalog)
    assert set(catalog[0]["drivers"]) == {"rexray", "scaleio", "local"}


def test_file_profiles_are_spelled_as_the_table_spells_them() -> None:
    document = {
        "drivers": {
            "rexray": {"profiles": {"p": {"options": {"volumeType": "gp2", "Size": 8}, "data": {"TYPE": "st1"}}}}
        }
    }
    profile = tables_from_document(document, "f")["rexray"].profiles["p"]
    assert profile.options_for("data") == (("size", "8"), ("volumetype", "st1"))


def test_file_profile_naming_one_option_twice_is_refused() -> None:
    (problem,) = schema_problems(
        {"drivers": {"rexray": {"profiles": {"p": {"data": {"type": "gp2", "volumetype": "io1"}}}}}}
    )
    assert "drivers.rexray.profiles.p.data: type and volumetype are one option to rexray" in problem
