"""The shipped Grafana dashboards, read as Grafana reads them, and their queries rendered as Grafana
renders them before they reach InfluxDB (InfluxQL) or Prometheus (PromQL).

Grafana is not installed here, so this module stands in for the two things it does to a query:
template variables (`$machine`, `${datasource}`: a multi-value or "All" selection becomes a regex
alternation of the escaped values, as Grafana's InfluxDB and Prometheus data sources do) and its
macros (`$timeFilter` as `time >= …ms and time <= …ms`, `$__interval`, `$__rate_interval`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_REGEX_SPECIALS = re.compile(r"([\\^$.|?*+()\[\]{}/])")


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


@dataclass(frozen=True)
class Query:
    """One query of a dashboard: a panel's target or an annotation."""

    where: str  # "panel 3 'OEE per shift · 各班次 OEE' A" or "annotation 'Alarms'"
    text: str
    language: str  # "influxql" or "promql"


def queries(board: dict[str, Any]) -> Iterator[Query]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            where = f"panel {panel['id']} {panel['title']!r} {target['refId']}"
            if "expr" in target:
                yield Query(where, target["expr"], "promql")
            else:
                yield Query(where, target["query"], "influxql")
    for annotation in board["annotations"]["list"]:
        if "query" in annotation:
            yield Query(f"annotation {annotation['name']!r}", annotation["query"], "influxql")


def template_variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in board["templating"]["list"] if v["type"] == "query"]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def pick(variable: dict[str, Any], found: list[str]) -> list[str]:
    """The values a variable offers (its `regex` applied, as Grafana filters the query's answer),
    and of those the ones selected when the dashboard opens: all of them where "All" is the
    default, else the first, as Grafana selects when nothing was saved."""
    regex = variable.get("regex") or ""
    if regex:
        body, _, flags = regex[1:].rpartition("/")
        pattern = re.compile(body, re.IGNORECASE if "i" in flags else 0)
        found = [value for value in found if pattern.search(value)]
    found = sorted(set(found))
    if not found:
        return []
    return found if variable.get("includeAll") else found[:1]


def render(
    text: str,
    selected: dict[str, list[str]],
    macros: dict[str, str],
    escape: Callable[[str], str],
) -> str:
    """`text` with Grafana's macros and the selected values of its variables put in."""
    for name, value in sorted(macros.items(), key=lambda item: -len(item[0])):
        text = text.replace(name, value)

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in selected:
            raise KeyError(f"variable ${name} is used but not defined by the dashboard")
        values = [escape(v) for v in selected[name]]
        return values[0] if len(values) == 1 else "(" + "|".join(values) + ")"

    return _VARIABLE.sub(value_of, text)


def influx_escape(value: str) -> str:
    """A value inside an InfluxQL regex literal `/^…$/`, escaped as Grafana's InfluxDB source does."""
    return _REGEX_SPECIALS.sub(r"\\\1", value)


def prom_escape(value: str) -> str:
    """A value inside a PromQL string used as a regex: the backslash itself escaped for the string."""
    return _REGEX_SPECIALS.sub(r"\\\\\1", value)


_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def default_range_ms(board: dict[str, Any], now_ms: int) -> tuple[int, int]:
    """The time range a dashboard opens with (`now-7d` to `now`), in epoch milliseconds."""
    span = re.fullmatch(r"now-(\d+)([smhdw])", board["time"]["from"])
    assert span and board["time"]["to"] == "now", board["time"]
    return now_ms - int(span.group(1)) * _UNITS_S[span.group(2)] * 1000, now_ms


def influx_macros(from_ms: int, to_ms: int, interval: str) -> dict[str, str]:
    return {
        "$timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
        "$__interval": interval,
    }
