"""What a sink is to the agent, and what a sink type hands to the registry.

A sink delivers buffered records to one server; the runner around it (edge_agent.delivery) owns
its cursor, retries and batches. A sink type is one folder (edge_agent/sinks/<type>/) with its
configuration model, its implementation (imported only when an instance is configured) and its
documentation sections; edge_agent/sinks/__init__.py lists the types, one line each.
"""

from __future__ import annotations

__all__ = [
    "Claims",
    "ClaimsAgentId",
    "Exclusive",
    "ExplainsWaiting",
    "ReportsConflict",
    "Sink",
    "SinkContext",
    "SinkImplementation",
    "SinkType",
    "Warnings",
]

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from edge_agent.records import Kind, StoredRecord

if TYPE_CHECKING:  # the configuration models import the registry: no cycle at run time
    from edge_agent.commands import Execute
    from edge_agent.config_models import AgentFile
    from edge_agent.metrics import Metrics
    from edge_agent.outbox import Outbox


class Sink(Protocol):
    """One destination. `deliver` returns once the server confirmed every record, or raises
    ConnectError (retried with backoff) or RejectedError (the records are refused for what they
    are: quarantined)."""

    name: str  # the instance's name in `sinks:`; its buffer cursor and metrics go by it

    @property
    def connected(self) -> bool: ...

    @property
    def endpoint(self) -> str: ...

    async def start(self) -> None: ...

    async def deliver(self, records: list[StoredRecord]) -> None: ...

    async def close(self) -> None: ...


class SinkSettings(Protocol):
    """What the agent reads of any sink type's configuration model."""

    @property
    def type(self) -> str: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def batch_records(self) -> int: ...

    @property
    def flush_interval_s(self) -> float: ...


@runtime_checkable
class ClaimsAgentId(Protocol):
    """A sink that first makes sure no other agent is online under this agent's id (the MQTT
    sinks, see mqtt/probe.py): the agent awaits `claim` before any sink starts."""

    async def claim(self, instance: str) -> object: ...


@runtime_checkable
class ExplainsWaiting(Protocol):
    """A sink that can be connected and still not deliver (a Sparkplug node waiting for its
    primary host): `waiting` says why, for /health, while it does not deliver."""

    @property
    def waiting(self) -> str | None: ...


@runtime_checkable
class ReportsConflict(Protocol):
    """A sink that can tell another client is taking its place on its server (a Sparkplug node
    under the same id, connections taken over): `conflict` says what, for /health, delivering
    or not."""

    @property
    def conflict(self) -> str | None: ...


@dataclass(frozen=True)
class SinkContext:
    """What a sink may use of the agent besides its own configuration."""

    config: AgentFile  # the whole file (a Sparkplug node declares the devices' tags)
    outbox: Outbox  # the buffer: state kept beside the records (a Sparkplug bdSeq)
    metrics: Metrics
    # Carries out an alarm command, for sinks that take commands; None without alarms.
    command: Execute | None = None


class SinkImplementation(Protocol):
    """The class a sink type's `load` returns."""

    @property
    def KINDS(self) -> Mapping[Kind, object]:
        """How the sink sends every kind of record (a formatter, or NotSent with the reason)."""
        ...

    @classmethod
    def create(cls, name: str, config: Any, context: SinkContext) -> Sink: ...


# Valid but unwise settings of one instance: (path below sinks.<name>, message).
Warnings = Callable[[Any], list[tuple[tuple[str, ...], str]]]


@dataclass(frozen=True)
class Exclusive:
    """Something an instance takes for itself on a shared server (an MQTT client id, a topic
    tree): two instances must not take the same. `key` says which, `what` names it for people,
    `loc` is the setting to change (below sinks.<name>)."""

    key: tuple[str, ...]
    what: str
    loc: tuple[str, ...]


# An instance's exclusive claims, given its configuration and the agent's id and topic root.
Claims = Callable[[Any, str, str], list[Exclusive]]


@dataclass(frozen=True)
class SinkType:
    """One kind of sink as the registry knows it."""

    name: str  # what `type:` says
    config: type[BaseModel]  # its model, with `type: Literal[name]`
    load: Callable[[], type[SinkImplementation]]  # imports the implementation (its libraries)
    docs: tuple[tuple[str, type[BaseModel]], ...]  # README reference sections
    warnings: Warnings | None = None
    claims: Claims | None = None
