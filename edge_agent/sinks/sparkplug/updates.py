"""Buffered records to metric updates: which metric, what value, of when, how good.

`link` records are not updates: they make a device's birth and death (see node.py).
"""

from __future__ import annotations

__all__ = ["KINDS", "Update", "updates_for"]

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.records import MACHINE_STATE_CODES, Kind, KindTable, NotSent, known_kind
from edge_agent.samples import Value
from edge_agent.sinks.sparkplug.layout import (
    ALARM_METRICS,
    CONDITION_METRICS,
    FLOOD_METRICS,
    MACHINE_METRICS,
    OEE_METRICS,
    STOP_METRICS,
)
from edge_agent.sinks.sparkplug.schema import DataType


@dataclass(frozen=True, slots=True)
class Update:
    """One value of one metric. `device` None is the edge node itself.

    `datatype` None: a device tag, typed by the layout or by its first value. `past`: the value
    describes an earlier time than the metric's current one by nature (a corrected window).
    """

    device: str | None
    name: str
    value: Value
    ts_ms: int
    datatype: DataType | None = None
    quality: str = "good"
    past: bool = False


def updates_for(
    kind: str, body: dict[str, Any], ts_ns: int, include: frozenset[str]
) -> list[Update]:
    """The metric updates of one record; none for kinds that are not metrics, or left out by
    `include`."""
    known = known_kind(kind)
    if known is None or _INCLUDED_BY.get(known) not in include:
        return []
    mapper = KINDS[known]
    return [] if isinstance(mapper, NotSent) else mapper(body, ts_ns // 1_000_000)


def _values(body: dict[str, Any], ts_ms: int) -> list[Update]:
    device = body["device"]
    quality: dict[str, str] = body.get("quality") or {}
    times: dict[str, str] = body.get("times") or {}  # values stamped otherwise than the record
    out = []
    for tag, value in body["values"].items():
        q = quality.get(tag, "good")
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            value, q = None, "bad"  # as the drivers report a value they could not read
        elif q == "bad":
            value = None  # a bad value is not a value (is_null), whatever was read
        at = _ms(times[tag]) if tag in times else ts_ms
        out.append(Update(device, tag, value, at, None, q))
    return out


def _node(
    names: dict[str, DataType], root: str, values: dict[str, Any], ts_ms: int
) -> list[Update]:
    return [
        Update(None, f"{root}/{name}", _finite(values.get(name)), ts_ms, datatype)
        for name, datatype in names.items()
    ]


def _state(body: dict[str, Any], ts_ms: int) -> list[Update]:
    values = {**body, "state_code": MACHINE_STATE_CODES.get(body["state"])}
    return _node(MACHINE_METRICS, f"machines/{body['machine']}", values, ts_ms)


def _downtime(body: dict[str, Any], ts_ms: int) -> list[Update]:
    stop = {
        "last_stop/state": body["state"],
        "last_stop/reason": body.get("reason"),
        "last_stop/category": body.get("category"),
        "last_stop/start": _ms(body["start"]),
        "last_stop/duration_s": body.get("duration_s"),
    }
    return _node(STOP_METRICS, f"machines/{body['machine']}", stop, ts_ms)


def _oee(body: dict[str, Any], ts_ms: int) -> list[Update]:
    values = {**body, "start": _ms(body["start"])}
    root = f"machines/{body['machine']}/oee/{body['window']}"
    updates = _node(OEE_METRICS, root, values, ts_ms)
    if "corrected_at" in body:
        # A closed window corrected later (an operator's reason): history, not the open window.
        return [Update(u.device, u.name, u.value, u.ts_ms, u.datatype, past=True) for u in updates]
    return updates


def _alarm(body: dict[str, Any], ts_ms: int) -> list[Update]:
    return _node(ALARM_METRICS, f"alarms/{body['id']}", body, ts_ms)


def _condition(body: dict[str, Any], ts_ms: int) -> list[Update]:
    names = CONDITION_METRICS.get(body["type"], {})
    present = {k: v for k, v in names.items() if k in body}  # a trend without a fit has no time
    return _node(present, f"alarms/{body['id']}", body, ts_ms)


def _flood(body: dict[str, Any], ts_ms: int) -> list[Update]:
    values = {"active": body["phase"] == "begin", "activations": body["activations"]}
    names = {k.removeprefix("alarm_flood/"): v for k, v in FLOOD_METRICS.items()}
    return _node(names, "alarm_flood", values, ts_ms)


def _finite(value: Any) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value  # type: ignore[no-any-return]


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


Mapper = Callable[[dict[str, Any], int], list[Update]]
KINDS: KindTable[Mapper] = {
    Kind.VALUES: _values,
    Kind.LINK: NotSent("not a metric: a device's link makes its DBIRTH and DDEATH (node.py)"),
    Kind.STATE: _state,
    Kind.DOWNTIME: _downtime,
    Kind.OEE: _oee,
    Kind.ALARM: _alarm,
    Kind.CONDITION: _condition,
    Kind.ALARM_FLOOD: _flood,
    Kind.COMMAND_REPLY: NotSent("a reply to a JSON-layout MQTT command, not a metric"),
}
"""How each kind of record becomes metric updates."""
# Which `include:` entry of the configuration each kind of metric belongs to.
_INCLUDED_BY = {
    Kind.VALUES: "values",
    Kind.STATE: "machines",
    Kind.DOWNTIME: "machines",
    Kind.OEE: "oee",
    Kind.ALARM: "alarms",
    Kind.CONDITION: "alarms",
    Kind.ALARM_FLOOD: "alarms",
}
