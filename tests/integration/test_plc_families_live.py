"""Siemens S7, Mitsubishi MC and Omron FINS through the whole agent: `edge-agent simulate` serves a
press over each (as its --help says), one agent reads all three and publishes their values and
their machines' states on a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

from drivers.fins.sim import PRESS_MAP as FINS_MAP
from drivers.mc.sim import PRESS_MAP as MC_MAP
from drivers.s7.sim import PRESS_TAGS as S7_TAGS
from tests.integration.test_pipeline import running, write_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, free_port, wait_for_port

TAGS = {
    "s7": {
        "running": "{address: DB1.DBX0.0}",
        "fault_code": "{address: DB1.DBW2}",
        "total_count": "{address: DB1.DBD4, type: dint}",
        "good_count": "{address: DB1.DBD8, type: dint}",
        "spindle_temp_c": "{address: DB1.DBD12, type: real, unit: '°C'}",
        "fault_text": "{address: DB1.DBB22, type: string, length: 32}",
    },
    "mc": {
        "running": "{address: M0}",
        "fault_code": "{address: D0, type: uint16}",
        "total_count": "{address: D2, type: uint32}",
        "good_count": "{address: D4, type: uint32}",
        "spindle_temp_c": "{address: D10, type: float32, unit: '°C'}",
    },
    "fins": {
        "running": "{address: CIO0.00}",
        "fault_code": "{address: D0, type: uint16}",
        "total_count": "{address: D2, type: uint32}",
        "good_count": "{address: D4, type: uint32}",
        "spindle_temp_c": "{address: D10, type: float32, unit: '°C'}",
    },
}


def help_text() -> str:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_the_help_lists_every_address_the_s7_mc_and_fins_presses_serve() -> None:
    shown = " ".join(help_text().split())
    served = [spec["address"] for spec in S7_TAGS.values()]
    served += [address for address, _kind in MC_MAP.values()]
    served += [address for address, _kind in FINS_MAP.values()]
    missing = [a for a in served if not re.search(rf"(?<![\w.]){re.escape(a)}(?![\w.])", shown)]
    assert not missing, missing
    for flag in ("--s7-port", "--mc-port", "--fins-port"):
        assert flag in shown


async def test_one_agent_reads_an_s7_an_mc_and_a_fins_press(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ports = {"modbus": free_port(), "s7": free_port(), "mc": free_port(), "fins": free_port()}
    simulator = subprocess.Popen(
        [
            sys.executable, "-m", "edge_agent", "simulate", "--machines", "1",
            "--port", str(ports["modbus"]), "--opcua-port", "0",
            "--s7-port", str(ports["s7"]), "--mc-port", str(ports["mc"]),
            "--fins-port", str(ports["fins"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        for protocol in ("s7", "mc", "fins"):
            wait_for_port(ports[protocol], 20, proc=simulator)
        devices, machines = "devices:\n", "machines:\n"
        for protocol, tags in TAGS.items():
            devices += (
                f"  {protocol}_press:\n    driver: {protocol}\n    host: 127.0.0.1\n"
                f"    port: {ports[protocol]}\n    poll_interval_s: 0.2\n    tags:\n"
                + "".join(f"      {name}: {spec}\n" for name, spec in tags.items())
            )
            machines += (
                f"  {protocol}_line:\n    ideal_cycle_time_s: 1\n"
                f"    state: {{running: {protocol}_press.running, "
                f"fault: {protocol}_press.fault_code != 0}}\n"
                f"    counters: {{total: {protocol}_press.total_count, "
                f"good: {protocol}_press.good_count}}\n"
            )
        path, agent_id = write_config(
            tmp_path,
            devices + machines + f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n",
        )
        capture = MqttCapture(mosquitto.port, f"edge/{agent_id}/#")
        try:
            async with running(path):
                topics = [f"edge/{agent_id}/devices/{p}_press" for p in TAGS] + [
                    f"edge/{agent_id}/machines/{p}_line/state" for p in TAGS
                ]
                got = await asyncio.to_thread(
                    capture.wait_for,
                    lambda ms: all(
                        sum(m.topic == t for m in ms) >= (3 if "/devices/" in t else 1)
                        for t in topics
                    ),
                    20,
                )
        finally:
            capture.close()
        for protocol, tags in TAGS.items():
            polls = [
                json.loads(m.payload)
                for m in got
                if m.topic == f"edge/{agent_id}/devices/{protocol}_press"
            ]
            last = polls[-1]
            assert set(last["values"]) == set(tags) and "quality" not in last, last
            assert 10 < last["values"]["spindle_temp_c"] < 120  # the press's spindle, in °C
            assert last["values"]["good_count"] <= last["values"]["total_count"]
            assert isinstance(last["values"]["running"], bool)
            state = [
                json.loads(m.payload)
                for m in got
                if m.topic == f"edge/{agent_id}/machines/{protocol}_line/state"
            ][-1]
            assert state["state"] in ("running", "idle", "down"), state
        s7 = [json.loads(m.payload) for m in got if m.topic.endswith("/devices/s7_press")][-1]
        assert isinstance(s7["values"]["fault_text"], str)
    finally:
        simulator.terminate()
        simulator.wait(10)
