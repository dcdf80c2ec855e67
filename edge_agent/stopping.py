"""How the agent's process stops: within a bound, whatever it waits for.

SIGINT and SIGTERM ask the running body to stop (`StopRequest`, an asyncio.Event); a watchdog
thread ends the process if the stop overruns the bound, and a second signal ends it at once.
The event loop is run and torn down here with every wait bounded (not `asyncio.run`).
"""

from __future__ import annotations

__all__ = ["STOP_BOUND_S", "StopRequest", "run_until_stopped", "stop_within"]

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from edge_agent.agent import Agent

# A stop (SIGTERM, Ctrl+C) ends the process within this, whatever it waits for: the agent's own
# steps take at most 8 s of it (edge_agent/agent.py), the rest is the page, the event loop and the
# exit. deploy/edge-agent.service's TimeoutStopSec is above it.
STOP_BOUND_S = 10.0
_EXIT_MARGIN_S = 0.5  # the watchdog acts this much before the bound: flushing the log, exiting
_EXIT_FAILED = 1
# A second signal this soon after the first is the same one delivered twice (a tool that signals
# both the process and its group); a person's second Ctrl+C comes later.
_SAME_SIGNAL_S = 0.05
_log = logging.getLogger("edge_agent")


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors the event loop catches itself, one line each; the traceback only at DEBUG.

    A device that sends a malformed frame makes the protocol library's parser raise inside the
    loop's callback; the connection is closed and the poll fails and is counted, so a stack
    trace in the plant's log would only alarm.
    """
    exc = context.get("exception")
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    logging.getLogger("edge_agent.loop").warning("%s %s", context.get("message", ""), detail)
    if exc is not None:
        logging.getLogger("edge_agent.loop").debug("traceback", exc_info=exc)


async def stop_within(stops: Mapping[str, Awaitable[None]], timeout_s: float) -> None:
    """Run `stops` side by side; what has not ended after `timeout_s` is cancelled and left."""
    tasks = {asyncio.ensure_future(work): what for what, work in stops.items()}
    done, late = await asyncio.wait(tasks, timeout=timeout_s)
    for task in late:
        task.cancel()
        _log.warning("stopping %s took over %.1f s; left behind", tasks[task], timeout_s)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            _log.warning("stopping %s failed: %s", tasks[task], str(exc) or repr(exc))


class StopRequest(asyncio.Event):
    """Set by the first SIGINT or SIGTERM: the agent stops cleanly. A second one exits at once.

    The first also starts a watchdog, a thread because the event loop itself may be what is
    stuck: if the process still runs `STOP_BOUND_S` after that signal, it logs what the stop was
    waiting for and exits with code 1. The buffer survives that like a kill (SQLite's WAL).
    Handlers are set with `signal.signal` before the event loop exists, so a signal during
    start-up is a stop request too, and they run even while the loop is blocked.
    """

    def __init__(self) -> None:
        super().__init__()
        self.step = "starting up"  # what the stop waits for, outside the agent
        self.agent: Agent | None = None  # while set, its own stop step is what is waited for
        self.signalled_at: float | None = None
        self._signal = ""  # the first one's name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def describe(self) -> str:
        return self.agent.stop_step if self.agent is not None else self.step

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        """Give back the handlers of before, unless a stop was asked (a second signal still counts)."""
        if self.signalled_at is None:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self.signalled_at is not None:  # the signal came before the loop ran
            loop.call_soon(self._requested)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Logging and exiting happen on other threads: this runs between two bytecodes of the
        # main thread, which may be half-way through writing the same log stream.
        name = signal.Signals(signum).name
        if self.signalled_at is not None and time.monotonic() - self.signalled_at < _SAME_SIGNAL_S:
            return  # one stop sent twice: to the process and to its group (timeout(1), a shell)
        if self.signalled_at is not None:
            threading.Thread(target=self._exit_at_once, args=(name,), daemon=True).start()
            return
        self.signalled_at, self._signal = time.monotonic(), name
        threading.Thread(target=self._watch, name="stop-watchdog", daemon=True).start()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
                self._loop.call_soon_threadsafe(self._requested)

    def _requested(self) -> None:
        _log.info(
            "%s: stopping (within %.0f s; a second SIGTERM or Ctrl+C exits at once)",
            self._signal,
            STOP_BOUND_S,
        )
        self.set()

    def _exit_at_once(self, name: str) -> NoReturn:
        _log.error("second %s: exiting at once; the stop was at: %s", name, self.describe())
        _exit_now(_EXIT_FAILED)

    def _watch(self) -> NoReturn:
        time.sleep(STOP_BOUND_S - _EXIT_MARGIN_S)
        _log.error(
            "the stop did not finish within %.0f s; exiting without waiting for: %s",
            STOP_BOUND_S,
            self.describe(),
        )
        _exit_now(_EXIT_FAILED)


def _exit_now(code: int) -> NoReturn:
    """End the process now, from any thread, after writing out what is logged."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def run_until_stopped(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run `body` on a new event loop; SIGINT and SIGTERM ask it to stop (`StopRequest`).

    Not `asyncio.run`: its teardown waits without limit for every task to end and for every
    worker thread to finish its work item, and an InfluxDB write to a server that never answers
    holds one for the client's whole timeout. Here each wait of the teardown is bounded.
    """
    stop = StopRequest()
    stop.install()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_loop_error)

    async def runner() -> None:
        stop.attach(asyncio.get_running_loop())
        await body(stop)

    try:
        loop.run_until_complete(runner())
    finally:
        stop.step = "closing the event loop"
        _close_loop(loop, grace_s=0.5)
        asyncio.set_event_loop(None)
        stop.uninstall()
    stop.step = "worker threads still busy"
    _leave_busy_threads(stop.signalled_at)
    return 0


def _close_loop(loop: asyncio.AbstractEventLoop, grace_s: float) -> None:
    """Cancel the tasks still running, give them `grace_s` to end, and close the loop."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=grace_s))
    generators = loop.create_task(loop.shutdown_asyncgens())
    loop.run_until_complete(asyncio.wait({generators}, timeout=grace_s))
    loop.close()  # shuts the default executor down without waiting for it


def _leave_busy_threads(signalled_at: float | None, grace_s: float = 1.0) -> None:
    """Give worker threads still busy `grace_s` (within the stop bound); exit without the rest.

    At exit Python joins every executor's worker threads, each finishing its work item first:
    a write to a server that never answers would hold the process for the client's timeout.
    What matters is done by now (the buffer is closed, or its last commit had its time and
    SQLite's WAL keeps the file whole either way), so they are left behind.
    """
    deadline = time.monotonic() + grace_s
    if signalled_at is not None:
        deadline = min(deadline, signalled_at + STOP_BOUND_S - 2 * _EXIT_MARGIN_S)
    main = threading.main_thread()
    busy = [t for t in threading.enumerate() if not t.daemon and t is not main]
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in busy if t.is_alive()]
    if left:
        _log.warning(
            "stopped; not waiting for %s (e.g. a request to a server that does not answer)",
            ", ".join(left),
        )
        _exit_now(0)
