"""OPC UA subscription benchmark: asyncua server → `edge-agent run` (subscribe) → mosquitto.

    .venv/bin/python -m tests.bench.bench_opcua [--nodes 1000,10000 --update-s 1 --tick-s 0.1
                                                 --publishing-ms 500 --stamp tick|each
                                                 --items-per-sub 1000 --seconds T --warmup W
                                                 --grace G --repeat R --keep-workdir
                                                 --py-spy /tmp/pyspy/bin/py-spy]

A script, not a test: it prints figures and asserts nothing about speed. It reuses the process
accounting, /metrics scraping and clean-up approach of tests.bench.bench_pipeline; every process it
starts (OPC UA server, mosquitto, one agent per run, py-spy) and its temporary directory are removed
again on normal exit, on failure and on Ctrl+C.

What runs where:
  * the OPC UA server is an asyncua 2.1 Server in its own OS process (this script,
    `--serve-opcua`), so its CPU is not charged to the agent: namespace urn:edge-agent:bench,
    N Double variables ns=<idx>;s=Bench.V<i> (in folders of 250: asyncua's add_variable is
    quadratic in the number of children of one parent). Every --tick-s it writes the next slice
    of N x tick/update nodes, rotating, so every node gets a new value every --update-s and the
    offered change rate is N/update values/s. The server process skips asyncua's deep copy of
    every written value per monitored item (--stock-server keeps it): with it, one process tops
    out below 10,000 writes/s on a 2-CPU host. --stamp tick gives all writes of one tick the same
    SourceTimestamp (as a PLC scan does); --stamp each stamps every write separately (the agent
    still makes one record per publish response, each value with its own time). The server counts its own writes: the
    offered rate printed is what it achieved, not only what was asked;
  * mosquitto comes from tests.support.servers;
  * the agent is `edge-agent run <generated config>`: one opcua device, security none, mode
    subscribe, publishing_interval_ms --publishing-ms, sampling_interval_ms = update period, all N
    tags as nsu=urn:edge-agent:bench;s=Bench.V<i>, max_items_per_subscription --items-per-sub
    (default 1000: 10,000 nodes use 10 subscriptions), MQTT raw_values per_poll, QoS 1;
  * an MQTT subscriber in this process decodes every per-poll payload and counts the size of its
    "values" dict (edge_device_values_total does not count subscription values).

Each run: start the agent, time its start-up, warm up, then measure over a steady window. Values
are attributed to the window by their source timestamp, not by their arrival, so a burst of
publish responses at either edge does not skew the count; the subscriber waits --grace seconds
after the window for values stamped inside it:
  offered v/s          the server's own writes stamped in the window (every write is a change);
                       in --stamp each, a tick's writes count at the tick's start
  delivered v/s        values stamped in the window that arrived in per-poll MQTT payloads
                       (within the window + grace); "% of offered" is their ratio
  msgs/s, v/msg        MQTT messages per second and values per message (one message per
                       publish response; each value counts at its own time, the payload's
                       "ts" or, if it differs, its entry under "times")
  empty/s              messages with an empty "values" dict
  dup v                values of the window delivered more than once (every write is unique)
  sink rec/s           edge_sink_delivered_records_total{sink="mqtt"} per second in the window:
                       what the sink moved, even when it is behind (then delivered v/s is low)
  CPU s/10k v          agent utime+stime (/proc, all threads) per 10,000 values delivered
  CPU s/10k rec        the same CPU per 10,000 records the MQTT sink moved (sink rec/s): the
                       cost that still means something when the agent is behind
  agent/server CPU%    utime+stime over the window, % of one CPU; host CPU% is of all CPUs
  RSS                  VmRSS of the agent at the end of the window
  p50/p99              per value: subscriber arrival time minus payload "ts" (the OPC UA source
                       timestamp, ms precision); includes the wait for the publishing interval;
                       a value later than the window + grace is missing from delivered instead
  pending              edge_sink_pending_records{sink="mqtt"} at the end of the window
Start-up, from spawning `edge-agent run`:
  http s               /metrics answers
  link s               the retained link "up" message arrives: connect, resolve every nsu,
                       create every monitored item, and the first Read of every tag are done
  all-read s           the first Read's values (one message with all N tags) arrive
  all-sub s            every node has been reported at least once by a subscription
A run "keeps up" when delivered >= 95 % of offered and the MQTT sink ends the window less than
one second of records behind.

--py-spy BIN adds one profiled run at the largest N (not in the medians): py-spy samples the agent
during the window and the top functions (own time and inclusive) are printed.

Exit codes: 0 done, 1 stalled agent, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench.bench_pipeline import (
    REPO,
    VENV_BIN,
    AgentStalled,
    Bench,
    cpu_seconds,
    host_busy,
    print_stall,
    rss_mib,
)
from tests.bench.common import (
    ask,
    close_helper,
    die_with_parent,
    run_interruptibly,
    stop_process,
)

NAMESPACE = "urn:edge-agent:bench"
FOLDER_SIZE = 250
DEVICE = "plc"


def tag_name(i: int) -> str:
    return f"v{i:05d}"


# ------------------------------------------------------------------ OPC UA server (own process)


def serve_opcua(nodes: int, update_s: float, tick_s: float, stamp: str, stock: bool) -> int:
    """Child process: prints 'ready <port>', then writes; answers 'stats' and 'stamped A B' on stdin."""
    import logging
    from datetime import UTC

    from asyncua import Server, ua
    from asyncua.server.monitored_item_service import MonitoredItemValues

    from tests.support.servers import free_port

    def keep_without_copy(self: Any, value: Any) -> None:
        # Stock asyncua deep-copies every written DataValue for every monitored item: about 60 %
        # of this process's CPU at 10,000 writes/s, enough to make the server the limit. The
        # writer below never touches a DataValue again after writing it, so a reference will do.
        self.old_dvalue, self.current_dvalue = self.current_dvalue, value

    if not stock:
        MonitoredItemValues.set_current_datavalue = keep_without_copy  # type: ignore[method-assign]
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the server stops
    counters = {"writes": 0, "late_ticks": 0, "ticks": 0}
    history: deque[tuple[float, int]] = deque(maxlen=100_000)  # (tick's timestamp, writes)

    async def main() -> None:
        server = Server()
        await server.init()
        port = free_port()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE)
        root = await server.nodes.objects.add_folder(ua.NodeId("Bench", idx), f"{idx}:Bench")
        ids: list[Any] = []
        folder = root
        for i in range(nodes):
            if i % FOLDER_SIZE == 0:
                folder = await root.add_folder(
                    ua.NodeId(f"Bench.F{i // FOLDER_SIZE}", idx), f"{idx}:F{i // FOLDER_SIZE}"
                )
            node = await folder.add_variable(
                ua.NodeId(f"Bench.V{i}", idx), f"{idx}:V{i}", ua.Variant(0.0, ua.VariantType.Double)
            )
            ids.append(node.nodeid)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def control() -> None:
            for line in sys.stdin:
                words = line.split()
                if words == ["stats"]:
                    print(json.dumps({**counters, "t": time.monotonic()}), flush=True)
                elif len(words) == 3 and words[0] == "stamped":
                    # Writes whose source timestamp (as ms, like the agent's payloads) lies in
                    # [start, end): what the window offered, counted the way delivery is.
                    start, end = float(words[1]), float(words[2])
                    ticks = tuple(history)  # one C-level copy, under the GIL
                    print(sum(n for at, n in ticks if start <= at < end), flush=True)
            loop.call_soon_threadsafe(stop.set)  # stdin closed: the parent is done (or gone)

        async def writer() -> None:
            # Rate-based: each tick writes what is due since the start, so a tick that comes
            # late is made up by the next ones; more than 1 s behind is given up (and counted).
            double = ua.VariantType.Double
            rate = nodes / update_s
            cursor = value = written = 0
            start = next_tick = time.monotonic()
            while True:
                count = int(rate * (time.monotonic() - start)) - written
                if count > rate:
                    counters["late_ticks"] += 1
                    start += (count - rate) / rate  # drop what is more than 1 s overdue
                    count = int(rate)
                now = datetime.now(UTC)
                for _ in range(count):
                    value += 1  # a new value on every write: each one is a data change
                    stamp_at = now if stamp == "tick" else datetime.now(UTC)
                    await server.write_attribute_value(
                        ids[cursor],
                        ua.DataValue(
                            ua.Variant(float(value), double),
                            SourceTimestamp=stamp_at,
                            ServerTimestamp=stamp_at,
                        ),
                    )
                    cursor = (cursor + 1) % nodes
                written += count
                history.append((math.floor(now.timestamp() * 1000) / 1000, count))
                counters["writes"] += count
                counters["ticks"] += 1
                next_tick += tick_s
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

        print(f"ready {port}", flush=True)
        threading.Thread(target=control, daemon=True).start()
        task = asyncio.create_task(writer())
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop()

    asyncio.run(main())
    return 0


class OpcUaServer:
    """The server process seen from the benchmark."""

    def __init__(self, args: argparse.Namespace, nodes: int) -> None:
        self.nodes = nodes
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_opcua",
                "--serve-opcua",
                str(nodes),
                "--update-s",
                str(args.update_s),
                "--tick-s",
                str(args.tick_s),
                "--stamp",
                args.stamp,
                *(["--stock-server"] if args.stock_server else []),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            self.stop()
            raise RuntimeError(f"OPC UA server did not start: {line!r}")
        self.url = f"opc.tcp://127.0.0.1:{line[1]}/bench"
        self.build_s = time.monotonic() - started

    def stats(self) -> dict[str, float]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the OPC UA server exited with {self.proc.returncode}")
        return dict(json.loads(ask(self.proc, "stats")))

    def stamped(self, start: float, end: float) -> int:
        """How many writes carried a source timestamp in [start, end)."""
        return int(ask(self.proc, f"stamped {start!r} {end!r}"))

    def stop(self) -> None:
        close_helper(self.proc)


# --------------------------------------------------------------------------- broker subscriber


@dataclass
class Window:
    seconds: float
    messages: int
    values: int
    empty: int
    duplicates: int
    latencies: list[tuple[float, int]]  # (ms, values of the message)


class ValueProbe:
    """Subscribes to one agent's per-poll topic and its link topic; counts values, not messages."""

    def __init__(self, port: int, root: str, nodes: int) -> None:
        import paho.mqtt.client as mqtt

        self.nodes = nodes
        self.values_topic = f"{root}/devices/{DEVICE}"
        self.link_topic = f"{root}/devices/{DEVICE}/link"
        self._lock = threading.Lock()
        self._open = False
        self._opened = 0.0
        # start-up (monotonic arrival times)
        self.link_at: float | None = None
        self.link_ts: str | None = None
        self.first_value_at: float | None = None
        self.all_read_at: float | None = None
        self.all_sub_at: float | None = None
        self.all_sub = threading.Event()
        self._early: list[tuple[float, str, list[str]]] = []  # before the link message
        self._seen_sub: set[str] = set()
        # window
        # (ts, arrival, values, repeated, message number): one entry per time stamp of a message
        self._seen: list[tuple[float, float, int, int, int]] = []
        self._messages = 0
        self._values_seen: set[Any] = set()  # the server writes every value only once
        subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(self.values_topic, 1), (self.link_topic, 1)]
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise TimeoutError("benchmark subscriber could not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        arrived, now = time.monotonic(), time.time()
        body = json.loads(msg.payload)
        if msg.topic == self.link_topic:
            if body.get("state") == "up" and self.link_at is None:
                self.link_at, self.link_ts = arrived, body["ts"]
                early, self._early = self._early, []
                for at, ts, names in early:
                    self._startup(at, ts, names)
            return
        values: dict[str, Any] = body["values"]
        ts: str = body["ts"]
        if not self._open and (self.all_sub_at is None or self.all_read_at is None):
            if self.first_value_at is None and values:
                self.first_value_at = arrived
            if self.link_ts is None:
                self._early.append((arrived, ts, list(values)))
            else:
                self._startup(arrived, ts, list(values))
        if not self._open:
            return
        # One message per publish response: a value stamped otherwise than the message's "ts"
        # has its own time under "times"; each counts at its own time.
        times: dict[str, str] = body.get("times", {})
        by_time: dict[str, list[Any]] = {}
        for tag, value in values.items():
            by_time.setdefault(times.get(tag, ts), []).append(value)
        with self._lock:
            self._messages += 1
            number = self._messages
            for stamp, group in by_time.items():
                sent = datetime.fromisoformat(stamp).timestamp()  # "...T01:40:00.123Z"
                before = len(self._values_seen)
                self._values_seen.update(group)
                repeated = len(group) - (len(self._values_seen) - before)
                self._seen.append((sent, now, len(group), repeated, number))
            if not values:
                self._seen.append((datetime.fromisoformat(ts).timestamp(), now, 0, 0, number))

    def _startup(self, arrived: float, ts: str, names: list[str]) -> None:
        # The first Read after connecting is delivered under the same timestamp as the link
        # record (the poll's); everything else carries a source timestamp from a subscription.
        if ts == self.link_ts:
            if len(names) >= self.nodes and self.all_read_at is None:
                self.all_read_at = arrived
            return
        self._seen_sub.update(names)
        if len(self._seen_sub) >= self.nodes and self.all_sub_at is None:
            self.all_sub_at = arrived
            self.all_sub.set()

    def open_window(self) -> float:
        """Start recording every message; returns the wall-clock start of the window."""
        with self._lock:
            self._seen = []
            self._values_seen = set()
            self._open = True
        return time.time()

    def close_window(self, start: float, end: float) -> Window:
        """Stop recording; what carries a timestamp in [start, end) counts, whenever it came."""
        with self._lock:
            self._open = False
            seen, self._seen = self._seen, []
        inside = [e for e in seen if start <= e[0] < end]
        return Window(
            seconds=end - start,
            messages=len({number for *_, number in inside}),
            values=sum(n for _, _, n, _, _ in inside),
            empty=sum(1 for _, _, n, _, _ in inside if not n),
            duplicates=sum(d for _, _, _, d, _ in inside),
            latencies=[((arrived - sent) * 1000, n) for sent, arrived, n, _, _ in inside if n],
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def timed_scrape(agent: subprocess.Popen[bytes], port: int, log_path: Path) -> tuple[float, Any]:
    """/metrics and the time it stands for (the middle of the request)."""
    before = time.monotonic()
    result = Bench._scrape(agent, port, log_path)
    return (before + time.monotonic()) / 2, result


def weighted_percentile(pairs: list[tuple[float, int]], q: float) -> float:
    """Percentile over values, where each (latency, count) pair stands for `count` values."""
    total = sum(n for _, n in pairs)
    if not total:
        return math.nan
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for latency, n in sorted(pairs):
        seen += n
        if seen >= rank:
            return latency
    return math.nan


# ------------------------------------------------------------------------------------- runs


@dataclass
class RunResult:
    nominal: float
    offered: float
    delivered: float
    msgs: float
    per_msg: float
    empty: float
    duplicates: float
    sink_records: float
    cpu_per_10k: float
    cpu_per_10k_records: float
    agent_cpu_pct: float
    server_cpu_pct: float
    host_cpu_pct: float
    rss_mib: float
    p50_ms: float
    p99_ms: float
    pending: float
    late_ticks: float
    http_s: float
    link_s: float
    all_read_s: float
    all_sub_s: float
    keeps_up: bool = field(default=False)


NUMERIC = [
    "nominal",
    "offered",
    "delivered",
    "msgs",
    "per_msg",
    "empty",
    "duplicates",
    "sink_records",
    "cpu_per_10k",
    "cpu_per_10k_records",
    "agent_cpu_pct",
    "server_cpu_pct",
    "host_cpu_pct",
    "rss_mib",
    "p50_ms",
    "p99_ms",
    "pending",
    "late_ticks",
    "http_s",
    "link_s",
    "all_read_s",
    "all_sub_s",
]


class OpcBench:
    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-bench-opcua-"))
        if args.keep_workdir:
            print(f"work directory (kept): {self.workdir}", flush=True)
        else:
            stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)

    def start_mosquitto(self) -> None:
        from tests.support.servers import Mosquitto, free_port

        self.mosquitto = Mosquitto(free_port(), self.workdir)
        self.stack.callback(self.mosquitto.stop)
        self.mosquitto.start()

    def write_config(self, server: OpcUaServer, agent_id: str, http_port: int) -> Path:
        args = self.args
        run_dir = self.workdir / agent_id
        run_dir.mkdir()
        config = {
            "agent": {
                "id": agent_id,
                "buffer_path": str(run_dir / "outbox.db"),
                "pki_path": str(run_dir / "pki"),
                "log_level": "WARNING",
                "http": {"host": "127.0.0.1", "port": http_port},
            },
            "devices": {
                DEVICE: {
                    "driver": "opcua",
                    "url": server.url,
                    "security": "none",
                    "mode": "subscribe",
                    "publishing_interval_ms": args.publishing_ms,
                    "sampling_interval_ms": args.update_s * 1000,
                    "max_items_per_subscription": args.items_per_sub,
                    "tags": {
                        tag_name(i): {"node": f"nsu={NAMESPACE};s=Bench.V{i}"}
                        for i in range(server.nodes)
                    },
                }
            },
            "sinks": {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": self.mosquitto.port,
                    "raw_values": "per_poll",
                    "qos": 1,
                },
            },
        }
        path = run_dir / "agent.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    def run(self, server: OpcUaServer, profile: bool = False) -> RunResult:
        from tests.support.servers import free_port, wait_for_port

        args = self.args
        agent_id = f"bench-{uuid.uuid4().hex[:8]}"
        http_port = free_port()
        config = self.write_config(server, agent_id, http_port)
        probe = ValueProbe(self.mosquitto.port, f"edge/{agent_id}", server.nodes)
        log_path = config.parent / "agent.log"
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        spawned = time.monotonic()
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [str(VENV_BIN / "edge-agent"), "run", str(config)],
                cwd=config.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        spy: subprocess.Popen[bytes] | None = None
        try:
            wait_for_port(http_port, timeout_s=60, proc=agent)  # type: ignore[arg-type]
            http_at = time.monotonic()
            deadline = time.monotonic() + args.startup_timeout
            while not probe.all_sub.wait(1.0):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not every node was reported within {args.startup_timeout:g} s "
                        f"({len(probe._seen_sub)} of {server.nodes}); log: {log_path}"
                    )
                Bench._scrape(agent, http_port, log_path)  # the agent is alive and answering
            time.sleep(args.warmup)
            t_m0, m0 = timed_scrape(agent, http_port, log_path)
            cpu0, host0, scpu0 = cpu_seconds(agent.pid), host_busy(), cpu_seconds(server.proc.pid)
            s0 = server.stats()
            start = probe.open_window()
            if profile:
                spy = self._start_py_spy(agent.pid, config.parent / "profile.txt")
            time.sleep(args.seconds)
            end = time.time()
            s1 = server.stats()
            cpu1, host1, scpu1 = cpu_seconds(agent.pid), host_busy(), cpu_seconds(server.proc.pid)
            t_m1, m1 = timed_scrape(agent, http_port, log_path)
            rss = rss_mib(agent.pid)
            time.sleep(args.grace)  # values stamped inside the window may still be on their way
            window = probe.close_window(start, end)
            offered_values = server.stamped(start, end)
            if spy is not None:
                spy.wait(args.seconds + 30)
                self.profile_path = config.parent / "profile.txt"
        finally:
            if spy is not None and spy.poll() is None:
                stop_process(spy)
            probe.close()
            stop_process(agent)

        def rel(at: float | None) -> float:
            return at - spawned if at is not None else math.nan

        server_s = s1["t"] - s0["t"]
        w = window
        offered = offered_values / w.seconds
        delivered = w.values / w.seconds
        pending = m1.total("edge_sink_pending_records", sink="mqtt")
        records_per_s = (
            m1.total("edge_sink_delivered_records_total", sink="mqtt")
            - m0.total("edge_sink_delivered_records_total", sink="mqtt")
        ) / (t_m1 - t_m0)
        result = RunResult(
            nominal=server.nodes / args.update_s,
            offered=offered,
            delivered=delivered,
            msgs=w.messages / w.seconds,
            per_msg=(w.values / (w.messages - w.empty)) if w.messages > w.empty else math.nan,
            empty=w.empty / w.seconds,
            duplicates=w.duplicates,
            sink_records=records_per_s,
            cpu_per_10k=(cpu1 - cpu0) / w.values * 10_000 if w.values else math.nan,
            cpu_per_10k_records=(
                (cpu1 - cpu0) / w.seconds / records_per_s * 10_000 if records_per_s else math.nan
            ),
            agent_cpu_pct=(cpu1 - cpu0) / w.seconds * 100,
            server_cpu_pct=(scpu1 - scpu0) / server_s * 100,
            host_cpu_pct=(host1[0] - host0[0]) / max(1, host1[1] - host0[1]) * 100,
            rss_mib=rss,
            p50_ms=weighted_percentile(w.latencies, 50),
            p99_ms=weighted_percentile(w.latencies, 99),
            pending=pending,
            late_ticks=s1["late_ticks"] - s0["late_ticks"],
            http_s=http_at - spawned,
            link_s=rel(probe.link_at),
            all_read_s=rel(probe.all_read_at),
            all_sub_s=rel(probe.all_sub_at),
        )
        result.keeps_up = delivered >= 0.95 * offered and pending < max(records_per_s, 1.0)
        return result

    def _start_py_spy(self, pid: int, out: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                self.args.py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, int(self.args.seconds))),
                "--rate",
                "100",
                "--format",
                "raw",
                "--nonblocking",
                "--full-filenames",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(out.parent / "py-spy.log").open("wb"),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


