"""Wiring: config → pollers → compute → outbox → sink runners, plus the local page. No logic of its own."""

from __future__ import annotations

__all__ = ["Agent"]

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from drivers import create_driver
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.delivery import SinkRunner
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox, Record
from edge_agent.polling import DevicePoller
from edge_agent.samples import SampleBatch
from edge_agent.sinks.influx import InfluxSink
from edge_agent.sinks.mqtt import MqttSink
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)


class Agent:
    def __init__(self, config: AgentFile) -> None:
        self.config = config
        self.metrics = Metrics()
        self.outbox = Outbox(config.agent.buffer_path)
        self.engine = ComputeEngine(config)
        self.started_ns = time.time_ns()
        self.pollers: dict[str, DevicePoller] = {}
        for name, device in config.devices.items():
            self.pollers[name] = DevicePoller(
                name,
                create_driver(name, device),
                timeout_s=device.timeout_s * 10 + 1.0,
                backoff_max_s=device.backoff_max_s,
                on_batch=self._on_batch,
                on_record=self.outbox.append,
                metrics=self.metrics,
            )
        self.sinks = self._make_sinks()
        self.scheduler = AsyncIOScheduler()
        self._tasks: list[asyncio.Task[None]] = []
        _warn_inactive(config)

    def _make_sinks(self) -> list[SinkRunner]:
        agent, sinks = self.config.agent, self.config.sinks
        runners = []
        if sinks.mqtt is not None and sinks.mqtt.enabled:
            mqtt = MqttSink(sinks.mqtt, agent.id, agent.topic_root)
            runners.append(SinkRunner(mqtt, self.outbox, self.metrics, sinks.mqtt.batch_records))
        if sinks.influxdb is not None and sinks.influxdb.enabled:
            influx = InfluxSink(sinks.influxdb, agent.id)
            runners.append(
                SinkRunner(influx, self.outbox, self.metrics, sinks.influxdb.batch_records)
            )
        return runners

    def _on_batch(self, batch: SampleBatch) -> None:
        body: dict[str, Any] = {"device": batch.device, "values": batch.values}
        if batch.quality:
            body["quality"] = {tag: q.value for tag, q in batch.quality.items()}
        self.outbox.append(Record("values", batch.device, batch.ts_ns, body))
        self.outbox.extend(self.engine.ingest(batch))

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        await self.outbox.open()
        try:
            for runner in self.sinks:
                self._spawn(f"sink {runner.sink.name}", runner.run)
            self._schedule_polls()
            if on_ready is not None:
                await on_ready()
            await stop.wait()
        finally:
            await self._shutdown()

    def _schedule_polls(self) -> None:
        rng = random.Random()
        now = datetime.now().astimezone()
        for name, poller in self.pollers.items():
            interval = self.config.devices[name].poll_interval_s
            # A small random offset, so devices with the same interval do not all fire together.
            first = now + timedelta(seconds=rng.uniform(0, min(interval, 1.0)))
            self.scheduler.add_job(
                poller.poll,
                "interval",
                seconds=interval,
                id=name,
                name=f"poll {name}",
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self.scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()

    def _on_overrun(self, event: JobEvent) -> None:
        self.metrics.poll_overruns.labels(event.job_id).inc()

    def _spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        async def supervised() -> None:
            delay = 1.0
            while True:
                try:
                    await factory()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("%s stopped unexpectedly; restarting in %.0f s", name, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)

        self._tasks.append(asyncio.create_task(supervised(), name=name))

    async def _shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for poller in self.pollers.values():
            await poller.driver.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in self.sinks:
            await runner.sink.close()
        await self.outbox.close()

    async def snapshot(self) -> dict[str, Any]:
        """Everything the local page shows, as plain JSON-able data."""
        stats = await self.outbox.stats()
        self.metrics.outbox_records.set(stats["records"])
        self.metrics.outbox_bytes.set(stats["bytes"])
        tags = self.engine.tags
        devices = []
        for name, poller in self.pollers.items():
            units = {t: getattr(c, "unit", None) for t, c in self.config.devices[name].tags.items()}
            values = tags.values.get(name, {})
            quality = tags.quality.get(name, {})
            devices.append(
                {
                    "name": name,
                    "endpoint": poller.driver.endpoint,
                    "up": poller.up,
                    "error": poller.last_error,
                    "last_ok": iso_utc(poller.last_ok_ns) if poller.last_ok_ns else None,
                    "values": [
                        {
                            "tag": t,
                            "value": values.get(t),
                            "quality": str(quality.get(t, "bad")),
                            "unit": units[t],
                        }
                        for t in self.config.devices[name].tags
                    ],
                }
            )
        machines = []
        for name, tracker in self.engine.machines.items():
            current = tracker.current
            machines.append(
                {
                    "name": name,
                    "state": current.state if current else "unknown",
                    "reason": current.reason if current else None,
                    "since": iso_utc(current.since_ns) if current else None,
                }
            )
        sinks = [
            {
                "name": r.sink.name,
                "endpoint": r.sink.endpoint,
                "connected": r.sink.connected,
                "pending": r.pending,
                "error": r.failing,
            }
            for r in self.sinks
        ]
        return {
            "agent": {
                "id": self.config.agent.id,
                "language": self.config.agent.language,
                "started": iso_utc(self.started_ns),
                "topic_root": self.config.agent.topic_root,
            },
            "devices": devices,
            "machines": machines,
            "sinks": sinks,
            "buffer": {"path": str(self.config.agent.buffer_path), **stats},
        }


def _warn_inactive(config: AgentFile) -> None:
    """Say plainly which configured features this version checks but does not act on yet."""
    if config.alarms:
        _log.warning(
            "%d alarm definition(s) are checked but alarm evaluation is not in this version: "
            "they will not fire",
            len(config.alarms),
        )
    if config.calendars or any(m.counters for m in config.machines.values()):
        _log.info("calendars and counters are checked; OEE is not computed by this version")
