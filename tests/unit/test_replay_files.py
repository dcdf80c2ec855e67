"""`edge-agent replay` on real files: malformed, unsorted and large ones.

Every broken file ends in a ReplayError naming file and line (the CLI prints it as `error: …`,
exit 1), never in a traceback; a file of a million lines replays in bounded memory.
"""

from __future__ import annotations

import contextlib
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import load_config
from edge_agent.config_models import AgentFile
from edge_agent.replay import ReplayError, iter_batches
from edge_agent.samples import Quality, SampleBatch

ROOT = Path(__file__).resolve().parents[2]
WORKED_EXAMPLE = ROOT / "tests" / "cases" / "oee" / "worked_example" / "config.yaml"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
S = 1_000_000_000
REPLAY = [sys.executable, "-m", "edge_agent", "replay"]
CONFIG = """agent: {id: t}
devices:
  plc:
    driver: modbus
    host: 127.0.0.1
    tags:
      running: {table: coil, address: 0, type: bool}
      total: {table: holding, address: 1, type: uint32}
      label: {table: holding, address: 10, type: string, length: 8}
  oven:
    driver: modbus
    host: 127.0.0.2
    tags:
      temp: {table: input, address: 0, type: float32}
"""


def at(seconds: float, offset_h: int = 0) -> str:
    """T0 + seconds in ISO 8601, written with this UTC offset."""
    zone = timezone(timedelta(hours=offset_h))
    return (T0 + timedelta(seconds=seconds)).astimezone(zone).isoformat()


def ns(seconds: float) -> int:
    return int((T0.timestamp() + seconds) * S)


@pytest.fixture
def config(tmp_path: Path) -> AgentFile:
    (tmp_path / "config.yaml").write_text(CONFIG)
    return load_config(tmp_path / "config.yaml")


def write(tmp_path: Path, rows: list[str], header: str = "ts,device,tag,value,quality") -> Path:
    samples = tmp_path / "samples.csv"
    samples.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return samples


def refused(path: Path, config: AgentFile) -> str:
    with pytest.raises(ReplayError) as caught:
        list(iter_batches(path, config))
    return str(caught.value)


def write_samples(path: Path, lines: int) -> None:
    """`lines` rows for the worked example's plc: its four tags every second, a 5 min stop an hour."""
    start = datetime(2026, 3, 2, 6, 0, tzinfo=timezone(timedelta(hours=1)))  # a shift start
    total = good = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("ts,device,tag,value\n")
        for second in range(lines // 4):
            ts = (start + timedelta(seconds=second)).isoformat()
            fault = 1 if second % 3600 < 300 else 0
            total += 1 - fault
            good += 0 if fault or second % 50 == 0 else 1
            out.write(
                f"{ts},plc,running,{'false' if fault else 'true'}\n{ts},plc,fault,{fault}\n"
                f"{ts},plc,total,{total}\n{ts},plc,good,{good}\n"
            )


# ------------------------------------------------------------------------- malformed files


GOOD_ROW = f"{at(0)},plc,running,true,"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param(f'{at(1)},plc,running,"tr"ue,', "not valid CSV", id="stray quote"),
        pytest.param(f"{at(1)},plc,label,{'x' * 5000},", "a field of 5000 characters", id="long"),
        pytest.param(f"{at(1)},oven,temp,1,5,good", "6 fields, the header has 5", id="comma"),
        pytest.param(f"{at(1)},plc,running", "3 field(s); expected ts,device", id="short row"),
        pytest.param(f"{at(1)},plc,total,abc,", "'abc' is not a number", id="text in uint32"),
        pytest.param("1969-12-31T23:59:59Z,plc,total,1,", "outside the years 1970", id="1969"),
        pytest.param("2100-01-01T00:00:00Z,plc,total,1,", "outside the years 1970", id="2100"),
        pytest.param("2026-03-02T06:00:01,plc,total,1,", "no UTC offset", id="no offset"),
        pytest.param("yesterday,plc,total,1,", "is not an ISO 8601 time", id="not a time"),
        pytest.param(f"{at(1)},plx,total,1,", "unknown device 'plx'; did you mean", id="device"),
        pytest.param(f"{at(1)},plc,totl,1,", "unknown tag of plc 'totl'", id="tag"),
        pytest.param(f"{at(1)},plc,total,1,maybe", "quality 'maybe'", id="quality"),
        pytest.param(f"{at(1)},plc,label,a\x00b,", "a NUL byte; is this a UTF-16", id="NUL"),
    ],
)
def test_a_malformed_row_names_file_and_line(
    tmp_path: Path, config: AgentFile, row: str, message: str
) -> None:
    samples = write(tmp_path, [GOOD_ROW, GOOD_ROW, row, GOOD_ROW])
    error = refused(samples, config)
    assert error.startswith(f"{samples}:4: "), error
    assert message in error


