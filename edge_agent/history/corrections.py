"""What an operator corrects after the fact: the reason for a stop, parts found bad later.

Pure functions on window bodies, and the SQL that applies them in one transaction on the
history's thread (see HistoryStore.classify_stop and add_rejects). A stop's time was lost
whatever its reason: a reason moves that time between the keys of `losses_by_reason_s` and
changes neither availability nor OEE. Rejects move parts from good to reject, so quality and
OEE fall.
"""

from __future__ import annotations

__all__ = [
    "Choice",
    "Correction",
    "CorrectionError",
    "add_rejects",
    "classify",
    "move_loss",
    "overlap_s",
    "with_rejects",
]

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_agent.compute.oee import UNCLASSIFIED
from edge_agent.history.rows import STOP_COLUMNS, STOP_SELECT, stop_fields
from edge_agent.timefmt import iso_utc

NS = 1_000_000_000
Busy = Callable[[str, str, int], list[tuple[int, int]]]  # machine, window kind, start -> busy


class CorrectionError(ValueError):
    """Why a correction is refused, with the HTTP status that says so."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # for the page to say it in the reader's language


@dataclass(frozen=True, slots=True)
class Choice:
    """The reason an operator gave: a configured one (code, text, category) and/or a note."""

    reason: str  # the text the losses are put down to: the reason's text, else the note
    code: str | None
    category: str | None
    note: str | None


@dataclass(slots=True)
class Correction:
    stop: dict[str, Any] | None  # the stop as it reads now (classify only)
    downtime: dict[str, Any] | None  # the stop's record body, to publish again
    windows: list[tuple[int, dict[str, Any]]]  # (time stamp first published, corrected body)
    old: str = ""  # the loss key the stop's time left
    new: str = ""  # and the one it went to


def overlap_s(busy: list[tuple[int, int]], start_ns: int, end_ns: int) -> float:
    """Seconds of [start, end) inside the busy intervals."""
    total = sum(max(0, min(b, end_ns) - max(a, start_ns)) for a, b in busy)
    return total / NS


def move_loss(body: dict[str, Any], old: str, new: str, seconds: float) -> dict[str, Any]:
    """The window body with `seconds` of loss moved from reason `old` to `new`.

    The old key stays, at 0 if nothing is left: a store that keeps one point per reason (InfluxDB)
    is overwritten, not left holding the figure from before.
    """
    losses = dict(body["losses_by_reason_s"])
    losses[old] = round(max(0.0, losses.get(old, 0.0) - seconds), 3)
    losses[new] = round(losses.get(new, 0.0) + seconds, 3)
    return {**body, "losses_by_reason_s": dict(sorted(losses.items()))}


def with_rejects(body: dict[str, Any], count: int) -> dict[str, Any]:
    """The window body with `count` of its good parts found bad: good, reject, Q and OEE anew."""
    good = body["good_count"] - count
    if good < 0:
        raise CorrectionError(
            400,
            f"the window from {body['start']} counted only {body['good_count']} good parts",
            code="rejects_exceed_good",
            good=body["good_count"],
        )
    total, busy = body["total_count"], body["planned_busy_time_s"]
    ideal = body["ideal_cycle_time_s"]
    # Availability and performance stay: the parts were made, in that time, at that speed.
    quality = good / total if total > 0 else None
    oee = ideal * good / busy if busy > 0 else None
    losses = dict(body["six_big_losses_s"])
    losses["production_rejects"] = round(losses["production_rejects"] + ideal * count, 3)
    return {
        **body,
        "good_count": good,
        "reject_count": body["reject_count"] + count,
        "manual_rejects": body.get("manual_rejects", 0) + count,
        "quality": None if quality is None else round(quality, 6),
        "oee": None if oee is None else round(oee, 6),
        "six_big_losses_s": losses,
    }


def _stamp(body: dict[str, Any], user: str, at_ns: int) -> dict[str, Any]:
    return {**body, "corrected_by": user, "corrected_at": iso_utc(at_ns)}


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def classify(
    db: sqlite3.Connection, stop_id: int, choice: Choice, user: str, at_ns: int, busy: Busy
) -> Correction:
    """Give stop `stop_id` the operator's reason, and correct the closed windows it touches."""
    row = db.execute(
        f"SELECT {', '.join(STOP_SELECT)}, body FROM stops WHERE id = ?", (stop_id,)
    ).fetchone()
    if row is None:
        raise CorrectionError(404, f"no stop with id {stop_id} in the history")
    fields = dict(zip(STOP_COLUMNS, row[:-1], strict=True))
    if fields["classified_by"] == "plc":
        raise CorrectionError(
            409, f"the PLC gave this stop its reason ({fields['reason']}); it is kept"
        )
    old = fields["reason"] if fields["classified_by"] is not None else UNCLASSIFIED
    machine, start_ns, end_ns = fields["machine"], fields["start_ns"], fields["end_ns"]
    code = choice.code if choice.code is not None else fields["reason_code"]
    category = choice.category
    downtime = {
        **json.loads(row[-1]),
        "reason": choice.reason,
        "reason_code": code,
        "category": category,
        "classified_by": user,
        "note": choice.note,
        "classified_at": iso_utc(at_ns),
    }
    db.execute(
        "UPDATE stops SET reason = ?, reason_code = ?, category = ?, classified_by = ?, note = ?, "
        "body = ? WHERE id = ?",
        (choice.reason, code, category, user, choice.note, _dumps(downtime), stop_id),
    )
    windows = []
    overlapping = db.execute(
        "SELECT window_kind, start_ns, ts_ns, body FROM oee_windows WHERE machine = ? "
        "AND start_ns < ? AND end_ns > ?",
        (machine, end_ns, start_ns),
    ).fetchall()
    for kind, window_start, ts_ns, text in overlapping:
        seconds = overlap_s(busy(machine, kind, window_start), start_ns, end_ns)
        if seconds <= 0:
            continue
        body = _stamp(move_loss(json.loads(text), old, choice.reason, seconds), user, at_ns)
        _update_window(db, machine, kind, window_start, body)
        windows.append((ts_ns, body))
    stop = stop_fields((*row[:-1],))
    stop.update(reason=choice.reason, reason_code=code, category=category)
    stop.update(classified_by=user, note=choice.note)
    return Correction(stop, downtime, windows, old, choice.reason)


