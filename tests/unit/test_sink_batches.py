"""How records reach a sink from a real buffer file: at once, or gathered for `flush_interval_s`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from edge_agent.delivery import SinkRunner
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import Record, StoredRecord


class Recorder:
    """A sink that takes everything and remembers each delivery (the transport is not the point)."""

    name = "recorder"
    connected = True
    endpoint = "memory"

    def __init__(self) -> None:
        self.deliveries: list[tuple[float, list[int]]] = []

    async def start(self) -> None:
        return None

    async def deliver(self, records: list[StoredRecord]) -> None:
        self.deliveries.append((time.monotonic(), [r.seq for r in records]))

    async def close(self) -> None:
        return None


async def deliveries(tmp_path: Path, flush_interval_s: float) -> list[tuple[float, list[int]]]:
    outbox = Outbox(tmp_path / f"outbox-{flush_interval_s}.db")
    await outbox.open()
    sink = Recorder()
    runner = SinkRunner(sink, outbox, Metrics(), 500, flush_interval_s)
    task = asyncio.create_task(runner.run())
    try:
        for n in range(10):  # ten polls 50 ms apart, as ten devices polled each second
            outbox.append(Record("values", "d", time.time_ns(), {"n": n}))
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 5
        while sum(len(seqs) for _, seqs in sink.deliveries) < 10:
            assert time.monotonic() < deadline, sink.deliveries
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.close()
    return sink.deliveries


async def test_without_a_flush_interval_each_record_goes_at_once(tmp_path: Path) -> None:
    got = await deliveries(tmp_path, 0.0)
    assert len(got) >= 8  # one delivery per poll (two may meet in one commit)
    assert [seq for _, seqs in got for seq in seqs] == list(range(1, 11))


async def test_a_flush_interval_gathers_polls_into_one_delivery(tmp_path: Path) -> None:
    got = await deliveries(tmp_path, 1.0)
    assert [seqs for _, seqs in got] == [list(range(1, 11))]  # in order, all in one request


async def test_a_stopping_agent_does_not_wait_for_a_batch_to_gather(tmp_path: Path) -> None:
    """After `hurry` (the agent's clean stop) a sink gathering for a minute delivers at once:
    the stop's few seconds for delivery are not spent waiting for records that will not come."""
    outbox = Outbox(tmp_path / "outbox.db")
    await outbox.open()
    sink = Recorder()
    task = asyncio.create_task(SinkRunner(sink, outbox, Metrics(), 500, 60.0).run())
    try:
        outbox.append(Record("values", "d", time.time_ns(), {"n": 1}))
        assert await outbox.flush()
        for _ in range(20):  # the runner reads the record and starts to gather
            await asyncio.sleep(0)
        assert sink.deliveries == []
        await outbox.hurry()
        await asyncio.wait_for(_delivered(sink, 1), 30)  # not the 60 s gather
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.close()
    assert [seqs for _, seqs in sink.deliveries] == [[1]]


async def _delivered(sink: Recorder, count: int) -> None:
    while sum(len(seqs) for _, seqs in sink.deliveries) < count:
        await asyncio.sleep(0.01)
