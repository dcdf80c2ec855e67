"""CPU, memory and latency of `edge-agent run` at plant rates and high rates, beside Node-RED.

    make bench                                   (npm ci in tests/bench/nodered, then this)
    .venv/bin/python -m tests.bench.bench_cpu [--rows idle,1k,10k,50k,100k] [--repeat 3]
                                              [--quick] [--no-nodered] [--no-opcua]
                                              [--soak-minutes N] [--py-spy BIN]
                                              [--py-spy-load 1k|10k|50k|100k]
                                              [--keep-workdir]

A script, not a test: it prints figures and asserts nothing about speed (pytest collects only
test_*.py, so it never runs this or starts Node-RED). Every process it starts (the Modbus
simulator, mosquitto, VictoriaMetrics, one agent or Node-RED per run) and its temporary directory
are removed again on normal exit, on failure and on Ctrl+C.

Rows (one load each; --rows picks them):
  idle   an agent with no devices, both sinks configured: the floor (issue target < 0.2 %)
  1k     10 devices x 100 registers every 1 s      =   1,000 values/s (what most plants run)
  10k    10 x 100 every 100 ms                      =  10,000 values/s
  50k    10 x 100 every 20 ms                       =  50,000 values/s
  100k   20 x 100 every 20 ms                       = 100,000 values/s (not 10 x 100 at 10 ms:
         the simulator serves the same 1,000 requests/s either way, and 20 ms leaves each poll
         more room for the scheduling jitter of a busy 2-CPU host)
Each load runs as: the agent with MQTT + InfluxDB, the agent with MQTT only (1k, 10k, 50k), and
Node-RED with MQTT only (1k, 10k, 50k: the rates of the issue's comparison).

What runs where:
  * one simulator process (tests.bench.bench_pipeline --serve-simulator, pymodbus) serves 20
    Modbus TCP devices on their own ports; its CPU is not charged to either system;
  * mosquitto and VictoriaMetrics from tests.support.servers (the same for every run);
  * the agent: `edge-agent run <generated config>` as a subprocess; every device has 100 uint16
    tags at holding registers 0..99 (one FC3 request of 100 registers per poll, the same read as
    Node-RED's), MQTT raw_values per_poll at QoS 1 (one message per poll), and, in
    "MQTT + InfluxDB", line protocol to VictoriaMetrics' InfluxDB v2 write API;
  * Node-RED 4.1.15 with node-red-contrib-modbus 5.45.2 from tests/bench/nodered (npm ci, done by
    `make bench`), headless (settings.js: no editor, no HTTP), its own temporary userDir with a
    copy of flow.json: one Modbus-Read per device (FC3, 100 registers at 0, every interval) → one
    function node that makes each 100-value read one JSON message {device, ts, values by name} →
    MQTT out at QoS 1 to the same mosquitto. No buffer, no InfluxDB. node-red-contrib-modbus
    5.45.2 depends on its authors' fork @openp4nr/modbus-serial 8.4.0, which is published only as
    a tarball on dl.cloudsmith.io, not on npm: package.json's "overrides" puts upstream
    modbus-serial 8.0.25 from npm in its place (the same API), so npm ci fetches from npm only.

Each run: start the system, wait for its first message at the broker, warm up, then measure over
a steady window (its length is printed in every row; at 1 % of a core, /proc's 10 ms ticks need
>= 30 s to mean something, so idle gets 60 s and 1k 30 s). Windows are whole numbers of poll
intervals and open half an interval after a message, so devices polled in step are counted
alike in every run:
  CPU % of a core     utime+stime of the process (all threads, /proc/<pid>/stat) over the window;
                      read before the closing /metrics scrape and after the opening one, so the
                      benchmark's own scrapes are not charged
  CPU s/10k values    the same CPU per 10,000 values read
  RSS                 VmRSS at the end of the window
  p50/p99 ms          subscriber arrival time minus the payload's "ts": for the agent the poll's
                      start (ms); for Node-RED the moment the function node ran (after the read,
                      so Node-RED's figure leaves out the Modbus round trip, < 1 ms on loopback)
  read v/s            agent: edge_device_values_total; Node-RED: requests the simulator served x
                      100 (it has no counter of its own)
  MQTT v/s            messages that reached a subscriber in this process x 100; the first
                      message of every device in each window is decoded and must hold 100 values
                      and every device must be heard, so a broken flow cannot pass for a cheap one
  InfluxDB v/s        edge_sink_delivered_records_total{sink="influxdb"} x 100
  sim / host CPU%     the simulator's CPU and the whole machine's (all CPUs) over the window
A run keeps up when: no poll overruns (agent), read >= 95 % of nominal, every device heard, each
sink delivered >= 90 % of what was read, and each agent sink ended < 1 s of records behind (2 s for
InfluxDB, which gathers a second's records per write by default). The
table gives medians over --repeat runs (runs interleaved, so drift hits all systems alike); "kept
up" says in how many runs and, if not in most, why not.

Then the OPC UA table: tests.bench.bench_opcua with 10,000 subscribed nodes whose server stamps
every value separately (--stamp each), --repeat runs (--no-opcua skips it).

--py-spy BIN profiles one more agent at 1k values/s (--py-spy-load picks another), both sinks,
for 60 s (py-spy record, all threads, 200 Hz) and prints the top functions by own and inclusive
time. py-spy counts a thread blocked in select() or a queue wait (EpollSelector.select, paho's
Client._loop, the thread pool's _worker) as busy: leave those leaves out when reading where the CPU goes.

--soak-minutes N runs the agent at 10 x 100 every 1 s, both sinks, for N minutes, samples its RSS
every 10 s and prints the first/last RSS and the least-squares slope in MiB/hour (all samples and
the second half). The issue's check is 60 minutes. With --soak-minutes or --py-spy the table rows
run only if --rows is given as well.

Exit codes: 0 done, 1 stalled agent, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tests.bench.bench_opcua import print_table, summarize_profile
from tests.bench.bench_pipeline import (
    VENV_BIN,
    AgentStalled,
    Bench,
    Scrape,
    TagDef,
    cpu_seconds,
    device_config,
    host_busy,
    percentile,
    print_stall,
    rss_mib,
)
from tests.bench.common import die_with_parent, run_interruptibly, stop_process

NODERED = Path(__file__).resolve().parent / "nodered"
NODERED_DEVICES = 10  # flow.json has this many Modbus-Read nodes
REGISTERS = 100  # per device: holding registers 0..99, one uint16 tag each
SIM_DEVICES = 20  # the largest load
FIRST_MESSAGE_S = 60.0  # Node-RED needs 2-5 s to start; a loaded host more


# ------------------------------------------------------------------------------------ loads


@dataclass(frozen=True)
class Load:
    key: str
    devices: int
    interval_s: float
    window_s: float  # the measured window
    quick_window_s: float

    @property
    def nominal(self) -> float:
        return self.devices * REGISTERS / self.interval_s if self.devices else 0.0

    @property
    def shape(self) -> str:
        if not self.devices:
            return "no devices"
        return f"{self.devices} x {REGISTERS} @ {self.interval_s * 1000:g} ms"


LOADS = {
    load.key: load
    for load in (
        Load("idle", 0, 1.0, 60.0, 10.0),
        Load("1k", 10, 1.0, 30.0, 10.0),
        Load("10k", 10, 0.1, 15.0, 5.0),
        Load("50k", 10, 0.02, 15.0, 5.0),
        Load("100k", 20, 0.02, 15.0, 5.0),
    )
}
DEFAULT_ROWS = "idle,1k,10k,50k,100k"
NODERED_LOADS = {"1k", "10k", "50k"}
MQTT_ONLY_LOADS = {"1k", "10k", "50k"}

System = Literal["agent", "Node-RED"]


@dataclass(frozen=True)
class Case:
    load: Load
    system: System
    influx: bool

    @property
    def sinks(self) -> str:
        return "MQTT + InfluxDB" if self.influx else "MQTT only"

    @property
    def label(self) -> str:
        return f"{self.load.key:>4} {self.system:<8} {self.sinks}"


def cases_for(rows: list[str], nodered: bool) -> list[Case]:
    cases: list[Case] = []
    for key in rows:
        load = LOADS[key]
        cases.append(Case(load, "agent", influx=True))
        if key in MQTT_ONLY_LOADS:
            cases.append(Case(load, "agent", influx=False))
        if nodered and key in NODERED_LOADS:
            cases.append(Case(load, "Node-RED", influx=False))
    return cases


# ------------------------------------------------------------------------------ measurements


@dataclass
class Measurement:
    window_s: float
    cpu_pct: float
    cpu_per_10k: float
    rss_mib: float
    p50_ms: float
    p99_ms: float
    read: float
    mqtt: float
    influx: float  # nan without the InfluxDB sink
    sim_cpu_pct: float
    host_cpu_pct: float
    why_not: list[str] = field(default_factory=list)  # empty: kept up
    failed: str = ""  # the run broke off: why

    @classmethod
    def broken_off(cls, reason: str) -> Measurement:
        values: dict[str, Any] = dict.fromkeys(NUMERIC, math.nan)
        return cls(**values, failed=reason)


NUMERIC = (
    "window_s",
    "cpu_pct",
    "cpu_per_10k",
    "rss_mib",
    "p50_ms",
    "p99_ms",
    "read",
    "mqtt",
    "influx",
    "sim_cpu_pct",
    "host_cpu_pct",
)


@dataclass(frozen=True)
class Snapshot:
    at: float  # monotonic
    cpu_s: float
    host: tuple[float, float]
    sim_cpu_s: float
    sim_reads: int
    rss_mib: float


class RateProbe:
    """Subscribes to one run's per-poll topics; counts messages per topic and latency in a window.

    The first message of every topic in a window is decoded: it must carry a "values" object with
    the expected number of entries, else the topic is reported as malformed.
    """

    def __init__(self, port: int, topic: str, values_per_message: int) -> None:
        import paho.mqtt.client as mqtt

        self.values_per_message = values_per_message
        self._lock = threading.Lock()
        self._open = False
        self._opened = 0.0
        self.per_topic: Counter[str] = Counter()
        self.latencies_ms: list[float] = []
        self.malformed: dict[str, str] = {}
        self.seen_any = threading.Event()
        self._fresh = threading.Event()
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
        self._fresh.set()
        if not self._open:
            return
        payload: bytes = msg.payload
        at = payload.find(b'"ts":"') + 6
        end = payload.find(b'"', at)
        sent = (
            datetime.fromisoformat(payload[at:end].decode()).timestamp()
            if at >= 6 and end > 0
            else math.nan
        )
        with self._lock:
            first = msg.topic not in self.per_topic
            self.per_topic[msg.topic] += 1
            self.latencies_ms.append((arrived - sent) * 1000)
        if first:
            self._check(msg.topic, payload)

    def _check(self, topic: str, payload: bytes) -> None:
        try:
            values = json.loads(payload)["values"]
            count = len(values)
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed[topic] = f"not a values message ({type(exc).__name__})"
            return
        if count != self.values_per_message:
            self.malformed[topic] = f"{count} values, not {self.values_per_message}"

    def wait_for_next(self, timeout_s: float) -> bool:
        """Until the next message arrives."""
        self._fresh.clear()
        return self._fresh.wait(timeout_s)

    def open_window(self) -> None:
        with self._lock:
            self.per_topic, self.latencies_ms, self.malformed = Counter(), [], {}
            self._open = True
            self._opened = time.monotonic()

    def close_window(self) -> tuple[Counter[str], list[float], float]:
        """Messages per topic and latencies since open_window, and how long it was open (s)."""
        with self._lock:
            self._open = False
            return Counter(self.per_topic), list(self.latencies_ms), time.monotonic() - self._opened

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RunFailed(Exception):
    """One run could not be measured (its process died, nothing arrived); the others go on."""


# ------------------------------------------------------------------------------------ bench


class CpuBench:
    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        # bench_pipeline's Bench owns the shared servers: mosquitto, VictoriaMetrics and the
        # simulator (its register image is larger than 100 registers; they are read as uint16).
        self.servers = Bench(
            argparse.Namespace(devices=SIM_DEVICES, tags=REGISTERS, keep_workdir=args.keep_workdir),
            stack,
        )
        self.workdir = self.servers.workdir
        self.tags = [TagDef(f"t{i:03d}", "uint16", i, 1) for i in range(REGISTERS)]

    def start(self) -> None:
        self.servers.start_servers()

    # -- shared measurement

    def snapshot(self, pid: int) -> Snapshot:
        sim = self.servers.sim
        return Snapshot(
            at=time.monotonic(),
            cpu_s=cpu_seconds(pid),
            host=host_busy(),
            sim_cpu_s=cpu_seconds(sim.pid),
            sim_reads=self.servers.sim_reads(),
            rss_mib=rss_mib(pid),
        )

    def measure(
        self,
        pid: int,
        probe: RateProbe,
        load: Load,
        window_s: float,
        scrape: Callable[[], Scrape | None],
    ) -> tuple[Snapshot, Snapshot, Scrape | None, Scrape | None, Counter[str], list[float], float]:
        """The window: opening scrape, then CPU; CPU, then the closing scrape.

        It opens half an interval after a message arrived: devices polled in step (Node-RED
        starts all its timers at once) then fall the same number of times into a window that
        is a whole number of intervals long, instead of 29 or 31 times in 30 s by chance.
        """
        if load.devices:
            probe.wait_for_next(load.interval_s + 10)
            time.sleep(load.interval_s / 2)
        m0 = scrape()
        s0 = self.snapshot(pid)
        probe.open_window()
        time.sleep(window_s)
        per_topic, latencies, probe_s = probe.close_window()
        s1 = self.snapshot(pid)
        m1 = scrape()
        self.servers._check_servers()
        return s0, s1, m0, m1, per_topic, latencies, probe_s

    @staticmethod
    def common(
        s0: Snapshot,
        s1: Snapshot,
        latencies: list[float],
        read_values: float,
        mqtt_values: float,
        probe_s: float,
    ) -> Measurement:
        elapsed = s1.at - s0.at
        cpu = s1.cpu_s - s0.cpu_s
        finite = [v for v in latencies if not math.isnan(v)]
        return Measurement(
            window_s=elapsed,
            cpu_pct=cpu / elapsed * 100,
            cpu_per_10k=cpu / read_values * 10_000 if read_values else math.nan,
            rss_mib=s1.rss_mib,
            p50_ms=percentile(finite, 50),
            p99_ms=percentile(finite, 99),
            read=read_values / elapsed,
            mqtt=mqtt_values / probe_s,
            influx=math.nan,
            sim_cpu_pct=(s1.sim_cpu_s - s0.sim_cpu_s) / elapsed * 100,
            host_cpu_pct=(s1.host[0] - s0.host[0]) / max(1, s1.host[1] - s0.host[1]) * 100,
        )

    @staticmethod
    def delivery_problems(
        r: Measurement, load: Load, per_topic: Counter[str], probe: RateProbe
    ) -> list[str]:
        """The keeps-up rules both systems share (see the module docstring)."""
        why: list[str] = []
        if r.read < 0.95 * load.nominal:
            why.append(f"read {r.read / load.nominal:.0%} of nominal")
            if r.sim_cpu_pct > 90:
                why.append(f"simulator at {r.sim_cpu_pct:.0f} % CPU")
        silent = load.devices - len(per_topic)
        if silent > 0:
            why.append(f"{silent} device(s) not heard on MQTT")
        if probe.malformed:
            topic, problem = next(iter(probe.malformed.items()))
            why.append(f"{len(probe.malformed)} topic(s) malformed, e.g. {topic}: {problem}")
        if r.mqtt < 0.9 * r.read:
            why.append(f"MQTT delivered {r.mqtt / r.read:.0%} of read" if r.read else "no reads")
        return why

    # -- the agent

    def write_agent_config(self, case: Case, agent_id: str, http_port: int) -> Path:
        run_dir = self.workdir / agent_id
        run_dir.mkdir()
        load = case.load
        sinks: dict[str, Any] = {
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.servers.mosquitto.port,
                "raw_values": "per_poll",
                "qos": 1,
            }
        }
        if case.influx:
            sinks["influxdb"] = {
                "url": self.servers.victoria.url,
                "bucket": "bench",
                "org": "bench",
                "token": "bench",
            }
        config = {
            "agent": {
                "id": agent_id,
                "buffer_path": str(run_dir / "outbox.db"),
                "log_level": "WARNING",
                "http": {"host": "127.0.0.1", "port": http_port},
            },
            "devices": {
                f"dev{i:03d}": device_config(port, load.interval_s, self.tags, naive=False)
                for i, port in enumerate(self.servers.ports[: load.devices])
            },
            "sinks": sinks,
        }
        path = run_dir / "agent.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    @contextlib.contextmanager
    def agent(self, case: Case) -> Iterator[tuple[subprocess.Popen[bytes], RateProbe, Path, int]]:
        """A running agent whose first poll (if it has devices) reached the broker."""
        from tests.support.servers import free_port, wait_for_port

        agent_id = f"bench-{uuid.uuid4().hex[:8]}"
        http_port = free_port()
        config = self.write_agent_config(case, agent_id, http_port)
        log_path = config.parent / "agent.log"
        probe = RateProbe(
            self.servers.mosquitto.port, f"edge/{agent_id}/devices/+", values_per_message=REGISTERS
        )
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(VENV_BIN / "edge-agent"), "run", str(config)],
                cwd=config.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            try:
                wait_for_port(http_port, timeout_s=30, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RunFailed(f"{exc}; log: {_tail(log_path)}") from exc
            if case.load.devices and not probe.seen_any.wait(30):
                raise RunFailed(f"no poll reached the broker within 30 s; log: {_tail(log_path)}")
            yield proc, probe, log_path, http_port
        finally:
            probe.close()
            stop_process(proc)

    def run_agent(self, case: Case, window_s: float) -> Measurement:
        with self.agent(case) as (proc, probe, log_path, http_port):
            time.sleep(self.args.warmup)
            s0, s1, m0, m1, per_topic, latencies, probe_s = self.measure(
                proc.pid,
                probe,
                case.load,
                window_s,
                lambda: Bench._scrape(proc, http_port, log_path),
            )
        assert m0 is not None and m1 is not None

        def delta(name: str, **labels: str) -> float:
            return m1.total(name, **labels) - m0.total(name, **labels)

        elapsed = s1.at - s0.at
        r = self.common(
            s0,
            s1,
            latencies,
            read_values=delta("edge_device_values_total"),
            mqtt_values=sum(per_topic.values()) * REGISTERS,
            probe_s=probe_s,
        )
        if case.influx:
            delivered = delta("edge_sink_delivered_records_total", sink="influxdb")
            r.influx = delivered * REGISTERS / elapsed
        if not case.load.devices:
            return r  # idle: nothing to keep up with
        why = self.delivery_problems(r, case.load, per_topic, probe)
        overruns = delta("edge_device_poll_overruns_total")
        if overruns:
            polls = case.load.devices / case.load.interval_s * elapsed
            why.insert(0, f"{overruns:.0f} poll overruns ({overruns / polls:.1%} of polls)")
        if case.influx and r.read and r.influx < 0.9 * r.read:
            why.append(f"InfluxDB delivered {r.influx / r.read:.0%} of read")
        records_per_s = case.load.devices / case.load.interval_s
        # A sink may hold a batch for its flush_interval_s (InfluxDB's default: 1 s) on purpose.
        allowed_s = {"mqtt": 1.0, "influxdb": 2.0}
        for sink in ("mqtt", "influxdb") if case.influx else ("mqtt",):
            pending = m1.total("edge_sink_pending_records", sink=sink)
            if pending >= max(records_per_s * allowed_s[sink], 1.0):
                why.append(f"{sink} {pending:.0f} records pending")
        r.why_not = why
        return r

    # -- Node-RED

    @staticmethod
    def nodered_installed() -> str:
        """Empty when Node-RED can run, else why not."""
        if shutil.which("node") is None:
            return "node is not installed (make system-deps)"
        for module in ("node-red", "node-red-contrib-modbus"):
            if not (NODERED / "node_modules" / module / "package.json").exists():
                return f"{module} is not installed in {NODERED} (make bench runs npm ci there)"
        return ""

    @contextlib.contextmanager
    def nodered(self, case: Case) -> Iterator[tuple[subprocess.Popen[bytes], RateProbe]]:
        run_id = f"nodered-{uuid.uuid4().hex[:8]}"
        user_dir = self.workdir / run_id
        user_dir.mkdir()
        flow = user_dir / "flow.json"
        shutil.copyfile(NODERED / "flow.json", flow)
        log_path = user_dir / "node-red.log"
        env = {
            **os.environ,
            "NODE_RED_FLOW_FILE": str(flow),
            "MQTT_PORT": str(self.servers.mosquitto.port),
            "TOPIC_ROOT": run_id,
            "MODBUS_POLL_MS": f"{case.load.interval_s * 1000:g}",
            **{
                f"MODBUS_PORT_{i}": str(port)
                for i, port in enumerate(self.servers.ports[:NODERED_DEVICES])
            },
        }
        probe = RateProbe(
            self.servers.mosquitto.port, f"{run_id}/devices/+", values_per_message=REGISTERS
        )
        command = [
            shutil.which("node") or "node",
            str(NODERED / "node_modules" / "node-red" / "red.js"),
            "--settings",
            str(NODERED / "settings.js"),
            "--userDir",
            str(user_dir),
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=user_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            deadline = time.monotonic() + FIRST_MESSAGE_S
            while not probe.seen_any.wait(0.5):
                if proc.poll() is not None:
                    raise RunFailed(
                        f"Node-RED exited with {proc.returncode}; log: {_tail(log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise RunFailed(
                        f"no Node-RED message reached the broker within {FIRST_MESSAGE_S:g} s "
                        f"(is the flow broken?); log: {_tail(log_path)}"
                    )
            yield proc, probe
        finally:
            probe.close()
            stop_process(proc)

    def run_nodered(self, case: Case, window_s: float) -> Measurement:
        with self.nodered(case) as (proc, probe):
            time.sleep(self.args.warmup)
            s0, s1, _, _, per_topic, latencies, probe_s = self.measure(
                proc.pid, probe, case.load, window_s, lambda: None
            )
            if proc.poll() is not None:
                raise RunFailed(f"Node-RED exited with {proc.returncode} during the window")
        r = self.common(
            s0,
            s1,
            latencies,
            read_values=(s1.sim_reads - s0.sim_reads) * REGISTERS,
            mqtt_values=sum(per_topic.values()) * REGISTERS,
            probe_s=probe_s,
        )
        r.why_not = self.delivery_problems(r, case.load, per_topic, probe)
        return r

    def run(self, case: Case) -> Measurement:
        window = case.load.quick_window_s if self.args.quick else case.load.window_s
        if case.system == "agent":
            return self.run_agent(case, window)
        return self.run_nodered(case, window)

    # -- profile

    def profile(self, py_spy: str, seconds: float, load: str) -> None:
        """py-spy samples the agent at `load` with both sinks; the top functions are printed."""
        case = Case(LOADS[load], "agent", influx=True)
        print(f"\nProfile: py-spy on the agent, {case.load.shape}, {case.sinks}, {seconds:g} s")
        with self.agent(case) as (proc, _probe, log_path, _port):
            time.sleep(self.args.warmup)
            out = log_path.parent / "profile.txt"
            with (log_path.parent / "py-spy.log").open("wb") as spy_log:
                spy = subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--duration",
                        str(max(1, round(seconds))),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--full-filenames",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=spy_log,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            try:
                spy.wait(seconds + 30)
            finally:
                stop_process(spy)
        if not out.exists():
            print(f"py-spy wrote no profile: {_tail(log_path.parent / 'py-spy.log')}")
            return
        summarize_profile(out)

    # -- soak

    def soak(self, minutes: float) -> None:
        load = LOADS["1k"]
        case = Case(load, "agent", influx=True)
        every_s = 10.0
        print(
            f"\nMemory soak: the agent, {load.shape}, MQTT + InfluxDB, {minutes:g} min, RSS "
            f"every {every_s:g} s (the issue's check: 60 min, RSS <= 64 MB, no growth)",
            flush=True,
        )
        samples: list[tuple[float, float]] = []
        with self.agent(case) as (proc, probe, _log, _port):
            start = time.monotonic()
            cpu0 = cpu_seconds(proc.pid)
            probe.open_window()
            next_at = start
            while True:
                if proc.poll() is not None:
                    raise RunFailed(f"the agent exited with {proc.returncode} during the soak")
                samples.append((time.monotonic() - start, rss_mib(proc.pid)))
                if len(samples) % 6 == 1:
                    at, now_mib = samples[-1]
                    print(f"  {at / 60:5.1f} min  RSS {now_mib:6.1f} MiB", flush=True)
                next_at += every_s
                if next_at - start > minutes * 60 + 1e-6:
                    break
                time.sleep(max(0.0, next_at - time.monotonic()))
            cpu = cpu_seconds(proc.pid) - cpu0
            per_topic, _, probe_s = probe.close_window()
            makeup = _rss_makeup(proc.pid)
        elapsed = samples[-1][0]
        messages = sum(per_topic.values())
        expected = load.devices / load.interval_s * probe_s
        rss = [r for _, r in samples]
        print(
            f"  RSS first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, min {min(rss):.1f}, max "
            f"{max(rss):.1f} ({len(samples)} samples over {elapsed / 60:.1f} min)"
        )
        print(
            f"  slope (least squares): {_slope_per_hour(samples):+.2f} MiB/hour over all samples, "
            f"{_slope_per_hour(samples[len(samples) // 2 :]):+.2f} MiB/hour over the second half"
        )
        print(f"  RSS at the end: {makeup}")
        print(
            f"  CPU over the soak: {cpu / max(elapsed, 1e-9) * 100:.2f} % of a core; MQTT "
            f"messages {messages:,} of {expected:,.0f} expected",
            flush=True,
        )


def _rss_makeup(pid: int) -> str:
    """RSS split into memory of the process's own (heap, stacks) and mapped files (the
    interpreter, shared libraries, extension modules), from /proc/<pid>/smaps_rollup."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError as exc:
        return f"(smaps_rollup unreadable: {exc})"
    kib = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            kib[key] = int(rest.split()[0])
    rss, anon = kib.get("Rss", 0), kib.get("Anonymous", 0)
    return (
        f"{rss / 1024:.1f} MiB = {anon / 1024:.1f} MiB anonymous (heap, stacks) + "
        f"{(rss - anon) / 1024:.1f} MiB of mapped files (interpreter, libraries, extensions)"
    )


