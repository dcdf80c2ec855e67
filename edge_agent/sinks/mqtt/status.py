"""The agent's retained status on `<root>/status`, and what a starting agent makes of the one it finds.

Payloads (JSON, retained, QoS 1):
  {"status":"online","instance":"3f9a0c1d2b4e5f60","since":"2026-12-01T02:40:00.123Z"}
      the birth message, published on every connection (`since`: when that connection was made)
  {"status":"offline","instance":"3f9a0c1d2b4e5f60"}
      the last will, and the message of a clean close

`instance` names one installation of the agent: made once and kept in its buffer file, so it
survives restarts and crashes, and two PCs never share one. With it a starting agent tells its
own birth message, left behind by a crash, from another agent that runs under the same id.
Versions before it published the plain strings `online` and `offline`, which name nobody.

Pure code: no I/O, no clock (see edge_agent.sinks.mqtt.probe for the connection that reads it).
"""

from __future__ import annotations

__all__ = [
    "WILL_MARGIN_S",
    "Finding",
    "Status",
    "judge",
    "offline_of_another",
    "offline_payload",
    "online_payload",
    "parse_status",
    "refusal_message",
    "taken_back_message",
    "will_wait_s",
]

import json
import re
from dataclasses import dataclass
from enum import Enum

from edge_agent.timefmt import iso_utc

# A broker publishes the will of a client that went silent 1.5 keep-alive periods after its last
# packet (MQTT 3.1.1, 3.1.2.10); this covers the broker's own check interval and the delivery.
WILL_MARGIN_S = 2.0
# What is shown of another agent's payload: it comes from the network and ends up in a message
# printed to a terminal, so anything beyond these characters makes the payload "not a status".
_INSTANCE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_SINCE = re.compile(r"[0-9T:.+Z-]{1,40}")


@dataclass(frozen=True, slots=True)
class Status:
    online: bool
    instance: str | None = None  # None: an older version's plain payload, which names nobody
    since: str | None = None  # when the other agent's connection was made (online only)


class Finding(Enum):
    """What the retained status says about taking this agent's id now."""

    NONE = "no status"  # nothing retained (a new id), or cleared
    OFFLINE = "offline"
    OURS = "our own birth message"  # left behind by a crash of this installation
    LEGACY = "online, from an older version"  # names no instance
    UNKNOWN = "not a status"  # something else was written to the topic
    OTHER = "online, another instance"  # alive, or dead with its will still to come
    # A broker that makes the account name the client id (mosquitto's use_username_as_clientid)
    # gives the probe the live agent's client id: the broker drops that agent, publishes its will,
    # and the agent, alive, takes its connection back from the probe within a reconnect delay.
    TAKEN_BACK = "online, another instance that took its connection back"

    @property
    def blocks(self) -> bool:
        """Another agent may be online under this id: wait for its will, refuse if none comes."""
        return self is Finding.OTHER

    @property
    def refuses(self) -> bool:
        """Another agent is online under this id: the start is refused."""
        return self in (Finding.OTHER, Finding.TAKEN_BACK)


def online_payload(instance: str, since_ns: int) -> str:
    return _compact({"status": "online", "instance": instance, "since": iso_utc(since_ns)})


def offline_payload(instance: str) -> str:
    return _compact({"status": "offline", "instance": instance})


def parse_status(payload: bytes) -> Status | None:
    """The status in a payload of `<root>/status`; None for anything else (empty included)."""
    text = payload.strip()
    if text in (b"online", b"offline"):
        return Status(online=text == b"online")
    try:
        body = json.loads(text)
    except ValueError:  # UnicodeDecodeError is one too
        return None
    if not isinstance(body, dict) or body.get("status") not in ("online", "offline"):
        return None
    instance, since = body.get("instance"), body.get("since")
    if not isinstance(instance, str) or not _INSTANCE.fullmatch(instance):
        return None
    if not isinstance(since, str) or not _SINCE.fullmatch(since):
        since = None  # only shown to people; the decision does not need it
    return Status(online=body["status"] == "online", instance=instance, since=since)


def judge(payload: bytes | None, instance: str) -> Finding:
    """What a starting agent of installation `instance` makes of the retained `payload`."""
    if not payload:  # no retained message, or one deleted with an empty payload
        return Finding.NONE
    status = parse_status(payload)
    if status is None:
        return Finding.UNKNOWN
    if not status.online:
        return Finding.OFFLINE
    if status.instance is None:
        return Finding.LEGACY
    return Finding.OURS if status.instance == instance else Finding.OTHER


def offline_of_another(payload: bytes | None, instance: str) -> bool:
    """An `offline` of another installation: possibly the will of a live agent the probe just
    threw off the broker by taking its client id (see Finding.TAKEN_BACK)."""
    status = parse_status(payload or b"")
    return status is not None and not status.online and status.instance not in (None, instance)


def will_wait_s(keepalive_s: float) -> float:
    """How long an agent that may be dead can still look online: until its broker notices."""
    return 1.5 * keepalive_s + WILL_MARGIN_S


def refusal_message(
    agent_id: str, endpoint: str, topic: str, other: Status, ours: str, waited_s: float
) -> str:
    """Why the agent does not start, and what to do: one paragraph for the person at the PC."""
    since = f" since {other.since}" if other.since else ""
    host, _, port = endpoint.rpartition(":")
    return (
        f"agent id '{agent_id}' is taken on the MQTT broker {endpoint}: another agent (instance "
        f"{other.instance}; this one is {ours}) has been online there{since}, and still was "
        f"after this one waited {waited_s:.1f} s for it to go offline, so this agent does not "
        "start. Two agents with one id throw each other off the broker (they share its client "
        "id) and mix their values, machine states and alarms in the same topics and InfluxDB "
        "series. Give this PC its own agent.id (with one broker account per agent, its own "
        "account too), or stop the other agent first. If no agent runs under this id any more, "
        "the status is a leftover (e.g. from a broker restart): delete it with "
        f"`mosquitto_pub -h {host} -p {port} -t '{topic}' -r -n` (with the broker account's -u "
        "and -P) and start again."
    )


def taken_back_message(agent_id: str, endpoint: str, other: Status, ours: str) -> str:
    """The refusal when the broker ties client ids to accounts and the other agent took its
    connection back from this one's look (Finding.TAKEN_BACK)."""
    return (
        f"agent id '{agent_id}' is taken on the MQTT broker {endpoint}: another agent (instance "
        f"{other.instance}; this one is {ours}) is connected there with the same account, so "
        "this agent does not start. The broker gives every connection of an account the same "
        "client id, so this agent's look at its status threw the other one off for a moment, and "
        "it connected again at once. Two agents with one id throw each other off the broker and "
        "mix their values, machine states and alarms in the same topics and InfluxDB series. "
        "Give this PC its own agent.id and its own broker account, or stop the other agent first."
    )


def _compact(payload: dict[str, str]) -> str:
    return json.dumps(payload, separators=(",", ":"))
