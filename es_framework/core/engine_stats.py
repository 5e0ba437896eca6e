"""What the engine counts and remembers for the operator: declines by rule, counters, recent events,
and which missing nodes wait for an offer and why none fits.

Plain mutable records the engine thread owns; the driver shell publishes copies for the API and
``/metrics``. :class:`Waiting` is immutable and replaced whole, so the API reads it without a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from es_framework.config import Config
from es_framework.contract import NodeReport
from es_framework.core.evaluation import RuleOutcome
from es_framework.core.node_state import ClusterState

#: How many missing node ids :class:`Waiting` names (``missing`` says how many in all).
WAITING_IDS_SHOWN = 20


def _no_counts() -> Mapping[str, int]:
    return MappingProxyType({})


def _no_reasons() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Waiting:
    """Missing nodes waiting for an offer, and why no offer took them: the declines since they started
    waiting (this set of ids), by first failing rule, with the last reason of each.

    Scaling to more nodes than the agents can hold leaves the extra ones here, with e.g.
    ``agent_has_node`` or ``cpus`` as the reason, which is what the operator needs to see."""

    #: The lowest missing ids, at most :data:`WAITING_IDS_SHOWN`.
    node_ids: tuple[int, ...]
    #: How many nodes are missing in all.
    missing: int
    #: When this set of ids started waiting (the engine's clock).
    since: float
    #: First failing rule -> offers declined under it since then.
    reasons: Mapping[str, int] = field(default_factory=_no_counts)
    #: First failing rule -> the last such decline's reason.
    last_reasons: Mapping[str, str] = field(default_factory=_no_reasons)
    #: Why no offer may come at all (every known agent holds its nodes already), when that is so.
    no_offer: str | None = None

    @property
    def top(self) -> str | None:
        """The rule most offers were declined under (ties: by name); None before the first decline."""
        ranked = self.ranked()
        return ranked[0][0] if ranked else None

    def ranked(self) -> list[tuple[str, int]]:
        """The rules, most declines first."""
        return sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))

    def ids_text(self) -> str:
        ids = ", ".join(map(str, self.node_ids))
        more = f" and {self.missing - len(self.node_ids)} more" if self.missing > len(self.node_ids) else ""
        return f"node{'s' if self.missing > 1 else ''} {ids}{more}"

    def why(self) -> str:
        """Why no offer fits, by count, e.g. ``agent_has_node 12 (agent … runs node 4), cpus 3``; with
        the last reason of the most frequent rule only, to keep the line short."""
        if not self.reasons:
            return self.no_offer or "no offer has come since"
        parts = []
        for i, (rule, count) in enumerate(self.ranked()):
            last = self.last_reasons.get(rule, "")
            parts.append(f"{rule} {count}" + (f" (last: {last})" if i == 0 and last and last != rule else ""))
        return "declined offers by first failing rule: " + ", ".join(parts)

    def sentence(self) -> str:
        """One line for the log and the progress line."""
        return f"{self.ids_text()} waiting for an offer: {self.why()}"

    def counted(self, rule: str, reason: str) -> Waiting:
        reasons = dict(self.reasons)
        reasons[rule] = reasons.get(rule, 0) + 1
        last = dict(self.last_reasons)
        last[rule] = reason or rule
        return replace(self, reasons=MappingProxyType(reasons), last_reasons=MappingProxyType(last))


def agents_full(state: ClusterState, agents: Collection[str], per_agent: int) -> str | None:
    """Why no offer comes for a missing node when every agent known (``agents``: those that offered,
    and those that run a node) runs ``per_agent`` nodes (``--maxNodesPerAgent``) already: Mesos offers
    only what an agent has free, and such an agent takes no other node anyway. None otherwise.
    Walks the records: asked only while a node waits and no offer has been declined for it."""
    counts: dict[str, int] = {}
    for record in state.nodes.values():
        counts[record.agent_id] = counts.get(record.agent_id, 0) + 1
    known = set(agents) | set(counts)
    if not known or any(counts.get(agent_id, 0) < per_agent for agent_id in known):
        return None
    return (
        f"no offer fits: all {len(known)} known agent(s) run {per_agent} node(s) each already "
        f"(--maxNodesPerAgent {per_agent}); add agents or raise --maxNodesPerAgent"
    )


def missing_ids(state: ClusterState, limit: int = WAITING_IDS_SHOWN) -> tuple[int, ...]:
    """The lowest ids up to the desired count that no record holds (at most ``limit``): the nodes
    the offer cycles launch next. Stops once all :attr:`ClusterState.missing_nodes` are found, so
    it costs O(desired) at worst and nothing when no node is missing."""
    wanted = min(state.missing_nodes, limit)
    found: list[int] = []
    node_id = 1
    while len(found) < wanted and node_id <= state.desired_nodes:
        if node_id not in state.nodes:
            found.append(node_id)
        node_id += 1
    return tuple(found)


@dataclass
class DeclineCounts:
    """Declines by rule (the first failing one), with the last reason of each, for logs, the API and metrics."""

    by_rule: dict[str, int] = field(default_factory=dict)
    #: rule -> (last reason, when).
    last: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: rule -> every rule's outcome for the last offer declined under it; empty when no rule judged
    #: the offer (malformed, or the state store unavailable).
    explanations: dict[str, tuple[RuleOutcome, ...]] = field(default_factory=dict)

    #: The missing nodes and the declines since they started waiting; None when no node is missing.
    #: Replaced whole (the API reads it from its own thread).
    waiting: Waiting | None = None
    #: What the last waiting log line said: (ids, missing, top rule); said again only on a change.
    _said: tuple[tuple[int, ...], int, str | None] | None = field(default=None, repr=False, compare=False)
    #: The state ``waiting`` was worked out for (the ids are computed once per state).
    _tracked: ClusterState | None = field(default=None, repr=False, compare=False)

    def add(self, rule: str, reason: str = "", when: float = 0.0, outcomes: tuple[RuleOutcome, ...] = ()) -> None:
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        self.last[rule] = (reason or rule, when)
        self.explanations[rule] = outcomes
        if self.waiting is not None:
            self.waiting = self.waiting.counted(rule, reason)

    def track(self, state: ClusterState, now: float, no_offer: Callable[[], str | None] = lambda: None) -> str | None:
        """Follow which nodes wait for an offer in ``state``: a new set of missing ids starts counting
        afresh. Returns the line to log when the waiting ids or the top reason changed since the last
        line (once per change, not per offer), else None. ``no_offer`` says why no offer may come
        (asked only while no offer has been declined for the waiting nodes)."""
        if state is not self._tracked:
            self._tracked = state
            ids = missing_ids(state) if state.missing_nodes else ()
            if not ids:
                self.waiting, self._said = None, None
                return None
            if self.waiting is None or (self.waiting.node_ids, self.waiting.missing) != (ids, state.missing_nodes):
                self.waiting = Waiting(ids, state.missing_nodes, now)
            if not self.waiting.reasons:
                self.waiting = replace(self.waiting, no_offer=no_offer())
        if self.waiting is None:
            return None
        said = (self.waiting.node_ids, self.waiting.missing, self.waiting.top)
        if said == self._said:
            return None
        self._said = said
        return self.waiting.sentence()


@dataclass
class Counters:
    """Counters since this scheduler process started (``/metrics``)."""

    offers_received: int = 0
    offers_accepted: int = 0
    reconciliations: int = 0
    #: Registrations that resumed a known framework id (a failover or a re-subscription).
    failovers: int = 0


@dataclass(frozen=True)
class EngineEvent:
    """Something the engine decided or saw, for the operator's history (bounded)."""

    time: float
    message: str
    node_id: int | None = None
    state: str | None = None


#: How many events the engine keeps for the API.
EVENTS_KEPT = 500


#: How the demo node's default version ends (``8.x-demo``, es_framework/dev/demo_es/version.py; not
#: imported: production never imports es_framework/dev).
DEMO_VERSION_SUFFIX = "-demo"


def runs_demo_node(config: Config, report: NodeReport | None = None) -> bool:
    """Whether a node runs the demo node (a development tool, not Elasticsearch): every node in local
    mode without ``--elasticsearchBinaryUrl`` (es_framework/dev/local.py runs the demo node then), or
    a node whose executor reports the demo node's default version (the development cluster)."""
    if config.local_mode and config.binary_url is None:
        return True
    version = report.version if report is not None else None
    return version is not None and version.endswith(DEMO_VERSION_SUFFIX)


def node_message(message: str, demo: bool) -> str:
    """An executor's message about its node, for the events: the executor says "Elasticsearch" of
    whatever it runs (it cannot tell), the scheduler knows when that is the demo node and says so
    ("demo node answers on 127.0.0.1:31000")."""
    word = "Elasticsearch "
    return "demo node " + message[len(word) :] if demo and message.startswith(word) else message
