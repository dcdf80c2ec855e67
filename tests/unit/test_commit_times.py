"""The coarse index of commit times behind the 'oldest pending' gauge."""

from __future__ import annotations

from edge_agent.commit_times import CommitTimes


def test_a_sequence_number_maps_to_the_mark_at_or_before_it() -> None:
    times = CommitTimes(resolution_s=1.0)
    times.note(1, 100.0)
    times.note(50, 100.5)  # within the resolution: counted with the mark before
    times.note(80, 102.0)
    assert times.committed_at(0) is None
    assert times.committed_at(1) == 100.0
    assert times.committed_at(79) == 100.0
    assert times.committed_at(80) == times.committed_at(10**9) == 102.0
    times.forget_before(90)
    assert times.committed_at(85) == 102.0  # the mark that covers 90 stays


def test_a_long_history_is_thinned_not_forgotten() -> None:
    times = CommitTimes(max_marks=8, resolution_s=1.0)
    for i in range(100):
        times.note(i * 10 + 1, 1000.0 + i)
    assert len(times._seqs) <= 8
    assert times.committed_at(1) == 1000.0  # the oldest mark is kept
    assert times.committed_at(991) is not None and 1000.0 <= times.committed_at(991) <= 1099.0
