"""MC protocol driver benchmark: polls per second against our simulator in another process.

    .venv/bin/python -m tests.bench.bench_mc [--seconds 3] [--repeat 3]

A script, not a test: it prints figures and asserts nothing about speed. The simulator
(drivers/mc/sim.py) runs in a child process on a free loopback port, so the figures are the
driver's side of the wire plus one loopback round trip per request. A real PLC answers a request
at the end of a scan (milliseconds), so against hardware requests per poll matter far more than
these figures: they are printed with each case.

Cases:
  960 words       960 int16 tags D0-D959: one batch read
  mixed           the test memory's 29 tags of every type on 13 devices
  press           the simulated press's map (PRESS_MAP): X0, M0, D0-D14
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

from drivers.mc import McDeviceConfig
from drivers.mc.driver import McDriver
from drivers.mc.sim import PRESS_MAP, McSimulator
from tests.bench.common import die_with_parent, stop_process
from tests.support.mc_fixed import TAGS, memory
from tests.support.servers import free_port, wait_for_port


def _cases() -> dict[str, dict[str, Any]]:
    press = {name: {"address": a, "type": t} for name, (a, t) in PRESS_MAP.items()}
    spread = {f"d{i}": {"address": f"D{i}"} for i in range(0, 1000, 10)}
    return {
        "960 words": {"tags": {f"d{i}": {"address": f"D{i}"} for i in range(960)}},
        "mixed": {"tags": TAGS},
        "press": {"tags": press},
        "press, no gaps": {"tags": press, "max_gap_words": 0},
        "1 tag/request": {"tags": spread, "max_gap_words": 0},
    }


async def _poll_rate(port: int, spec: dict[str, Any], seconds: float) -> tuple[float, int, int]:
    config = McDeviceConfig.model_validate(
        {"driver": "mc", "host": "127.0.0.1", "port": port, **spec}
    )
    driver = McDriver("bench", config)
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
    simulator = McSimulator(memory())
    await simulator.start(port=port)
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
        [sys.executable, "-m", "tests.bench.bench_mc", "--serve", str(port)],
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, proc=server)
        print(f"{'case':<16} {'tags':>5} {'requests':>8} {'polls/s':>9} {'values/s':>10}")
        for name, spec in _cases().items():
            rates = []
            for _ in range(args.repeat):
                rate, tags, requests = asyncio.run(_poll_rate(port, spec, args.seconds))
                rates.append(rate)
            rate = statistics.median(rates)
            print(f"{name:<16} {tags:>5} {requests:>8} {rate:>9.0f} {rate * tags:>10.0f}")
    finally:
        stop_process(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
