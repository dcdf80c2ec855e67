"""What compute, polling and the page hand to the buffer, and what the sinks get back from it.

A `Record` is one fact to deliver: its `kind` (one of `Kind`), a `key` (the device, machine or
alarm it is about) and a body whose keys depend on the kind, documented below as `TypedDict`s
exactly as the producers write them (compute/state.py, compute/oee.py, compute/alarms.py,
polling.py, agent.py, history/corrections.py through web/operator_api.py). The buffer stores
the kind as its text, so a file written by an older version reads back unchanged (a `Kind`
compares and hashes equal to its text).

Every sink declares, for every kind, how it sends it or why it does not (`NotSent`): a table
from `Kind` to a formatter, checked complete by tests/unit/test_records.py. A kind no `Kind`
names (a buffer written by a newer version, read after a downgrade) never reaches a sink: the
delivery loop counts it and logs it once (see edge_agent.delivery).
"""

# No `from __future__ import annotations` here: Python 3.11 reads NotRequired[...] of a TypedDict
# when the class is made, and cannot see it in an annotation postponed to a string.

__all__ = [
    "ALARM_STATES",
    "BODIES",
    "MACHINE_STATES",
    "MACHINE_STATE_CODES",
    "AlarmBody",
    "AlarmFloodBody",
    "CommandReplyBody",
    "ConditionBody",
    "DowntimeBody",
    "EndedPeriod",
    "Kind",
    "KindTable",
    "LinkBody",
    "NotSent",
    "OeeBody",
    "Record",
    "SixBigLosses",
    "StateBody",
    "StoredRecord",
    "ValuesBody",
    "known_kind",
    "missing_kinds",
]

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict, TypeVar

from edge_agent.samples import Value


class Kind(StrEnum):
    """The kinds of record, as stored in the buffer's `kind` column."""

    VALUES = "values"  # the values of one poll (or one report) of a device
    LINK = "link"  # a device's connection went up or down
    STATE = "state"  # a machine's state changed
    OEE = "oee"  # an OEE window's figures: running, closed (final) or corrected later
    DOWNTIME = "downtime"  # a stop that ended (not a micro-stop), or its reason given later
    ALARM = "alarm"  # an alarm's state changed (ISA-18.2), or a command acted on it
    CONDITION = "condition"  # a condition report: vibration zone, time to a limit
    ALARM_FLOOD = "alarm_flood"  # a flood of alarm activations began or ended
    # A reply to an MQTT command, buffered by versions before replies became volatile; a buffer
    # of such a version may still hold some.
    COMMAND_REPLY = "command_reply"


_KINDS = {kind.value: kind for kind in Kind}


def known_kind(text: str) -> Kind | None:
    """The `Kind` of a stored kind, None for one this version does not know."""
    return _KINDS.get(text)


@dataclass(frozen=True, slots=True)
class Record:
    """Something to deliver: raw values of one poll, a state change, an OEE window, an alarm."""

    kind: Kind
    key: str  # what it is about: a device or machine name, used for routing (topics)
    ts_ns: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the buffer hands it to a sink: with its sequence number, body still as JSON.

    `kind` is the stored text: one of `Kind`, or, in a buffer written by a newer version, one
    this version does not know (see `known_kind`)."""

    seq: int
    ts_ns: int
    kind: str
    key: str
    body: str

    def decoded(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- what sinks say


@dataclass(frozen=True, slots=True)
class NotSent:
    """In a sink's table of kinds: this sink does not send records of the kind, and why."""

    reason: str


_F = TypeVar("_F")
KindTable = Mapping[Kind, _F | NotSent]
"""A sink's mapping of every kind to its formatter (of the sink's own type), or to `NotSent`."""


def missing_kinds(table: Mapping[Kind, object]) -> list[Kind]:
    """The kinds a sink's table leaves out (every kind must be mapped, or marked NotSent)."""
    return [kind for kind in Kind if kind not in table]


# ------------------------------------------------------------------------------- bodies by kind

Quality = Literal["good", "uncertain", "bad"]
MACHINE_STATES = ("unknown", "running", "idle", "down", "planned")
# A number per machine state, for stores that chart numbers (InfluxDB, Sparkplug).
MACHINE_STATE_CODES = {state: code for code, state in enumerate(MACHINE_STATES)}
MachineState = Literal["unknown", "running", "idle", "down", "planned"]
ALARM_STATES = (
    "normal",
    "unack_active",
    "ack_active",
    "unack_rtn",
    "shelved",
    "suppressed",
    "out_of_service",
)
AlarmState = Literal[
    "normal", "unack_active", "ack_active", "unack_rtn", "shelved", "suppressed", "out_of_service"
]
Priority = Literal["low", "medium", "high", "urgent"]


class _Simulated(TypedDict, total=False):
    # The demo's made-up history (demo_history.py) marks every record it makes; those go to the
    # local history only, never into the buffer.
    simulated: bool


class ValuesBody(TypedDict):
    """Kind.VALUES (agent.py): one poll of a device, or values it reported by itself."""

    device: str
    values: dict[str, Value]  # None: not read (quality bad)
    quality: NotRequired[dict[str, Quality]]  # only the tags that are not good
    # Values the device stamped otherwise than the record's time (ISO 8601 UTC), by tag.
    times: NotRequired[dict[str, str]]


