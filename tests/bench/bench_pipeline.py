"""End-to-end throughput benchmark: Modbus simulator → `edge-agent run` → mosquitto + VictoriaMetrics.

    .venv/bin/python -m tests.bench.bench_pipeline [--devices N --tags M --interval S
                                                    --seconds T --repeat R --sweep 1.5,2,2.5]

A script, not a test: it prints figures and asserts nothing about speed. Every process it starts
(simulator, mosquitto, VictoriaMetrics, one agent per run) and its temporary directory are removed
again on normal exit, on failure and on Ctrl+C.

What runs where:
  * the simulator is a separate OS process (this script, `--serve-simulator`), one Modbus TCP port
    per device, so its CPU is not charged to the agent;
  * mosquitto and VictoriaMetrics come from tests.support.servers;
  * the agent is `edge-agent run <generated config>`, a subprocess with both sinks enabled
    (MQTT raw_values per_poll, QoS 1; InfluxDB line protocol to VictoriaMetrics);
  * an MQTT subscriber in this process measures poll-to-broker latency (arrival time minus the
    payload's "ts", which is taken when the poll starts, truncated to the millisecond).

Each run: start the agent, wait for its first poll, warm up, then measure over a steady window:
  values read/s            edge_device_values_total delta
  values delivered/s       MQTT: messages seen by the subscriber x tags per message;
                           InfluxDB: edge_sink_delivered_records_total{sink="influxdb"} delta x tags
  agent CPU s per 10k      /proc/<pid>/stat utime+stime delta (all threads) per values read
  RSS                      VmRSS at the end of the window
  latency p50/p99          subscriber arrival time minus payload "ts"
  pending                  edge_sink_pending_records{sink} at the end of the window
  overruns                 edge_device_poll_overruns_total delta
  requests per scan        the configured plan (drivers.modbus.driver.build_plan), and what the simulator
                           actually served per successful poll (SimulatedDevice.reads_served)

A run "keeps up" when it had no overruns, read at least 95 % of the nominal rate, both sinks
delivered at least 90 % of what was read, and both ended the window less than one second of
production behind.

Configurations: "planned" (the agent's request planner, max_gap_registers 8) and "naive" (one
request per tag: max_registers_per_request 2 = the largest tag, max_gap_registers 0, and a layout
in which no two 1-register tags are adjacent, so the planner cannot merge anything), both at
--interval; then a sweep of the planned configuration at higher rates (--sweep: rate factors over
--interval), which stops at the first rate that the median run does not sustain.

An agent that stops answering /metrics (its event loop is blocked) gets SIGABRT with
PYTHONFAULTHANDLER set, so its log holds every thread's stack; the benchmark prints them and
exits 1. --keep-workdir keeps the configs and agent logs. Exit codes: 0 done, 1 stalled agent,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench.common import die_with_parent, run_interruptibly, stop_process

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Tag types in a fixed cycle: a 1-register tag is always followed by a 2-register one, so with
# max_registers_per_request 2 and max_gap_registers 0 the planner cannot merge any two tags.
TAG_TYPES = (("uint16", 1), ("float32", 2), ("int32", 2))
HOLE_EVERY = 10  # a 2-register hole after every 10th tag, as real register maps have
HOLE = 2
PLANNED_GAP = 8


# ------------------------------------------------------------------------------ device layout


@dataclass(frozen=True)
class TagDef:
    name: str
    type: str
    address: int
    size: int


def tag_layout(count: int) -> list[TagDef]:
    tags: list[TagDef] = []
    address = 0
    for i in range(count):
        if i and i % HOLE_EVERY == 0:
            address += HOLE
        kind, size = TAG_TYPES[i % len(TAG_TYPES)]
        tags.append(TagDef(f"t{i:03d}_{kind}", kind, address, size))
        address += size
    return tags


def fill_image(tags: list[TagDef], device_index: int) -> Any:
    from drivers.sim.image import RegisterImage

    end = max(t.address + t.size for t in tags)
    image = RegisterImage(size=max(256, end))
    for i, t in enumerate(tags):
        if t.type == "uint16":
            image.set_u16("holding", t.address, (i * 7 + device_index) & 0xFFFF)
        elif t.type == "float32":
            image.set_f32("holding", t.address, i + 0.25 * device_index)
        else:
            image.set_u32("holding", t.address, -(i * 1000 + device_index))
    return image


def device_config(port: int, interval: float, tags: list[TagDef], *, naive: bool) -> dict[str, Any]:
    return {
        "driver": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval_s": interval,
        "timeout_s": 1,
        "max_gap_registers": 0 if naive else PLANNED_GAP,
        "max_registers_per_request": max(t.size for t in tags) if naive else 125,
        "tags": {t.name: {"address": t.address, "type": t.type} for t in tags},
    }


def requests_per_scan(device: dict[str, Any]) -> int:
    from drivers.modbus.config import ModbusDeviceConfig
    from drivers.modbus.driver import build_plan

    return len(build_plan(ModbusDeviceConfig.model_validate(device)))


# ------------------------------------------------------------------ simulator (its own process)


def serve_simulator(devices: int, tag_count: int) -> int:
    """Child process: N Modbus TCP devices; prints 'ready <ports>', answers 'stats' on stdin."""
    import logging

    from drivers.sim.server import SimulatedDevice, serve_tcp
    from tests.support.servers import free_port

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the simulator stops
    tags = tag_layout(tag_count)
    sims = [SimulatedDevice(fill_image(tags, i)) for i in range(devices)]

    async def main() -> None:
        servers, ports = [], []
        for sim in sims:
            for attempt in range(10):
                port = free_port()
                try:
                    servers.append(await serve_tcp([sim], "127.0.0.1", port))
                    break
                except OSError:
                    if attempt == 9:
                        raise
            ports.append(port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def control() -> None:
            for line in sys.stdin:
                if line.strip() == "stats":
                    print(json.dumps([s.reads_served for s in sims]), flush=True)
            loop.call_soon_threadsafe(stop.set)  # stdin closed: the parent is done (or gone)

        print("ready " + " ".join(map(str, ports)), flush=True)
        threading.Thread(target=control, daemon=True).start()
        await stop.wait()
        for server in servers:
            await server.shutdown()

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------------ process accounting

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def host_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


# ------------------------------------------------------------------------------ metrics scrape


class AgentStalled(Exception):
    def __init__(self, reason: str, stacks: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stacks = stacks


class Scrape:
    """One /metrics scrape: sample name → list of (labels, value)."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples.setdefault(s.name, []).append((s.labels, s.value))

    def total(self, name: str, **labels: str) -> float:
        return sum(
            v
            for lab, v in self.samples.get(name, [])
            if all(lab.get(k) == want for k, want in labels.items())
        )


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return Scrape(response.read().decode())


