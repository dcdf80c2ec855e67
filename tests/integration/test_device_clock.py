"""A device whose clock is far off: its time stamps are replaced, compute stays on the local clock.

Regression: an OPC UA server stamping values 20 days ahead made the agent publish OEE records
for hours that had not happened and pinned every later sample to that future instant. The server
here is the simulated press (asyncua, over a real socket), with one variable written with a
SourceTimestamp 20 days ahead and one 1 s ahead (within max_clock_skew_s, kept).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua

from drivers.sim.opcua_press import NAMESPACE, OpcUaPress, serve_opcua_press
from edge_agent.records import StoredRecord
from tests.integration.test_pipeline import running, write_config
from tests.support.servers import free_port

NSU = f"nsu={NAMESPACE};"
S = 1_000_000_000


def stamp(record: StoredRecord, tag: str) -> int:
    """The time of one value of a record: its own under `times`, else the record's (ns)."""
    own = record.decoded().get("times", {}).get(tag)
    if own is None:
        return record.ts_ns
    return round(datetime.fromisoformat(own).timestamp() * 1000) * 1_000_000


async def stamp_ahead(sim: OpcUaPress, name: str, ahead: timedelta, stop: asyncio.Event) -> None:
    node = sim.nodes[name]
    value = 0.0
    while not stop.is_set():
        value += 1.0
        stamp = datetime.now(UTC) + ahead
        await node.write_value(
            ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=stamp)
        )
        await asyncio.sleep(0.1)


async def add_node(sim: OpcUaPress, name: str) -> None:
    idx = await sim.server.get_namespace_index(NAMESPACE)
    press = await sim.server.nodes.objects.get_child([f"{idx}:Press"])
    sim.nodes[name] = await press.add_variable(
        ua.NodeId(f"Press.{name}", idx), f"{idx}:{name}", ua.Variant(0.0, ua.VariantType.Double)
    )


async def test_a_device_stamping_20_days_ahead_is_put_on_the_local_clock(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port())
    for name in ("Future", "Close"):
        await add_node(sim, name)
    path, _ = write_config(
        tmp_path,
        f"""devices:
  press:
    driver: opcua
    url: {sim.url}
    security: none
    mode: subscribe
    publishing_interval_ms: 50
    sampling_interval_ms: 50
    tags:
      future: {{node: "{NSU}s=Press.Future"}}
      close: {{node: "{NSU}s=Press.Close"}}
      running: {{node: "{NSU}s=Press.Running"}}
machines:
  m:
    ideal_cycle_time_s: 1
    oee_interval_s: 1
    state: {{running: press.running}}
""",
    )
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(stamp_ahead(sim, "Future", timedelta(days=20), stop)),
        asyncio.create_task(stamp_ahead(sim, "Close", timedelta(seconds=1), stop)),
    ]
    try:
        async with running(path) as agent:
            await asyncio.sleep(3.0)
            await agent.outbox.flush()
            records = await agent.outbox.read(0, 100_000)
            now = time.time_ns()
            metric = getattr(agent.metrics, "timestamps_replaced", None)
            replaced = metric.labels("press")._value.get() if metric else 0
            engine_clock = agent.engine.clock_ns
    finally:
        stop.set()
        await asyncio.gather(*writers)
        await sim.stop()
    assert engine_clock is not None and engine_clock <= now
    values = [r for r in records if r.kind == "values"]
    # Values the writer stamped (the node's initial 0.0 carries the time it was made).
    futures = [stamp(r, "future") for r in values if (r.decoded()["values"].get("future") or 0) > 0]
    closes = [stamp(r, "close") for r in values if "close" in r.decoded()["values"]]
    # Each written value but the first (read in full when the subscription starts) came by
    # subscription with the device's stamp, and was put on the local clock.
    assert len(futures) >= 10 and replaced >= len(futures) - 1
    assert all(ts <= now for ts in futures)  # receive time, not 20 days ahead
    # Within the skew: the device's own stamp is kept (a second ahead of its arrival).
    assert any(ts > now - 2 * S for ts in closes)
    oee = [r for r in records if r.kind == "oee"]
    assert all(r.ts_ns <= now for r in oee) and len(oee) < 20  # no made-up hours
