"""Telling another edge node's birth from one's own, and connections that keep being taken."""

from __future__ import annotations

import logging

import pytest

from edge_agent.sinks.mqtt.link import MqttLink
from edge_agent.sinks.mqtt.transport import MqttTransport
from edge_agent.sinks.sparkplug.layout import NodeLayout
from edge_agent.sinks.sparkplug.node import EdgeNode
from edge_agent.sinks.sparkplug.twin import Seen, TwinWatch

S = 1_000_000_000
T0 = 1_796_000_000 * S


def births(bd_seq: int, count: int) -> list[bytes]:
    """`count` NBIRTH payloads of a node whose connection has `bd_seq`, a second apart."""
    node = EdgeNode(NodeLayout("G", "E", {}, {}), bd_seq=(bd_seq - 1) % 256)
    node.will(T0)
    out = [node.birth(T0)[0]]
    out += [node.rebirth(T0 + (i + 1) * S)[0] for i in range(count - 1)]
    assert all(m.topic == "spBv1.0/G/NBIRTH/E" for m in out)
    return [m.payload for m in out]


def watch() -> TwinWatch:
    return TwinWatch("uns", "G", "E", "broker:1883")


def test_own_births_are_own_however_many_and_in_any_order() -> None:
    w = watch()
    own = births(7, 3)
    for payload in own:
        w.sent(payload)
    for payload in reversed(own):
        assert w.received(payload, T0) is Seen.OWN
    assert w.foreign == 0 and w.conflict(T0) is None


def test_a_birth_not_sent_is_another_node_s_with_its_bd_seq(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    w = watch()
    (own,) = births(0, 1)
    w.sent(own)
    other = births(0, 2)[1]  # the same bdSeq, another instant: not the same bytes
    assert w.received(other, T0) is Seen.NEW_TWIN
    assert w.received(own, T0) is Seen.OWN
    text = w.conflict(T0)
    assert text is not None
    assert text.startswith("another Sparkplug edge node is born as G/E on broker:1883 (last at ")
    assert ", bdSeq 0; once)" in text
    assert [r.getMessage() for r in caplog.records] == [f"uns: {text}"]


def test_a_twin_that_keeps_being_born_is_logged_every_ten_minutes_and_shown_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    w = watch()
    payloads = births(3, 31)
    seen = [w.received(p, T0 + minute * 60 * S) for minute, p in enumerate(payloads[:30])]
    # One a minute for half an hour: new at the first only, so the node answers it once.
    assert seen == [Seen.NEW_TWIN] + [Seen.TWIN] * 29
    assert len(caplog.records) == 3  # at 0, 10 and 20 minutes
    last = T0 + 29 * 60 * S
    assert "30 births since 2026-" in (w.conflict(last) or "")
    assert w.conflict(last + 3599 * S) is not None
    assert w.conflict(last + 3600 * S) is None
    # An hour without it: the next birth is news again, and is answered again.
    assert w.received(payloads[30], last + 3600 * S) is Seen.NEW_TWIN


def test_a_large_or_broken_birth_counts_without_a_bd_seq() -> None:
    w = watch()
    assert w.received(b"\xff\xff\xff", T0) is Seen.NEW_TWIN
    assert ", bdSeq" not in (w.conflict(T0) or "")
    assert w.received(b"\x00" * (1024 * 1024 + 1), T0) is Seen.TWIN
    assert w.foreign == 2


def transport() -> MqttTransport:
    return MqttTransport(MqttLink("broker", 1883, "press-a", None, None, None, 30))


@pytest.mark.parametrize(
    ("lasted_s", "named"),
    [
        ([1, 2, 1], True),
        ([1, 2, 30, 1, 2], False),  # one lasting connection between starts the count again
        ([60, 60, 60, 60], False),  # a network that comes and goes
        ([1, 1, 1, 30], False),  # named while they keep ending, not after one lasted
    ],
)
def test_connections_lost_within_seconds_three_times_in_a_row_are_named(
    lasted_s: list[float], named: bool
) -> None:
    t = transport()
    for seconds in lasted_s:
        t._count_short(seconds)
    assert (t.unstable is not None) is named
    if named:
        assert "as client id 'press-a' was lost 3 times in a row within seconds" in (
            t.unstable or ""
        )