# --------------------------------------------------------------------------- broker subscriber


class BrokerProbe:
    """Subscribes to one agent's per-poll topics; counts messages and latency inside a window."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self._lock = threading.Lock()
        self._open = False
        self._opened = 0.0
        self.messages = 0
        self.latencies_ms: list[float] = []
        self.seen_any = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise TimeoutError("benchmark subscriber could not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        arrived = time.time()
        self.seen_any.set()
        if not self._open:
            return
        payload: bytes = msg.payload
        at = payload.find(b'"ts":"') + 6
        end = payload.find(b'"', at)
        if at < 6 or end < 0:
            return
        sent = datetime.fromisoformat(payload[at:end].decode()).timestamp()  # "...T01:40:00.123Z"
        with self._lock:
            self.messages += 1
            self.latencies_ms.append((arrived - sent) * 1000)

    def open_window(self) -> None:
        with self._lock:
            self.messages, self.latencies_ms, self._open = 0, [], True
            self._opened = time.monotonic()

    def close_window(self) -> tuple[int, list[float], float]:
        """Messages and latencies seen since open_window, and how long it was open (s)."""
        with self._lock:
            self._open = False
            return self.messages, list(self.latencies_ms), time.monotonic() - self._opened

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# ------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Scenario:
    label: str
    interval: float
    naive: bool


@dataclass
class RunResult:
    nominal: float  # values/s the configuration asks for
    read: float
    mqtt: float
    influx: float
    cpu_per_10k: float
    agent_cpu_pct: float
    host_cpu_pct: float
    sim_cpu_pct: float
    rss_mib: float
    p50_ms: float
    p99_ms: float
    pending_mqtt: float
    pending_influx: float
    overruns: float
    poll_ms: float
    plan_requests: float
    served_requests: float
    keeps_up: bool = field(default=False)


NUMERIC = [
    "nominal",
    "read",
    "mqtt",
    "influx",
    "cpu_per_10k",
    "agent_cpu_pct",
    "host_cpu_pct",
    "sim_cpu_pct",
    "rss_mib",
    "p50_ms",
    "p99_ms",
    "pending_mqtt",
    "pending_influx",
    "overruns",
    "poll_ms",
    "plan_requests",
    "served_requests",
]


class Bench:
    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.tags = tag_layout(args.tags)
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-bench-"))
        if args.keep_workdir:
            print(f"work directory (kept): {self.workdir}", flush=True)
        else:
            stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)

    # -- shared servers

    def start_servers(self) -> None:
        from tests.support.servers import Mosquitto, VictoriaMetrics, free_port

        self.mosquitto = Mosquitto(free_port(), self.workdir)
        self.stack.callback(self.mosquitto.stop)
        self.mosquitto.start()
        self.victoria = VictoriaMetrics(free_port(), self.workdir)
        self.stack.callback(self.victoria.stop)
        self.victoria.start()

        self.sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_pipeline",
                "--serve-simulator",
                "--devices",
                str(self.args.devices),
                "--tags",
                str(self.args.tags),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.stack.callback(self._stop_sim)
        assert self.sim.stdout is not None
        line = self.sim.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.ports = [int(p) for p in line[1:]]

    def _stop_sim(self) -> None:
        if self.sim.stdin is not None:
            with contextlib.suppress(OSError):
                self.sim.stdin.close()
        try:
            self.sim.wait(5)
        except subprocess.TimeoutExpired:
            stop_process(self.sim)

    def sim_reads(self) -> int:
        assert self.sim.stdin is not None and self.sim.stdout is not None
        self.sim.stdin.write("stats\n")
        self.sim.stdin.flush()
        return sum(json.loads(self.sim.stdout.readline()))

    # -- one run

    def write_config(self, scenario: Scenario, agent_id: str, http_port: int) -> Path:
        run_dir = self.workdir / agent_id
        run_dir.mkdir()
        config = {
            "agent": {
                "id": agent_id,
                "buffer_path": str(run_dir / "outbox.db"),
                "log_level": "WARNING",
                "http": {"host": "127.0.0.1", "port": http_port},
            },
            "devices": {
                f"dev{i:03d}": device_config(
                    port, scenario.interval, self.tags, naive=scenario.naive
                )
                for i, port in enumerate(self.ports)
            },
            "sinks": {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": self.mosquitto.port,
                    "raw_values": "per_poll",
                    "qos": 1,
                },
                "influxdb": {
                    "url": self.victoria.url,
                    "bucket": "bench",
                    "org": "bench",
                    "token": "bench",
                },
            },
        }
        path = run_dir / "agent.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    def run(self, scenario: Scenario) -> RunResult:
        from tests.support.servers import free_port, wait_for_port

        args = self.args
        agent_id = f"bench-{uuid.uuid4().hex[:8]}"
        http_port = free_port()
        config = self.write_config(scenario, agent_id, http_port)
        plan = requests_per_scan(
            device_config(1, scenario.interval, self.tags, naive=scenario.naive)
        )
        probe = BrokerProbe(self.mosquitto.port, f"edge/{agent_id}/devices/+")
        log_path = config.parent / "agent.log"
        command = [str(VENV_BIN / "edge-agent"), "run", str(config)]
        # PYTHONFAULTHANDLER: SIGABRT makes a stalled agent print every thread's stack to its log.
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                command,
                cwd=config.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            wait_for_port(http_port, timeout_s=30, proc=agent)
            if not probe.seen_any.wait(30):
                raise RuntimeError("no poll reached the broker within 30 s")
            time.sleep(args.warmup)
            # Counters are read at the middle of each scrape; CPU and the simulator right after.
            t0, m0 = self._timed_scrape(agent, http_port, log_path)
            cpu0, host0 = cpu_seconds(agent.pid), host_busy()
            sim_cpu0, reads0 = cpu_seconds(self.sim.pid), self.sim_reads()
            probe.open_window()
            time.sleep(args.seconds)
            messages, latencies, probe_s = probe.close_window()
            t1, m1 = self._timed_scrape(agent, http_port, log_path)
            self._check_servers()
            cpu1, host1 = cpu_seconds(agent.pid), host_busy()
            sim_cpu1, reads1 = cpu_seconds(self.sim.pid), self.sim_reads()
            elapsed = t1 - t0
            rss = rss_mib(agent.pid)
        finally:
            probe.close()
            stop_process(agent)

        def delta(name: str, **labels: str) -> float:
            return m1.total(name, **labels) - m0.total(name, **labels)

        m = len(self.tags)
        values = delta("edge_device_values_total")
        ok_polls = delta("edge_device_poll_seconds_count")
        records_per_s = ok_polls / elapsed
        nominal = args.devices * m / scenario.interval
        pending_mqtt = m1.total("edge_sink_pending_records", sink="mqtt")
        pending_influx = m1.total("edge_sink_pending_records", sink="influxdb")
        overruns = delta("edge_device_poll_overruns_total")
        result = RunResult(
            nominal=nominal,
            read=values / elapsed,
            mqtt=messages * m / probe_s,
            influx=delta("edge_sink_delivered_records_total", sink="influxdb") * m / elapsed,
            cpu_per_10k=(cpu1 - cpu0) / values * 10_000 if values else math.nan,
            agent_cpu_pct=(cpu1 - cpu0) / elapsed * 100,
            host_cpu_pct=(host1[0] - host0[0]) / max(1, host1[1] - host0[1]) * 100,
            sim_cpu_pct=(sim_cpu1 - sim_cpu0) / elapsed * 100,
            rss_mib=rss,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            pending_mqtt=pending_mqtt,
            pending_influx=pending_influx,
            overruns=overruns,
            poll_ms=(
                delta("edge_device_poll_seconds_sum") / ok_polls * 1000 if ok_polls else math.nan
            ),
            plan_requests=plan,
            served_requests=(reads1 - reads0) / ok_polls if ok_polls else math.nan,
        )
        behind_limit = max(records_per_s, 1.0)  # one second of production
        # The pending gauge is refreshed only between a sink's batches, so a sink stuck inside
        # one batch looks fine by it: the delivered rates are checked as well.
        result.keeps_up = (
            overruns == 0
            and result.read >= 0.95 * nominal
            and min(result.mqtt, result.influx) >= 0.9 * result.read
            and pending_mqtt < behind_limit
            and pending_influx < behind_limit
        )
        return result

    def _check_servers(self) -> None:
        for name, server in (("mosquitto", self.mosquitto), ("VictoriaMetrics", self.victoria)):
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError(f"{name} is no longer running (see its log in {self.workdir})")
        if self.sim.poll() is not None:
            raise RuntimeError(f"the simulator exited with {self.sim.returncode}")

    def _timed_scrape(
        self, agent: subprocess.Popen[bytes], port: int, log_path: Path
    ) -> tuple[float, Scrape]:
        before = time.monotonic()
        result = self._scrape(agent, port, log_path)
        return (before + time.monotonic()) / 2, result

    @staticmethod
    def _scrape(agent: subprocess.Popen[bytes], port: int, log_path: Path) -> Scrape:
        """/metrics, or AgentStalled with the agent's thread stacks when it no longer answers."""
        if agent.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the agent exited with {agent.returncode}:\n{tail}")
        try:
            return scrape(port)
        except (OSError, http.client.HTTPException) as exc:
            # The local page answers /metrics from the event loop (5 s timeout): no answer means
            # the loop is blocked. Ask faulthandler for every thread's stack as evidence.
            reason = f"{type(exc).__name__}: {exc}"
        agent.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(5)
        text = log_path.read_text(errors="replace")
        at = text.find("Fatal Python error")
        raise AgentStalled(reason, text[at:] if at >= 0 else text[-4000:])


