"""OEE through `replay`, each case derived by hand in its docstring.

Every case is a configuration and a CSV of samples, replayed by the same code as
`edge-agent replay`; the closed (final) windows are compared with figures worked out below.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import load_config
from edge_agent.replay import iso_to_ns, iter_batches, replay

CASES = Path(__file__).resolve().parents[1] / "cases" / "oee"
# Calendars are read in their own zone: every case runs under several zones of the host too.
pytestmark = pytest.mark.usefixtures("host_tz")

DEVICE = """
devices:
  plc:
    driver: modbus
    host: 127.0.0.1
    tags:
      running: {table: coil, address: 0, type: bool}
      fault: {table: holding, address: 0}
      total: {table: holding, address: 1, type: uint32}
      good: {table: holding, address: 3, type: uint32}
      reject: {table: holding, address: 5, type: uint32}
      count16: {table: holding, address: 7}
"""


def machine(
    calendar: str, *, counters: str = "{total: plc.total, good: plc.good}", extra: str = ""
) -> str:
    return f"""
machines:
  m:
    calendar: main
    ideal_cycle_time_s: 1.0
    micro_stop_s: 120
    state: {{running: plc.running, fault: plc.fault != 0, reason: plc.fault}}
    counters: {counters}
    reasons: {{1: Die jam, 2: {{text: Die change, category: setup}}}}
{extra}
calendars:
  main:
{calendar}
"""


def run(tmp_path: Path, config_text: str, csv_text: str, until: str) -> list[dict[str, Any]]:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("agent: {id: t}\n" + DEVICE + config_text)
    samples = tmp_path / "samples.csv"
    samples.write_text(
        "ts,device,tag,value,quality\n"
        + "\n".join(line.strip() for line in csv_text.strip().splitlines())
        + "\n"
    )
    config = load_config(config_file)
    out = io.StringIO()
    replay(config, iter_batches(samples, config), out, until_ns=iso_to_ns(until))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def final(records: list[dict[str, Any]], window: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "oee" and r["final"] and r["window"] == window]


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-3)


def test_worked_example_through_the_command(tmp_path: Path) -> None:
    """DOMAIN.md: shift 06:00-14:00 = 480 min; breaks 15 + 30 + 15 = 60 min -> PBT 420 min = 25,200 s.

    Down 11:00-11:47 = 47 min = 2,820 s (Die jam, one failure) -> run 373 min = 22,380 s.
    Counters 100,000 -> 119,271 total (19,271) and 90,000 -> 108,848 good (18,848).
    A = 22,380 / 25,200 = 0.8881; P = 1.0 x 19,271 / 22,380 = 0.8611; Q = 18,848 / 19,271 = 0.9780;
    OEE = 18,848 / 25,200 = 0.7479. MTBF = 22,380 s / 1; MTTR = 2,820 s / 1.
    Reduced speed = 22,380 - 19,271 = 3,109 s; production rejects = 423 x 1 s.
    """
    case = CASES / "worked_example"
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "replay",
            str(case / "config.yaml"),
            "--input",
            str(case / "samples.csv"),
            "--until",
            "2026-03-02T14:00:00+01:00",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    [shift] = final(records, "shift")
    assert (shift["shift"], shift["start"], shift["end"]) == (
        "early",
        "2026-03-02T05:00:00.000Z",
        "2026-03-02T13:00:00.000Z",
    )
    assert shift["planned_busy_time_s"] == approx(25200)
    assert shift["run_time_s"] == approx(22380)
    assert shift["down_time_s"] == approx(2820)
    assert (shift["idle_time_s"], shift["unknown_time_s"]) == (0, 0)
    assert shift["availability"] == approx(0.8881)
    assert shift["performance"] == approx(0.8611)
    assert shift["quality"] == approx(0.9780)
    assert shift["oee"] == approx(0.7479)
    assert (shift["total_count"], shift["good_count"], shift["reject_count"]) == (19271, 18848, 423)
    assert (shift["failures"], shift["mtbf_s"], shift["mttr_s"]) == (1, approx(22380), approx(2820))
    assert shift["losses_by_reason_s"] == {"Die jam": approx(2820)}
    assert shift["six_big_losses_s"]["reduced_speed"] == approx(3109)
    assert shift["six_big_losses_s"]["production_rejects"] == approx(423)
    downtime = [r for r in records if r["kind"] == "downtime"]
    assert [(d["reason"], d["duration_s"]) for d in downtime] == [("Die jam", 2820.0)]
    # Hours: 06-14 local; 08:00, 10:00 and 12:00 hours lose their breaks; 11:00 holds the fault.
    hours = final(records, "hour")
    assert [h["planned_busy_time_s"] for h in hours] == [
        3600,
        3600,
        2700,
        3600,
        1800,
        3600,
        2700,
        3600,
    ]
    assert sum(h["down_time_s"] for h in hours) == approx(2820)


SHIFT_0614 = """    timezone: Europe/Berlin
    shifts:
      - {name: early, start: "06:00", end: "14:00"}"""


def test_counter_wrap_with_modulus_and_reset_without(tmp_path: Path) -> None:
    """A 16-bit counter: 65,000 -> 65,535 (+535) -> wraps to 100 (+100 + 65,536 - 65,535 = +101)
    -> 400 (+300): total 936. Without a modulus a drop is a reset: 65,535 -> 100 counts +100,
    so the same series gives 535 + 100 + 300 = 935.
    Rejects are counted instead of good parts: reject 0 -> 36, so good = 936 - 36 = 900."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T06:00:00+01:00,plc,count16,65000,
        2026-03-02T06:00:00+01:00,plc,reject,0,
        2026-03-02T07:00:00+01:00,plc,count16,65535,
        2026-03-02T08:00:00+01:00,plc,count16,100,
        2026-03-02T09:00:00+01:00,plc,count16,400,
        2026-03-02T09:00:00+01:00,plc,reject,36,
    """
    wrap = machine(SHIFT_0614, counters="{total: plc.count16, reject: plc.reject, modulus: 65536}")
    [shift] = final(run(tmp_path, wrap, csv, "2026-03-02T14:00:00+01:00"), "shift")
    assert (shift["total_count"], shift["reject_count"], shift["good_count"]) == (936, 36, 900)
    assert shift["quality"] == approx(900 / 936)
    reset = machine(SHIFT_0614, counters="{total: plc.count16, reject: plc.reject}")
    [shift] = final(run(tmp_path, reset, csv, "2026-03-02T14:00:00+01:00"), "shift")
    assert shift["total_count"] == 935


def test_micro_stops_count_as_run_time(tmp_path: Path) -> None:
    """micro_stop_s = 120. Stops: 06:10:00-06:11:30 idle (90 s: micro), 06:20:00-06:21:59 down
    (119 s: micro), 06:30:00-06:32:00 down (120 s: not micro, one failure), 06:40:00-06:45:00 idle
    (300 s: idle). Shift 06:00-14:00, no breaks: PBT 28,800 s.
    run = 28,800 - 120 - 300 = 28,380 (the 209 s of micro-stops included); down 120; idle 300.
    A = 28,380 / 28,800 = 0.98542. micro_stops = 2, small stops = 209 s. Failures 1,
    MTBF = 28,380 s, MTTR = 120 s. The 06:00 hour holds all of it: PBT 3,600, run 3,180."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T06:10:00+01:00,plc,running,false,
        2026-03-02T06:11:30+01:00,plc,running,true,
        2026-03-02T06:20:00+01:00,plc,fault,1,
        2026-03-02T06:21:59+01:00,plc,fault,0,
        2026-03-02T06:30:00+01:00,plc,fault,1,
        2026-03-02T06:32:00+01:00,plc,fault,0,
        2026-03-02T06:40:00+01:00,plc,running,false,
        2026-03-02T06:45:00+01:00,plc,running,true,
    """
    records = run(
        tmp_path,
        machine(SHIFT_0614, counters="{total: plc.total, good: plc.good}"),
        csv,
        "2026-03-02T14:00:00+01:00",
    )
    [shift] = final(records, "shift")
    assert shift["run_time_s"] == approx(28380)
    assert (shift["down_time_s"], shift["idle_time_s"]) == (approx(120), approx(300))
    assert shift["availability"] == approx(28380 / 28800)
    assert (shift["micro_stops"], shift["six_big_losses_s"]["small_stops"]) == (2, approx(209))
    assert (shift["failures"], shift["mtbf_s"], shift["mttr_s"]) == (1, approx(28380), approx(120))
    assert shift["performance"] is None and shift["quality"] is None  # no counts, no ratio
    first_hour = final(records, "hour")[0]
    assert (first_hour["planned_busy_time_s"], first_hour["run_time_s"]) == (
        approx(3600),
        approx(3180),
    )
    downtime = [(d["state"], d["duration_s"]) for d in records if d["kind"] == "downtime"]
    assert downtime == [("down", 120.0), ("idle", 300.0)]  # micro-stops are not downtime events


def test_stop_across_the_end_of_a_window_waits_for_its_length(tmp_path: Path) -> None:
    """An idle stop 06:59:00-07:01:00 straddles the end of the 06:00 hour and is 120 s long: not a
    micro-stop. The 06:00 hour is published final at 07:01:00 (not 07:00), with idle 60 s and run
    3,540 s; the 07:00 hour gets the other 60 s idle. A 60 s stop 07:59:30-08:00:30 is micro:
    the 07:00 hour closes at 08:00:30 with run 3,540 + 60 = 3,600 - 60 (its first minute idle)."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T06:59:00+01:00,plc,running,false,
        2026-03-02T07:01:00+01:00,plc,running,true,
        2026-03-02T07:59:30+01:00,plc,running,false,
        2026-03-02T08:00:30+01:00,plc,running,true,
    """
    hours = final(run(tmp_path, machine(SHIFT_0614), csv, "2026-03-02T09:00:00+01:00"), "hour")
    assert [(h["ts"], h["idle_time_s"], h["run_time_s"]) for h in hours[:2]] == [
        ("2026-03-02T06:01:00.000Z", approx(60), approx(3540)),
        ("2026-03-02T07:00:30.000Z", approx(60), approx(3540)),
    ]
    assert hours[1]["micro_stops"] == 1


def test_communication_loss_is_unknown_time_and_an_availability_loss(tmp_path: Path) -> None:
    """Running all shift, but the link is lost 09:00-09:30 (bad quality) -> 1,800 s unknown.
    PBT 28,800; run 27,000; A = 27,000 / 28,800 = 0.9375; no failure is invented."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T09:00:00+01:00,plc,running,,bad
        2026-03-02T09:30:00+01:00,plc,running,true,
    """
    records = run(tmp_path, machine(SHIFT_0614), csv, "2026-03-02T14:00:00+01:00")
    [shift] = final(records, "shift")
    assert (shift["unknown_time_s"], shift["run_time_s"]) == (approx(1800), approx(27000))
    assert shift["availability"] == approx(0.9375)
    assert shift["failures"] == 0
    states = [r["state"] for r in records if r["kind"] == "state"]
    assert states == ["running", "unknown", "running"]


def test_night_shift_across_both_dst_changes(tmp_path: Path) -> None:
    """Night shift 22:00-06:00 Europe/Berlin with a break 02:00-02:30.
    29 March 2026, 02:00 CET -> 03:00 CEST: the night of 28/29 March lasts 7 real hours. The break
    at 02:00 does not exist that night; 02:00 read in winter time is 03:00 CEST, so the break is
    03:00-03:30 CEST: PBT = 7 h - 30 min = 23,400 s.
    25 October 2026, 03:00 CEST -> 02:00 CET: the night of 24/25 October lasts 9 real hours; the
    break is at the first 02:00 (CEST): PBT = 9 h - 30 min = 30,600 s.
    The machine runs throughout, so run = PBT and A = 1 both nights."""
    calendar = """    timezone: Europe/Berlin
    shifts:
      - name: night
        start: "22:00"
        end: "06:00"
        breaks: [{start: "02:00", end: "02:30"}]"""
    csv = """
        2026-03-28T22:00:00+01:00,plc,running,true,
        2026-03-28T22:00:00+01:00,plc,fault,0,
    """
    [spring] = final(run(tmp_path, machine(calendar), csv, "2026-03-29T06:00:00+02:00"), "shift")
    assert (spring["start"], spring["end"]) == (
        "2026-03-28T21:00:00.000Z",
        "2026-03-29T04:00:00.000Z",
    )
    assert spring["planned_busy_time_s"] == approx(23400)
    assert spring["run_time_s"] == approx(23400) and spring["availability"] == approx(1.0)
    csv = csv.replace("2026-03-28T22:00:00+01:00", "2026-10-24T22:00:00+02:00")
    [autumn] = final(run(tmp_path, machine(calendar), csv, "2026-10-25T06:00:00+01:00"), "shift")
    assert (autumn["start"], autumn["end"]) == (
        "2026-10-24T20:00:00.000Z",
        "2026-10-25T05:00:00.000Z",
    )
    assert autumn["planned_busy_time_s"] == approx(30600)


def test_shifts_on_selected_weekdays_only(tmp_path: Path) -> None:
    """A Saturday shift (sat only) and a weekday shift (mon-fri) on the same hours, 08:00-12:00
    Asia/Shanghai. Fri 6 to Mon 9 March 2026: Friday and Monday have the weekday shift, Saturday
    the Saturday shift, Sunday none. So four final shift windows: weekday, saturday, weekday
    (Mon) and nothing on Sunday; each 4 h = 14,400 s."""
    calendar = """    timezone: Asia/Shanghai
    shifts:
      - {name: weekday, start: "08:00", end: "12:00", days: [mon, tue, wed, thu, fri]}
      - {name: saturday, start: "08:00", end: "12:00", days: [sat]}"""
    csv = """
        2026-03-06T07:00:00+08:00,plc,running,true,
        2026-03-06T07:00:00+08:00,plc,fault,0,
    """
    shifts = final(run(tmp_path, machine(calendar), csv, "2026-03-09T13:00:00+08:00"), "shift")
    assert [(s["shift"], s["start"]) for s in shifts] == [
        ("weekday", "2026-03-06T00:00:00.000Z"),
        ("saturday", "2026-03-07T00:00:00.000Z"),
        ("weekday", "2026-03-09T00:00:00.000Z"),
    ]
    assert all(s["planned_busy_time_s"] == approx(14400) for s in shifts)


def test_breaks_at_the_start_and_end_of_a_shift(tmp_path: Path) -> None:
    """Shift 06:00-14:00 with breaks 06:00-06:15 (start-up meeting) and 13:45-14:00 (cleaning).
    PBT = 480 - 30 = 450 min = 27,000 s. The machine is idle until 06:15, runs until 13:45 and
    stops for cleaning: the idle time lies inside breaks, so none of it is a loss: A = 1.
    Its state in the breaks is planned, with the break's name as reason."""
    calendar = """    timezone: Europe/Berlin
    shifts:
      - name: early
        start: "06:00"
        end: "14:00"
        breaks: [{start: "06:00", end: "06:15", name: meeting}, {start: "13:45", end: "14:00", name: cleaning}]"""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,false,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T06:15:00+01:00,plc,running,true,
        2026-03-02T13:45:00+01:00,plc,running,false,
    """
    records = run(tmp_path, machine(calendar), csv, "2026-03-02T14:00:00+01:00")
    [shift] = final(records, "shift")
    assert shift["planned_busy_time_s"] == approx(27000)
    assert (shift["run_time_s"], shift["idle_time_s"], shift["availability"]) == (
        approx(27000),
        0,
        approx(1.0),
    )
    states = [(r["state"], r["reason"]) for r in records if r["kind"] == "state"]
    assert states[:3] == [("planned", "meeting"), ("running", None), ("planned", "cleaning")]


def test_setup_down_time_is_not_a_failure(tmp_path: Path) -> None:
    """Down 07:00-07:30 on code 2 (Die change, category setup) and 09:00-09:10 on code 1 (Die jam).
    Down time 2,400 s of which setup 1,800 s and breakdowns 600 s; failures = 1 (setup is not a
    failure); MTTR = 600 / 1 = 600 s; run = 28,800 - 2,400 = 26,400 = MTBF."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T07:00:00+01:00,plc,fault,2,
        2026-03-02T07:30:00+01:00,plc,fault,0,
        2026-03-02T09:00:00+01:00,plc,fault,1,
        2026-03-02T09:10:00+01:00,plc,fault,0,
    """
    [shift] = final(run(tmp_path, machine(SHIFT_0614), csv, "2026-03-02T14:00:00+01:00"), "shift")
    assert shift["down_time_s"] == approx(2400)
    assert shift["six_big_losses_s"]["setup_adjustments"] == approx(1800)
    assert shift["six_big_losses_s"]["breakdowns"] == approx(600)
    assert (shift["failures"], shift["mttr_s"], shift["mtbf_s"]) == (1, approx(600), approx(26400))
    assert shift["losses_by_reason_s"] == {"Die change": approx(1800), "Die jam": approx(600)}


def test_performance_above_one_is_reported_and_flagged(tmp_path: Path) -> None:
    """Ideal cycle 1.0 s but 36,000 parts in 8 h of running (0.8 s each): P = 36,000 / 28,800 = 1.25,
    reported as is and flagged, never clamped."""
    csv = """
        2026-03-02T06:00:00+01:00,plc,running,true,
        2026-03-02T06:00:00+01:00,plc,fault,0,
        2026-03-02T06:00:00+01:00,plc,total,0,
        2026-03-02T06:00:00+01:00,plc,good,0,
        2026-03-02T13:59:59+01:00,plc,total,36000,
        2026-03-02T13:59:59+01:00,plc,good,36000,
    """
    [shift] = final(run(tmp_path, machine(SHIFT_0614), csv, "2026-03-02T14:00:00+01:00"), "shift")
    assert shift["performance"] == approx(1.25)
    assert "ideal_cycle_time_s" in shift["warning"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "2026-03-02T06:00:00+01:00,plx,running,true,",
            "samples.csv:3: unknown device 'plx'; did you mean 'plc'?",
        ),
        (
            "2026-03-02T06:00:00+01:00,plc,runing,true,",
            "samples.csv:3: unknown tag of plc 'runing'; did you mean 'running'?",
        ),
        (
            "2026-03-02T06:00:00,plc,running,true,",
            "samples.csv:3: ts '2026-03-02T06:00:00' is not an ISO 8601 time: no UTC offset",
        ),
        (
            "2026-03-02T06:00:00Z,plc,running,true,maybe",
            "samples.csv:3: quality 'maybe' is not good, bad or uncertain",
        ),
    ],
)
def test_replay_errors_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    samples = tmp_path / "samples.csv"
    samples.write_text(f"ts,device,tag,value,quality\n2026-03-02T06:00:00Z,plc,fault,0,\n{row}\n")
    config_file = tmp_path / "config.yaml"
    config_file.write_text("agent: {id: t}\n" + DEVICE)
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "replay", str(config_file), "--input", str(samples)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
