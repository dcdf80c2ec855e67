"""The sink types, one line each: the configuration union, the docs, the load-time checks and the
sink objects are built from this list.

`sinks:` maps instance names to their settings, `type:` saying which kind each is; several of a
kind may run side by side (a plant broker and a cloud broker). An instance named after its type
may leave `type:` out, which keeps the form of earlier versions working: `sinks: {mqtt: {…},
influxdb: {…}}` means instances `mqtt` and `influxdb` of those types, under the names their buffer
cursors, metrics and /health entries always had.
"""

from __future__ import annotations

__all__ = [
    "SINK_TYPES",
    "Sink",
    "SinkConfig",
    "SinkContext",
    "SinkType",
    "create_sink",
    "implied_type",
    "sink_problems",
    "sink_sections",
    "sink_warnings",
    "with_implied_types",
]

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field

from edge_agent.sinks.base import Exclusive, Sink, SinkContext, SinkSettings, SinkType
from edge_agent.sinks.influxdb import INFLUXDB
from edge_agent.sinks.mqtt import MQTT
from edge_agent.sinks.sparkplug import SPARKPLUG

if TYPE_CHECKING:
    from edge_agent.config_models import AgentFile

SINK_TYPES: dict[str, SinkType] = {
    t.name: t
    for t in (
        MQTT,
        INFLUXDB,
        SPARKPLUG,
    )
}

# The settings of one instance, told apart by `type:` (a type checker sees what they share).
if TYPE_CHECKING:
    SinkConfig = SinkSettings
else:
    SinkConfig = Annotated[
        Union[tuple(t.config for t in SINK_TYPES.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]

Loc = tuple[str | int, ...]


def implied_type(name: str, settings: Any) -> str | None:
    """The type an instance's settings leave unsaid: its name, when that names a type."""
    if isinstance(settings, dict) and "type" not in settings and name in SINK_TYPES:
        return name
    return None


def with_implied_types(value: Any) -> Any:
    """`sinks:` as written, with `type:` added where the instance's name says it (see above).
    A section or a sink whose entries are all commented out reads as null: none there."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value  # pydantic says what is wrong with it
    return {
        name: (
            {"type": implied, **settings}
            if (implied := implied_type(name, settings)) is not None
            else settings
        )
        for name, settings in value.items()
        if settings is not None
    }


def create_sink(name: str, config: Any, context: SinkContext) -> Sink:
    """The sink object of instance `name` (its implementation is imported here)."""
    return SINK_TYPES[config.type].load().create(name, config, context)


def sink_sections() -> list[tuple[str, type[BaseModel]]]:
    """The README reference sections of every sink type (a model shared by several, once)."""
    sections: list[tuple[str, type[BaseModel]]] = []
    for sink_type in SINK_TYPES.values():
        sections += [s for s in sink_type.docs if s[1] not in {m for _, m in sections}]
    return sections


def sink_warnings(config: AgentFile) -> list[tuple[Loc, str]]:
    """Valid but unwise settings (a password in plain text), by instance."""
    found: list[tuple[Loc, str]] = []
    for name, settings in config.sinks.items():
        check = SINK_TYPES[settings.type].warnings
        if settings.enabled and check is not None:
            found += [(("sinks", name, *loc), message) for loc, message in check(settings)]
    return found


def sink_problems(config: AgentFile) -> list[tuple[Loc, str]]:
    """Instances that would take the same thing on a shared server (an MQTT client id, a topic
    tree): the second of each pair is an error."""
    problems: list[tuple[Loc, str]] = []
    taken: dict[tuple[str, ...], str] = {}
    agent = config.agent
    for name, settings in config.sinks.items():
        claims = SINK_TYPES[settings.type].claims
        if not settings.enabled or claims is None:
            continue
        for claim in claims(settings, agent.id, agent.topic_root):
            other = taken.setdefault(claim.key, name)
            if other != name:
                problems.append((("sinks", name, *claim.loc), _clash(claim, other)))
    return problems


def _clash(claim: Exclusive, other: str) -> str:
    return f"{claim.what} is taken by sink '{other}' as well; give one of them its own"
