"""An independent FINS client (npm omron-fins 0.5.0, MIT) against our simulated PLC.

No independent FINS server could be had (npm and PyPI offer clients only), so the driver is tested
against our own simulator (test_fins_driver.py). These tests show that the simulator speaks FINS
as another implementation understands it, over UDP and over TCP with its node address exchange,
and that the driver encodes each address as that implementation does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator

import pytest

from drivers.fins import FinsDeviceConfig
from drivers.fins.driver import FinsDriver
from drivers.fins.sim import FinsServer
from tests.support.fins_fixed import WORDS, fixed_memory
from tests.support.servers import PEERS

TRANSPORTS = pytest.mark.parametrize("transport", ["udp", "tcp"])


@pytest.fixture
async def plc() -> AsyncIterator[FinsServer]:
    server = FinsServer(fixed_memory(), node=1)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def omron_fins(transport: str, port: int, commands: list[list[object]]) -> list[dict]:
    """Run the npm client; one result per command, in order."""
    node = shutil.which("node")
    if node is None or not (PEERS / "node_modules" / "omron-fins").exists():
        raise RuntimeError("node or npm omron-fins is missing: run 'make test' (it installs them)")
    process = await asyncio.create_subprocess_exec(
        node,
        str(PEERS / "fins_client.js"),
        transport,
        str(port),
        "1",
        json.dumps(commands),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    results: list[dict] = json.loads(out)
    assert len(results) == len(commands)
    assert all(r["error"] is None and not r["timeout"] for r in results), results
    return results


def hex_words(values: list[int]) -> str:
    return "".join(f"{v:04x}" for v in values)


@TRANSPORTS
async def test_the_independent_client_reads_the_simulator(plc: FinsServer, transport: str) -> None:
    port = plc.udp_port if transport == "udp" else plc.tcp_port
    results = await omron_fins(
        transport,
        port,
        [
            ["read", "D0", 10],
            ["read", "E0_100", 2],
            ["read", "CIO0.00", 3],  # bit access (area code 30): one byte per bit
            ["read", "T5", 1],
            ["read", "C7", 1],
            ["readMultiple", "D0,CIO0.01,W20.15,H6"],
            ["read", "A1000", 1],
            ["read", "E5_0", 1],
            ["write", "D0", [1]],
        ],
    )
    assert [r["endCode"] for r in results] == ["0000"] * 6 + ["1103", "1101", "2101"]
    assert results[0]["hex"] == hex_words(WORDS["D0"])
    assert results[1]["hex"] == hex_words(WORDS["E0_100"])
    assert results[2]["values"] == [1, 0, 1]
    assert results[3]["hex"] == "0150" and results[4]["hex"] == "0042"
    assert results[5]["values"] == [-1234, 0, 1, -1]
    assert [r.code for r in plc.served][-1] == 0x0102  # the write reached the PLC and was refused


async def test_the_driver_encodes_addresses_as_the_independent_client(plc: FinsServer) -> None:
    addresses = ["D100", "CIO10", "W20", "H5", "A100", "E0_100", "EC_5", "T5", "C7"]
    await omron_fins("udp", plc.udp_port, [["read", a, 1] for a in addresses])
    theirs = {(r.area_code, r.first) for r in plc.served}
    plc.served.clear()
    config = FinsDeviceConfig.model_validate(
        {
            "driver": "fins",
            "host": "127.0.0.1",
            "port": plc.udp_port,
            "tags": {f"t{i}": {"address": a} for i, a in enumerate(addresses)},
        }
    )
    driver = FinsDriver("plc", config)
    try:
        await driver.read()
    finally:
        await driver.close()
    ours = {(r.area_code, r.first) for r in plc.served}
    assert ours == theirs
    assert len(ours) == len(addresses)
