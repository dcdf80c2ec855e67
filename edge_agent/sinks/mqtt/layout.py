"""The agent's JSON topic layout: which topics and payloads each kind of record becomes.

Topics (`<root>` is the sink's topic_prefix, by default agent.topic_prefix, `edge/<agent id>`):
  <root>/devices/<device>              one message per poll (raw_values: per_poll)
  <root>/devices/<device>/<tag>        one message per tag (raw_values: per_tag)
  <root>/devices/<device>/link         up / down with the last error, retained
  <root>/machines/<machine>/state      current machine state, retained
  <root>/machines/<machine>/oee/<w>    OEE of the open shift or hour (w), retained
  <root>/machines/<machine>/oee/<w>/closed  the last closed window, retained
  <root>/machines/<machine>/oee/<w>/corrected  the last window corrected by an operator, retained
  <root>/machines/<machine>/downtime   one message per stop that is not a micro-stop
  <root>/alarms/<id>                   current state of an alarm, retained
  <root>/alarms/events                 every alarm transition
  <root>/alarms/flood                  flood begin / end, retained
  <root>/conditions/<id>               latest condition (vibration zone, time to limit), retained
  <root>/commands/alarms/reply         command replies of older versions, still buffered

Every payload is JSON with `seq`, the buffer's sequence number: a consumer that sees a number
again after a reconnect or restart knows it is a duplicate. Pure code: no I/O.
"""

from __future__ import annotations

__all__ = ["KINDS", "Message", "messages_for"]

import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

from edge_agent.records import Kind, KindTable, NotSent, StoredRecord, known_kind
from edge_agent.redaction import scrub_tree
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

Message = tuple[str, str, bool]  # topic, payload, retain


def messages_for(record: StoredRecord, root: str, config: MqttSinkConfig) -> Iterator[Message]:
    """The MQTT messages of one buffered record (none for a kind this layout does not send)."""
    kind = known_kind(record.kind)
    formatter = KINDS[kind] if kind is not None else None
    if formatter is None or isinstance(formatter, NotSent):
        return iter(())
    return formatter(record, root, config)


def _meta(record: StoredRecord) -> dict[str, Any]:
    return {"seq": record.seq, "ts": iso_utc(record.ts_ns)}


def _values(record: StoredRecord, root: str, config: MqttSinkConfig) -> Iterator[Message]:
    if config.raw_values == "per_poll":
        # The body is JSON already: splice seq and ts in front instead of decoding and re-encoding.
        text = record.body
        if "NaN" in text or "Infinity" in text:  # perhaps a row buffered before they were refused
            text = _json(_finite_values(json.loads(text)))
        head = f'{{"seq":{record.seq},"ts":"{iso_utc(record.ts_ns)}",'
        yield f"{root}/devices/{record.key}", head + text[1:], config.retain_values
        return
    body = _finite_values(record.decoded())
    meta = _meta(record)
    quality = body.get("quality", {})
    times = body.get("times", {})  # values stamped otherwise than the record
    for tag, value in body["values"].items():
        payload = {**meta, "value": value, "quality": quality.get(tag, "good")}
        if tag in times:
            payload["ts"] = times[tag]
        yield f"{root}/devices/{body['device']}/{tag}", _json(payload), config.retain_values


def _link(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    # The device's last error leaves the agent here: no secret in it (see redaction).
    payload = _json(scrub_tree({**_meta(record), **body}))
    yield f"{root}/devices/{body['device']}/link", payload, True


def _state(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    yield f"{root}/machines/{body['machine']}/state", _json({**_meta(record), **body}), True


def _oee(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    # The open window's running figure, and the last closed window, both retained. A closed
    # window corrected later (an operator's reason, rejects) goes apart: on /closed it would
    # replace a later window for anyone who joins.
    suffix = "/corrected" if "corrected_at" in body else "/closed" if body["final"] else ""
    topic = f"{root}/machines/{body['machine']}/oee/{body['window']}{suffix}"
    yield topic, _json({**_meta(record), **body}), True


def _downtime(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    yield f"{root}/machines/{body['machine']}/downtime", _json({**_meta(record), **body}), False


def _alarm(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    text = _json({**_meta(record), **body})
    yield f"{root}/alarms/{body['id']}", text, True  # current state, for late subscribers
    yield f"{root}/alarms/events", text, False  # every transition, in order


def _condition(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    body = record.decoded()
    yield f"{root}/conditions/{body['id']}", _json({**_meta(record), **body}), True


def _flood(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    yield f"{root}/alarms/flood", _json({**_meta(record), **record.decoded()}), True


def _command_reply(record: StoredRecord, root: str, _config: MqttSinkConfig) -> Iterator[Message]:
    # Buffered by an older version; replies are volatile now (publish_volatile).
    payload = _json({**_meta(record), **record.decoded()})
    yield f"{root}/commands/alarms/reply", payload, False


Formatter = Callable[[StoredRecord, str, MqttSinkConfig], Iterator[Message]]
KINDS: KindTable[Formatter] = {
    Kind.VALUES: _values,
    Kind.LINK: _link,
    Kind.STATE: _state,
    Kind.OEE: _oee,
    Kind.DOWNTIME: _downtime,
    Kind.ALARM: _alarm,
    Kind.CONDITION: _condition,
    Kind.ALARM_FLOOD: _flood,
    Kind.COMMAND_REPLY: _command_reply,
}
"""How this topic layout sends each kind of record."""


def _finite_values(body: dict[str, Any]) -> dict[str, Any]:
    """A values body whose NaN or infinite values are null with quality bad, as drivers send them."""
    bad = [t for t, v in body["values"].items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return body
    return {
        **body,
        "values": {**body["values"], **dict.fromkeys(bad)},
        "quality": {**body.get("quality", {}), **dict.fromkeys(bad, "bad")},
    }


def _json(payload: dict[str, Any]) -> str:
    """Strict JSON: NaN and infinity are not JSON, and many consumers reject a payload with them.

    Nothing the agent makes holds them; a record buffered by an older version might. Such a number
    is sent as null (the rest of the record is still worth having), with a warning.
    """
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        _log.warning(
            "MQTT payload seq %s holds NaN or infinity (buffered by an older version?); "
            "sent as null",
            payload.get("seq"),
        )
        return json.dumps(
            _nulled(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )


def _nulled(value: Any) -> Any:
    """`value` with every NaN or infinite number replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value
