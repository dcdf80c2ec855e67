"""Alarm commands: carried out on the compute engine, and taken in over MQTT with their limits.

MQTT topics (`<root>` is `agent.topic_root`):
  <root>/commands/alarms/operator   ack, shelve (with a reason), unshelve
  <root>/commands/alarms/engineer   all of those, and out_of_service, in_service, reset
  <root>/commands/alarms            retired: refused, with a reply naming the two topics above
  <root>/commands/alarms/reply      replies

The role is the topic's. Only the broker knows who a client is, and its ACL (the template is
deploy/mosquitto.acl) lets only operator accounts write the operator topic and engineer accounts
the engineer topic, so the topic is what has been verified. Commands are recorded as by
`mqtt:<role>`; a `user` in the payload is what the sender says about themselves and is kept
apart, as `declared_user`. (A broker without that ACL lets anyone write either topic.)

What a hostile or broken client gets, in this order, each refusal counted in
`edge_commands_refused_total{reason}`:
  rate_limited    over RATE_PER_S commands a second per topic (bursts of RATE_BURST); one reply
                  a second at most, however many are refused
  too_large       a payload over MAX_PAYLOAD_BYTES; not parsed
  malformed       not a JSON object
  bad_request_id  a request_id that is not 1 to MAX_REQUEST_ID printable characters
  retired_topic   sent to the old <root>/commands/alarms
  bad_field       an over-long alarm id or declared user
  bad_token       a `token` that the users file does not know (a known one names the sender,
                  `token:<name>`, and its role limits the command as well as the topic's)
  role            a command above the topic's role
  refused         what the alarms refuse (unknown alarm, nothing to acknowledge, no reason)

Replies never go through the durable buffer: a flood of commands must not push production
records out of it. They wait in the MQTT transport's small volatile queue (the oldest dropped
and counted when it is full) and are lost, not replayed, if the agent stops.
"""

from __future__ import annotations

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_REQUEST_ID",
    "RATE_BURST",
    "RATE_PER_S",
    "MqttCommands",
    "carry_out",
    "command_topics",
]

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_agent import strict_json
from edge_agent.access.roles import Identity, Role, required_role
from edge_agent.compute.alarms import COMMANDS
from edge_agent.compute.engine import ComputeEngine
from edge_agent.metrics import Metrics
from edge_agent.records import Record
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096  # a command is a few hundred bytes
MAX_REQUEST_ID = 64
MAX_NAME = 64  # an alarm id (config: at most 64) or a declared user name
RATE_PER_S = 10.0
RATE_BURST = 20
_LIMIT_REPLY_EVERY_S = 1.0

Execute = Callable[[dict[str, Any]], dict[str, Any]]
Publish = Callable[[str, str], bool]  # topic, payload -> False when an older message was dropped


def carry_out(
    engine: ComputeEngine, payload: dict[str, Any], now_ns: int
) -> tuple[list[Record], dict[str, Any]]:
    """An alarm command at now_ns: the records it causes, and the reply that says how it went.

    `payload["user"]` must be who the path the command came by verified (the HTTP API's login or
    token, `mqtt:<role>`); nothing here looks at who it is.
    """
    records, refused = engine.command(payload, now_ns)
    if refused is not None:
        return records, {"ok": False, "error": refused}
    alarm = engine.alarms.alarms[payload["id"]]
    return records, {
        "ok": True,
        "id": alarm.config.id,
        "command": payload["command"],
        "state": alarm.state,
    }


def command_topics(root: str) -> dict[str, Role | None]:
    """The topics commands arrive on, with the role each grants (None: the retired topic)."""
    return {
        f"{root}/commands/alarms/operator": Role.OPERATOR,
        f"{root}/commands/alarms/engineer": Role.ENGINEER,
        f"{root}/commands/alarms": None,
    }


class _Refused(Exception):
    def __init__(self, reason: str, error: str, request_id: Any = None) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.request_id = request_id


@dataclass
class _TokenBucket:
    """`burst` commands at once, then `rate_per_s` a second."""

    rate_per_s: float
    burst: float
    tokens: float
    at_s: float

    def take(self, now_s: float) -> bool:
        elapsed = max(0.0, now_s - self.at_s)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.at_s = now_s
        if self.tokens < 1.0 - 1e-9:  # not refused over a rounding error of the elapsed time
            return False
        self.tokens -= 1.0
        return True


