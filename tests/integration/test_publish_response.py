"""Values of one OPC UA publish response travel as one record, each with its own time stamp.

An asyncua server (the simulated press, over a real socket) writes 40 variables, each with its
own SourceTimestamp, then changes one of them once more. The agent must publish every value
exactly once, at the time the server gave it: in a per-poll MQTT message under "times" when it
differs from the message's "ts", and as the point's own time in InfluxDB (VictoriaMetrics) —
and in far fewer records than values (one per response, not one per value).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua

from drivers.sim.opcua_press import NAMESPACE, serve_opcua_press
from tests.integration.test_pipeline import on_topic, running, wait_until, write_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port

NSU = f"nsu={NAMESPACE};"
NODES = 40


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


async def test_one_record_per_response_and_every_value_at_its_own_time(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    sim = await serve_opcua_press(port=free_port())
    idx = await sim.server.get_namespace_index(NAMESPACE)
    press = await sim.server.nodes.objects.get_child([f"{idx}:Press"])
    nodes = [
        await press.add_variable(
            ua.NodeId(f"Press.V{i}", idx), f"{idx}:V{i}", ua.Variant(0.0, ua.VariantType.Double)
        )
        for i in range(NODES)
    ]
    tags = "".join(f'      v{i}: {{node: "{NSU}s=Press.V{i}"}}\n' for i in range(NODES))
    path, agent_id = write_config(
        tmp_path,
        f"""devices:
  press:
    driver: opcua
    url: {sim.url}
    security: none
    mode: subscribe
    publishing_interval_ms: 300
    sampling_interval_ms: 0
    tags:
{tags}sinks:
  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}
  influxdb: {{url: '{victoria.url}', bucket: test, org: test, token: secret-token,
              flush_interval_s: 0.2}}
""",
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/devices/press")
    # Stamped a minute back, a millisecond apart: no clock near now could make these up.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    stamps = {f"v{i}": base + timedelta(milliseconds=3 * i) for i in range(NODES)}
    again = base + timedelta(milliseconds=500)
    try:
        async with running(path):
            # The first full Read: every tag at 0.0 (written at start-up).
            await wait_until(capture, lambda ms: _values_seen(ms, root, 0.0) >= NODES)
            for i, node in enumerate(nodes):
                await node.write_value(
                    ua.DataValue(
                        ua.Variant(1000.0 + i, ua.VariantType.Double),
                        SourceTimestamp=stamps[f"v{i}"],
                    )
                )
            await nodes[7].write_value(
                ua.DataValue(ua.Variant(2007.0, ua.VariantType.Double), SourceTimestamp=again)
            )
            got = await wait_until(capture, lambda ms: _values_seen(ms, root, 2007.0) >= 1)
            series = await asyncio.to_thread(
                victoria.wait_for,
                f'{{__name__="values_value",agent="{agent_id}"}}',
                points=2 * NODES + 1,
            )
    finally:
        capture.close()
        await sim.stop()

    seen: dict[str, list[tuple[float, int]]] = {}
    carrying = 0
    for payload in on_topic(got, f"{root}/devices/press"):
        times = payload.get("times", {})
        written = {t: v for t, v in payload["values"].items() if v >= 1000}  # type: ignore[union-attr]
        carrying += bool(written)
        for tag, value in written.items():
            seen.setdefault(tag, []).append((value, _ms(times.get(tag, payload["ts"]))))
    expected = {f"v{i}": [(1000.0 + i, _ms(stamps[f"v{i}"].isoformat()))] for i in range(NODES)}
    expected["v7"].append((2007.0, _ms(again.isoformat())))
    assert seen == expected  # every value once, in order, at the time its server gave it
    assert carrying <= 6  # a few publish responses, not one message per value

    # InfluxDB: each point at its own time (the 0.0 of start-up, then the written values).
    points = {
        s["metric"]["tag"]: dict(zip(s["timestamps"], s["values"], strict=True))  # type: ignore[index]
        for s in series
    }
    for tag, values in expected.items():
        for value, ts_ms in values:
            assert points[tag].get(ts_ms) == value, (tag, ts_ms)


def _values_seen(messages: list, root: str, value: float) -> int:  # type: ignore[type-arg]
    return sum(
        sum(1 for v in json.loads(m.payload)["values"].values() if v == value)
        for m in messages
        if m.topic == f"{root}/devices/press"
    )
