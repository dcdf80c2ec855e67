"""What the history keeps of a record, as table rows, and its rows back as the records' fields.

Pure functions, no SQLite: which records are kept (closed OEE windows, stops, alarm transitions),
their times as integer ns (UTC) for the indexes, and their body as compact JSON.
"""

from __future__ import annotations

__all__ = [
    "STOP_COLUMNS",
    "STOP_SELECT",
    "Rows",
    "alarm_fields",
    "iso_ms",
    "kept",
    "period_fields",
    "stop_fields",
    "to_rows",
]

import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.records import Record

_log = logging.getLogger(__name__)
NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OeeRow = tuple[str, str, int, int, int, str]  # machine, window, start, end, ts, body
# machine, start, end, duration, state, reason, reason code, category, classified by, note, body
StopRow = tuple[
    str, int, int, float, str, str | None, str | None, str | None, str | None, str | None, str
]
PeriodRow = tuple[str, int, int, str, str | None]  # machine, start, end, state, reason
# Non-running states that are not stops: the timeline shows them, OEE counts them apart.
_PERIOD_STATES = ("planned", "unknown")

# Columns of the stops and alarms tables, in the order the queries select them: the fields the
# records (and the page) name, so rows become dicts without decoding the JSON body.
STOP_COLUMNS = (
    "id",
    "machine",
    "state",
    "reason",
    "reason_code",
    "category",
    "start_ns",
    "end_ns",
    "duration_s",
    "classified_by",
    "note",
    "simulated",
)
# What the query selects for each column: most are columns, the demo's label is in the body.
STOP_SELECT = tuple(
    "json_extract(body, '$.simulated') IS 1" if c == "simulated" else c for c in STOP_COLUMNS
)
ALARM_COLUMNS = (
    "alarm_id",
    "machine",
    "state",
    "event",
    "priority",
    "value",
    "message",
    "user",
    "declared_user",
    "reason",
    "ts_ns",
)


@dataclass(slots=True)
class Rows:
    oee: list[OeeRow] = field(default_factory=list)
    stops: list[StopRow] = field(default_factory=list)
    alarms: list[tuple[Any, ...]] = field(default_factory=list)
    periods: list[PeriodRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.oee) + len(self.stops) + len(self.alarms) + len(self.periods)


def kept(record: Record) -> bool:
    """Closed OEE windows, stops, planned and unknown periods (for the timeline) and alarm
    transitions; running figures and raw values are not."""
    if record.kind == "oee":
        return record.body["final"] is True
    if record.kind == "state":
        ended = record.body.get("ended")
        return ended is not None and ended["state"] in _PERIOD_STATES
    return record.kind in ("downtime", "alarm")


def to_rows(records: list[Record]) -> Rows:
    rows = Rows()
    for r in records:
        try:
            body = json.dumps(r.body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError as exc:  # NaN or infinity: a bug upstream, never a row
            _log.error("history: a %s record for %s cannot be kept: %s", r.kind, r.key, exc)
            continue
        b = r.body
        if r.kind == "state":
            ended = b["ended"]
            rows.periods.append(
                (
                    b["machine"],
                    _ns(ended["start"]),
                    _ns(ended["end"]),
                    ended["state"],
                    ended["reason"],
                )
            )
        elif r.kind == "oee":
            rows.oee.append(
                (b["machine"], b["window"], _ns(b["start"]), _ns(b["end"]), r.ts_ns, body)
            )
        elif r.kind == "downtime":
            reason = b["reason"]
            # Records from before reason codes were kept: a reason then came from the PLC.
            classified_by = b.get("classified_by", "plc" if reason is not None else None)
            rows.stops.append(
                (
                    b["machine"],
                    _ns(b["start"]),
                    _ns(b["end"]),
                    b["duration_s"],
                    b["state"],
                    None if reason is None else str(reason),
                    b.get("reason_code"),
                    b["category"],
                    classified_by,
                    b.get("note"),
                    body,
                )
            )
        else:
            rows.alarms.append(
                (
                    b["id"],
                    b["machine"],
                    b["state"],
                    b["event"],
                    b["priority"],
                    b["value"],
                    b["message"],
                    b.get("user"),  # only in the records of an operator's command
                    b.get("declared_user"),
                    b["reason"],
                    r.ts_ns,
                    body,
                )
            )
    return rows


def stop_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stops row (STOP_COLUMNS) as the downtime record's fields, plus its id and classified_by."""
    fields = dict(zip(STOP_COLUMNS, row, strict=True))
    fields["start"] = iso_ms(fields.pop("start_ns"))
    fields["end"] = iso_ms(fields.pop("end_ns"))
    fields["simulated"] = bool(fields["simulated"])
    return fields


def period_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """A periods row (state, reason, start_ns, end_ns) as the timeline's fields."""
    state, reason, start_ns, end_ns = row
    return {"state": state, "reason": reason, "start": iso_ms(start_ns), "end": iso_ms(end_ns)}


def alarm_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """An alarms row (ALARM_COLUMNS) as the alarm record's fields, with its time as `ts`."""
    fields = dict(zip(ALARM_COLUMNS, row, strict=True))
    fields["id"] = fields.pop("alarm_id")
    fields["ts"] = iso_ms(fields.pop("ts_ns"))
    return fields


def iso_ms(ts_ns: int) -> str:
    """The same text as `iso_utc`, about five times faster: a query answers tens of thousands."""
    ms = ts_ns // 1_000_000
    seconds, milli = divmod(ms, 1000)
    day, second = divmod(seconds, 86400)
    hour, rest = divmod(second, 3600)
    return f"{_date(day)}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}.{milli:03d}Z"


@functools.lru_cache(maxsize=1024)
def _date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def _ns(iso: str) -> int:
    """'2026-11-23T01:40:00.123Z' (see iso_utc) as integer ns, exactly."""
    moment = datetime.fromisoformat(iso)
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * NS + moment.microsecond * 1000
