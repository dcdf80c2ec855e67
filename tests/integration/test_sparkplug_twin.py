"""Two agents publishing as one Sparkplug edge node, on a real mosquitto, are told of it.

With their own agent ids and one `edge_node_id` (a copied file) both stay connected: each sees the
other's NBIRTH on its node's topic (the one born first hears of the second at its birth and answers
with a birth of its own) and says so in its log, on /health and in a metric, while its own
births, rebirths included, are never taken for another's. With one agent id as well (a
Sparkplug sink only, so no MQTT status to check at start), the two take the one client id from
each other in turns: the connections that keep ending within seconds are named as such.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.sim.server import serve_tcp
from edge_agent.agent import Agent
from edge_agent.delivery import SinkRunner
from tests.integration.test_pipeline import running
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import Mosquitto, free_port
from tests.support.sparkplug_host import HostApp

pytestmark = pytest.mark.integration

GROUP = "Plant1"
NODE = "Line1-Press"


def config(tmp_path: Path, agent_id: str, port: int, device_port: int) -> Path:
    folder = tmp_path / agent_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {folder / 'outbox.db'}\n"
        f"  history_path: {folder / 'history.db'}\n  http: {{enabled: false}}\n"
        "devices:\n" + numbered_yaml("counter", device_port, 0.2) + "sinks:\n  uns:\n"
        f"    type: sparkplug\n    host: 127.0.0.1\n    port: {port}\n    group_id: {GROUP}\n"
        f"    edge_node_id: {NODE}\n    keepalive_s: 5\n"
    )
    return path


def runner(agent: Agent) -> SinkRunner:
    (only,) = agent.sinks
    return only


def conflicts(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value("edge_sink_conflicts_total", {"sink": "uns"})
    return value or 0.0


async def until(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_two_agents_with_one_edge_node_id_each_see_the_other(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "edge_agent.sinks.sparkplug.twin")
    device_port = free_port()
    server = await serve_tcp([NumberedDevice().simulated()], "127.0.0.1", device_port)
    host = HostApp(mosquitto.port, GROUP, "host-twin")
    try:
        async with running(config(tmp_path, "press-a", mosquitto.port, device_port)) as first:
            await until(lambda: runner(first).sink.connected)
            # Its own births, a rebirth asked for by a host too, are its own.
            births = host.count("NBIRTH", NODE)
            await asyncio.to_thread(host.rebirth, NODE)
            await until(lambda: host.count("NBIRTH", NODE) == births + 1)
            await asyncio.sleep(0.5)  # the echo of the rebirth is back by now
            assert runner(first).conflict is None and conflicts(first) == 0
            assert runner(first).error is None
            assert not caplog.records

            births = host.count("NBIRTH", NODE)
            async with running(config(tmp_path, "press-b", mosquitto.port, device_port)) as second:
                # The second started after the first's birth, which is not retained: it learns
                # of the first from the birth the first answers with, and answers it in turn;
                # that answer reaches a node that knows already, and the exchange ends there.
                await until(lambda: (conflicts(first), conflicts(second)) == (2, 1))
                pattern = (
                    rf"another Sparkplug edge node is born as {GROUP}/{NODE} on "
                    rf"127\.0\.0\.1:{mosquitto.port} \(last at [0-9T:.-]+Z, bdSeq 0; "
                )
                error = runner(second).conflict or ""
                assert re.search(pattern + r"once\)", error), error
                assert "Give each agent its own edge_node_id" in error
                error = runner(first).conflict or ""
                assert re.search(pattern + r"2 births since [0-9T:.-]+Z\)", error), error
                # Three births in all (the second's, the first's answer, the second's answer),
                # then none: no births back and forth.
                await asyncio.sleep(2.0)
                assert (conflicts(first), conflicts(second)) == (2, 1)
                assert host.count("NBIRTH", NODE) == births + 3
                # A rebirth a host asks for (as hosts do when seq jumps) is no news to either.
                await asyncio.to_thread(host.rebirth, NODE)
                await until(lambda: (conflicts(first), conflicts(second)) == (3, 2))
                await asyncio.sleep(1.0)
                assert host.count("NBIRTH", NODE) == births + 5
                # Logged once each, not once per birth.
                logged = [r.getMessage() for r in caplog.records]
                assert len(logged) == 2, logged
                # Both go on publishing: neither knows which of the two the plant means.
                assert runner(first).sink.connected and runner(second).sink.connected
    finally:
        host.close()
        await server.shutdown()


async def test_one_agent_id_twice_on_a_sparkplug_sink_only_is_named(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "edge_agent.sinks.mqtt.transport")
    device_port = free_port()
    server = await serve_tcp([NumberedDevice().simulated()], "127.0.0.1", device_port)
    try:
        one = config(tmp_path / "one", "press-a", mosquitto.port, device_port)
        two = config(tmp_path / "two", "press-a", mosquitto.port, device_port)
        async with running(one) as first, running(two) as second:
            both = (first, second)
            await until(lambda: any("lost 3 times" in (runner(a).conflict or "") for a in both), 30)
            troubled = [a for a in both if "lost 3 times" in (runner(a).conflict or "")]
            error = runner(troubled[0]).conflict or ""
            assert "as client id 'press-a-sparkplug' was lost 3 times in a row within seconds" in (
                error
            ), error
            assert "another client connects with the same client id" in error
            assert error in [r.getMessage() for r in caplog.records]
    finally:
        await server.shutdown()
