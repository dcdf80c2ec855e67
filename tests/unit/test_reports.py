"""Shift reports (CSV and XLSX) against the history API, over a real history file.

The history is filled by the real compute engine from one plant night and morning in Shanghai:

    press1 (calendar: day 08:00-20:00 with lunch 12:00-12:30, night 20:00-08:00; counters)
      2026-11-29 20:00  running; every hour +330 parts, 3 of them rejects
                 22:00  down, fault 1 (模具卡料), until 22:30
      2026-11-30 02:00  idle without a reason (unclassified), until 02:20
                 09:00  down, fault 2 (换模, setup), until 09:40
                 10:30  now: the day shift is open (running)
    press2 (no calendar: UTC hour windows; no counters, so performance is undefined)
      2026-11-29 12:00Z running; 2026-11-30 01:00Z idle for 10 minutes
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.history import HistoryStore
from edge_agent.http import Download
from edge_agent.records import Record
from edge_agent.samples import SampleBatch
from edge_agent.web.history_api import HistoryApi, QueryError
from edge_agent.web.reports import ReportApi

S = 1_000_000_000
NOW = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
NIGHT = {"from": "2026-11-29T20:00:00+08:00", "to": "2026-11-30T08:00:00+08:00"}

HEADERS_EN = [
    "Machine",
    "Machine ID",
    "Window",
    "Shift",
    "Start",
    "End",
    "Status",
    "Planned busy time (min)",
    "Run time (min)",
    "Down time (min)",
    "Idle time (min)",
    "No-data time (min)",
    "Availability (%)",
    "Performance (%)",
    "Quality (%)",
    "OEE (%)",
    "Total count",
    "Good count",
    "Reject count",
    "Failures",
    "MTBF (min)",
    "MTTR (min)",
    "Micro-stops",
]
HEADERS_ZH = [
    "设备",
    "设备编号",
    "统计周期",
    "班次",
    "开始",
    "结束",
    "状态",
    "计划生产时间（分钟）",
    "运行时间（分钟）",
    "停机时间（分钟）",
    "待机时间（分钟）",
    "无数据时间（分钟）",
    "时间开动率（%）",
    "性能开动率（%）",
    "良品率（%）",
    "OEE（%）",
    "总产量",
    "良品数",
    "不良品数",
    "故障次数",
    "平均故障间隔（分钟）",
    "平均修复时间（分钟）",
    "短停次数",
]
# Record field and its unit, column by column after the seven text columns.
FIGURES = [
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
]


def ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) * S


def agent_file(*, display_name: str = "冲床 P201", language: str = "en") -> AgentFile:
    return AgentFile.model_validate(
        {
            "agent": {"id": "t", "language": language},
            "devices": {
                "plc": {
                    "driver": "modbus",
                    "host": "127.0.0.1",
                    "tags": {
                        "running": {"table": "coil", "address": 0, "type": "bool"},
                        "fault": {"table": "holding", "address": 0},
                        "total": {"table": "holding", "address": 1, "type": "uint32"},
                        "good": {"table": "holding", "address": 3, "type": "uint32"},
                    },
                },
                "plc2": {
                    "driver": "modbus",
                    "host": "127.0.0.2",
                    "tags": {"running": {"table": "coil", "address": 0, "type": "bool"}},
                },
            },
            "machines": {
                "press1": {
                    "display_name": display_name,
                    "calendar": "main",
                    "ideal_cycle_time_s": 10,
                    "micro_stop_s": 120,
                    "state": {
                        "running": "plc.running",
                        "fault": "plc.fault != 0",
                        "reason": "plc.fault",
                    },
                    "counters": {"total": "plc.total", "good": "plc.good"},
                    "reasons": {"1": "模具卡料", "2": {"text": "换模", "category": "setup"}},
                },
                "press2": {"ideal_cycle_time_s": 1, "state": {"running": "plc2.running"}},
            },
            "calendars": {
                "main": {
                    "timezone": "Asia/Shanghai",
                    "shifts": [
                        {
                            "name": "day",
                            "display_name": "白班",
                            "start": "08:00",
                            "end": "20:00",
                            "breaks": [{"start": "12:00", "end": "12:30", "name": "午饭"}],
                        },
                        {"name": "night", "display_name": "夜班", "start": "20:00", "end": "08:00"},
                    ],
                }
            },
        }
    )


def plant_samples() -> list[SampleBatch]:
    press1: dict[int, dict[str, Any]] = {}

    def at(iso: str, **values: Any) -> None:
        press1.setdefault(ns(iso), {}).update(values)

    at("2026-11-29T20:00:00+08:00", running=True, fault=0, total=0, good=0)
    for hour in range(1, 15):  # 21:00 on the 29th to 10:00 on the 30th
        iso = datetime.fromtimestamp(ns("2026-11-29T20:00:00+08:00") / S + hour * 3600, UTC)
        at(iso.isoformat(), total=330 * hour, good=327 * hour)
    at("2026-11-29T22:00:00+08:00", running=False, fault=1)
    at("2026-11-29T22:30:00+08:00", running=True, fault=0)
    at("2026-11-30T02:00:00+08:00", running=False)
    at("2026-11-30T02:20:00+08:00", running=True)
    at("2026-11-30T09:00:00+08:00", running=False, fault=2)
    at("2026-11-30T09:40:00+08:00", running=True, fault=0)
    batches = [SampleBatch("plc", ts, values, {}) for ts, values in press1.items()]
    batches += [
        SampleBatch("plc2", ns("2026-11-29T12:00:00+00:00"), {"running": True}, {}),
        SampleBatch("plc2", ns("2026-11-30T01:00:00+00:00"), {"running": False}, {}),
        SampleBatch("plc2", ns("2026-11-30T01:10:00+00:00"), {"running": True}, {}),
    ]
    return sorted(batches, key=lambda b: b.ts_ns)


@dataclass
class Plant:
    config: AgentFile
    store: HistoryStore
    running: dict[tuple[str, str], dict[str, Any]]

    def reports(self, config: AgentFile | None = None) -> ReportApi:
        return ReportApi(config or self.config, self.store, lambda: self.running, now=lambda: NOW)

    async def history(self, params: dict[str, str]) -> list[dict[str, Any]]:
        api = HistoryApi(self.config, self.store, lambda: self.running, now=lambda: NOW)
        answer = await api.routes()["/api/history/oee"](params)
        return list(answer["windows"])


async def filled(tmp_path: Path, config: AgentFile) -> Plant:
    engine = ComputeEngine(config)
    records: list[Record] = []
    for batch in plant_samples():
        records += engine.ingest(batch)
    records += engine.advance(int(NOW.timestamp()) * S)
    store = HistoryStore(tmp_path / "history.db")
    await store.open()
    store.extend(records)
    running = {
        (r.body["machine"], r.body["window"]): r.body
        for r in records
        if r.kind == "oee" and not r.body["final"]
    }
    await store.flush()
    return Plant(config, store, running)


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    plant = await filled(tmp_path, agent_file())
    yield plant
    await plant.store.close()


def read_csv(download: Download) -> list[list[str]]:
    assert download.body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    assert download.content_type == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(download.body.decode("utf-8-sig"), newline="")))


def read_xlsx(download: Download) -> list[list[Any]]:
    assert download.content_type.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(download.body))
    [sheet] = book.worksheets
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def as_csv(value: Any, unit: str) -> str:
    """The documented CSV form: minutes and percent with 1 decimal, counts whole, null empty."""
    if value is None:
        return ""
    if unit == "count":
        return str(value)
    return f"{value * 100 if unit == 'ratio' else value / 60:.1f}"


def as_xlsx(value: Any, unit: str) -> Any:
    """The documented XLSX form: minutes unrounded, ratios as ratios, null an empty cell."""
    return value / 60 if value is not None and unit == "minutes" else value


# ---------------------------------------------------------------------------------- figures


@pytest.mark.parametrize("window", ["shift", "hour"])
async def test_both_files_hold_the_history_apis_figures(plant: Plant, window: str) -> None:
    expected = await plant.history({"machine": "press1", "window": window, **NIGHT})
    assert len(expected) == (1 if window == "shift" else 12)
    params = {"machine": "press1", "date": "2026-11-29", "shift": "night", "window": window}
    csv_rows = read_csv(await plant.reports().csv(params))
    xlsx_rows = read_xlsx(await plant.reports().xlsx(params))
    assert csv_rows[0] == xlsx_rows[0]
    assert csv_rows[0][: len(HEADERS_EN)] == HEADERS_EN
    # Reasons by their loss over the report: the jam's 30 minutes before the 20 unclassified.
    assert csv_rows[0][len(HEADERS_EN) :] == ["Loss: 模具卡料 (min)", "Loss: Unclassified (min)"]
    reasons = ["模具卡料", "unclassified"]
    assert len(csv_rows) == len(xlsx_rows) == len(expected) + 1
    for body, in_csv, in_xlsx in zip(expected, csv_rows[1:], xlsx_rows[1:], strict=True):
        assert in_csv[:3] == ["冲床 P201", "press1", window]
        assert in_csv[3] == "夜班"
        assert in_csv[6] == "final"
        figures = [body[key] for key, _ in FIGURES]
        figures += [body["losses_by_reason_s"].get(r, 0.0) for r in reasons]
        units = [unit for _, unit in FIGURES] + ["minutes", "minutes"]
        assert in_csv[7:] == [as_csv(v, u) for v, u in zip(figures, units, strict=True)]
        assert in_xlsx[7:] == [as_xlsx(v, u) for v, u in zip(figures, units, strict=True)]
        assert in_xlsx[:7] == in_csv[:7]
    night = expected[0] if window == "shift" else None
    if night is not None:  # the figures themselves, so a wrong history cannot pass unnoticed
        assert night["down_time_s"] == 1800 and night["idle_time_s"] == 1200
        assert csv_rows[1][4:6] == ["2026-11-29 20:00", "2026-11-30 08:00"]
        assert csv_rows[1][9] == "30.0"  # down time in minutes
        assert csv_rows[1][-2:] == ["30.0", "20.0"]


async def test_unknown_performance_is_an_empty_cell_not_zero(plant: Plant) -> None:
    expected = await plant.history({"machine": "press2", **NIGHT})
    assert expected and all(body["performance"] is None for body in expected)
    params = {"machine": "press2", **NIGHT}
    column = HEADERS_EN.index("Performance (%)")
    csv_rows = read_csv(await plant.reports().csv(params))
    xlsx_rows = read_xlsx(await plant.reports().xlsx(params))
    assert [row[column] for row in csv_rows[1:]] == [""] * len(expected)
    assert [row[column] for row in xlsx_rows[1:]] == [None] * len(expected)
    run = HEADERS_EN.index("Run time (min)")
    assert [row[run] for row in csv_rows[1:]] == [
        as_csv(b["run_time_s"], "minutes") for b in expected
    ]


async def test_the_running_shift_is_in_todays_report_and_marked_running(plant: Plant) -> None:
    """Without date= it is today (30 Nov in Shanghai): the day shift only, the night shift
    belongs to the 29th where it started; every machine, press2 with its UTC hours of today."""
    download = await plant.reports().csv({})
    assert download.filename == "shift-2026-11-30.csv"
    rows = read_csv(download)
    press1 = [row for row in rows[1:] if row[1] == "press1"]
    assert [(r[3], r[4], r[6]) for r in press1] == [("白班", "2026-11-30 08:00", "running")]
    assert press1[0][9] == as_csv(plant.running[("press1", "shift")]["down_time_s"], "minutes")
    assert "Loss: 换模 (min)" in rows[0]
    press2 = [row for row in rows[1:] if row[1] == "press2"]
    assert [(r[2], r[4]) for r in press2] == [
        ("hour", "2026-11-30 00:00"),
        ("hour", "2026-11-30 01:00"),
        ("hour", "2026-11-30 02:00"),
    ]
    assert [r[6] for r in press2] == ["final", "final", "running"]


async def test_before_the_first_shift_of_the_day_the_default_is_the_night_shift(
    plant: Plant,
) -> None:
    """At 06:30 in Shanghai the night shift that started yesterday is the one running: a report
    without date= is of its day, not of a day whose first shift has not started."""
    early = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)
    api = ReportApi(plant.config, plant.store, dict, now=lambda: early)
    download = await api.csv({"machine": "press1"})
    assert download.filename == "shift-2026-11-29-press1.csv"
    rows = read_csv(download)
    assert ("2026-11-29 20:00", "2026-11-30 08:00") in [(r[4], r[5]) for r in rows[1:]]


async def test_the_xlsx_is_a_table_with_a_bold_frozen_header_and_number_formats(
    plant: Plant,
) -> None:
    download = await plant.reports().xlsx({"machine": "press1", "date": "2026-11-30"})
    assert download.filename == "shift-2026-11-30-press1.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(download.body)).active
    assert sheet.title == "2026-11-30"
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.bold for cell in sheet[1])
    oee = sheet.cell(2, HEADERS_EN.index("OEE (%)") + 1)
    assert oee.number_format == "0.0%" and 0 < oee.value < 1
    assert sheet.cell(2, HEADERS_EN.index("Run time (min)") + 1).number_format == "0.0"
    assert sheet.column_dimensions["H"].width > 20  # "Planned busy time (min)" fits


async def test_a_corrected_window_says_so(plant: Plant) -> None:
    [night] = await plant.history({"machine": "press1", **NIGHT})
    corrected = {**night, "corrected_by": "zhang", "corrected_at": "2026-11-30T01:00:00.000Z"}
    plant.store.append(Record("oee", "press1", ns("2026-11-30T09:00:00+08:00"), corrected))
    await plant.store.flush()
    params = {"date": "2026-11-29", "shift": "night", "machine": "press1"}
    [_, en] = read_csv(await plant.reports().csv(params))
    [_, zh] = read_csv(await plant.reports().csv({**params, "lang": "zh-CN"}))
    assert (en[6], zh[6]) == ("final, corrected", "已结束，已修正")


# ---------------------------------------------------------------------------------- language


async def test_chinese_headers_read_as_chinese(tmp_path: Path) -> None:
    plant = await filled(tmp_path, agent_file(language="zh-CN"))
    try:
        params = {"machine": "press1", "date": "2026-11-29", "shift": "night"}
        download = await plant.reports().xlsx(params)  # the configured language: zh-CN
        header, row = read_xlsx(download)
        en = read_csv(await plant.reports().csv({**params, "lang": "en"}))
    finally:
        await plant.store.close()
    assert header[: len(HEADERS_ZH)] == HEADERS_ZH
    assert header[len(HEADERS_ZH) :] == ["停机原因：模具卡料（分钟）", "停机原因：待分类（分钟）"]
    for text in header:
        assert not re.search("[A-Za-z]", re.sub("OEE|MTBF|MTTR", "", text)), text
    assert row[2:4] == ["班次", "夜班"]
    assert row[6] == "已结束"
    assert openpyxl.load_workbook(io.BytesIO(download.body)).active.title == "2026-11-29 夜班"
    assert en[0][: len(HEADERS_EN)] == HEADERS_EN


# ---------------------------------------------------------------------------------- shifts


async def test_the_night_shift_is_found_by_the_date_it_starts(plant: Plant) -> None:
    params = {"machine": "press1", "shift": "night"}
    download = await plant.reports().csv({**params, "date": "2026-11-29"})
    assert download.filename == "shift-2026-11-29-night-press1.csv"
    [_, row] = read_csv(download)
    assert row[4:6] == ["2026-11-29 20:00", "2026-11-30 08:00"]
    # Without machine=: the machines whose calendar has a night shift (press2 has no calendar).
    every = read_csv(await plant.reports().csv({"shift": "night", "date": "2026-11-29"}))
    assert [r[1] for r in every[1:]] == ["press1"]
    # The night that starts on the 30th has not begun at 10:30: not the one of the 29th.
    assert read_csv(await plant.reports().csv({**params, "date": "2026-11-30"}))[1:] == []
    hours = read_csv(await plant.reports().csv({**params, "date": "2026-11-29", "window": "hour"}))
    assert [r[4] for r in hours[1:]][:5] == [
        "2026-11-29 20:00",
        "2026-11-29 21:00",
        "2026-11-29 22:00",
        "2026-11-29 23:00",
        "2026-11-30 00:00",
    ]
    assert hours[-1][4:6] == ["2026-11-30 07:00", "2026-11-30 08:00"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"machine": "press9"}, r"unknown machine 'press9' \(configured: press1, press2\)"),
        ({"shift": "late"}, r"unknown shift 'late' \(shifts: day, night\)"),
        ({"date": "30.11.2026"}, "date is YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "date is YYYY-MM-DD"),
        ({"machine": "press2", "shift": "day"}, "'press2' has no shift calendar: leave out shift="),
        ({"machine": "press2", "window": "shift"}, "use window=hour"),
        ({"window": "week"}, "window is shift or hour"),
        ({"lang": "fr"}, "lang is one of en, zh-CN"),
        ({"from": "2026-10-01T00:00:00+08:00", "to": "2026-11-30T00:00:00+08:00"}, "at most 31"),
        ({"to": "2026-11-30T00:00:00+08:00"}, "to= needs from="),
        ({"from": "2026-11-30T00:00:00", "to": "2026-11-30T08:00:00+08:00"}, "UTC offset"),
        ({"date": "2026-11-29", "from": "2026-11-29T00:00:00Z"}, "not both"),
    ],
)
async def test_bad_parameters_say_what_to_change(
    plant: Plant, params: dict[str, str], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        await plant.reports().csv(params)
    with pytest.raises(QueryError, match=message):
        await plant.reports().xlsx(params)


# ---------------------------------------------------------------------------------- injection


async def test_a_display_name_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    plant = await filled(tmp_path, agent_file(display_name="=HYPERLINK(1+2)"))
    try:
        params = {"machine": "press1", "date": "2026-11-29"}
        [_, in_csv] = read_csv(await plant.reports().csv(params))
        download = await plant.reports().xlsx(params)
    finally:
        await plant.store.close()
    assert in_csv[0] == "'=HYPERLINK(1+2)"
    cell = openpyxl.load_workbook(io.BytesIO(download.body)).active["A2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == ("=HYPERLINK(1+2)", "s", True)
