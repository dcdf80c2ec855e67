"""`edge-agent simulate --help` shows the simulator's address map, and it is the map it serves."""

from __future__ import annotations

import re
import subprocess
import sys

from drivers.sim.opcua_press import FIXED, LIVE
from drivers.sim.press import FAULTS, PRESS_REGISTERS


def test_the_help_lists_every_register_and_node_as_served() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "edge_agent", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for name, (table, address, kind) in PRESS_REGISTERS.items():
        assert re.search(rf"^  {table} {address} +{name} +{kind}\b", shown, re.M), name
    for code, text in FAULTS.items():
        assert f"{code} {text.lower()}" in " ".join(shown.split()), text
    nodes = {
        **{n: k.name for n, (_, k) in LIVE.items()},
        **{n: k.name for n, (_, k) in FIXED.items()},
    }
    for node, kind in nodes.items():
        assert re.search(rf"\b{node} [^,(]*\({kind}\)", shown), node
    assert "Broken (status BadSensorFailure)" in shown
    assert "Doubtful (status UncertainLastUsableValue)" in shown
    assert "--opcua-port 0" in shown


def test_an_opcua_port_in_use_is_one_clear_line() -> None:
    from tests.support.servers import free_port, wait_for_port

    modbus, opcua = free_port(), free_port()
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "simulate",
            "--machines",
            "1",
            "--port",
            str(modbus),
            "--opcua-port",
            str(opcua),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(opcua, 30, first)
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_agent",
                "simulate",
                "--machines",
                "1",
                "--port",
                str(free_port()),
                "--opcua-port",
                str(opcua),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        first.terminate()
        first.wait(15)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert f"port {opcua}" in second.stderr and "--opcua-port 0" in second.stderr
