"""Sparkplug B payloads the agent encodes, read back by an independent decoder: Eclipse Tahu's npm
`sparkplug-payload` (tests/peers/sparkplug/decode.js), with exact values.

The decoder gives two views of each payload: `decoded` (the library's own reading, which needs
each metric's datatype, so births) and `raw` (the protobuf fields as protobufjs reads them, for
data messages, whose metrics carry an alias and no datatype). 64-bit integers come back as
decimal strings, NaN and infinities as strings.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge_agent.records import Record
from edge_agent.sinks.sparkplug import DataType, EdgeNode, NodeLayout, Payload
from edge_agent.sinks.sparkplug.codec import put
from edge_agent.sinks.sparkplug.node import REBIRTH
from tests.support.servers import PEERS, _require

pytestmark = pytest.mark.integration

# Where `sparkplug-payload` is installed: tests/peers/node_modules once it is in
# tests/peers/package.json; elsewhere (development) through this variable.
DECODER = PEERS / "sparkplug"
NODE_MODULES = Path(os.environ.get("SPARKPLUG_PEER_NODE_MODULES", DECODER / "node_modules"))
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
MS = 1_000_000


def peer_decode(payloads: list[bytes]) -> list[dict[str, Any]]:
    if not (NODE_MODULES / "sparkplug-payload").exists():
        raise RuntimeError(
            f"npm sparkplug-payload is not installed in {NODE_MODULES}: run 'make test' "
            "(npm ci in tests/peers/sparkplug), or point SPARKPLUG_PEER_NODE_MODULES at a node_modules"
        )
    lines = "".join(base64.b64encode(p).decode() + "\n" for p in payloads)
    done = subprocess.run(
        [_require("node"), str(DECODER / "decode.js")],
        input=lines.encode(),
        capture_output=True,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        timeout=60,
        check=True,
    )
    out = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(out) == len(payloads), done.stderr.decode()
    for item in out:
        assert "error" not in item, item
    return out


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


# (datatype, value as encoded, value as sparkplug-payload's decodePayload gives it)
CASES: list[tuple[DataType, Any, Any]] = [
    (DataType.Int8, -128, -128),
    (DataType.Int8, 127, 127),
    (DataType.Int16, -32768, -32768),
    (DataType.Int16, -3, -3),
    (DataType.Int32, -(2**31), -(2**31)),
    (DataType.Int32, 2**31 - 1, 2**31 - 1),
    (DataType.Int64, -(2**63), str(-(2**63))),
    (DataType.Int64, -1, "-1"),
    (DataType.Int64, 2**63 - 1, str(2**63 - 1)),
    (DataType.UInt8, 255, 255),
    (DataType.UInt16, 65535, 65535),
    (DataType.UInt32, 2**31 - 1, 2**31 - 1),
    (DataType.UInt32, 4_000_000_000, 4_000_000_000),
    (DataType.UInt64, 2**64 - 1, str(2**64 - 1)),
    (DataType.UInt64, 2**53 + 1, str(2**53 + 1)),
    (DataType.Float, 21.5, 21.5),
    (DataType.Float, 0.1, f32(0.1)),
    (DataType.Float, -3.4028234663852886e38, -3.4028234663852886e38),
    (DataType.Double, 0.1 + 0.2, 0.30000000000000004),
    (DataType.Double, -1e-300, -1e-300),
    (DataType.Double, float("nan"), "NaN"),
    (DataType.Double, float("inf"), "Infinity"),
    (DataType.Float, float("-inf"), "-Infinity"),
    (DataType.Float, float("nan"), "NaN"),
    (DataType.Boolean, True, True),
    (DataType.Boolean, False, False),
    (DataType.String, "冲床 P201 主轴温度 °C", "冲床 P201 主轴温度 °C"),
    (DataType.String, "", ""),
    (DataType.Text, "换模\n第二行 ✓", "换模\n第二行 ✓"),
    (DataType.UUID, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    (DataType.DateTime, 1_700_000_000_123, "1700000000123"),
    (DataType.DateTime, 0, "0"),
]


def test_every_datatype_decodes_to_the_exact_value() -> None:
    payload = Payload(timestamp=T0 // MS, seq=7)
    for i, (datatype, value, _) in enumerate(CASES):
        metric = payload.metrics.add(name=f"m{i}", alias=i + 1, datatype=datatype)
        metric.timestamp = T0 // MS + i
        put(metric, datatype, value)
    (peer,) = peer_decode([payload.SerializeToString()])
    decoded = peer["decoded"]
    assert (decoded["timestamp"], decoded["seq"]) == (str(T0 // MS), "7")
    got = {m["name"]: m for m in decoded["metrics"]}
    for i, (datatype, _value, expected) in enumerate(CASES):
        metric = got[f"m{i}"]
        assert metric["type"] == datatype.name
        assert metric["alias"] == str(i + 1)
        assert metric["timestamp"] == str(T0 // MS + i)
        assert metric["value"] == expected, (datatype.name, metric)
        assert "isNull" not in metric and "isHistorical" not in metric


def test_null_historical_and_quality_as_the_node_sends_them() -> None:
    tags = {
        "temp": DataType.Float,
        "count": DataType.UInt64,
        "name": DataType.String,
        "current": DataType.Double,
    }
    node = EdgeNode(NodeLayout("工厂1", "冲压线-1", {}, {"压机1": tags}))
    will = node.will(T0)
    births = node.birth(T0)
    live = [
        Record(
            "values",
            "压机1",
            T0 + 10 * S,
            {
                "device": "压机1",
                "values": {"temp": None, "count": 2**64 - 1, "name": "模具 A", "current": 1.25},
                "quality": {"temp": "bad", "current": "uncertain"},
            },
        )
    ]
    data = node.process(live, T0 + 11 * S)
    late = [
        Record("values", "压机1", T0 + 5 * S, {"device": "压机1", "values": {"count": 5}}),
    ]
    history = node.process(late, T0 + 12 * S, historical=True)
    messages = [will, *births, *data, *history]
    assert [m.topic for m in messages] == [
        "spBv1.0/工厂1/NDEATH/冲压线-1",
        "spBv1.0/工厂1/NBIRTH/冲压线-1",
        "spBv1.0/工厂1/DBIRTH/冲压线-1/压机1",
        "spBv1.0/工厂1/DDATA/冲压线-1/压机1",
        "spBv1.0/工厂1/DDATA/冲压线-1/压机1",
    ]
    ndeath, nbirth, dbirth, ddata, hist = peer_decode([m.payload for m in messages])

    assert "seq" not in ndeath["raw"]
    assert ndeath["decoded"]["metrics"] == [
        {"name": "bdSeq", "type": "Int64", "value": "0", "timestamp": str(T0 // MS)}
    ]
    assert nbirth["decoded"]["seq"] == "0"
    nb = {m["name"]: m for m in nbirth["decoded"]["metrics"]}
    assert nb["bdSeq"]["value"] == "0" and nb["bdSeq"]["type"] == "Int64"
    assert nb[REBIRTH]["value"] is False and nb[REBIRTH]["type"] == "Boolean"
    assert "alias" not in nb[REBIRTH]

    assert dbirth["decoded"]["seq"] == "1"
    db = {m["name"]: m for m in dbirth["decoded"]["metrics"]}
    assert {n: m["type"] for n, m in db.items()} == {n: t.name for n, t in tags.items()}
    assert all(m["value"] is None for m in db.values())  # nothing known yet: is_null
    assert all(m["timestamp"] == str(T0 // MS) for m in db.values())
    aliases = {n: m["alias"] for n, m in db.items()}

    # Data: aliases only, no names, no datatypes (host applications have them from the birth).
    assert ddata["raw"]["seq"] == "2"
    by_alias = {m["alias"]: m for m in ddata["raw"]["metrics"]}
    assert all("name" not in m and "datatype" not in m for m in by_alias.values())
    assert all(m["timestamp"] == str((T0 + 10 * S) // MS) for m in by_alias.values())
    temp = by_alias[aliases["temp"]]
    assert temp["isNull"] is True and "value" not in temp
    bad = {"type": 3, "intValue": 0, "value": "intValue"}  # Int32, BAD
    assert temp["properties"] == {"keys": ["Quality"], "values": [bad]}
    assert by_alias[aliases["count"]]["longValue"] == str(2**64 - 1)
    assert by_alias[aliases["name"]]["stringValue"] == "模具 A"
    current = by_alias[aliases["current"]]
    assert current["doubleValue"] == 1.25
    assert current["properties"]["values"] == [{"type": 3, "intValue": 500, "value": "intValue"}]
    # The library's own reading of the quality, as it decodes properties by their type.
    quality = next(m for m in ddata["decoded"]["metrics"] if m["alias"] == aliases["current"])
    assert quality["properties"]["Quality"] == {"type": "Int32", "value": 500}

    (old,) = hist["raw"]["metrics"]
    assert old["isHistorical"] is True
    assert old["timestamp"] == str((T0 + 5 * S) // MS)
    assert old["longValue"] == "5" and old["alias"] == aliases["count"]


def test_a_birth_with_current_values_decodes_exactly() -> None:
    tags = {
        "running": DataType.Boolean,
        "total": DataType.UInt32,
        "code": DataType.Int16,
        "temp": DataType.Float,
        "current": DataType.Double,
        "order": DataType.String,
        "serial": DataType.UInt64,
    }
    node = EdgeNode(NodeLayout("g", "n", {"machines/压机1/state": DataType.String}, {"plc": tags}))
    node.observe(
        [
            Record(
                "values",
                "plc",
                T0,
                {
                    "device": "plc",
                    "values": {
                        "running": True,
                        "total": 4_000_000_000,
                        "code": -7,
                        "temp": f32(0.1),  # as a float32 register reads
                        "current": math.pi,
                        "order": "订单 №42",
                        "serial": 2**64 - 2,
                    },
                },
            ),
        ]
    )
    node.will(T0)
    _nbirth, dbirth = peer_decode([m.payload for m in node.birth(T0 + S)])
    got = {m["name"]: m["value"] for m in dbirth["decoded"]["metrics"]}
    assert got == {
        "running": True,
        "total": 4_000_000_000,
        "code": -7,
        "temp": f32(0.1),
        "current": math.pi,
        "order": "订单 №42",
        "serial": str(2**64 - 2),
    }
