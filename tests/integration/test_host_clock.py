"""The host's wall clock steps while the agent runs: polls, compute and the event loop go on.

The wall clock is shifted inside this process only, for everything in the agent that reads it
(compute's clock and apscheduler, which times polls by the wall clock), while the monotonic clock
runs on as the kernel keeps it: exactly what a step of the system clock looks like to a process.
The device is real (the numbered simulator over Modbus TCP), so polls are counted where they land.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import apscheduler.schedulers.base
import pytest

import edge_agent.agent
from drivers.sim.server import serve_tcp
from edge_agent.agent import Agent
from edge_agent.clock import ComputeClock
from edge_agent.config import load_config
from tests.integration.test_pipeline import write_config
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import free_port

S = 1_000_000_000


class Shift:
    seconds = 0.0


class ShiftedDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> ShiftedDatetime:  # type: ignore[override]
        return super().now(tz) + timedelta(seconds=Shift.seconds)


@pytest.fixture
def shifted_wall(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Shift]]:
    Shift.seconds = 0.0
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", ShiftedDatetime)
    monkeypatch.setattr(edge_agent.agent, "datetime", ShiftedDatetime)
    yield Shift
    Shift.seconds = 0.0


async def polls_in(device: NumberedDevice, seconds: float) -> int:
    before = device.served
    await asyncio.sleep(seconds)
    return device.served - before


async def start(tmp_path: Path) -> tuple[Agent, NumberedDevice, asyncio.Event, asyncio.Task[None]]:
    device = NumberedDevice()
    port = free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    path, _ = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", port, poll_interval_s=0.1)
        + "machines:\n  m:\n    ideal_cycle_time_s: 1\n    state: {running: counter.n > 0}\n",
    )
    agent = Agent(load_config(path))
    agent.ingest.clock = ComputeClock(wall=lambda: time.time_ns() + int(Shift.seconds * S))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    task.add_done_callback(lambda _t: asyncio.ensure_future(server.shutdown()))
    return agent, device, stop, task


async def test_a_step_back_does_not_stop_polling_or_compute(
    tmp_path: Path, shifted_wall: type[Shift]
) -> None:
    agent, device, stop, task = await start(tmp_path)
    try:
        assert await polls_in(device, 1.5) >= 10
        clock_before = agent.engine.clock_ns
        shifted_wall.seconds = -60.0  # NTP steps a clock that ran a minute fast
        await asyncio.sleep(6.0)  # the clock watch looks every 5 s
        assert await polls_in(device, 2.0) >= 15  # without the watch: none for a minute
        seen = []
        for _ in range(10):
            seen.append(agent.engine.clock_ns)
            await asyncio.sleep(0.2)
        assert clock_before is not None and seen[0] is not None and seen[0] >= clock_before
        assert all(b is not None and a is not None and b >= a for a, b in itertools.pairwise(seen))
        assert seen[-1] > seen[0]  # compute's time runs on: never frozen, never back
        assert agent.ingest.clock.ahead_ns > 0  # while the local clock catches up
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_a_month_forward_keeps_the_loop_free_and_closes_the_hour_once(
    tmp_path: Path, shifted_wall: type[Shift]
) -> None:
    agent, device, stop, task = await start(tmp_path)
    try:
        assert await polls_in(device, 1.5) >= 10
        appended = agent.outbox.appended
        shifted_wall.seconds = 30 * 86400.0
        worst_lag = 0.0
        for _ in range(60):  # 3 s of 50 ms sleeps: how late does the loop wake?
            started = time.monotonic()
            await asyncio.sleep(0.05)
            worst_lag = max(worst_lag, time.monotonic() - started - 0.05)
        assert worst_lag < 0.5, worst_lag
        assert await polls_in(device, 1.0) >= 7
        await agent.outbox.flush()
        records = await agent.outbox.read(0, 100_000)
        finals = [r.decoded() for r in records if r.kind == "oee" and r.decoded()["final"]]
        assert len(finals) == 1 and finals[0]["unknown_time_s"] > 3000  # the rest of the hour
        # Values of 30 polls a few records each; no running figure per minute of the month.
        assert agent.outbox.appended - appended < 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
