"""Memory stays flat over many reconnects: 100 connect/read/close cycles grow RSS by under 5 %."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from pathlib import Path

from drivers.opcua.config import OpcUaDeviceConfig
from drivers.opcua.driver import OpcUaDriver
from tests.support.servers import free_port, wait_for_port

SERVE = (
    "import asyncio, sys\n"
    "from drivers.sim.opcua_press import serve_opcua_press\n"
    "async def main():\n"
    "    await serve_opcua_press(port=int(sys.argv[1]))\n"
    "    await asyncio.Event().wait()\n"
    "asyncio.run(main())\n"
)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def test_hundred_reconnect_cycles_keep_memory_flat(tmp_path: Path) -> None:
    port = free_port()
    # The server runs in its own process, so only the client side is measured here.
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)], cwd=Path(__file__).resolve().parents[2]
    )
    try:
        wait_for_port(port, 30, proc=server)
        time.sleep(0.5)
        config = OpcUaDeviceConfig.model_validate(
            {
                "driver": "opcua",
                "url": f"opc.tcp://127.0.0.1:{port}/edge-agent/sim",
                "security": "none",
                "mode": "subscribe",
                "tags": {
                    "temp": {"node": "nsu=urn:edge-agent:sim;s=Press.Temperature", "mode": "poll"},
                    "total": {"node": "nsu=urn:edge-agent:sim;s=Press.TotalCount"},
                },
            }
        )
        driver = OpcUaDriver("p", config, agent_id="t", pki=tmp_path)
        driver.listener = lambda *_: None

        async def cycle() -> None:
            reading = await driver.read()  # connects, subscribes, reads everything once
            assert reading.values["temp"] == 71.25
            await driver.close()

        for _ in range(20):  # warm-up: imports, caches, first allocations
            await cycle()
        gc.collect()
        before = rss_kib()
        for _ in range(100):
            await cycle()
        gc.collect()
        after = rss_kib()
        assert after < before * 1.05, (
            f"RSS grew from {before} KiB to {after} KiB over 100 reconnects"
        )
    finally:
        server.terminate()
        server.wait(10)
