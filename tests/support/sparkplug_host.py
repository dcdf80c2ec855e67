"""A minimal Sparkplug B host application for tests: it subscribes to spBv1.0/#, reads every payload
with the independent decoder (Eclipse Tahu's npm sparkplug-payload, tests/peers/sparkplug), keeps
each node's aliases from its births, and can play a primary host (STATE) or ask for a rebirth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.sinks.sparkplug import DataType, Payload
from edge_agent.sinks.sparkplug.node import REBIRTH
from tests.integration.test_sparkplug_payload_peer import peer_decode
from tests.support.mqtt_capture import MqttCapture, Received


@dataclass(frozen=True)
class Metric:
    name: str  # from the birth, for data metrics that carry only an alias
    alias: int | None
    datatype: str | None
    timestamp: int
    value: Any  # None when is_null
    historical: bool


@dataclass(frozen=True)
class Seen:
    """One Sparkplug message as a host application reads it."""

    kind: str  # NBIRTH, DBIRTH, NDATA, DDATA, NDEATH, DDEATH, NCMD, ...
    node: str
    device: str | None
    seq: int | None
    timestamp: int
    metrics: list[Metric]

    def values(self) -> dict[str, Any]:
        return {m.name: m.value for m in self.metrics}


_FIELDS = ("intValue", "longValue", "floatValue", "doubleValue", "booleanValue", "stringValue")


def read(messages: list[Received], group: str) -> list[Seen]:
    """Every message of `group` (STATE and other groups left out), decoded by the peer, with
    the names of data metrics filled in from the births before them."""
    ours = [m for m in messages if m.topic.split("/")[1:2] == [group]]
    decoded = peer_decode([m.payload for m in ours]) if ours else []
    names: dict[tuple[str, int], tuple[str, str]] = {}  # (node, alias) -> (name, datatype)
    seen = []
    for message, peer in zip(ours, decoded, strict=True):
        parts = message.topic.split("/")
        kind, node = parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else None
        raw = peer["raw"]
        metrics = []
        for m in raw.get("metrics", []):
            alias = int(m["alias"]) if "alias" in m else None
            if "name" in m and "datatype" in m and alias is not None:
                names[(node, alias)] = (m["name"], DataType(m["datatype"]).name)
            name, datatype = names.get((node, alias), (m.get("name", ""), None))
            if "datatype" in m:
                datatype = DataType(m["datatype"]).name
            field = m.get("value")
            value = None if m.get("isNull") or field not in _FIELDS else m[field]
            if field == "longValue" and value is not None:
                value = int(value)
            value = _signed(datatype, value)
            metrics.append(
                Metric(
                    name or m.get("name", ""),
                    alias,
                    datatype,
                    int(m.get("timestamp", 0)),
                    value,
                    bool(m.get("isHistorical")),
                )
            )
        seq = int(raw["seq"]) if "seq" in raw else None
        seen.append(Seen(kind, node, device, seq, int(raw.get("timestamp", 0)), metrics))
    return seen


_SIGNED_BITS = {"Int8": 32, "Int16": 32, "Int32": 32, "Int64": 64}  # as carried (spec 6.4.16)


def _signed(datatype: str | None, value: Any) -> Any:
    """Two's complement back to negative numbers, as the data type says (the raw protobuf view
    has the unsigned field values)."""
    bits = _SIGNED_BITS.get(datatype or "")
    if bits is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


class HostApp:
    """Subscribes to spBv1.0/# on `port` and keeps everything that comes."""

    def __init__(self, port: int, group: str, client_id: str) -> None:
        self.port, self.group = port, group
        self.capture = MqttCapture(port, "spBv1.0/#", client_id=client_id)

    def seen(self) -> list[Seen]:
        return read(self.capture.snapshot(), self.group)

    def wait_for(self, predicate: Any, timeout_s: float = 20.0) -> list[Seen]:
        """Wait until `predicate(raw messages)` holds, then decode everything."""
        self.capture.wait_for(predicate, timeout_s)
        return self.seen()

    def count(self, kind: str, node: str, device: str | None = None) -> int:
        topic = f"spBv1.0/{self.group}/{kind}/{node}" + (f"/{device}" if device else "")
        return sum(1 for m in self.capture.snapshot() if m.topic == topic)

    def rebirth(self, node: str, times: int = 1) -> None:
        """NCMD 'Node Control/Rebirth' = true, as a host application asks for one (`times` in a
        burst, as a host asking in a loop does)."""
        payload = Payload(timestamp=0)
        metric = payload.metrics.add(name=REBIRTH, datatype=DataType.Boolean)
        metric.boolean_value = True
        topic = f"spBv1.0/{self.group}/NCMD/{node}"
        _publish(self.port, topic, payload.SerializeToString(), times=times)

    def write(self, node: str, device: str, metric: str, value: int) -> None:
        """DCMD: a host application writing `metric` of `device` (an Int32)."""
        payload = Payload(timestamp=0)
        entry = payload.metrics.add(name=metric, datatype=DataType.Int32)
        entry.int_value = value
        topic = f"spBv1.0/{self.group}/DCMD/{node}/{device}"
        _publish(self.port, topic, payload.SerializeToString())

    def close(self) -> None:
        self.capture.close()


def publish_state(port: int, host_id: str, online: bool, timestamp_ms: int) -> None:
    """A primary host application's STATE (Sparkplug 3.0), retained, QoS 1."""
    payload = json.dumps({"online": online, "timestamp": timestamp_ms}).encode()
    _publish(port, f"spBv1.0/STATE/{host_id}", payload, retain=True)


def _publish(
    port: int, topic: str, payload: bytes, *, retain: bool = False, times: int = 1
) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        sent = [client.publish(topic, payload, qos=1, retain=retain) for _ in range(times)]
        for info in sent:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
