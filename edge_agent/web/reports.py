"""`GET /api/report/shift.csv|.xlsx`: a shift report to open in Excel, from the local history.

    ?date=YYYY-MM-DD&shift=NAME   the instance of that shift that starts on that local date (a
                                  night shift runs into the next day); without shift= every shift
                                  starting that day; without date= the day the shift
                                  running now started (in the calendar's zone)
    ?from=&to=                    windows starting in [from, to): ISO 8601 with offset, ≤ 31 days
    &machine=M                    one machine (default: all; with shift= those whose calendar has it)
    &window=shift|hour            default shift with a calendar, hour without; hour gives the
                                  hourly windows that overlap the shift
    &lang=en|zh-CN                default agent.language

One row per machine and window, closed windows and the running one (status "running"). The
figures are the history API's, converted: times, MTBF and MTTR in minutes; ratios (availability,
performance, quality, OEE) as percent with 1 decimal in the CSV, and as the ratios themselves
(0..1, shown with a percent format) in the XLSX; the CSV rounds minutes to 1 decimal, the XLSX
keeps them unrounded and shows 1 decimal. A figure that is undefined (null) is an empty cell, never 0.
"""

from __future__ import annotations

__all__ = ["ReportApi"]

import asyncio
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from edge_agent.compute.calendar import NS, Calendar, ShiftInstance, hour_start_ns
from edge_agent.compute.oee import UNCLASSIFIED
from edge_agent.config_models import AgentFile
from edge_agent.http import Download
from edge_agent.web.history_api import QueryError, moment, to_ns

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell

_MAX_RANGE = timedelta(days=31)
DAY_NS = 86400 * NS
_UTC = ZoneInfo("UTC")
_CSV = "text/csv; charset=utf-8"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Spreadsheets run a text cell starting with these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")

Value = str | int | float | None
Handler = Callable[[Mapping[str, str]], Coroutine[Any, Any, Download]]  # as http.Read

# The figure columns after the text ones: record field and how it is shown.
_FIGURES = (
    ("planned_busy_time_s", "minutes"),
    ("run_time_s", "minutes"),
    ("down_time_s", "minutes"),
    ("idle_time_s", "minutes"),
    ("unknown_time_s", "minutes"),
    ("availability", "ratio"),
    ("performance", "ratio"),
    ("quality", "ratio"),
    ("oee", "ratio"),
    ("total_count", "count"),
    ("good_count", "count"),
    ("reject_count", "count"),
    ("failures", "count"),
    ("mtbf_s", "minutes"),
    ("mttr_s", "minutes"),
    ("micro_stops", "count"),
)
_TEXT_COLUMNS = ("machine", "machine_id", "window", "shift", "start", "end", "status")
_XLSX_FORMATS = {"minutes": "0.0", "ratio": "0.0%", "count": "0"}

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "machine": "Machine",
        "machine_id": "Machine ID",
        "window": "Window",
        "shift": "Shift",
        "start": "Start",
        "end": "End",
        "status": "Status",
        "planned_busy_time_s": "Planned busy time (min)",
        "run_time_s": "Run time (min)",
        "down_time_s": "Down time (min)",
        "idle_time_s": "Idle time (min)",
        "unknown_time_s": "No-data time (min)",
        "availability": "Availability (%)",
        "performance": "Performance (%)",
        "quality": "Quality (%)",
        "oee": "OEE (%)",
        "total_count": "Total count",
        "good_count": "Good count",
        "reject_count": "Reject count",
        "failures": "Failures",
        "mtbf_s": "MTBF (min)",
        "mttr_s": "MTTR (min)",
        "micro_stops": "Micro-stops",
        "loss": "Loss: {reason} (min)",
        "unclassified": "Unclassified",
        "kind_shift": "shift",
        "kind_hour": "hour",
        "running": "running",
        "final": "final",
        "corrected": "corrected",
        "simulated": "simulated",
        "and": ", ",
    },
    "zh-CN": {
        "machine": "设备",
        "machine_id": "设备编号",
        "window": "统计周期",
        "shift": "班次",
        "start": "开始",
        "end": "结束",
        "status": "状态",
        "planned_busy_time_s": "计划生产时间（分钟）",
        "run_time_s": "运行时间（分钟）",
        "down_time_s": "停机时间（分钟）",
        "idle_time_s": "待机时间（分钟）",
        "unknown_time_s": "无数据时间（分钟）",
        "availability": "时间开动率（%）",
        "performance": "性能开动率（%）",
        "quality": "良品率（%）",
        "oee": "OEE（%）",
        "total_count": "总产量",
        "good_count": "良品数",
        "reject_count": "不良品数",
        "failures": "故障次数",
        "mtbf_s": "平均故障间隔（分钟）",
        "mttr_s": "平均修复时间（分钟）",
        "micro_stops": "短停次数",
        "loss": "停机原因：{reason}（分钟）",
        "unclassified": "待分类",
        "kind_shift": "班次",
        "kind_hour": "小时",
        "running": "运行中",
        "final": "已结束",
        "corrected": "已修正",
        "simulated": "模拟数据",
        "and": "，",
    },
}