# ------------------------------------------------------------------------------------ output


def median_of(results: list[RunResult]) -> dict[str, Any]:
    row: dict[str, Any] = {
        name: statistics.median(getattr(r, name) for r in results) for name in NUMERIC
    }
    row["kept_up"] = sum(r.keeps_up for r in results)
    row["runs"] = len(results)
    return row


COLUMNS: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
    ("config", "<", lambda r: r["label"]),
    ("interval s", ">", lambda r: f"{r['interval']:g}"),
    ("nominal v/s", ">", lambda r: f"{r['nominal']:,.0f}"),
    ("read v/s", ">", lambda r: f"{r['read']:,.0f}"),
    ("mqtt v/s", ">", lambda r: f"{r['mqtt']:,.0f}"),
    ("influx v/s", ">", lambda r: f"{r['influx']:,.0f}"),
    ("CPU s/10k v", ">", lambda r: f"{r['cpu_per_10k']:.3f}"),
    ("agent CPU%", ">", lambda r: f"{r['agent_cpu_pct']:.0f}"),
    ("sim CPU%", ">", lambda r: f"{r['sim_cpu_pct']:.0f}"),
    ("host CPU%", ">", lambda r: f"{r['host_cpu_pct']:.0f}"),
    ("RSS MiB", ">", lambda r: f"{r['rss_mib']:.0f}"),
    ("poll ms", ">", lambda r: f"{r['poll_ms']:.1f}"),
    ("p50 ms", ">", lambda r: f"{r['p50_ms']:.0f}"),
    ("p99 ms", ">", lambda r: f"{r['p99_ms']:.0f}"),
    ("pending mqtt/influx", ">", lambda r: f"{r['pending_mqtt']:.0f}/{r['pending_influx']:.0f}"),
    ("overruns", ">", lambda r: f"{r['overruns']:.0f}"),
    ("req/scan plan/seen", ">", lambda r: f"{r['plan_requests']:.0f}/{r['served_requests']:.1f}"),
    ("keeps up", ">", lambda r: f"{r['kept_up']}/{r['runs']}"),
]


