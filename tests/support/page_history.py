"""A real agent with two weeks of history behind it, for the page's tests in a browser.

A Chinese plant: 冲床 P201 works two shifts (白班, 夜班) in Asia/Shanghai, 折弯机 B3 has no
calendar (hourly OEE). Their history is made by the real compute core (ComputeEngine) from
samples of a seeded press model: running spells with counts and rejects, faults the PLC names,
idle stops nobody gave a reason for, faults with a code no reason is configured for, spells with
the link down. The records go into the agent's history file through HistoryStore, and the
engine's state into its buffer as the agent saves it, so `edge-agent run` resumes as after a
stop of a while: the time since the history ends is no-data time. The first two days are marked
as simulated (demo data). Then a simulated press (`edge-agent simulate`) is polled live.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import subprocess
import sys
import time as clock
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_agent import strict_json
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.config_models import AgentFile
from edge_agent.history import HistoryStore
from edge_agent.outbox import Outbox
from edge_agent.records import Record
from edge_agent.samples import Quality, SampleBatch, Value
from edge_agent.timefmt import iso_utc
from tests.support.hot_press import edge_agent
from tests.support.servers import free_port, wait_for_port

NS = 1_000_000_000
ZONE = ZoneInfo("Asia/Shanghai")
DAYS = 14
GAP_S = 40 * 60  # the agent was stopped this long before the test starts it
SIMULATED_DAYS = 2  # the oldest days are demo data
COUNT_EVERY_S = 60  # how often the model's counters are read while it runs
STATE_TAGS = ("running", "fault_code", "total_count", "good_count")

CONFIG = """\
agent:
  id: plant-p2
  language: zh-CN
  buffer_path: '{tmp}/outbox.db'
  access_path: '{tmp}/access.json'
  history_path: '{tmp}/history.db'
  http: {{port: {http_port}, open_read: login}}
devices:
  press:
    display_name: 冲床 P201 控制器
    driver: modbus
    host: 127.0.0.1
    port: {press_port}
    poll_interval_s: 0.5
    tags: &tags
      running: {{display_name: 运行信号, table: coil, address: 0, type: bool}}
      fault_code: {{display_name: 故障代码, table: holding, address: 0, type: uint16}}
      total_count: {{display_name: 总产量, table: holding, address: 2, type: uint32}}
      good_count: {{display_name: 良品数, table: holding, address: 4, type: uint32}}
      spindle_temp_c:
        {{display_name: 主轴温度, table: input, address: 0, type: float32, unit: "°C"}}
      vibration_mm_s:
        {{display_name: 振动速度, table: input, address: 2, type: float32, unit: mm/s}}
  bender:
    display_name: 折弯机 B3 控制器
    driver: modbus
    host: 127.0.0.1
    port: {bender_port}
    poll_interval_s: 0.5
    tags: *tags
calendars:
  plant:
    timezone: Asia/Shanghai
    shifts:
      - name: day
        display_name: 白班
        start: "08:00"
        end: "20:00"
        breaks: [{{start: "12:00", end: "13:00", name: 午休}}]
      - {{name: night, display_name: 夜班, start: "20:00", end: "08:00"}}
machines:
  p201:
    display_name: 冲床 P201
    calendar: plant
    ideal_cycle_time_s: 1.0
    micro_stop_s: 60
    oee_interval_s: 5
    state: {{running: press.running, fault: press.fault_code != 0, reason: press.fault_code}}
    counters: {{total: press.total_count, good: press.good_count}}
    reasons: &reasons
      1: 卡模
      2: {{text: 送料故障, category: material}}
      3: 液压压力低
      4: 安全门打开
      5: 主轴承过载
      11: {{text: 换模, category: setup}}
      12: {{text: 待料, category: material}}
      13: {{text: 人员离岗, category: operator}}
      14: {{text: 首件检验, category: quality}}
  b3:
    display_name: 折弯机 B3
    ideal_cycle_time_s: 1.0
    micro_stop_s: 60
    oee_interval_s: 5
    state: {{running: bender.running, fault: bender.fault_code != 0, reason: bender.fault_code}}
    counters: {{total: bender.total_count, good: bender.good_count}}
    reasons: *reasons
