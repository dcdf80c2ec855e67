"""Hiding an alarm has a reason and an end: shelve and out_of_service, their expiry and restarts.

Time starts at 0 s; `S` is one second in nanoseconds. The alarm `hot` is a high limit of 80 on
plc.x with no delays, so it is active from the first sample over 80.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.records import Record
from edge_agent.samples import SampleBatch

S = 1_000_000_000
H = 3600 * S
DAY = 24 * H


def engine(**agent: Any) -> ComputeEngine:
    return ComputeEngine(
        AgentFile.model_validate(
            {
                "agent": {"id": "t", **agent},
                "devices": {
                    "plc": {
                        "driver": "modbus",
                        "host": "h",
                        "tags": {"x": {"table": "input", "address": 0, "type": "float32"}},
                    }
                },
                "alarms": [{"id": "hot", "type": "limit", "tag": "plc.x", "high": 80}],
            }
        )
    )


def alarm_records(records: list[Record]) -> list[dict[str, Any]]:
    return [r.body | {"t_s": r.ts_ns // S} for r in records if r.kind == "alarm"]


def feed(e: ComputeEngine, t_ns: int, x: float) -> list[dict[str, Any]]:
    return alarm_records(e.ingest(SampleBatch("plc", t_ns, {"x": x}, {})))


def command(e: ComputeEngine, t_ns: int, **payload: Any) -> tuple[list[dict[str, Any]], str | None]:
    records, error = e.command({"id": "hot", **payload}, t_ns)
    return alarm_records(records), error


@pytest.mark.parametrize("name", ["shelve", "out_of_service"])
@pytest.mark.parametrize(
    ("reason", "error"),
    [
        (None, "needs a reason"),
        ("", "needs a reason"),
        ("   ", "needs a reason"),
        (42, "needs a reason"),
        ("x" * 201, "at most 200 characters"),
        ("two\nlines", "one line"),
    ],
)
def test_hiding_an_alarm_needs_a_reason(name: str, reason: Any, error: str) -> None:
    e = engine()
    feed(e, 0, 90.0)
    payload = {
        "command": name,
        "duration_s": 60,
        **({"reason": reason} if reason is not None else {}),
    }
    records, refused = command(e, 1 * S, **payload)
    assert refused is not None and error in refused
    assert records == [] and e.alarms.alarms["hot"].state == "unack_active"  # nothing changed


def test_the_reason_and_who_did_it_are_in_the_record() -> None:
    e = engine()
    feed(e, 0, 90.0)
    [shelved], _ = command(
        e,
        1 * S,
        command="shelve",
        duration_s=600,
        reason="  sensor swap, WO-4711 ",
        user="mqtt:operator",
        declared_user="li.wei",
    )
    assert (shelved["state"], shelved["reason"]) == ("shelved", "sensor swap, WO-4711")
    assert (shelved["user"], shelved["declared_user"]) == ("mqtt:operator", "li.wei")
    assert shelved["shelved_until"] == "1970-01-01T00:10:01.000Z"


def test_out_of_service_returns_to_service_by_itself_after_its_duration() -> None:
    """Out of service at 10 s for 3600 s: back at 3610 s, still active, so unacknowledged again
    (it was acknowledged before), with one record at exactly that instant."""
    e = engine()
    feed(e, 0, 90.0)
    command(e, 5 * S, command="ack")
    [oos], error = command(
        e, 10 * S, command="out_of_service", duration_s=3600, reason="probe replaced"
    )
    assert error is None
    assert (oos["state"], oos["out_of_service_until"], oos["reason"]) == (
        "out_of_service",
        "1970-01-01T01:00:10.000Z",
        "probe replaced",
    )
    assert e.alarms.next_event_ns() == 3610 * S  # the engine walks to it without a sample
    assert alarm_records(e.advance(3609 * S)) == []
    [back] = alarm_records(e.advance(4000 * S))
    assert (back["t_s"], back["state"], back["out_of_service"]) == (3610, "unack_active", False)
    assert (back["reason"], back["out_of_service_until"]) == (None, None)


def test_out_of_service_without_a_duration_lasts_the_configured_default() -> None:
    e = engine(out_of_service_default_h=8)
    feed(e, 0, 50.0)
    [oos], _ = command(e, 0, command="out_of_service", reason="line rebuilt")
    assert oos["out_of_service_until"] == "1970-01-01T08:00:00.000Z"
    [back] = alarm_records(e.advance(9 * H))
    assert (back["t_s"], back["state"]) == (8 * 3600, "normal")


@pytest.mark.parametrize(
    ("agent", "duration_s", "accepted"),
    [
        ({}, 30 * 86400, True),
        ({}, 30 * 86400 + 1, False),  # the default maximum is 30 days
        ({"out_of_service_max_days": 2}, 2 * 86400, True),
        ({"out_of_service_max_days": 2}, 3 * 86400, False),
        ({}, 0, False),
        ({}, -5, False),
        ({}, True, False),
        ({}, "3600", False),
    ],
)
def test_out_of_service_is_at_most_the_configured_maximum(
    agent: dict[str, Any], duration_s: Any, accepted: bool
) -> None:
    e = engine(**agent)
    feed(e, 0, 50.0)
    _, error = command(e, 0, command="out_of_service", duration_s=duration_s, reason="WO-1")
    assert (error is None) == accepted, error
    if not accepted:
        assert "out_of_service takes duration_s up to" in error  # type: ignore[operator]


def test_a_default_longer_than_the_maximum_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="longer than out_of_service_max_days"):
        engine(out_of_service_default_h=49, out_of_service_max_days=2)


def test_in_service_ends_it_early_and_only_when_out_of_service() -> None:
    e = engine()
    feed(e, 0, 90.0)
    _, error = command(e, 1 * S, command="in_service")
    assert error is not None and "not out of service" in error
    command(e, 2 * S, command="out_of_service", reason="WO-2")
    [back], error = command(e, 3 * S, command="in_service")
    assert error is None and (back["state"], back["reason"]) == ("unack_active", None)
    assert e.alarms.next_event_ns() is None  # no expiry left behind


def test_restore_keeps_expiry_and_reason() -> None:
    """Saved while shelved (until 501 s) and out of service (until 1000 s; it is what the state
    shows); restored into a new engine through JSON, as the agent saves it: each ends on time."""
    e = engine()
    feed(e, 0, 90.0)
    command(e, 1 * S, command="shelve", duration_s=500, reason="nuisance, WO-3")
    command(e, 2 * S, command="out_of_service", duration_s=998, reason="probe out")
    state = json.loads(json.dumps(e.to_state()))

    restored = engine()
    restored.restore(state)
    hot = restored.alarms.alarms["hot"]
    assert (hot.state, hot.reason) == ("out_of_service", "probe out")
    assert (hot.shelve_reason, hot.out_of_service_until_ns) == ("nuisance, WO-3", 1000 * S)
    assert restored.alarms.next_event_ns() == 501 * S
    [unshelved] = alarm_records(restored.advance(600 * S))
    assert (unshelved["t_s"], unshelved["state"], unshelved["reason"]) == (
        501,
        "out_of_service",
        "probe out",
    )
    [back] = alarm_records(restored.advance(1200 * S))
    assert (back["t_s"], back["state"]) == (1000, "unack_active")


def test_an_old_state_without_an_end_gets_the_default_from_the_first_instant_after() -> None:
    """A state saved by an older version: out_of_service true, no end, no reason. Restored, it
    gets the default end (24 h) from the first time the engine moves on (a poll at 7200 s)."""
    e = engine()
    feed(e, 0, 90.0)
    command(e, 1 * S, command="out_of_service", reason="x")
    state = json.loads(json.dumps(e.to_state()))
    saved = state["alarms"]["alarms"]["hot"]
    for key in ("out_of_service_until_ns", "out_of_service_reason", "shelve_reason"):
        del saved[key]
    saved["published"] = saved["published"][:3]  # an older version published three things

    restored = engine()
    restored.restore(state)
    assert restored.alarms.alarms["hot"].state == "out_of_service"
    assert restored.alarms.next_event_ns() is None  # no end known yet
    [dated] = feed(restored, 7200 * S, 90.0)
    assert (dated["state"], dated["out_of_service_until"]) == (
        "out_of_service",
        "1970-01-02T02:00:00.000Z",
    )
    assert restored.alarms.next_event_ns() == 7200 * S + DAY
    [back] = alarm_records(restored.advance(7200 * S + DAY))
    assert back["state"] == "unack_active"