# ------------------------------------------------------------------------------------ output


def median_of(results: list[RunResult]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in NUMERIC:
        finite = [getattr(r, name) for r in results if not math.isnan(getattr(r, name))]
        row[name] = statistics.median(finite) if finite else math.nan
    row["kept_up"] = sum(r.keeps_up for r in results)
    row["runs"] = len(results)
    return row


Column = tuple[str, str, Callable[[dict[str, Any]], str]]

THROUGHPUT: list[Column] = [
    ("nodes", ">", lambda r: f"{r['nodes']:,}"),
    ("subs", ">", lambda r: f"{r['subs']}"),
    ("asked v/s", ">", lambda r: f"{r['nominal']:,.0f}"),
    ("offered v/s", ">", lambda r: f"{r['offered']:,.0f}"),
    ("server CPU%", ">", lambda r: f"{r['server_cpu_pct']:.0f}"),
    ("delivered v/s", ">", lambda r: f"{r['delivered']:,.0f}"),
    ("% of offered", ">", lambda r: f"{r['delivered'] / r['offered'] * 100:.1f}"),
    ("msgs/s", ">", lambda r: f"{r['msgs']:,.1f}"),
    ("v/msg", ">", lambda r: f"{r['per_msg']:,.1f}"),
    ("empty/s", ">", lambda r: f"{r['empty']:.2f}"),
    ("dup v", ">", lambda r: f"{r['duplicates']:,.0f}"),
    ("sink rec/s", ">", lambda r: f"{r['sink_records']:,.0f}"),
    ("CPU s/10k v", ">", lambda r: f"{r['cpu_per_10k']:.3f}"),
    ("CPU s/10k rec", ">", lambda r: f"{r['cpu_per_10k_records']:.3f}"),
    ("agent CPU%", ">", lambda r: f"{r['agent_cpu_pct']:.0f}"),
    ("host CPU%", ">", lambda r: f"{r['host_cpu_pct']:.0f}"),
    ("RSS MiB", ">", lambda r: f"{r['rss_mib']:.0f}"),
    ("p50 ms", ">", lambda r: f"{r['p50_ms']:.0f}"),
    ("p99 ms", ">", lambda r: f"{r['p99_ms']:.0f}"),
    ("pending", ">", lambda r: f"{r['pending']:.0f}"),
    ("keeps up", ">", lambda r: f"{r['kept_up']}/{r['runs']}"),
]

STARTUP: list[Column] = [
    ("nodes", ">", lambda r: f"{r['nodes']:,}"),
    ("server build s", ">", lambda r: f"{r['build_s']:.1f}"),
    ("http s", ">", lambda r: f"{r['http_s']:.2f}"),
    ("link up s", ">", lambda r: f"{r['link_s']:.2f}"),
    ("all-read s", ">", lambda r: f"{r['all_read_s']:.2f}"),
    ("all-sub s", ">", lambda r: f"{r['all_sub_s']:.2f}"),
]


def print_table(columns: list[Column], rows: list[dict[str, Any]]) -> None:
    cells = [[fmt(r) for _, _, fmt in columns] for r in rows]
    widths = [
        max(len(title), *(len(c[i]) for c in cells)) for i, (title, _, _) in enumerate(columns)
    ]
    line = "  ".join(
        f"{title:{align}{w}}" for (title, align, _), w in zip(columns, widths, strict=True)
    )
    print(line)
    print("-" * len(line))
    for c in cells:
        print(
            "  ".join(
                f"{v:{align}{w}}" for v, (_, align, _), w in zip(c, columns, widths, strict=True)
            )
        )


def print_run(nodes: int, index: int | str, r: RunResult) -> None:
    print(
        f"  {nodes:>6,} nodes run {index}: offered {r.offered:,.0f} v/s (server CPU "
        f"{r.server_cpu_pct:.0f} %), delivered {r.delivered:,.0f} v/s in {r.msgs:,.1f} msgs/s, "
        f"CPU {r.cpu_per_10k:.3f} s/10k ({r.agent_cpu_pct:.0f} %), RSS {r.rss_mib:.0f} MiB, "
        f"p50/p99 {r.p50_ms:.0f}/{r.p99_ms:.0f} ms, pending {r.pending:.0f}, "
        f"sink {r.sink_records:,.0f} records/s, {r.duplicates:,.0f} values twice; "
        f"start-up: link "
        f"{r.link_s:.1f} s, all-sub {r.all_sub_s:.1f} s; "
        + (f"server > 1 s behind {r.late_ticks:.0f}x; " if r.late_ticks else "")
        + f"{'keeps up' if r.keeps_up else 'FALLS BEHIND'}",
        flush=True,
    )


def summarize_profile(path: Path, top: int = 18) -> None:
    """py-spy's raw (collapsed) stacks → own-time and inclusive-time tables by function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short_frame(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"py-spy: {total} samples of the agent (non-idle, all threads) during the window")
    print("  own time (leaf function):")
    for name, n in own.most_common(top):
        print(f"    {n / total * 100:5.1f} %  {name}")
    print("  inclusive time:")
    for name, n in inclusive.most_common(top + 12):
        print(f"    {n / total * 100:5.1f} %  {name}")
    print("  inclusive time, this project's functions (drivers/, edge_agent/):")
    own_code = [
        (k, n) for k, n in inclusive.most_common() if "(drivers/" in k or "(edge_agent/" in k
    ]
    for name, n in own_code[:top]:
        print(f"    {n / total * 100:5.1f} %  {name}")


def _short_frame(frame: str) -> str:
    # "function (path/to/module.py:123)" → "function (module.py)": one entry per function.
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    marker = "site-packages/"
    if marker in file:
        file = file.split(marker, 1)[1]
    elif str(REPO) in file:
        file = file.split(str(REPO) + "/", 1)[1]
    else:
        file = file.rsplit("/", 1)[-1]
    return f"{name} ({file})"


# -------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_opcua",
        description="OPC UA subscription throughput of the edge agent (see the module docstring).",
    )
    p.add_argument("--nodes", default="1000,10000", help="node counts, comma-separated")
    p.add_argument("--update-s", type=float, default=1.0, help="every node changes this often")
    p.add_argument("--tick-s", type=float, default=0.1, help="the server writes a slice this often")
    p.add_argument(
        "--stamp",
        choices=("tick", "each"),
        default="tick",
        help="tick: one SourceTimestamp per server tick; each: one per write",
    )
    p.add_argument(
        "--stock-server",
        action="store_true",
        help="leave asyncua's per-item deepcopy of written values in the server (slower server)",
    )
    p.add_argument("--publishing-ms", type=float, default=500, help="publishing interval, ms")
    p.add_argument(
        "--items-per-sub",
        type=int,
        default=1000,
        help="max_items_per_subscription of the device (10,000 nodes / 1000 = 10 subscriptions)",
    )
    p.add_argument("--seconds", type=float, default=8.0, help="measured window per run, s")
    p.add_argument(
        "--grace",
        type=float,
        default=3.0,
        help="after the window, wait this long for values stamped inside it, s",
    )
    p.add_argument("--warmup", type=float, default=3.0, help="after every node was seen, s")
    p.add_argument("--repeat", type=int, default=3, help="runs per node count (medians)")
    p.add_argument(
        "--startup-timeout", type=float, default=120.0, help="for every node to be reported, s"
    )
    p.add_argument(
        "--py-spy",
        default=None,
        metavar="BIN",
        help="profile one extra run at the largest node count with this py-spy",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep configs, logs, profiles")
    p.add_argument("--serve-opcua", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.node_counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        p.error("--nodes takes integers, e.g. 1000,10000")
    if not args.node_counts or min(args.node_counts) < 1:
        p.error("--nodes must be positive")
    if args.repeat < 1 or args.seconds <= 0 or args.update_s <= 0:
        p.error("--repeat, --seconds and --update-s must be positive")
    if not 0.001 <= args.tick_s <= args.update_s:
        p.error("--tick-s must be between 0.001 and --update-s")
    return args


def bench(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        b = OpcBench(args, stack)
        started = time.monotonic()
        b.start_mosquitto()
        print(
            f"asyncua {_asyncua_version()} server (own process) → edge-agent (opcua, subscribe, "
            f"publishing {args.publishing_ms:g} ms, sampling {args.update_s * 1000:g} ms, "
            f"<= {args.items_per_sub} items/subscription) → mosquitto (per_poll, QoS 1); every node changes every "
            f"{args.update_s:g} s in slices every {args.tick_s:g} s, source timestamps per "
            f"{args.stamp}; warm-up {args.warmup:g} s, window {args.seconds:g} s, "
            f"{args.repeat} run(s) each; {os.cpu_count()} CPUs",
            flush=True,
        )
        results: dict[int, list[RunResult]] = {}
        builds: dict[int, float] = {}
        try:
            for n in args.node_counts:
                server = OpcUaServer(args, n)
                stack.callback(server.stop)
                builds[n] = server.build_s
                print(
                    f"{n:,} nodes: server built and started in {server.build_s:.1f} s; "
                    f"offered change rate asked: {n / args.update_s:,.0f} values/s",
                    flush=True,
                )
                results[n] = []
                for i in range(args.repeat):
                    r = b.run(server)
                    results[n].append(r)
                    print_run(n, i + 1, r)
                if args.py_spy and n == max(args.node_counts):
                    r = b.run(server, profile=True)
                    print_run(n, "profiled", r)
                server.stop()
        except AgentStalled as exc:
            print_stall(exc)
            print_summary(args, results, builds, started)
            return 1
        print_summary(args, results, builds, started)
        if args.py_spy and getattr(b, "profile_path", None):
            print()
            summarize_profile(b.profile_path)
    return 0


def _asyncua_version() -> str:
    from importlib.metadata import version

    return version("asyncua")


def print_summary(
    args: argparse.Namespace,
    results: dict[int, list[RunResult]],
    builds: dict[int, float],
    started: float,
) -> None:
    rows = []
    for n, runs in results.items():
        if runs:
            row = median_of(runs)
            row["nodes"], row["build_s"] = n, builds[n]
            row["subs"] = math.ceil(n / args.items_per_sub)
            rows.append(row)
    print()
    if rows:
        print(f"Medians of {args.repeat} run(s) per node count (v = values, one per changed node):")
        print_table(THROUGHPUT, rows)
        print()
        print("Start-up from spawning the agent (medians):")
        print_table(STARTUP, rows)
        print()
        for row in rows:
            limited = row["offered"] < 0.95 * row["nominal"]
            print(
                f"{row['nodes']:,} nodes: the server wrote {row['offered']:,.0f} of "
                f"{row['nominal']:,.0f} values/s asked"
                + (" (the server is the limit here)" if limited else "")
                + f"; the agent delivered {row['delivered']:,.0f} values/s to MQTT."
            )
    print(f"Total benchmark time: {time.monotonic() - started:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_opcua is not None:
        return serve_opcua(
            args.serve_opcua, args.update_s, args.tick_s, args.stamp, args.stock_server
        )

    return run_interruptibly(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
