"""The history API's parameters and answers, over a store that records what it was asked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from edge_agent.config_models import AgentFile
from edge_agent.web.history_api import HistoryApi, QueryError

S = 1_000_000_000
NOW = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)  # 04:30 on 3 March in Shanghai


class Store:
    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    async def oee(
        self, machine: str, window: str, from_ns: int, to_ns: int
    ) -> list[dict[str, Any]]:
        self.asked.append(("oee", machine, window, from_ns, to_ns))
        return [{"machine": machine, "window": window, "final": True}]

    async def stops(self, machine: str | None, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
        self.asked.append(("stops", machine, from_ns, to_ns))
        return []

    async def alarms(self, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
        self.asked.append(("alarms", from_ns, to_ns))
        return []


def api(store: Store, running: dict[tuple[str, str], dict[str, Any]] | None = None) -> HistoryApi:
    config = AgentFile.model_validate(
        {
            "agent": {"id": "t"},
            "devices": {
                "plc": {
                    "driver": "modbus",
                    "host": "h",
                    "tags": {"run": {"table": "coil", "address": 0, "type": "bool"}},
                }
            },
            "machines": {
                "press1": {
                    "ideal_cycle_time_s": 1,
                    "state": {"running": "plc.run"},
                    "calendar": "c",
                },
                "press2": {"ideal_cycle_time_s": 1, "state": {"running": "plc.run"}},
            },
            "calendars": {
                "c": {
                    "timezone": "Asia/Shanghai",
                    "shifts": [{"name": "day", "start": "08:00", "end": "20:00"}],
                }
            },
        }
    )
    return HistoryApi(config, store, lambda: running or {}, now=lambda: NOW)


def ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) * S


async def test_the_default_range_is_today_in_the_machines_calendar_zone() -> None:
    store = Store()
    answer = await api(store).oee({"machine": "press1"})
    assert store.asked == [
        ("oee", "press1", "shift", ns("2026-03-03T00:00:00+08:00"), ns("2026-03-04T00:00:00+08:00"))
    ]
    assert (answer["from"], answer["to"]) == ("2026-03-02T16:00:00Z", "2026-03-03T16:00:00Z")
    await api(store).oee({"machine": "press2"})  # no calendar: UTC days, hour windows
    assert store.asked[-1] == (
        "oee",
        "press2",
        "hour",
        ns("2026-03-02T00:00:00+00:00"),
        ns("2026-03-03T00:00:00+00:00"),
    )


async def test_the_open_window_follows_the_closed_ones() -> None:
    running = {("press1", "shift"): {"start": "2026-03-03T00:00:00.000Z", "final": False}}
    answer = await api(Store(), running).oee({"machine": "press1"})
    assert [w["final"] for w in answer["windows"]] == [True, False]


async def test_an_offset_given_in_a_query_string_survives_its_plus_becoming_a_space() -> None:
    store = Store()
    await api(store).stops({"from": "2026-03-01T06:00:00 08:00", "to": "2026-03-02T06:00:00Z"})
    assert store.asked[-1] == (
        "stops",
        None,
        ns("2026-03-01T06:00:00+08:00"),
        ns("2026-03-02T06:00:00+00:00"),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give machine="),
        ({"machine": "nope"}, "unknown machine 'nope'"),
        ({"machine": "press1", "window": "week"}, "window is shift or hour"),
        ({"machine": "press1", "from": "yesterday"}, "ISO 8601"),
        ({"machine": "press1", "from": "2026-03-01T00:00:00"}, "UTC offset"),
        (
            {"machine": "press1", "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
            "after",
        ),
        (
            {"machine": "press1", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            "at most",
        ),
        ({"machine": "press1", "from": "2200-01-01T00:00:00Z"}, "1970 to 2099"),
    ],
)
async def test_bad_parameters_say_what_to_change(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        await api(Store()).oee(params)
