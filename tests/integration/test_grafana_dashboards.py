"""The shipped Grafana dashboards against what the agent really writes.

A scripted press runs, jams (fault 1, "Die jam"), stands idle without a reason, runs again while
its bearing vibration and spindle temperature climb into alarms. The agent polls it over Modbus
and writes to Debian's InfluxDB 1.x (`api: v1`), while VictoriaMetrics scrapes the agent's
/metrics as Prometheus would. Then every query of every dashboard (panels, template variables and
annotations) is rendered as Grafana renders it and run: each must answer without an error and
with data. Grafana itself is not in Debian, so its rendering is stood in for by
tests/support/grafana.py; the queries, the servers and the data are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.cli.running import run_agent
from edge_agent.config import load_config
from tests.support import grafana
from tests.support.servers import InfluxDB1, VictoriaMetrics, free_port

pytestmark = pytest.mark.integration

RUN_S = 13.0
_LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")


class ScriptedPress:
    """Runs 0-3 s, jams 3-5 s (fault 1), stands idle 5-6.5 s, then runs again; vibration and
    temperature climb all along (zone D and the high temperature alarm come in the second run)."""

    def __init__(self) -> None:
        self.image = RegisterImage(size=16)
        self.t0 = time.monotonic()

    def refresh(self, _now_s: float) -> None:
        t = time.monotonic() - self.t0
        running = t < 3 or t >= 6.5
        ran_s = min(t, 3) + max(0.0, t - 6.5)
        total = int(ran_s * 4)
        image = self.image
        image.set("coil", 0, running)
        image.set_u16("holding", 0, 1 if 3 <= t < 5 else 0)
        image.set_u32("holding", 1, total)
        image.set_u32("holding", 3, total - total // 10)
        image.set_f32("input", 0, 1.0 + 0.45 * t)
        image.set_f32("input", 2, 40.0 + 4.0 * t)


def agent_yaml(tmp: Path, agent_id: str, modbus: int, http: int, influx: InfluxDB1, db: str) -> str:
    return f"""
agent:
  id: {agent_id}
  buffer_path: {tmp / "outbox.db"}
  history_path: {tmp / "history.db"}
  http: {{port: {http}}}
devices:
  press1:
    driver: modbus
    host: 127.0.0.1
    port: {modbus}
    poll_interval_s: 0.2
    tags:
      running: {{table: coil, address: 0, type: bool}}
      fault_code: {{table: holding, address: 0}}
      total_count: {{table: holding, address: 1, type: uint32}}
      good_count: {{table: holding, address: 3, type: uint32}}
      vibration_mm_s: {{table: input, address: 0, type: float32, unit: mm/s}}
      spindle_temp_c: {{table: input, address: 2, type: float32, unit: "°C"}}
calendars:
  plant:
    timezone: UTC
    shifts:
      - {{name: day, start: "08:00", end: "20:00"}}
      - {{name: night, start: "20:00", end: "08:00"}}
machines:
  press1:
    calendar: plant
    ideal_cycle_time_s: 0.2
    micro_stop_s: 0.5
    oee_interval_s: 1
    state:
      running: press1.running
      fault: press1.fault_code != 0
      reason: press1.fault_code
    counters: {{total: press1.total_count, good: press1.good_count}}
    reasons:
      1: Die jam
alarms:
  - {{id: spindle_hot, type: limit, tag: press1.spindle_temp_c, high: 80, deadband: 1,
     machine: press1, priority: high}}
  - {{id: bearing_zone, type: vibration_zone, tag: press1.vibration_mm_s, machine_group: 2,
     foundation: rigid, machine: press1}}
  - {{id: bearing_trend, type: trend, tag: press1.vibration_mm_s, limit: 7.1, window_s: 4,
     report_interval_s: 1, warn_before_s: 3600, min_r2: 0.3, machine: press1}}
sinks:
  influxdb:
    api: v1
    url: {influx.url}
    database: {db}
    username: {influx.username}
    password: {influx.password}
    flush_interval_s: 0.2
"""


@dataclass
class Run:
    agent_id: str
    influx: InfluxDB1
    database: str
    vm: VictoriaMetrics
    started_ms: int

    def range_ms(self, board: dict[str, Any]) -> tuple[int, int]:
        """The dashboard's own default range, as it opens right after the run."""
        return grafana.default_range_ms(board, int(time.time() * 1000))


