"""Compute's clock against a host clock that is set forward and back (wall and monotonic faked)."""

from __future__ import annotations

import itertools

from edge_agent.clock import ComputeClock

S = 1_000_000_000
T0 = 1_780_000_000 * S


class Host:
    """A wall clock that can be set, and a monotonic clock that only counts real time."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 5 * S

    def run(self, seconds: float) -> None:
        self.wall += int(seconds * S)
        self.mono += int(seconds * S)

    def clock(self) -> ComputeClock:
        return ComputeClock(wall=lambda: self.wall, mono=lambda: self.mono)


def test_steady_time_is_the_local_clock() -> None:
    host = Host()
    clock = host.clock()
    for _ in range(5):
        host.run(1)
        now, jump = clock.now()
        assert (now, jump) == (host.wall, None)


def test_a_forward_jump_is_reported_once_and_time_goes_on_from_the_new_clock() -> None:
    host = Host()
    clock = host.clock()
    clock.now()
    host.run(1)
    host.wall += 30 * 86400 * S  # a person sets the date a month ahead
    now, jump = clock.now()
    assert jump is not None and jump.forward and jump.from_ns == T0
    assert jump.seconds == 30 * 86400 + 1 and now == host.wall
    host.run(1)
    assert clock.now() == (host.wall, None)


def test_a_slow_loop_is_not_a_jump() -> None:
    host = Host()
    clock = host.clock()
    clock.now()
    host.run(120)  # the loop was blocked two minutes: real time passed, nothing to report
    assert clock.now() == (host.wall, None)


def test_a_step_back_never_stops_time_and_is_caught_up_at_a_tenth_of_real_time() -> None:
    host = Host()
    clock = host.clock()
    clock.now()
    host.run(1)
    host.wall -= 60 * S  # NTP corrects a clock that ran a minute fast
    now, jump = clock.now()
    assert jump is not None and not jump.forward and not jump.restart
    assert now == T0 + int(0.9 * S)  # not back in time: on, at 90 % of the real second
    seen = [now]
    for _ in range(700):
        host.run(1)
        now, jump = clock.now()
        assert jump is None
        seen.append(now)
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert all(step > 0 for step in steps)  # never frozen
    assert min(steps) == int(0.9 * S)  # 10 % slow while catching up
    assert seen[-1] == host.wall  # caught up after 600 s
    assert clock.ahead_ns == 0


def test_a_step_back_longer_than_an_hour_restarts_at_the_new_time() -> None:
    host = Host()
    clock = host.clock()
    clock.now()
    host.run(1)
    host.wall -= 3 * 86400 * S  # set back three days, from a wrong date
    now, jump = clock.now()
    assert jump is not None and jump.restart and now == host.wall
    host.run(1)
    assert clock.now() == (host.wall, None)
