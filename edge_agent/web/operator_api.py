"""What operators enter on the page: the reason for a stop, and rejects found after counting.

    POST /api/history/stops/<id>/reason  {"code": "3", "note": "…"}     code and/or note
    POST /api/history/rejects            {"machine": M, "count": 3, "reason": "…", "time": ISO?}

Both need an operator (or engineer). A reason corrects the losses by reason of every window the
stop touches; rejects correct quality and OEE of the windows that hold `time` (default now).
Closed windows are corrected in the history and published again with their first time stamp
(InfluxDB overwrites the point; MQTT gets them on `…/oee/<window>/corrected`); open windows are
corrected in the compute core, so the windows still to close carry the correction.
"""

from __future__ import annotations

__all__ = ["OperatorApi"]

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from edge_agent.access.roles import Identity, Role
from edge_agent.compute.engine import ComputeEngine
from edge_agent.compute.oee import UNCLASSIFIED, OeeTracker, window_busy
from edge_agent.config_models import AgentFile
from edge_agent.history.corrections import Busy, Choice, Correction, CorrectionError
from edge_agent.http import Action
from edge_agent.records import Kind, Record

_log = logging.getLogger(__name__)
NS = 1_000_000_000
_TEXT_MAX = 120  # a note or a reject reason: a line, not a report
_REJECTS_MAX = 100_000  # more parts than any shift makes: a typing error
_FUTURE_S = 60.0  # a time this far ahead of the agent's clock is a wrong clock, not a plan

Reply = tuple[int, dict[str, Any]]


class Corrections(Protocol):
    async def stop(self, stop_id: int) -> dict[str, Any] | None: ...

    async def classify_stop(
        self, stop_id: int, choice: Choice, user: str, at_ns: int, busy: Busy
    ) -> Correction: ...

    async def add_rejects(
        self, machine: str, t_ns: int, count: int, reason: str, user: str, at_ns: int
    ) -> Correction: ...


