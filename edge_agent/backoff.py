"""Jittered exponential backoff, so a plant's agents do not all retry a restarted server together."""

from __future__ import annotations

__all__ = ["Backoff"]

import random


class Backoff:
    """Delays base, 2*base, 4*base ... up to `max_s`, each scaled by a random factor in [0.5, 1]."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
