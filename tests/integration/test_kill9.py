"""SIGKILL at random moments under load: the buffer opens cleanly, no committed record is lost.

The agent runs as its own process (`python -m edge_agent run`), polling a numbered device at
50 polls/s (61 values each) into a real VictoriaMetrics. After each kill the test opens the buffer
file itself, checks SQLite's integrity and notes every number committed there. Those must all
reach VictoriaMetrics in the end; what the agent had read but not yet committed (its last
50 ms at most) may be lost, and a batch sent but not yet acknowledged may be sent twice, which
InfluxDB absorbs because a point is identified by its series and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import defaultdict
from pathlib import Path

from drivers.sim.server import serve_tcp
from tests.integration.test_pipeline import write_config
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import VictoriaMetrics, free_port

KILLS = 20
POLL_S = 0.02


def committed_numbers(db_path: Path) -> tuple[str, set[int]]:
    """SQLite's verdict on the file, and the numbers in the records it holds."""
    db = sqlite3.connect(db_path)
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = db.execute("SELECT body FROM records WHERE kind = 'values'").fetchall()
    finally:
        db.close()
    numbers = {json.loads(body)["values"]["n"] for (body,) in rows}
    return verdict, {n for n in numbers if n is not None}


async def start_agent(config: Path, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent",
        "run",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def wait_polling(device: NumberedDevice, polls: int, timeout_s: float = 20) -> None:
    start, deadline = device.served, time.monotonic() + timeout_s
    while device.served < start + polls:
        assert time.monotonic() < deadline, "the agent did not start polling"
        await asyncio.sleep(0.01)


async def test_twenty_kills_lose_no_committed_record(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    device = NumberedDevice()
    port = free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    pad = "".join(
        f"      p{i}: {{table: holding, address: {2 + i % 6}, type: uint16}}\n" for i in range(60)
    )
    victoria = VictoriaMetrics(free_port(), tmp_path)
    config, agent_id = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", port, poll_interval_s=POLL_S)
        + pad
        + f"sinks:\n  influxdb: {{url: '{victoria.url}', bucket: b, org: o}}\n",
    )
    db_path, log = tmp_path / "outbox.db", tmp_path / "agent.log"
    committed: set[int] = set()
    # The database is down for the first ten kills, so the buffer holds many committed records
    # when the agent dies; for the last ten it is up, and kills land in the middle of deliveries.
    try:
        for kill in range(KILLS):
            if kill == KILLS // 2:
                victoria.start()
            agent = await start_agent(config, log)
            await wait_polling(device, 3)
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            agent.send_signal(signal.SIGKILL)
            assert await agent.wait() == -signal.SIGKILL, f"kill {kill}: the agent had exited"
            verdict, numbers = committed_numbers(db_path)
            assert verdict == "ok", f"kill {kill} (seed {seed}): {verdict}"
            committed |= numbers
        # A last, clean run delivers what the killed ones left in the buffer.
        agent = await start_agent(config, log)
        await wait_polling(device, 3)
        stored = await _stored_when(victoria, agent_id, committed)
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 15) == 0
    finally:
        await server.shutdown()
        victoria.stop()

    text = log.read_text()
    assert "Traceback" not in text and "cannot commit" not in text and "malformed" not in text
    missing = committed - set(stored)
    assert not missing, f"seed {seed}: committed but never delivered: {sorted(missing)[:20]}"
    # Sent twice after a kill is allowed only as the same point: same number, same time stamp.
    assert all(len(times) == 1 for times in stored.values()), "a number stored at two times"
    # Only polls read in the last instants before each kill may be missing entirely.
    lost = set(range(1, max(stored) + 1)) - set(stored)
    assert len(committed) > 50  # the check above was not an empty one (typically 170 to 250)
    assert len(lost) <= KILLS * 10, (seed, len(lost))


async def _stored_when(
    victoria: VictoriaMetrics, agent_id: str, wanted: set[int], timeout_s: float = 60
) -> dict[int, set[int]]:
    """Number -> the time stamps it is stored with, once every wanted number is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        series = await asyncio.to_thread(
            victoria.export, f'{{__name__="values_value",agent="{agent_id}",tag="n"}}'
        )
        stored: dict[int, set[int]] = defaultdict(set)
        for s in series:
            for value, ts in zip(s["values"], s["timestamps"], strict=True):  # type: ignore[call-overload]
                stored[int(value)].add(int(ts))
        if wanted <= set(stored) or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.5)
