"""The outbox on a real SQLite file: order, per-sink cursors, deletion, resume after reopening."""

from __future__ import annotations

from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.records import Record


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


async def test_limits_drop_the_oldest_and_each_sink_sees_exactly_its_gap(tmp_path: Path) -> None:
    import time

    box = Outbox(tmp_path / "o.db", max_bytes=256 * 1024, max_age_s=3600)
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
    assert dropped > 2000 and box._used_bytes() <= 256 * 1024 + 64 * 1024  # freed pages reused
    assert box.dropping and box.dropped == dropped
    # Cursors stay: each sink finds its gap on the next read, the number of records it lost.
    mqtt_next = (await box.read(await box.cursor("mqtt"), 1))[0].seq
    influx_next = (await box.read(await box.cursor("influxdb"), 1))[0].seq
    assert mqtt_next - 0 - 1 == dropped  # everything mqtt misses, and only that
    assert influx_next - 2000 - 1 == dropped - 2000
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


async def test_stop_polling_keeps_every_record_and_says_full_until_there_is_room(
    tmp_path: Path,
) -> None:
    import time

    box = Outbox(tmp_path / "o.db", max_bytes=256 * 1024, full_policy="stop_polling")
    await box.open()
    assert await box.cursor("mqtt") == 0
    now = time.time_ns()
    box.extend(Record("values", "plc", now, {"pad": "x" * 400, "n": i}) for i in range(3000))
    await box.flush()
    assert await box.enforce_limits() == 0  # nothing dropped: the oldest records are kept
    assert box.full and (await box.stats())["records"] == 3000
    await box.ack("mqtt", 500)  # a little room, not below 90 % of the limit: still full
    await box.enforce_limits()
    assert box.full
    await box.ack("mqtt", 2900)
    await box.enforce_limits()
    assert not box.full and box.dropped == 0
    await box.close()


async def test_quarantine_keeps_the_refused_record_and_moves_the_cursor_past_it(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "q.db")
    await box.open()
    assert await box.cursor("influxdb") == 0
    box.extend(rec(i) for i in range(5))
    await box.flush()
    refused = (await box.read(2, 1))[0]
    await box.ack("influxdb", 2)
    await box.quarantine("influxdb", refused, "InfluxDB answered 422: field type conflict")
    await box.quarantine("influxdb", refused, "again")  # after a crash: kept once
    assert await box.cursor("influxdb") == 3
    kept = await box.quarantined()
    assert len(kept) == 1
    assert kept[0]["seq"] == 3 and kept[0]["body"] == refused.body
    assert kept[0]["error"] == "InfluxDB answered 422: field type conflict"
    assert (await box.stats())["quarantined"] == 1
    await box.close()


async def test_oldest_pending_age_counts_from_commit_not_from_the_record_time(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "age.db")
    await box.open()
    assert await box.cursor("mqtt") == 0
    # An OEE window is stamped with its start, hours ago; it was committed just now.
    box.append(Record("oee", "m1", 1_000_000_000, {"window": "shift"}))
    await box.flush()
    assert 0.0 <= box.oldest_pending_age_s(0) < 5.0
    assert box.oldest_pending_age_s(box.last_seq) == 0.0
    await box.close()


async def test_a_sink_no_longer_configured_stops_holding_records(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "r.db")
    await box.open()
    assert await box.cursor("mqtt") == 0 and await box.cursor("influxdb") == 0
    box.extend(rec(i) for i in range(10))
    await box.flush()
    assert await box.retire_cursors({"mqtt"}) == {"influxdb": 10}
    await box.ack("mqtt", 10)  # with influxdb gone, what mqtt delivered is deleted
    assert (await box.stats())["records"] == 0
    await box.close()


async def test_reads_of_the_newest_records_match_the_file(tmp_path: Path) -> None:
    """What a sink that keeps up reads from memory is what the file holds, gaps included."""
    box = Outbox(tmp_path / "outbox.db")
    await box.open()
    box.extend(rec(i) for i in range(5))
    await box.flush()
    box.append(Record("values", "plc", 5, {"bad": float("nan")}))  # let go: a gap in seq
    box.extend(rec(i) for i in range(6, 9))
    await box.flush()
    for after, limit in ((0, 100), (2, 2), (5, 3), (8, 10)):
        from_file = await box._run(box._read, after, limit)
        assert await box.read(after, limit) == from_file, (after, limit)
    await box.close()


async def test_records_dropped_by_the_limits_are_not_read_from_memory(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_age_s=60)
    await box.open()
    box.extend(rec(i) for i in range(5))  # time stamps of 1970: far older than a minute
    await box.flush()
    assert [r.seq for r in await box.read(0, 10)] == [1, 2, 3, 4, 5]
    assert await box.enforce_limits() == 5
    assert await box.read(0, 10) == []  # the sink finds the gap and counts it as lost
    await box.close()
