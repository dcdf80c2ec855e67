"""`edge-agent replay`: the compute core over recorded samples, no drivers and no sinks.

Integrators test a configuration on a day of recorded data before going live; the records are the
ones the live agent would publish for the same samples.

The file is CSV in UTF-8 with the header ts,device,tag,value and an optional quality column (good,
bad, uncertain); other columns are ignored. ts is ISO 8601 with a UTC offset, in the years 1970 to
2099. A value holds until the next sample of the same tag; consecutive rows of one device and
instant form one poll.

Time order: samples are replayed in time order, the rows of one instant in file order. The file
may consist of up to 64 stretches each in time order, such as exports of one tag each pasted one
after the other: they are merged while reading. A file more out of order than that is refused,
naming its first row out of order: sort it first. Input from a pipe is read once, so it must be in
time order.

Bad values: an empty value, and a number that is not finite (nan, inf, -inf, Infinity, 1e999), is a
sample of quality bad without a value, as NaN and infinities are everywhere in the agent.

Everything else wrong with the file is a `ReplayError` naming file and line, raised by
`iter_batches` before it returns (a first pass checks every row): a stray quote, a field over 4096
characters, a line over 64 KiB, bytes that are not UTF-8, an unknown device or tag, text in a
numeric tag, a ts without an offset or outside 1970 to 2099.

Memory does not grow with the file: both passes read it row by row, and the batches reach the
engine as they are made.
"""

from __future__ import annotations

__all__ = ["ReplayCounts", "ReplayError", "checked_ts_ns", "iso_to_ns", "iter_batches", "replay"]

import contextlib
import csv
import difflib
import heapq
import json
import math
import shlex
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, NamedTuple

from drivers import plugin
from drivers.plugin import TEXT_TYPES
from edge_agent import strict_json
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.errors import EdgeAgentError
from edge_agent.records import Record
from edge_agent.samples import Quality, SampleBatch, Value
from edge_agent.timefmt import iso_utc

_REQUIRED = ("ts", "device", "tag", "value")
_FORMAT = "expected ts,device,tag,value[,quality]"
# Real rows are under 200 characters. The limits keep a broken file (an unclosed quote, a binary
# file, a column of megabyte strings) from growing memory before it is reported.
_MAX_FIELD_CHARS = 4096
_MAX_LINE_BYTES = 65536  # read at most this much of a line: a file without newlines stays bounded
_MAX_COLUMNS = 64
# Stretches in time order merged while reading; each costs an open file and a row in memory.
_MAX_RUNS = 64
_END_NS = 4_102_444_800 * 1_000_000_000  # 2100-01-01T00:00:00Z; the start is the epoch, 0
_DIGITS_TO_0 = str.maketrans("123456789", "000000000")


class ReplayError(EdgeAgentError):
    """A sample file that cannot be replayed; the message names file and line."""


class ReplayCounts(NamedTuple):
    batches: int
    records: int


class _Columns(NamedTuple):
    ts: int
    device: int
    tag: int
    value: int
    quality: int | None
    needed: int  # fields a row needs: up to the last required column
    width: int  # fields in the header: a row may not have more


class _Tags(NamedTuple):
    known: dict[str, set[str]]  # device -> its tags
    pairs: set[tuple[str, str]]  # (device, tag) of every known tag: one lookup per row
    numeric: dict[tuple[str, str], str]  # (device, tag) -> why its value must not be text


class _Layout(NamedTuple):
    """What every reader of one file needs to check its rows."""

    path: Path
    columns: _Columns
    tags: _Tags


class _Sample(NamedTuple):
    line: int
    offset: int  # of the row's first byte in the file
    ts_text: str
    ts_ns: int
    device: str
    tag: str
    value: Value
    quality: Quality


class _Run(NamedTuple):
    """A stretch of rows in time order, by where its first row starts."""

    offset: int
    line: int


