"""An operator classifies yesterday's stop over HTTP on the running agent: the corrected windows go
out to a real mosquitto with the time stamps they were first published with, and a viewer is
refused. The agent is wired as `edge-agent run` wires it (local page, history, sinks)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.access import AccessStore
from edge_agent.access.roles import Role
from edge_agent.cli.running import run_agent
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.history import HistoryStore
from tests.integration.test_pipeline import on_topic, wait_until
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, free_port
from tests.unit.test_stop_reasons import S, run_machine
from tests.unit.test_stop_reasons import config as stop_reasons_config

HOUR_NS = 3600 * S


def post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_a_reason_given_over_http_republishes_the_windows(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plc_port, http_port = free_port(), free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", plc_port)
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"agent:\n  id: reasons\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  history_path: {tmp_path / 'history.db'}\n  access_path: {tmp_path / 'access.json'}\n"
        f"  http: {{port: {http_port}}}\n"
        f"devices:\n{device_yaml('plc', plc_port, poll_interval_s=0.5)}"
        "machines:\n  press1:\n    calendar: plant\n    ideal_cycle_time_s: 1\n"
        "    state: {running: plc.bit0}\n"
        "    reasons: {6: {text: 待料, category: material}}\n"
        "calendars:\n  plant:\n    timezone: Asia/Shanghai\n    shifts:\n"
        "      - {name: day, start: '08:00', end: '20:00', breaks: [{start: '12:00', end: '13:00'}]}\n"
        "      - {name: night, start: '20:00', end: '08:00'}\n"
        f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
    )
    config = load_config(path)
    access = AccessStore(config.agent.access_path)
    operator = access.create_token("line_terminal", Role.OPERATOR)
    viewer = access.create_token("wall_screen", Role.VIEWER)

    # Yesterday from 08:00 in Shanghai, as an agent with the same calendar recorded it: an idle
    # stop 08:20-08:35 that nobody gave a reason.
    day = (time.time_ns() // (24 * HOUR_NS) - 1) * 24 * HOUR_NS
    offline = ComputeEngine(stop_reasons_config(tmp_path))
    records = run_machine(offline, day, 90, {20: (False, 0), 35: (True, 0)})
    history = HistoryStore(config.agent.history_path)
    await history.open()
    history.extend(records)
    await history.close()
    first = next(
        r
        for r in records
        if r.kind == "oee"
        and r.body["final"]
        and r.body["window"] == "hour"
        and r.body["start"] == _iso_ms(day)
    )
    assert first.body["losses_by_reason_s"] == {"unclassified": 900.0}

    capture = MqttCapture(mosquitto.port, "edge/reasons/machines/#")
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, banner=False))
    try:
        base = f"http://127.0.0.1:{http_port}"
        await _until_up(base, task)
        stops = await asyncio.to_thread(
            _get,
            f"{base}/api/history/stops?machine=press1"
            f"&from={_iso(day)}&to={_iso(day + 2 * HOUR_NS)}",
            viewer,
        )
        idle = stops["stops"][0]
        assert (idle["state"], idle["classified_by"]) == ("idle", None)
        url = f"{base}/api/history/stops/{idle['id']}/reason"

        status, reply = await asyncio.to_thread(post, url, viewer, {"code": "6"})
        assert status == 403 and "needs operator" in reply["error"]
        status, reply = await asyncio.to_thread(post, url, operator, {"code": "6"})
        assert status == 200, reply
        assert reply["stop"]["classified_by"] == "token:line_terminal"

        topic = "edge/reasons/machines/press1/oee/hour/corrected"
        got = await wait_until(capture, lambda m: bool(on_topic(m, topic)))
        corrected = on_topic(got, topic)[0]
        assert corrected["start"] == first.body["start"]
        assert corrected["losses_by_reason_s"] == {"unclassified": 0.0, "待料": 900.0}
        assert corrected["ts"] == _iso_ms(first.ts_ns)  # its first time stamp, not now
        assert corrected["oee"] == first.body["oee"]
        downtime = on_topic(got, "edge/reasons/machines/press1/downtime")
        assert [d["classified_by"] for d in downtime] == ["token:line_terminal"]
        # Nothing corrected went out on /closed, where it would replace a later window.
        assert not on_topic(got, "edge/reasons/machines/press1/oee/hour/closed")
        after = await asyncio.to_thread(
            _get,
            f"{base}/api/history/oee?machine=press1&window=hour"
            f"&from={_iso(day)}&to={_iso(day + HOUR_NS)}",
            viewer,
        )
        assert after["windows"][0]["losses_by_reason_s"]["待料"] == 900.0
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        capture.close()
        await server.shutdown()


def _get(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


async def _until_up(base: str, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert not task.done(), "the agent stopped"
        try:
            await asyncio.to_thread(urllib.request.urlopen, f"{base}/health/live", timeout=1)
            return
        except (urllib.error.URLError, ConnectionError):
            await asyncio.sleep(0.1)
    raise AssertionError("the local page did not come up")


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ns // S))


def _iso_ms(ns: int) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // S)) + f".{ns // 1_000_000 % 1000:03d}Z"
    )
