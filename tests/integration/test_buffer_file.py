"""The agent's own buffer file: damaged at start, or owned by another agent (real processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_pipeline import running, write_config
from tests.support.servers import free_port


def config(tmp_path: Path) -> Path:
    """A device nobody serves: the agent runs, the device is simply down."""
    path, _ = write_config(
        tmp_path,
        f"""devices:
  plc:
    driver: modbus
    host: 127.0.0.1
    port: {free_port()}
    timeout_s: 0.5
    tags:
      x: {{table: holding, address: 0}}
""",
    )
    return path


async def test_a_damaged_buffer_is_moved_aside_and_raises_an_alarm_to_acknowledge(
    tmp_path: Path,
) -> None:
    path = config(tmp_path)
    (tmp_path / "outbox.db").write_bytes(b"this is not a database" * 400)
    async with running(path) as agent:
        deadline = time.monotonic() + 10
        while "buffer_corrupt" not in agent.engine.alarms.alarms:  # the agent has started
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        [moved] = list(tmp_path.glob("outbox.db.corrupt-*"))
        assert moved.read_bytes().startswith(b"this is not a database")
        alarm = agent.engine.alarms.alarms["buffer_corrupt"]
        assert alarm.state == "unack_rtn" and str(moved) in (alarm.detail or "")
        reply = agent.ingest.command(
            {"command": "ack", "id": "buffer_corrupt", "user": "wang.fang"}
        )
        assert reply["ok"] and reply["state"] == "normal"
        await agent.outbox.flush()
        published = [r.decoded() for r in await agent.outbox.read(0, 1000) if r.kind == "alarm"]
        assert [(a["id"], a["state"]) for a in published] == [
            ("buffer_corrupt", "unack_active"),
            ("buffer_corrupt", "unack_rtn"),
            ("buffer_corrupt", "normal"),
        ]


def test_a_second_agent_on_the_same_buffer_stops_at_once(tmp_path: Path) -> None:
    path = config(tmp_path)
    command = [sys.executable, "-m", "edge_agent", "run", str(path)]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        lock = tmp_path / "outbox.db.lock"
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        started = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=30)
        took_s = time.monotonic() - started
        assert second.returncode == 1, second.stderr
        assert (
            f"error: the buffer {tmp_path / 'outbox.db'} is in use by another edge-agent "
            f"(PID {first.pid})" in second.stderr
        )
        assert "Traceback" not in second.stderr
        assert took_s < 10  # the interpreter and imports; it never connects to anything
        assert first.poll() is None  # the first one is not disturbed
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert first.returncode == 0 and os.path.exists(path)


async def test_the_lock_is_free_again_after_a_stop(tmp_path: Path) -> None:
    path = config(tmp_path)
    async with running(path):
        await asyncio.sleep(0.2)
    async with running(path) as again:
        assert again.outbox.moved_aside is None
