"""Delivery under faults, with real servers broken on purpose and a device that numbers its values.

The numbered device serves 1, 2, 3, ... one number per poll, so every check here is exact: which
numbers reached VictoriaMetrics (and how often), which reached MQTT and in what order, which are
missing and whether the agent counted each missing one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from drivers.sim.server import serve_tcp
from edge_agent.agent import Agent
from edge_agent.web.view_model import page_state
from tests.integration.test_pipeline import running, write_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import Mosquitto, Nginx, VictoriaMetrics, free_port

OUTAGE_S = 3.0  # the 60 s outages, shortened: the checks stay exact


def numbers_in(victoria: VictoriaMetrics, agent_id: str) -> list[int]:
    series = victoria.export(f'{{__name__="values_value",agent="{agent_id}",tag="n"}}')
    return sorted(int(v) for s in series for v in s["values"])  # type: ignore[attr-defined]


async def numbers_settled(victoria: VictoriaMetrics, agent_id: str, count: int) -> list[int]:
    """The numbers stored, once at least `count` are searchable (fresh points take ~1 s)."""
    deadline = time.monotonic() + 20
    while True:
        got = await asyncio.to_thread(numbers_in, victoria, agent_id)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.3)


async def drained(agent: Agent, timeout_s: float = 30.0) -> None:
    """Every sink has delivered what was read up to now (polls go on meanwhile: a sink that
    gathers batches is never at zero pending while a device is polled 20 times a second)."""
    deadline = time.monotonic() + timeout_s
    await agent.outbox.flush()
    target = agent.outbox.last_seq
    while any(r.cursor < target for r in agent.sinks):
        assert time.monotonic() < deadline, [(r.sink.name, r.pending) for r in agent.sinks]
        await asyncio.sleep(0.1)


def small_buffer_config(tmp_path: Path, port: int, victoria: VictoriaMetrics, policy: str) -> str:
    """A 0.1 MB buffer, and a device whose polls of 61 values fill it in about a second."""
    pad = "".join(
        f"      p{i}: {{table: holding, address: {2 + i % 6}, type: uint16}}\n" for i in range(60)
    )
    path, agent_id = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", port, poll_interval_s=0.02)
        + pad
        + f"sinks:\n  influxdb: {{url: '{victoria.url}', bucket: b, org: o}}\n",
    )
    limits = f"  buffer_max_mb: 0.1\n  buffer_full_policy: {policy}\n"
    path.write_text(path.read_text().replace("  http:", limits + "  http:", 1))
    return agent_id


def assert_each_once(numbers: list[int], last: int) -> None:
    """1..last-1 exactly once; `last` at least once (a frozen device repeats it until the stop)."""
    counts = Counter(numbers)
    assert set(counts) == set(range(1, last + 1)), sorted(set(range(1, last + 1)) - set(counts))
    assert [n for n, c in counts.items() if c > 1 and n != last] == []


async def test_broker_and_database_outages_lose_nothing(tmp_path: Path) -> None:
    broker = Mosquitto(free_port(), tmp_path, persistence=True)
    victoria = VictoriaMetrics(free_port(), tmp_path)
    broker.start()
    victoria.start()
    device = NumberedDevice()
    port = free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        "devices:\n" + numbered_yaml("counter", port, poll_interval_s=0.05) + "sinks:\n"
        f"  mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        f"  influxdb: {{url: '{victoria.url}', bucket: b, org: o}}\n",
    )
    # A persistent session: the broker keeps what arrives for this subscriber while it is away.
    topic = f"edge/{agent_id}/devices/counter"
    capture = MqttCapture(broker.port, topic, client_id="outages", clean_session=False)
    try:
        async with running(path) as agent:
            await asyncio.sleep(1.0)
            for down in ([broker], [victoria], [broker, victoria]):
                for server_ in down:
                    server_.stop()
                served = device.served
                await asyncio.sleep(OUTAGE_S)  # 60 polls while it is gone
                assert device.served - served >= 0.95 * OUTAGE_S / 0.05  # polling not slowed
                assert any(r.pending > 30 for r in agent.sinks)
                state = await page_state(agent)
                failing = {s["name"] for s in state["sinks"] if s["error"]}
                assert failing == {"mqtt" if s is broker else "influxdb" for s in down}
                for server_ in down:
                    server_.start()
                await asyncio.sleep(1.0)
            await drained(agent)
            device.frozen = True
            await asyncio.sleep(0.2)
            last = device.served
            assert agent.metrics.sink_errors.labels("influxdb")._value.get() > 0
        assert last > 200  # 10 s of polls at 0.05 s, outages included
        assert_each_once(await numbers_settled(victoria, agent_id, last), last)

        got = await asyncio.to_thread(
            capture.wait_for,
            lambda ms: {json.loads(m.payload)["values"]["n"] for m in ms} >= set(range(1, last)),
            20,
        )
        arrival = [json.loads(m.payload)["values"]["n"] for m in got]
        firsts = list(dict.fromkeys(arrival))
        assert firsts == sorted(firsts)  # at least once, in order: a resend only repeats
        assert set(firsts) == set(range(1, last + 1))
    finally:
        capture.close()
        await server.shutdown()
        broker.stop()
        victoria.stop()


async def test_a_refused_record_is_quarantined_and_the_queue_moves_on(tmp_path: Path) -> None:
    """nginx in front of VictoriaMetrics refuses bodies over 4 KiB with 413.

    The numbered device's record is one line (~70 bytes); the wide device reads 100 registers, a
    record of 101 lines (~7 KiB) that nginx refuses even alone. Batches mixing both are split
    until the wide records are alone: those are quarantined, every number is delivered once.
    """
    victoria = VictoriaMetrics(free_port(), tmp_path)
    victoria.start()
    proxy = Nginx(free_port(), tmp_path, upstream=victoria.url, max_body="4k")
    proxy.start()
    counter, wide = NumberedDevice(), NumberedDevice()
    counter_port, wide_port = free_port(), free_port()
    wide_sim = wide.simulated()  # counts every read, also those after the freeze
    servers = [
        await serve_tcp([counter.simulated()], "127.0.0.1", counter_port),
        await serve_tcp([wide_sim], "127.0.0.1", wide_port),
    ]
    wide_tags = "".join(
        f"      r{i}: {{table: holding, address: {i % 8}, type: uint16}}\n" for i in range(100)
    )
    path, agent_id = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", counter_port, poll_interval_s=0.05)
        + numbered_yaml("wide", wide_port, poll_interval_s=0.5)
        + wide_tags
        + f"sinks:\n  influxdb: {{url: '{proxy.url}', bucket: b, org: o, batch_records: 200}}\n",
    )
    try:
        async with running(path) as agent:
            await asyncio.sleep(4.0)
            await drained(agent)
            counter.frozen = True
            await asyncio.sleep(0.2)
            last = counter.served
            runner = agent.sinks[0]
        # The agent has stopped and delivered what it read: every wide poll is accounted for.
        wide_polls = wide_sim.reads_served
        assert wide_polls >= 6
        quarantined = runner.quarantined
        metric = agent.metrics.quarantined.labels("influxdb")._value.get()
        # What a plant engineer runs to see them, beside the agent or after it.
        shown = subprocess.run(
            [sys.executable, "-m", "edge_agent", "buffer", str(path), "--json", "--limit", "3"],
            capture_output=True,
            text=True,
            check=True,
        )
        listing = json.loads(shown.stdout)
        # Every wide record was refused and kept, and only those; the count is exact.
        assert quarantined == metric == listing["quarantined"] == wide_polls
        assert len(listing["quarantine"]) == 3
        assert {(r["kind"], r["key"]) for r in listing["quarantine"]} == {("values", "wide")}
        assert "413" in listing["quarantine"][0]["error"]
        assert listing["sinks"]["influxdb"]["pending"] == 0
        assert_each_once(await numbers_settled(victoria, agent_id, last), last)
    finally:
        for server in servers:
            await server.shutdown()
        proxy.stop()
        victoria.stop()


async def test_buffer_limit_drops_the_oldest_and_counts_exactly_what_is_missing(
    tmp_path: Path,
) -> None:
    """With InfluxDB down, a 0.1 MB buffer fills in about a second: the oldest records go."""
    device = NumberedDevice()
    port = free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    victoria = VictoriaMetrics(free_port(), tmp_path)  # not started yet: the database is down
    agent_id = small_buffer_config(tmp_path, port, victoria, "drop_oldest")
    try:
        async with running(tmp_path / "agent.yaml") as agent:
            await asyncio.sleep(5.0)
            assert agent.outbox.dropped > 0 and agent.outbox.dropping
            victoria.start()
            await drained(agent)
            device.frozen = True
            await asyncio.sleep(0.2)
            last = device.served
            counted = agent.metrics.dropped.labels("influxdb")._value.get()
        await numbers_settled(victoria, agent_id, 1)
        await asyncio.sleep(1.5)  # the last points become searchable about a second later
        numbers = await asyncio.to_thread(numbers_in, victoria, agent_id)
        links = victoria.export(f'{{__name__="device_link_up",agent="{agent_id}"}}')
        link_points = sum(len(s["values"]) for s in links)  # type: ignore[arg-type]
        missing = len(set(range(1, last + 1)) - set(numbers))
        # Every record the agent made is a number or the one link record ("up" at the start).
        assert missing > 50
        assert counted == missing + (1 - link_points)
        assert [n for n, c in Counter(numbers).items() if c > 1 and n != last] == []
    finally:
        await server.shutdown()
        victoria.stop()


async def test_stop_polling_keeps_the_oldest_and_resumes_when_there_is_room(
    tmp_path: Path,
) -> None:
    device = NumberedDevice()
    port = free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    victoria = VictoriaMetrics(free_port(), tmp_path)
    agent_id = small_buffer_config(tmp_path, port, victoria, "stop_polling")
    try:
        async with running(tmp_path / "agent.yaml") as agent:
            await asyncio.sleep(4.0)
            assert agent.outbox.full
            paused_at = device.served
            await asyncio.sleep(1.0)
            assert device.served == paused_at  # no polls while full
            assert agent.metrics.polls_paused.labels("counter")._value.get() > 20
            state = await page_state(agent)
            assert state["buffer"]["full"] and state["buffer"]["dropped"] == 0
            victoria.start()
            await drained(agent)
            await asyncio.sleep(2.0)  # limits are checked about every second
            assert not agent.outbox.full
            assert device.served > paused_at + 20  # polling resumed
            device.frozen = True
            await asyncio.sleep(0.2)
            last = device.served
        assert_each_once(await numbers_settled(victoria, agent_id, last), last)
    finally:
        await server.shutdown()
        victoria.stop()
