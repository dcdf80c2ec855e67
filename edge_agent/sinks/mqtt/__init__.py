"""MQTT with the agent's JSON topic layout (`type: mqtt`): a layout (layout.py) on the MQTT
transport (transport.py) that other layouts share; the retained status and the check that no other
agent runs under the same id (status.py, probe.py)."""

from __future__ import annotations

__all__ = ["MQTT"]

from typing import TYPE_CHECKING

from edge_agent.config_types import TlsConfig
from edge_agent.sinks.base import Exclusive, SinkType
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.link import password_in_clear

if TYPE_CHECKING:
    from edge_agent.sinks.mqtt.sink import MqttSink


def _load() -> type[MqttSink]:
    from edge_agent.sinks.mqtt.sink import MqttSink

    return MqttSink


def _warnings(config: MqttSinkConfig) -> list[tuple[tuple[str, ...], str]]:
    return password_in_clear(config.password, config.tls)


def _claims(config: MqttSinkConfig, agent_id: str, agent_root: str) -> list[Exclusive]:
    broker = f"{config.host}:{config.port}"
    client_id = config.client_id or agent_id
    root = config.root(agent_root)
    return [
        Exclusive(
            ("mqtt client", broker, client_id), f"client id {client_id} on {broker}", ("client_id",)
        ),
        Exclusive(
            ("mqtt topics", broker, root), f"the topics {root}/# on {broker}", ("topic_prefix",)
        ),
    ]


MQTT = SinkType(
    name="mqtt",
    config=MqttSinkConfig,
    load=_load,
    docs=(
        ("sinks.<name> (type: mqtt)", MqttSinkConfig),
        ("sinks.<name>.tls (mqtt, sparkplug)", TlsConfig),
    ),
    warnings=_warnings,
    claims=_claims,
)
