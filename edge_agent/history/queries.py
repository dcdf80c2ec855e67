"""The history's reads, on an open connection (the store runs them on its own thread).

Each answers with plain dicts named as the records are, times as ISO 8601 UTC strings, oldest
first. Also used by the benchmark on a copy of the file without its indexes.
"""

from __future__ import annotations

__all__ = ["alarms", "oee", "stop", "stops", "timeline"]

import json
import sqlite3
from typing import Any

from edge_agent.history.rows import (
    ALARM_COLUMNS,
    STOP_SELECT,
    alarm_fields,
    iso_ms,
    period_fields,
    stop_fields,
)


def oee(
    db: sqlite3.Connection, machine: str, window: str, from_ns: int, to_ns: int
) -> list[dict[str, Any]]:
    """Closed windows of `machine` of this kind (shift or hour) whose start is in [from, to):
    the record's body as published last (a corrected window replaced the first)."""
    rows = db.execute(
        "SELECT body FROM oee_windows WHERE machine = ? AND window_kind = ? "
        "AND start_ns >= ? AND start_ns < ? ORDER BY start_ns",
        (machine, window, from_ns, to_ns),
    ).fetchall()
    return [json.loads(body) for (body,) in rows]


def stops(
    db: sqlite3.Connection, machine: str | None, from_ns: int, to_ns: int
) -> list[dict[str, Any]]:
    """Stops (of one machine, or all) that overlap [from, to): one that runs across midnight
    belongs to both days."""
    columns = ", ".join(STOP_SELECT)
    where = "end_ns > ? AND start_ns < ?"
    args: tuple[Any, ...] = (from_ns, to_ns)
    if machine is not None:
        where, args = f"machine = ? AND {where}", (machine, *args)
    rows = db.execute(
        f"SELECT {columns} FROM stops WHERE {where} ORDER BY start_ns, id", args
    ).fetchall()
    return [stop_fields(row) for row in rows]


def alarms(db: sqlite3.Connection, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
    """Alarm transitions (operators' commands among them, with who gave them) in [from, to)."""
    rows = db.execute(
        f"SELECT {', '.join(ALARM_COLUMNS)}, json_extract(body, '$.simulated') IS 1 FROM alarms "
        "WHERE ts_ns >= ? AND ts_ns < ? "
        "ORDER BY ts_ns, seq",
        (from_ns, to_ns),
    ).fetchall()
    return [{**alarm_fields(row[:-1]), "simulated": bool(row[-1])} for row in rows]


def timeline(
    db: sqlite3.Connection, machine: str, from_ns: int, to_ns: int
) -> list[dict[str, Any]]:
    """The machine's time that was not running in [from, to): stops (idle, down, with their
    reasons) and planned and unknown periods, oldest first; the gaps between were running."""
    periods = [
        (start_ns, period_fields((state, reason, start_ns, end_ns)))
        for state, reason, start_ns, end_ns in db.execute(
            "SELECT state, reason, start_ns, end_ns FROM periods WHERE machine = ? "
            "AND end_ns > ? AND start_ns < ?",
            (machine, from_ns, to_ns),
        )
    ]
    periods += [
        (
            start_ns,
            {
                "state": state,
                "reason": reason,
                "classified_by": by,
                "id": stop_id,
                "start": iso_ms(start_ns),
                "end": iso_ms(end_ns),
            },
        )
        for stop_id, state, reason, by, start_ns, end_ns in db.execute(
            "SELECT id, state, reason, classified_by, start_ns, end_ns FROM stops "
            "WHERE machine = ? AND end_ns > ? AND start_ns < ?",
            (machine, from_ns, to_ns),
        )
    ]
    return [fields for _, fields in sorted(periods, key=lambda p: p[0])]


def stop(db: sqlite3.Connection, stop_id: int) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {', '.join(STOP_SELECT)} FROM stops WHERE id = ?", (stop_id,)
    ).fetchone()
    return None if row is None else stop_fields(row)
