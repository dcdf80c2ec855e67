"""FINS driver benchmark: polls per second over UDP and TCP against our simulator in another process.

    .venv/bin/python -m tests.bench.bench_fins [--seconds 3] [--repeat 3]

A script, not a test: it prints figures and asserts nothing about speed. The simulated PLC
(drivers/fins/sim.py) runs in a child process on a free loopback port, so the figures are the
driver's side of the wire plus one loopback round trip per request. A real PLC's Ethernet unit
answers within milliseconds, so against hardware the number of requests per poll matters far more
than these figures: it is printed with each case.

Cases:
  999 words       999 int16 tags D0-D998: one memory area read
  mixed           the test memory's 24 tags of every type in 8 areas
  press           the simulated press's map (PRESS_MAP): CIO0, D0-D14, C0
  press, no gaps  the same with max_gap_words 0
  1 tag/request   100 int16 tags D0, D10, ..., D990 with max_gap_words 0 (how an unmerged
                  driver would poll them)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from drivers.fins import FinsDeviceConfig
from drivers.fins.driver import FinsDriver
from drivers.fins.sim import PRESS_MAP, FinsServer
from tests.bench.common import die_with_parent, stop_process
from tests.support.fins_fixed import FIXED_TAGS, fixed_memory
from tests.support.servers import free_port, wait_for_port


def _cases() -> dict[str, dict[str, Any]]:
    press = {name: {"address": a, "type": t} for name, (a, t) in PRESS_MAP.items()}
    spread = {f"d{i}": {"address": f"D{i}"} for i in range(0, 1000, 10)}
    return {
        "999 words": {"tags": {f"d{i}": {"address": f"D{i}"} for i in range(999)}},
        "mixed": {"tags": {name: spec for name, (spec, _) in FIXED_TAGS.items()}},
        "press": {"tags": press},
        "press, no gaps": {"tags": press, "max_gap_words": 0},
        "1 tag/request": {"tags": spread, "max_gap_words": 0},
    }


async def _poll_rate(
    port: int, transport: str, spec: dict[str, Any], seconds: float
) -> tuple[float, int, int]:
    config = FinsDeviceConfig.model_validate(
        {"driver": "fins", "host": "127.0.0.1", "port": port, "transport": transport, **spec}
    )
    driver = FinsDriver("bench", config)
    await driver.connect()
    polls, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        reading = await driver.read()
        assert not reading.failed, reading.failed
        polls += 1
    elapsed = time.perf_counter() - started
    await driver.close()
    return polls / elapsed, len(config.tags), len(driver.requests)


async def _serve(port: int) -> None:
    server = FinsServer(fixed_memory())
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_fins", "--serve", str(port)],
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, proc=server)
        print(
            f"{'case':<16} {'via':<4} {'tags':>5} {'requests':>8} {'polls/s':>9} {'values/s':>10}"
        )
        for name, spec in _cases().items():
            for transport in ("udp", "tcp"):
                rates = []
                for _ in range(args.repeat):
                    rate, tags, requests = asyncio.run(
                        _poll_rate(port, transport, spec, args.seconds)
                    )
                    rates.append(rate)
                rate = statistics.median(rates)
                print(
                    f"{name:<16} {transport:<4} {tags:>5} {requests:>8} {rate:>9.0f} "
                    f"{rate * tags:>10.0f}"
                )
    finally:
        stop_process(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
