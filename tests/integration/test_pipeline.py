"""End to end: simulator → agent (poll, compute, outbox) → a real mosquitto and a real VictoriaMetrics."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.agent import Agent
from edge_agent.config import load_config
from tests.support.fixed_device import FIXED_TAGS, device_yaml, fixed_image
from tests.support.mqtt_capture import MqttCapture, Received
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port

EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}


def write_config(tmp_path: Path, body: str) -> tuple[Path, str]:
    agent_id = f"it-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  history_path: {tmp_path / 'history.db'}\n"
        "  http: {enabled: false}\n" + body
    )
    return path, agent_id


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Agent]:
    agent = Agent(load_config(path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def wait_until(
    capture: MqttCapture, predicate: Callable[[list[Received]], bool], timeout_s: float = 15
) -> list[Received]:
    return await asyncio.to_thread(capture.wait_for, predicate, timeout_s)


def on_topic(messages: list[Received], topic: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in messages if m.topic == topic]


async def test_exact_values_reach_mqtt_and_influxdb(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        (
            "devices:\n" + device_yaml("plc", port) + "machines:\n"
            "  m1:\n"
            "    ideal_cycle_time_s: 1\n"
            "    state: {running: 'plc.coil0 and plc.bit2', fault: 'plc.i16 != -1234', reason: plc.u16_raw}\n"
            "sinks:\n"
            f"  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
            f"  influxdb: {{url: '{victoria.url}', bucket: test, org: test, token: secret-token}}\n"
        ),
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")
    try:
        async with running(path):
            got = await wait_until(
                capture, lambda ms: len(on_topic(ms, f"{root}/devices/plc")) >= 3
            )
        polls = on_topic(got, f"{root}/devices/plc")
        for payload in polls:
            assert payload["device"] == "plc"
            assert payload["values"] == EXPECTED
            assert "quality" not in payload  # every tag good
        seqs = [p["seq"] for p in polls]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        state = on_topic(got, f"{root}/machines/m1/state")
        assert state and state[0]["state"] == "running" and state[0]["machine"] == "m1"
        live = next(m for m in got if m.topic == f"{root}/machines/m1/state")
        assert live.retain is False  # delivered live, not replayed as retained
        status = on_topic(capture.snapshot(), f"{root}/status")
        instance = status[0]["instance"]  # this installation's, kept in its buffer file
        assert status[0] == {"status": "online", "instance": instance, "since": status[0]["since"]}
        # Published on a clean stop, by the same installation.
        assert status[-1] == {"status": "offline", "instance": instance}

        # InfluxDB line protocol, read back from VictoriaMetrics: every numeric tag, exact values,
        # the same millisecond timestamps as the MQTT messages.
        ts_ms = {_iso_to_ms(str(p["ts"])) for p in polls}
        series = await asyncio.to_thread(
            victoria.wait_for,
            f'{{__name__="values_value",agent="{agent_id}"}}',
            points=len(polls) * 18,
        )
        by_tag = {s["metric"]["tag"]: s for s in series}  # type: ignore[index]
        numeric = {k: v for k, v in EXPECTED.items() if not isinstance(v, str)}
        assert set(by_tag) == set(numeric)
        for name, value in numeric.items():
            # VictoriaMetrics keeps 12 significant decimal digits (pi comes back as 3.141592653589).
            stored = by_tag[name]["values"]
            assert stored == pytest.approx([float(value)] * len(stored), rel=1e-12), name  # type: ignore[arg-type]
            assert ts_ms <= set(by_tag[name]["timestamps"])  # type: ignore[arg-type]
        states = await asyncio.to_thread(
            victoria.wait_for,
            f'{{__name__="machine_state_state_code",agent="{agent_id}"}}',
            points=1,
        )
        assert states[0]["values"] == [1.0]  # running
    finally:
        capture.close()
        await server.shutdown()


async def test_per_tag_topics_and_retained_machine_state(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        (
            "devices:\n"
            + device_yaml("plc", port)
            + "machines:\n  m1:\n    ideal_cycle_time_s: 1\n    state: {running: 'plc.coil1'}\n"
            f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, raw_values: per_tag}}\n"
        ),
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/devices/plc/+")
    try:
        async with running(path):
            got = await wait_until(
                capture,
                lambda ms: {m.topic for m in ms} >= {f"{root}/devices/plc/{t}" for t in EXPECTED},
            )
        for name, value in EXPECTED.items():
            payload = on_topic(got, f"{root}/devices/plc/{name}")[0]
            assert payload["value"] == value and payload["quality"] == "good"
    finally:
        capture.close()
        await server.shutdown()
    # A subscriber that connects after the agent stopped still gets the current state (retained).
    late = MqttCapture(mosquitto.port, f"{root}/machines/+/state", client_id="late")
    try:
        got = await wait_until(late, lambda ms: len(ms) >= 1)
        assert got[0].retain and json.loads(got[0].payload)["state"] == "idle"
    finally:
        late.close()


async def test_dead_device_is_bad_and_does_not_slow_the_other(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    silent = socket.socket()  # accepts TCP, never answers: a hung gateway
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        (
            "devices:\n"
            + device_yaml("good", port, poll_interval_s=0.1)
            + device_yaml("dead", silent.getsockname()[1], poll_interval_s=0.1).replace(
                "timeout_s: 1", "timeout_s: 0.5"
            )
            + "machines:\n  m_dead:\n    ideal_cycle_time_s: 1\n    state: {running: 'dead.coil0'}\n"
            + f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
        ),
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")
    try:
        async with running(path) as agent:
            await asyncio.sleep(3.0)
            good_polls = agent.metrics.polls.labels("good")._value.get()
            dead_polls = agent.metrics.polls.labels("dead")._value.get()
        # 3 s at 0.1 s: about 30 polls, however long the dead device hangs (0.5 s a try, backing off).
        assert good_polls >= 27, good_polls
        assert dead_polls <= 5, dead_polls
        got = capture.snapshot()
        dead = on_topic(got, f"{root}/devices/dead")
        assert len(dead) == 1  # marked bad once, not once per retry
        assert set(dead[0]["values"].values()) == {None}
        assert set(dead[0]["quality"].values()) == {"bad"}
        link = on_topic(got, f"{root}/devices/dead/link")
        assert link[0]["state"] == "down" and "timeout" in link[0]["error"]
        assert on_topic(got, f"{root}/machines/m_dead/state")[0]["state"] == "unknown"
    finally:
        capture.close()
        silent.close()
        await server.shutdown()


async def test_broker_outage_fills_the_buffer_and_drains_it(tmp_path: Path) -> None:
    broker = Mosquitto(free_port(), tmp_path)
    broker.start()
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, agent_id = write_config(
        tmp_path,
        (
            "devices:\n"
            + device_yaml("plc", port, poll_interval_s=0.1)
            + f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        ),
    )
    topic = f"edge/{agent_id}/devices/plc"
    capture = MqttCapture(broker.port, topic)
    try:
        async with running(path) as agent:
            await wait_until(capture, lambda ms: len(ms) >= 5)
            capture.close()
            broker.stop()
            await asyncio.sleep(2.5)  # about 25 polls while the broker is gone
            runner = agent.sinks[0]
            assert runner.pending >= 15
            broker.start()
            capture = MqttCapture(broker.port, topic, client_id="after-outage")
            # Everything produced during the outage arrives once the broker is back.
            last_during_outage = agent.outbox.last_seq
            got = await wait_until(
                capture,
                lambda ms: any(json.loads(m.payload)["seq"] >= last_during_outage for m in ms),
            )
        seqs = sorted({json.loads(m.payload)["seq"] for m in got})
        first = seqs[0]
        # No gap from the first message after the outage to the last one produced during it.
        assert seqs[: last_during_outage - first + 1] == list(range(first, last_during_outage + 1))
    finally:
        capture.close()
        broker.stop()
        await server.shutdown()


def _iso_to_ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class _SlowDevice(SimulatedDevice):
    """Answers every request after 0.25 s: a poll takes longer than its 0.1 s interval."""

    async def _on_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.25)
        return await super()._on_request(*args, **kwargs)


async def test_overruns_are_counted_not_queued(tmp_path: Path) -> None:
    port = free_port()
    server = await serve_tcp([_SlowDevice(fixed_image())], "127.0.0.1", port)
    path, _ = write_config(tmp_path, "devices:\n" + device_yaml("slow", port, poll_interval_s=0.1))
    try:
        async with running(path) as agent:
            await asyncio.sleep(3.0)
            polls = agent.metrics.polls.labels("slow")._value.get()
            overruns = agent.metrics.poll_overruns.labels("slow")._value.get()
    finally:
        await server.shutdown()
    # Four requests of 0.25 s each: a poll lasts about 1 s, so about 3 polls in 3 s, never a queue
    # of 30; the ticks that found the previous poll still running are counted.
    assert 2 <= polls <= 4, polls
    assert overruns >= 15, overruns
