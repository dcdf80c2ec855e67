"""MQTT commands against a real mosquitto with the shipped ACL (deploy/mosquitto.acl).

The broker runs the shipped template with its example accounts renamed, a password file made
with `mosquitto_passwd`, and the security options of the shipped deploy/mosquitto.conf
(allow_anonymous false, use_username_as_clientid true). Agents log in as their agent id.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.access import AccessStore, Role
from edge_agent.agent import Agent
from edge_agent.commands import MAX_PAYLOAD_BYTES, RATE_BURST
from edge_agent.config import load_config
from tests.support.servers import Mosquitto, _require, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The template's example accounts, and what this test calls them.
OPERATOR, ENGINEER, READER = "op-test", "eng-test", "reader-test"
_RENAMED = {"hmi-line1": OPERATOR, "maint-lead": ENGINEER, "historian": READER}
# Options of the shipped configuration that are about where things are, not about who may do what.
# Where the plant's broker keeps its files and which ports it opens (with its certificates):
# the test broker has its own. The security options are taken as shipped.
_LOCAL = (
    "listener",
    "cafile",
    "certfile",
    "keyfile",
    "tls_version",
    "persistence",
    "persistence_location",
    "password_file",
    "acl_file",
)


def secret(account: str) -> str:
    return f"pw-{account}-secret"


def new_agent_id() -> str:
    return f"press-{uuid.uuid4().hex[:6]}"


def shipped_security_options() -> str:
    lines = [
        line.strip()
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    kept = [line for line in lines if line.split()[0] not in _LOCAL]
    assert "allow_anonymous false" in kept and "use_username_as_clientid true" in kept
    assert any(line.startswith("acl_file ") for line in lines)
    return "\n".join(kept) + "\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, list[str]]]:
    yield from shipped_broker(tmp_path)


def shipped_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, list[str]]]:
    """The shipped ACL broker with two agent accounts (ids returned), operator, engineer, reader."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    acl = (DEPLOY / "mosquitto.acl").read_text()
    for example, name in _RENAMED.items():
        assert f"\nuser {example}\n" in acl, f"the template lost its example account {example}"
        acl = acl.replace(f"\nuser {example}\n", f"\nuser {name}\n")
    (workdir / "acl").write_text(acl)
    agents = [new_agent_id(), new_agent_id()]
    passwords = workdir / "passwd"
    for i, account in enumerate([*agents, OPERATOR, ENGINEER, READER]):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            [_require("mosquitto_passwd"), *create, "-b", str(passwords), account, secret(account)],
            check=True,
            capture_output=True,
        )
    extra = shipped_security_options() + (
        f"password_file {passwords}\nacl_file {workdir / 'acl'}\n"
        # As root, mosquitto would switch to its own user, which cannot read pytest's 0700 dirs.
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    server = Mosquitto(free_port(), workdir, extra_config=extra)
    server.start()
    yield server, agents
    server.stop()


class Account:
    """A real MQTT client logged in as one account, recording what it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        *,
        password: str | None = None,
        client_id: str | None = None,
        subscribe: tuple[str, ...] = (),
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.refused: str | None = None
        self.disconnects = 0
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:8]}"
        )
        if user is not None:
            self.client.username_pw_set(user, secret(user) if password is None else password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self._topics = subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._answered.wait(5), "the broker did not answer the connection"
        if self.refused is None and subscribe:
            assert self._subscribed.wait(5)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        elif self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        self._answered.set()

    def _on_disconnect(self, *_: Any) -> None:
        self.disconnects += 1

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def publish(self, topic: str, payload: str | bytes | dict[str, Any]) -> None:
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        # A denied publish is acknowledged all the same in MQTT 3.1.1: the broker drops it.
        self.client.publish(topic, data, qos=1).wait_for_publish(5)

    def on(self, topic: str) -> list[Any]:
        with self._lock:
            got = [p for t, p, _ in self.messages if t == topic]
        return [json.loads(p) if p.startswith(b"{") else p.decode() for p in got]

    async def wait(self, topic: str, count: int, timeout_s: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(got := self.on(topic)) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} messages on {topic}: {got}"
            await asyncio.sleep(0.05)
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_config(
    tmp_path: Path, agent_id: str, broker_port: int, device_port: int, **extra: str
) -> Path:
    """One oven over 80 (the alarm `hot` is active from the first poll), MQTT as the agent id."""
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  http: {{enabled: false}}\n{extra.get('agent', '')}"
        "devices:\n  oven:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {device_port}\n    poll_interval_s: 0.2\n    tags:\n"
        "      temp: {table: input, address: 0, type: float32}\n"
        "alarms:\n  - {id: hot, type: limit, tag: oven.temp, high: 80}\n"
        "sinks:\n"
        f"  mqtt: {{host: 127.0.0.1, port: {broker_port}, username: {agent_id}, "
        f"password: {secret(agent_id)}}}\n{extra.get('sinks', '')}"
    )
    return path


@asynccontextmanager
async def running_agent(path: Path, watcher: Account, root: str) -> AsyncIterator[Agent]:
    """The agent, once its alarm is active on MQTT (it is subscribed to its commands by then)."""
    image = RegisterImage(size=8)
    image.set_f32("input", 0, 95.0)
    config = load_config(path)
    device_port = config.devices["oven"].port  # type: ignore[union-attr]
    server = await serve_tcp([SimulatedDevice(image)], "127.0.0.1", device_port)
    agent = Agent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        deadline = time.monotonic() + 15
        while not any(a.get("state") == "unack_active" for a in watcher.on(f"{root}/alarms/hot")):
            assert time.monotonic() < deadline and not task.done(), "the agent did not come up"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await server.shutdown()


def refused_count(agent: Agent, reason: str) -> float:
    value = agent.metrics.registry.get_sample_value(
        "edge_commands_refused_total", {"reason": reason}
    )
    return value or 0.0


async def test_an_agent_account_writes_only_its_own_topics(
    broker: tuple[Mosquitto, list[str]],
) -> None:
    server, (press1, press2) = broker
    reader = Account(server.port, READER, subscribe=("edge/#",))
    agent = Account(server.port, press1, client_id=press1)
    operator = Account(server.port, OPERATOR)
    try:
        assert agent.refused is None and operator.refused is None
        denied = [
            (agent, f"edge/{press2}/devices/oven"),  # another agent's data
            (agent, f"edge/{press2}/status"),
            (agent, f"edge/{press1}/commands/alarms/operator"),  # its own command topics
            (agent, f"edge/{press1}/commands/alarms/engineer"),
            (agent, f"edge/{press1}/commands/alarms"),
            (agent, f"elsewhere/{press1}"),
            (operator, f"edge/{press1}/devices/oven"),  # people do not write data
            (operator, f"edge/{press1}/commands/alarms/engineer"),  # nor above their role
            (reader, f"edge/{press1}/commands/alarms/operator"),
        ]
        for account, topic in denied:
            account.publish(topic, b"denied")
        agent.publish(f"edge/{press1}/devices/oven", b"allowed")
        agent.publish(f"edge/{press1}/commands/alarms/reply", b"allowed")
        operator.publish(f"edge/{press1}/commands/alarms/operator", b"allowed")
        await reader.wait(f"edge/{press1}/commands/alarms/operator", 1)
        await asyncio.sleep(0.3)  # anything denied but delivered would have come by now
        assert {(t, p) for t, p, _ in reader.messages} == {
            (f"edge/{press1}/devices/oven", b"allowed"),
            (f"edge/{press1}/commands/alarms/reply", b"allowed"),
            (f"edge/{press1}/commands/alarms/operator", b"allowed"),
        }
    finally:
        for account in (reader, agent, operator):
            account.close()


async def test_nobody_takes_over_an_agents_client_id(
    broker: tuple[Mosquitto, list[str]], tmp_path: Path
) -> None:
    """Without use_username_as_clientid, a client connecting with the agent's client id makes
    the broker drop the agent (and the two throw each other off in turn)."""
    server, (agent_id, _) = broker
    root = f"edge/{agent_id}"
    watcher = Account(server.port, READER, subscribe=(f"{root}/#",))
    path = agent_config(tmp_path, agent_id, server.port, free_port())
    impostors: list[Account] = []
    try:
        async with running_agent(path, watcher, root) as agent:
            [runner] = [r for r in agent.sinks if r.sink.name == "mqtt"]
            impostors.append(Account(server.port, OPERATOR, client_id=agent_id))
            anonymous = Account(server.port, None, client_id=agent_id)
            wrong = Account(server.port, agent_id, password="guess", client_id=agent_id)
            impostors += [anonymous, wrong]
            assert impostors[0].refused is None  # it connects, but as its own account
            assert anonymous.refused is not None and "authori" in anonymous.refused.lower()
            assert wrong.refused is not None
            await asyncio.sleep(1.0)
            assert runner.sink.connected
            # Never the last will, offline.
            assert [s["status"] for s in watcher.on(f"{root}/status")] == ["online"]
    finally:
        for account in (watcher, *impostors):
            account.close()


async def test_roles_come_from_the_topic_and_bad_input_is_refused_with_a_reply(
    broker: tuple[Mosquitto, list[str]], tmp_path: Path
) -> None:
    server, (agent_id, _) = broker
    root = f"edge/{agent_id}"
    reply_topic = f"{root}/commands/alarms/reply"
    watcher = Account(server.port, READER, subscribe=(f"{root}/#",))
    operator = Account(server.port, OPERATOR)
    engineer = Account(server.port, ENGINEER)
    access = AccessStore(tmp_path / "access.json")
    token = access.create_token("maint", Role.ENGINEER)
    extra = f"  access_path: {access.path}\n"
    path = agent_config(tmp_path, agent_id, server.port, free_port(), agent=extra)
    try:
        async with running_agent(path, watcher, root) as agent:

            async def ask(
                account: Account, role: str, payload: str | bytes | dict[str, Any]
            ) -> Any:
                before = len(watcher.on(reply_topic))
                account.publish(f"{root}/commands/alarms/{role}", payload)
                return (await watcher.wait(reply_topic, before + 1))[before]

            ack = {"command": "ack", "id": "hot", "user": "li.wei", "request_id": "r1"}
            reply = await ask(operator, "operator", ack)
            assert reply == {**reply, "ok": True, "state": "ack_active", "request_id": "r1"}
            assert reply["user"] == "mqtt:operator"

            oos: dict[str, Any] = {
                "command": "out_of_service",
                "id": "hot",
                "reason": "WO-1",
                "request_id": "r2",
            }
            reply = await ask(operator, "operator", oos)
            assert reply["ok"] is False and reply["request_id"] == "r2"
            assert (
                f"needs the engineer role: send it to {root}/commands/alarms/engineer"
                in (reply["error"])
            )
            # The operator cannot write the engineer topic at all: the broker drops it.
            operator.publish(f"{root}/commands/alarms/engineer", {**oos, "request_id": "r2b"})

            oos = {**oos, "reason": "probe swap", "duration_s": 3600, "request_id": "r3"}
            reply = await ask(engineer, "engineer", oos)
            assert reply == {**reply, "ok": True, "state": "out_of_service", "request_id": "r3"}
            assert reply["user"] == "mqtt:engineer"

            # A token names who sent it, verified against the agent's users file.
            back = {"command": "in_service", "id": "hot", "token": token, "request_id": "r3t"}
            reply = await ask(engineer, "engineer", back)
            assert reply == {**reply, "ok": True, "request_id": "r3t", "user": "token:maint"}

            big = json.dumps({"command": "ack", "id": "hot", "request_id": "r4", "pad": "x" * 5000})
            reply = await ask(operator, "operator", big.encode())
            assert reply["ok"] is False and reply["request_id"] is None
            assert f"at most {MAX_PAYLOAD_BYTES} bytes; this one has {len(big)}" in reply["error"]

            long_id = {"command": "ack", "id": "hot", "request_id": "r" * 100}
            reply = await ask(operator, "operator", long_id)
            assert reply["ok"] is False and reply["request_id"] is None
            assert "request_id is a string" in reply["error"]

            await asyncio.sleep(0.3)
            assert [r["request_id"] for r in watcher.on(reply_topic)] == [
                "r1",
                "r2",
                "r3",
                "r3t",
                None,
                None,
            ]  # nothing from the denied publish
            for reason in ("role", "too_large", "bad_request_id"):
                assert refused_count(agent, reason) == 1, reason

            # Who did it: the verified role, and the name the sender gave kept apart.
            events = {a["event"]: a for a in watcher.on(f"{root}/alarms/events")}
            assert (events["ack"]["user"], events["ack"]["declared_user"]) == (
                "mqtt:operator",
                "li.wei",
            )
            assert events["in_service"]["user"] == "token:maint"
            taken_out = events["out_of_service"]
            assert (taken_out["user"], taken_out["reason"]) == ("mqtt:engineer", "probe swap")
            assert taken_out["out_of_service_until"] is not None
    finally:
        for account in (watcher, operator, engineer):
            account.close()


async def test_a_flood_of_refused_commands_drops_no_waiting_record(
    broker: tuple[Mosquitto, list[str]], tmp_path: Path
) -> None:
    """Regression: replies went through the durable buffer. With InfluxDB down, every record
    waits there; 4 refused commands of 3 MiB (their replies quoting the alarm id) pushed every
    waiting record out. Here 50 commands of 4 KiB, each quoting a 4 KB id, against a 100 KB
    buffer: as buffered replies they would take twice its size."""
    server, (agent_id, _) = broker
    root = f"edge/{agent_id}"
    watcher = Account(server.port, READER, subscribe=(f"{root}/#",))
    operator = Account(server.port, OPERATOR)
    influx_down = f"http://127.0.0.1:{free_port()}"
    path = agent_config(
        tmp_path,
        agent_id,
        server.port,
        free_port(),
        agent="  buffer_max_mb: 0.1\n",
        sinks=f"  influxdb: {{url: '{influx_down}', bucket: b, org: o, timeout_s: 1}}\n",
    )
    try:
        async with running_agent(path, watcher, root) as agent:
            for i in range(50):
                command = {"command": "ack", "request_id": f"f{i}", "id": ""}
                command["id"] = "x" * (MAX_PAYLOAD_BYTES - len(json.dumps(command)))
                payload = json.dumps(command).encode()
                assert len(payload) == MAX_PAYLOAD_BYTES  # the largest that is not too large
                operator.publish(f"{root}/commands/alarms/operator", payload)
            deadline = time.monotonic() + 10
            while refused_count(agent, "bad_field") + refused_count(agent, "rate_limited") < 50:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.5)  # the buffer checks its limits about once a second
            await agent.outbox.flush()
            await agent.outbox.enforce_limits()
            records = await agent.outbox.read(0, 100_000)
            assert refused_count(agent, "bad_field") == RATE_BURST
            assert agent.outbox.dropped == 0
            dropped = agent.metrics.registry.get_sample_value(
                "edge_sink_dropped_records_total", {"sink": "influxdb"}
            )
            assert dropped == 0
            # InfluxDB took nothing, so nothing may have left: every record since the first.
            assert [r.seq for r in records] == list(range(1, agent.outbox.last_seq + 1))
            assert {r.kind for r in records} <= {"values", "link", "alarm", "condition"}
            replies = watcher.on(f"{root}/commands/alarms/reply")
            assert len(replies) >= RATE_BURST + 1  # the burst's replies, and the limit's
    finally:
        for account in (watcher, operator):
            account.close()


async def test_the_rate_limit_refuses_beyond_its_burst(
    broker: tuple[Mosquitto, list[str]], tmp_path: Path
) -> None:
    """10 a second in bursts of 20: of 30 commands sent at once about 20 are carried out; the
    rest are refused with one reply a second at most. A second later commands go through again."""
    server, (agent_id, _) = broker
    root = f"edge/{agent_id}"
    reply_topic = f"{root}/commands/alarms/reply"
    watcher = Account(server.port, READER, subscribe=(f"{root}/#",))
    operator = Account(server.port, OPERATOR)
    path = agent_config(tmp_path, agent_id, server.port, free_port())
    try:
        async with running_agent(path, watcher, root) as agent:
            infos = [
                operator.client.publish(
                    f"{root}/commands/alarms/operator",
                    json.dumps({"command": "ack", "id": "nosuch", "request_id": f"q{i}"}),
                    qos=1,
                )
                for i in range(30)
            ]
            for info in infos:
                info.wait_for_publish(5)
            deadline = time.monotonic() + 10
            while refused_count(agent, "rate_limited") + refused_count(agent, "refused") < 30:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            replies = watcher.on(reply_topic)
            carried_out = [r for r in replies if r["request_id"] is not None]
            limited = [r for r in replies if "too many commands" in r["error"]]
            assert RATE_BURST <= len(carried_out) <= RATE_BURST + 2
            assert all("unknown alarm 'nosuch'" in r["error"] for r in carried_out)
            assert refused_count(agent, "rate_limited") == 30 - len(carried_out)
            assert len(limited) >= 1 and len(replies) == len(carried_out) + len(limited)
            times = [datetime.fromisoformat(r["ts"]) for r in limited]
            assert all((b - a).total_seconds() >= 0.99 for a, b in itertools.pairwise(times))

            await asyncio.sleep(1.0)  # ten tokens back
            before = len(watcher.on(reply_topic))
            operator.publish(
                f"{root}/commands/alarms/operator",
                {"command": "ack", "id": "hot", "request_id": "later"},
            )
            [reply] = (await watcher.wait(reply_topic, before + 1))[before:]
            assert reply == {**reply, "ok": True, "request_id": "later"}
    finally:
        for account in (watcher, operator):
            account.close()
