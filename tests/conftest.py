"""Fixtures that start real servers on free loopback ports (see tests/support/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import (
    InfluxDB1,
    Mosquitto,
    NodeModbusPeer,
    NodeOpcUaPeer,
    VictoriaMetrics,
    free_port,
)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(free_port(), tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(free_port(), tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    server = InfluxDB1(free_port(), tmp_path_factory.mktemp("influxdb1"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def modbus_peer() -> Iterator[NodeModbusPeer]:
    peer = NodeModbusPeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def opcua_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeOpcUaPeer]:
    peer = NodeOpcUaPeer(tmp_path_factory.mktemp("opcua-peer"))
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
