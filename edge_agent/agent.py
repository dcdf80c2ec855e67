"""Wiring: config → pollers → compute → outbox → sink runners, and the order of start and stop. No
logic of its own: values meet compute in edge_agent.ingest, the saved compute state is
edge_agent.compute_state, system alarms edge_agent.system_alarms, the page's view
edge_agent.web.view_model, commands edge_agent.commands."""

from __future__ import annotations

__all__ = ["Agent"]

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from drivers import create_driver
from edge_agent.compute.engine import ComputeEngine
from edge_agent.compute_state import resume_compute_state, save_compute_state
from edge_agent.config_models import AgentFile
from edge_agent.delivery import SinkRunner
from edge_agent.history import HistoryStore
from edge_agent.ingest import Ingest
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.polling import DevicePoller
from edge_agent.schedule import Every
from edge_agent.sinks import SinkContext, create_sink
from edge_agent.sinks.base import ClaimsAgentId
from edge_agent.system_alarms import damaged_buffer, driver_health, has_driver_health
from edge_agent.wakeup import Wakeup

_log = logging.getLogger(__name__)

_SAVE_EVERY_S = 10.0  # at most this long between a change of the compute state and its save
_DRIVER_CHECKS_EVERY_S = 3600.0
_POLL_STOP_S = 1.0  # how long a clean stop lets polls in progress finish
_DRAIN_S = 3.0  # how long a clean stop waits for sinks to deliver what is buffered
_RESUME_GAP_S = 10.0  # a longer stop of the agent is unknown time, not more of the last state


