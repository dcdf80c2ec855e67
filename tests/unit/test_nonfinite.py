"""Regression: no writer puts NaN or infinity on the wire (MQTT JSON, the local page, line protocol).

The records are buffered as an older version wrote them (`json.dumps` let `NaN` through); before
the fix MQTT published the `NaN` token, the page answered it, and line protocol wrote `value=nan`,
for which InfluxDB refuses the whole batch.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from typing import Any

from edge_agent.http import LocalServer
from edge_agent.metrics import Metrics
from edge_agent.records import StoredRecord
from edge_agent.sinks.influxdb.lineproto import lines_for
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.layout import messages_for

VALUES = {
    "device": "plc",
    "values": {"nan": math.nan, "inf": math.inf, "minus_inf": -math.inf, "temp": 71.5},
    "quality": {"inf": "uncertain"},
}
ALARM = {
    "id": "drift",
    "type": "ewma",
    "tag": "plc.x",
    "machine": "m1",
    "state": "unack_active",
    "priority": "high",
    "active": True,
    "acked": False,
    "severity": 750,
    "message": "drift",
    "value": math.nan,
    "statistic": math.inf,
}


def old_row(kind: str, body: dict[str, Any], seq: int = 7) -> StoredRecord:
    return StoredRecord(seq, 1_700_000_000_000_000_000, kind, "plc", json.dumps(body))


def strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} in {text}")

    return json.loads(text, parse_constant=refuse)


def test_mqtt_payloads_never_carry_nan() -> None:
    expected_values = {"nan": None, "inf": None, "minus_inf": None, "temp": 71.5}
    expected_quality = {"nan": "bad", "inf": "bad", "minus_inf": "bad"}
    per_poll = MqttSinkConfig.model_validate({})
    [(topic, payload, _)] = messages_for(old_row("values", VALUES), "edge/t", per_poll)
    body = strict(payload)
    assert topic == "edge/t/devices/plc" and body["seq"] == 7
    assert (body["values"], body["quality"]) == (expected_values, expected_quality)

    per_tag = MqttSinkConfig.model_validate({"raw_values": "per_tag"})
    messages = list(messages_for(old_row("values", VALUES), "edge/t", per_tag))
    got = {topic.rsplit("/", 1)[1]: strict(payload) for topic, payload, _ in messages}
    assert {t: (b["value"], b["quality"]) for t, b in got.items()} == {
        "nan": (None, "bad"),
        "inf": (None, "bad"),
        "minus_inf": (None, "bad"),
        "temp": (71.5, "good"),
    }

    for _, payload, _ in messages_for(old_row("alarm", ALARM), "edge/t", per_poll):
        body = strict(payload)
        assert (body["value"], body["statistic"], body["state"]) == (None, None, "unack_active")


def test_mqtt_clean_values_are_spliced_unchanged() -> None:
    clean = {"device": "plc", "values": {"temp": 71.5, "name": "NaN-free"}}
    row = StoredRecord(3, 0, "values", "plc", json.dumps(clean, separators=(",", ":")))
    [(_, payload, _)] = messages_for(row, "r", MqttSinkConfig.model_validate({}))
    assert payload == '{"seq":3,"ts":"1970-01-01T00:00:00.000Z",' + row.body[1:]


async def get(url: str) -> tuple[int, str]:
    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(fetch)


async def test_the_page_json_answers_500_instead_of_nan() -> None:
    state: dict[str, Any] = {
        "devices": [{"name": "plc", "values": [{"tag": "temp", "value": math.nan}]}],
        "alarms": [{"id": "drift", "value": math.inf}],
    }

    async def snapshot() -> dict[str, Any]:
        return state

    server = LocalServer("127.0.0.1", 0, snapshot, Metrics().registry)
    server.start()
    try:
        status, text = await get(f"{server.url}api/state")
        alarms_status, alarms_text = await get(f"{server.url}api/alarms")
        state["devices"][0]["values"][0]["value"] = 20.5
        state["alarms"][0]["value"] = 1.0
        fixed_status, fixed_text = await get(f"{server.url}api/state")
    finally:
        server.stop()
    assert status == 500  # and valid JSON: `strict` refuses the NaN and Infinity tokens
    assert strict(text) == {
        "ok": False,
        "error": "internal error: devices[0].values[0].value is not a finite number "
        "(NaN or infinity)",
    }
    assert alarms_status == 500 and "alarms[0].value" in strict(alarms_text)["error"]
    assert fixed_status == 200 and strict(fixed_text) == state


def test_line_protocol_leaves_non_finite_fields_out() -> None:
    assert lines_for(old_row("values", VALUES), "a") == [
        "values,agent=a,device=plc,tag=nan quality=0i 1700000000000",
        "values,agent=a,device=plc,tag=inf quality=0i 1700000000000",
        "values,agent=a,device=plc,tag=minus_inf quality=0i 1700000000000",
        "values,agent=a,device=plc,tag=temp value=71.5 1700000000000",
    ]
    [alarm] = lines_for(old_row("alarm", ALARM), "a")
    assert "value=" not in alarm and "statistic=" not in alarm and "state_code=1i" in alarm
    nothing_left = {"id": "wear", "type": "trend", "value": math.nan, "time_to_limit_s": math.inf}
    assert lines_for(old_row("condition", nothing_left), "a") == []  # no field: no point
    stop = {
        "machine": "m1",
        "state": "down",
        "start": "2026-03-02T05:00:00Z",
        "duration_s": math.nan,
    }
    assert lines_for(old_row("downtime", stop), "a") == []
    state = {"machine": "m1", "state": "idle", "ended": {"duration_s": math.inf}}
    assert "previous_duration_s" not in lines_for(old_row("state", state), "a")[0]
    oee = {
        "machine": "m1",
        "window": "hour",
        "final": False,
        "start": "2026-03-02T05:00:00.000Z",
        "availability": math.nan,
        "oee": 0.5,
        "total_count": math.nan,
        "good_count": 3,
        "reject_count": 0,
        "failures": 0,
        "micro_stops": 0,
        "six_big_losses_s": {"breakdowns": math.inf, "idling": 2.0},
        "losses_by_reason_s": {"Die jam": math.nan, "Feed": 4.0},
    }
    lines = lines_for(old_row("oee", oee), "a")
    assert len(lines) == 2 and lines[1].startswith("oee_losses,") and "reason=Feed" in lines[1]
    assert "availability" not in lines[0] and "total_count" not in lines[0]
    assert "loss_breakdowns_s" not in lines[0] and "loss_idling_s=2.0" in lines[0]
    assert "oee=0.5" in lines[0] and "good_count=3i" in lines[0]
    for line in lines_for(old_row("values", VALUES), "a") + lines + [alarm]:
        assert "nan" not in line.split(" ")[1] and "inf=" not in line.split(" ")[1]
