from __future__ import annotations

import random

from edge_agent.backoff import Backoff


def test_doubles_with_jitter_up_to_the_ceiling_and_resets() -> None:
    b = Backoff(1.0, 10.0, random.Random(7))
    delays = [b.next_delay() for _ in range(7)]
    ceilings = [1, 2, 4, 8, 10, 10, 10]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    b.reset()
    assert 0.5 <= b.next_delay() <= 1.0