class OeeHistory(Protocol):
    async def oee(
        self, machine: str, window: str, from_ns: int, to_ns: int
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class _Part:
    """One machine's share of a report: its windows of `kind` that start in one of `spans`."""

    machine: str
    kind: str
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class _Report:
    headers: list[str]
    kinds: list[str]  # per column: text, minutes, ratio or count
    rows: list[list[Value]]  # minutes already in minutes, ratios as ratios
    name: str  # ASCII file name without extension
    title: str  # sheet name


class ReportApi:
    def __init__(
        self,
        config: AgentFile,
        history: OeeHistory,
        open_windows: Callable[[], Mapping[tuple[str, str], dict[str, Any]]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.history = history
        self.open_windows = open_windows  # (machine, window) -> the latest running OEE record
        self.now = now
        self._calendars = {name: Calendar(c) for name, c in config.calendars.items()}

    def routes(self) -> dict[str, Handler]:
        return {"/api/report/shift.csv": self.csv, "/api/report/shift.xlsx": self.xlsx}

    async def csv(self, params: Mapping[str, str]) -> Download:
        report = await self._report(params)
        return Download(await asyncio.to_thread(_csv_bytes, report), _CSV, f"{report.name}.csv")

    async def xlsx(self, params: Mapping[str, str]) -> Download:
        report = await self._report(params)
        # A month of hourly windows of every machine takes openpyxl a while: not on the loop.
        body = await asyncio.to_thread(_xlsx_bytes, report)
        return Download(body, _XLSX, f"{report.name}.xlsx")

    # ------------------------------------------------------------------ the table

    async def _report(self, params: Mapping[str, str]) -> _Report:
        lang = params.get("lang") or self.config.agent.language
        if lang not in _WORDS:
            raise QueryError(f"lang is one of {', '.join(_WORDS)}, not {lang!r}")
        words = _WORDS[lang]
        parts, name, title = self._plan(params)
        bodies = [body for part in parts for body in await self._windows(part)]
        reasons = _reasons_by_loss(bodies)
        headers = [words[c] for c in (*_TEXT_COLUMNS, *(key for key, _ in _FIGURES))]
        headers += [words["loss"].format(reason=_reason(r, words)) for r in reasons]
        kinds = ["text"] * len(_TEXT_COLUMNS) + [kind for _, kind in _FIGURES]
        kinds += ["minutes"] * len(reasons)
        rows = [self._row(body, reasons, words) for body in bodies]
        return _Report(headers, kinds, rows, name, title)

    async def _windows(self, part: _Part) -> list[dict[str, Any]]:
        by_start: dict[str, dict[str, Any]] = {}
        for start, end in part.spans:
            for body in await self.history.oee(part.machine, part.kind, start, end):
                by_start[body["start"]] = body  # an hour overlapping two shifts is shown once
        running = self.open_windows().get((part.machine, part.kind))
        if running is not None and running["start"] not in by_start:
            begins = _ns(running["start"])
            if any(start <= begins < end for start, end in part.spans):
                by_start[running["start"]] = running
        return [by_start[start] for start in sorted(by_start)]

    def _row(self, body: dict[str, Any], reasons: list[str], words: dict[str, str]) -> list[Value]:
        machine = body["machine"]
        zone = self._zone(machine)
        # .get: the history may hold windows of an older agent without some of these fields.
        figures = [_shown(body.get(key), kind) for key, kind in _FIGURES]
        losses = body.get("losses_by_reason_s") or {}
        return [
            self.config.machines[machine].display_name or machine,
            machine,
            words[f"kind_{body['window']}"],
            self._shift_label(machine, body.get("shift")),
            _local(body["start"], zone),
            _local(body["end"], zone),
            _status(body, words),
            *figures,
            *(losses.get(reason, 0.0) / 60 for reason in reasons),
        ]

    # ------------------------------------------------------------------ parameters

    def _plan(self, params: Mapping[str, str]) -> tuple[list[_Part], str, str]:
        """What to read for each machine, the file's name and the sheet's title."""
        machine = params.get("machine") or None
        if machine is not None and machine not in self.config.machines:
            known = ", ".join(self.config.machines) or "none configured"
            raise QueryError(f"unknown machine {machine!r} (configured: {known})")
        machines = [machine] if machine else list(self.config.machines)
        window = params.get("window") or None
        if window not in (None, "shift", "hour"):
            raise QueryError(f"window is shift or hour, not {window!r}")
        shift = params.get("shift") or None
        ranged = bool(params.get("from") or params.get("to"))
        if ranged and (shift or params.get("date")):
            raise QueryError("give date= (and shift=) or from= and to=, not both")
        if shift is not None:
            self._check_shift(shift, machines)
        suffix = (f"-{machine}" if machine else "") + ("-hourly" if window == "hour" else "")
        if ranged:
            start, end = _range(params)
            parts = [
                _Part(m, window or self._default_kind(m), ((to_ns(start), to_ns(end)),))
                for m in machines
                if self._reportable(m, window, shift, named=machine is not None)
            ]
            name = f"shift-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}{suffix}"
            last = (end - timedelta(microseconds=1)).date()
            title = f"{start.date()}" if last == start.date() else f"{start.date()} ~ {last}"
            return parts, name, title
        day = self._production_day(params.get("date"), machines[0] if machines else None)
        parts = [
            self._day_part(m, window or self._default_kind(m), day, shift)
            for m in machines
            if self._reportable(m, window, shift, named=machine is not None)
        ]
        shown = self._shift_label(parts[0].machine, shift) if parts and shift else ""
        name = f"shift-{day}" + (f"-{shift}" if shift else "") + suffix
        return parts, name, f"{day} {shown}".strip()

    def _check_shift(self, shift: str, machines: list[str]) -> None:
        calendars = [self._calendar(m) for m in machines]
        if len(machines) == 1 and calendars[0] is None:
            raise QueryError(
                f"machine {machines[0]!r} has no shift calendar: leave out shift= "
                "(it has hourly windows only; give date= or from= and to=)"
            )
        known = sorted({s.name for c in calendars if c is not None for s in c.config.shifts})
        if shift not in known:
            raise QueryError(
                f"unknown shift {shift!r} (shifts: {', '.join(known) or 'no calendar configured'})"
            )

    def _reportable(
        self, machine: str, window: str | None, shift: str | None, *, named: bool
    ) -> bool:
        """Whether `machine` has windows of this kind (a named machine's shift= is checked by
        `_check_shift`); a named machine that has none is an error, not an empty report."""
        calendar = self._calendar(machine)
        if calendar is None:
            if window == "shift" and named:
                raise QueryError(
                    f"machine {machine!r} has no shift calendar, so no shift windows: "
                    "use window=hour"
                )
            return window != "shift" and shift is None
        return shift is None or any(s.name == shift for s in calendar.config.shifts)

    def _production_day(self, text: str | None, machine: str | None) -> date:
        """The date asked for; without one, the day the shift running now (or the last one to
        start) started on: at 07:00, before the day shift, that is yesterday's night shift."""
        zone = self._zone(machine)
        if text:
            return _day(text, self.now(), zone)
        calendar = self._calendar(machine) if machine is not None else None
        now_ns = to_ns(self.now())
        if calendar is not None:
            started = [
                s
                for s in calendar.shifts_overlapping(now_ns - DAY_NS, now_ns + 1)
                if s.start_ns <= now_ns
            ]
            if started:
                return _local_date(started[-1].start_ns, zone)
        return self.now().astimezone(zone).date()

    def _day_part(self, machine: str, kind: str, day: date, shift: str | None) -> _Part:
        zone = self._zone(machine)
        midnight = datetime.combine(day, time(), tzinfo=zone)
        start, end = to_ns(midnight), to_ns(midnight + timedelta(days=1))
        calendar = self._calendar(machine)
        if calendar is None:
            return _Part(machine, kind, ((start, end),))
        instances = [
            s
            for s in calendar.shifts_overlapping(start, end)
            if _local_date(s.start_ns, zone) == day and shift in (None, s.name)
        ]
        return _Part(machine, kind, tuple(_span(s, kind, zone) for s in instances))

    def _default_kind(self, machine: str) -> str:
        return "shift" if self._calendar(machine) is not None else "hour"

    def _calendar(self, machine: str | None) -> Calendar | None:
        name = self.config.machines[machine].calendar if machine else None
        return self._calendars[name] if name else None

    def _zone(self, machine: str | None) -> ZoneInfo:
        calendar = self._calendar(machine)
        return calendar.zone if calendar is not None else _UTC

    def _shift_label(self, machine: str, shift: str | None) -> str:
        calendar = self._calendar(machine)
        if shift is None or calendar is None:
            return shift or ""
        for configured in calendar.config.shifts:
            if configured.name == shift:
                return configured.display_name or shift
        return shift  # a shift since removed from the calendar


# ---------------------------------------------------------------------- parameters and figures


def _range(params: Mapping[str, str]) -> tuple[datetime, datetime]:
    start = moment(params, "from")
    if start is None:
        raise QueryError("to= needs from= too, e.g. from=2026-11-30T08:00:00+08:00")
    end = moment(params, "to") or start + timedelta(days=1)
    if end <= start:
        raise QueryError("to must be after from")
    if end - start > _MAX_RANGE:
        raise QueryError(f"at most {_MAX_RANGE.days} days at once: make from= and to= closer")
    return start, end


def _day(text: str | None, now: datetime, zone: ZoneInfo) -> date:
    if not text:
        return now.astimezone(zone).date()
    wrong = QueryError(f"date is YYYY-MM-DD, e.g. 2026-11-30, not {text!r}")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise wrong
    try:
        day = date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        raise wrong from None
    if not 1970 <= day.year < 2100:
        raise QueryError("date is outside the years 1970 to 2099")
    return day


def _span(shift: ShiftInstance, kind: str, zone: ZoneInfo) -> tuple[int, int]:
    # An hour that begins before the shift (a shift starting at 06:30) still overlaps it.
    start = hour_start_ns(shift.start_ns, zone) if kind == "hour" else shift.start_ns
    return start, shift.end_ns


def _reasons_by_loss(bodies: list[dict[str, Any]]) -> list[str]:
    totals: dict[str, float] = {}
    for body in bodies:
        for reason, seconds in (body.get("losses_by_reason_s") or {}).items():
            totals[reason] = totals.get(reason, 0.0) + seconds
    return sorted(totals, key=lambda reason: (-totals[reason], reason))


def _reason(reason: str, words: dict[str, str]) -> str:
    return words["unclassified"] if reason == UNCLASSIFIED else reason


def _status(body: dict[str, Any], words: dict[str, str]) -> str:
    status = [words["final"] if body["final"] else words["running"]]
    if body.get("corrected_by") or body.get("corrected_at"):
        status.append(words["corrected"])
    if body.get("simulated"):
        status.append(words["simulated"])
    return words["and"].join(status)


def _shown(value: Any, kind: str) -> Value:
    if value is None:
        return None  # undefined (no planned time, no parts, no failures): never 0
    return value / 60 if kind == "minutes" else value


def _local(iso: str, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(_ns(iso) // NS, zone).strftime("%Y-%m-%d %H:%M")


def _local_date(t_ns: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t_ns // NS, zone).date()


def _ns(iso: str) -> int:
    return to_ns(datetime.fromisoformat(iso.replace("Z", "+00:00")))


# ---------------------------------------------------------------------- files


def _csv_bytes(report: _Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_guarded(header) for header in report.headers])
    for row in report.rows:
        writer.writerow([_csv_cell(v, kind) for v, kind in zip(row, report.kinds, strict=True)])
    # The BOM is how Excel knows the file is UTF-8 (else Chinese comes out garbled).
    return out.getvalue().encode("utf-8-sig")


def _csv_cell(value: Value, kind: str) -> str:
    if value is None:
        return ""
    if kind == "text":
        return _guarded(str(value))
    if kind == "count":
        return str(value)
    return f"{value * 100 if kind == 'ratio' else value:.1f}"


def _guarded(text: str) -> str:
    # The apostrophe makes Excel and LibreOffice take the cell as text, and hides itself.
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _xlsx_bytes(report: _Report) -> bytes:
    # Imported when a workbook is asked for: openpyxl is 5 MiB of memory the agent need not
    # hold all the time.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = _SHEET_FORBIDDEN.sub(" ", report.title)[:31] or "report"
    bold = Font(bold=True)
    for column, header in enumerate(report.headers, 1):
        _put_text(sheet.cell(1, column), header).font = bold
    for r, row in enumerate(report.rows, 2):
        for column, (value, kind) in enumerate(zip(row, report.kinds, strict=True), 1):
            if value is None:
                continue
            if kind == "text":
                _put_text(sheet.cell(r, column), str(value))
            else:
                sheet.cell(r, column, value).number_format = _XLSX_FORMATS[kind]
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for column, width in enumerate(_widths(report), 1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _put_text(cell: Cell, text: str) -> Cell:
    # Set as a string explicitly: openpyxl would store "=…" as a formula. quotePrefix is
    # Excel's own apostrophe, so the cell stays text when someone edits it.
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell.value = ILLEGAL_CHARACTERS_RE.sub("", text)
    cell.data_type = "s"
    cell.quotePrefix = text.startswith(_FORMULA_START)
    return cell


def _widths(report: _Report) -> list[float]:
    widths = [_text_width(header) for header in report.headers]
    for row in report.rows:
        for column, (value, kind) in enumerate(zip(row, report.kinds, strict=True)):
            shown = _csv_cell(value, kind) if value is not None else ""
            widths[column] = max(widths[column], _text_width(shown))
    return [min(width + 2, 50) for width in widths]


def _text_width(text: str) -> int:
    # Chinese characters take two columns of Excel's width unit.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