def print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[fmt(r) for _, _, fmt in COLUMNS] for r in rows]
    widths = [
        max(len(title), *(len(c[i]) for c in cells)) for i, (title, _, _) in enumerate(COLUMNS)
    ]
    line = "  ".join(
        f"{title:{align}{w}}" for (title, align, _), w in zip(COLUMNS, widths, strict=True)
    )
    print(line)
    print("-" * len(line))
    for c in cells:
        print(
            "  ".join(
                f"{v:{align}{w}}" for v, (_, align, _), w in zip(c, COLUMNS, widths, strict=True)
            )
        )


def print_run(scenario: Scenario, index: int, r: RunResult) -> None:
    print(
        f"  {scenario.label:<16} run {index}: read {r.read:,.0f} v/s, mqtt {r.mqtt:,.0f}, "
        f"influx {r.influx:,.0f}, CPU {r.cpu_per_10k:.3f} s/10k ({r.agent_cpu_pct:.0f} %), "
        f"p50/p99 {r.p50_ms:.0f}/{r.p99_ms:.0f} ms, pending {r.pending_mqtt:.0f}/"
        f"{r.pending_influx:.0f}, overruns {r.overruns:.0f}, "
        f"req/scan {r.served_requests:.1f}, {'keeps up' if r.keeps_up else 'FALLS BEHIND'}",
        flush=True,
    )