def test_a_quote_never_closed_names_the_line_it_opens_on(tmp_path: Path, config: AgentFile) -> None:
    samples = write(tmp_path, [GOOD_ROW, f'{at(1)},plc,label,"open,', GOOD_ROW, GOOD_ROW])
    error = refused(samples, config)
    assert error.startswith(f"{samples}:3: not valid CSV"), error
    assert "runs on to line 5" in error


def test_a_quote_swallowing_a_large_file_stops_at_the_field_limit(
    tmp_path: Path, config: AgentFile
) -> None:
    samples = write(tmp_path, [GOOD_ROW, f'{at(1)},plc,label,"open,', *[GOOD_ROW] * 5000])
    error = refused(samples, config)
    assert error.startswith(f"{samples}:3: not valid CSV: field larger than field limit"), error


def test_a_line_over_64_kib_is_refused_before_it_is_parsed(
    tmp_path: Path, config: AgentFile
) -> None:
    samples = write(tmp_path, [GOOD_ROW, "," * 100_000, GOOD_ROW])
    assert refused(samples, config).startswith(f"{samples}:3: line longer than 65536 bytes")


def test_a_header_of_too_many_columns_is_refused(tmp_path: Path, config: AgentFile) -> None:
    header = "ts,device,tag,value," + ",".join(f"c{i}" for i in range(70))
    samples = write(tmp_path, [GOOD_ROW], header=header)
    assert refused(samples, config).startswith(f"{samples}:1: 74 columns, at most 64")


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path, config: AgentFile) -> None:
    samples = tmp_path / "latin1.csv"
    rows = ["ts,device,tag,value,quality", GOOD_ROW, GOOD_ROW, f"{at(1)},plc,label,Stör,", GOOD_ROW]
    samples.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    error = refused(samples, config)
    assert error.startswith(f"{samples}:4: not UTF-8 (byte 0xf6"), error


def test_a_utf8_bom_and_windows_line_ends_are_fine(tmp_path: Path, config: AgentFile) -> None:
    samples = tmp_path / "excel.csv"
    rows = ["ts,device,tag,value", f"{at(0)},plc,label,Stör", f"{at(1)},oven,temp,21.5"]
    samples.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8-sig"))
    assert list(iter_batches(samples, config)) == [
        SampleBatch("plc", ns(0), {"label": "Stör"}, {}),
        SampleBatch("oven", ns(1), {"temp": 21.5}, {}),
    ]


def test_an_empty_file_is_refused_and_a_header_alone_replays_nothing(
    tmp_path: Path, config: AgentFile
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert refused(empty, config) == (
        f"{empty}: the file is empty; expected ts,device,tag,value[,quality] as its first line"
    )
    assert list(iter_batches(write(tmp_path, []), config)) == []


def test_a_missing_file_is_refused(tmp_path: Path, config: AgentFile) -> None:
    assert refused(tmp_path / "nope.csv", config).startswith(
        f"{tmp_path / 'nope.csv'}: cannot read"
    )


# ------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "text", ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "9" * 400]
)
def test_a_value_that_is_not_finite_is_a_bad_sample(
    tmp_path: Path, config: AgentFile, text: str
) -> None:
    samples = write(tmp_path, [f"{at(0)},oven,temp,{text},good"])
    assert list(iter_batches(samples, config)) == [
        SampleBatch("oven", ns(0), {"temp": None}, {"temp": Quality.BAD})
    ]


