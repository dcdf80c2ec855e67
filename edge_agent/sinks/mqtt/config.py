"""Configuration of an MQTT sink with the agent's JSON topic layout (`type: mqtt`)."""

from __future__ import annotations

__all__ = ["MqttSinkConfig"]

from typing import Literal

from pydantic import Field, SecretStr

from edge_agent.config_types import (
    BatchRecords,
    ConfigModel,
    FlushInterval,
    Port,
    Switch,
    TlsConfig,
    TopicPrefix,
)


class MqttSinkConfig(ConfigModel):
    """An MQTT broker the agent publishes its topic tree to (JSON payloads, see README)."""

    type: Literal["mqtt"] = Field(
        "mqtt", description="Which kind of sink this is; may be left out in a sink named mqtt."
    )
    enabled: Switch = Field(
        True, description="Off when false or empty (e.g. an unset ${MQTT_HOST:+true})."
    )
    host: str = "localhost"
    port: Port = 1883
    client_id: str | None = Field(None, description="Default: the agent id.")
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    topic_prefix: TopicPrefix | None = Field(
        None,
        description="Root of the topics on this broker. Default: agent.topic_prefix "
        "(edge/<agent id>).",
    )
    qos: Literal[0, 1, 2] = Field(
        1, description="1: nothing is lost; 0 only for values that may be."
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    raw_values: Literal["per_poll", "per_tag"] = Field(
        "per_poll",
        description="per_poll: one message per device poll; per_tag: one message per tag.",
    )
    retain_values: bool = Field(
        False, description="Retain raw value messages too (states always are)."
    )
    commands: Switch = Field(
        True,
        description="Take alarm commands from this broker (<root>/commands/alarms/operator and "
        "…/engineer), when alarms are configured.",
    )
    batch_records: BatchRecords = 500
    flush_interval_s: FlushInterval = Field(
        0.0,
        description="Wait up to this long for more records before publishing (fewer, larger "
        "deliveries); 0 publishes each as soon as it is buffered.",
    )

    def root(self, agent_root: str) -> str:
        """The root of this sink's topics, given the agent's (agent.topic_root)."""
        return self.topic_prefix or agent_root
