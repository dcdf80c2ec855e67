"""One timer for work that falls due at a known instant, and no timer while nothing is due.

The agent's compute core knows when something next happens without a sample (a shift or hour
ends, a delay runs out, a running figure is due): a `Wakeup` sleeps until then instead of ticking
every second, so an agent with nothing to do wakes for nothing. `rearm` is cheap and is called
after anything that may bring the next instant closer (a sample, a command).
"""

from __future__ import annotations

__all__ = ["Wakeup"]

import asyncio
import logging
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)
_SLACK_S = 0.001  # a wake this close to the one asked for is the same wake


class Wakeup:
    def __init__(
        self, name: str, due_in: Callable[[], float | None], work: Callable[[], Awaitable[None]]
    ) -> None:
        """`due_in`: seconds until the work is due (0 or less: now), None when nothing is."""
        self.name = name
        self._due_in = due_in
        self._work = work
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.runs = 0

    def rearm(self) -> None:
        """Wake at the instant `due_in` names now, unless an earlier wake is already set."""
        if self._stopped or (self._task is not None and not self._task.done()):
            return  # stopped, or the work runs and rearms when it ends
        delay = self._due_in()
        if delay is None:
            self._cancel_timer()
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        if self._handle is not None and self._handle.when() <= when + _SLACK_S:
            return
        self._cancel_timer()
        self._handle = loop.call_at(when, self._fire)

    def stop(self) -> None:
        """No more wakes; work in progress is left to end (the agent's stop awaits its own)."""
        self._stopped = True
        self._cancel_timer()

    def _fire(self) -> None:
        self._handle = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        try:
            self.runs += 1
            await self._work()
        except Exception:  # the next wake must still come: log it in full, and go on
            _log.exception("%s failed", self.name)
        finally:
            self._task = None
            self.rearm()

    def _cancel_timer(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
