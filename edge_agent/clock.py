"""The time compute runs on: the local clock, never a device's, and never running backwards.

The host's clock can jump. Forward (a PC without a battery set by NTP after boot, a resume from
suspend, a person setting the date): the time in between was not observed, so it is reported as
a jump and compute marks it unknown in one step, however long it is. Backward (NTP correcting a
clock that ran fast): compute keeps its own time a little ahead and lets the local clock catch up
at a tenth of real time, so time never stops for compute and never goes back; a step back longer
than `reset_after_s` is not caught up that slowly but reported, for compute to start its windows
again at the new time.

Jumps are told apart from a slow event loop by comparing the wall clock with the monotonic clock,
which counts real elapsed time and is never set.
"""

from __future__ import annotations

__all__ = ["ClockJump", "ComputeClock"]

import time
from collections.abc import Callable
from dataclasses import dataclass

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The local clock stepped: `from_ns` is compute's time before, `to_ns` after."""

    from_ns: int
    to_ns: int
    restart: bool = False  # back by more than compute should catch up slowly: start again at to_ns

    @property
    def forward(self) -> bool:
        return self.to_ns > self.from_ns

    @property
    def seconds(self) -> float:
        return abs(self.to_ns - self.from_ns) / NS


class ComputeClock:
    def __init__(
        self,
        *,
        wall: Callable[[], int] = time.time_ns,
        mono: Callable[[], int] = time.monotonic_ns,
        jump_s: float = 60.0,
        catch_up_rate: float = 0.1,
        reset_after_s: float = 3600.0,
    ) -> None:
        self._wall = wall
        self._mono = mono
        self.jump_ns = int(jump_s * NS)
        self.catch_up_rate = catch_up_rate
        self.reset_after_ns = int(reset_after_s * NS)
        self.ahead_ns = 0  # how far compute's time is ahead of the local clock (after a step back)
        self._last: tuple[int, int, int] | None = None  # wall, mono, compute at the last reading

    def now(self) -> tuple[int, ClockJump | None]:
        """Compute's time now, and the jump of the local clock seen since the last call, if any."""
        wall, mono = self._wall(), self._mono()
        if self._last is None:
            self._last = (wall, mono, wall)
            return wall, None
        last_wall, last_mono, last_now = self._last
        elapsed = max(0, mono - last_mono)
        step = (wall - last_wall) - elapsed
        jump = None
        if step > self.jump_ns:
            # Forward: what happened between is unknown; compute continues on the local clock.
            self.ahead_ns = 0
            jump = ClockJump(last_now, wall)
        elif step < -NS:
            self.ahead_ns -= step
            restart = self.ahead_ns > self.reset_after_ns
            if restart:
                self.ahead_ns = 0
            jump = ClockJump(last_now, wall, restart)
        if self.ahead_ns:
            self.ahead_ns = max(0, self.ahead_ns - int(elapsed * self.catch_up_rate))
        now = wall + self.ahead_ns
        if jump is None or not jump.restart:
            now = max(now, last_now)  # small steps back (under a second) wait, as late samples do
        self._last = (wall, mono, now)
        return now, jump
