"""The cluster's --elasticsearchSecurity mode, decided at leadership (es_framework/core/security_mode.py):
auto for a new cluster outside local mode unless off is given, the recorded mode kept by an existing
cluster (a recorded off warns at every start, an explicit auto there does not switch it), an earlier
release's state read by its CA, local mode as before. Checked over every combination of the inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import SECURITY_OFF_WARNING
from es_framework.config.flags_security import UNSEALED_WARNING
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.node_state import ClusterState
from es_framework.core.security_mode import (
    MODES,
    Mode,
    SecurityDecision,
    decide_for,
    decide_security_mode,
    is_new_cluster,
)
from es_framework.core.state_document import state_from_json
from tests.config.support import cfg, no_db, write_secret_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FW = "elasticsearch"
CA = StoredCa("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", "key", False, 1.0)

flags: st.SearchStrategy[Mode | None] = st.sampled_from((None, *MODES))
recorded_modes = flags


@no_db
@given(
    flag=flags,
    local_mode=st.booleans(),
    recorded=recorded_modes,
    new=st.booleans(),
    has_ca=st.booleans(),
    user_security=st.booleans(),
)
def test_the_rules_hold_for_every_combination(
    *, flag: Mode | None, local_mode: bool, recorded: Mode | None, new: bool, has_ca: bool, user_security: bool
) -> None:
    decision = decide_security_mode(
        flag,
        local_mode=local_mode,
        recorded=recorded,
        new=new,
        has_ca=has_ca,
        user_security=user_security,
    )
    said = " ".join(decision.warnings)
    if local_mode:
        # As the release before: the flag decides (off when not given), nothing is recorded or added.
        assert decision == SecurityDecision(flag or "off", None)
        return
    if recorded is not None:
        assert decision.mode == recorded and decision.record is None
    elif not new:
        assert decision.mode == ("auto" if has_ca else "off") and decision.record == decision.mode
    else:
        secured_by_the_user = user_security and flag != "auto"
        assert decision.mode == ("off" if flag == "off" or secured_by_the_user else "auto")
        assert decision.record == decision.mode
    if flag is not None and flag != decision.mode:
        assert said, "a given mode the cluster does not take is never silent"
    if flag == "auto" and decision.mode == "off":
        assert "full cluster restart" in said and "does not switch" in said
    off_unsecured = decision.mode == "off" and not user_security
    # The off warning itself comes from the leadership only when the command line could not say it
    # (a given off said it already) and the cluster is an existing one (a new one is off only if given).
    existing = recorded is not None or not new
    assert (SECURITY_OFF_WARNING in decision.warnings) == (off_unsecured and flag != "off" and existing)
    if off_unsecured:
        assert said, "security off is said at every start"
    if decision.mode == "auto":
        assert SECURITY_OFF_WARNING not in decision.warnings


def test_a_new_cluster_is_auto_by_default_and_records_it() -> None:
    decision = decide_security_mode(None, local_mode=False, recorded=None, new=True, has_ca=False)
    assert (decision.mode, decision.record, decision.warnings) == ("auto", "auto", ())
    assert "(the default)" in decision.notes[0]


def test_a_new_cluster_given_off_is_off_with_the_warning_and_records_it() -> None:
    decision = decide_security_mode("off", local_mode=False, recorded=None, new=True, has_ca=False)
    assert (decision.mode, decision.record) == ("off", "off")
    (warning,) = decision.warnings
    assert "without TLS" in warning and "stays off at every start" in warning
    # The command line logged SECURITY_OFF_WARNING for the given off already: not twice.
    assert SECURITY_OFF_WARNING not in decision.warnings


def test_a_recorded_off_stays_off_and_warns_at_every_start() -> None:
    modes: tuple[Mode | None, ...] = (None, "off")
    for flag in modes:
        decision = decide_security_mode(flag, local_mode=False, recorded="off", new=False, has_ca=False)
        assert (decision.mode, decision.record) == ("off", None)
        assert any("security stays off for this cluster" in w for w in decision.warnings)
        assert (SECURITY_OFF_WARNING in decision.warnings) == (flag is None)


def test_an_explicit_auto_does_not_switch_a_recorded_off_and_says_how() -> None:
    decision = decide_security_mode("auto", local_mode=False, recorded="off", new=False, has_ca=False)
    assert (decision.mode, decision.record) == ("off", None)
    switch = decision.warnings[-1]
    assert "does not switch this cluster" in switch and "full cluster restart" in switch
    assert "transport TLS cannot be rolled in" in switch and "--elasticsearchSecurity auto" in switch


def test_a_recorded_auto_ignores_an_explicit_off_loudly() -> None:
    decision = decide_security_mode("off", local_mode=False, recorded="auto", new=False, has_ca=True)
    assert (decision.mode, decision.record) == ("auto", None)
    assert "--elasticsearchSecurity off is ignored" in decision.warnings[0]


@pytest.mark.parametrize(("has_ca", "mode"), [(True, "auto"), (False, "off")])
def test_an_earlier_release_state_is_read_by_its_ca_and_recorded(has_ca: bool, mode: str) -> None:
    decision = decide_security_mode(None, local_mode=False, recorded=None, new=False, has_ca=has_ca)
    assert (decision.mode, decision.record) == (mode, mode)


def test_the_operators_own_certificates_keep_a_new_cluster_without_a_ca_of_the_schedulers() -> None:
    decision = decide_security_mode(None, local_mode=False, recorded=None, new=True, has_ca=False, user_security=True)
    assert (decision.mode, decision.record, decision.warnings) == ("off", "off", ())
    recorded = decide_security_mode(None, local_mode=False, recorded="off", new=False, has_ca=False, user_security=True)
    assert recorded.warnings == ()  # secured by the bundle: nothing is off


def test_a_new_state_is_one_no_node_can_have_run_from() -> None:
    assert is_new_cluster(ClusterState(desired_nodes=3))
    assert is_new_cluster(ClusterState(desired_nodes=3, certificate_authority=CA))  # created, never registered
    assert not is_new_cluster(ClusterState(desired_nodes=3, framework_id="fw"))
    assert not is_new_cluster(ClusterState(desired_nodes=3, cluster_uuid="u"))
    assert not is_new_cluster(ClusterState(desired_nodes=3, bootstrap_masters=("elasticsearch1",)))


@pytest.mark.parametrize(
    "fixture", ["v0.1.0/state-formed.json", "v0.1.0/state-bootstrapping.json", "schema3/state.json"]
)
def test_earlier_releases_states_are_existing_clusters_without_a_recorded_mode(fixture: str) -> None:
    state = state_from_json(json.loads((FIXTURES / fixture).read_text()), FW)
    assert state.security_mode is None and not is_new_cluster(state)
    # No CA in them: they were off (or secured by the operator's bundle), and stay so.
    assert decide_for(cfg(mesosMaster="zk://zk1:2181/mesos"), state).mode == "off"


def test_the_default_turned_auto_warns_about_unsealed_secrets_unless_a_key_is_given(tmp_path: Path) -> None:
    new = ClusterState(desired_nodes=3)
    default = decide_for(cfg(mesosMaster="zk://zk1:2181/mesos"), new)
    assert default.mode == "auto" and UNSEALED_WARNING in default.warnings
    sealed = decide_for(cfg(mesosMaster="zk://zk1:2181/mesos", secretKeyFile=write_secret_key(tmp_path)), new)
    assert sealed.mode == "auto" and sealed.warnings == ()
    # A given auto was warned about with the other flags already.
    assert (
        UNSEALED_WARNING
        not in decide_for(cfg(mesosMaster="zk://zk1:2181/mesos", elasticsearchSecurity="auto"), new).warnings
    )


def test_local_mode_is_off_unless_auto_is_given_and_records_nothing() -> None:
    new = ClusterState(desired_nodes=3)
    assert (decide_for(cfg(mesosMaster="local"), new).mode, decide_for(cfg(mesosMaster="local"), new).record) == (
        "off",
        None,
    )
    assert decide_for(cfg(mesosMaster="local", elasticsearchSecurity="auto"), new).mode == "auto"
