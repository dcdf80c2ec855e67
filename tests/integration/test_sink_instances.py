"""Several sinks of one type side by side, and the earlier `sinks: {mqtt: …, influxdb: …}` form
resuming where an agent of the previous version stopped, on a real mosquitto and VictoriaMetrics."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import uuid
from pathlib import Path

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.config import load_config
from edge_agent.web.view_model import page_state
from tests.integration.test_pipeline import on_topic, running, wait_until
from tests.support.fixed_device import FIXED_TAGS, device_yaml, fixed_image
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port

BUFFERS = Path(__file__).resolve().parents[1] / "cases" / "buffers"
T0_MS = 1_790_000_000_000  # the first record of two_sinks.db
EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}


def _config(tmp_path: Path, agent_id: str, body: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  history_path: {tmp_path / 'history.db'}\n  http: {{enabled: false}}\n" + body
    )
    return path


async def test_the_earlier_form_resumes_each_sink_at_its_cursor(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    """A buffer written by the previous version (tests/cases/buffers/make_two_sinks.py): mqtt had
    delivered seq 1-3, influxdb 1-5 of eight state records. Upgraded with its configuration
    unchanged, each sink delivers exactly the rest, under the same cursor names."""
    shutil.copy(BUFFERS / "two_sinks.db", tmp_path / "outbox.db")
    agent_id = f"up-{uuid.uuid4().hex[:8]}"
    path = _config(
        tmp_path,
        agent_id,
        "sinks:\n"
        f"  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
        f"  influxdb: {{url: '{victoria.url}', bucket: b, org: o, flush_interval_s: 0}}\n",
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#", client_id=f"cap-{agent_id}")
    try:
        async with running(path) as agent:
            assert [r.sink.name for r in agent.sinks] == ["mqtt", "influxdb"]
            got = await wait_until(
                capture, lambda ms: len(on_topic(ms, f"{root}/machines/m1/state")) >= 5
            )
            series = await asyncio.to_thread(
                victoria.wait_for,
                f'{{__name__="machine_state_state_code",agent="{agent_id}"}}',
                points=3,
            )
            while any(r.cursor < 8 for r in agent.sinks):
                await asyncio.sleep(0.05)
        states = on_topic(got, f"{root}/machines/m1/state")
        assert [s["seq"] for s in states] == [4, 5, 6, 7, 8]
        (series_of_m1,) = series
        assert series_of_m1["timestamps"] == [T0_MS + 5000, T0_MS + 6000, T0_MS + 7000]
        # The installation's id kept in the file is the one the status carries.
        status = on_topic(capture.snapshot(), f"{root}/status")
        with sqlite3.connect(tmp_path / "outbox.db") as db:
            cursors = dict(db.execute("SELECT sink, seq FROM cursors").fetchall())
            (instance,) = db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
        assert status[0]["instance"] == instance
        assert cursors == {"mqtt": 8, "influxdb": 8}
    finally:
        capture.close()


async def test_two_brokers_and_a_historian_by_their_names(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    """Two MQTT sinks (here on one broker, with their own client ids and topic roots) and an
    InfluxDB sink: every one gets every value, each with its own cursor, metrics and health."""
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    agent_id = f"two-{uuid.uuid4().hex[:8]}"
    path = _config(
        tmp_path,
        agent_id,
        "devices:\n" + device_yaml("plc", port) + "sinks:\n"
        f"  plant_broker: {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}}}\n"
        f"  cloud: {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}, "
        f"client_id: {agent_id}-cloud, topic_prefix: cloud/{agent_id}, raw_values: per_tag}}\n"
        f"  historian: {{type: influxdb, url: '{victoria.url}', bucket: b, org: o}}\n",
    )
    plant = MqttCapture(mosquitto.port, f"edge/{agent_id}/#", client_id=f"p-{agent_id}")
    cloud = MqttCapture(mosquitto.port, f"cloud/{agent_id}/#", client_id=f"c-{agent_id}")
    try:
        async with running(path) as agent:
            assert [r.sink.name for r in agent.sinks] == ["plant_broker", "cloud", "historian"]
            polls = await wait_until(
                plant, lambda ms: len(on_topic(ms, f"edge/{agent_id}/devices/plc")) >= 2
            )
            tags = await wait_until(
                cloud, lambda ms: len(on_topic(ms, f"cloud/{agent_id}/devices/plc/f64_pi")) >= 2
            )
            await asyncio.to_thread(
                victoria.wait_for, f'{{__name__="values_value",agent="{agent_id}"}}', points=2
            )
            state = await page_state(agent)
            scrape = agent.metrics.registry.get_sample_value
            delivered = {
                r.sink.name: scrape("edge_sink_delivered_records_total", {"sink": r.sink.name})
                for r in agent.sinks
            }
        assert on_topic(polls, f"edge/{agent_id}/devices/plc")[0]["values"] == EXPECTED
        pi = on_topic(tags, f"cloud/{agent_id}/devices/plc/f64_pi")[0]
        assert pi["value"] == EXPECTED["f64_pi"] and pi["quality"] == "good"
        assert [s["name"] for s in state["sinks"]] == ["plant_broker", "cloud", "historian"]
        assert all(s["connected"] and s["error"] is None for s in state["sinks"])
        assert all(count and count > 0 for count in delivered.values()), delivered
        # Each MQTT sink says online with its own status under its own root.
        for capture, root in ((plant, f"edge/{agent_id}"), (cloud, f"cloud/{agent_id}")):
            status = on_topic(capture.snapshot(), f"{root}/status")
            assert status[0]["status"] == "online" and status[-1]["status"] == "offline"
        with sqlite3.connect(tmp_path / "outbox.db") as db:
            names = {name for (name,) in db.execute("SELECT sink FROM cursors")}
        assert names == {"plant_broker", "cloud", "historian"}
    finally:
        plant.close()
        cloud.close()
        await server.shutdown()


def test_the_earlier_form_and_the_new_one_load_alike(tmp_path: Path) -> None:
    old = _config(
        tmp_path,
        "a1",
        "sinks:\n  mqtt: {host: broker, qos: 0}\n  influxdb: {url: 'http://i:8086', org: o}\n",
    )
    new = tmp_path / "new.yaml"
    new.write_text(
        old.read_text()
        .replace("mqtt: {host", "mqtt: {type: mqtt, host")
        .replace("influxdb: {url", "influxdb: {type: influxdb, url")
    )
    assert load_config(old).sinks == load_config(new).sinks
    assert json.dumps(list(load_config(old).sinks)) == '["mqtt", "influxdb"]'
