"""InfluxDB line protocol as written: escaping, float fields, quality, milliseconds."""

from __future__ import annotations

import json

from edge_agent.outbox import StoredRecord
from edge_agent.sinks.lineproto import lines_for


def stored(kind: str, body: dict[str, object], ts_ns: int = 1_700_000_000_123_456_789) -> StoredRecord:
    return StoredRecord(1, ts_ns, kind, "k", json.dumps(body))


def test_values_with_every_kind_of_value_and_quality() -> None:
    body = {
        "device": "press 1",
        "values": {"temp": 71.5, "count": 12, "run": True, "name": 'a "b"', "lost": None, "fuzzy": 3},
        "quality": {"lost": "bad", "fuzzy": "uncertain"},
    }
    lines = lines_for(stored("values", body), "agent,1")
    assert lines == [
        r"values,agent=agent\,1,device=press\ 1,tag=temp value=71.5 1700000000123",
        r"values,agent=agent\,1,device=press\ 1,tag=count value=12.0 1700000000123",
        r"values,agent=agent\,1,device=press\ 1,tag=run value=1.0 1700000000123",
        r'values,agent=agent\,1,device=press\ 1,tag=name text="a \"b\"" 1700000000123',
        r"values,agent=agent\,1,device=press\ 1,tag=lost quality=0i 1700000000123",
        r"values,agent=agent\,1,device=press\ 1,tag=fuzzy value=3.0,quality=64i 1700000000123",
    ]


def test_state_and_link_points() -> None:
    state = {"machine": "m1", "state": "down", "reason": "Die jam", "ended": {"duration_s": 12.5}}
    assert lines_for(stored("state", state, 5_000_000), "a") == [
        'machine_state,agent=a,machine=m1 state_code=3i,state="down",reason="Die jam",previous_duration_s=12.5 5'
    ]
    assert lines_for(stored("link", {"device": "plc", "state": "down"}, 7_000_000), "a") == [
        "device_link,agent=a,device=plc up=0i 7"
    ]
    assert lines_for(stored("unheard-of", {}), "a") == []
