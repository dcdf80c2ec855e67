"""MQTT command intake without a broker: roles by topic, limits, replies, a clock of our own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_agent.access.roles import Identity, Role
from edge_agent.commands import MAX_PAYLOAD_BYTES, MqttCommands
from edge_agent.metrics import Metrics
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.sink import VOLATILE_MAX, MqttSink

ROOT = "edge/press1"
OPERATOR = f"{ROOT}/commands/alarms/operator"
ENGINEER = f"{ROOT}/commands/alarms/engineer"
RETIRED = f"{ROOT}/commands/alarms"


class Desk:
    """MqttCommands with a fake clock, an `execute` that records and a `publish` that collects."""

    def __init__(
        self, *, queue_full: bool = False, tokens: dict[str, Identity] | None = None
    ) -> None:
        self.now = 100.0
        self.executed: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.queue_full = queue_full
        self.metrics = Metrics()
        known = tokens or {}
        self.commands = MqttCommands(
            ROOT,
            self._execute,
            self.metrics,
            self._publish,
            tokens=known.get,
            clock=lambda: self.now,
        )

    def _execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.executed.append(payload)
        return {"ok": True, "id": payload["id"], "command": payload["command"], "state": "x"}

    def _publish(self, topic: str, payload: str) -> bool:
        assert topic == f"{ROOT}/commands/alarms/reply"
        self.replies.append(json.loads(payload))
        return not self.queue_full

    def send(self, topic: str, payload: dict[str, Any] | bytes) -> dict[str, Any] | None:
        before = len(self.replies)
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.commands.receive(topic, raw)
        return self.replies[-1] if len(self.replies) > before else None

    def refused(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "edge_commands_refused_total", {"reason": reason}
        )
        return value or 0.0


def test_the_role_is_the_topics_and_the_name_given_is_only_declared() -> None:
    desk = Desk()
    payload = {"command": "ack", "id": "hot", "user": "li.wei", "declared_user": "boss"}
    reply = desk.send(OPERATOR, {**payload, "request_id": 7})
    assert desk.executed[-1]["user"] == "mqtt:operator"
    assert desk.executed[-1]["declared_user"] == "li.wei"  # what the payload said it was, ignored
    assert reply is not None
    assert reply == {**reply, "ok": True, "user": "mqtt:operator", "request_id": 7}
    desk.send(ENGINEER, {"command": "reset", "id": "service"})
    assert desk.executed[-1]["user"] == "mqtt:engineer"


@pytest.mark.parametrize(
    ("topic", "command", "allowed"),
    [
        (OPERATOR, "ack", True),
        (OPERATOR, "shelve", True),
        (OPERATOR, "unshelve", True),
        (OPERATOR, "out_of_service", False),
        (OPERATOR, "in_service", False),
        (OPERATOR, "reset", False),
        (OPERATOR, "silence", True),  # unknown: the alarms say so, not the role check
        (ENGINEER, "out_of_service", True),
        (ENGINEER, "reset", True),
        (ENGINEER, "ack", True),
    ],
)
def test_commands_above_the_topics_role_are_refused(
    topic: str, command: str, allowed: bool
) -> None:
    desk = Desk()
    reply = desk.send(topic, {"command": command, "id": "hot", "request_id": "r"})
    assert reply is not None and reply["request_id"] == "r"
    assert bool(desk.executed) == allowed
    if not allowed:
        assert f"{command} needs the engineer role: send it to {ENGINEER}" in reply["error"]
        assert desk.refused("role") == 1


def test_the_retired_topic_says_where_to_send() -> None:
    desk = Desk()
    reply = desk.send(RETIRED, {"command": "ack", "id": "hot", "request_id": "r1"})
    assert reply is not None and not desk.executed
    assert reply["request_id"] == "r1" and reply["error"].startswith(f"{RETIRED} no longer takes")
    assert OPERATOR in reply["error"] and ENGINEER in reply["error"]
    assert desk.refused("retired_topic") == 1


@pytest.mark.parametrize(
    ("payload", "reason", "error"),
    [
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "too_large", "at most 4096 bytes; this one has 4097"),
        (b"{not json", "malformed", "malformed command"),
        (b"[1, 2]", "malformed", "expected a JSON object"),
        (b'{"command": "ack", "id": "hot", "x": NaN}', "malformed", "NaN is not a JSON number"),
        (b"[" * 2000 + b"]" * 2000, "malformed", "malformed command"),
        (b'{"command": "ack", "id": "hot", "request_id": true}', "bad_request_id", "request_id"),
        (json.dumps({"request_id": "r" * 65}).encode(), "bad_request_id", "1 to 64 printable"),
        (json.dumps({"request_id": "a\nb"}).encode(), "bad_request_id", "printable"),
        (json.dumps({"request_id": ""}).encode(), "bad_request_id", "printable"),
        (json.dumps({"request_id": 10**70}).encode(), "bad_request_id", "request_id"),
        (json.dumps({"command": "ack", "id": "x" * 65}).encode(), "bad_field", "id is an alarm"),
        (json.dumps({"command": "ack", "id": "h", "user": "u" * 65}).encode(), "bad_field", "user"),
        (json.dumps({"command": "ack", "id": "h", "user": 5}).encode(), "bad_field", "user"),
        (
            json.dumps({"command": "ack", "id": "h", "token": "eat_x"}).encode(),
            "bad_token",
            "the token is not known",
        ),
    ],
)
def test_hostile_input_is_refused_with_a_reply_and_counted(
    payload: bytes, reason: str, error: str
) -> None:
    desk = Desk()
    reply = desk.send(OPERATOR, payload)
    assert reply is not None and reply["ok"] is False and error in reply["error"]
    assert not desk.executed and desk.refused(reason) == 1
    if reason in ("too_large", "bad_request_id", "malformed"):
        assert reply["request_id"] is None  # never echoed back


def test_the_largest_payload_and_request_id_that_are_allowed() -> None:
    desk = Desk()
    command = {"command": "ack", "id": "hot", "request_id": "r" * 64, "note": ""}
    command["note"] = "n" * (MAX_PAYLOAD_BYTES - len(json.dumps(command)))
    raw = json.dumps(command).encode()
    assert len(raw) == MAX_PAYLOAD_BYTES
    reply = desk.send(OPERATOR, raw)
    assert reply is not None and reply["ok"] and reply["request_id"] == "r" * 64


def test_rate_limit_per_topic_with_one_reply_a_second() -> None:
    """20 at once, then 10 a second; the 21st is refused with a reply, the next refusals within
    that second without one; the engineer topic has its own bucket."""
    desk = Desk()
    ack = {"command": "ack", "id": "hot"}
    for _ in range(20):
        assert desk.send(OPERATOR, ack) is not None
    limited = desk.send(OPERATOR, ack)
    assert limited is not None and "too many commands" in limited["error"]
    assert [desk.send(OPERATOR, ack) for _ in range(5)] == [None] * 5
    assert desk.refused("rate_limited") == 6 and len(desk.executed) == 20
    assert desk.send(ENGINEER, ack) is not None and len(desk.executed) == 21

    desk.now += 0.1  # one token back
    assert desk.send(OPERATOR, ack) is not None and len(desk.executed) == 22
    assert desk.send(OPERATOR, ack) is None  # refused; the last limit reply is 0.1 s old
    desk.now += 0.95  # 1.05 s after the first limit reply; 9.5 tokens back
    for _ in range(9):
        desk.send(OPERATOR, ack)
    again = desk.send(OPERATOR, ack)
    assert again is not None and "too many commands" in again["error"]
    assert len(desk.executed) == 31 and desk.refused("rate_limited") == 8


def test_a_reply_the_full_queue_drops_is_counted() -> None:
    desk = Desk(queue_full=True)
    desk.send(OPERATOR, {"command": "ack", "id": "hot"})
    dropped = desk.metrics.registry.get_sample_value("edge_command_replies_dropped_total")
    assert dropped == 1


def test_the_volatile_queue_keeps_the_newest_replies() -> None:
    sink = MqttSink(MqttSinkConfig.model_validate({}), "press1", ROOT)
    kept = [sink.publish_volatile(f"{ROOT}/x", str(i)) for i in range(VOLATILE_MAX + 5)]
    assert kept == [True] * VOLATILE_MAX + [False] * 5
    assert [p for _, p in sink.transport._volatile] == [str(i) for i in range(5, VOLATILE_MAX + 5)]


def test_a_token_names_the_sender_and_both_roles_must_allow() -> None:
    """An engineer's token on the operator topic acts as an operator (the broker's ACL for the
    topic still holds); an operator's token on the engineer topic acts as an operator too."""
    tokens = {
        "eat_eng": Identity("maint", Role.ENGINEER, "token"),
        "eat_op": Identity("scada", Role.OPERATOR, "token"),
    }
    desk = Desk(tokens=tokens)
    reply = desk.send(ENGINEER, {"command": "out_of_service", "id": "hot", "token": "eat_eng"})
    assert reply is not None and reply["ok"] and reply["user"] == "token:maint"
    assert "token" not in desk.executed[-1]  # never passed on, never echoed
    refused = desk.send(ENGINEER, {"command": "out_of_service", "id": "hot", "token": "eat_op"})
    assert refused is not None and not refused["ok"] and desk.refused("role") == 1
    refused = desk.send(OPERATOR, {"command": "reset", "id": "hot", "token": "eat_eng"})
    assert refused is not None and not refused["ok"] and desk.refused("role") == 2
    acked = desk.send(OPERATOR, {"command": "ack", "id": "hot", "token": "eat_op"})
    assert acked is not None and acked["ok"] and desk.executed[-1]["user"] == "token:scada"
