"""What the page reads besides the history: the configuration as people read it (/api/meta),
and the state timeline from the real history file (/api/history/timeline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.compute.engine import ComputeEngine
from edge_agent.history import HistoryStore
from edge_agent.web.history_api import HistoryApi
from edge_agent.web.meta import meta
from tests.unit.test_stop_reasons import DAY, MIN, config, run_machine


def test_meta_names_what_people_read_and_nothing_secret(tmp_path: Path) -> None:
    answer = meta(config(tmp_path))
    (press,) = answer["machines"]
    assert press["display_name"] == "冲床 P201" and press["timezone"] == "Asia/Shanghai"
    assert press["window"] == "shift"
    assert {"code": "6", "text": "待料", "category": "material"} in press["reasons"]
    assert press["shifts"] == [
        {"name": "day", "display_name": "白班"},
        {"name": "night", "display_name": "night"},
    ]
    assert answer["devices"][0]["tags"][0] == {"id": "run", "display_name": "run", "unit": None}
    text = json.dumps(answer, ensure_ascii=False)
    for secret in ('"host"', "history.db", "password", "token"):
        assert secret not in text


async def test_the_timeline_has_stops_planned_time_and_the_state_now(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    engine = ComputeEngine(cfg)
    # 11:00-13:10 in Shanghai: an idle stop 11:20-11:40, lunch 12:00-13:00 (planned), and the
    # machine down since 13:05 (still down: not in the history yet).
    start = DAY + 3 * 60 * MIN
    records = run_machine(engine, start, 130, {20: (False, 0), 40: (True, 0), 125: (True, 1)})
    store = HistoryStore(tmp_path / "history.db")
    await store.open()
    store.extend(records)
    await store.flush()
    current = engine.machines["press1"].current
    assert current is not None

    def now_state(_machine: str) -> dict[str, str | None]:
        assert current is not None
        since = datetime.fromtimestamp(current.since_ns / 1e9, UTC).isoformat()
        return {"state": current.state, "reason": current.reason, "since": since}

    api = HistoryApi(cfg, store, dict, current=now_state)
    answer = await api.timeline(
        {
            "machine": "press1",
            "from": "2026-03-02T08:00:00+08:00",
            "to": "2026-03-03T08:00:00+08:00",
        }
    )
    got = [(p["state"], p["reason"], p["start"], p["end"]) for p in answer["periods"]]
    assert got == [
        ("idle", None, "2026-03-02T03:20:00.000Z", "2026-03-02T03:40:00.000Z"),
        ("planned", "break", "2026-03-02T04:00:00.000Z", "2026-03-02T05:00:00.000Z"),
        ("down", "Die jam", "2026-03-02T05:05:00+00:00", None),
    ]
    await store.close()
