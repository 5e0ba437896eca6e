"""Which ``--elasticsearchSecurity`` mode a cluster runs with, decided at leadership (pure).

The flag alone cannot say it: whether the nodes speak TLS is a property of the running cluster, not
of one scheduler's command line. Elasticsearch's transport TLS is all or nothing across a cluster
(a node with ``xpack.security.transport.ssl.enabled: true`` refuses the plain transport connection
of a peer without it, and the reverse; "Set up basic security for the Elastic Stack" in the
Elasticsearch 8 reference says that enabling it on an existing cluster needs a full cluster restart).
So the mode is chosen once per cluster and recorded in the framework state
(``ClusterState.security_mode``); every later leader keeps what the state records.

:func:`decide_security_mode` is the rule, over plain values (so it is tested over every
combination), and :func:`decide_for` reads those values from the configuration and the state:

- **local mode** (``--mesosMaster local``) keeps the behaviour of the release before: the flag
  decides (``off`` when it is not given) and nothing is recorded;
- **a new cluster** (never registered with Mesos, no node record: :func:`is_new_cluster`) is
  ``auto`` unless ``--elasticsearchSecurity off`` is given (then ``off``, with the warning), or
  unless the operator's own certificates (``--elasticsearchPasswordFile`` and
  ``--elasticsearchCertificatesUrl``) secure it and the flag is not given: then the scheduler makes
  no CA, as before;
- **a cluster whose state records a mode** keeps it, whatever the flag says: a recorded ``off``
  warns at every start, and an explicit ``auto`` there says that the switch needs a full cluster
  restart (and how to ask for it), but does not switch — unless ``--elasticsearchSecuritySwitch
  fullRestart`` asks for that restart too: then the decision is ``auto``, recorded together with the
  switch (``switch``: :mod:`es_framework.core.engine_security_switch` stops every node, then launches
  them all with TLS), with the full-restart warning; refused (a warning, the cluster stays ``off``)
  while a rollout is under way, whose steps would restart nodes the switch stops;
- **a cluster whose state records no mode** (written by an earlier release) is ``auto`` when its
  state holds the scheduler's CA (an earlier ``auto`` made it) and ``off`` otherwise; the mode is
  recorded from then on.

The mode to record (when it is not recorded yet, and not in local mode) is written through the
engine's fenced state write before the scheduler registers with Mesos, so before any launch that
depends on it (:func:`es_framework.core.engine_security.settle_security_mode`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from es_framework.config import SECURITY_OFF_WARNING, Config
from es_framework.config.flags_security import UNSEALED_WARNING
from es_framework.core.node_state import ClusterState

Mode = Literal["auto", "off"]
MODES: tuple[Mode, ...] = ("auto", "off")

#: How the operator turns a recorded ``off`` into ``auto``: a full cluster restart, asked for explicitly
#: (:mod:`es_framework.core.engine_security_switch`).
SWITCH_HOW = (
    "To switch, start the scheduler with --elasticsearchSecurity auto --elasticsearchSecuritySwitch fullRestart: "
    "it records auto, stops every node, and starts them all again with TLS once every one has ended (the cluster "
    "is unavailable meanwhile; each node comes back on its agent and volumes)"
)


@dataclass(frozen=True)
class SecurityDecision:
    """The mode the scheduler runs with, the mode to record in the state (None: nothing to write),
    and what it tells the operator at WARNING (INFO for ``notes``)."""

    mode: Mode
    record: Mode | None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: Switch the cluster from ``off`` to ``auto`` with a full cluster restart (``record`` is ``auto``).
    switch: bool = False


def is_new_cluster(state: ClusterState) -> bool:
    """Whether no node of this cluster can ever have run: the framework never registered with Mesos
    (a launch needs an offer, which needs the registration; the framework id is recorded at it) and
    the state holds no node record, no node's volumes and no formed cluster. A state the scheduler
    created but never registered with (e.g. it stopped before the master answered) is still new."""
    return (
        state.framework_id is None
        and not state.nodes
        and not state.volumes
        and state.cluster_uuid is None
        and not state.bootstrap_masters
    )


def decide_security_mode(
    flag: Mode | None,
    *,
    local_mode: bool,
    recorded: Mode | None,
    new: bool,
    has_ca: bool,
    user_security: bool = False,
    switch: bool = False,
    rollout: bool = False,
) -> SecurityDecision:
    """The mode for ``flag`` (``--elasticsearchSecurity``; None when it was not given) over a state
    that records ``recorded`` (None: no mode recorded), is ``new`` (:func:`is_new_cluster`) and holds
    the scheduler's CA or not (``has_ca``). ``user_security``: the operator's own bundle and password
    secure the nodes (``--elasticsearchCertificatesUrl`` with ``--elasticsearchPasswordFile``).
    ``switch``: ``--elasticsearchSecuritySwitch fullRestart`` was given (the flags allow it only with an
    explicit ``auto``); ``rollout``: a rollout is under way (or paused) in the state."""
    if local_mode:
        return SecurityDecision(flag or "off", None)
    switching = switch and flag == "auto"
    if recorded is not None:
        kept = _keep(flag, recorded, user_security, "the framework state records it")
        return _switched(kept, rollout) if switching and recorded == "off" else _unswitched(kept, switching)
    if not new:
        earlier: Mode = "auto" if has_ca else "off"
        why = "the state, written by an earlier release, " + (
            "holds the cluster's certificate authority" if has_ca else "holds no certificate authority"
        )
        kept = _keep(flag, earlier, user_security, why)
        if switching and earlier == "off":
            return _switched(kept, rollout, earlier)
        return _unswitched(SecurityDecision(kept.mode, earlier, kept.warnings, kept.notes), switching)
    if switching:
        return _unswitched(_new_cluster(flag, user_security), switching)
    return _new_cluster(flag, user_security)


def _new_cluster(flag: Mode | None, user_security: bool) -> SecurityDecision:
    """The mode of a new cluster (:func:`is_new_cluster`), recorded at once."""
    if user_security and flag != "auto":
        return SecurityDecision(
            "off",
            "off",
            notes=(
                "a new cluster secured by --elasticsearchCertificatesUrl and --elasticsearchPasswordFile: the "
                "scheduler makes no certificate authority of its own (--elasticsearchSecurity is recorded off)",
            ),
        )
    if flag == "off":
        return SecurityDecision(
            "off",
            "off",
            (
                "--elasticsearchSecurity off for a new cluster: its nodes run without TLS and without a password, "
                "and the framework state records it, so the cluster stays off at every start; turning security "
                "on later needs a full cluster restart",
            ),
        )
    return SecurityDecision(
        "auto",
        "auto",
        notes=(
            "a new cluster: --elasticsearchSecurity auto"
            + (" (the default)" if flag is None else "")
            + " is recorded in the framework state; the scheduler creates the cluster's certificate authority "
            "and every node runs TLS with a password",
        ),
    )


#: Said at WARNING when the switch starts: what the operator asked for costs every node at once.
SWITCH_WARNING = (
    "--elasticsearchSecuritySwitch fullRestart: switching this cluster from security off to auto with a FULL "
    "CLUSTER RESTART (transport TLS cannot be rolled in: nodes with and without TLS do not talk to each other). "
    "Every node is stopped now; none starts again until every node from before the switch has ended (an "
    "unreachable one until its agent is marked gone); then all start with TLS on their agents and volumes. The "
    "cluster is unavailable meanwhile"
)


def _switched(kept: SecurityDecision, rollout: bool, record: Mode | None = None) -> SecurityDecision:
    """A cluster running ``off`` (``kept``; ``record``: the mode to record without a switch) when the
    switch was asked for: ``auto`` with the switch, or kept ``off`` while a rollout is under way."""
    if rollout:
        refused = (
            "--elasticsearchSecuritySwitch fullRestart is refused while a rollout is under way (its steps would "
            "restart nodes the switch stops): the cluster stays off. Let the rollout finish or abort it "
            "(POST /v1/rollouts/<id>/abort), then start the scheduler again with the same flags"
        )
        return SecurityDecision("off", record, (*kept.warnings, refused), kept.notes)
    return SecurityDecision("auto", "auto", (SWITCH_WARNING,), switch=True)


def _unswitched(decision: SecurityDecision, switching: bool) -> SecurityDecision:
    """``decision``, with a note when the switch was asked for but there is nothing to switch."""
    if not switching:
        return decision
    note = (
        "--elasticsearchSecuritySwitch fullRestart does nothing: this cluster "
        + ("runs with security auto already" if decision.mode == "auto" else "is not switched")
        + " (the flag may be dropped)"
    )
    return replace(decision, notes=(*decision.notes, note))


def _keep(flag: Mode | None, mode: Mode, user_security: bool, why: str) -> SecurityDecision:
    """An existing cluster keeps ``mode``; what the operator is told when ``flag`` asks otherwise."""
    if mode == "auto":
        if flag == "off":
            return SecurityDecision(
                "auto",
                None,
                (
                    f"--elasticsearchSecurity off is ignored: this cluster runs with security auto ({why}); its "
                    "nodes speak TLS, and a node without it could not join them",
                ),
            )
        return SecurityDecision("auto", None)
    warnings: list[str] = []
    if flag == "auto":
        warnings.append(
            f"--elasticsearchSecurity auto does not switch this cluster: it runs with security off ({why}). "
            "Switching needs a full cluster restart (transport TLS cannot be rolled in: nodes with and without "
            f"TLS do not talk to each other). {SWITCH_HOW}"
        )
    elif not user_security:
        # Logged at every start (the flags said nothing, or the scheduler logged the off warning itself).
        warnings.append(f"security stays off for this cluster ({why}). {SWITCH_HOW}")
    if flag != "off" and not user_security:
        # The command line did not warn before leadership (it could not know): the off warning itself.
        warnings.insert(0, SECURITY_OFF_WARNING)
    return SecurityDecision("off", None, tuple(warnings))


def decide_for(config: Config, state: ClusterState) -> SecurityDecision:
    """:func:`decide_security_mode` for the scheduler's ``config`` (``elasticsearch_security`` None:
    the flag was not given) over the ``state`` just read."""
    recorded = state.security_mode if state.security_mode in MODES else None
    decision = decide_security_mode(
        config.elasticsearch_security,
        local_mode=config.local_mode,
        recorded=recorded,
        new=is_new_cluster(state),
        has_ca=state.certificate_authority is not None,
        user_security=config.security_enabled,
        switch=config.elasticsearch_security_switch is not None,
        rollout=state.rollout is not None,
    )
    if decision.mode == "auto" and config.elasticsearch_security is None and config.secret_key is None:
        # An explicit auto was warned about with the other flags; the default only now turns out auto.
        return SecurityDecision(decision.mode, decision.record, (*decision.warnings, UNSEALED_WARNING), decision.notes)
    return decision
