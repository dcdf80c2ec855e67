"""Readings on window boundaries, and calendars read in their own zone whatever the host's.

Historians export at whole minutes, so counter readings land exactly on shift and hour ends; and
the agent's PC may run in UTC while the plant's calendar is in local time.
"""

from __future__ import annotations

from pathlib import Path

from tests.compute.test_oee_replay import approx, final, machine, run

TWO_SHIFTS = """    timezone: Asia/Shanghai
    shifts:
      - {name: early, start: "06:00", end: "14:00"}
      - {name: late, start: "14:00", end: "22:00"}"""


def test_a_reading_at_a_window_end_belongs_to_the_window_that_ends(
    tmp_path: Path, host_tz: str
) -> None:
    """Running 06:00-22:00; total read on every whole hour, +100 an hour, rejects +5 an hour
    (2 on the 14:00 reading and 3 on the 15:00 one add up to the same 5 a hour of each shift).
    The reading at 07:00 says what 06:00-07:00 made, ..., the one at 14:00 what 13:00-14:00 made.
    So early (06-14) gets the readings 07:00..14:00: total 8 x 100 = 800, rejects 8 x 5 = 40;
    late (14-22) gets 15:00..22:00: total 800, rejects 40. Each hour 06:00..21:00 gets 100.
    Before the fix the early shift had 700 and the 06:00 hour 0: each window lost its last
    reading to the next one."""
    rows = []
    for hour in range(6, 23):
        ts = f"2026-03-02T{hour:02d}:00:00+08:00"
        if hour == 6:
            rows += [f"{ts},plc,running,true,", f"{ts},plc,fault,0,"]
        rows.append(f"{ts},plc,total,{(hour - 6) * 100},")
        rows.append(f"{ts},plc,reject,{(hour - 6) * 5},")
    config = machine(TWO_SHIFTS, counters="{total: plc.total, reject: plc.reject}")
    records = run(tmp_path, config, "\n".join(rows), "2026-03-03T00:00:00+08:00")
    shifts = final(records, "shift")
    assert [(s["shift"], s["total_count"], s["reject_count"]) for s in shifts] == [
        ("early", 800, 40),
        ("late", 800, 40),
    ]
    assert shifts[0]["quality"] == approx(760 / 800)
    assert shifts[0]["ts"] == "2026-03-02T06:00:00.000Z"  # closed at 14:00 local, not later
    hours = final(records, "hour")
    assert [h["total_count"] for h in hours] == [100] * 16


def test_planned_downtime_is_in_the_calendars_zone(tmp_path: Path, host_tz: str) -> None:
    """Europe/Berlin, shift 06:00-14:00, planned downtime 2026-03-02 13:00-13:30 (Berlin) for
    maintenance. PBT = 8 h - 30 min = 27,000 s; the machine runs throughout, so run = 27,000 and
    the 13:00 hour has PBT 1,800. Read in the host's zone instead (the old behaviour under
    TZ=UTC: 14:00-14:30 Berlin), the stop fell outside the shift and PBT was 28,800."""
    calendar = """    timezone: Europe/Berlin
    shifts:
      - {name: early, start: "06:00", end: "14:00"}
    planned_downtime:
      - {start: "2026-03-02 13:00", end: "2026-03-02 13:30", reason: maintenance}"""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
    """
    records = run(tmp_path, machine(calendar), csv, "2026-03-02T15:00:00+01:00")
    [shift] = final(records, "shift")
    assert shift["planned_busy_time_s"] == approx(27000)
    assert shift["availability"] == approx(1.0)
    thirteen = [h for h in final(records, "hour") if h["start"] == "2026-03-02T12:00:00.000Z"]
    assert [h["planned_busy_time_s"] for h in thirteen] == [approx(1800)]
