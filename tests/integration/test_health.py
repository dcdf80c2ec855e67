"""/health (liveness, readiness with reasons) and /metrics over the agent's real HTTP port."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from drivers.sim.server import serve_tcp
from edge_agent.cli.running import run_agent
from edge_agent.config import load_config
from tests.integration.test_pipeline import write_config
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import VictoriaMetrics, free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_health_names_what_is_wrong_and_metrics_show_the_backlog(tmp_path: Path) -> None:
    device = NumberedDevice()
    port, http_port, dead_port = free_port(), free_port(), free_port()
    server = await serve_tcp([device.simulated()], "127.0.0.1", port)
    victoria = VictoriaMetrics(free_port(), tmp_path)  # started half-way through
    path, _ = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", port, poll_interval_s=0.05)
        + numbered_yaml("gone", dead_port, poll_interval_s=0.5)  # nothing listens there
        + f"sinks:\n  influxdb: {{url: '{victoria.url}', bucket: b, org: o, flush_interval_s: 0}}\n",
    )
    path.write_text(
        path.read_text().replace("http: {enabled: false}", f"http: {{port: {http_port}}}")
    )
    base = f"http://127.0.0.1:{http_port}"
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(load_config(path), stop, banner=False))
    try:
        await asyncio.sleep(3.0)
        status, body = await asyncio.to_thread(get, f"{base}/health/live")
        assert (status, json.loads(body)) == (200, {"ok": True, "live": True, "reasons": []})

        status, body = await asyncio.to_thread(get, f"{base}/health")
        health = json.loads(body)
        assert status == 503 and health["live"] is True and not health["ok"]
        reasons = "\n".join(health["reasons"])
        assert "device gone is not answering" in reasons
        assert "sink influxdb cannot deliver: cannot reach InfluxDB" in reasons
        assert "records wait, the oldest for" in reasons

        status, text = await asyncio.to_thread(get, f"{base}/metrics")
        got = samples(text)
        sink = (("sink", "influxdb"),)
        assert status == 200
        assert got[("edge_sink_pending_records", sink)] > 30
        assert 1.5 < got[("edge_sink_oldest_pending_seconds", sink)] < 10
        assert got[("edge_sink_connected", sink)] == 0
        assert got[("edge_sink_errors_total", sink)] >= 1
        assert got[("edge_outbox_bytes", ())] > 0
        assert got[("edge_device_up", (("device", "counter"),))] == 1
        assert got[("edge_device_up", (("device", "gone"),))] == 0
        assert got[("edge_device_poll_errors_total", (("device", "gone"),))] >= 1
        assert got[("edge_device_poll_seconds_count", (("device", "counter"),))] > 30
        assert ("edge_sink_dropped_records_total", sink) in got
        assert ("edge_sink_quarantined_records_total", sink) in got

        # (flush_interval_s 0 above: a sink that gathers a second's polls is never at 0 pending
        # while a device is polled 20 times a second.)
        victoria.start()  # the database comes: the sink reason goes, the backlog drains
        for _ in range(100):
            status, text = await asyncio.to_thread(get, f"{base}/metrics")
            if samples(text)[("edge_sink_pending_records", sink)] == 0:
                break
            await asyncio.sleep(0.1)
        got = samples(text)
        assert got[("edge_sink_oldest_pending_seconds", sink)] == 0
        assert got[("edge_sink_connected", sink)] == 1
        status, body = await asyncio.to_thread(get, f"{base}/health/ready")
        assert status == 503
        assert [r for r in json.loads(body)["reasons"] if "influxdb" in r] == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await server.shutdown()
        victoria.stop()
