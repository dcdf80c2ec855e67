"""apscheduler's interval trigger, made safe for a wall clock that jumps forward.

apscheduler 3 times jobs by the wall clock and, when runs were missed, lists every one of them
before coalescing them into one: after the clock jumped a month ahead that is 2.6 million run
times for a 1 s poll, computed on the event loop (about a minute with nothing else running).
This trigger goes straight to the first run time after now. (A step back is dealt with by the
agent's clock watch, which runs the jobs again from the new time.)
"""

from __future__ import annotations

__all__ = ["Every"]

from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger


class Every(IntervalTrigger):
    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if (
            previous_fire_time is not None
            and previous_fire_time.timestamp() + self.interval_length <= now.timestamp()
        ):
            previous_fire_time = None  # runs were missed: the next one on the grid after now
        return super().get_next_fire_time(previous_fire_time, now)  # type: ignore[no-any-return]
