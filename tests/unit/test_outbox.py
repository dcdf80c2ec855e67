"""The outbox on a real SQLite file: order, per-sink cursors, deletion, resume after reopening."""

from __future__ import annotations

from pathlib import Path

from edge_agent.outbox import Outbox, Record


def rec(i: int) -> Record:
    return Record("values", "plc", i, {"device": "plc", "values": {"n": i, "name": "压力机"}})


async def test_order_cursors_deletion_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    await box.open()
    assert await box.cursor("mqtt") == 0 and await box.cursor("influxdb") == 0
    box.extend(rec(i) for i in range(10))
    await box.flush()
    got = await box.read(0, 4)
    assert [r.seq for r in got] == [1, 2, 3, 4]
    assert got[0].decoded()["values"] == {"n": 0, "name": "压力机"}
    await box.ack("mqtt", 4)
    assert (await box.stats())["records"] == 10  # influxdb has not passed them: kept
    await box.ack("influxdb", 6)
    stats = await box.stats()
    assert stats["records"] == 6 and stats["cursor:mqtt"] == 4 and stats["cursor:influxdb"] == 6
    await box.ack("mqtt", 3)  # a cursor never moves back
    assert (await box.stats())["cursor:mqtt"] == 4
    box.append(rec(10))
    await box.close()  # flushes what is pending

    again = Outbox(path)
    await again.open()
    assert await again.cursor("mqtt") == 4
    assert [r.seq for r in await again.read(4, 100)] == [5, 6, 7, 8, 9, 10, 11]
    assert again.last_seq == 11
    # A sink added later starts at the oldest record still kept, not at the end.
    assert await again.cursor("new-sink") == 4
    await again.close()


async def test_wait_beyond_wakes_on_commit(tmp_path: Path) -> None:
    import asyncio

    box = Outbox(tmp_path / "o.db", flush_interval_s=0.02)
    await box.open()
    waiter = asyncio.create_task(box.wait_beyond(0, 5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    box.append(rec(1))
    await asyncio.wait_for(waiter, 1.0)
    assert box.last_seq == 1
    await box.close()