class LinkBody(TypedDict):
    """Kind.LINK (polling.py): a device answers again, or stopped answering."""

    device: str
    state: Literal["up", "down"]
    endpoint: str
    error: str | None  # why it is down; None when up


class EndedPeriod(TypedDict):
    state: MachineState
    reason: str | None
    start: str  # ISO 8601 UTC
    end: str
    duration_s: float


class StateBody(_Simulated):
    """Kind.STATE (compute/state.py): a machine's new state, and the one it ended."""

    machine: str
    state: MachineState
    reason: str | None
    reason_code: str | None
    since: str  # ISO 8601 UTC
    ended: EndedPeriod | None  # None for the first state known


class SixBigLosses(TypedDict):
    breakdowns: float
    setup_adjustments: float
    small_stops: float
    reduced_speed: float
    startup_rejects: float
    production_rejects: float


class OeeBody(_Simulated):
    """Kind.OEE (compute/oee.py): an OEE window's figures (ISO 22400). Ratios are None when
    they cannot be known yet (no busy time, no count)."""

    machine: str
    window: Literal["shift", "hour"]
    shift: str | None  # the calendar's shift name, for shift windows
    start: str  # ISO 8601 UTC
    end: str
    final: bool  # the window has closed; False: the running figures of the open window
    planned_busy_time_s: float
    run_time_s: float
    down_time_s: float
    idle_time_s: float
    unknown_time_s: float
    planned_stop_time_s: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    total_count: int
    good_count: int
    reject_count: int
    failures: int
    mtbf_s: float | None
    mttr_s: float | None
    micro_stops: int
    ideal_cycle_time_s: float
    losses_by_reason_s: dict[str, float]
    six_big_losses_s: SixBigLosses
    warning: NotRequired[str]  # performance above 1: the ideal cycle time is set too slow
    # A closed window corrected later by a person (history/corrections.py): who, and when.
    corrected_by: NotRequired[str]
    corrected_at: NotRequired[str]


class DowntimeBody(_Simulated):
    """Kind.DOWNTIME (compute/oee.py): a stop that ended; again (same start) when an operator
    gives its reason later (history/corrections.py, with classified_by the user)."""

    machine: str
    state: MachineState  # down, idle or planned
    reason: str | None
    reason_code: str | None
    category: str | None  # of a down stop: breakdown, setup, material, ...
    classified_by: str | None  # "plc", a user's name, or None: no reason yet
    start: str  # ISO 8601 UTC
    end: str
    duration_s: float
    note: NotRequired[str | None]  # the operator's, with the reason given later
    classified_at: NotRequired[str]


class AlarmBody(_Simulated):
    """Kind.ALARM (compute/alarms.py): an alarm's state and what people see of it."""

    id: str
    type: str  # limit, vibration_zone, ewma, cusum, rate, trend, run_hours, cycles, system
    tag: str | None  # device.tag the alarm watches
    machine: str | None
    state: AlarmState
    event: str  # "change", or the command that caused it (ack, shelve, ...)
    priority: Priority
    severity: int  # OPC UA Part 9, 1..1000
    active: bool
    acked: bool
    level: str | None  # the limit or zone crossed, while active
    value: float | None
    statistic: float | None  # ewma, cusum: the statistic that crossed its limit
    message: str
    shelved_until: str | None
    suppressed: bool
    out_of_service: bool
    out_of_service_until: str | None
    reason: str | None  # of a shelve or out_of_service
    detail: str | None
    detail_key: str | None  # for the page's translations
    detail_args: dict[str, Any] | None
    # A command's: who the path it came by verified, and the name the sender gave.
    user: NotRequired[str | None]
    declared_user: NotRequired[str | None]


class ConditionBody(_Simulated):
    """Kind.CONDITION (compute/alarms.py, detectors.py): a condition report of an alarm, beside
    its state. Which keys come besides the first five depends on the alarm's type."""

    id: str
    type: str
    tag: str | None
    machine: str | None
    value: float | None
    # vibration_zone: the ISO 20816 zone entered
    zone: NotRequired[str]
    previous_zone: NotRequired[str | None]
    boundaries_mm_s: NotRequired[list[float]]
    # trend: the line fitted and when it reaches its limit
    limit: NotRequired[float]
    slope_per_s: NotRequired[float]
    fitted: NotRequired[float]
    r2: NotRequired[float]
    time_to_limit_s: NotRequired[float]


class AlarmFloodBody(_Simulated):
    """Kind.ALARM_FLOOD (compute/alarms.py): more activations in a window than allowed."""

    phase: Literal["begin", "end"]
    activations: int
    window_s: float
    max_activations: int
    since: str  # ISO 8601 UTC
    held_records: int  # alarm events held back during the flood


class CommandReplyBody(TypedDict, total=False):
    """Kind.COMMAND_REPLY (older versions only): how an MQTT command went."""

    ok: bool
    id: str
    command: str
    state: str
    error: str
    request_id: Any


BODIES: dict[Kind, type] = {
    Kind.VALUES: ValuesBody,
    Kind.LINK: LinkBody,
    Kind.STATE: StateBody,
    Kind.OEE: OeeBody,
    Kind.DOWNTIME: DowntimeBody,
    Kind.ALARM: AlarmBody,
    Kind.CONDITION: ConditionBody,
    Kind.ALARM_FLOOD: AlarmFloodBody,
    Kind.COMMAND_REPLY: CommandReplyBody,
}
"""The body of each kind (for documentation and the tests that hold producers to it)."""
