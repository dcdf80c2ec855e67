"""Shift calendars: shifts, breaks and planned downtime as real (UTC) intervals.

Shifts are laid out in local time and then converted, so a night shift across a DST change lasts
7 or 9 real hours, as its people work it. A shift whose end is not after its start ends the next
day. A break belongs to the shift it falls in, on whichever day that is.
"""

from __future__ import annotations

__all__ = ["Calendar", "ShiftInstance", "hour_start_ns"]

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from edge_agent.config_models import CalendarConfig, ShiftConfig

NS = 1_000_000_000
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One occurrence of a shift: its real start and end, and its planned downtime inside."""

    name: str
    start_ns: int
    end_ns: int
    downtime: tuple[tuple[int, int, str], ...]  # (start, end, reason), sorted, inside the shift

    def busy(self) -> list[Interval]:
        """Planned busy time: the shift minus its planned downtime."""
        spans, cursor = [], self.start_ns
        for start, end, _ in self.downtime:
            if start > cursor:
                spans.append((cursor, start))
            cursor = max(cursor, end)
        if cursor < self.end_ns:
            spans.append((cursor, self.end_ns))
        return spans


class Calendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.zone = ZoneInfo(config.timezone)
        self.config = config
        self._planned = [
            (
                self._to_ns(_parse_local(p.start, self.zone)),
                self._to_ns(_parse_local(p.end, self.zone)),
                p.reason,
            )
            for p in config.planned_downtime
        ]

    def shifts_overlapping(self, start_ns: int, end_ns: int) -> list[ShiftInstance]:
        """Every shift instance that overlaps [start_ns, end_ns), in time order."""
        first = _local_date(start_ns, self.zone) - timedelta(days=1)
        last = _local_date(end_ns, self.zone)
        found = []
        day = first
        while day <= last:
            for shift in self._shifts_on(day):
                if shift.start_ns < end_ns and shift.end_ns > start_ns:
                    found.append(shift)
            day += timedelta(days=1)
        return sorted(found, key=lambda s: s.start_ns)

    def shift_at(self, t_ns: int) -> ShiftInstance | None:
        for shift in self.shifts_overlapping(t_ns, t_ns + 1):
            return shift
        return None

    def planned_reason(self, t_ns: int) -> str | None:
        """The reason when t_ns lies in planned downtime inside a shift, else None."""
        shift = self.shift_at(t_ns)
        if shift is None:
            return None
        for start, end, reason in shift.downtime:
            if start <= t_ns < end:
                return reason
        return None

    def boundaries(self, start_ns: int, end_ns: int) -> list[int]:
        """Instants in (start_ns, end_ns] where a shift or planned downtime starts or ends."""
        points: set[int] = set()
        for shift in self.shifts_overlapping(start_ns, end_ns + 1):
            points.update((shift.start_ns, shift.end_ns))
            for s, e, _ in shift.downtime:
                points.update((s, e))
        return sorted(p for p in points if start_ns < p <= end_ns)

    def _shifts_on(self, day: date) -> list[ShiftInstance]:
        return _shifts_on(self, day)

    def _instance(self, shift: ShiftConfig, day: date) -> ShiftInstance:
        start = _at(day, shift.start, self.zone)
        end_day = day if _hm(shift.end) > _hm(shift.start) else day + timedelta(days=1)
        end = _at(end_day, shift.end, self.zone)
        s_ns, e_ns = self._to_ns(start), self._to_ns(end)
        downtime: list[tuple[int, int, str]] = []
        for brk in shift.breaks:
            for candidate in (day, day + timedelta(days=1)):
                b_start = self._to_ns(_at(candidate, brk.start, self.zone))
                if s_ns <= b_start < e_ns:
                    b_end_day = (
                        candidate
                        if _hm(brk.end) > _hm(brk.start)
                        else candidate + timedelta(days=1)
                    )
                    b_end = min(self._to_ns(_at(b_end_day, brk.end, self.zone)), e_ns)
                    downtime.append((b_start, b_end, brk.name or "break"))
                    break
        for p_start, p_end, reason in self._planned:
            if p_start < e_ns and p_end > s_ns:
                downtime.append((max(p_start, s_ns), min(p_end, e_ns), reason))
        return ShiftInstance(shift.name, s_ns, e_ns, tuple(sorted(downtime)))

    def _to_ns(self, local: datetime) -> int:
        return int(local.timestamp()) * NS

    def __hash__(self) -> int:
        return id(self)


@lru_cache(maxsize=4096)
def _shifts_on(calendar: Calendar, day: date) -> list[ShiftInstance]:
    weekday = _DAYS[day.weekday()]
    return [
        calendar._instance(shift, day)
        for shift in calendar.config.shifts
        if shift.days is None or weekday in shift.days
    ]


def hour_start_ns(t_ns: int, zone: ZoneInfo | None) -> int:
    """Start of the local clock hour containing t_ns (UTC hours without a zone)."""
    seconds = t_ns // NS
    if zone is None:
        return (seconds - seconds % 3600) * NS
    local = datetime.fromtimestamp(seconds, zone)
    floored = local.replace(minute=0, second=0, microsecond=0)
    return int(floored.timestamp()) * NS


def _hm(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    return int(hours), int(minutes)


def _at(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    hours, minutes = _hm(hhmm)
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


def _local_date(t_ns: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t_ns // NS, zone).date()


def _parse_local(text: str, zone: ZoneInfo) -> datetime:
    """A wall-clock time of the calendar's zone (a naive datetime would be read in the host's)."""
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