alarms:
{alarms}
"""
# Spindle temperature over a limit of 1 °C: active from the first poll, one to acknowledge (or
# shelve) in each test that needs one.
HOT_ALARMS = 5
VIBRATION_ALARM = (
    "  - {id: p201_vibration, display_name: 主轴承振动, type: vibration_zone, "
    "tag: press.vibration_mm_s, machine: p201, machine_group: 2, foundation: rigid, "
    "message: 主轴承振动偏大（ISO 10816-3）}\n"
)


def _alarms() -> str:
    lines = [
        f"  - {{id: p201_hot{n}, display_name: 主轴温度偏高 {n}, type: limit, "
        f"tag: press.spindle_temp_c, machine: p201, high: 1, priority: high, "
        f"message: 主轴温度超过上限，请检查冷却水}}\n"
        for n in range(1, HOT_ALARMS + 1)
    ]
    return "".join(lines) + VIBRATION_ALARM


@dataclass
class Plant:
    url: str  # of the agent's local page
    config_path: Path
    config: AgentFile
    log: Path
    history_from_ns: int
    history_to_ns: int


# ------------------------------------------------------------------------------ the press model


def _spells(rng: random.Random) -> Iterator[tuple[str, float, int]]:
    """(what, seconds, fault code) for ever: running spells between stops of every kind."""
    while True:
        yield "run", rng.uniform(900, 3000), 0
        roll = rng.random()
        if roll < 0.30:
            yield "idle", rng.uniform(10, 50), 0  # a micro-stop: short enough to count as run
        elif roll < 0.62:
            yield "fault", rng.uniform(240, 1500), rng.choice((1, 1, 2, 3, 4, 5, 11))
        elif roll < 0.88:
            yield "idle", rng.uniform(300, 1500), 0  # no reason: an operator must give one
        elif roll < 0.96:
            yield "fault", rng.uniform(300, 900), 9  # a code no reason is configured for
        else:
            yield "dark", rng.uniform(1200, 3600), 0  # the link is down: no data


def press_batches(device: str, seed: int, start_ns: int, end_ns: int) -> Iterator[SampleBatch]:
    """What polling the model's PLC would have seen, at every change and every few minutes."""
    rng = random.Random(seed)
    total = good = 0.0
    t = start_ns
    for what, seconds, code in _spells(rng):
        until = min(end_ns, t + int(seconds * NS))
        if what == "dark":
            yield SampleBatch(
                device, t, dict.fromkeys(STATE_TAGS), dict.fromkeys(STATE_TAGS, Quality.BAD)
            )
            t = until
        else:
            step = COUNT_EVERY_S * NS if what == "run" else until - t
            while t < until:
                values: dict[str, Value] = {
                    "running": what == "run",
                    "fault_code": code,
                    "total_count": int(total),
                    "good_count": int(good),
                }
                yield SampleBatch(device, t, values, {})
                spent = min(step, until - t)
                if what == "run":
                    made = spent / NS / rng.uniform(1.08, 1.25)
                    total += made
                    good += made * rng.uniform(0.95, 0.995)
                t += spent
        if t >= end_ns:
            return


# ------------------------------------------------------------------------------ the history


def history_span(now: datetime) -> tuple[int, int]:
    """From the day shift's start 13 days ago (Shanghai) to GAP_S before now."""
    today = now.astimezone(ZONE).date()
    first = datetime.combine(today - timedelta(days=DAYS - 1), time(8), tzinfo=ZONE)
    return int(first.timestamp()) * NS, int(now.timestamp() - GAP_S) * NS


def _mark_simulated(record: Record, until_ns: int) -> None:
    # Both times are iso_utc text, which sorts as the times do.
    if record.kind in ("oee", "downtime") and record.body["start"] < iso_utc(until_ns):
        record.body["simulated"] = True


