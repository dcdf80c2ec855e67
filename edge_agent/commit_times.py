"""When buffered records were committed, coarsely, to tell how long a sink's oldest record waits.

A record's own time stamp cannot tell it: an OEE window is stamped with the window's start, hours
before it is written. Keeping a time per record would cost a column and a write per record; one
mark per second, thinned when the list grows long, is enough for a gauge of minutes and hours.
"""

from __future__ import annotations

__all__ = ["CommitTimes"]

import bisect


class CommitTimes:
    def __init__(self, max_marks: int = 4096, resolution_s: float = 1.0) -> None:
        self.max_marks = max_marks
        self.resolution_s = resolution_s
        self._seqs: list[int] = []  # first sequence number committed at or after the time below
        self._times: list[float] = []

    def note(self, first_seq: int, at_s: float) -> None:
        """Records from `first_seq` on were committed at `at_s` (unix seconds) or later."""
        if self._times and at_s - self._times[-1] < self.resolution_s:
            return
        self._seqs.append(first_seq)
        self._times.append(at_s)
        if len(self._seqs) > self.max_marks:
            # Halve the resolution rather than forget the oldest marks: a long outage is exactly
            # when the age of the oldest record matters.
            self._seqs, self._times = self._seqs[::2], self._times[::2]
            self.resolution_s *= 2

    def committed_at(self, seq: int) -> float | None:
        """The latest mark at or before `seq`'s commit; None when `seq` is older than every mark."""
        i = bisect.bisect_right(self._seqs, seq) - 1
        return self._times[i] if i >= 0 else None

    def forget_before(self, seq: int) -> None:
        """Drop marks that only cover records before `seq` (delivered everywhere, or dropped)."""
        i = bisect.bisect_right(self._seqs, seq) - 1
        if i > 0:
            del self._seqs[:i], self._times[:i]