# -------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_pipeline",
        description="End-to-end throughput of the edge agent (see the module docstring).",
    )
    p.add_argument("--devices", type=int, default=20, help="simulated Modbus TCP devices")
    p.add_argument("--tags", type=int, default=100, help="holding-register tags per device")
    p.add_argument("--interval", type=float, default=0.1, help="poll interval, s")
    p.add_argument("--seconds", type=float, default=5.0, help="measured window per run, s")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before the window, s")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration (medians)")
    p.add_argument(
        "--sweep",
        default="1.5,2,2.5",
        help="rate factors over --interval for the planned configuration, e.g. '1.5,2,2.5' "
        "(stops at the first one not sustained); '' for none",
    )
    p.add_argument(
        "--naive-interval",
        type=float,
        default=None,
        help="poll interval of the naive configuration (default: --interval)",
    )
    p.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the temporary directory (configs, agent logs) for inspection",
    )
    p.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.devices < 1 or args.tags < 1 or args.repeat < 1 or args.seconds <= 0:
        p.error("--devices, --tags, --repeat and --seconds must be positive")
    if args.interval < 0.01:
        p.error("--interval must be at least 0.01 s (the agent's minimum)")
    return args


def sweep_intervals(args: argparse.Namespace) -> list[float]:
    factors = [float(f) for f in args.sweep.split(",") if f.strip()]
    return [max(0.01, round(args.interval / f, 4)) for f in sorted(factors) if f > 1]