async def fill_history(config: AgentFile, from_ns: int, to_ns: int) -> int:
    """Run the compute core over the model's samples into the history; how many records."""
    # Running figures every hour, not every few seconds: the history keeps only closed windows,
    # and two weeks of five-second figures would take the core half a minute to make.
    machines = {
        name: m.model_copy(update={"oee_interval_s": 3600.0}) for name, m in config.machines.items()
    }
    engine = ComputeEngine(config.model_copy(update={"machines": machines}))
    streams = [
        press_batches("press", 7, from_ns, to_ns),
        press_batches("bender", 11, from_ns, to_ns),
    ]
    simulated_until = from_ns + SIMULATED_DAYS * 86400 * NS
    history = HistoryStore(config.agent.history_path)
    await history.open()
    count = 0
    try:
        records: list[Record] = []
        for batch in heapq.merge(*streams, key=lambda b: b.ts_ns):
            records += engine.ingest(batch)
        records += engine.advance(to_ns)
        for record in records:
            _mark_simulated(record, simulated_until)
        history.extend(records)
        count = len(records)
        assert await history.flush(), history.write_error
    finally:
        await history.close()
    outbox = Outbox(config.agent.buffer_path)
    await outbox.open()
    try:  # as the agent saves it: the next run resumes from here
        await outbox.save_state("compute", strict_json.dumps(engine.to_state()))
    finally:
        await outbox.close()
    return count


# ------------------------------------------------------------------------------ the agent


@contextmanager
def plant_agent(tmp: Path, users: dict[str, tuple[str, str]]) -> Iterator[Plant]:
    """The agent (history filled first) and its simulated presses; `users`: name -> (role,
    password), added with the real CLI."""
    press_port, http_port = free_port(), free_port()
    while (bender_port := free_port()) in (press_port, http_port):
        pass
    config_path = tmp / "plant.yaml"
    config_path.write_text(
        CONFIG.format(
            tmp=tmp,
            http_port=http_port,
            press_port=press_port,
            bender_port=bender_port,
            alarms=_alarms(),
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    from_ns, to_ns = history_span(datetime.now(ZONE))
    asyncio.run(fill_history(config, from_ns, to_ns))
    for name, (role, password) in users.items():
        added = edge_agent(
            config_path, "user", "add", name, "--role", role, stdin=f"{password}\n" * 2
        )
        assert added.returncode == 0, added.stderr
    simulate = [
        sys.executable,
        "-m",
        "edge_agent",
        "simulate",
        "--machines",
        "1",
        "--opcua-port",
        "0",
    ]
    presses = [
        subprocess.Popen(
            [*simulate, "--port", str(port), "--seed", str(seed)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port, seed in ((press_port, 3), (bender_port, 5))
    ]
    log = tmp / "agent.log"
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        wait_for_port(http_port, 20, agent)
        url = f"http://127.0.0.1:{http_port}/"
        name, (_, password) = next(iter(users.items()))
        _wait_settled(url, name, password, to_ns)
        yield Plant(url, config_path, config, log, from_ns, to_ns)
    finally:
        agent.terminate()
        agent.wait(15)
        for press in presses:
            press.terminate()
            press.wait(15)


def _wait_settled(url: str, user: str, password: str, history_to_ns: int) -> None:
    """Until the agent polls both presses, has published their open windows and has written
    the time it was stopped to the history: what every test then reads stays put."""
    login = urllib.request.Request(
        url + "api/login",
        data=json.dumps({"user": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=5) as answer:
        cookie = answer.headers["Set-Cookie"].split(";", 1)[0]

    def read(path: str) -> dict[str, object]:
        request = urllib.request.Request(url + path, headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    gap_start = iso_utc(history_to_ns)
    deadline = clock.monotonic() + 30
    while clock.monotonic() < deadline:
        state = read("api/state")
        machines = state["machines"]
        assert isinstance(machines, list)
        periods = read("api/history/timeline?machine=p201")["periods"]
        assert isinstance(periods, list)
        gap_kept = any(  # the time the agent was stopped, ended by the first poll
            p["state"] == "unknown" and p["end"] is not None and p["end"] > gap_start
            for p in periods
        ) or any(  # or, stopped in a break, the break that covers that time (planned, not unknown)
            p["state"] == "planned" and p["start"] <= gap_start and (p["end"] or "~") > gap_start
            for p in periods
        )
        if gap_kept and all(m["oee"] is not None and m["state"] != "unknown" for m in machines):
            return
        clock.sleep(0.2)
    raise TimeoutError("the agent did not settle within 30 s (no live data, or no open windows)")
