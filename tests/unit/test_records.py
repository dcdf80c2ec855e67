"""The record kinds: every sink maps every kind, the bodies are as documented, the buffer's stored
kinds stay readable, and a kind from a newer version is counted and logged, never lost silently."""

from __future__ import annotations

import asyncio
import heapq
import logging
import sqlite3
import time
import typing
from pathlib import Path

import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.agent import Agent
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.delivery import SinkRunner
from edge_agent.demo_history import _presses
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import BODIES, Kind, NotSent, Record, StoredRecord, missing_kinds
from edge_agent.samples import SampleBatch
from edge_agent.sinks import SINK_TYPES
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"
NS = 1_000_000_000


@pytest.mark.parametrize("sink", sorted(SINK_TYPES))
def test_every_sink_maps_every_kind(sink: str) -> None:
    """Every registered sink type says how it sends each kind, or why it does not."""
    table = SINK_TYPES[sink].load().KINDS
    assert missing_kinds(table) == [], f"{sink} does not say how it sends these kinds"
    for kind, route in table.items():
        assert isinstance(kind, Kind)
        assert callable(route) or (isinstance(route, NotSent) and len(route.reason) > 20)


def test_stored_kinds_never_change() -> None:
    """Buffers on plant PCs hold these texts: renaming one would strand their records."""
    assert [k.value for k in Kind] == [
        "values",
        "link",
        "state",
        "oee",
        "downtime",
        "alarm",
        "condition",
        "alarm_flood",
        "command_reply",
    ]
    assert set(BODIES) == set(Kind)


async def test_a_buffer_of_the_previous_version_reads_back_as_kinds(tmp_path: Path) -> None:
    """Rows written as plain text (as every earlier version wrote them) come back equal to the
    kinds, and records appended now are stored as the same plain text."""
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    await outbox.open()
    outbox.append(Record(Kind.STATE, "m1", 1, {"machine": "m1"}))
    await outbox.flush()
    await outbox.close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO records (ts_ns, kind, key, body) VALUES (2, 'oee', 'm1', '{}'), "
            "(3, 'command_reply', 'alarms', '{\"ok\":true}')"
        )
        stored = db.execute("SELECT kind, typeof(kind) FROM records ORDER BY seq").fetchall()
    assert stored == [("state", "text"), ("oee", "text"), ("command_reply", "text")]
    outbox = Outbox(path)
    await outbox.open()
    try:
        kinds = [r.kind for r in await outbox.read(0, 10)]
    finally:
        await outbox.close()
    assert kinds == [Kind.STATE, Kind.OEE, Kind.COMMAND_REPLY]


def _keys(body_type: type) -> tuple[set[str], set[str]]:
    required: frozenset[str] = body_type.__required_keys__  # type: ignore[attr-defined]
    optional: frozenset[str] = body_type.__optional_keys__  # type: ignore[attr-defined]
    return set(required), set(optional)


def _check_body(record: Record | StoredRecord) -> None:
    kind = Kind(record.kind)
    body = record.body if isinstance(record, Record) else record.decoded()
    required, optional = _keys(BODIES[kind])
    if kind != Kind.COMMAND_REPLY:
        required -= {"simulated"}
    assert required <= set(body), (kind, required - set(body))
    assert set(body) <= required | optional, (kind, set(body) - required - optional)
    hints = typing.get_type_hints(BODIES[kind])
    for key, value in body.items():
        allowed = typing.get_args(hints[key])
        literal = [a for a in allowed if isinstance(a, str)]
        if literal and value is not None:  # a Literal (or Literal | None): one of its texts
            assert value in literal, (kind, key, value)


def test_compute_writes_the_bodies_records_py_documents() -> None:
    """Six hours of the demo's presses through the compute core: every record it makes (states,
    running and closed OEE windows, stops, alarms, conditions) has the keys its TypedDict says."""
    config = load_config(DEMO)
    engine = ComputeEngine(config)
    start_ns = 1_795_000_000 * NS
    end_ns = start_ns + 6 * 3600 * NS
    presses = _presses(config, start_ns, end_ns)
    queue = [(press.model.t, name) for name, press in presses.items()]
    heapq.heapify(queue)
    records: list[Record] = []
    while queue:
        t_s, name = heapq.heappop(queue)
        press = presses[name]
        records += engine.ingest(SampleBatch(name, round(t_s * NS), press.read(press.model), {}))
        if (next_s := press.next_sample_s(end_ns / NS)) is not None:
            heapq.heappush(queue, (next_s, name))
    records += engine.advance(end_ns)
    made = {r.kind for r in records}
    assert {Kind.STATE, Kind.OEE, Kind.DOWNTIME, Kind.ALARM, Kind.CONDITION} <= made
    for record in records:
        assert isinstance(record.kind, Kind)
        _check_body(record)


async def test_polling_writes_the_bodies_records_py_documents(tmp_path: Path) -> None:
    """Values and link records as a running agent buffers them, from a simulator over Modbus TCP
    and a device that does not answer."""
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"agent:\n  id: records\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  history_path: {tmp_path / 'history.db'}\n  http: {{enabled: false}}\n"
        "devices:\n"
        + device_yaml("plc", port)
        + device_yaml("gone", free_port(), poll_interval_s=0.5)
    )
    agent = Agent(load_config(path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        deadline = time.monotonic() + 10
        while agent.outbox.last_seq < 6:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await agent.outbox.flush()
        stored = await agent.outbox.read(0, 1000)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await server.shutdown()
    kinds = {r.kind for r in stored}
    assert {Kind.VALUES, Kind.LINK} <= kinds
    assert {r.decoded()["state"] for r in stored if r.kind == Kind.LINK} == {"up", "down"}
    for record in stored:
        _check_body(record)


class _Recorder:
    """A sink that takes everything and keeps what it was given."""

    connected = True
    endpoint = "memory"

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[StoredRecord] = []

    async def start(self) -> None:
        return None

    async def deliver(self, records: list[StoredRecord]) -> None:
        self.got += records

    async def close(self) -> None:
        return None


async def test_a_kind_from_a_newer_version_is_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    await outbox.open()
    outbox.append(Record(Kind.STATE, "m1", 1, {"machine": "m1"}))
    await outbox.flush()
    await outbox.close()
    with sqlite3.connect(path) as db:  # as a newer version would have written them
        db.executemany(
            "INSERT INTO records (ts_ns, kind, key, body) VALUES (?, ?, 'm1', '{}')",
            [(2, "energy"), (3, "energy"), (4, "spc_chart")],
        )
    outbox = Outbox(path)
    await outbox.open()
    outbox.append(Record(Kind.STATE, "m1", 5, {"machine": "m1"}))
    await outbox.flush()
    metrics = Metrics()
    sink = _Recorder("plant")
    runner = SinkRunner(sink, outbox, metrics, 2)  # batches of two: parts with no known record
    task = asyncio.create_task(runner.run())
    caplog.set_level(logging.WARNING, "edge_agent.delivery")
    try:
        deadline = time.monotonic() + 5
        while runner.cursor < 5:
            assert time.monotonic() < deadline, runner.cursor
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.close()
    assert [r.seq for r in sink.got] == [1, 5]
    count = metrics.registry.get_sample_value(
        "edge_sink_unknown_kind_records_total", {"sink": "plant"}
    )
    assert count == 3
    delivered = metrics.registry.get_sample_value(
        "edge_sink_delivered_records_total", {"sink": "plant"}
    )
    assert delivered == 2
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # once per kind
    assert "'energy' (seq 2" in lines[0] and "'spc_chart' (seq 4" in lines[1]