def add_rejects(
    db: sqlite3.Connection,
    machine: str,
    t_ns: int,
    count: int,
    reason: str,
    user: str,
    at_ns: int,
) -> Correction:
    """Record `count` rejects of parts made before t_ns, and correct the closed windows holding
    t_ns (open windows are the compute core's: see OeeTracker.add_rejects)."""
    overlapping = db.execute(
        "SELECT window_kind, start_ns, ts_ns, body FROM oee_windows WHERE machine = ? "
        "AND start_ns < ? AND end_ns >= ?",
        (machine, t_ns, t_ns),
    ).fetchall()
    windows = []
    for kind, window_start, ts_ns, text in overlapping:
        body = _stamp(with_rejects(json.loads(text), count), user, at_ns)
        _update_window(db, machine, kind, window_start, body)
        windows.append((ts_ns, body))
    db.execute(
        "INSERT INTO rejects (machine, ts_ns, count, reason, user, at_ns) VALUES (?, ?, ?, ?, ?, ?)",
        (machine, t_ns, count, reason, user, at_ns),
    )
    return Correction(None, None, windows)


def _update_window(
    db: sqlite3.Connection, machine: str, kind: str, start_ns: int, body: dict[str, Any]
) -> None:
    db.execute(
        "UPDATE oee_windows SET body = ? WHERE machine = ? AND window_kind = ? AND start_ns = ?",
        (_dumps(body), machine, kind, start_ns),
    )