def bench(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        b = Bench(args, stack)
        started = time.monotonic()
        b.start_servers()
        m = args.tags
        planned = Scenario("planned", args.interval, naive=False)
        naive = Scenario("naive 1 req/tag", args.naive_interval or args.interval, naive=True)
        print(
            f"{args.devices} devices x {m} tags (uint16/float32/int32 holding registers) on "
            f"Modbus TCP; sinks: MQTT per_poll QoS 1 + InfluxDB (VictoriaMetrics); "
            f"warm-up {args.warmup:g} s, window {args.seconds:g} s, {args.repeat} run(s) each; "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        results: dict[Scenario, list[RunResult]] = {planned: [], naive: []}
        sustained: list[Scenario] = []

        def run(scenario: Scenario, index: int) -> None:
            r = b.run(scenario)
            results.setdefault(scenario, []).append(r)
            print_run(scenario, index, r)

        try:
            for i in range(args.repeat):  # interleaved, so drift hits both alike
                run(planned, i + 1)
                run(naive, i + 1)
            if median_of(results[planned])["kept_up"] * 2 > args.repeat:
                sustained.append(planned)
                for interval in sweep_intervals(args):
                    scenario = Scenario("planned sweep", interval, naive=False)
                    for i in range(args.repeat):
                        run(scenario, i + 1)
                    if median_of(results[scenario])["kept_up"] * 2 <= args.repeat:
                        break
                    sustained.append(scenario)
        except AgentStalled as exc:
            print_stall(exc)
            print_summary(args, results, [], started)
            return 1
        print_summary(args, results, sustained, started)
    return 0


def print_stall(exc: AgentStalled) -> None:
    print()
    print(f"THE AGENT STALLED: /metrics no longer answered ({exc.reason}).")
    print("Its threads at that moment (faulthandler, after SIGABRT):")
    print("    " + "\n    ".join(exc.stacks.strip().splitlines()[:60]))
    print("The benchmark stops here; the figures below are from the runs that finished.")


def print_summary(
    args: argparse.Namespace,
    results: dict[Scenario, list[RunResult]],
    sustained: list[Scenario],
    started: float,
) -> None:
    rows = []
    for scenario, runs in results.items():
        if runs:
            row = median_of(runs)
            row["label"], row["interval"] = scenario.label, scenario.interval
            rows.append(row)
    print()
    if rows:
        print(f"Medians of {args.repeat} run(s) per configuration:")
        print_table(rows)
        print()
    if sustained:
        top = sustained[-1]
        print(
            f"Highest rate sustained (no overruns, >= 95 % of nominal read, sinks deliver >= 90 % "
            f"and end < 1 s behind, in "
            f"a majority of runs): {args.devices * args.tags / top.interval:,.0f} values/s "
            f"(interval {top.interval:g} s)."
        )
    elif rows:
        print("No rate was found sustained.")
    if rows:
        print(f"Highest median read rate seen: {max(row['read'] for row in rows):,.0f} values/s.")
    print(f"Total benchmark time: {time.monotonic() - started:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_simulator:
        return serve_simulator(args.devices, args.tags)

    return run_interruptibly(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
