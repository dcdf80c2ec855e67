"""Which metrics the edge node and its devices declare, with their names and data types.

Edge node metrics (NBIRTH/NDATA), folders separated by '/' as Sparkplug suggests (spec 6.4.2):

  machines/<m>/state, state_code, reason              the machine's state (records' codes)
  machines/<m>/last_stop/state, reason, category, start, duration_s   the last stop that ended
  machines/<m>/oee/<hour|shift>/oee, availability, performance, quality, total_count,
      good_count, reject_count, run_time_s, down_time_s, planned_busy_time_s, start, final
                                                      the open window's running figures
  alarms/<id>/state, active, acked, severity, value, message
  alarms/<id>/zone (vibration_zone alarms), alarms/<id>/time_to_limit_s (trend alarms)
  alarm_flood/active, activations

Each configured device is a Sparkplug device (DBIRTH/DDATA/DDEATH) whose metrics are its tags,
named as in the configuration, typed from the tag's `type`; a tag without one (OPC UA) takes the
type of its first value.
"""

from __future__ import annotations

__all__ = [
    "ALARM_METRICS",
    "CONDITION_METRICS",
    "FLOOD_METRICS",
    "MACHINE_METRICS",
    "OEE_METRICS",
    "STOP_METRICS",
    "NodeLayout",
    "alarm_metrics",
    "layout_for",
    "machine_metrics",
    "tag_datatype",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.config_models import AgentFile
from edge_agent.sinks.sparkplug.config import SparkplugSinkConfig
from edge_agent.sinks.sparkplug.schema import DataType

MACHINE_METRICS = {
    "state": DataType.String,
    "state_code": DataType.Int32,
    "reason": DataType.String,
}
STOP_METRICS = {
    "last_stop/state": DataType.String,
    "last_stop/reason": DataType.String,
    "last_stop/category": DataType.String,
    "last_stop/start": DataType.DateTime,
    "last_stop/duration_s": DataType.Double,
}
OEE_METRICS = {
    "oee": DataType.Double,
    "availability": DataType.Double,
    "performance": DataType.Double,
    "quality": DataType.Double,
    "total_count": DataType.Int64,
    "good_count": DataType.Int64,
    "reject_count": DataType.Int64,
    "run_time_s": DataType.Double,
    "down_time_s": DataType.Double,
    "planned_busy_time_s": DataType.Double,
    "start": DataType.DateTime,
    "final": DataType.Boolean,
}
ALARM_METRICS = {
    "state": DataType.String,
    "active": DataType.Boolean,
    "acked": DataType.Boolean,
    "severity": DataType.Int32,
    "value": DataType.Double,
    "message": DataType.String,
}
# Condition reports that some alarm types make, beside their state.
CONDITION_METRICS = {
    "vibration_zone": {"zone": DataType.String},
    "trend": {"time_to_limit_s": DataType.Double},
}
FLOOD_METRICS = {"alarm_flood/active": DataType.Boolean, "alarm_flood/activations": DataType.Int32}

_TAG_TYPES = {
    "bool": DataType.Boolean,
    "int16": DataType.Int16,
    "uint16": DataType.UInt16,
    "int32": DataType.Int32,
    "uint32": DataType.UInt32,
    "int64": DataType.Int64,
    "uint64": DataType.UInt64,
    "float32": DataType.Float,
    "float64": DataType.Double,
    "string": DataType.String,
    # The names of the S7 driver (IEC 61131-3 types) and the BCD words of the FINS driver.
    "byte": DataType.UInt8,
    "usint": DataType.UInt8,
    "sint": DataType.Int8,
    "char": DataType.String,
    "int": DataType.Int16,
    "uint": DataType.UInt16,
    "word": DataType.UInt16,
    "dint": DataType.Int32,
    "udint": DataType.UInt32,
    "dword": DataType.UInt32,
    "real": DataType.Float,
    "time": DataType.Double,  # read as seconds
    "lint": DataType.Int64,
    "ulint": DataType.UInt64,
    "lword": DataType.UInt64,
    "lreal": DataType.Double,
    "ltime": DataType.Double,  # read as seconds
    "wstring": DataType.String,
    "bcd16": DataType.UInt16,
    "bcd32": DataType.UInt32,
}


@dataclass(frozen=True)
class NodeLayout:
    """What an edge node declares: its ids, its own metrics and its devices' tags.

    `devices[device][tag]` is the tag's data type, or None to take the type of its first value.
    Metrics met later that are not declared here are added as they come (with a rebirth).
    """

    group_id: str
    edge_node_id: str
    node_metrics: Mapping[str, DataType] = field(default_factory=dict)
    devices: Mapping[str, Mapping[str, DataType | None]] = field(default_factory=dict)
    include: frozenset[str] = frozenset({"values", "machines", "oee", "alarms"})


def tag_datatype(tag: Any) -> DataType | None:
    """A configured tag's data type: from its `type`, Double when scaled, None when untyped."""
    kind = getattr(tag, "type", None)
    if kind is None or kind not in _TAG_TYPES:
        return None
    scaled = getattr(tag, "scale", 1.0) != 1.0 or getattr(tag, "offset", 0.0) != 0.0
    if scaled and kind not in ("bool", "string"):
        return DataType.Double  # raw * scale + offset is a float (drivers/modbus/codec.py)
    return _TAG_TYPES[kind]


def machine_metrics(machine: str, *, shift: bool, include: frozenset[str]) -> dict[str, DataType]:
    out: dict[str, DataType] = {}
    root = f"machines/{machine}"
    if "machines" in include:
        out |= {f"{root}/{k}": v for k, v in (MACHINE_METRICS | STOP_METRICS).items()}
    if "oee" in include:
        for window in ("shift", "hour") if shift else ("hour",):
            out |= {f"{root}/oee/{window}/{k}": v for k, v in OEE_METRICS.items()}
    return out


def alarm_metrics(alarm_id: str, alarm_type: str) -> dict[str, DataType]:
    metrics = ALARM_METRICS | CONDITION_METRICS.get(alarm_type, {})
    return {f"alarms/{alarm_id}/{k}": v for k, v in metrics.items()}


def layout_for(config: AgentFile, sink: SparkplugSinkConfig, agent_id: str) -> NodeLayout:
    """The layout of an agent's configuration as this sink publishes it."""
    include = frozenset(sink.include)
    node: dict[str, DataType] = {}
    for name, machine in config.machines.items():
        node |= machine_metrics(name, shift=machine.calendar is not None, include=include)
    if "alarms" in include:
        for alarm in config.alarms:
            node |= alarm_metrics(alarm.id, alarm.type)
        node |= FLOOD_METRICS
    devices: dict[str, dict[str, DataType | None]] = {}
    if "values" in include:
        for device, device_config in config.devices.items():
            devices[device] = {t: tag_datatype(c) for t, c in device_config.tags.items()}
    return NodeLayout(sink.group_id, sink.node_id(agent_id), node, devices, include)
