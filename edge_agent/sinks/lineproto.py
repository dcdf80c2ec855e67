"""Records to InfluxDB line protocol, formatted directly (no Point objects: they cost 4x here).

Measurements and their tags are documented in README.md ("InfluxDB schema"). Every number is
written as a float field, because InfluxDB fixes a field's type per measurement and shard: an
integer `value` from one tag and a float from another would be rejected as a type conflict.
Timestamps are milliseconds.
"""

from __future__ import annotations

__all__ = ["QUALITY_CODES", "STATE_CODES", "lines_for"]

import json
from collections.abc import Callable
from typing import Any

from edge_agent.outbox import StoredRecord

# OPC DA quality codes: familiar to SCADA people, and sortable (higher is better).
QUALITY_CODES = {"good": 192, "uncertain": 64, "bad": 0}
STATE_CODES = {"unknown": 0, "running": 1, "idle": 2, "down": 3, "planned": 4}

_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT_ESCAPE = str.maketrans({",": r"\,", " ": r"\ "})


def tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


def text_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(value: float | int | bool) -> str:
    return repr(float(value))


def lines_for(record: StoredRecord, agent: str) -> list[str]:
    """The points of one buffered record; kinds without a mapping yield none."""
    formatter = _FORMATTERS.get(record.kind)
    if formatter is None:
        return []
    return formatter(json.loads(record.body), tag(agent), record.ts_ns // 1_000_000)


def _values(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    prefix = f"values,agent={agent},device={tag(body['device'])},tag="
    quality: dict[str, str] = body.get("quality", {})
    lines = []
    for name, value in body["values"].items():
        q = quality.get(name)
        fields = []
        if value is not None and q != "bad":
            fields.append(
                f"text={text_field(value)}" if isinstance(value, str) else f"value={number(value)}"
            )
        if q is not None:
            fields.append(f"quality={QUALITY_CODES[q]}i")
        if fields:
            lines.append(f"{prefix}{tag(name)} {','.join(fields)} {ts_ms}")
    return lines


def _link(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    up = 1 if body["state"] == "up" else 0
    return [f"device_link,agent={agent},device={tag(body['device'])} up={up}i {ts_ms}"]


def _state(body: dict[str, Any], agent: str, ts_ms: int) -> list[str]:
    fields = [
        f"state_code={STATE_CODES[body['state']]}i",
        f"state={text_field(body['state'])}",
        f"reason={text_field(body.get('reason') or '')}",
    ]
    ended = body.get("ended")
    if ended:
        fields.append(f"previous_duration_s={number(ended['duration_s'])}")
    return [
        f"machine_state,agent={agent},machine={tag(body['machine'])} {','.join(fields)} {ts_ms}"
    ]


_FORMATTERS: dict[str, Callable[[dict[str, Any], str, int], list[str]]] = {
    "values": _values,
    "link": _link,
    "state": _state,
}
