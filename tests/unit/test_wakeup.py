"""The timer that wakes only when work is due (edge_agent.wakeup), on a real event loop."""

from __future__ import annotations

import asyncio

from edge_agent.wakeup import Wakeup


async def test_it_sleeps_while_nothing_is_due_and_wakes_when_something_is() -> None:
    due: list[float | None] = [None]
    ran: list[float] = []
    loop = asyncio.get_running_loop()

    async def work() -> None:
        ran.append(loop.time())
        due[0] = None  # done: nothing more is due

    wake = Wakeup("test", lambda: due[0], work)
    wake.rearm()
    await asyncio.sleep(0.1)
    assert ran == [] and wake.runs == 0
    started = loop.time()
    due[0] = 0.05
    wake.rearm()
    due[0] = 0.5  # a later instant does not put off the earlier wake
    wake.rearm()
    await asyncio.sleep(0.2)
    assert len(ran) == 1 and 0.04 < ran[0] - started < 0.15
    await asyncio.sleep(0.5)
    assert wake.runs == 1  # nothing due after the work: no more wakes


async def test_an_earlier_instant_brings_the_wake_forward_and_a_failure_keeps_it() -> None:
    due: list[float | None] = [10.0]
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            due[0] = 0.01
            raise RuntimeError("a bug in the work")  # logged; the next wake still comes
        due[0] = None

    wake = Wakeup("test", lambda: due[0], work)
    wake.rearm()
    due[0] = 0.01
    wake.rearm()
    await asyncio.sleep(0.2)
    assert runs == 2
    wake.stop()
    due[0] = 0.0
    wake.rearm()
    await asyncio.sleep(0.05)
    assert runs == 2  # stopped: no more wakes