async def _run_press(config: Path, port: int, press: ScriptedPress) -> None:
    server = await serve_tcp(
        [SimulatedDevice(press.image, refresh=press.refresh)], "127.0.0.1", port
    )
    stop = asyncio.Event()
    # As `edge-agent run` runs it: with the local server, whose /metrics is scraped.
    agent = asyncio.create_task(run_agent(load_config(config), stop, banner=False))
    try:
        await asyncio.sleep(RUN_S)
    finally:
        stop.set()
        await asyncio.wait_for(agent, 15)
        await server.shutdown()


@pytest.fixture(scope="module")
def filled(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("grafana")
    agent_id = f"gf-{uuid.uuid4().hex[:6]}"
    database = f"grafana_{uuid.uuid4().hex[:6]}"
    influxdb1.query(f"CREATE DATABASE {database}")
    modbus, http = free_port(), free_port()
    scrape = tmp / "scrape.yml"
    scrape.write_text(
        "scrape_configs:\n  - job_name: edge-agent\n    scrape_interval: 1s\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{http}']}}]\n"
    )
    vm = VictoriaMetrics(free_port(), tmp, scrape_config=scrape)
    vm.start()
    config = tmp / "agent.yaml"
    config.write_text(agent_yaml(tmp, agent_id, modbus, http, influxdb1, database))
    started_ms = int(time.time() * 1000)
    try:
        asyncio.run(_run_press(config, modbus, ScriptedPress()))
        urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=10).close()
        yield Run(agent_id, influxdb1, database, vm, started_ms)
    finally:
        vm.stop()


def _influxql(run: Run, q: str) -> list[dict[str, Any]]:
    return run.influx.query(q, db=run.database)  # raises with the server's error


