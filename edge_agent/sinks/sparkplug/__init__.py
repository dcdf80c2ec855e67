"""Sparkplug B 3.0 edge node: the pure core (payload schema, node state machine, primary host,
configuration). The MQTT transport that publishes its messages lives apart."""

from edge_agent.sinks.sparkplug.config import SparkplugSinkConfig
from edge_agent.sinks.sparkplug.host import PrimaryHost, state_topic
from edge_agent.sinks.sparkplug.layout import NodeLayout, layout_for
from edge_agent.sinks.sparkplug.node import EdgeNode, Message, NoSessionError
from edge_agent.sinks.sparkplug.schema import DataType, Payload

__all__ = [
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