def iso_to_ns(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("no UTC offset (write e.g. 2026-03-02T06:00:00+01:00 or ...Z)")
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def checked_ts_ns(text: str) -> int:
    """`iso_to_ns` of a time in 1970 to 2099; the ValueError reads on after the quoted text."""
    try:
        ts_ns = iso_to_ns(text)
    except ValueError as exc:
        raise ValueError(f"is not an ISO 8601 time: {exc}") from None
    if not 0 <= ts_ns < _END_NS:
        raise ValueError("is outside the years 1970 to 2099; is the year right?")
    return ts_ns


def iter_batches(path: Path, config: AgentFile) -> Generator[SampleBatch, None, None]:
    """Every sample, checked against the configuration, grouped per device and instant, in time order.

    The whole file is checked before this returns, so a ReplayError comes before the first record;
    only input from a pipe, which can be read once, is checked as it is replayed.
    """
    tags = _tags(config)
    handle = _open(path)
    if not handle.seekable():
        return _grouped(_in_order(path, tags, handle))
    with handle:
        rows = _CsvRows(path, handle)
        layout = _Layout(path, _header(rows), tags)
        runs = _runs(layout, rows)
    return _grouped(_merged(layout, runs))


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None


def _runs(layout: _Layout, rows: _CsvRows) -> list[_Run]:
    """The first pass: check every row and find where each stretch in time order starts."""
    runs: list[_Run] = []
    first: tuple[_Sample, _Sample] | None = None  # the first row out of order and the one before
    previous: _Sample | None = None
    for sample in _samples(layout, rows):
        if previous is not None and sample.ts_ns < previous.ts_ns:
            first = first or (previous, sample)
            if len(runs) == _MAX_RUNS:
                raise ReplayError(_too_disordered(layout.path, *first, sample.line))
        if previous is None or sample.ts_ns < previous.ts_ns:
            runs.append(_Run(sample.offset, sample.line))
        previous = sample
    return runs


def _merged(layout: _Layout, runs: list[_Run]) -> Iterator[_Sample]:
    """The second pass: the stretches read side by side, in the order a sort by (ts, line) gives."""
    if not runs:
        return  # a header and no rows
    with contextlib.ExitStack() as stack:
        streams: list[Iterator[_Sample]] = []
        for run, following in zip(runs, [*runs[1:], None], strict=True):
            handle = stack.enter_context(_open(layout.path))
            handle.seek(run.offset)
            rows = _CsvRows(layout.path, handle, run.line - 1, run.offset)
            streams.append(_samples(layout, rows, following.line if following else None))
        if len(streams) == 1:
            yield from streams[0]  # a file in time order: no merge to pay for
        else:
            yield from heapq.merge(*streams, key=attrgetter("ts_ns", "line"))


def _in_order(path: Path, tags: _Tags, handle: IO[bytes]) -> Iterator[_Sample]:
    """One pass over input that cannot be read twice (a pipe): its rows must be in time order."""
    with handle:
        rows = _CsvRows(path, handle)
        previous: _Sample | None = None
        for sample in _samples(_Layout(path, _header(rows), tags), rows):
            if previous is not None and sample.ts_ns < previous.ts_ns:
                raise ReplayError(
                    f"{_out_of_order(path, previous, sample)}; input from a pipe is read once, so "
                    "it must be in time order (the rows before were replayed): replay a file instead"
                )
            previous = sample
            yield sample


def _grouped(samples: Iterable[_Sample]) -> Generator[SampleBatch, None, None]:
    batch: SampleBatch | None = None
    for sample in samples:
        if batch is None or batch.ts_ns != sample.ts_ns or batch.device != sample.device:
            if batch is not None:
                yield batch
            batch = SampleBatch(sample.device, sample.ts_ns, {}, {})
        batch.values[sample.tag] = sample.value
        if sample.quality is Quality.GOOD:
            batch.quality.pop(sample.tag, None)  # the later row of a tag in one poll wins
        else:
            batch.quality[sample.tag] = sample.quality
    if batch is not None:
        yield batch


class _CsvRows:
    """A file's CSV rows from a given row on, each with the line and byte offset it starts at."""

    def __init__(self, path: Path, handle: IO[bytes], line: int = 0, offset: int = 0) -> None:
        self.path = path
        self.line = line  # lines read so far
        self.offset = offset  # bytes read so far
        self._handle = handle
        self._reader = csv.reader(self._lines(), strict=True)

    def next(self) -> tuple[int, int, list[str]] | None:
        """The next row, the line and offset it starts at; None at the end of the file."""
        line, offset = self.line + 1, self.offset  # the reader never reads past the row it makes
        try:
            return line, offset, next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            runs_on = f" (the row runs on to line {self.line}: a quote never closed?)"
            raise ReplayError(
                f"{self.path}:{line}: not valid CSV: {exc}{runs_on if self.line > line else ''}"
            ) from None

    def _lines(self) -> Iterator[str]:
        """The lines, decoded one at a time so that a bad byte is reported on its own line."""
        while raw := self._handle.readline(_MAX_LINE_BYTES + 1):
            self.line += 1
            self.offset += len(raw)
            if len(raw) > _MAX_LINE_BYTES:
                raise ReplayError(
                    f"{self.path}:{self.line}: line longer than {_MAX_LINE_BYTES} bytes; "
                    "is this a CSV of samples?"
                )
            if b"\x00" in raw:
                raise ReplayError(
                    f"{self.path}:{self.line}: a NUL byte; is this a UTF-16 or a binary file? "
                    "save it as CSV in UTF-8"
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ReplayError(
                    f"{self.path}:{self.line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line); save the file as UTF-8"
                ) from None
            yield text.removeprefix("\ufeff") if self.line == 1 else text  # some editors' BOM


def _header(rows: _CsvRows) -> _Columns:
    row = rows.next()
    if row is None:
        raise ReplayError(f"{rows.path}: the file is empty; {_FORMAT} as its first line")
    header = row[2]
    if len(header) > _MAX_COLUMNS:
        raise ReplayError(
            f"{rows.path}:1: {len(header)} columns, at most {_MAX_COLUMNS}; {_FORMAT}"
        )
    names = [name.strip() for name in header]
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise ReplayError(f"{rows.path}:1: missing column(s) {', '.join(missing)}; {_FORMAT}")
    quality = names.index("quality") if "quality" in names else None
    ts, device, tag, value = (names.index(c) for c in _REQUIRED)
    return _Columns(ts, device, tag, value, quality, max(ts, device, tag, value) + 1, len(names))


def _tags(config: AgentFile) -> _Tags:
    known = {name: set(device.tags) for name, device in config.devices.items()}
    numeric: dict[tuple[str, str], str] = {}
    for name, device in config.devices.items():
        for tag, tag_config in device.tags.items():
            # Most drivers declare a tag's type; an OPC UA tag takes what the server sends.
            declared = plugin(device.driver).tag_type(tag_config)
            if declared is not None and declared not in TEXT_TYPES:
                numeric[(name, tag)] = f"a {declared} tag"
    for machine_name, machine in config.machines.items():
        for role in ("total", "good", "reject") if machine.counters else ():
            ref = getattr(machine.counters, role)
            if ref is not None:
                device, _, tag = ref.partition(".")
                numeric.setdefault((device, tag), f"the {role} counter of {machine_name}")
    pairs = {(device, tag) for device, device_tags in known.items() for tag in device_tags}
    return _Tags(known, pairs, numeric)


def _samples(layout: _Layout, rows: _CsvRows, stop_line: int | None = None) -> Iterator[_Sample]:
    """The checked sample of each row, up to the row starting at stop_line."""
    columns = layout.columns
    last_text, last_ns = "", 0
    while (row := rows.next()) is not None:
        line, offset, fields = row
        if stop_line is not None and line >= stop_line:
            return
        if not fields:
            continue  # a blank line
        if (
            not columns.needed <= len(fields) <= columns.width
            or max(map(len, fields)) > _MAX_FIELD_CHARS
        ):
            raise _bad_shape(layout.path, line, fields, columns)
        ts_text = fields[columns.ts]
        if ts_text != last_text:  # the rows of one poll repeat their ts: parse it once
            last_text, last_ns = ts_text, _ts_ns(layout.path, line, ts_text)
        yield _Sample(line, offset, ts_text, last_ns, *_sample(layout, line, fields))


def _ts_ns(path: Path, line: int, text: str) -> int:
    try:
        return checked_ts_ns(text)
    except ValueError as exc:
        raise ReplayError(f"{path}:{line}: ts {text!r} {exc}") from None


def _bad_shape(path: Path, line: int, fields: list[str], columns: _Columns) -> ReplayError:
    if len(fields) > columns.width:
        return ReplayError(
            f"{path}:{line}: {len(fields)} fields, the header has {columns.width}; "
            'a decimal comma? write 1.5, or quote the value: "1,5"'
        )
    if len(fields) < columns.needed:
        return ReplayError(f"{path}:{line}: {len(fields)} field(s); {_FORMAT}")
    return ReplayError(
        f"{path}:{line}: a field of {max(map(len, fields))} characters; at most {_MAX_FIELD_CHARS}"
    )


def _sample(layout: _Layout, line: int, fields: list[str]) -> tuple[str, str, Value, Quality]:
    """device, tag, value and quality of a row of the right shape."""
    columns, tags = layout.columns, layout.tags
    device, tag = fields[columns.device].strip(), fields[columns.tag].strip()
    if (device, tag) not in tags.pairs:
        raise ReplayError(f"{layout.path}:{line}: {_unknown_tag(device, tag, tags.known)}")
    quality = _quality(layout.path, line, fields, columns)
    value = _value(fields[columns.value])
    if value is None or quality is Quality.BAD:
        return device, tag, None, Quality.BAD  # a bad sample's value is never looked at
    if isinstance(value, str) and (device, tag) in tags.numeric:
        raise ReplayError(
            f"{layout.path}:{line}: value {value!r} is not a number, and {device}.{tag} is "
            f"{tags.numeric[(device, tag)]}"
        )
    return device, tag, value, quality


def _quality(path: Path, line: int, fields: list[str], columns: _Columns) -> Quality:
    given = ""
    if columns.quality is not None and columns.quality < len(fields):
        given = fields[columns.quality].strip().lower()
    if given in ("", "good"):
        return Quality.GOOD
    try:
        return Quality(given)
    except ValueError:
        raise ReplayError(
            f"{path}:{line}: quality {given!r} is not good, bad or uncertain"
        ) from None


def _value(text: str) -> Value:
    """The sample's value; None for an empty value and for a number that is not finite."""
    text = text.strip()
    if text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        # An integer too large for a float would break every figure computed from it.
        return number if abs(number) < 2**1023 else None
    try:
        real = float(text)
    except ValueError:
        return text
    return real if math.isfinite(real) else None


def _out_of_order(path: Path, previous: _Sample, sample: _Sample) -> str:
    return (
        f"{path}:{sample.line}: ts {sample.ts_text!r} is earlier than line {previous.line}'s "
        f"{previous.ts_text!r}"
    )


def _too_disordered(path: Path, previous: _Sample, sample: _Sample, last_line: int) -> str:
    message = (
        f"{_out_of_order(path, previous, sample)}, and the file has more than {_MAX_RUNS} "
        f"stretches in time order (the {_MAX_RUNS + 1}th from line {last_line}), more than replay "
        "merges: sort the file by time first"
    )
    if _sortable_as_text(sample.ts_text, previous.ts_text):
        name = shlex.quote(str(path))
        return (
            f"{message}, e.g. (head -n 1 {name} && tail -n +2 {name} | LC_ALL=C sort -s -t, -k1,1)"
            " > sorted.csv (right when every ts has the same UTC offset and layout)"
        )
    # '...T06:00:00+02:00' sorts after '...T05:30:00+00:00' as text but is earlier in time.
    return (
        f"{message}; these two differ in UTC offset or layout, so a text sort would get it wrong: "
        "write every ts in UTC the same way (e.g. 2026-03-02T05:00:00.000Z), then sort"
    )


def _sortable_as_text(a: str, b: str) -> bool:
    """Whether sorting lines as text orders these times: same layout of digits, same offset."""
    a, b = a.strip(), b.strip()
    same_layout = a.translate(_DIGITS_TO_0) == b.translate(_DIGITS_TO_0)
    return (
        same_layout
        and datetime.fromisoformat(a).utcoffset() == datetime.fromisoformat(b).utcoffset()
    )


def _unknown_tag(device: str, tag: str, known: dict[str, set[str]]) -> str:
    if device not in known:
        return _unknown("device", device, known)
    return _unknown(f"tag of {device}", tag, known[device])


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"unknown {what} {name!r}" + (f"; did you mean {guess[0]!r}?" if guess else "")


def replay(
    config: AgentFile,
    batches: Iterable[SampleBatch],
    out: IO[str],
    *,
    until_ns: int | None = None,
    state_file: Path | None = None,
) -> ReplayCounts:
    """Run the engine over the batches as they come, write JSON Lines; returns what it did."""
    engine = ComputeEngine(config)
    if state_file is not None and state_file.exists():
        try:
            engine.restore(strict_json.loads(state_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ReplayError(f"{state_file}: not a state file of this version: {exc}") from None
    replayed = written = 0
    for batch in batches:
        if until_ns is not None and batch.ts_ns > until_ns:
            break
        written += _write(out, engine.ingest(batch))
        replayed += 1
    if until_ns is not None:
        written += _write(out, engine.advance(until_ns))
    if state_file is not None:
        state_file.write_text(strict_json.dumps(engine.to_state()), encoding="utf-8")
    return ReplayCounts(replayed, written)


def record_line(record: Record) -> str:
    return json.dumps(
        {"kind": record.kind, "ts": iso_utc(record.ts_ns), **record.body},
        ensure_ascii=False,
        allow_nan=False,
    )


def _write(out: IO[str], records: list[Record]) -> int:
    for record in records:
        out.write(record_line(record) + "\n")
    return len(records)