def _promql_range(run: Run, expr: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode(
        {"query": expr, "start": run.started_ms / 1000 - 60, "end": time.time(), "step": "1s"}
    )
    with urllib.request.urlopen(f"{run.vm.url}/api/v1/query_range?{params}", timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _label_values(run: Run, query: str) -> list[str]:
    metric, label = _LABEL_VALUES.fullmatch(query).groups()  # type: ignore[union-attr]
    params = urllib.parse.urlencode({"match[]": metric, "start": run.started_ms / 1000 - 60})
    with urllib.request.urlopen(f"{run.vm.url}/api/v1/label/{label}/values?{params}") as r:
        return list(json.loads(r.read())["data"])


def _resolve(run: Run, board: dict[str, Any]) -> dict[str, list[str]]:
    """Every template variable in order, each query run with the ones before it filled in."""
    selected: dict[str, list[str]] = {"datasource": ["unused-in-queries"]}
    macros = grafana.influx_macros(*run.range_ms(board), "1s")
    for variable in grafana.template_variables(board):
        query = grafana.variable_query(variable)
        if variable["datasource"]["type"] == "prometheus":
            found = _label_values(run, query)
        else:
            text = grafana.render(query, selected, macros, grafana.influx_escape)
            found = [row[1] for s in _influxql(run, text) for row in s["values"]]
        chosen = grafana.pick(variable, found)
        assert chosen, f"variable ${variable['name']} ({query}) offers nothing to choose"
        selected[variable["name"]] = chosen
    return selected


def _has_number(series: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for s in series
        for row in s["values"]
        for v in row[1:]
    )


@pytest.mark.parametrize("name", ["oee-overview", "machine-detail", "alarms"])
def test_every_influxql_query_answers_with_data(filled: Run, name: str) -> None:
    board = grafana.dashboards()[name]
    selected = _resolve(filled, board)
    assert selected["agent"] == [filled.agent_id]
    macros = grafana.influx_macros(*filled.range_ms(board), "1s")
    empty = []
    for query in grafana.queries(board):
        text = grafana.render(query.text, selected, macros, grafana.influx_escape)
        series = _influxql(filled, text)
        if not series or not any(s["values"] for s in series):
            empty.append(f"{query.where}: {text}")
        elif query.where.startswith("panel") and not _has_number(series):
            empty.append(f"{query.where} has rows but no number: {series}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_the_figures_are_the_press_s(filled: Run) -> None:
    """Not only some data: the panels show what happened, by the dashboards' own queries."""
    board = grafana.dashboards()["machine-detail"]
    selected = _resolve(filled, board)
    macros = grafana.influx_macros(*filled.range_ms(board), "1s")
    by_title = {p["title"]: p for p in board["panels"]}

    def run(title: str) -> list[dict[str, Any]]:
        query = by_title[title]["targets"][0]["query"]
        return _influxql(filled, grafana.render(query, selected, macros, grafana.influx_escape))

    states = [row[1] for s in run("State · 设备状态") for row in s["values"]]
    changes = [b for a, b in zip([None, *states], states, strict=False) if a != b]
    # running, down (the jam), idle, running; unknown first while the first poll is awaited
    assert changes in ([1, 3, 2, 1], [0, 1, 3, 2, 1]), states
    lost = {s["tags"]["reason"]: s["values"][0][1] for s in run("Downtime by reason · 停机原因")}
    assert lost.keys() == {"Die jam", "unclassified"}, lost
    assert 1.5 <= lost["Die jam"] <= 2.6 and 1.0 <= lost["unclassified"] <= 2.1, lost
    stops = run("Stops · 停机记录")[0]
    reasons = [row[stops["columns"].index("reason")] for row in stops["values"]]
    assert sorted(reasons) == ["Die jam", "unclassified"]
    assert selected["vibration"] == ["vibration_mm_s"]
    assert selected["temperature"] == ["spindle_temp_c"]
    alarms = grafana.dashboards()["alarms"]
    active = next(p for p in alarms["panels"] if p["title"].startswith("Active alarms"))
    text = grafana.render(
        active["targets"][0]["query"], _resolve(filled, alarms), macros, grafana.influx_escape
    )
    rows = _influxql(filled, text)[0]
    ids = {row[rows["columns"].index("id")] for row in rows["values"]}
    assert {"spindle_hot", "bearing_zone"} <= ids, rows


def test_every_prometheus_query_answers_with_data(filled: Run) -> None:
    board = grafana.dashboards()["agent-health"]
    selected = _resolve(filled, board)
    macros = {"$__rate_interval": "4s", "$__interval": "1s"}
    empty = []
    for query in grafana.queries(board):
        assert query.language == "promql"
        expr = grafana.render(query.text, selected, macros, grafana.prom_escape)
        result = _promql_range(filled, expr)
        if not any(r["values"] for r in result):
            empty.append(f"{query.where}: {expr}")
        if query.where.split("'")[1].startswith("Polls per second"):
            # press1 is polled every 0.2 s: the panel must say about 5 polls a second
            rates = sorted(float(v) for r in result for _t, v in r["values"])
            assert 4 <= rates[len(rates) // 2] <= 6, rates
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_dashboards_and_provisioning_fit_together() -> None:
    yaml = YAML(typ="safe")
    sources = yaml.load(grafana.GRAFANA / "provisioning/datasources/edge-agent.yaml")
    providers = yaml.load(grafana.GRAFANA / "provisioning/dashboards/edge-agent.yaml")
    assert sources["apiVersion"] == 1 and providers["apiVersion"] == 1
    uids = {s["uid"]: s["type"] for s in sources["datasources"]}
    assert uids == {"edge-influxdb": "influxdb", "edge-prometheus": "prometheus"}
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/edge-agent"
    boards = grafana.dashboards()
    assert set(boards) == {"oee-overview", "machine-detail", "alarms", "agent-health"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        choice = board["templating"]["list"][0]
        # Imported by hand into a Grafana whose data source has another uid, a dashboard still
        # works: its panels use the data source the person picks, provisioned or not.
        assert (
            choice["type"] == "datasource" and uids[choice["current"]["value"]] == choice["query"]
        )
        kind = choice["query"]
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": kind, "uid": "${datasource}"}, (name, panel)
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                text = target.get("query") or target["expr"]
                if kind == "influxdb":
                    assert target["rawQuery"] and "$timeFilter" in text, (name, panel["title"])
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
        # Titles read in English and in Chinese, as the plant's people write them.
        for title in [board["title"]] + [p["title"] for p in board["panels"]]:
            assert " · " in title and any("\u4e00" <= c <= "\u9fff" for c in title), title
