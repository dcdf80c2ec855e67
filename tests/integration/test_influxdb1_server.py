"""What Debian's InfluxDB 1.x answers to the agent's line protocol over its v1 API.

The ground the v1 sink stands on, checked against the real server the sink's tests use: the
points the agent makes for values, states, OEE and alarms go in through /write?db=…&precision=ms
and come back through InfluxQL; a window written twice (running, then final) is one point; and
the answers a sink must tell apart: 204 written, 400 a field type conflict (a record to set
aside, not to retry), 404 no such database, 401 a wrong password (both retried: someone fixes
the server, the records wait).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from edge_agent.records import StoredRecord
from edge_agent.sinks.influxdb.lineproto import lines_for
from tests.support.servers import InfluxDB1

T0 = 1_796_083_200_000  # 2026-12-01T00:00:00Z, ms


def write(
    server: InfluxDB1, body: str, *, db: str | None = None, password: str | None = None
) -> tuple[int, str]:
    params = {"db": db or server.database, "precision": "ms"}
    request = urllib.request.Request(
        f"{server.url}/write?{urllib.parse.urlencode(params)}",
        data=body.encode(),
        method="POST",
        headers={"Authorization": server.basic_auth(password)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def record(seq: int, kind: str, ts_ms: int, body: dict[str, object]) -> StoredRecord:
    return StoredRecord(
        seq, ts_ms * 1_000_000, kind, str(body.get("device", "m1")), json.dumps(body)
    )


OEE = {
    "machine": "m1",
    "window": "hour",
    "start": "2026-12-01T00:00:00.000Z",
    "end": "2026-12-01T01:00:00.000Z",
    "shift": None,
    "final": False,
    "planned_busy_time_s": 600.0,
    "run_time_s": 540.0,
    "down_time_s": 60.0,
    "idle_time_s": 0.0,
    "unknown_time_s": 0.0,
    "planned_stop_time_s": 0.0,
    "availability": 0.9,
    "performance": 0.95,
    "quality": 0.98,
    "oee": 0.8379,
    "mtbf_s": None,
    "mttr_s": 60.0,
    "ideal_cycle_time_s": 2.0,
    "total_count": 256,
    "good_count": 251,
    "reject_count": 5,
    "failures": 1,
    "micro_stops": 0,
    "six_big_losses_s": {"breakdown": 60.0},
    "losses_by_reason_s": {"Die jam": 60.0},
}


ALARM = {
    "id": "hot",
    "type": "limit",
    "priority": "high",
    "machine": "m1",
    "state": "unack_active",
    "active": True,
    "acked": False,
    "severity": 700,
    "message": "主轴温度超过上限",
    "value": 85.5,
    "event": "activated",
}


def test_the_agents_points_go_in_and_come_back(influxdb1: InfluxDB1) -> None:
    records = [
        record(1, "values", T0, {"device": "press1", "values": {"temp_c": 71.5, "count": 7}}),
        record(2, "state", T0, {"machine": "m1", "state": "down", "reason": "Die jam"}),
        record(3, "oee", T0 + 600_000, OEE),
        record(4, "oee", T0 + 3_600_000, {**OEE, "final": True, "oee": 0.8, "good_count": 250}),
        record(5, "alarm", T0 + 1_000, ALARM),
    ]
    lines = [line for r in records for line in lines_for(r, "line1")]
    status, text = write(influxdb1, "\n".join(lines))
    assert status == 204, text

    values = influxdb1.query(
        'SELECT "value" FROM "values" WHERE "agent" = \'line1\' GROUP BY "tag"',
        db=influxdb1.database,
    )
    got = {s["tags"]["tag"]: s["values"] for s in values}  # type: ignore[index]
    assert got == {"temp_c": [[T0, 71.5]], "count": [[T0, 7.0]]}
    mine = "WHERE \"agent\" = 'line1'"  # the server is shared by the tests of the session
    states = influxdb1.query(
        f'SELECT "state_code", "reason" FROM "machine_state" {mine}', db="plant"
    )
    assert states[0]["values"] == [[T0, 3, "Die jam"]]
    # The running figure and the final one of a window: one point, the final figures.
    oee = influxdb1.query(f'SELECT "oee", "good_count", "final" FROM "oee" {mine}', db="plant")
    assert oee[0]["values"] == [[T0, 0.8, 250, 1]]
    alarms = influxdb1.query(
        f'SELECT "state_code", "value", "message" FROM "alarm" {mine}', db="plant"
    )
    assert alarms[0]["values"] == [[T0 + 1_000, 1, 85.5, "主轴温度超过上限"]]


def test_what_a_sink_must_tell_apart(influxdb1: InfluxDB1) -> None:
    assert write(influxdb1, f"conflict,agent=x value=1.5 {T0}")[0] == 204
    status, text = write(influxdb1, f'conflict,agent=x value="text" {T0 + 1}')
    assert status == 400 and "field type conflict" in text  # this record, every time
    status, text = write(influxdb1, f"m,agent=x value=1 {T0}", db="nope")
    assert status == 404 and "database not found" in text  # the server, until it is made
    status, _ = write(influxdb1, f"m,agent=x value=1 {T0}", password="wrong")
    assert status == 401  # the configuration or the server's users, until fixed