class OperatorApi:
    def __init__(
        self,
        config: AgentFile,
        history: Corrections,
        engine: Callable[[], ComputeEngine],
        publish: Callable[[list[Record]], None],
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.history = history
        self.engine = engine  # the agent may replace its engine (a saved state it cannot use)
        self.publish = publish
        self.now_ns = now_ns

    def actions(self) -> dict[str, Action]:
        return {
            "/api/history/stops/*/reason": Action(Role.OPERATOR, self.reason),
            "/api/history/rejects": Action(Role.OPERATOR, self.rejects),
        }

    # ------------------------------------------------------------------ a stop's reason

    async def reason(self, args: list[str], body: dict[str, Any], who: Identity) -> Reply:
        try:
            stop_id = _stop_id(args[0])
            _only(body, {"code", "note"})
            stop = await self.history.stop(stop_id)
            if stop is None:
                raise CorrectionError(404, f"no stop with id {stop_id} in the history")
            choice = self._choice(stop["machine"], body)
            now = self.now_ns()
            correction = await self.history.classify_stop(
                stop_id, choice, who.label, now, self._busy
            )
        except CorrectionError as exc:
            return exc.status, {"ok": False, "error": str(exc), **exc.detail}
        machine = stop["machine"]
        start, end = _ns(stop["start"]), _ns(stop["end"])
        tracker = self.engine().oee[machine]
        opened = tracker.reclassify(start, end, correction.old, correction.new)
        records = self._closed(machine, correction)
        assert correction.downtime is not None
        records.append(Record(Kind.DOWNTIME, machine, end, correction.downtime))
        records += tracker.running_records(opened) if tracker.clock_ns is not None else []
        self.publish(records)
        _log.info(
            "stop %d of %s (%s to %s) put down to %r by %s; %d windows corrected",
            stop_id,
            machine,
            stop["start"],
            stop["end"],
            choice.reason,
            who.label,
            len(correction.windows) + len(opened),
        )
        windows = [body for _, body in correction.windows]
        windows += [r.body for r in records if r.kind == "oee" and not r.body["final"]]
        return 200, {"ok": True, "stop": correction.stop, "windows": windows}

    def _choice(self, machine: str, body: dict[str, Any]) -> Choice:
        reasons = self.config.machines[machine].reasons
        code, note = body.get("code"), _text(body, "note", required=False)
        if code is None and note is None:
            raise CorrectionError(400, "give code (one of the machine's reasons) or note, or both")
        if code is None:
            return Choice(note or "", None, None, note)
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str) or code not in reasons:
            known = ", ".join(f"{k} ({r.text})" for k, r in reasons.items()) or "none configured"
            raise CorrectionError(400, f"code {code!r} is not a reason of {machine}: {known}")
        reason = reasons[code]
        return Choice(reason.text, code, reason.category, note)

    def _busy(self, machine: str, kind: str, start_ns: int) -> list[tuple[int, int]]:
        return window_busy(self.engine().calendars[machine], kind, start_ns)

    # ------------------------------------------------------------------ rejects

    async def rejects(self, _args: list[str], body: dict[str, Any], who: Identity) -> Reply:
        try:
            _only(body, {"machine", "count", "reason", "time"})
            machine = body.get("machine")
            if not isinstance(machine, str) or machine not in self.config.machines:
                known = ", ".join(self.config.machines) or "none configured"
                raise CorrectionError(400, f"machine is one of: {known}")
            count = body.get("count")
            if (
                not isinstance(count, int)
                or isinstance(count, bool)
                or not 0 < count <= _REJECTS_MAX
            ):
                raise CorrectionError(400, f"count is a whole number from 1 to {_REJECTS_MAX}")
            reason = _text(body, "reason", required=True)
            assert reason is not None
            now = self.now_ns()
            t_ns = self._when(body.get("time"), now)
            tracker = self.engine().oee[machine]
            _check_open_windows(tracker, t_ns, count)
            correction = await self.history.add_rejects(
                machine, t_ns, count, reason, who.label, now
            )
        except CorrectionError as exc:
            return exc.status, {"ok": False, "error": str(exc), **exc.detail}
        opened = tracker.add_rejects(t_ns, count) if tracker.clock_ns is not None else []
        records = self._closed(machine, correction) + (
            tracker.running_records(opened) if opened else []
        )
        self.publish(records)
        _log.info(
            "%d rejects (%s) of %s entered by %s; %d windows corrected",
            count,
            reason,
            machine,
            who.label,
            len(records),
        )
        return 200, {"ok": True, "windows": [r.body for r in records]}

    def _when(self, text: Any, now: int) -> int:
        if text is None:
            return now
        if not isinstance(text, str) or len(text) > 40:
            raise CorrectionError(400, "time is an ISO 8601 time with its offset")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise CorrectionError(400, "time is an ISO 8601 time with its offset") from None
        if moment.tzinfo is None:
            raise CorrectionError(400, "time needs its UTC offset, e.g. 2026-03-02T10:00:00+08:00")
        t_ns = int(moment.timestamp()) * NS + moment.microsecond * 1000
        if t_ns > now + _FUTURE_S * NS:
            raise CorrectionError(400, "time is in the future")
        if t_ns < now - self.config.agent.history_days * 86400 * NS:
            raise CorrectionError(400, "time is older than the history keeps")
        return t_ns

    # ------------------------------------------------------------------ publishing

    def _closed(self, machine: str, correction: Correction) -> list[Record]:
        """Corrected closed windows with the time stamps they were first published with."""
        return [Record(Kind.OEE, machine, ts_ns, body) for ts_ns, body in correction.windows]


def _stop_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise CorrectionError(404, f"no stop with id {text[:40]!r}")
    return int(text)


def _only(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise CorrectionError(
            400, f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _text(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CorrectionError(400, f"{name} is a text of 1 to {_TEXT_MAX} characters")
    value = " ".join(value.split())  # one line: it becomes a key in reports and InfluxDB
    if len(value) > _TEXT_MAX:
        raise CorrectionError(400, f"{name} is a text of 1 to {_TEXT_MAX} characters")
    if value == UNCLASSIFIED:
        raise CorrectionError(400, f"{name} cannot be {UNCLASSIFIED!r}")
    return value


def _ns(iso: str) -> int:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(moment.replace(microsecond=0).timestamp()) * NS + moment.microsecond * 1000


def _check_open_windows(tracker: OeeTracker, t_ns: int, count: int) -> None:
    """Refuse rejects beyond the good parts of an open window holding t_ns, as a closed window
    does (else they would be saved and silently count as fewer)."""
    if tracker.clock_ns is None:
        return
    for record in tracker.running_records(tracker.windows_holding(t_ns)):
        good = record.body["good_count"]
        if good < count:
            raise CorrectionError(
                400,
                f"the window from {record.body['start']} counted only {good} good parts",
                code="rejects_exceed_good",
                good=good,
            )
