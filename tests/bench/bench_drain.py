"""Drain rate of a full buffer after an outage: MQTT (mosquitto) and InfluxDB (VictoriaMetrics).

    .venv/bin/python -m tests.bench.bench_drain [--records 20000] [--repeat 3]
                                                [--mqtt-batches 100,1000]
                                                [--influx-batches 100,1000,5000] [--timeout 60]

A script, not a test: it prints figures and asserts nothing about speed. mosquitto,
VictoriaMetrics, the message counter and the temporary directory are removed again on exit,
on failure and on Ctrl+C.

The state measured is the one after a long outage: an outbox holding --records records of one
Modbus poll each (device "plc", 100 float values, timestamps 100 ms apart, ending now), every one
still to be delivered. It is filled and committed once; every run drains its own copy of that file
with a real SinkRunner (real Metrics) and a real sink, so each run starts from the same full
buffer and also pays for the acknowledgements and the deletion of delivered rows, as the agent does.

    mqtt      MqttSink, default MQTT settings (raw_values per_poll: one message per record, QoS 1),
              against mosquitto; a batch counts only after the PUBACK of each of its messages
    influxdb  InfluxSink (line protocol, synchronous writes: one POST per batch) against
              VictoriaMetrics' InfluxDB v2 write API; one point per value

Timing runs from the start of the runner task (so the sink's connect is included, a few ms on
loopback) until the runner's cursor reaches the outbox's last sequence number. Each run uses its
own agent id, so its MQTT topics and InfluxDB series are its own and can be counted afterwards:

    mqtt      a separate process subscribes to every run's device topics at QoS 1 and counts the
              messages per run (a separate process, so its parsing does not take the GIL from the
              sink; it does share the machine's CPUs with the sink and the broker, as a real
              consumer would)
    influxdb  sum(count_over_time(values_value{agent=<run>}[...])) from VictoriaMetrics after
              /internal/force_flush, polled until it reaches the expected number of points or
              30 s have passed (fresh series take about a second to become searchable)

mosquitto's default `set_tcp_nodelay false` (as in tests.support.servers) holds the last PUBACKs
of a batch back until the sink's host sends its delayed ACK, about 40 ms on Linux: a sink that
waits for every PUBACK of a batch can pay that once per batch, which dominates small batches
(try --mqtt-batches 10,100).

The verification happens after the timed part. The configurations run interleaved (all of them
once, then all again), so drift on a noisy machine hits them alike; the table gives medians over
--repeat runs. A configuration whose run does not finish within --timeout is reported with the
sink's last error and not run again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.delivery import SinkRunner
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import Record
from edge_agent.sinks import Sink
from edge_agent.sinks.influxdb.config import InfluxSinkConfig
from edge_agent.sinks.influxdb.sink import InfluxSink
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.sink import MqttSink
from tests.bench.common import ask, close_helper, run_interruptibly
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port

REPO = Path(__file__).resolve().parents[2]
TAGS = 100
POLL_INTERVAL_NS = 100_000_000
TOPIC_BASE = "drain"  # each run's topic root is drain/<agent id>
VERIFY_TIMEOUT_S = 30.0


def record(i: int, ts_ns: int) -> Record:
    values = {f"tag{j}": i * 0.5 + j for j in range(TAGS)}
    return Record("values", "plc", ts_ns, {"device": "plc", "values": values})


async def fill_template(path: Path, count: int) -> tuple[int, int, float]:
    """The buffer after the outage; returns its first and last timestamps and the fill time."""
    first_ns = time.time_ns() - count * POLL_INTERVAL_NS
    started = time.perf_counter()
    box = Outbox(path)
    await box.open()
    box.extend(record(i, first_ns + i * POLL_INTERVAL_NS) for i in range(count))
    await box.flush()
    await box.close()  # the last connection's close checkpoints the WAL into the main file
    return first_ns, first_ns + (count - 1) * POLL_INTERVAL_NS, time.perf_counter() - started


# ------------------------------------------------------------------------ message counter


def serve_counter(port: int) -> int:
    """Child process: count messages per run's topic root; answer 'root expected' on stdin.

    Each answer waits until the root has `expected` messages or VERIFY_TIMEOUT_S passed, then a
    little longer, so duplicates arriving after the last expected message are counted too.
    """
    import paho.mqtt.client as mqtt

    counts: dict[str, int] = {}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        root = msg.topic.split("/devices/", 1)[0]
        with lock:
            counts[root] = counts.get(root, 0) + 1

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"drain-counter-{os.getpid()}")
    client.on_connect = lambda c, *_: c.subscribe(f"{TOPIC_BASE}/+/devices/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not subscribed.wait(10):
        print("not subscribed", flush=True)
        return 1
    print("ready", flush=True)
    for line in sys.stdin:  # ends when the benchmark closes stdin (or dies)
        root, expected = line.split()
        deadline = time.monotonic() + VERIFY_TIMEOUT_S
        while time.monotonic() < deadline:
            with lock:
                if counts.get(root, 0) >= int(expected):
                    break
            time.sleep(0.02)
        time.sleep(0.2)
        with lock:
            print(counts.get(root, 0), flush=True)
    client.disconnect()
    client.loop_stop()
    return 0


class Counter:
    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_drain", "--serve-counter", str(port)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"MQTT counter did not start: {line!r}")

    def count(self, root: str, expected: int) -> int:
        return int(ask(self.proc, f"{root} {expected}"))

    def stop(self) -> None:
        close_helper(self.proc)


# --------------------------------------------------------------------- VictoriaMetrics count


def vm_points(url: str, agent: str, first_ns: int, last_ns: int) -> int:
    span_s = math.ceil((last_ns - first_ns) / 1e9) + 60
    at_s = last_ns / 1e9 + 1
    query = f'sum(count_over_time(values_value{{agent="{agent}"}}[{span_s}s]))'
    params = urllib.parse.urlencode({"query": query, "time": f"{at_s:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def vm_wait_for(url: str, agent: str, first_ns: int, last_ns: int, expected: int) -> int:
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    points = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            # Without a flush, fresh series of this VictoriaMetrics version take about 10 s to
            # become searchable; with it, about one.
            urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).close()
            points = vm_points(url, agent, first_ns, last_ns)
            if points >= expected:
                # Once more a moment later: a resent batch would show as more than expected.
                time.sleep(0.3)
                return vm_points(url, agent, first_ns, last_ns)
        time.sleep(0.3)
    return points


# ------------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class Config:
    sink: str  # "mqtt" or "influxdb"
    batch: int


@dataclass
class RunResult:
    seconds: float | None  # None: did not finish within --timeout
    confirmed: int  # records the sink confirmed: all of them, or the cursor at the timeout
    verified: int  # messages or points the server holds for the run
    errors: int
    failure: str | None = None


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    template: Path
    first_ns: int
    last_ns: int
    mosquitto: Mosquitto
    victoria: VictoriaMetrics
    counter: Counter
    runs: int = 0
    results: dict[Config, list[RunResult]] = field(default_factory=dict)

    def make_sink(self, config: Config, agent_id: str) -> tuple[Sink, int]:
        if config.sink == "mqtt":
            mqtt_config = MqttSinkConfig.model_validate(
                {"host": "127.0.0.1", "port": self.mosquitto.port, "batch_records": config.batch}
            )
            sink: Sink = MqttSink(mqtt_config, agent_id, f"{TOPIC_BASE}/{agent_id}")
            return sink, mqtt_config.batch_records
        influx_config = InfluxSinkConfig.model_validate(
            {
                "url": self.victoria.url,
                "org": "bench",
                "bucket": "bench",
                "token": "bench",
                "batch_records": config.batch,
            }
        )
        return InfluxSink(influx_config, agent_id), influx_config.batch_records

    async def run(self, config: Config) -> RunResult:
        self.runs += 1
        agent_id = f"drain-{self.runs:03d}-{config.sink}-{config.batch}"
        db = self.workdir / f"{agent_id}.db"
        # A copy of the full buffer: a fresh cursor on it has everything still to deliver, and
        # acknowledging deletes rows as it does in the agent (a cursor pinned at 0 would not).
        shutil.copyfile(self.template, db)
        outbox = Outbox(db)
        await outbox.open()
        metrics = Metrics()
        sink, batch_records = self.make_sink(config, agent_id)
        runner = SinkRunner(sink, outbox, metrics, batch_records)
        seconds: float | None = None
        failure: str | None = None
        started = time.perf_counter()
        task = asyncio.create_task(runner.run(), name=f"runner-{agent_id}")
        try:
            while runner.cursor < outbox.last_seq:
                if task.done():
                    task.result()  # raises what ended the runner
                    raise RuntimeError("the runner returned before draining the buffer")
                if time.perf_counter() - started > self.args.timeout:
                    failure = (
                        f"not drained in {self.args.timeout:g} s: cursor {runner.cursor:,} of "
                        f"{outbox.last_seq:,}; last error: {runner.failing or 'none'}"
                    )
                    break
                # A 2 ms poll: under 0.1 % of the shortest drain, and too rare to slow the loop.
                await asyncio.sleep(0.002)
            else:
                seconds = time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sink.close()
            await outbox.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        errors = int(
            metrics.registry.get_sample_value("edge_sink_errors_total", {"sink": sink.name}) or 0
        )
        # After a timeout only what the cursor passed is owed; waiting for all would only add
        # VERIFY_TIMEOUT_S to a run that already failed.
        confirmed = runner.cursor
        if config.sink == "mqtt":
            verified = await asyncio.to_thread(
                self.counter.count, f"{TOPIC_BASE}/{agent_id}", confirmed
            )
        else:
            verified = await asyncio.to_thread(
                vm_wait_for,
                self.victoria.url,
                agent_id,
                self.first_ns,
                self.last_ns,
                confirmed * TAGS,
            )
        return RunResult(seconds, confirmed, verified, errors, failure)


def expected(config: Config, records: int) -> int:
    """Messages (MQTT, one per record) or points (InfluxDB, one per value) for `records`."""
    return records * (TAGS if config.sink == "influxdb" else 1)


def unit(config: Config) -> str:
    return "points" if config.sink == "influxdb" else "msgs"


def print_run(config: Config, index: int, r: RunResult) -> None:
    head = f"  {config.sink:<8} batch {config.batch:>5} run {index}:"
    received = (
        f"received {r.verified:,} of {expected(config, r.confirmed):,} {unit(config)}; "
        f"sink errors {r.errors}"
    )
    if r.seconds is None:
        # More than confirmed is normal here: the batch in flight at the timeout arrives too.
        print(f"{head} {r.failure}; {received} (confirmed)", flush=True)
        return
    rate = r.confirmed / r.seconds
    print(
        f"{head} {r.seconds:6.2f} s, {rate:>8,.0f} records/s, {rate * TAGS:>10,.0f} values/s; "
        f"{received}",
        flush=True,
    )


def print_table(bench: Bench) -> dict[Config, float]:
    header = (
        f"{'sink':<9} {'batch_records':>13} {'records/s':>10} {'values/s':>11} "
        f"{'min-max records/s':>18} {'errors':>6}  verified (received of expected, per run)"
    )
    print(header)
    print("-" * len(header))
    medians: dict[Config, float] = {}
    for config, runs in bench.results.items():
        owed = expected(config, bench.args.records)
        done = [r for r in runs if r.seconds is not None]
        rates = [r.confirmed / r.seconds for r in done if r.seconds]
        exact = sum(r.verified == owed for r in done)
        received = sorted({r.verified for r in done})
        shown = "/".join(f"{v:,}" for v in received) or "-"
        verified = f"{exact}/{len(done)} runs exact: {shown} of {owed:,} {unit(config)}"
        errors = sum(r.errors for r in runs)
        if not rates:
            failure = next((r.failure for r in runs if r.failure), "no run finished")
            print(f"{config.sink:<9} {config.batch:>13} {'-':>10} {'-':>11} {'-':>18} {errors:>6}")
            print(f"{'':<9} {failure}")
            continue
        median = medians[config] = statistics.median(rates)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(
            f"{config.sink:<9} {config.batch:>13} {median:>10,.0f} {median * TAGS:>11,.0f} "
            f"{spread:>18} {errors:>6}  {verified}"
        )
        if len(done) < len(runs):
            print(f"{'':<9} {len(runs) - len(done)} run(s) did not finish: {runs[-1].failure}")
    return medians


def print_interpretation(bench: Bench, medians: dict[Config, float]) -> None:
    poll_rate = 1e9 / POLL_INTERVAL_NS
    for sink in ("mqtt", "influxdb"):
        rows = sorted((c.batch, rate) for c, rate in medians.items() if c.sink == sink)
        if not rows:
            continue
        small_batch, small_rate = rows[0]
        ratios = ", ".join(
            f"{batch} drains {rate / small_rate:.2f}x as fast as {small_batch}"
            for batch, rate in rows[1:]
        )
        best_batch, best_rate = max(rows, key=lambda row: row[1])
        print(
            f"{sink}: batch_records {ratios or 'one size only'}; at the best ({best_batch}) a "
            f"backlog drains {best_rate / poll_rate:,.0f}x faster than one device polled every "
            f"{POLL_INTERVAL_NS / 1e6:.0f} ms fills it"
        )
    best = {
        s: max((r for c, r in medians.items() if c.sink == s), default=0.0)
        for s in ("mqtt", "influxdb")
    }
    if best["mqtt"] and best["influxdb"]:
        slower = min(best, key=lambda s: best[s])
        faster = max(best, key=lambda s: best[s])
        print(
            f"best against best, {faster} drains {best[faster] / best[slower]:.2f}x as fast as "
            f"{slower}; with both sinks enabled the buffer empties at the pace of {slower}"
        )


async def bench_all(bench: Bench) -> None:
    args = bench.args
    configs = [Config("mqtt", b) for b in args.mqtt_batches] + [
        Config("influxdb", b) for b in args.influx_batches
    ]
    bench.results = {c: [] for c in configs}
    given_up: set[Config] = set()
    for i in range(args.repeat):
        for config in configs:
            if config in given_up:
                continue
            result = await bench.run(config)
            bench.results[config].append(result)
            print_run(config, i + 1, result)
            if result.seconds is None:
                given_up.add(config)  # another --timeout each would only repeat the failure


def batches(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    for size in sizes:
        # Validated against the product's own limits, so a typo fails here, not mid-run.
        MqttSinkConfig.model_validate({"batch_records": size})
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_drain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--records", type=int, default=20000, help="records in the full buffer")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration (medians)")
    p.add_argument("--mqtt-batches", type=batches, default=[100, 1000], help="e.g. 100,1000")
    p.add_argument(
        "--influx-batches", type=batches, default=[100, 1000, 5000], help="e.g. 100,1000,5000"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="give up on a run after this, s")
    p.add_argument("--serve-counter", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.records < 1 or args.repeat < 1 or args.timeout <= 0:
        p.error("--records, --repeat and --timeout must be positive")
    return args


async def amain(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    started = time.monotonic()
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-drain-")))
    mosquitto = Mosquitto(free_port(), workdir)
    stack.callback(mosquitto.stop)
    mosquitto.start()
    victoria = VictoriaMetrics(free_port(), workdir)
    stack.callback(victoria.stop)
    victoria.start()
    counter = Counter(mosquitto.port)
    stack.callback(counter.stop)

    template = workdir / "full.db"
    first_ns, last_ns, fill_s = await fill_template(template, args.records)
    size_mib = template.stat().st_size / (1 << 20)
    print(
        f"buffer: {args.records:,} records x {TAGS} values ({size_mib:.0f} MiB, filled and "
        f"committed in {fill_s:.1f} s), {(last_ns - first_ns) / 60e9:.0f} min of one device "
        f"polled every {POLL_INTERVAL_NS / 1e6:.0f} ms; {os.cpu_count()} CPUs; "
        f"{args.repeat} run(s) per configuration",
        flush=True,
    )
    bench = Bench(args, workdir, template, first_ns, last_ns, mosquitto, victoria, counter)
    await bench_all(bench)
    print()
    print(f"Medians of {args.repeat} run(s); values/s = records/s x {TAGS}:")
    medians = print_table(bench)
    print()
    print_interpretation(bench, medians)
    print(f"Total benchmark time: {time.monotonic() - started:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_counter is not None:
        return serve_counter(args.serve_counter)
    # The runner logs a failing sink at ERROR: worth seeing next to a figure that looks wrong.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        with contextlib.ExitStack() as stack:
            asyncio.run(amain(args, stack))
        return 0

    return run_interruptibly(body)


if __name__ == "__main__":
    sys.exit(main())