def _slope_per_hour(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return math.nan
    xs, ys = zip(*samples, strict=True)
    return statistics.linear_regression(xs, ys).slope * 3600


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return text[-chars:] if text else "(empty)"


# ------------------------------------------------------------------------------------ output


def _num(value: float, fmt: str) -> str:
    return "-" if math.isnan(value) else format(value, fmt)


def _kept_up(row: dict[str, Any]) -> str:
    runs: list[Measurement] = row["runs"]
    done = [r for r in runs if not r.failed]
    if not done:
        return f"failed: {runs[0].failed}"
    if not row["case"].load.devices:
        return "n/a (nothing to poll)"
    ok = sum(not r.why_not for r in done)
    count = f"{ok}/{len(runs)}"
    if ok * 2 > len(runs):
        return f"yes {count}"
    first = next(r for r in runs if r.failed or r.why_not)
    return f"no {count}: " + (first.failed or "; ".join(first.why_not))


Column = tuple[str, str, Callable[[dict[str, Any]], str]]

COLUMNS: list[Column] = [
    ("row", "<", lambda r: r["case"].load.key),
    ("system", "<", lambda r: r["case"].system),
    ("sinks", "<", lambda r: r["case"].sinks),
    ("load", "<", lambda r: r["case"].load.shape),
    ("window s", ">", lambda r: _num(r["window_s"], ".0f")),
    ("CPU % core", ">", lambda r: _num(r["cpu_pct"], ".2f")),
    ("CPU s/10k v", ">", lambda r: _num(r["cpu_per_10k"], ".4f")),
    ("RSS MiB", ">", lambda r: _num(r["rss_mib"], ".1f")),
    ("p50 ms", ">", lambda r: _num(r["p50_ms"], ".0f")),
    ("p99 ms", ">", lambda r: _num(r["p99_ms"], ".0f")),
    ("nominal v/s", ">", lambda r: f"{r['case'].load.nominal:,.0f}"),
    ("read v/s", ">", lambda r: _num(r["read"], ",.0f")),
    ("MQTT v/s", ">", lambda r: _num(r["mqtt"], ",.0f")),
    ("InfluxDB v/s", ">", lambda r: _num(r["influx"], ",.0f")),
    ("sim CPU%", ">", lambda r: _num(r["sim_cpu_pct"], ".1f")),
    ("host CPU%", ">", lambda r: _num(r["host_cpu_pct"], ".0f")),
    ("kept up", "<", _kept_up),
]


def median_row(case: Case, runs: list[Measurement]) -> dict[str, Any]:
    row: dict[str, Any] = {"case": case, "runs": runs}
    done = [r for r in runs if not r.failed]
    for name in NUMERIC:
        finite = [getattr(r, name) for r in done if not math.isnan(getattr(r, name))]
        row[name] = statistics.median(finite) if finite else math.nan
    return row


def print_run(case: Case, index: int, r: Measurement) -> None:
    if r.failed:
        print(f"  {case.label} run {index}: FAILED: {r.failed}", flush=True)
        return
    influx = "" if math.isnan(r.influx) else f", influx {r.influx:,.0f}"
    verdict = "keeps up" if not r.why_not else "falls behind: " + "; ".join(r.why_not)
    if not case.load.devices:
        verdict = "idle"
    print(
        f"  {case.label} run {index}: {r.window_s:.0f} s window, CPU {r.cpu_pct:.2f} % "
        f"({_num(r.cpu_per_10k, '.4f')} s/10k), RSS {r.rss_mib:.1f} MiB, read {r.read:,.0f} v/s, "
        f"mqtt {r.mqtt:,.0f}{influx}, p50/p99 {_num(r.p50_ms, '.0f')}/{_num(r.p99_ms, '.0f')} ms, "
        f"sim {r.sim_cpu_pct:.0f} %, host {r.host_cpu_pct:.0f} %; {verdict}",
        flush=True,
    )


def print_summary(
    args: argparse.Namespace, results: dict[Case, list[Measurement]], started: float
) -> None:
    rows = [median_row(case, runs) for case, runs in results.items() if runs]
    if not rows:
        return
    print()
    print(
        f"Medians of {args.repeat} run(s) per row (v = values; CPU of the agent's or Node-RED's "
        f"process, all threads, % of one core; window = the measured seconds; {os.cpu_count()} "
        f"CPUs; {time.monotonic() - started:.0f} s so far):"
    )
    print_table(COLUMNS, rows)


# -------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_cpu",
        description="CPU, memory and latency of the edge agent beside Node-RED (see the docstring).",
    )
    p.add_argument(
        "--rows",
        default=None,
        help=f"comma-separated loads out of {','.join(LOADS)} (default: {DEFAULT_ROWS}); "
        "'none' for none",
    )
    p.add_argument("--repeat", type=int, default=None, help="runs per row, medians (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 run per row, short windows (idle/1k 10 s, others 5 s), OPC UA 1 short run: "
        "checks the script, not the figures",
    )
    p.add_argument("--warmup", type=float, default=None, help="after the first message, s (5)")
    p.add_argument("--no-nodered", action="store_true", help="leave out the Node-RED rows")
    p.add_argument("--no-opcua", action="store_true", help="leave out the OPC UA table")
    p.add_argument(
        "--soak-minutes",
        type=float,
        default=0.0,
        help="memory soak of the agent at 10 x 100 / 1 s for this long (the issue's: 60)",
    )
    p.add_argument(
        "--py-spy",
        default=None,
        metavar="BIN",
        help="after the rows, profile the agent (both sinks) for 60 s with this py-spy",
    )
    p.add_argument(
        "--py-spy-load",
        default="1k",
        choices=[k for k in LOADS if k != "idle"],
        help="the load --py-spy profiles at (default 1k)",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")
    args = p.parse_args(argv)
    if args.rows is None:
        args.rows = "none" if args.soak_minutes or args.py_spy else DEFAULT_ROWS
    args.row_keys = [] if args.rows == "none" else [k.strip() for k in args.rows.split(",") if k]
    unknown = [k for k in args.row_keys if k not in LOADS]
    if unknown:
        p.error(f"unknown row(s) {', '.join(unknown)}; there are: {', '.join(LOADS)}")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 2.0 if args.quick else 5.0
    if args.repeat < 1 or args.soak_minutes < 0:
        p.error("--repeat must be positive and --soak-minutes not negative")
    if not args.row_keys:
        args.no_opcua = True  # the OPC UA table goes with the rows; a soak alone is a soak
    return args


def print_header(args: argparse.Namespace) -> None:
    windows = ", ".join(
        f"{k} {LOADS[k].quick_window_s if args.quick else LOADS[k].window_s:g} s"
        for k in args.row_keys
    )
    print(
        f"Modbus TCP simulator (pymodbus, own process, {SIM_DEVICES} devices); every device "
        f"{REGISTERS} uint16 holding registers 0..{REGISTERS - 1}, one request per poll; "
        f"MQTT per poll at QoS 1 to mosquitto, InfluxDB = VictoriaMetrics; warm-up "
        f"{args.warmup:g} s; windows: {windows}; {args.repeat} run(s) each, interleaved; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )


def bench(args: argparse.Namespace) -> int:
    started = time.monotonic()
    nodered_problem = "" if args.no_nodered else CpuBench.nodered_installed()
    if nodered_problem:
        print(f"Node-RED rows left out: {nodered_problem}", flush=True)
    cases = cases_for(args.row_keys, nodered=not args.no_nodered and not nodered_problem)
    results: dict[Case, list[Measurement]] = {case: [] for case in cases}
    with contextlib.ExitStack() as stack:
        b = CpuBench(args, stack)
        b.start()
        if cases:
            print_header(args)
        try:
            for index in range(1, args.repeat + 1):
                for case in cases:
                    try:
                        r = b.run(case)
                    except RunFailed as exc:
                        r = Measurement.broken_off(str(exc))
                    results[case].append(r)
                    print_run(case, index, r)
            if args.py_spy:
                b.profile(args.py_spy, 10.0 if args.quick else 60.0, args.py_spy_load)
            if args.soak_minutes:
                b.soak(args.soak_minutes)
        except AgentStalled as exc:
            print_stall(exc)
            print_summary(args, results, started)
            return 1
        except KeyboardInterrupt:
            print_summary(args, results, started)  # what finished, before everything stops
            raise
        print_summary(args, results, started)
    if not args.no_opcua:
        return run_opcua(args, started)
    print(f"Total benchmark time: {time.monotonic() - started:.0f} s.")
    return 0


def run_opcua(args: argparse.Namespace, started: float) -> int:
    from tests.bench import bench_opcua

    opcua_args = ["--nodes", "10000", "--stamp", "each", "--repeat", str(args.repeat)]
    if args.quick:
        opcua_args += ["--seconds", "4", "--warmup", "2", "--grace", "2"]
    if args.keep_workdir:
        opcua_args.append("--keep-workdir")
    print(f"\nOPC UA: python -m tests.bench.bench_opcua {' '.join(opcua_args)}", flush=True)
    code = bench_opcua.bench(bench_opcua.parse_args(opcua_args))
    print(f"Total benchmark time (both tables): {time.monotonic() - started:.0f} s.")
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_interruptibly(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
