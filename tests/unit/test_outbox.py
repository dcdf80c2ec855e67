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


async def test_limits_drop_the_oldest_and_count_exactly_what_each_sink_lost(tmp_path: Path) -> None:
    import time

    lost: dict[str, int] = {}
    box = Outbox(
        tmp_path / "o.db",
        max_bytes=256 * 1024,
        max_age_s=3600,
        on_drop=lambda sink, n: lost.__setitem__(sink, lost.get(sink, 0) + n),
    )
    await box.open()
    now = time.time_ns()
    assert await box.cursor("mqtt") == 0 and await box.cursor("influxdb") == 0
    box.extend(
        Record("values", "plc", now, {"device": "plc", "pad": "x" * 400, "n": i})
        for i in range(3000)
    )
    await box.flush()
    await box.ack("influxdb", 2000)  # influxdb is well ahead, mqtt delivered nothing
    dropped = await box.enforce_limits()
    assert dropped > 0 and box._used_bytes() <= 256 * 1024 + 64 * 1024  # freed pages are reused
    first_left = (await box.read(0, 1))[0].seq
    assert first_left == dropped + 1  # the oldest went, nothing else
    assert lost["mqtt"] == dropped  # everything it misses, and only that
    assert lost.get("influxdb", 0) == max(0, dropped - 2000)
    assert await box.cursor("mqtt") == dropped  # it carries on with what is left
    await box.close()


async def test_age_limit_trims_only_the_old_head(tmp_path: Path) -> None:
    import time

    box = Outbox(tmp_path / "age.db", max_age_s=3600)
    await box.open()
    now, hours = time.time_ns(), 3600 * 10**9
    for ts in (now - 3 * hours, now - 2 * hours, now, now - 5 * hours, now):  # one late, old record
        box.append(Record("values", "plc", ts, {"device": "plc"}))
    await box.flush()
    assert await box.enforce_limits() == 2  # the two old ones at the head; the late one waits
    assert [r.seq for r in await box.read(0, 10)] == [3, 4, 5]
    await box.close()
