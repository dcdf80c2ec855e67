"""One supervised poller per device: timing, quality on failure, backoff, state-change logging.

Failures become data, not exceptions: a device that stops answering has its tags marked bad once,
is retried with jittered exponential backoff, and never delays another device's polls.
"""

from __future__ import annotations

__all__ = ["DevicePoller"]

import asyncio
import logging
import time
from collections.abc import Callable

from drivers.base import Changes, Driver, Reading
from edge_agent.backoff import Backoff
from edge_agent.errors import ConnectError
from edge_agent.metrics import Metrics
from edge_agent.records import Kind, Record
from edge_agent.samples import Quality, SampleBatch

_log = logging.getLogger(__name__)


class DevicePoller:
    def __init__(
        self,
        name: str,
        driver: Driver,
        *,
        timeout_s: float,
        backoff_max_s: float,
        on_batch: Callable[[SampleBatch], None],
        on_record: Callable[[Record], None],
        metrics: Metrics,
        paused: Callable[[], bool] | None = None,
        on_changes: Callable[[Changes], None] | None = None,
    ) -> None:
        self.name = name
        # A driver that also reports values by itself (OPC UA subscriptions) reports them here,
        # so that a full buffer, the metrics and the quality rules apply to them as to polls.
        self.on_changes = on_changes
        if on_changes is not None and hasattr(driver, "listener"):
            driver.listener = self.push
        self.paused = paused  # true while polling must wait (the buffer is full)
        self._pausing = False
        self._stopping = False
        self._inflight: asyncio.Task[None] | None = None
        self.driver = driver
        self.timeout_s = timeout_s
        self.on_batch = on_batch
        self.on_record = on_record
        self.metrics = metrics
        self.backoff = Backoff(base_s=min(1.0, backoff_max_s), max_s=backoff_max_s)
        self.up: bool | None = None  # None until the first poll says
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.last_ok_ns = 0
        self._failed_tags: dict[str, str] = {}
        metrics.device_up.labels(name).set(0)
        for family in (
            metrics.polls,
            metrics.poll_errors,
            metrics.poll_overruns,
            metrics.polls_paused,
            metrics.values_read,
        ):
            family.labels(name)  # shown as 0 from the start, not absent until the first one

    async def poll(self) -> None:
        """One poll; never raises (the scheduler must not lose the job)."""
        if self._stopping or (self.up is False and time.monotonic() < self.retry_at):
            return
        self._inflight = asyncio.current_task()
        try:
            await self._poll()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # The agent stops and cut this poll short: its answer is not wanted any more.
        finally:
            self._inflight = None

    async def stop(self, timeout_s: float, grace_s: float = 0.5) -> None:
        """Let a poll in progress finish (or cut it off after `timeout_s`); start no more.

        Returns within `timeout_s` + `grace_s` in any case: a driver whose library swallows the
        cancellation (Python 3.11's wait_for can) is left behind rather than waited for.
        """
        self._stopping = True
        task = self._inflight
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if done:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            _log.warning(
                "device %s: the poll in progress did not end when cut off; left behind", self.name
            )

    def push(self, changes: Changes) -> None:
        """Values the device reported by itself, taken by the rules of a poll's: not while the
        buffer is full (the tags are bad meanwhile), and counted alike."""
        if self._stopping or self.on_changes is None:
            return
        if self.paused is not None and self.paused():
            self._pause(time.time_ns())
            return
        self._resume()
        self.metrics.values_read.labels(self.name).inc(len(changes.values) - len(changes.quality))
        self.on_changes(changes)

    async def _poll(self) -> None:
        ts_ns = time.time_ns()
        if self.paused is not None and self.paused():
            self._pause(ts_ns)
            return
        self._resume()
        self.metrics.polls.labels(self.name).inc()
        started = time.perf_counter()
        try:
            reading = await asyncio.wait_for(self.driver.read(), self.timeout_s)
        except ConnectError as exc:
            self._link_failed(ts_ns, str(exc))
            return
        except TimeoutError:
            await self.driver.close()  # the read was cut off mid-request: start from a clean link
            self._link_failed(ts_ns, f"{self.driver.endpoint}: poll took over {self.timeout_s} s")
            return
        except Exception as exc:  # a driver bug must not kill the poll job; it is logged in full
            _log.exception("device %s: unexpected error in driver", self.name)
            self._link_failed(ts_ns, f"{type(exc).__name__}: {exc}")
            return
        self.metrics.poll_seconds.labels(self.name).observe(time.perf_counter() - started)
        self._link_ok(ts_ns)
        self._deliver(ts_ns, reading)

    def _pause(self, ts_ns: int) -> None:
        self.metrics.polls_paused.labels(self.name).inc()
        if not self._pausing:
            # What the machine does meanwhile is not known: its tags say so, once.
            self._pausing = True
            bad = dict.fromkeys(self.driver.tag_names)
            self.on_batch(SampleBatch(self.name, ts_ns, bad, dict.fromkeys(bad, Quality.BAD)))

    def _resume(self) -> None:
        if not self._pausing:
            return
        self._pausing = False
        # What changed during the pause was not taken: a driver that reports changes only reads
        # every tag again at its next poll.
        reread_all = getattr(self.driver, "reread_all", None)
        if reread_all is not None:
            reread_all()

    def _deliver(self, ts_ns: int, reading: Reading) -> None:
        values = reading.values
        quality: dict[str, Quality] = dict(reading.quality)
        if reading.failed:
            for tag in reading.failed:
                values[tag] = None
                quality[tag] = Quality.BAD
        if reading.failed != self._failed_tags:
            self._log_tag_failures(reading.failed)
        self.metrics.values_read.labels(self.name).inc(len(values) - len(quality))
        if values:  # a device whose tags all come by subscription often has nothing to poll
            self.on_batch(SampleBatch(self.name, ts_ns, values, quality))

    def _link_ok(self, ts_ns: int) -> None:
        self.last_ok_ns = ts_ns
        if self.up:
            return
        if self.up is False and self.down_since is not None:
            _log.info(
                "device %s (%s) answers again after %.1f s",
                self.name,
                self.driver.endpoint,
                time.monotonic() - self.down_since,
            )
        self.up, self.last_error, self.down_since = True, None, None
        self.backoff.reset()
        self.metrics.device_up.labels(self.name).set(1)
        self.on_record(
            Record(
                Kind.LINK,
                self.name,
                ts_ns,
                {
                    "device": self.name,
                    "state": "up",
                    "endpoint": self.driver.endpoint,
                    "error": None,
                },
            )
        )

    def _link_failed(self, ts_ns: int, error: str) -> None:
        self.metrics.poll_errors.labels(self.name).inc()
        delay = self.backoff.next_delay()
        self.retry_at = time.monotonic() + delay
        if self.up is False and error == self.last_error:
            _log.debug("device %s still down: %s; next try in %.1f s", self.name, error, delay)
            return
        if self.up is False:  # already down, for another reason now: not a new outage
            _log.warning(
                "device %s still not answering: %s; next try in %.1f s", self.name, error, delay
            )
        else:
            self.down_since = time.monotonic()
            bad = dict.fromkeys(self.driver.tag_names)
            self.on_batch(SampleBatch(self.name, ts_ns, bad, dict.fromkeys(bad, Quality.BAD)))
            self.metrics.device_up.labels(self.name).set(0)
            _log.error(
                "device %s is not answering: %s; its tags are bad, next try in %.1f s",
                self.name,
                error,
                delay,
            )
        self.up, self.last_error = False, error
        self._failed_tags = {}
        self.on_record(
            Record(
                Kind.LINK,
                self.name,
                ts_ns,
                {
                    "device": self.name,
                    "state": "down",
                    "endpoint": self.driver.endpoint,
                    "error": error,
                },
            )
        )

    def _log_tag_failures(self, failed: dict[str, str]) -> None:
        if failed:
            by_reason: dict[str, list[str]] = {}
            for tag, reason in failed.items():
                by_reason.setdefault(reason, []).append(tag)
            for reason, tags in by_reason.items():
                _log.warning("device %s: %s; bad: %s", self.name, reason, ", ".join(sorted(tags)))
        else:
            _log.info("device %s: every tag reads again", self.name)
        self._failed_tags = dict(failed)