class Agent:
    def __init__(self, config: AgentFile) -> None:
        self.config = config
        self.metrics = Metrics()
        self.outbox = Outbox(
            config.agent.buffer_path,
            max_bytes=int(config.agent.buffer_max_mb * 1024 * 1024),
            max_age_s=config.agent.buffer_max_age_h * 3600,
            synchronous=config.agent.buffer_synchronous,
            full_policy=config.agent.buffer_full_policy,
            memory_max_bytes=int(config.agent.buffer_memory_mb * 1024 * 1024),
        )
        self.history = HistoryStore(
            config.agent.history_path,
            config.agent.history_days,
            int(config.agent.history_max_mb * 1024 * 1024),
        )
        self.ingest = Ingest(
            config,
            self.outbox,
            self.history,
            self.metrics,
            on_changed=self._changed,
            on_clock_back=self._restart_schedule,
        )
        self.started_ns = time.time_ns()
        self.pollers: dict[str, DevicePoller] = {}
        for name, device in config.devices.items():
            driver = create_driver(
                name, device, agent_id=config.agent.id, pki=config.agent.pki_path
            )
            self.metrics.timestamps_replaced.labels(name)  # 0 from the start
            self.pollers[name] = DevicePoller(
                name,
                driver,
                timeout_s=device.timeout_s * 10 + 1.0,
                backoff_max_s=device.backoff_max_s,
                on_batch=self.ingest.batch,
                on_record=self.outbox.append,
                metrics=self.metrics,
                paused=lambda: self.outbox.full,
                on_changes=self.ingest.listener(name),  # values a device reports by itself
            )
        self.sinks = self._make_sinks()
        self.scheduler = AsyncIOScheduler()
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering = False  # the sinks run (not before the agent's id is claimed)
        # Timers only for work that is due: compute when time alone makes something happen, a
        # save after the state changed, certificates hourly where there are any. Idle: none.
        self._compute_wake = Wakeup("compute", self.ingest.due_in, self._tick)
        self._dirty = False  # the compute state changed since it was last saved
        self._save_wake = Wakeup(
            "saving the compute state",
            lambda: _SAVE_EVERY_S if self._dirty else None,
            self._save_state,
        )
        self._drivers_wake = Wakeup(
            "driver checks", lambda: _DRIVER_CHECKS_EVERY_S, self._check_drivers_now
        )
        self.stop_step = "start-up or run (the stop has not begun)"  # for the CLI's watchdog
        slowest = max((d.poll_interval_s for d in config.devices.values()), default=1.0)
        self.resume_gap_s = max(_RESUME_GAP_S, 3 * slowest)

    def _make_sinks(self) -> list[SinkRunner]:
        """A runner per enabled instance of `sinks:`, in the file's order."""
        context = SinkContext(
            self.config,
            self.outbox,
            self.metrics,
            command=self.ingest.command if self.config.alarms else None,
        )
        return [
            SinkRunner(
                create_sink(name, settings, context),
                self.outbox,
                self.metrics,
                settings.batch_records,
                settings.flush_interval_s,
            )
            for name, settings in self.config.sinks.items()
            if settings.enabled
        ]

    @property
    def engine(self) -> ComputeEngine:
        return self.ingest.engine

    def _changed(self) -> None:
        """The compute state changed: what falls due next may be sooner, and it wants saving."""
        self._compute_wake.rearm()
        self._dirty = True
        self._save_wake.rearm()

    def _restart_schedule(self) -> None:
        """The jobs' next runs were set by the wall clock before it stepped back: run them now."""
        if not self.scheduler.running:
            return
        now = datetime.now().astimezone()
        for job in self.scheduler.get_jobs():
            job.modify(next_run_time=now)

    def _check_drivers(self) -> None:
        self.ingest.emit(driver_health(self.config, self.engine.alarms, time.time_ns()))

    async def _tick(self) -> None:
        self.ingest.advance()
        self._dirty = True
        self._save_wake.rearm()

    async def _check_drivers_now(self) -> None:
        self._check_drivers()

    async def _save_state(self) -> None:
        self._dirty = False
        await save_compute_state(self.outbox, self.engine)

    async def _resume(self) -> None:
        """Continue the open shift from the state saved by the last run, not from zero."""
        self.ingest.engine, records = await resume_compute_state(
            self.outbox,
            self.engine,
            self.config,
            max_skew_ns=self.ingest.device_time.max_skew_ns,
            resume_gap_s=self.resume_gap_s,
        )
        self.ingest.emit(records)

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        await self.outbox.open()
        # The look at the broker runs while the rest starts; only the sinks wait for it.
        claim = asyncio.ensure_future(self._claim_agent_id(stop))
        try:
            await self.history.open()
            retired = await self.outbox.retire_cursors({r.sink.name for r in self.sinks})
            for sink, pending in retired.items():
                _log.warning(
                    "sink %s is no longer configured: %d records it had not delivered are "
                    "released from the buffer",
                    sink,
                    pending,
                )
            await self._resume()
            self.ingest.emit(damaged_buffer(self.outbox, self.engine.alarms, time.time_ns()))
            self._schedule_polls()
            self._compute_wake.rearm()
            if self.engine.oee or self.engine.alarms.alarms:
                await self._tick()  # what came due while the agent was not running
            if has_driver_health(self.config):
                self._check_drivers()
                self._drivers_wake.rearm()
            if self.pollers:  # the schedule it restarts after a step back; else nothing to watch
                self._spawn("clock watch", self.ingest.watch_clock)
            if on_ready is not None:
                await on_ready()
            # Polls fill the buffer and the page shows them meanwhile: the check that no other
            # agent is online under this id holds back only what leaves the PC.
            if not await claim:
                return  # stopped while it waited
            for runner in self.sinks:
                self._spawn(f"sink {runner.sink.name}", runner.run)
            self._delivering = True
            await stop.wait()
        finally:
            if not claim.done():  # the start failed otherwise meanwhile
                claim.cancel()
            elif not claim.cancelled():
                claim.exception()  # raised by the await above, or given way to another error
            await self._shutdown()

    async def _claim_agent_id(self, stop: asyncio.Event) -> bool:
        """Before the sinks start: every MQTT sink makes sure no other agent is online under this
        agent's id (DuplicateAgentError ends the start). False when a stop came first."""
        sinks = [r.sink for r in self.sinks if isinstance(r.sink, ClaimsAgentId)]
        if not sinks:
            return True
        instance = await self.outbox.instance_id()
        for sink in sinks:
            if not await _unless_stopped(sink.claim(instance), stop):
                return False
        return True

    def _schedule_polls(self) -> None:
        now = datetime.now().astimezone()
        for name, poller in self.pollers.items():
            interval = self.config.devices[name].poll_interval_s
            # On the interval's grid of the wall clock (as in Telegraf's round_interval): devices
            # with the same interval are read at the same instants, so their values line up in a
            # chart and the agent wakes once per interval for all of them, not once per device.
            first = _grid_after(now, interval)
            self.scheduler.add_job(
                poller.poll,
                Every(seconds=interval, start_date=first),
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
        poller = self.pollers.get(event.job_id)
        # While a device (re)connects its first poll is long: that is not an overrun of polling.
        if poller is not None and poller.up:
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

    async def _shutdown(self, budget_s: float = 8.0) -> None:
        """Stop in steps, each bounded by its share of `budget_s`, so that a stop always ends.

        A step that overruns its share is cut off and left behind with a warning (a poll, a
        polite goodbye to a server, a delivery): what is not delivered stays in the buffer for the
        next start. Closing the buffer, which commits what is pending, comes last and keeps at
        least `reserve_s` of the budget. `stop_step` names the step in progress for the CLI's
        watchdog, which ends the process if even this overruns.
        """
        started = time.monotonic()
        deadline, reserve_s = started + budget_s, 1.0
        _log.info("stopping (at most %.0f s)", budget_s)

        async def bounded(what: str, work: Awaitable[Any], share_s: float, keep_s: float) -> None:
            task = asyncio.ensure_future(work)
            timeout_s = max(0.1, min(share_s, deadline - keep_s - time.monotonic()))
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                task.cancel()  # not awaited: a task that ignores it must not hold up the stop
                _log.warning("stopping: %s took over %.1f s; going on without it", what, timeout_s)
            elif not task.cancelled() and (exc := task.exception()) is not None:
                _log.warning("stopping: %s failed (%s); going on", what, str(exc) or repr(exc))

        async def step(
            name: str,
            parts: Mapping[str, Awaitable[Any]],
            share_s: float,
            keep_s: float = reserve_s,
        ) -> None:
            """The parts of a step run side by side, each within the step's share of time."""
            self.stop_step = name
            await asyncio.gather(*(bounded(w, a, share_s, keep_s) for w, a in parts.items()))

        for wake in (self._compute_wake, self._save_wake, self._drivers_wake):
            wake.stop()
        running = self.scheduler.running
        if running:  # no new runs; shut down only after the polls in progress ended (it cancels)
            self.scheduler.pause()
        pollers = self.pollers.items()
        polls = {f"the poll of {n}": p.stop(_POLL_STOP_S) for n, p in pollers}
        await step("stopping polls in progress", polls, _POLL_STOP_S + 0.5)
        if running:
            self.scheduler.shutdown(wait=False)
        closes = {f"closing {n} ({p.driver.endpoint})": p.driver.close() for n, p in pollers}
        await step("closing device connections", closes, 1.0)
        if (self.engine.oee or self.engine.alarms.alarms) and self.engine.clock_ns is not None:
            self.ingest.advance()
            await step("saving the compute state", {"saving the state": self._save_state()}, 1.0)
        history = {"closing the history (committing what is pending)": self.history.close(1.0)}
        await step("closing the history", history, 1.2)
        # Room is kept for the steps after the drain: stopping the sink tasks and closing sinks.
        drain_s = max(0.0, min(_DRAIN_S, deadline - reserve_s - 2.0 - time.monotonic()))
        drain = {"delivering what is buffered": self._drain(drain_s)}
        await step("delivering what is buffered", drain, drain_s + 0.5)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            tasks = {"stopping the sink tasks": asyncio.wait(self._tasks)}
            await step("stopping the sink tasks", tasks, 0.5)
        sinks = {f"closing {r.sink.name} ({r.sink.endpoint})": r.sink.close() for r in self.sinks}
        await step("closing sinks", sinks, 1.5)
        buffer = {"closing the buffer (committing what is pending)": self.outbox.close()}
        await step("closing the buffer", buffer, budget_s, keep_s=0.0)
        self.stop_step = "stopped"
        _log.info("stopped in %.1f s", time.monotonic() - started)

    async def _drain(self, timeout_s: float) -> None:
        """On a clean stop, give reachable sinks up to `timeout_s` to deliver what is buffered.

        Committing what is pending comes first and counts in the time: in a flood it is most of
        it. What the sinks cannot deliver in time stays in the buffer for the next start.
        """
        if not self._delivering:  # the sinks never ran (a refused start): nothing to wait for
            return
        deadline = time.monotonic() + timeout_s
        # Not cancelled when time is up (asyncio.wait leaves it running): a commit cut off
        # half-way would be written again by the buffer's close.
        await asyncio.wait({asyncio.ensure_future(self.outbox.flush())}, timeout=timeout_s)
        await self.outbox.hurry()  # InfluxDB would otherwise gather for a second of the budget
        while time.monotonic() < deadline and any(
            r.cursor < self.outbox.last_seq and r.error is None for r in self.sinks
        ):
            await asyncio.sleep(0.05)
        for runner in self.sinks:
            if runner.pending:
                _log.info(
                    "stopping: %d records for %s stay in the buffer for the next start",
                    runner.pending,
                    runner.sink.name,
                )


async def _unless_stopped(work: Awaitable[Any], stop: asyncio.Event) -> bool:
    """Await `work`; False, with `work` cancelled, when `stop` is set first."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            return False
        task.result()  # its error, if any
        return True
    finally:
        stopping.cancel()
        task.cancel()  # when it has not ended: a probe's thread then closes its connection


def _grid_after(now: datetime, interval_s: float) -> datetime:
    """The first multiple of `interval_s` since the epoch after `now` (intervals over a day:
    now itself, as a grid that long would leave a new agent idle for hours)."""
    if interval_s > 86_400:
        return now
    ticks = int(now.timestamp() // interval_s) + 1
    return datetime.fromtimestamp(ticks * interval_s, now.tzinfo)
