"""OEE in the live agent: published on MQTT and InfluxDB, and resumed after a restart."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice, serve_tcp
from tests.integration.test_pipeline import running, write_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port


class CountingPress:
    """Runs without stopping and makes one part per read: total and good counters keep rising."""

    def __init__(self) -> None:
        self.image = RegisterImage(size=16)
        self.image.set("coil", 0, True)
        self.parts = 0

    def refresh(self, _now_s: float) -> None:
        self.parts += 1
        self.image.set_u32("holding", 1, self.parts)
        self.image.set_u32("holding", 3, self.parts)


def config(port: int, mqtt_port: int, influx_url: str | None = None) -> str:
    influx = f"  influxdb: {{url: '{influx_url}', bucket: b, org: o}}\n" if influx_url else ""
    return (
        "devices:\n  plc:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {port}\n    poll_interval_s: 0.2\n    tags:\n"
        "      running: {table: coil, address: 0, type: bool}\n"
        "      fault: {table: holding, address: 0}\n"
        "      total: {table: holding, address: 1, type: uint32}\n"
        "      good: {table: holding, address: 3, type: uint32}\n"
        "machines:\n  m:\n    ideal_cycle_time_s: 0.1\n    oee_interval_s: 1\n"
        "    state: {running: plc.running, fault: plc.fault != 0}\n"
        "    counters: {total: plc.total, good: plc.good}\n"
        f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mqtt_port}}}\n" + influx
    )


def oee_messages(capture: MqttCapture, topic: str) -> list[dict[str, object]]:
    """Running figures and closed windows (topic and topic/closed) in arrival order."""
    return [
        json.loads(m.payload) for m in capture.snapshot() if m.topic in (topic, f"{topic}/closed")
    ]


async def test_running_oee_on_mqtt_and_influxdb(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    press = CountingPress()
    port = free_port()
    server = await serve_tcp(
        [SimulatedDevice(press.image, refresh=press.refresh)], "127.0.0.1", port
    )
    path, agent_id = write_config(tmp_path, config(port, mosquitto.port, victoria.url))
    topic = f"edge/{agent_id}/machines/m/oee/hour"
    capture = MqttCapture(mosquitto.port, topic)
    try:
        async with running(path):
            await asyncio.to_thread(capture.wait_for, lambda ms: len(ms) >= 3, 15)
        figures = oee_messages(capture, topic)
        last = figures[-1]
        assert last["final"] is False and last["window"] == "hour"
        assert last["total_count"] > 0 and last["good_count"] == last["total_count"]
        assert last["quality"] == 1.0
        assert last["run_time_s"] > 0 and last["down_time_s"] == 0
        assert all(m.retain is False for m in capture.snapshot())  # live, not replayed
        # One point per window: every running figure has the window's series and timestamp, so
        # InfluxDB overwrites it (VictoriaMetrics' raw export still lists each write).
        series = await asyncio.to_thread(
            victoria.wait_for, f'{{__name__="oee_total_count",agent="{agent_id}"}}', points=2
        )
        assert len(series) == 1 and len(set(series[0]["timestamps"])) == 1
        assert series[0]["metric"]["window"] == "hour"
    finally:
        capture.close()
        await server.shutdown()


async def test_restart_resumes_the_open_window(mosquitto: Mosquitto, tmp_path: Path) -> None:
    press = CountingPress()
    port = free_port()
    server = await serve_tcp(
        [SimulatedDevice(press.image, refresh=press.refresh)], "127.0.0.1", port
    )
    path, agent_id = write_config(tmp_path, config(port, mosquitto.port))
    topic = f"edge/{agent_id}/machines/m/oee/hour"
    capture = MqttCapture(mosquitto.port, f"{topic}/#")
    try:
        async with running(path):
            await asyncio.to_thread(capture.wait_for, lambda ms: len(ms) >= 3, 15)
        before = oee_messages(capture, topic)[-1]
        seen = len(capture.snapshot())
        async with running(path):
            await asyncio.to_thread(capture.wait_for, lambda ms: len(ms) >= seen + 2, 15)
        after = [f for f in oee_messages(capture, topic)[seen:] if f["start"] == before["start"]]
        # The same hour goes on from where it was: counts and run time keep growing.
        assert after and after[0]["total_count"] >= before["total_count"] > 0
        assert after[0]["run_time_s"] >= before["run_time_s"]
        # A quick restart adds nothing unknown (the part of the hour before the first run was).
        assert after[-1]["unknown_time_s"] < before["unknown_time_s"] + 5

        # An agent that was down for a minute: that minute is unknown, not running. Right after
        # the hour began, less: the time moved back must stay inside the hour.
        into_hour_s = time.time() - datetime.fromisoformat(before["start"]).timestamp()
        back_s = max(1, int(min(60, into_hour_s - 5)))
        db = sqlite3.connect(tmp_path / "outbox.db")
        state = json.loads(db.execute("SELECT body FROM saved_state").fetchone()[0])
        state["clock_ns"] -= back_s * 10**9
        for machine in state["machines"].values():
            machine["oee"]["clock_ns"] -= back_s * 10**9
        db.execute("UPDATE saved_state SET body = ?", (json.dumps(state),))
        db.commit()
        db.close()
        seen = len(capture.snapshot())
        async with running(path):
            await asyncio.to_thread(capture.wait_for, lambda ms: len(ms) >= seen + 2, 15)
        later = [f for f in oee_messages(capture, topic)[seen:] if f["start"] == before["start"]]
        # The hour's running figure, or its closed record if the hour ended meanwhile.
        assert later and later[-1]["unknown_time_s"] >= after[-1]["unknown_time_s"] + back_s - 5
    finally:
        capture.close()
        await server.shutdown()
