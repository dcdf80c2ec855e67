"""The installation's instance id: made once, kept in the buffer file, one per file."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox


async def instance_of(path: Path) -> str:
    box = Outbox(path)
    await box.open()
    try:
        return await box.instance_id()
    finally:
        await box.close()


async def test_the_instance_id_outlives_restarts_and_is_kept_privately(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = await instance_of(path)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert await instance_of(path) == first  # asked again after a restart: the same
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT key, value FROM meta").fetchall() == [("instance", first)]
    finally:
        db.close()


async def test_it_is_kept_at_once_so_a_kill_right_after_cannot_lose_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    await box.open()
    made = await box.instance_id()
    # Read by another connection while the agent still holds the file (no clean close yet).
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone() == (made,)
    finally:
        db.close()
    assert await box.instance_id() == made
    await box.close()


async def test_two_buffers_are_two_installations(tmp_path: Path) -> None:
    (tmp_path / "pc1").mkdir()
    (tmp_path / "pc2").mkdir()
    assert await instance_of(tmp_path / "pc1" / "outbox.db") != await instance_of(
        tmp_path / "pc2" / "outbox.db"
    )


async def test_other_values_kept_beside_it_from_any_thread(tmp_path: Path) -> None:
    """The meta table also keeps what a sink must not lose (a Sparkplug bdSeq), written from
    paho's thread before a CONNECT: kept at once, read back after a restart."""
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    await box.open()
    assert await box.meta("sparkplug:uns:bdSeq") is None
    await asyncio.to_thread(box.put_meta_now, "sparkplug:uns:bdSeq", "7")
    await asyncio.to_thread(box.put_meta_now, "sparkplug:uns:bdSeq", "8")
    made = await box.instance_id()
    await box.close()
    with pytest.raises(RuntimeError):  # closed: the sink logs it and connects all the same
        box.put_meta_now("sparkplug:uns:bdSeq", "9")
    box = Outbox(path)
    await box.open()
    try:
        assert await box.meta("sparkplug:uns:bdSeq") == "8"
        assert await box.instance_id() == made
    finally:
        await box.close()