class MqttCommands:
    """Commands from MQTT: checked, limited, carried out by `execute`, answered by `publish`."""

    def __init__(
        self,
        root: str,
        execute: Execute,
        metrics: Metrics,
        publish: Publish,
        *,
        tokens: Callable[[str], Identity | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self._tokens = tokens  # verifies an API token sent in a payload (the users file)
        self.roles = command_topics(root)
        self.reply_topic = f"{root}/commands/alarms/reply"
        self._execute = execute
        self._metrics = metrics
        self._publish = publish
        self._clock = clock
        now = clock()
        self._buckets = {
            t: _TokenBucket(RATE_PER_S, RATE_BURST, RATE_BURST, now) for t in self.roles
        }
        self._limited_since_reply = dict.fromkeys(self.roles, 0)
        self._limit_replied_at = dict.fromkeys(self.roles, -_LIMIT_REPLY_EVERY_S)
        for reason in (
            "rate_limited",
            "too_large",
            "malformed",
            "bad_request_id",
            "role",
            "bad_token",
        ):
            metrics.commands_refused.labels(reason)  # shown as 0 from the start

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.roles)

    def receive(self, topic: str, raw: bytes) -> None:
        """One message on a command topic (on the event loop)."""
        if topic not in self.roles:
            return
        if not self._buckets[topic].take(self._clock()):
            self._rate_limited(topic)
            return
        try:
            payload, request_id = self._checked(topic, raw)
        except _Refused as refusal:
            self._refuse(topic, refusal)
            return
        reply = self._execute(payload)
        if not reply["ok"]:
            self._metrics.commands_refused.labels("refused").inc()
            _log.warning("alarm command on %s refused: %s", topic, reply["error"])
        self._reply({**reply, "request_id": request_id, "user": payload["user"]})

    def _checked(self, topic: str, raw: bytes) -> tuple[dict[str, Any], Any]:
        """The payload to carry out, as by the topic's role, and its request_id; or _Refused."""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise _Refused(
                "too_large",
                f"a command is at most {MAX_PAYLOAD_BYTES} bytes; this one has {len(raw)}",
            )
        try:
            payload = strict_json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _Refused("malformed", f"malformed command: {exc}") from None
        if not isinstance(payload, dict):
            raise _Refused("malformed", "malformed command: expected a JSON object")
        request_id = payload.get("request_id")
        if request_id is not None and not _is_request_id(request_id):
            raise _Refused(
                "bad_request_id",
                f"request_id is a string (or integer) of 1 to {MAX_REQUEST_ID} printable "
                "characters",
            )
        role = self.roles[topic]
        if role is None:
            raise _Refused(
                "retired_topic",
                f"{topic} no longer takes commands: send ack, shelve and unshelve to "
                f"{self.root}/commands/alarms/operator, and every command to "
                f"{self.root}/commands/alarms/engineer (the broker's ACL decides who may write "
                "each)",
                request_id,
            )
        user = f"mqtt:{role}"
        token = payload.pop("token", None)
        if token is not None:
            # A token names who sends it (a SCADA, a script), verified against the users file as
            # on the HTTP API. Both must allow the command: the broker's ACL for the topic and
            # the token's own role.
            identity = self._tokens(token) if self._tokens and isinstance(token, str) else None
            if identity is None:
                raise _Refused("bad_token", "the token is not known (or was revoked)", request_id)
            user = identity.label
            role = identity.role if identity.role.rank < role.rank else role
        declared = payload.get("user")
        if declared is not None and not _is_name(declared):
            raise _Refused(
                "bad_field",
                f"user is a name of at most {MAX_NAME} printable characters",
                request_id,
            )
        alarm_id, name = payload.get("id"), payload.get("command")
        if isinstance(alarm_id, str) and len(alarm_id) > MAX_NAME:
            raise _Refused(
                "bad_field", f"id is an alarm id of at most {MAX_NAME} characters", request_id
            )
        if name in COMMANDS and not role.may(needed := required_role(name)):
            raise _Refused(
                "role",
                f"{name} needs the {needed} role: send it to {self.root}/commands/alarms/{needed} "
                f"(this topic is for the {role} role)",
                request_id,
            )
        return {**payload, "user": user, "declared_user": declared}, request_id

    def _refuse(self, topic: str, refusal: _Refused) -> None:
        self._metrics.commands_refused.labels(refusal.reason).inc()
        _log.warning("MQTT command on %s refused (%s): %s", topic, refusal.reason, refusal.error)
        self._reply({"ok": False, "error": refusal.error, "request_id": refusal.request_id})

    def _rate_limited(self, topic: str) -> None:
        self._metrics.commands_refused.labels("rate_limited").inc()
        self._limited_since_reply[topic] += 1
        now = self._clock()
        if now - self._limit_replied_at[topic] < _LIMIT_REPLY_EVERY_S:
            return
        self._limit_replied_at[topic] = now
        count, self._limited_since_reply[topic] = self._limited_since_reply[topic], 0
        _log.warning(
            "MQTT commands on %s arrive faster than %g a second (bursts of %d): %d refused",
            topic,
            RATE_PER_S,
            RATE_BURST,
            count,
        )
        error = (
            f"too many commands on {topic}: at most {RATE_PER_S:g} a second (bursts of "
            f"{RATE_BURST}); the excess is refused, with one reply like this a second"
        )
        self._reply({"ok": False, "error": error, "request_id": None})

    def _reply(self, reply: dict[str, Any]) -> None:
        text = json.dumps(
            {**reply, "ts": iso_utc(time.time_ns())},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        if not self._publish(self.reply_topic, text):
            self._metrics.command_replies_dropped.inc()


def _is_request_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 10 ** (MAX_REQUEST_ID - 1)  # its digits and sign within the limit
    return isinstance(value, str) and 1 <= len(value) <= MAX_REQUEST_ID and value.isprintable()


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_NAME and value.isprintable()
