"""A real agent process beside a simulated press whose temperature is over an alarm's limit.

For tests of what people do with alarms (the page, the HTTP API): `edge-agent simulate` serves
the press over Modbus TCP, `edge-agent run` polls it with its local page on a free port, and
users are added with the real `edge-agent user add` (the password at its prompt, from a pipe).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port, wait_for_port


@dataclass
class HotPress:
    port: int  # of the agent's local page
    config: Path
    log: Path


def edge_agent(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`edge-agent ARGS --config CONFIG` (user and token commands), as a person would run it."""
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def hot_press(
    tmp: Path, *, alarms: int = 1, http: str = "", users: dict[str, tuple[str, str]] | None = None
) -> Iterator[HotPress]:
    """Alarms hot, hot2, … on the press's temperature; `users`: name -> (role, password)."""
    press_port, http_port = free_port(), free_port()
    simulate = ["simulate", "--machines", "1", "--port", str(press_port), "--opcua-port", "0"]
    press = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", *simulate],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = tmp / "agent.yaml"
    ids = ["hot", *(f"hot{n}" for n in range(2, alarms + 1))]
    config.write_text(
        f"agent: {{id: hot-press, buffer_path: '{tmp / 'outbox.db'}', "
        f"access_path: '{tmp / 'access.json'}', history_path: '{tmp / 'history.db'}', "
        f"http: {{port: {http_port}{http}}}}}\n"
        "devices:\n  press:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {press_port}\n    poll_interval_s: 0.5\n    tags:\n"
        "      temp: {table: input, address: 0, type: float32}\n"
        "alarms:\n"
        + "".join(f"  - {{id: {i}, type: limit, tag: press.temp, high: 1}}\n" for i in ids)
    )
    for name, (role, password) in (users or {}).items():
        added = edge_agent(config, "user", "add", name, "--role", role, stdin=f"{password}\n" * 2)
        assert added.returncode == 0, added.stderr
    log = tmp / "agent.log"
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        wait_for_port(http_port, 20)
        yield HotPress(http_port, config, log)
    finally:
        agent.terminate()
        agent.wait(15)
        press.terminate()
        press.wait(15)