def test_values_and_qualities(tmp_path: Path, config: AgentFile) -> None:
    samples = write(
        tmp_path,
        [
            f"{at(0)},oven,temp,1e308,",
            f"{at(1)},oven,temp,20.5,uncertain",
            f"{at(2)},oven,temp,,good",  # empty: bad, whatever the column says
            f"{at(3)},oven,temp,abc,bad",  # a bad sample's value is not looked at
            f"{at(4)},plc,label,abc,",  # text in a string tag is a value
        ],
    )
    assert list(iter_batches(samples, config)) == [
        SampleBatch("oven", ns(0), {"temp": 1e308}, {}),
        SampleBatch("oven", ns(1), {"temp": 20.5}, {"temp": Quality.UNCERTAIN}),
        SampleBatch("oven", ns(2), {"temp": None}, {"temp": Quality.BAD}),
        SampleBatch("oven", ns(3), {"temp": None}, {"temp": Quality.BAD}),
        SampleBatch("plc", ns(4), {"label": "abc"}, {}),
    ]


def test_the_years_1970_to_2099_are_accepted(tmp_path: Path, config: AgentFile) -> None:
    samples = write(
        tmp_path, ["1970-01-01T00:00:00Z,plc,total,1,", "2099-12-31T23:59:59Z,plc,total,2,"]
    )
    assert [b.ts_ns for b in iter_batches(samples, config)] == [0, 4_102_444_799 * S]


# ------------------------------------------------------------------------- time order


def test_rows_of_one_instant_group_per_device_in_file_order(
    tmp_path: Path, config: AgentFile
) -> None:
    samples = write(
        tmp_path,
        [
            f"{at(0)},plc,running,true,",
            f"{at(0)},plc,total,5,",
            f"{at(0)},oven,temp,20,",
            f"{at(0)},plc,running,false,bad",
            f"{at(0)},plc,running,true,",  # the later row of a tag wins, its quality too
        ],
    )
    assert list(iter_batches(samples, config)) == [
        SampleBatch("plc", ns(0), {"running": True, "total": 5}, {}),
        SampleBatch("oven", ns(0), {"temp": 20}, {}),
        SampleBatch("plc", ns(0), {"running": True}, {}),
    ]


def test_stretches_in_time_order_are_merged_as_a_sort_would(
    tmp_path: Path, config: AgentFile
) -> None:
    """One export per tag pasted together: the same batches as the file sorted by time (stable)."""
    per_tag = [
        [f"{at(t)},plc,running,{t % 2 == 0}," for t in range(0, 60, 3)],
        [f"{at(t)},plc,total,{t}," for t in range(0, 60, 2)],
        [f"{at(t, offset_h=2)},oven,temp,{t / 2}," for t in range(0, 60, 5)],  # other offset
    ]
    pasted = [row for rows in per_tag for row in rows]
    by_time = sorted(pasted, key=lambda row: datetime.fromisoformat(row.split(",")[0]))
    merged = list(iter_batches(write(tmp_path, pasted), config))
    (tmp_path / "sorted").mkdir()
    assert merged == list(iter_batches(write(tmp_path / "sorted", by_time), config))
    assert merged[0] == SampleBatch("plc", ns(0), {"running": True, "total": 0}, {})
    assert [b.ts_ns for b in merged] == sorted(b.ts_ns for b in merged)


def shuffled(rows: int, offset_h: int = 0) -> list[str]:
    lines = [f"{at(t, offset_h)},plc,total,{t}," for t in range(rows)]
    random.Random(7).shuffle(lines)
    return lines


def test_a_shuffled_file_is_refused_with_its_first_row_out_of_order(
    tmp_path: Path, config: AgentFile
) -> None:
    rows = shuffled(500)
    first = next(i for i in range(1, len(rows)) if rows[i] < rows[i - 1])  # same offset: text order
    samples = write(tmp_path, rows)
    error = refused(samples, config)
    line = first + 2  # the header is line 1
    assert error.startswith(
        f"{samples}:{line}: ts {rows[first].split(',')[0]!r} is earlier than line {line - 1}'s "
        f"{rows[first - 1].split(',')[0]!r}, and the file has more than 64 stretches in time order"
    ), error

    # The command it suggests sorts such a file (same offset, same layout) into one that replays.
    command = re.search(r"e\.g\. (.*> sorted\.csv)", error)
    assert command is not None, error
    subprocess.run(["bash", "-c", command.group(1)], cwd=tmp_path, check=True)
    batches = list(iter_batches(tmp_path / "sorted.csv", config))
    assert [b.values["total"] for b in batches] == list(range(500))


