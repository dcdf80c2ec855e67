"""`edge-agent replay`: the compute core over recorded samples, no drivers and no sinks.

Integrators test a configuration on a day of recorded data before going live; the records are the
ones the live agent would publish for the same samples. CSV columns: ts,device,tag,value and an
optional quality (good, bad, uncertain). ts is ISO 8601 with an offset; a value holds until the
next sample of the same tag.
"""

from __future__ import annotations

__all__ = ["ReplayError", "iso_to_ns", "read_batches", "replay"]

import csv
import difflib
import json
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.errors import EdgeAgentError
from edge_agent.outbox import Record
from edge_agent.samples import Quality, SampleBatch, Value
from edge_agent.timefmt import iso_utc

_REQUIRED = ("ts", "device", "tag", "value")


class ReplayError(EdgeAgentError):
    """A sample file that cannot be replayed; the message names file and line."""


def iso_to_ns(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("no UTC offset (write e.g. 2026-03-02T06:00:00+01:00 or ...Z)")
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def read_batches(path: Path, config: AgentFile) -> list[SampleBatch]:
    """Every sample, checked against the configuration, grouped per device and instant, in time order."""
    rows: list[tuple[int, int, str, str, Value, Quality]] = []
    known = {d: set(device.tags) for d, device in config.devices.items()}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ReplayError(
                f"{path}:1: missing column(s) {', '.join(missing)}; expected ts,device,tag,value[,quality]"
            )
        for row in reader:
            line = reader.line_num
            rows.append((*_parse_row(path, line, row, known), line))  # type: ignore[arg-type]
    rows.sort(key=lambda r: (r[0], r[-1]))  # by time; rows of one instant stay in file order
    batches: list[SampleBatch] = []
    for ts_ns, device, tag, value, quality, _line in rows:
        last = batches[-1] if batches else None
        if last is None or last.ts_ns != ts_ns or last.device != device:
            last = SampleBatch(device, ts_ns, {}, {})
            batches.append(last)
        last.values[tag] = value
        if quality is not Quality.GOOD:
            last.quality[tag] = quality
    return batches


def _parse_row(
    path: Path, line: int, row: dict[str, Any], known: dict[str, set[str]]
) -> tuple[int, str, str, Value, Quality]:
    where = f"{path}:{line}"
    try:
        ts_ns = iso_to_ns(row["ts"] or "")
    except ValueError as exc:
        raise ReplayError(f"{where}: ts {row['ts']!r} is not an ISO 8601 time: {exc}") from None
    device, tag = (row["device"] or "").strip(), (row["tag"] or "").strip()
    if device not in known:
        raise ReplayError(f"{where}: {_unknown('device', device, known)}")
    if tag not in known[device]:
        raise ReplayError(f"{where}: {_unknown(f'tag of {device}', tag, known[device])}")
    text = (row.get("quality") or "good").strip().lower()
    try:
        quality = Quality(text)
    except ValueError:
        raise ReplayError(f"{where}: quality {text!r} is not good, bad or uncertain") from None
    value = _value(row["value"])
    if value is None:
        quality = Quality.BAD
    return ts_ns, device, tag, value if quality is not Quality.BAD else None, quality


def _value(text: str | None) -> Value:
    text = (text or "").strip()
    if text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _unknown(what: str, name: str, known: Any) -> str:
    guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"unknown {what} {name!r}" + (f"; did you mean {guess[0]!r}?" if guess else "")


def replay(
    config: AgentFile,
    batches: list[SampleBatch],
    out: IO[str],
    *,
    until_ns: int | None = None,
    state_file: Path | None = None,
) -> int:
    """Run the engine over the batches, write JSON Lines; returns the number of records."""
    engine = ComputeEngine(config)
    if state_file is not None and state_file.exists():
        engine.restore(json.loads(state_file.read_text(encoding="utf-8")))
    written = 0
    for batch in batches:
        if until_ns is not None and batch.ts_ns > until_ns:
            break
        written += _write(out, engine.ingest(batch))
    if until_ns is not None:
        written += _write(out, engine.advance(until_ns))
    if state_file is not None:
        state_file.write_text(json.dumps(engine.to_state()), encoding="utf-8")
    return written


def record_line(record: Record) -> str:
    return json.dumps(
        {"kind": record.kind, "ts": iso_utc(record.ts_ns), **record.body}, ensure_ascii=False
    )


def _write(out: IO[str], records: list[Record]) -> int:
    for record in records:
        out.write(record_line(record) + "\n")
    return len(records)
