"""Sparkplug B 3.0 edge node (`type: sparkplug`): the pure core (payload schema, node state
machine, primary host, configuration) and the sink that drives it over the shared MQTT transport
(sink.py).

The core's names are importable from here (`from edge_agent.sinks.sparkplug import EdgeNode`);
they load on first use, so that the registry, which reads only the configuration model, does not
load protobuf for agents without a Sparkplug sink.
"""

from __future__ import annotations

__all__ = [
    "SPARKPLUG",
    "DataType",
    "EdgeNode",
    "Message",
    "NoSessionError",
    "NodeLayout",
    "Payload",
    "PrimaryHost",
    "SparkplugSinkConfig",
    "layout_for",
    "state_topic",
]

import importlib
from typing import TYPE_CHECKING, Any

from edge_agent.sinks.base import Exclusive, SinkType
from edge_agent.sinks.mqtt.link import password_in_clear
from edge_agent.sinks.sparkplug.config import SparkplugSinkConfig

if TYPE_CHECKING:
    from edge_agent.sinks.sparkplug.host import PrimaryHost, state_topic
    from edge_agent.sinks.sparkplug.layout import NodeLayout, layout_for
    from edge_agent.sinks.sparkplug.node import EdgeNode, Message, NoSessionError
    from edge_agent.sinks.sparkplug.schema import DataType, Payload
    from edge_agent.sinks.sparkplug.sink import SparkplugSink

_LAZY = {
    "PrimaryHost": "host",
    "state_topic": "host",
    "NodeLayout": "layout",
    "layout_for": "layout",
    "EdgeNode": "node",
    "Message": "node",
    "NoSessionError": "node",
    "DataType": "schema",
    "Payload": "schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _load() -> type[SparkplugSink]:
    from edge_agent.sinks.sparkplug.sink import SparkplugSink

    return SparkplugSink


def _warnings(config: SparkplugSinkConfig) -> list[tuple[tuple[str, ...], str]]:
    return password_in_clear(config.password, config.tls)


def _claims(config: SparkplugSinkConfig, agent_id: str, _root: str) -> list[Exclusive]:
    broker = f"{config.host}:{config.port}"
    client_id = config.mqtt_client_id(agent_id)
    node = f"{config.group_id}/{config.node_id(agent_id)}"
    return [
        Exclusive(
            ("mqtt client", broker, client_id), f"client id {client_id} on {broker}", ("client_id",)
        ),
        Exclusive(
            ("sparkplug node", broker, node), f"the edge node {node} on {broker}", ("edge_node_id",)
        ),
    ]


SPARKPLUG = SinkType(
    name="sparkplug",
    config=SparkplugSinkConfig,
    load=_load,
    docs=(("sinks.<name> (type: sparkplug)", SparkplugSinkConfig),),
    warnings=_warnings,
    claims=_claims,
)