def test_mixed_offsets_get_no_text_sort_command(tmp_path: Path, config: AgentFile) -> None:
    rows = [row if i % 2 else row.replace("+00:00", "Z") for i, row in enumerate(shuffled(300))]
    error = refused(write(tmp_path, rows), config)
    assert "differ in UTC offset or layout, so a text sort would get it wrong" in error
    assert "sort -s" not in error


def test_input_from_a_pipe_must_be_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    command = [*REPLAY, str(tmp_path / "config.yaml")]
    rows = f"ts,device,tag,value\n{at(5)},plc,total,1\n{at(6)},plc,total,2\n{at(1)},plc,total,3\n"
    proc = subprocess.run(
        [*command, "--input", "/dev/stdin"], input=rows, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "/dev/stdin:4: ts " in proc.stderr and "earlier than line 3's" in proc.stderr
    assert "from a pipe is read once" in proc.stderr and "Traceback" not in proc.stderr
    in_order = rows.rsplit("\n", 2)[0] + "\n"
    proc = subprocess.run(
        [*command, "--input", "/dev/stdin"], input=in_order, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 sample batch(es) replayed" in proc.stderr


# ------------------------------------------------------------------------- the command


def test_the_command_prints_the_error_with_its_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = write(tmp_path, [f"{at(0)},plc,running,true,", f"{at(1)},plc,good,inf,", "x,y"])
    out = tmp_path / "out.jsonl"
    code = main(["replay", str(WORKED_EXAMPLE), "--input", str(samples), "--output", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {samples}:4: 2 field(s); expected ts,device,tag,value"), err
    assert "Traceback" not in err
    assert not out.exists()  # the file is checked before the output is opened


def test_an_until_outside_the_years_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = write(tmp_path, [GOOD_ROW])
    code = main(
        ["replay", str(WORKED_EXAMPLE), "--input", str(samples), "--until", "2200-01-01T00:00:00Z"]
    )
    assert code == 1
    assert capsys.readouterr().err == (
        "error: --until '2200-01-01T00:00:00Z' is outside the years 1970 to 2099; is the year right?\n"
    )


def test_the_command_counts_what_it_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = tmp_path / "samples.csv"
    write_samples(samples, 4 * 7200)  # 2 h: 06:00 to 08:00 +01:00
    out = tmp_path / "out.jsonl"
    code = main(["replay", str(WORKED_EXAMPLE), "--input", str(samples), "--output", str(out)])
    assert code == 0
    written = len(out.read_text().splitlines())
    assert capsys.readouterr().err == (
        f"7200 sample batch(es) replayed, {written} record(s) written\n"
    )
    assert written > 0


def test_a_million_lines_replay_in_bounded_memory(tmp_path: Path) -> None:
    """The whole process stays under 150 MB (it was 440 MB when the file was sorted in memory)."""
    samples, out = tmp_path / "samples.csv", tmp_path / "out.jsonl"
    write_samples(samples, 1_000_000)
    proc = subprocess.Popen(
        [*REPLAY, str(WORKED_EXAMPLE), "--input", str(samples), "--output", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    # The child's own high-water mark, read while it runs. Not its rusage: Linux carries the
    # peak of the process it was forked from (this pytest, hundreds of MB late in a run) over
    # the exec into the child's ru_maxrss.
    peak_kib = 0
    while proc.poll() is None:
        with contextlib.suppress(OSError, IndexError):  # gone, or a zombie without memory
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
        time.sleep(0.1)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    peak_mb = peak_kib / 1024
    assert 10 < peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    records = len(out.read_text().splitlines())
    assert stderr == f"250000 sample batch(es) replayed, {records} record(s) written\n"
    # 69.4 h: 1 min running figures of the open shift and the open hour while a shift runs,
    # hourly closures and two state changes an hour.
    assert 2000 < records < 5000
