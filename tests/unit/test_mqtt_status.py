"""The retained status payloads, and what a starting agent makes of the one it finds (pure code)."""

from __future__ import annotations

import json

import pytest

from edge_agent.sinks.mqtt.status import (
    Finding,
    Status,
    judge,
    offline_payload,
    online_payload,
    parse_status,
    refusal_message,
    will_wait_s,
)

OURS = "3f9a0c1d2b4e5f60"
OTHER = "77aa00bb11cc22dd"
SINCE_NS = 1_796_092_800_123_000_000  # 2026-12-01T02:40:00.123Z


def test_payloads_are_small_json_with_the_instance() -> None:
    assert online_payload(OURS, SINCE_NS) == (
        '{"status":"online","instance":"3f9a0c1d2b4e5f60","since":"2026-12-01T02:40:00.123Z"}'
    )
    assert offline_payload(OURS) == '{"status":"offline","instance":"3f9a0c1d2b4e5f60"}'
    # A consumer reading edge/+/status needs one field to tell online from offline.
    assert json.loads(online_payload(OURS, SINCE_NS))["status"] == "online"
    assert json.loads(offline_payload(OURS))["status"] == "offline"


def test_what_the_agent_publishes_it_reads_back() -> None:
    assert parse_status(online_payload(OURS, SINCE_NS).encode()) == Status(
        True, OURS, "2026-12-01T02:40:00.123Z"
    )
    assert parse_status(offline_payload(OURS).encode()) == Status(False, OURS)


@pytest.mark.parametrize(
    ("payload", "finding"),
    [
        (None, Finding.NONE),  # nothing retained: a new agent id
        (b"", Finding.NONE),  # a retained status deleted with an empty payload
        (offline_payload(OTHER).encode(), Finding.OFFLINE),
        (offline_payload(OURS).encode(), Finding.OFFLINE),
        (online_payload(OURS, SINCE_NS).encode(), Finding.OURS),  # left behind by our crash
        (online_payload(OTHER, SINCE_NS).encode(), Finding.OTHER),
        (b"offline", Finding.OFFLINE),  # an older version's plain payloads
        (b"online", Finding.LEGACY),
        (b"online\n", Finding.LEGACY),
        (b'{"status":"online","instance":"77aa00bb11cc22dd"}', Finding.OTHER),  # no since
        (b'{"status":"online","instance":"77aa","since":"\\u001b[31m"}', Finding.OTHER),
        (b'{"status":"online"}', Finding.UNKNOWN),  # names no instance in the new format
        (b'{"status":"online","instance":42}', Finding.UNKNOWN),
        (b'{"status":"online","instance":"\\u001b[2J"}', Finding.UNKNOWN),  # not for a terminal
        (b'{"status":"online","instance":"' + b"a" * 65 + b'"}', Finding.UNKNOWN),
        (b'{"status":"up","instance":"77aa00bb11cc22dd"}', Finding.UNKNOWN),
        (b'["online"]', Finding.UNKNOWN),
        (b"ONLINE", Finding.UNKNOWN),
        (b"\xff\xfe", Finding.UNKNOWN),
        (b"{", Finding.UNKNOWN),
    ],
)
def test_what_a_status_means_for_a_starting_agent(payload: bytes | None, finding: Finding) -> None:
    assert judge(payload, OURS) is finding


def test_only_another_instance_online_holds_the_start() -> None:
    assert [f for f in Finding if f.blocks] == [Finding.OTHER]


def test_a_since_not_fit_to_show_is_left_out() -> None:
    status = parse_status(b'{"status":"online","instance":"77aa","since":"\\u001b[31m"}')
    assert status == Status(True, "77aa", None)


@pytest.mark.parametrize(("keepalive_s", "wait_s"), [(5, 9.5), (30, 47.0), (60, 92.0)])
def test_the_wait_covers_the_brokers_one_and_a_half_keepalives(
    keepalive_s: int, wait_s: float
) -> None:
    assert will_wait_s(keepalive_s) == wait_s


def test_the_refusal_says_who_where_why_and_what_to_do() -> None:
    other = Status(True, OTHER, "2026-12-01T02:40:00.123Z")
    text = refusal_message(
        "press-7", "broker.plant:8883", "edge/press-7/status", other, OURS, 47.25
    )
    assert "\n" not in text  # one paragraph
    for part in (
        "agent id 'press-7' is taken on the MQTT broker broker.plant:8883",
        f"another agent (instance {OTHER}; this one is {OURS})",
        "online there since 2026-12-01T02:40:00.123Z",
        "waited 47.2 s",
        "throw each other off the broker",
        "own agent.id",
        "stop the other agent",
        "mosquitto_pub -h broker.plant -p 8883 -t 'edge/press-7/status' -r -n",
    ):
        assert part in text, part


def test_the_refusal_without_a_since() -> None:
    text = refusal_message("a1", "h:1883", "edge/a1/status", Status(True, OTHER), OURS, 9.5)
    assert "has been online there, and still was after this one waited 9.5 s" in text
    assert "since" not in text
