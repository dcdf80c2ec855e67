"""The InfluxDB sink with `api: v1` against Debian's InfluxDB 1.x: simulator → agent → /write.

Exact values and the machine's state arrive, read back through InfluxQL; a database that does
not exist yet is a server problem, retried until someone creates it, and then every record
buffered meanwhile arrives (404 is retried; a 400 type conflict is set aside, see
test_influxdb1_server).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from tests.integration.test_pipeline import EXPECTED, running, write_config
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.servers import InfluxDB1, free_port


def sink_yaml(server: InfluxDB1, database: str) -> str:
    return (
        "sinks:\n  influxdb:\n    api: v1\n"
        f"    url: {server.url}\n    database: {database}\n"
        f"    username: {server.username}\n    password: ${{EA_TEST_INFLUX_PASSWORD}}\n"
        "    flush_interval_s: 0.2\n"
    )


async def wait_for_points(server: InfluxDB1, q: str, db: str, count: int) -> list[list[object]]:
    deadline = time.monotonic() + 20
    rows: list[list[object]] = []
    while time.monotonic() < deadline:
        try:
            series = await asyncio.to_thread(server.query, q, db=db)
        except RuntimeError:  # the database is not there yet
            series = []
        rows = [row for s in series for row in s["values"]]  # type: ignore[attr-defined]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.3)
    return rows


async def test_exact_values_and_states_reach_influxdb_1x(
    influxdb1: InfluxDB1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EA_TEST_INFLUX_PASSWORD", influxdb1.password)
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        "devices:\n" + device_yaml("plc", port) + "machines:\n  m1:\n    ideal_cycle_time_s: 1\n"
        "    state: {running: 'plc.coil0 and plc.bit2'}\n" + sink_yaml(influxdb1, "plant"),
    )
    numeric = {k: float(v) for k, v in EXPECTED.items() if not isinstance(v, str)}
    try:
        async with running(path):
            rows = await wait_for_points(
                influxdb1,
                f'SELECT "value", "tag" FROM "values" WHERE "agent" = \'{agent_id}\'',
                "plant",
                3 * len(numeric),
            )
            states = await wait_for_points(
                influxdb1,
                f'SELECT "state_code" FROM "machine_state" WHERE "agent" = \'{agent_id}\'',
                "plant",
                1,
            )
    finally:
        await server.shutdown()
    by_tag: dict[str, set[float]] = {}
    for _ts, value, tag in rows:
        by_tag.setdefault(str(tag), set()).add(float(value))  # type: ignore[arg-type]
    # Floats go over line protocol as repr(): they come back exactly.
    assert by_tag == {tag: {value} for tag, value in numeric.items()}
    assert states[0][1] == 1  # running


async def test_a_missing_database_is_retried_and_nothing_is_lost(
    influxdb1: InfluxDB1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EA_TEST_INFLUX_PASSWORD", influxdb1.password)
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    database = f"late_{free_port()}"
    path, agent_id = write_config(
        tmp_path,
        "devices:\n"
        + device_yaml("plc", port, poll_interval_s=0.2)
        + sink_yaml(influxdb1, database),
    )
    try:
        async with running(path) as agent:
            runner = agent.sinks[0]
            deadline = time.monotonic() + 15
            while runner.error is None or "404" not in runner.error:
                assert time.monotonic() < deadline, runner.error
                await asyncio.sleep(0.1)
            assert "CREATE DATABASE" in runner.error  # what to do, in the error shown
            await asyncio.sleep(2.0)  # polls go on into the buffer meanwhile
            created_ms = time.time() * 1000
            await asyncio.to_thread(influxdb1.query, f"CREATE DATABASE {database}")
            deadline = time.monotonic() + 60
            while runner.pending > 0 or runner.error is not None:
                assert time.monotonic() < deadline, (runner.pending, runner.error)
                await asyncio.sleep(0.2)
            polls = int(agent.metrics.polls.labels("plc")._value.get())
            stored = await wait_for_points(
                influxdb1,
                f'SELECT "value" FROM "values" WHERE "agent" = \'{agent_id}\' '
                "AND \"tag\" = 'u16_raw'",
                database,
                polls,
            )
    finally:
        await server.shutdown()
    # Every poll, those buffered while the database was missing too: one point each.
    stamps = [ts for ts, _ in stored]
    assert len(stamps) == len(set(stamps)) >= polls > 10
    assert min(stamps) < created_ms - 1000  # type: ignore[operator]
