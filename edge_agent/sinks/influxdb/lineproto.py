"""Records to InfluxDB line protocol, formatted directly (no Point objects: they cost 4x here).

Measurements and their tags are documented in README.md ("InfluxDB schema"). Every number is
written as a float field, because InfluxDB fixes a field's type per measurement and shard: an
integer `value` from one tag and a float from another would be rejected as a type conflict.
Timestamps are milliseconds.

Line protocol has no NaN or infinity (InfluxDB refuses the whole write): such a field is left out
of its line, and a point left without fields is not written. A raw value that is not finite is
written as bad (quality 0, no value), as the drivers report it.
"""

from __future__ import annotations

__all__ = ["KINDS", "QUALITY_CODES", "STATE_CODES", "lines_for"]

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge_agent.records import (
    MACHINE_STATE_CODES,
    Kind,
    KindTable,
    NotSent,
    StoredRecord,
    known_kind,
)

# OPC DA quality codes: familiar to SCADA people, and sortable (higher is better).
QUALITY_CODES = {"good": 192, "uncertain": 64, "bad": 0}
STATE_CODES = MACHINE_STATE_CODES

# Series heads of raw values ("values,agent=…,device=…,tag=… "), formatted once per tag.
_series: dict[tuple[str, str, str], str] = {}
_SERIES_MAX = 100_000
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT_ESCAPE = str.maketrans({",": r"\,", " ": r"\ "})


def tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


def text_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(value: float | int | bool) -> str:
    return repr(float(value))


def _finite(value: Any) -> bool:
    """A number line protocol can carry: not None, NaN or infinite."""
    return isinstance(value, int | float) and math.isfinite(value)


def _point(series: str, fields: list[str], ts_ms: int) -> list[str]:
    """One line, or none when no field is left."""
    return [f"{series} {','.join(fields)} {ts_ms}"] if fields else []


