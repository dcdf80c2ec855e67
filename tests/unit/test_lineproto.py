"""InfluxDB line protocol as written: escaping, float fields, quality, milliseconds."""

from __future__ import annotations

import json

from edge_agent.records import StoredRecord
from edge_agent.sinks.influxdb.lineproto import lines_for


def stored(
    kind: str, body: dict[str, object], ts_ns: int = 1_700_000_000_123_456_789
) -> StoredRecord:
    return StoredRecord(1, ts_ns, kind, "k", json.dumps(body))


def test_values_with_every_kind_of_value_and_quality() -> None:
    body = {
        "device": "press 1",
        "values": {
            "temp": 71.5,
            "count": 12,
            "run": True,
            "name": 'a "b"',
            "lost": None,
            "fuzzy": 3,
        },
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


def test_oee_window_is_one_point_at_its_start() -> None:
    body = {
        "machine": "m1",
        "window": "shift",
        "shift": "early",
        "final": False,
        "start": "2026-03-02T05:00:00.000Z",
        "end": "2026-03-02T13:00:00.000Z",
        "planned_busy_time_s": 100.0,
        "run_time_s": 90.0,
        "down_time_s": 10.0,
        "idle_time_s": 0.0,
        "unknown_time_s": 0.0,
        "planned_stop_time_s": 0.0,
        "availability": 0.9,
        "performance": None,
        "quality": None,
        "oee": 0.0,
        "mtbf_s": None,
        "mttr_s": None,
        "ideal_cycle_time_s": 1.0,
        "total_count": 0,
        "good_count": 0,
        "reject_count": 0,
        "failures": 1,
        "micro_stops": 0,
        "six_big_losses_s": {"breakdowns": 10.0},
        "losses_by_reason_s": {"Die jam": 10.0},
    }
    running = lines_for(stored("oee", body, ts_ns=1_772_431_000_000_000_000), "a")
    final = lines_for(stored("oee", {**body, "final": True}, ts_ns=1_772_460_000_000_000_000), "a")
    start_ms = "1772427600000"
    assert [line.rsplit(" ", 1)[1] for line in running + final] == [start_ms] * 4
    assert running[0].startswith(
        "oee,agent=a,machine=m1,window=shift,shift=early planned_busy_time_s=100.0,"
    )
    assert "performance" not in running[0]  # unknown figures are left out, not written as 0
    assert "total_count=0i" in running[0] and "final=0i" in running[0] and "final=1i" in final[0]
    assert (
        running[1]
        == f"oee_losses,agent=a,machine=m1,window=shift,shift=early,reason=Die\\ jam seconds=10.0 {start_ms}"
    )


def test_alarm_and_condition_points() -> None:
    alarm = {
        "id": "hot",
        "type": "limit",
        "priority": "high",
        "machine": "m1",
        "state": "unack_active",
        "active": True,
        "acked": False,
        "severity": 750,
        "message": 'Spindle "hot"',
        "value": 85.5,
        "statistic": None,
    }
    assert lines_for(stored("alarm", alarm, 9_000_000), "a") == [
        'alarm,agent=a,id=hot,type=limit,priority=high,machine=m1 state_code=1i,state="unack_active",'
        'active=1i,acked=0i,severity=750i,message="Spindle \\"hot\\"",value=85.5 9'
    ]
    shelved = {
        **alarm,
        "state": "shelved",
        "event": "shelve",
        "user": "token:scada",
        "declared_user": "admin",
        "reason": "WO-4711",
    }
    assert lines_for(stored("alarm", shelved, 9_000_000), "a")[0].endswith(
        'value=85.5,event="shelve",user="token:scada",declared_user="admin",reason="WO-4711" 9'
    )
    zone = {"id": "vib", "type": "vibration_zone", "value": 3.2, "zone": "C"}
    assert lines_for(stored("condition", zone, 9_000_000), "a") == [
        "condition,agent=a,id=vib,type=vibration_zone value=3.2,zone_code=3i 9"
    ]
    trend = {
        "id": "wear",
        "type": "trend",
        "value": 2.0,
        "time_to_limit_s": 500.0,
        "slope_per_s": 0.01,
        "r2": 1.0,
    }
    assert lines_for(stored("condition", trend, 9_000_000), "a") == [
        "condition,agent=a,id=wear,type=trend value=2.0,time_to_limit_s=500.0,slope_per_s=0.01,r2=1.0 9"
    ]


def test_a_stop_classified_later_overwrites_its_first_point() -> None:
    """Same measurement, tags and time: InfluxDB keeps the later write (the reason is a field)."""
    stop = {
        "machine": "press1",
        "state": "idle",
        "reason": None,
        "reason_code": None,
        "category": None,
        "classified_by": None,
        "start": "2026-03-02T00:20:00.000Z",
        "end": "2026-03-02T00:35:00.000Z",
        "duration_s": 900.0,
    }
    first = lines_for(stored("downtime", stop, ts_ns=1), "a")
    later = {**stop, "reason": "待料", "reason_code": "6", "category": "material"}
    again = lines_for(stored("downtime", {**later, "classified_by": "li"}, ts_ns=2), "a")
    assert first == [
        'downtime,agent=a,machine=press1,state=idle duration_s=900.0,reason="unclassified" '
        "1772410800000"
    ]
    assert again == [
        'downtime,agent=a,machine=press1,state=idle duration_s=900.0,reason="待料",'
        'reason_code="6",category="material",classified_by="li" 1772410800000'
    ]
