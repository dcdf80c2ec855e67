"""The Sparkplug B edge node state machine: births, data by exception, deaths, seq and bdSeq,
historical replay, rebirth, primary host. Payloads are decoded with the agent's own schema here;
tests/integration/test_sparkplug_payload_peer.py decodes them with an independent decoder."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from edge_agent.config import load_config
from edge_agent.records import Record, StoredRecord
from edge_agent.sinks.sparkplug import (
    DataType,
    EdgeNode,
    Message,
    NodeLayout,
    NoSessionError,
    Payload,
    PrimaryHost,
    SparkplugSinkConfig,
    layout_for,
)
from edge_agent.sinks.sparkplug.codec import read
from edge_agent.sinks.sparkplug.layout import FLOOD_METRICS, alarm_metrics, machine_metrics
from edge_agent.sinks.sparkplug.node import MAX_METRICS_PER_MESSAGE, REBIRTH

T0 = 1_700_000_000_000_000_000  # ns
S = 1_000_000_000
MS = 1_000_000
GROUP, NODE = "Plant1", "edge7"
INCLUDE = frozenset({"values", "machines", "oee", "alarms"})


@dataclass
class Metric:
    name: str | None
    alias: int | None
    datatype: int | None
    timestamp: int
    value: Any
    is_null: bool
    is_historical: bool
    quality: int | None


@dataclass
class Decoded:
    kind: str
    device: str | None
    seq: int | None
    timestamp: int
    metrics: list[Metric]
    qos: int
    retain: bool

    def by_name(self) -> dict[str, Metric]:
        return {m.name: m for m in self.metrics if m.name is not None}


def decode(message: Message, types: dict[int, DataType] | None = None) -> Decoded:
    """A message as host applications see it; `types` (alias → type) reads data messages."""
    parts = message.topic.split("/")
    assert parts[0] == "spBv1.0" and parts[1] == GROUP and parts[3] == NODE
    payload = Payload.FromString(message.payload)
    metrics = []
    for m in payload.metrics:
        datatype = DataType(m.datatype) if m.HasField("datatype") else None
        if datatype is None and types is not None and m.HasField("alias"):
            datatype = types[m.alias]
        quality = None
        if m.HasField("properties"):
            props = dict(zip(m.properties.keys, m.properties.values, strict=True))
            assert props["Quality"].type == DataType.Int32
            quality = props["Quality"].int_value
        metrics.append(
            Metric(
                m.name if m.HasField("name") else None,
                m.alias if m.HasField("alias") else None,
                m.datatype if m.HasField("datatype") else None,
                m.timestamp,
                read(m, datatype) if datatype is not None else None,
                m.is_null,
                m.is_historical,
                quality,
            )
        )
    seq = payload.seq if payload.HasField("seq") else None
    device = parts[4] if len(parts) > 4 else None
    return Decoded(parts[2], device, seq, payload.timestamp, metrics, message.qos, message.retain)


class Host:
    """What a host application keeps: the types of aliases from births, the current values."""

    def __init__(self) -> None:
        self.types: dict[int, DataType] = {}
        self.names: dict[int, str] = {}
        self.values: dict[str, Any] = {}

    def take(self, messages: list[Message]) -> list[Decoded]:
        out = []
        for message in messages:
            d = decode(message, self.types)
            if d.kind in ("NBIRTH", "DBIRTH"):
                for m in d.metrics:
                    if m.alias is not None:
                        self.types[m.alias] = DataType(m.datatype)
                        self.names[m.alias] = f"{d.device or ''}:{m.name}"
                d = decode(message, self.types)
            for m in d.metrics:
                key = f"{d.device or ''}:{m.name}" if m.name else self.names[m.alias]
                if not m.is_historical:
                    self.values[key] = None if m.is_null else m.value
            out.append(d)
        return out


def layout(**devices: dict[str, DataType | None]) -> NodeLayout:
    node = machine_metrics("press1", shift=True, include=INCLUDE)
    node |= alarm_metrics("hot", "limit") | alarm_metrics("bearing", "trend") | FLOOD_METRICS
    return NodeLayout(GROUP, NODE, node, devices or {"plc": PLC_TAGS}, INCLUDE)


PLC_TAGS: dict[str, DataType | None] = {
    "running": DataType.Boolean,
    "count": DataType.UInt32,
    "temp": DataType.Float,
    "current": DataType.Double,
    "code": DataType.Int16,
    "name": DataType.String,
}


def values(ts_ns: int, device: str = "plc", **kw: Any) -> Record:
    quality = kw.pop("quality", None)
    body: dict[str, Any] = {"device": device, "values": kw}
    if quality:
        body["quality"] = quality
    return Record("values", device, ts_ns, body)


def link(ts_ns: int, state: str, device: str = "plc") -> Record:
    body = {"device": device, "state": state, "endpoint": "x:502", "error": None}
    return Record("link", device, ts_ns, body)


def started(node: EdgeNode | None = None, now: int = T0) -> tuple[EdgeNode, Host, list[Decoded]]:
    node = node or EdgeNode(layout())
    node.will(now)
    host = Host()
    return node, host, host.take(node.birth(now))


# ---------------------------------------------------------------------------- births


def test_nbirth_declares_bdseq_rebirth_and_every_node_metric() -> None:
    _node, _host, births = started()
    nbirth = births[0]
    assert (nbirth.kind, nbirth.seq, nbirth.qos, nbirth.retain) == ("NBIRTH", 0, 0, False)
    assert nbirth.timestamp == T0 // MS
    metrics = nbirth.by_name()
    assert metrics["bdSeq"].datatype == DataType.Int64 and metrics["bdSeq"].value == 0
    rebirth = metrics[REBIRTH]
    assert (rebirth.datatype, rebirth.value, rebirth.alias) == (DataType.Boolean, False, None)
    expected = set(layout().node_metrics)
    assert expected <= set(metrics)
    for name in expected:
        m = metrics[name]
        assert m.datatype == layout().node_metrics[name]
        assert m.is_null and m.timestamp == T0 // MS  # nothing known yet
    assert metrics["machines/press1/state_code"].datatype == DataType.Int32
    assert metrics["machines/press1/oee/shift/good_count"].datatype == DataType.Int64
    assert metrics["machines/press1/oee/hour/availability"].datatype == DataType.Double
    assert metrics["alarms/bearing/time_to_limit_s"].datatype == DataType.Double
    assert "alarms/hot/time_to_limit_s" not in metrics


def test_dbirth_per_device_with_every_tag_typed_as_configured() -> None:
    _node, _host, births = started()
    assert [(b.kind, b.device, b.seq) for b in births] == [
        ("NBIRTH", None, 0),
        ("DBIRTH", "plc", 1),
    ]
    dbirth = births[1].by_name()
    assert {n: DataType(m.datatype) for n, m in dbirth.items()} == PLC_TAGS
    assert all(m.is_null and m.alias is not None for m in dbirth.values())


def test_aliases_are_unique_across_the_node_and_its_devices() -> None:
    lay = layout(a={"x": DataType.Double, "y": DataType.Boolean}, b={"x": DataType.Double})
    _node, _host, births = started(EdgeNode(lay))
    aliases = [m.alias for b in births for m in b.metrics if m.name != REBIRTH]
    assert len(aliases) == len(set(aliases)) == len(lay.node_metrics) + 1 + 3
    assert 0 not in aliases and None not in aliases


def test_types_from_a_real_configuration() -> None:
    config = load_config("configs/demo.yaml", secrets=False)
    sink = SparkplugSinkConfig(type="sparkplug", group_id=GROUP, edge_node_id=NODE)
    lay = layout_for(config, sink, config.agent.id)
    press1 = lay.devices["press1"]
    assert press1["running"] == DataType.Boolean
    assert press1["total_count"] == DataType.UInt32
    assert press1["fault_code"] == DataType.UInt16
    assert press1["spindle_temp_c"] == DataType.Float
    assert press1["motor_current_a"] == DataType.Double  # uint16 * 0.1
    assert set(lay.devices["press3"].values()) == {None}  # OPC UA: typed by values
    assert "machines/press1/oee/shift/oee" in lay.node_metrics
    assert "alarms/press1_vibration_zone/zone" in lay.node_metrics
    assert "alarm_flood/active" in lay.node_metrics
    only_values = sink.model_copy(update={"include": ["values"]})
    assert layout_for(config, only_values, "demo").node_metrics == {}


# ---------------------------------------------------------------------------- data


def test_values_are_sent_by_exception_with_aliases_only() -> None:
    node, host, _ = started()
    first = host.take(
        node.process(
            [
                values(
                    T0 + S, running=True, count=7, temp=21.5, current=1.5, code=-3, name="冲床 P201"
                )
            ],
            T0 + 2 * S,
        )
    )
    assert [(d.kind, d.device, d.seq) for d in first] == [("DDATA", "plc", 2)]
    assert all(m.name is None and m.datatype is None for m in first[0].metrics)
    assert all(m.timestamp == (T0 + S) // MS for m in first[0].metrics)
    assert host.values["plc:code"] == -3
    assert host.values["plc:name"] == "冲床 P201"
    assert host.values["plc:temp"] == 21.5
    again = node.process(
        [
            values(
                T0 + 3 * S, running=True, count=8, temp=21.5, current=1.5, code=-3, name="冲床 P201"
            )
        ],
        T0 + 4 * S,
    )
    (only,) = host.take(again)
    assert [host.names[m.alias] for m in only.metrics] == ["plc:count"]
    assert host.values["plc:count"] == 8
    assert node.process([values(T0 + 5 * S, count=8, temp=21.5)], T0 + 6 * S) == []


def test_bad_values_are_null_with_quality_and_good_again_says_so() -> None:
    node, host, _ = started()
    host.take(node.process([values(T0 + S, temp=20.0, current=1.0)], T0 + S))
    (bad,) = host.take(
        node.process(
            [
                values(
                    T0 + 2 * S,
                    temp=None,
                    current=1.25,
                    quality={"temp": "bad", "current": "uncertain"},
                )
            ],
            T0 + 2 * S,
        )
    )
    by = {host.names[m.alias]: m for m in bad.metrics}
    assert by["plc:temp"].is_null and by["plc:temp"].quality == 0
    assert by["plc:current"].value == 1.25 and by["plc:current"].quality == 500
    (good,) = host.take(node.process([values(T0 + 3 * S, temp=20.0, current=1.25)], T0 + 3 * S))
    by = {host.names[m.alias]: m for m in good.metrics}
    assert by["plc:temp"].value == 20.0 and by["plc:temp"].quality == 192
    assert by["plc:current"].quality == 192  # same value, better quality: sent again
    (nan,) = host.take(node.process([values(T0 + 4 * S, current=float("nan"))], T0 + 4 * S))
    assert nan.metrics[0].is_null and nan.metrics[0].quality == 0


def test_values_keep_their_own_times_in_order() -> None:
    node, host, _ = started()
    body = {
        "device": "plc",
        "values": {"temp": 1.0, "current": 2.0, "count": 3},
        "times": {"temp": "2023-11-14T22:13:21.5Z", "current": "2023-11-14T22:13:20.25Z"},
    }
    (d,) = host.take(node.process([Record("values", "plc", T0 + 2 * S, body)], T0 + 3 * S))
    assert [(host.names[m.alias], m.timestamp) for m in d.metrics] == [
        ("plc:current", 1_700_000_000_250),
        ("plc:temp", 1_700_000_001_500),
        ("plc:count", 1_700_000_002_000),
    ]


def test_many_records_become_one_message_per_device_in_time_order() -> None:
    lay = layout(a={"x": DataType.Double}, b={"x": DataType.Double})
    node, host, _ = started(EdgeNode(lay))
    records = [values(T0 + i * S, device="ab"[i % 2], x=float(i)) for i in range(1, 9)]
    out = host.take(node.process(records, T0 + 10 * S))
    assert [(d.kind, d.device) for d in out] == [("DDATA", "b"), ("DDATA", "a")]
    assert [m.value for m in out[0].metrics] == [1.0, 3.0, 5.0, 7.0]
    stamps = [m.timestamp for m in out[0].metrics]
    assert stamps == sorted(stamps)


def test_a_long_backlog_is_cut_into_bounded_messages() -> None:
    node, host, _ = started()
    records = [values(T0 + i * MS, count=i) for i in range(1, MAX_METRICS_PER_MESSAGE + 11)]
    out = host.take(node.process(records, T0 + S, historical=True))
    assert [len(d.metrics) for d in out] == [MAX_METRICS_PER_MESSAGE, 10]
    assert all(m.is_historical for d in out for m in d.metrics)


def test_node_metrics_from_state_oee_stop_alarm_and_flood_records() -> None:
    node, host, _ = started()
    records = [
        Record(
            "state",
            "press1",
            T0 + S,
            {
                "machine": "press1",
                "state": "down",
                "reason": "Die jam",
                "reason_code": "7",
                "since": "x",
                "ended": None,
            },
        ),
        Record(
            "oee",
            "press1",
            T0 + 2 * S,
            {
                "machine": "press1",
                "window": "shift",
                "shift": "day",
                "start": "2023-11-14T00:00:00Z",
                "end": "2023-11-14T12:00:00Z",
                "final": False,
                "availability": 0.9,
                "performance": 0.8,
                "quality": 0.99,
                "oee": 0.7128,
                "total_count": 1000,
                "good_count": 990,
                "reject_count": 10,
                "run_time_s": 100.0,
                "down_time_s": 10.0,
                "planned_busy_time_s": 110.0,
                "mtbf_s": None,
            },
        ),
        Record(
            "downtime",
            "press1",
            T0 + 3 * S,
            {
                "machine": "press1",
                "state": "down",
                "reason": None,
                "category": None,
                "start": "2023-11-14T22:13:00Z",
                "end": "x",
                "duration_s": 23.5,
            },
        ),
        Record(
            "alarm",
            "hot",
            T0 + 4 * S,
            {
                "id": "hot",
                "state": "unack_active",
                "active": True,
                "acked": False,
                "severity": 700,
                "value": 81.5,
                "message": "主轴过热",
            },
        ),
        Record(
            "condition",
            "bearing",
            T0 + 5 * S,
            {"id": "bearing", "type": "trend", "time_to_limit_s": 3600.0},
        ),
        Record("alarm_flood", "flood", T0 + 6 * S, {"phase": "begin", "activations": 12}),
    ]
    stored = [
        StoredRecord(i, r.ts_ns, r.kind, r.key, json.dumps(r.body)) for i, r in enumerate(records)
    ]
    (ndata,) = host.take(node.process(stored, T0 + 7 * S))
    assert ndata.kind == "NDATA" and ndata.device is None
    v = host.values
    assert v[":machines/press1/state"] == "down" and v[":machines/press1/state_code"] == 3
    assert v[":machines/press1/reason"] == "Die jam"
    assert v[":machines/press1/oee/shift/oee"] == 0.7128
    assert v[":machines/press1/oee/shift/good_count"] == 990
    assert v[":machines/press1/oee/shift/start"] == 1_699_920_000_000
    assert v[":machines/press1/oee/shift/final"] is False
    assert v[":machines/press1/last_stop/duration_s"] == 23.5
    assert v[":machines/press1/last_stop/reason"] is None
    assert v[":alarms/hot/message"] == "主轴过热" and v[":alarms/hot/severity"] == 700
    assert v[":alarms/bearing/time_to_limit_s"] == 3600.0
    assert v[":alarm_flood/active"] is True and v[":alarm_flood/activations"] == 12


def test_a_corrected_window_is_history_not_the_open_window() -> None:
    node, host, _ = started()
    window = {
        "machine": "press1",
        "window": "hour",
        "shift": None,
        "start": "2023-11-14T22:00:00Z",
        "end": "x",
        "final": False,
        "oee": 0.5,
    }
    host.take(node.process([Record("oee", "press1", T0 + 10 * S, window)], T0 + 10 * S))
    corrected = {
        **window,
        "start": "2023-11-14T21:00:00Z",
        "final": True,
        "oee": 0.8,
        "corrected_at": "x",
    }
    (d,) = host.take(node.process([Record("oee", "press1", T0 - S, corrected)], T0 + 11 * S))
    oee = [m for m in d.metrics if host.names[m.alias].endswith("hour/oee")]
    assert oee[0].is_historical and oee[0].value == 0.8
    assert host.values[":machines/press1/oee/hour/oee"] == 0.5


# ---------------------------------------------------------------------------- seq and bdSeq


def test_seq_counts_every_message_and_wraps_after_255() -> None:
    node, host, births = started()
    seqs = [b.seq for b in births]
    for i in range(300):
        seqs += [d.seq for d in host.take(node.process([values(T0 + i * S, count=i)], T0))]
    assert seqs[:3] == [0, 1, 2]
    assert seqs == [i % 256 for i in range(len(seqs))]
    assert 255 in seqs and seqs.count(0) == 2


def test_bdseq_goes_up_per_connection_and_the_birth_repeats_the_will() -> None:
    node = EdgeNode(layout(), bd_seq=254)
    wills = []
    for i in range(3):
        will = decode(node.will(T0 + i * S))
        assert (will.kind, will.seq, will.qos, will.retain) == ("NDEATH", None, 1, False)
        (bd,) = will.metrics
        assert (bd.name, bd.datatype) == ("bdSeq", DataType.Int64)
        nbirth = decode(node.birth(T0 + i * S)[0])
        assert nbirth.by_name()["bdSeq"].value == bd.value == node.bd_seq
        wills.append(bd.value)
        node.lost()
    assert wills == [255, 0, 1]
    assert decode(EdgeNode(layout()).will(T0)).metrics[0].value == 0  # the first ever


def test_intentional_death_carries_the_wills_bdseq_and_ends_the_session() -> None:
    node, _host, _ = started(EdgeNode(layout(), bd_seq=41))
    death = decode(node.death(T0 + S))
    assert (death.kind, death.seq, death.qos, death.metrics[0].value) == ("NDEATH", None, 1, 42)
    with pytest.raises(NoSessionError):
        node.process([values(T0, count=1)], T0)
    with pytest.raises(NoSessionError):
        node.birth(T0 + 2 * S)  # the next connection registers a new will first
    with pytest.raises(NoSessionError):
        EdgeNode(layout()).birth(T0)  # no will registered: no birth
    node.will(T0 + 3 * S)
    assert decode(node.birth(T0 + 3 * S)[0]).by_name()["bdSeq"].value == 43


# ---------------------------------------------------------------------------- rebirth


def ncmd(**metrics: Any) -> bytes:
    payload = Payload(timestamp=T0 // MS)
    for name, value in metrics.items():
        metric = payload.metrics.add(name=name, datatype=DataType.Boolean)
        metric.boolean_value = value
    return payload.SerializeToString()


def test_rebirth_request_sends_the_births_again_with_current_values() -> None:
    node, host, _ = started(EdgeNode(layout(), bd_seq=9))
    host.take(node.process([values(T0 + S, count=5, temp=1.5)], T0 + S))
    assert node.seq == 3
    again = host.take(node.command(ncmd(**{REBIRTH: True}), T0 + 2 * S))
    assert [(d.kind, d.seq) for d in again] == [("NBIRTH", 0), ("DBIRTH", 1)]
    assert again[0].by_name()["bdSeq"].value == 10
    dbirth = again[1].by_name()
    assert dbirth["count"].value == 5 and dbirth["count"].timestamp == (T0 + S) // MS
    assert dbirth["temp"].value == 1.5 and dbirth["running"].is_null
    assert [d.seq for d in host.take(node.process([values(T0 + 3 * S, count=6)], T0))] == [2]


def test_rebirth_requests_within_a_second_of_a_birth_are_served_by_one_rebirth_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    node, host, _ = started()  # born at T0
    for k in range(50):  # a host asking in a loop, or several hosts at once
        assert node.command(ncmd(**{REBIRTH: True}), T0 + k * S // 100) == []
    assert node.rebirth_owed_ns == T0 + S
    assert len([r for r in caplog.records if "within 1 s of the last birth" in r.message]) == 1
    again = host.take(node.owed_rebirth(T0 + S))
    assert [(d.kind, d.seq) for d in again] == [("NBIRTH", 0), ("DBIRTH", 1)]
    assert node.rebirth_owed_ns is None and node.owed_rebirth(T0 + S) == []
    # Within a second of that birth, put off again; a second after it, served at once.
    assert node.command(ncmd(**{REBIRTH: True}), T0 + S + S // 2) == []
    assert [d.kind for d in host.take(node.command(ncmd(**{REBIRTH: True}), T0 + 2 * S))] == [
        "NBIRTH",
        "DBIRTH",
    ]
    assert node.rebirth_owed_ns is None  # that birth paid what was owed


def test_no_data_while_a_rebirth_is_owed() -> None:
    """tck-id-operational-behavior-data-commands-rebirth-action-1: data stops at the request."""
    node, host, _ = started()
    assert node.command(ncmd(**{REBIRTH: True}), T0 + S // 10) == []
    with pytest.raises(NoSessionError, match="a rebirth was asked for"):
        node.process([values(T0 + S // 5, count=5)], T0 + S // 5)
    with pytest.raises(NoSessionError):
        node.catch_up(T0 + S // 5)
    host.take(node.owed_rebirth(T0 + S))
    sent = host.take(node.process([values(T0 + S // 5, count=5)], T0 + S))
    assert [(d.kind, d.seq) for d in sent] == [("DDATA", 2)]


def test_dcmd_writes_are_refused_and_said_with_the_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, _host, _ = started()
    assert node.dcmd_filter == f"spBv1.0/{GROUP}/DCMD/{NODE}/+"
    topic = f"spBv1.0/{GROUP}/DCMD/{NODE}/plc"
    node.device_command(topic, ncmd(**{"setpoint": True}), T0)
    node.device_command(topic, b"\x00" * (64 * 1024 + 1), T0)
    node.device_command(topic, b"\xff\xff not protobuf", T0)
    assert [r.getMessage() for r in caplog.records] == [
        "Sparkplug DCMD writes 1 metric(s) ('plc/setpoint'): ignored, the agent only reads",
        "Sparkplug DCMD to 'plc' of 65537 bytes (at most 65536): ignored",
        "Sparkplug DCMD to 'plc' that is not a Sparkplug B payload",
    ]
    assert node.seq == 2  # nothing sent


def test_an_unborn_connection_has_its_death_too() -> None:
    """Connected and waiting (for a primary host): an intentional DISCONNECT still needs the
    NDEATH first, with the will's bdSeq (tck-id-payloads-ndeath-will-message-publisher-
    disconnect-mqtt311)."""
    node = EdgeNode(layout(), bd_seq=3)
    assert not node.registered
    will = node.will(T0)
    assert node.registered and not node.born
    death = node.death(T0 + S)
    assert death.topic == will.topic and death.payload != b""
    assert decode(death).by_name()["bdSeq"].value == decode(will).by_name()["bdSeq"].value == 4
    assert not node.registered


def test_a_rebirth_owed_when_the_session_ends_is_served_by_the_next_birth() -> None:
    node, host, _ = started()
    assert node.command(ncmd(**{REBIRTH: True}), T0 + S // 2) == []
    node.lost()
    assert node.rebirth_owed_ns is None and node.owed_rebirth(T0 + S) == []
    node.will(T0 + 2 * S)
    host.take(node.birth(T0 + 2 * S))
    assert node.owed_rebirth(T0 + 3 * S) == []


def test_ncmd_writes_are_said_once_a_minute_however_many_come(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, _host, _ = started()
    for k in range(100):  # one every 2 s for 200 s
        assert node.command(ncmd(**{f"Device Control/w{k}": True}), T0 + 2 * k * S) == []
    lines = [r.getMessage() for r in caplog.records if "NCMD writes" in r.getMessage()]
    assert len(lines) == 4, lines  # at 0, 60, 120 and 180 s
    assert lines[0] == (
        "Sparkplug NCMD writes 1 metric(s) ('Device Control/w0'): ignored, the agent only reads"
    )
    assert lines[1].startswith("Sparkplug NCMD writes 30 metric(s) since the last such line ")
    assert node.seq == 2


def test_other_commands_change_nothing() -> None:
    node, _host, _ = started()
    assert node.command(ncmd(**{REBIRTH: False}), T0) == []
    assert node.command(ncmd(**{"Node Control/Reboot": True}), T0) == []
    assert node.command(b"\xff\xff not protobuf", T0) == []
    assert node.seq == 2


# ---------------------------------------------------------------------------- device links


def test_a_device_dies_when_its_link_goes_down_and_is_born_again_when_back() -> None:
    node, host, _ = started()
    host.take(node.process([values(T0 + S, count=5)], T0 + S))
    down = [values(T0 + 2 * S, count=None, quality={"count": "bad"}), link(T0 + 2 * S, "down")]
    out = host.take(node.process(down, T0 + 2 * S))
    assert [(d.kind, d.device, d.seq) for d in out] == [("DDATA", "plc", 3), ("DDEATH", "plc", 4)]
    assert out[1].metrics == [] and out[1].timestamp == (T0 + 2 * S) // MS
    assert node.process([values(T0 + 3 * S, count=9)], T0 + 3 * S) == []  # not sent while down
    assert node.not_sent == 1
    back = host.take(node.process([link(T0 + 4 * S, "up"), values(T0 + 4 * S, count=10)], T0))
    assert [(d.kind, d.seq) for d in back] == [("DBIRTH", 5), ("DDATA", 6)]
    assert back[0].by_name()["count"].value == 9  # the newest known, of its own time
    assert host.values["plc:count"] == 10


def test_a_device_down_at_birth_gets_no_dbirth_until_it_answers() -> None:
    node = EdgeNode(layout())
    node.observe([link(T0, "down")])
    node.will(T0)
    host = Host()
    assert [d.kind for d in host.take(node.birth(T0 + S))] == ["NBIRTH"]
    out = host.take(node.process([link(T0 + 2 * S, "up")], T0 + 2 * S))
    assert [(d.kind, d.device, d.seq) for d in out] == [("DBIRTH", "plc", 1)]


def test_untyped_tags_wait_for_their_first_values_to_be_declared() -> None:
    node, host, births = started(EdgeNode(layout(ua={"run": None, "n": None, "t": None})))
    assert [b.kind for b in births] == ["NBIRTH"]
    out = host.take(node.process([values(T0 + S, device="ua", run=True, n=3, t=None)], T0))
    assert [(d.kind, d.seq) for d in out] == [("DBIRTH", 1), ("DDATA", 2)]
    types = {n: DataType(m.datatype) for n, m in out[0].by_name().items()}
    assert types == {"run": DataType.Boolean, "n": DataType.Int64, "t": DataType.Double}
    # t's first value is text: redeclared, which takes a full rebirth.
    out = host.take(node.process([values(T0 + 2 * S, device="ua", t="x")], T0))
    assert [(d.kind, d.seq) for d in out] == [("NBIRTH", 0), ("DBIRTH", 1), ("DDATA", 2)]
    assert out[1].by_name()["t"].datatype == DataType.String


def test_a_value_its_type_cannot_carry_redeclares_the_metric() -> None:
    node, host, _ = started()
    out = host.take(node.process([values(T0 + S, code=70000)], T0))  # Int16 declared
    assert [d.kind for d in out] == ["NBIRTH", "DBIRTH", "DDATA"]
    assert out[1].by_name()["code"].datatype == DataType.Int64
    assert host.values["plc:code"] == 70000
    # Types only widen: a boolean fits an integer as 1, a number fits text; no back and forth.
    kinds = []
    for i, value in enumerate([True, "x", 5, False, 2.5]):
        out = host.take(node.process([values(T0 + (2 + i) * S, code=value)], T0))
        kinds.append([d.kind for d in out])
        assert host.values["plc:code"] == {True: 1, False: "False", 5: "5", 2.5: "2.5"}.get(
            value, value
        )
    assert kinds == [["DDATA"], ["NBIRTH", "DBIRTH", "DDATA"], ["DDATA"], ["DDATA"], ["DDATA"]]


def test_a_device_never_configured_is_born_when_its_values_come() -> None:
    node, host, _ = started()
    out = host.take(node.process([values(T0 + S, device="extra", x=1.5)], T0))
    assert [(d.kind, d.device) for d in out] == [("DBIRTH", "extra"), ("DDATA", "extra")]


# ---------------------------------------------------------------------------- historical


def test_historical_records_keep_their_times_and_never_replace_current_values() -> None:
    node, host, _ = started()
    host.take(node.process([values(T0 + 10 * S, count=10, temp=1.0)], T0 + 10 * S))
    late = [values(T0 + i * S, count=i, temp=1.0) for i in (3, 4, 4)]
    (hist,) = host.take(node.process(late, T0 + 11 * S, historical=True))
    assert [(host.names[m.alias], m.is_historical, m.value, m.timestamp) for m in hist.metrics] == [
        ("plc:count", True, 3, (T0 + 3 * S) // MS),
        ("plc:temp", True, 1.0, (T0 + 3 * S) // MS),  # news to a historian: null before
        ("plc:count", True, 4, (T0 + 4 * S) // MS),  # once, though twice at one time
    ]  # temp unchanged after: not repeated
    assert host.values["plc:count"] == 10
    assert node.catch_up(T0 + 12 * S) == []  # nothing newer came
    # An older record not marked historical is history all the same.
    (old,) = host.take(node.process([values(T0 + 5 * S, count=5)], T0 + 13 * S))
    assert old.metrics[0].is_historical and host.values["plc:count"] == 10


def test_a_backlog_newer_than_the_birth_is_history_then_caught_up() -> None:
    node = EdgeNode(layout())
    node.observe([values(T0, count=1, temp=1.0), link(T0, "up")])
    node.will(T0 + 10 * S)
    host = Host()
    births = host.take(node.birth(T0 + 10 * S))
    assert births[1].by_name()["count"].value == 1  # observed before the session
    backlog = [
        values(T0 + S, count=2, temp=1.0),
        values(T0 + 2 * S, count=3, temp=1.0),
        link(T0 + 3 * S, "down"),
    ]
    (hist,) = host.take(node.process(backlog, T0 + 11 * S, historical=True))
    assert [(m.value, m.is_historical) for m in hist.metrics] == [(2, True), (3, True)]
    assert host.values["plc:count"] == 1
    # The first live record brings hosts up to date first: newest count, then the link.
    out = host.take(node.process([values(T0 + 12 * S, device="plc", temp=2.0)], T0 + 12 * S))
    assert [(d.kind, d.device) for d in out] == [("DDATA", "plc"), ("DDEATH", "plc")]
    assert [(m.value, m.is_historical) for m in out[0].metrics] == [(3, False)]
    assert node.not_sent == 1


def test_catch_up_after_a_backlog_sends_current_values_and_links() -> None:
    node, host, _ = started()
    backlog = [
        link(T0 + S, "down"),
        values(T0 + 2 * S, count=None, quality={"count": "bad"}),
        link(T0 + 3 * S, "up"),
        values(T0 + 4 * S, count=4),
    ]
    host.take(node.process(backlog, T0 + 5 * S, historical=True))
    out = host.take(node.catch_up(T0 + 6 * S))
    assert [(d.kind, [m.value for m in d.metrics]) for d in out] == [("DDATA", [4])]
    assert host.values["plc:count"] == 4


# ---------------------------------------------------------------------------- primary host


def state(online: bool, ts: Any) -> bytes:
    return json.dumps({"online": online, "timestamp": ts}).encode()


def test_primary_host_online_offline_and_old_wills() -> None:
    host = PrimaryHost("scada")
    assert host.topic == "spBv1.0/STATE/scada" and not host.online
    assert host.update("spBv1.0/STATE/other", state(True, 5)) is None
    assert host.update(host.topic, state(True, 100)) is True and host.online
    assert host.update(host.topic, state(False, 99)) is None and host.online  # an old will
    assert host.update(host.topic, state(False, 100)) is False and not host.online
    assert host.update(host.topic, state(True, 150)) is True
    for junk in (b"ONLINE", b"{}", state(True, "x"), state(True, -1), b"\xff", b"[1]"):
        assert host.update(host.topic, junk) is None
    assert host.online
    host.disconnected()
    assert not host.online
    assert host.update(host.topic, state(True, 120)) is None  # older than one seen before
    assert host.update(host.topic, state(True, 150)) is True  # the retained one again


# ---------------------------------------------------------------------------- configuration


def test_sparkplug_ids_refuse_what_topics_cannot_hold() -> None:
    ok = SparkplugSinkConfig(type="sparkplug", group_id="Plant 1", edge_node_id="冲压线-1")
    assert ok.node_id("agent") == "冲压线-1" and ok.mqtt_client_id("a7") == "a7-sparkplug"
    assert SparkplugSinkConfig(type="sparkplug", group_id="g").node_id("agent") == "agent"
    for field in ("group_id", "edge_node_id", "primary_host_id"):
        for bad in ("a/b", "a+", "#", "", " x"):
            kwargs = {"group_id": "g", field: bad}
            with pytest.raises(ValidationError, match=field):
                SparkplugSinkConfig(type="sparkplug", **kwargs)
    with pytest.raises(ValidationError, match="include"):
        SparkplugSinkConfig(type="sparkplug", group_id="g", include=["values", "tags"])


def test_values_observed_within_a_session_go_out_with_the_next_call() -> None:
    node, host, _ = started()
    node.observe([values(T0 + S, count=3), values(T0 + S, device="new", x=1.5)])
    out = host.take(node.catch_up(T0 + 2 * S))
    # A metric never declared (device "new") takes a rebirth; the birth carries the newest.
    assert [(d.kind, d.device) for d in out] == [
        ("NBIRTH", None),
        ("DBIRTH", "plc"),
        ("DBIRTH", "new"),
    ]
    assert out[1].by_name()["count"].value == 3 and out[2].by_name()["x"].value == 1.5
    assert node.catch_up(T0 + 3 * S) == []
    node.lost()
    assert node.command(ncmd(**{REBIRTH: True}), T0) == []  # no session: the next birth serves


def test_every_tag_type_of_every_driver_has_its_sparkplug_type() -> None:
    """A configured `type:` of any driver names a Sparkplug data type; none falls back to the
    type of the first value (which is for OPC UA tags, that have no type in the file)."""
    import typing

    from drivers import PLUGINS
    from edge_agent.sinks.sparkplug.layout import tag_datatype

    for driver in PLUGINS:
        for _title, model in driver.reference:
            field = model.model_fields.get("type")
            if field is None:
                continue
            kinds = [
                a
                for arg in typing.get_args(field.annotation)
                for a in typing.get_args(arg) or [arg]
            ]
            for kind in (k for k in kinds if isinstance(k, str)):
                fake = type("Tag", (), {"type": kind, "scale": 1.0, "offset": 0.0})()
                assert tag_datatype(fake) is not None, (driver.name, kind)


def test_include_leaves_out_what_it_does_not_name() -> None:
    """`include: [machines]`: the node declares and sends machine states only; values, OEE and
    alarms records change nothing on the wire, and no device is born."""
    only = frozenset({"machines"})
    node_metrics = machine_metrics("press1", shift=True, include=only)
    # As layout_for makes it: without `values`, no device is declared.
    node = EdgeNode(NodeLayout(GROUP, NODE, node_metrics, {}, only))
    node, host, births = started(node)
    assert [b.kind for b in births] == ["NBIRTH"]
    declared = {m.name for m in births[0].metrics}
    assert "machines/press1/state" in declared
    assert not any("/oee/" in n or n.startswith("alarms/") for n in declared), declared
    state = {
        "machine": "press1",
        "state": "down",
        "reason": "Die jam",
        "reason_code": "1",
        "since": "x",
        "ended": None,
    }
    sent = host.take(
        node.process(
            [
                values(T0 + S, running=True, count=5),
                Record("alarm", "hot", T0 + S, {"id": "hot", "state": "unack_active"}),
                Record("state", "press1", T0 + 2 * S, state),
            ],
            T0 + 3 * S,
        )
    )
    assert [d.kind for d in sent] == ["NDATA"]
    assert host.values[":machines/press1/state"] == "down"
    assert {host.names[m.alias] for m in sent[0].metrics} <= {f":{name}" for name in node_metrics}
    assert not any(k.startswith("plc:") or ":alarms/" in k for k in host.values)


def test_hostile_commands_and_states_are_refused_with_a_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Huge, deep or many-metric payloads on the NCMD and STATE topics change nothing, cost one
    log line each, and never raise."""
    node, _host, _ = started()
    huge = ncmd(**{REBIRTH: True}) + b"\x00" * (64 * 1024)
    assert node.command(huge, T0) == []  # not parsed: a real rebirth request is tiny
    many = ncmd(**{f"Device Control/w{i}": True for i in range(1000)})
    caplog.clear()
    assert node.command(many, T0) == []
    assert len([r for r in caplog.records if "NCMD writes" in r.message]) == 1
    deep = b"\x12\x02" * 20000  # nested length-delimited fields: a parser's recursion
    assert node.command(deep, T0) == []
    assert node.seq == 2
    host = PrimaryHost("scada")
    assert host.update(host.topic, state(True, 100)) is True
    nested = b'{"online": false, "timestamp": 200, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert host.update(host.topic, nested) is None and host.online
    assert host.update(host.topic, state(False, 200) + b" " * 5000) is None and host.online