def lines_for(record: StoredRecord, agent: str) -> list[str]:
    """The points of one buffered record; kinds this sink does not write yield none."""
    kind = known_kind(record.kind)
    formatter = KINDS[kind] if kind is not None else None
    if formatter is None or isinstance(formatter, NotSent):
        return []
    return formatter(json.loads(record.body), tag(agent), record.ts_ns // 1_000_000)


def _values(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    device = body["device"]
    quality: dict[str, str] = body.get("quality", {})
    times: dict[str, str] = body.get("times", {})  # values stamped otherwise than the record
    series = _series
    lines = []
    record_ms = ts_ms
    for name, value in body["values"].items():
        if times:
            ts_ms = _iso_ms(times[name]) if name in times else record_ms
        key = (agent, device, name)
        head = series.get(key)
        if head is None:
            if len(series) >= _SERIES_MAX:
                series.clear()  # names from replayed files: bounded, rebuilt as needed
            head = series[key] = f"values,agent={agent},device={tag(device)},tag={tag(name)} "
        q = quality.get(name) if quality else None
        if q is None:  # the usual case, a good number, formatted at once
            cls = value.__class__
            if cls is int or (cls is float and math.isfinite(value)):
                lines.append(f"{head}value={float(value)!r} {ts_ms}")
                continue
        if isinstance(value, float) and not math.isfinite(value):
            value, q = None, "bad"
        fields = []
        if value is not None and q != "bad":
            fields.append(
                f"text={text_field(value)}" if isinstance(value, str) else f"value={number(value)}"
            )
        if q is not None:
            fields.append(f"quality={QUALITY_CODES[q]}i")
        if fields:
            lines.append(f"{head}{','.join(fields)} {ts_ms}")
    return lines


def _link(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    up = 1 if body["state"] == "up" else 0
    return [f"device_link,agent={agent},device={tag(body['device'])} up={up}i {ts_ms}"]


def _state(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    fields = [
        f"state_code={STATE_CODES[body['state']]}i",
        f"state={text_field(body['state'])}",
        f"reason={text_field(body.get('reason') or '')}",
    ]
    ended = body.get("ended")
    if ended and _finite(ended["duration_s"]):
        fields.append(f"previous_duration_s={number(ended['duration_s'])}")
    return [
        f"machine_state,agent={agent},machine={tag(body['machine'])} {','.join(fields)} {ts_ms}"
    ]


_OEE_NUMBERS = (
    "planned_busy_time_s",
    "run_time_s",
    "down_time_s",
    "idle_time_s",
    "unknown_time_s",
    "planned_stop_time_s",
    "availability",
    "performance",
    "quality",
    "oee",
    "mtbf_s",
    "mttr_s",
    "ideal_cycle_time_s",
)
_OEE_COUNTS = ("total_count", "good_count", "reject_count", "failures", "micro_stops")


def _oee(body: dict[str, Any], agent: str, _ts_ms: int) -> list[str]:
    """One point per window, stamped with the window's start: a running figure is overwritten
    by the next one and by the final one, so writing a window twice leaves one point."""
    start_ms = _iso_ms(body["start"])
    series = f"agent={agent},machine={tag(body['machine'])},window={body['window']}"
    if body.get("shift"):
        series += f",shift={tag(body['shift'])}"
    fields = [f"{k}={number(body[k])}" for k in _OEE_NUMBERS if _finite(body.get(k))]
    fields += [f"{k}={int(body[k])}i" for k in _OEE_COUNTS if _finite(body[k])]
    fields += [f"loss_{k}_s={number(v)}" for k, v in body["six_big_losses_s"].items() if _finite(v)]
    fields.append(f"final={1 if body['final'] else 0}i")
    lines = [f"oee,{series} {','.join(fields)} {start_ms}"]
    for reason, seconds in body["losses_by_reason_s"].items():
        fields = [f"seconds={number(seconds)}"] if _finite(seconds) else []
        lines += _point(f"oee_losses,{series},reason={tag(reason)}", fields, start_ms)
    return lines


def _downtime(body: dict[str, Any], agent: str, _ts_ms: int) -> list[str]:
    """One point per stop at its start. The reason is a field, not a tag: a stop classified by an
    operator later is written again into the same series and time, and replaces the first point."""
    if not _finite(body["duration_s"]):
        return []  # a stop without its length says nothing
    series = f"agent={agent},machine={tag(body['machine'])},state={body['state']}"
    fields = [f"duration_s={number(body['duration_s'])}"]
    fields.append(f"reason={text_field(body.get('reason') or 'unclassified')}")
    for name in ("reason_code", "category", "classified_by"):
        if body.get(name):
            fields.append(f"{name}={text_field(str(body[name]))}")
    return _point(f"downtime,{series}", fields, _iso_ms(body["start"]))


def _iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


ALARM_STATE_CODES = {
    "normal": 0,
    "unack_active": 1,
    "ack_active": 2,
    "unack_rtn": 3,
    "shelved": 4,
    "suppressed": 5,
    "out_of_service": 6,
}
_ZONES = {"A": 1, "B": 2, "C": 3, "D": 4}


def _alarm(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    series = f"agent={agent},id={tag(body['id'])},type={body['type']},priority={body['priority']}"
    if body.get("machine"):
        series += f",machine={tag(body['machine'])}"
    fields = [
        f"state_code={ALARM_STATE_CODES[body['state']]}i",
        f"state={text_field(body['state'])}",
        f"active={int(body['active'])}i",
        f"acked={int(body['acked'])}i",
        f"severity={body['severity']}i",
        f"message={text_field(body['message'])}",
    ]
    fields += [f"{k}={number(body[k])}" for k in ("value", "statistic") if _finite(body.get(k))]
    # Who did it (verified), what they said about themselves, and why: for the audit trail.
    fields += [
        f"{k}={text_field(str(body[k]))}"
        for k in ("event", "user", "declared_user", "reason")
        if body.get(k)
    ]
    return [f"alarm,{series} {','.join(fields)} {ts_ms}"]


def _condition(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    series = f"agent={agent},id={tag(body['id'])},type={body['type']}"
    fields = [
        f"{k}={number(body[k])}"
        for k in ("value", "time_to_limit_s", "slope_per_s", "r2", "fitted")
        if _finite(body.get(k))
    ]
    if body.get("zone"):
        fields.append(f"zone_code={_ZONES[body['zone']]}i")
    return _point(f"condition,{series}", fields, ts_ms)


def _flood(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    active = 1 if body["phase"] == "begin" else 0
    return [
        f"alarm_flood,agent={agent} active={active}i,activations={body['activations']}i {ts_ms}"
    ]


Formatter = Callable[[dict[str, Any], str, int], list[str]]
KINDS: KindTable[Formatter] = {
    Kind.VALUES: _values,
    Kind.LINK: _link,
    Kind.STATE: _state,
    Kind.OEE: _oee,
    Kind.DOWNTIME: _downtime,
    Kind.ALARM: _alarm,
    Kind.CONDITION: _condition,
    Kind.ALARM_FLOOD: _flood,
    Kind.COMMAND_REPLY: NotSent(
        "a command's reply is for the client that sent the command, not a point in time series"
    ),
}
"""How line protocol writes each kind of record."""
