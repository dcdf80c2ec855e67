"""Two agents with one id: the second does not start, and never disturbs the first.

Against a real mosquitto, with agents as their own processes (`python -m edge_agent run`). The
status on `<root>/status` carries each installation's instance id (kept in its buffer file); a
starting agent reads it on a probe connection of its own before it takes its client id:

- another live agent online under the id: refused, exit 1, with a message; the first agent keeps
  its connection, its retained status and its data flow;
- its own birth message left behind by a SIGKILL whose broker connection still looks alive: it
  starts at once (the broker drops the dead connection when the new one takes the client id);
- another installation's `online` whose agent is dead but whose will has not come yet: it waits
  for the will (1.5 keep-alives) and then starts;
- an older version's plain `online`: it starts at once, with a warning (nobody can be named);
- a stop while it waits ends it at once, without ever taking the client id;
- a broker that cannot be reached, does not answer or refuses the probe: it does not hold the
  start (the probe alone, in-process: bounded, skipped with the reason, no connection left).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.sink import MqttSink
from edge_agent.sinks.mqtt.status import Finding, offline_payload, online_payload
from tests.integration.test_mqtt_commands import READER, secret, shipped_broker
from tests.support.dead_link import DeadLinkRelay
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.mqtt_capture import MqttCapture, Received
from tests.support.servers import Mosquitto, free_port

pytestmark = pytest.mark.integration

KEEPALIVE_S = 5  # the smallest the configuration allows: the agents' wait is 9.5 s
WAIT_S = 9.5
# From `python -m edge_agent run` to the birth message, without any wait (imports included).
PROMPT_START_S = 6.0


def agent_config(folder: Path, agent_id: str, device_port: int, broker_port: int) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {folder / 'outbox.db'}\n"
        f"  history_path: {folder / 'history.db'}\n  http: {{enabled: false}}\n"
        "devices:\n" + device_yaml("plc", device_port, poll_interval_s=0.2) + "sinks:\n"
        f"  mqtt: {{host: 127.0.0.1, port: {broker_port}, keepalive_s: {KEEPALIVE_S}}}\n"
    )
    return path


async def start(config: Path, log: Path) -> asyncio.subprocess.Process:
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


async def stop(agent: asyncio.subprocess.Process) -> int:
    if agent.returncode is None:
        agent.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(agent.wait(), 15)


def statuses(messages: list[Received], topic: str) -> list[dict[str, str]]:
    """The JSON statuses seen on `topic` (plain ones of an older version as {"status": …})."""
    got = [m.payload for m in messages if m.topic == topic]
    return [json.loads(p) if p.startswith(b"{") else {"status": p.decode()} for p in got]


async def wait_statuses(
    capture: MqttCapture, topic: str, count: int, timeout_s: float
) -> list[dict[str, str]]:
    got = await asyncio.to_thread(
        capture.wait_for, lambda ms: len(statuses(ms, topic)) >= count, timeout_s
    )
    return statuses(got, topic)


def buffer_instance(folder: Path) -> str:
    db = sqlite3.connect(folder / "outbox.db")
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0])
    finally:
        db.close()


def plant(
    port: int, topic: str, payload: str, *, will: str | None = None, keepalive_s: int = 60
) -> mqtt.Client:
    """A client that publishes `payload` retained and then goes silent (its network loop stopped,
    its socket open), as a dead agent does: the broker publishes its `will`, retained, 1.5
    keep-alives after its last packet."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ghost-{uuid.uuid4().hex}")
    if will is not None:
        client.will_set(topic, will, qos=1, retain=True)
    client.connect("127.0.0.1", port, keepalive=keepalive_s)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    return client


@asynccontextmanager
async def device() -> AsyncIterator[int]:
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    try:
        yield port
    finally:
        await server.shutdown()


