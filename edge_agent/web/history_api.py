"""`GET /api/history/…`: the local history as JSON, for the page and for anyone with a login.

    /api/history/oee?machine=M&window=shift|hour&from=&to=   closed windows, then the open one
    /api/history/stops?machine=M&from=&to=                    stops (classified or not)
    /api/history/alarms?from=&to=                             alarm transitions
    /api/history/timeline?machine=M&from=&to=                 time not running, for the timeline

`from` and `to` are ISO 8601 times with an offset; without them the range is today in the
machine's calendar zone (UTC for a machine without a calendar). Field names are the records'.
"""

from __future__ import annotations

__all__ = ["HistoryApi", "QueryError", "moment", "to_ns"]

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from edge_agent.config_models import AgentFile

NS = 1_000_000_000
_MAX_RANGE = timedelta(days=400)  # a year and a bit: a yearly report, not the whole file
# Every machine's stops, or every alarm, over a long range is tens of thousands of rows: a month
# at a time keeps an answer well under 200 ms (90 days of ten machines' stops took 220 ms).
_MAX_RANGE_ALL = timedelta(days=31)
_UTC = ZoneInfo("UTC")


class QueryError(ValueError):
    """A request the history cannot answer; the message says what to change (a 400)."""


class HistoryQueries(Protocol):
    async def oee(
        self, machine: str, window: str, from_ns: int, to_ns: int
    ) -> list[dict[str, Any]]: ...

    async def stops(
        self, machine: str | None, from_ns: int, to_ns: int
    ) -> list[dict[str, Any]]: ...

    async def alarms(self, from_ns: int, to_ns: int) -> list[dict[str, Any]]: ...

    async def timeline(self, machine: str, from_ns: int, to_ns: int) -> list[dict[str, Any]]: ...


Handler = Callable[[Mapping[str, str]], Coroutine[Any, Any, dict[str, Any]]]


class HistoryApi:
    def __init__(
        self,
        config: AgentFile,
        history: HistoryQueries,
        open_windows: Callable[[], Mapping[tuple[str, str], dict[str, Any]]],
        now: Callable[[], datetime] = lambda: datetime.now(_UTC),
        current: Callable[[str], dict[str, Any] | None] = lambda _machine: None,
    ) -> None:
        self.config = config
        self.history = history
        self.open_windows = open_windows  # (machine, window) -> the latest running OEE record
        self.now = now
        self.current = current  # machine -> its state now {state, reason, since}

    def routes(self) -> dict[str, Handler]:
        return {
            "/api/history/oee": self.oee,
            "/api/history/stops": self.stops,
            "/api/history/alarms": self.alarms,
            "/api/history/timeline": self.timeline,
        }

    async def oee(self, params: Mapping[str, str]) -> dict[str, Any]:
        machine = self._machine(params, required=True)
        assert machine is not None
        window = params.get("window") or ("shift" if self._calendar(machine) else "hour")
        if window not in ("shift", "hour"):
            raise QueryError(f"window is shift or hour, not {window!r}")
        start, end = self._range(params, machine)
        rows = await self.history.oee(machine, window, start, end)
        running = self.open_windows().get((machine, window))
        if running is not None and start <= _ns(running["start"]) < end:
            rows = [*rows, running]  # the open window, final: false
        return {"machine": machine, "window": window, **_span(start, end), "windows": rows}

    async def stops(self, params: Mapping[str, str]) -> dict[str, Any]:
        machine = self._machine(params, required=False)
        start, end = self._range(params, machine, _MAX_RANGE if machine else _MAX_RANGE_ALL)
        rows = await self.history.stops(machine, start, end)
        return {"machine": machine, **_span(start, end), "stops": rows}

    async def alarms(self, params: Mapping[str, str]) -> dict[str, Any]:
        start, end = self._range(params, None, _MAX_RANGE_ALL)
        rows = await self.history.alarms(start, end)
        return {**_span(start, end), "alarms": rows}

    async def timeline(self, params: Mapping[str, str]) -> dict[str, Any]:
        machine = self._machine(params, required=True)
        assert machine is not None
        start, end = self._range(params, machine, _MAX_RANGE_ALL)
        periods = await self.history.timeline(machine, start, end)
        now = self.current(machine)
        # The state the machine is in now has no end yet: it is not in the history.
        if now is not None and now["state"] != "running" and _ns(now["since"]) < end:
            periods.append(
                {"state": now["state"], "reason": now["reason"], "start": now["since"], "end": None}
            )
        return {"machine": machine, **_span(start, end), "periods": periods}

    # ------------------------------------------------------------------ parameters

    def _machine(self, params: Mapping[str, str], *, required: bool) -> str | None:
        machine = params.get("machine")
        if machine is None:
            if required:
                known = ", ".join(self.config.machines) or "none configured"
                raise QueryError(f"give machine= (one of: {known})")
            return None
        if machine not in self.config.machines:
            known = ", ".join(self.config.machines) or "none configured"
            raise QueryError(f"unknown machine {machine!r} (configured: {known})")
        return machine

    def _calendar(self, machine: str | None) -> str | None:
        if machine is not None:
            return self.config.machines[machine].calendar
        return next(iter(self.config.calendars), None)

    def _zone(self, machine: str | None) -> ZoneInfo:
        name = self._calendar(machine)
        return ZoneInfo(self.config.calendars[name].timezone) if name else _UTC

    def _range(
        self, params: Mapping[str, str], machine: str | None, longest: timedelta = _MAX_RANGE
    ) -> tuple[int, int]:
        zone = self._zone(machine)
        midnight = datetime.combine(self.now().astimezone(zone).date(), time(), tzinfo=zone)
        start = moment(params, "from") or midnight
        end = moment(params, "to") or (start + timedelta(days=1))
        if end <= start:
            raise QueryError("to must be after from")
        if end - start > longest:
            every = "" if longest == _MAX_RANGE else " for every machine (give machine= for more)"
            raise QueryError(f"at most {longest.days} days at once{every}")
        return to_ns(start), to_ns(end)


def moment(params: Mapping[str, str], name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        raise QueryError(f"{name} is an ISO 8601 time, e.g. 2026-03-02T06:00:00+08:00") from None
    if when.tzinfo is None:
        raise QueryError(f"{name} needs its UTC offset, e.g. 2026-03-02T06:00:00+08:00")
    if not 1970 <= when.year < 2100:
        raise QueryError(f"{name} is outside the years 1970 to 2099")
    return when


def to_ns(moment: datetime) -> int:
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * NS + moment.microsecond * 1000


def _ns(iso: str) -> int:
    return to_ns(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def _span(start_ns: int, end_ns: int) -> dict[str, str]:
    def iso(ns: int) -> str:
        return datetime.fromtimestamp(ns / NS, _UTC).isoformat().replace("+00:00", "Z")

    return {"from": iso(start_ns), "to": iso(end_ns)}
