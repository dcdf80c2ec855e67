"""Device faults over real sockets: one hung device among ten, and a device that answers garbage.

The agent runs in-process, as in test_pipeline; the devices are the product's simulator, a proxy
in front of it that can hang, and a server that answers with broken frames (bad_modbus.py). Every
figure is read from the agent's own Prometheus registry, as /metrics would show it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from pymodbus.server import ModbusTcpServer

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.agent import Agent
from edge_agent.config import load_config
from edge_agent.samples import Quality
from tests.integration.test_pipeline import write_config
from tests.support.bad_modbus import Fault, HangingProxy, MalformedServer
from tests.support.fixed_device import FIXED_TAGS, device_yaml, fixed_image
from tests.support.servers import free_port

INTERVAL_S = 0.1


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[tuple[Agent, asyncio.Task[None]]]:
    """test_pipeline's `running`, also handing out the task, so a test can tell it still runs."""
    agent = Agent(load_config(path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def sample(agent: Agent, metric: str, device: str) -> float:
    value = agent.metrics.registry.get_sample_value(metric, {"device": device})
    return 0.0 if value is None else value


def successful_polls(agent: Agent, device: str) -> int:
    # poll_seconds is observed only when a read returned, so its count is the successful polls;
    # edge_device_polls also counts the failed ones.
    return int(sample(agent, "edge_device_poll_seconds_count", device))


def poll_errors(agent: Agent, device: str) -> int:
    return int(sample(agent, "edge_device_poll_errors_total", device))


def is_up(agent: Agent, device: str) -> bool:
    return sample(agent, "edge_device_up", device) == 1.0


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `predicate` held; fails the test after `timeout_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def count_over(
    agent: Agent, devices: list[str], window_s: float
) -> tuple[dict[str, int], float]:
    """Successful polls of each device over `window_s`, and the window actually measured."""
    before = {d: successful_polls(agent, d) for d in devices}
    started = time.monotonic()
    await asyncio.sleep(window_s)
    elapsed = time.monotonic() - started
    return {d: successful_polls(agent, d) - before[d] for d in devices}, elapsed


HEALTHY = [f"dev{i}" for i in range(9)]
WINDOW_S = 6.0


async def test_one_hung_device_of_ten_does_not_slow_the_other_nine(tmp_path: Path) -> None:
    """Ten devices polled every 0.1 s; the tenth hangs mid-run, on its established connection.

    Expected numbers. The scheduler fires each device's poll on a fixed grid, first + k·0.1 s
    (an interval trigger: a late run does not shift the later ones), and a poll of the fixed
    device (4 requests over loopback, a few ms) ends long before the next tick, so there are no
    overruns. Over a window of W seconds every device therefore completes W / 0.1 polls, give or
    take one for where the window's edges fall on its grid: W = 6 s gives 60 ± 1 (10 polls/s).
    The hung device costs the others nothing: its poll is a coroutine waiting on a socket until
    the 0.5 s client timeout, then it backs off (0.5 to 1 s, then 1 to 2 s, 2 to 4 s ...), so it
    makes at most about 4 attempts in the window, each a connect, 12 bytes sent and a timer. The
    nine should thus again complete 60 ± 1 each: within 2 of their healthy count and within 1 of
    nominal, both inside the 5 % bound (3 polls of 60). A loaded machine delays polls by a few
    ms, which moves a poll across a window edge (± 1 more) but cannot remove one, since no poll
    comes near 0.1 s.
    """
    ports = [free_port() for _ in range(10)]
    servers: list[ModbusTcpServer] = []
    for port in ports:
        servers.append(await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port))
    proxy = HangingProxy(ports[9])
    await proxy.start()
    path, _ = write_config(
        tmp_path,
        "devices:\n"
        + "".join(
            device_yaml(d, p, poll_interval_s=INTERVAL_S)
            for d, p in zip(HEALTHY, ports[:9], strict=True)
        )
        + device_yaml("hung", proxy.port, poll_interval_s=INTERVAL_S).replace(
            "timeout_s: 1", "timeout_s: 0.5"
        ),
    )
    try:
        async with running(path) as (agent, task):
            everyone = [*HEALTHY, "hung"]
            await wait_until(lambda: all(is_up(agent, d) for d in everyone), 5, "all ten up")
            healthy, healthy_s = await count_over(agent, everyone, WINDOW_S)
            assert proxy.connections == 1  # one connection, kept open across polls

            proxy.hang()
            errors_before = poll_errors(agent, "hung")
            during, during_s = await count_over(agent, everyone, WINDOW_S)

            assert not task.done()
            assert not is_up(agent, "hung")
            last_error = agent.pollers["hung"].last_error or ""
            assert "timeout" in last_error, last_error
            hung_attempts = poll_errors(agent, "hung") - errors_before
            overruns = {d: sample(agent, "edge_device_poll_overruns_total", d) for d in HEALTHY}
            errors = {d: poll_errors(agent, d) for d in HEALTHY}
    finally:
        await proxy.close()
        for server in servers:
            await server.shutdown()

    print(
        f"\nhealthy window {healthy_s:.2f} s: {healthy}"
        f"\nhung window {during_s:.2f} s: {during}"
        f"\nhung device: {hung_attempts} failed attempts, proxy swallowed {proxy.swallowed} "
        f"requests ({proxy.swallowed_on_established} on the connection open before the hang)"
    )
    # The hang struck the connection the agent already had, not only new ones.
    assert proxy.swallowed_on_established >= 1
    assert 1 <= hung_attempts <= 5, hung_attempts
    # At most the poll whose answer was on its way when the proxy hung.
    assert during["hung"] <= 1, during["hung"]
    assert healthy["hung"] >= 0.95 * healthy_s / INTERVAL_S  # it was as healthy as the rest first
    nominal_healthy, nominal_during = healthy_s / INTERVAL_S, during_s / INTERVAL_S
    for device in HEALTHY:
        assert errors[device] == 0 and overruns[device] == 0, (device, errors, overruns)
        assert abs(healthy[device] - nominal_healthy) <= 0.05 * nominal_healthy, (device, healthy)
        assert abs(during[device] - healthy[device]) <= 0.05 * healthy[device], (device, during)
        assert abs(during[device] - nominal_during) <= 0.05 * nominal_during, (device, during)


GOOD_WORD = 4242  # what the malformed server's registers hold when it answers correctly
WRONG_WORD = 0xDEAD  # what its broken-but-decodable answers carry: must never reach the agent

BAD_DEVICE = """\
  bad:
    driver: modbus
    host: 127.0.0.1
    port: {port}
    poll_interval_s: 0.1
    timeout_s: 0.2
    backoff_max_s: 0.1
    tags:
      word: {{table: holding, address: 0, type: uint16}}
"""
GOOD_EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}


async def test_malformed_frames_are_counted_and_survived(tmp_path: Path) -> None:
    """Each kind of broken answer in turn (the device recovering in between), then all kinds
    cycled answer by answer; meanwhile a healthy device is polled alongside.

    The bad device has one tag, so a poll is one request and one answer. Each broken answer must
    fail exactly that poll (counted in edge_device_poll_errors, the device down, its tag bad),
    never yield a value, and the next correct answer must bring the right value back. With a
    0.2 s client timeout and a 0.1 s backoff ceiling a failed poll lasts at most about 0.3 s plus
    a tick, so every kind is seen twice within a few seconds and recovery takes well under 1 s.
    """
    sim_port = free_port()
    sim = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", sim_port)
    bad = MalformedServer(GOOD_WORD, WRONG_WORD)
    await bad.start()
    path, _ = write_config(
        tmp_path,
        "devices:\n"
        + BAD_DEVICE.format(port=bad.port)
        + device_yaml("good", sim_port, poll_interval_s=INTERVAL_S),
    )
    tags_of_good = [f"good.{t}" for t in GOOD_EXPECTED]
    figures: dict[str, str] = {}
    try:
        async with running(path) as (agent, task):
            tags = agent.engine.tags

            def broken_sent(kinds: tuple[Fault, ...]) -> int:
                return sum(bad.answered[k] for k in kinds)

            def bad_reads_right() -> bool:
                return tags.reading("bad.word") == (GOOD_WORD, Quality.GOOD)

            def good_undisturbed() -> None:
                assert is_up(agent, "good") and poll_errors(agent, "good") == 0
                assert {t.split(".")[1]: tags.value(t) for t in tags_of_good} == GOOD_EXPECTED

            await wait_until(bad_reads_right, 5, "bad reads right at first")
            await wait_until(lambda: is_up(agent, "good"), 5, "good up")
            good_polls_at_start, started = successful_polls(agent, "good"), time.monotonic()

            for kinds in [*[(f,) for f in Fault], tuple(Fault)]:
                label = kinds[0].value if len(kinds) == 1 else "all kinds in turn"
                errors_before = poll_errors(agent, "bad")
                sent_before = broken_sent(kinds)
                bad.faults = kinds
                wanted = 2 * len(kinds)
                # One more than `wanted`: that answer is only asked for once the poll that got the
                # one before has ended, so `wanted` broken answers have had their effect by then.
                broken_s = await wait_until(
                    lambda: broken_sent(kinds) - sent_before > wanted,  # noqa: B023 (awaited here)
                    15,
                    f"{label}: {wanted} broken answers",
                )
                assert not is_up(agent, "bad"), label
                assert tags.reading("bad.word") == (None, Quality.BAD), label
                good_undisturbed()
                bad.faults = ()
                recovered = await wait_until(bad_reads_right, 5, f"{label}: right value again")
                assert is_up(agent, "bad")
                sent = broken_sent(kinds) - sent_before
                counted = poll_errors(agent, "bad") - errors_before
                figures[label] = (
                    f"{sent} broken answers, {counted} poll errors, {broken_s / sent:.2f} s per "
                    f"broken answer, right value {recovered:.2f} s after the fix"
                )
                assert counted == sent, (label, counted, sent)

            good_undisturbed()
            elapsed = time.monotonic() - started
            good_polls = successful_polls(agent, "good") - good_polls_at_start
            ok_answers = bad.answered["ok"]
            values_read = int(sample(agent, "edge_device_values_total", "bad"))
            assert not task.done() and agent.scheduler.get_job("bad") is not None
    finally:
        await bad.close()
        await sim.shutdown()

    print("\n" + "\n".join(f"{k}: {v}" for k, v in figures.items()))
    print(f"good: {good_polls} polls in {elapsed:.2f} s (nominal {elapsed / INTERVAL_S:.1f})")
    # Every value the agent read from the bad device came from a correct answer (at most one
    # correct answer can still be on its way); a broken answer taken as data would tip this over.
    assert 0 <= ok_answers - values_read <= 1, (ok_answers, values_read)
    assert abs(good_polls - elapsed / INTERVAL_S) <= 0.05 * elapsed / INTERVAL_S, good_polls