async def test_a_second_agent_with_the_same_id_refuses_and_leaves_the_first_alone(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    agent_id = f"dup-{uuid.uuid4().hex[:8]}"
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with device() as port:
        first = await start(
            agent_config(tmp_path / "pc1", agent_id, port, mosquitto.port), first_log
        )
        try:
            [birth] = await wait_statuses(capture, f"{root}/status", 1, 15)
            assert birth["status"] == "online"
            assert birth["instance"] == buffer_instance(tmp_path / "pc1")

            began = time.monotonic()
            second = await start(
                agent_config(tmp_path / "pc2", agent_id, port, mosquitto.port), second_log
            )
            code = await asyncio.wait_for(second.wait(), WAIT_S + 15)
            took_s = time.monotonic() - began
            polls_then = len([m for m in capture.snapshot() if m.topic == f"{root}/devices/plc"])

            log = second_log.read_text()
            assert code == 1, log
            assert "Traceback" not in log
            assert f"waiting up to {WAIT_S} s" in log  # once, at INFO, saying why
            assert log.count("waiting up to") == 1
            [error] = [line for line in log.splitlines() if line.startswith("error: ")]
            ours = buffer_instance(tmp_path / "pc2")
            assert ours != birth["instance"]
            for part in (
                f"agent id '{agent_id}' is taken on the MQTT broker 127.0.0.1:{mosquitto.port}",
                f"another agent (instance {birth['instance']}; this one is {ours})",
                f"online there since {birth['since']}",
                "own agent.id",
                "stop the other agent",
            ):
                assert part in error, part
            assert WAIT_S <= took_s < WAIT_S + 8, took_s  # waited for a will that never came

            # The first agent never noticed: connected throughout, its status as it was, and its
            # values still flowing after the second gave up.
            assert first.returncode is None
            await asyncio.to_thread(
                capture.wait_for,
                lambda ms: (
                    len([m for m in ms if m.topic == f"{root}/devices/plc"]) >= polls_then + 5
                ),
                10,
            )
            assert statuses(capture.snapshot(), f"{root}/status") == [birth]
            late = MqttCapture(mosquitto.port, f"{root}/status", client_id=f"late-{agent_id}")
            try:
                [retained] = await asyncio.to_thread(late.wait_for, lambda ms: len(ms) >= 1, 5)
            finally:
                late.close()
            assert retained.retain and json.loads(retained.payload) == birth
            assert "lost" not in first_log.read_text()  # no "MQTT connection … lost"
        finally:
            assert await stop(first) == 0
            capture.close()
    assert statuses(capture.snapshot(), f"{root}/status")[-1] == {
        "status": "offline",
        "instance": birth["instance"],
    }


async def test_a_killed_agent_restarted_at_once_takes_its_id_without_waiting(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The kill leaves the broker connection open (a relay that keeps it): the broker still
    holds the agent's birth and would publish its will only 1.5 keep-alives later."""
    agent_id = f"kill-{uuid.uuid4().hex[:8]}"
    topic = f"edge/{agent_id}/status"
    relay = DeadLinkRelay(mosquitto.port)
    await relay.start()
    capture = MqttCapture(mosquitto.port, topic)
    log = tmp_path / "agent.log"
    async with device() as port:
        config = agent_config(tmp_path / "pc", agent_id, port, relay.port)
        agent = await start(config, log)
        try:
            [birth] = await wait_statuses(capture, topic, 1, 15)
            agent.send_signal(signal.SIGKILL)
            await agent.wait()
            await asyncio.sleep(0.3)
            assert statuses(capture.snapshot(), topic) == [birth]  # no will: the link looks alive

            began = time.monotonic()
            agent = await start(config, log)
            got = await wait_statuses(capture, topic, 3, PROMPT_START_S)
            took_s = time.monotonic() - began
        finally:
            code = await stop(agent)
            capture.close()
            await relay.close()
    instance = birth["instance"]
    # Taking the client id ended the dead connection: its will first, then the new birth.
    assert got[1] == {"status": "offline", "instance": instance}
    assert got[2]["status"] == "online" and got[2]["instance"] == instance
    assert got[2]["since"] > birth["since"]
    assert took_s < PROMPT_START_S < WAIT_S
    assert "waiting up to" not in log.read_text()
    assert code == 0


async def test_a_dead_agent_of_another_installation_is_waited_for_until_its_will(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    agent_id = f"ghost-{uuid.uuid4().hex[:8]}"
    topic = f"edge/{agent_id}/status"
    other = "77aa00bb11cc22dd"
    capture = MqttCapture(mosquitto.port, topic)
    log = tmp_path / "agent.log"
    # A dead agent as the broker sees it: online, connected, silent; keep-alive 2 s, so the
    # broker publishes its will 1.5 keep-alives after its last packet. mosquitto keeps that
    # deadline in whole seconds of its clock, so the will comes 2 s or more after the last packet.
    online = online_payload(other, time.time_ns())
    ghost = plant(mosquitto.port, topic, online, will=offline_payload(other), keepalive_s=2)
    silent_since = time.monotonic()
    async with device() as port:
        agent = await start(agent_config(tmp_path / "pc", agent_id, port, mosquitto.port), log)
        try:
            got = await wait_statuses(capture, topic, 3, WAIT_S + PROMPT_START_S)
            took_s = time.monotonic() - silent_since
            assert agent.returncode is None
        finally:
            code = await stop(agent)
            capture.close()
            ghost.socket().close()  # type: ignore[union-attr]
    assert [s["status"] for s in got[:3]] == ["online", "offline", "online"]
    assert got[0]["instance"] == got[1]["instance"] == other
    assert got[2]["instance"] == buffer_instance(tmp_path / "pc") != other
    assert 1.5 < took_s < WAIT_S + PROMPT_START_S  # started after the will, not the window's end
    text = log.read_text()
    assert f"another agent (instance {other}," in text and f"waiting up to {WAIT_S} s" in text
    # Its wait ended with the will, inside the window (when the will comes is the broker's: its
    # keep-alive sweep is seconds late under load).
    waited = re.search(r"turned to offline after ([0-9.]+) s", text)
    assert waited is not None and float(waited[1]) < WAIT_S, text
    assert code == 0


async def test_an_older_versions_plain_online_does_not_hold_the_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A plain `online` names no agent. The usual one is this agent's own from before an upgrade
    (same client id: the broker drops that connection when the new one connects, will first);
    refusing on it could lock an agent out for good on a leftover. So: a warning, and go on."""
    agent_id = f"old-{uuid.uuid4().hex[:8]}"
    topic = f"edge/{agent_id}/status"
    planter = plant(mosquitto.port, topic, "online")
    planter.socket().close()  # type: ignore[union-attr]
    capture = MqttCapture(mosquitto.port, topic)
    log = tmp_path / "agent.log"
    async with device() as port:
        began = time.monotonic()
        agent = await start(agent_config(tmp_path / "pc", agent_id, port, mosquitto.port), log)
        try:
            got = await wait_statuses(capture, topic, 2, PROMPT_START_S)
            took_s = time.monotonic() - began
        finally:
            code = await stop(agent)
            capture.close()
    assert got[0] == {"status": "online"}  # the retained plain one
    assert got[1]["status"] == "online" and got[1]["instance"] == buffer_instance(tmp_path / "pc")
    assert took_s < PROMPT_START_S
    text = log.read_text()
    assert "in the format of an older version" in text and "waiting up to" not in text
    assert code == 0


async def test_a_stop_while_it_waits_ends_the_agent_at_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    agent_id = f"stop-{uuid.uuid4().hex[:8]}"
    topic = f"edge/{agent_id}/status"
    other = online_payload("77aa00bb11cc22dd", time.time_ns())
    ghost = plant(mosquitto.port, topic, other)  # silent, its will (none) a minute away
    log = tmp_path / "agent.log"
    async with device() as port:
        agent = await start(agent_config(tmp_path / "pc", agent_id, port, mosquitto.port), log)
        try:
            deadline = time.monotonic() + PROMPT_START_S
            while "waiting up to" not in log.read_text():
                assert time.monotonic() < deadline and agent.returncode is None
                await asyncio.sleep(0.05)
            began = time.monotonic()
            code = await stop(agent)
            took_s = time.monotonic() - began
        finally:
            ghost.socket().close()  # type: ignore[union-attr]
    text = log.read_text()
    assert code == 0 and took_s < 2.0, text
    assert "Traceback" not in text and "error: " not in text
    assert "MQTT connected" not in text  # it never took the client id
    late = MqttCapture(mosquitto.port, topic, client_id=f"late-{agent_id}")
    try:
        [retained] = await asyncio.to_thread(late.wait_for, lambda ms: len(ms) >= 1, 5)
    finally:
        late.close()
    assert retained.payload == other.encode()


# ---- the probe alone: whatever the broker does, the start is not held, and nothing stays open


def connections_to(port: int) -> int:
    """This process's established TCP connections to 127.0.0.1:`port`."""
    ours = {
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    }
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if remote == f"0100007F:{port:04X}" and state == "01" and f"socket:[{inode}]" in ours:
            count += 1
    return count


def sink(port: int, **config: object) -> MqttSink:
    return MqttSink(
        MqttSinkConfig.model_validate({"host": "127.0.0.1", "port": port} | config),
        "probe-test",
        f"edge/probe-{uuid.uuid4().hex[:8]}",
    )


async def test_a_new_id_on_a_reachable_broker_is_free(mosquitto: Mosquitto) -> None:
    began = time.monotonic()
    outcome = await sink(mosquitto.port).claim("3f9a0c1d2b4e5f60")
    assert outcome.finding is Finding.NONE and outcome.skipped is None
    assert time.monotonic() - began < 1.5  # the connection, and 0.5 s for a retained status
    assert connections_to(mosquitto.port) == 0


async def test_an_unreachable_broker_skips_the_check_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    began = time.monotonic()
    outcome = await sink(free_port()).claim("3f9a0c1d2b4e5f60")
    assert outcome.finding is None and "cannot connect" in (outcome.skipped or "")
    assert time.monotonic() - began < 1.0
    assert "going on without the check" in caplog.text


async def test_a_broker_that_never_answers_holds_the_start_a_few_seconds_only() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # TCP, no MQTT
    port = listener.sockets[0].getsockname()[1]
    began = time.monotonic()
    try:
        outcome = await sink(port).claim("3f9a0c1d2b4e5f60")
        assert connections_to(port) == 0
    finally:
        listener.close()
    assert outcome.finding is None and outcome.skipped == "no CONNACK within 3 s"
    assert 2.9 < time.monotonic() - began < 4.5


async def test_a_name_lookup_that_hangs_holds_the_start_a_few_seconds_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho's connect timeout covers the TCP and TLS handshakes, not the DNS lookup before."""
    lookup = socket.getaddrinfo

    def hanging(host: object, *args: Any, **kwargs: Any) -> Any:
        if host == "broker.unanswered.test":
            time.sleep(6)  # a DNS server that does not answer; the probe's thread is left to it
            raise socket.gaierror("no answer")
        return lookup(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    began = time.monotonic()
    outcome = await sink(1883, host="broker.unanswered.test").claim("3f9a0c1d2b4e5f60")
    assert outcome.finding is None and outcome.skipped == "no answer within 3.5 s"
    assert time.monotonic() - began < 4.5


async def test_a_broker_that_refuses_the_login_or_the_subscription_skips_the_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    locked = Mosquitto(free_port(), tmp_path, extra_config="allow_anonymous false\n")
    locked.start()
    try:
        outcome = await sink(locked.port, username="nobody", password="pw-secret-55").claim("3f9a")
    finally:
        locked.stop()
    assert outcome.finding is None
    assert "refused the connection" in (outcome.skipped or "")
    assert "pw-secret-55" not in caplog.text

    # mosquitto grants any subscription and hides what the ACL forbids; other brokers (EMQX,
    # HiveMQ) answer 0x80, as this minimal one does.
    refusing = await asyncio.start_server(_refuse_subscriptions, "127.0.0.1", 0)
    port = refusing.sockets[0].getsockname()[1]
    try:
        outcome = await sink(port).claim("3f9a")
        assert connections_to(port) == 0
    finally:
        refusing.close()
    assert outcome.finding is None
    assert "refused to let it read" in (outcome.skipped or "")
    assert caplog.text.count("going on without the check") == 2


async def _refuse_subscriptions(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Just enough MQTT 3.1.1: accept the CONNECT, answer every SUBSCRIBE with failure 0x80."""
    try:
        while True:
            head = await reader.readexactly(1)
            length, shift = 0, 0
            while True:
                byte = (await reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = await reader.readexactly(length)
            kind = head[0] >> 4
            if kind == 1:  # CONNECT
                writer.write(bytes([0x20, 2, 0, 0]))
            elif kind == 8:  # SUBSCRIBE: packet id, then one failure per topic (one here)
                writer.write(bytes([0x90, 3, body[0], body[1], 0x80]))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, list[str]]]:
    yield from shipped_broker(tmp_path)


async def test_on_the_shipped_broker_a_second_agent_of_the_same_account_is_refused(
    broker: tuple[Mosquitto, list[str]], tmp_path: Path
) -> None:
    """deploy/mosquitto.conf makes the account name the client id (use_username_as_clientid): the
    probe then takes the live agent's client id for a moment, the broker publishes that agent's
    will, and the agent, alive, takes its connection back. The probe sees that and refuses."""
    server, [agent_id, _other] = broker
    root = f"edge/{agent_id}"
    login = f"username: {agent_id}, password: {secret(agent_id)}, "
    reader = MqttCapture(server.port, f"{root}/status", username=READER, password=secret(READER))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with device() as port:
        configs = []
        for pc in ("pc1", "pc2"):
            path = agent_config(tmp_path / pc, agent_id, port, server.port)
            path.write_text(path.read_text().replace("mqtt: {", "mqtt: {" + login))
            configs.append(path)
        first = await start(configs[0], first_log)
        try:
            [birth] = await wait_statuses(reader, f"{root}/status", 1, 15)
            second = await start(configs[1], second_log)
            code = await asyncio.wait_for(second.wait(), PROMPT_START_S + 10)
            log = second_log.read_text()
            assert code == 1, log
            assert "Traceback" not in log
            [error] = [line for line in log.splitlines() if line.startswith("error: ")]
            assert f"agent id '{agent_id}' is taken on the MQTT broker" in error
            assert f"another agent (instance {birth['instance']}; " in error
            assert "with the same account" in error and "own agent.id" in error
            # The first agent was thrown off for a moment and is online again, as itself.
            await asyncio.to_thread(
                reader.wait_for,
                lambda ms: statuses(ms, f"{root}/status")[-1]["status"] == "online",
                10,
            )
            last = statuses(reader.snapshot(), f"{root}/status")[-1]
            assert last["instance"] == birth["instance"] and first.returncode is None
        finally:
            assert await stop(first) == 0
            reader.close()
