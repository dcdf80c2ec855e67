"""Configuration of a Sparkplug B sink: the MQTT connection, the Sparkplug ids, what to publish."""

from __future__ import annotations

__all__ = ["SPARKPLUG_INCLUDE", "SparkplugId", "SparkplugSinkConfig"]

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, SecretStr

from edge_agent.config_types import (
    BatchRecords,
    ConfigModel,
    FlushInterval,
    Port,
    Switch,
    TlsConfig,
)

SparkplugInclude = Literal["values", "machines", "oee", "alarms"]
SPARKPLUG_INCLUDE: tuple[SparkplugInclude, ...] = get_args(SparkplugInclude)


def _sparkplug_id(value: str) -> str:
    # Sparkplug 3.0 tck-id-topic-structure-namespace-valid-group-id / -edge-node-id: any UTF-8
    # except the MQTT wildcards and the level separator. U+0000 is not allowed in an MQTT topic.
    bad = sorted({c for c in value if c in "+/#\x00"})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(f"{value!r} contains {shown}: a Sparkplug id may not hold + / # (nor NUL)")
    if value != value.strip():
        raise ValueError(f"{value!r} starts or ends with a space; host applications show it as is")
    return value


SparkplugId = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(_sparkplug_id),
]


class SparkplugSinkConfig(ConfigModel):
    """An MQTT broker the agent publishes to as a Sparkplug B 3.0 edge node (spBv1.0 topics)."""

    type: Literal["sparkplug"] = Field(
        "sparkplug",
        description="Which kind of sink this is; may be left out in a sink named sparkplug.",
    )
    enabled: Switch = Field(
        True, description="Off when false or empty (e.g. an unset ${SPARKPLUG_HOST:+true})."
    )
    host: str = Field("localhost", description="The MQTT broker's host name or address.")
    port: Port = Field(1883, description="The broker's port (8883 is usual with tls).")
    client_id: str | None = Field(
        None, description="MQTT client id. Default: the agent id followed by '-sparkplug'."
    )
    username: str | None = None
    password: SecretStr | None = Field(None, description="Use ${ENV} or ${file:/path}.")
    tls: TlsConfig | None = None
    keepalive_s: int = Field(
        30,
        ge=5,
        le=3600,
        description="MQTT keep-alive: the broker publishes the node's death this long "
        "(times 1.5) after the link is lost.",
    )
    group_id: SparkplugId = Field(
        description="Sparkplug group: the plant, area or line the node belongs to, e.g. "
        "'Plant1' (any text without + / #)."
    )
    edge_node_id: SparkplugId | None = Field(
        None,
        description="Sparkplug edge node id, unique within the group. Default: the agent id.",
    )
    primary_host_id: SparkplugId | None = Field(
        None,
        description="Publish only while this Sparkplug host application says it is online "
        "(spBv1.0/STATE/<id>); data waits in the buffer meanwhile. Default: publish regardless.",
    )
    include: list[SparkplugInclude] = Field(
        list(SPARKPLUG_INCLUDE),
        min_length=1,
        description="What becomes metrics: values (each device's tags, as Sparkplug devices), "
        "machines (state, last stop), oee (open shift and hour), alarms (alarm states, flood).",
    )
    batch_records: BatchRecords = 500
    flush_interval_s: FlushInterval = Field(
        0.0,
        description="Wait up to this long for more records before publishing (fewer NDATA and "
        "DDATA messages); 0 publishes each as soon as it is buffered.",
    )

    def node_id(self, agent_id: str) -> str:
        """The edge node id in use: the configured one, or the agent's id."""
        return self.edge_node_id or agent_id

    def mqtt_client_id(self, agent_id: str) -> str:
        """The MQTT client id in use: not the MQTT sink's, which a shared broker would throw off."""
        return self.client_id or f"{agent_id}-sparkplug"
