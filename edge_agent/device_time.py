"""A device's own time stamps, checked against the local clock before anything uses them.

An OPC UA server stamps each value with its own clock; one 20 days ahead made the agent publish
OEE for hours that had not happened. A stamp further than `agent.max_clock_skew_s` from the local
clock is replaced by the time of receipt, counted per device, and logged once per episode.
"""

from __future__ import annotations

__all__ = ["DeviceTime"]

import logging
import time
from collections.abc import Callable

from edge_agent.metrics import Metrics

_log = logging.getLogger(__name__)


class DeviceTime:
    def __init__(
        self, max_skew_s: float, metrics: Metrics, wall: Callable[[], int] = time.time_ns
    ) -> None:
        self.max_skew_ns = int(max_skew_s * 1e9)
        self.metrics = metrics
        self._wall = wall
        self._skewed: set[str] = set()  # devices whose own time stamps are off now

    def stamp(self, device: str, ts_ns: int) -> int:
        """The device's own time stamp, or the time of receipt when that is too far off."""
        now = self._wall()
        if abs(ts_ns - now) <= self.max_skew_ns:
            if device in self._skewed:
                self._skewed.discard(device)
                _log.info("device %s: its time stamps agree with the local clock again", device)
            return ts_ns
        self.metrics.timestamps_replaced.labels(device).inc()
        if device not in self._skewed:
            self._skewed.add(device)
            _log.warning(
                "device %s stamps its values %+.0f s from the local clock (more than "
                "agent.max_clock_skew_s %.0f s): the time of receipt is used instead; check "
                "the device's clock",
                device,
                (ts_ns - now) / 1e9,
                self.max_skew_ns / 1e9,
            )
        return now
