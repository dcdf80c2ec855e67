"""The configuration schema: every key an integrator may write, with its type and default.

The rest of the agent receives these frozen objects, never raw dicts. The JSON Schema that editors
use (`edge-agent schema`) is generated from these classes, so the two cannot drift apart.
"""

from __future__ import annotations

__all__ = [
    "REASON_CATEGORIES",
    "AgentConfig",
    "AgentFile",
    "AlarmConfig",
    "AlarmFloodConfig",
    "BreakConfig",
    "CalendarConfig",
    "CounterConfig",
    "CusumAlarmConfig",
    "CyclesAlarmConfig",
    "DeviceConfig",
    "EwmaAlarmConfig",
    "HttpConfig",
    "LimitAlarmConfig",
    "MachineConfig",
    "PlannedDowntimeConfig",
    "RateAlarmConfig",
    "ReasonConfig",
    "RunHoursAlarmConfig",
    "ShiftConfig",
    "SinksConfig",
    "StateRulesConfig",
    "SystemAlarmConfig",
    "TrendAlarmConfig",
    "VibrationZoneAlarmConfig",
]

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from drivers import device_config_union
from edge_agent.config_types import (
    ConfigModel,
    DeviceSettings,
    DisplayName,
    LocalTime,
    Name,
    Port,
    Switch,
    TagRef,
)
from edge_agent.sinks import SinkConfig, with_implied_types

# ----------------------------------------------------------------------------------------- agent


class HttpConfig(ConfigModel):
    """The agent's local web page, health check and Prometheus metrics."""

    enabled: Switch = Field(True, description="Off when false or empty.")
    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 opens it to the LAN.")
    port: Port = Field(8080, description="TCP port of the page, /health and /metrics.")
    hostnames: list[str] = Field(
        [],
        description="Extra names the page is reached by (e.g. a DNS name of the PC); requests "
        "for any other host name are refused.",
    )
    open_read: Literal["loopback", "everyone", "login"] = Field(
        "loopback",
        description="Who may read the page without logging in: this PC only (loopback), "
        "everyone who reaches the port, or no one. /health and /metrics stay open.",
    )


class AgentConfig(ConfigModel):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="Unique id of this agent in the plant; part of every MQTT topic and InfluxDB point."
    )
    topic_prefix: str | None = Field(
        None, description="Root of this agent's MQTT topics; default 'edge/<id>'."
    )
    buffer_path: Path = Field(
        Path("var/outbox.db"), description="SQLite file of the store-and-forward buffer."
    )
    buffer_max_mb: float = Field(
        1024,
        gt=0,
        description="Size limit of the buffer on disk; what happens when it is reached is "
        "buffer_full_policy.",
    )
    buffer_full_policy: Literal["drop_oldest", "stop_polling"] = Field(
        "drop_oldest",
        description="drop_oldest keeps the newest data (each dropped record counted); "
        "stop_polling keeps the oldest and pauses polling until the sinks made room.",
    )
    buffer_max_age_h: float = Field(
        168, gt=0, description="Records older than this are dropped (counted), delivered or not."
    )
    buffer_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL survives a crash of the agent; FULL also a power cut, at a cost per "
        "commit (see README).",
    )
    buffer_memory_mb: float = Field(
        64,
        gt=0,
        description="What the agent holds in memory while the buffer file cannot be written "
        "(disk full, I/O error); beyond it the oldest unwritten records are dropped (counted).",
    )
    history_path: Path = Field(
        Path("var/history.db"),
        description="SQLite file of the local history the page shows: closed OEE windows, stops "
        "and alarms (apart from the buffer; nothing is delivered from it).",
    )
    history_days: float = Field(
        90, gt=0, description="How many days the local history keeps; older entries are removed."
    )
    history_max_mb: float = Field(
        256,
        gt=0,
        description="Size limit of the local history on disk; beyond it the oldest entries are "
        "removed.",
    )
    max_clock_skew_s: float = Field(
        300,
        gt=0,
        description="A device's own time stamp further than this from the local clock is "
        "replaced by the time of receipt (counted).",
    )
    out_of_service_default_h: float = Field(
        24,
        gt=0,
        description="How long an alarm taken out of service stays out when the command gives "
        "no duration_s; it returns to service by itself at the end.",
    )
    out_of_service_max_days: float = Field(
        30,
        gt=0,
        le=366,
        description="The longest duration_s an out_of_service command may ask for.",
    )
    access_path: Path = Field(
        Path("var/access.json"),
        description="Users and API tokens (managed with 'edge-agent user' and 'edge-agent token').",
    )
    pki_path: Path = Field(
        Path("var/pki"),
        description="The agent's OPC UA certificate and key (made on first start) and its trust list.",
    )
    language: Literal["en", "zh-CN"] = Field("en", description="Language of the local page.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http: HttpConfig = Field(HttpConfig(), description="The local page, /health and /metrics.")

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix_is_plain(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or value.startswith("/") or value.endswith("/") or re.search(r"[#+\s]", value)
        ):
            raise ValueError(
                "a topic prefix is non-empty, has no leading or trailing '/', "
                "no wildcards (+ #) and no spaces"
            )
        return value

    @model_validator(mode="after")
    def _out_of_service_default_within_max(self) -> AgentConfig:
        if self.out_of_service_default_h > self.out_of_service_max_days * 24:
            raise ValueError("out_of_service_default_h is longer than out_of_service_max_days")
        return self

    @property
    def topic_root(self) -> str:
        return self.topic_prefix or f"edge/{self.id}"


# --------------------------------------------------------------------------------------- devices

# Each driver's models live in its folder (drivers/<name>/config.py); the registry gathers them.
if TYPE_CHECKING:  # the union is built at run time; what the core may read of any member:
    DeviceConfig = DeviceSettings
else:
    DeviceConfig = Annotated[device_config_union(), Field(discriminator="driver")]


# -------------------------------------------------------------------------------------- machines


class StateRulesConfig(ConfigModel):
    """Expressions over 'device.tag' names that tell what the machine is doing."""

    running: str = Field(description="True while the machine produces, e.g. 'plc.running == 1'.")
    fault: str | None = Field(None, description="True while the machine is down on a fault.")
    planned: str | None = Field(
        None, description="True during a planned stop signalled by the PLC (e.g. no order)."
    )
    reason: TagRef | None = Field(None, description="Tag whose value names the fault (a code).")


class CounterConfig(ConfigModel):
    total: TagRef = Field(description="Cumulative count of all parts.")
    good: TagRef | None = Field(None, description="Cumulative count of good parts.")
    reject: TagRef | None = Field(
        None, description="Cumulative count of rejects (instead of good)."
    )
    modulus: int | None = Field(
        None,
        ge=2,
        description="Counter wraps at this value (65536 for 16 bits); else a drop is a reset.",
    )

    @model_validator(mode="after")
    def _good_or_reject(self) -> CounterConfig:
        if (self.good is None) == (self.reject is None):
            raise ValueError("give exactly one of 'good' or 'reject' beside 'total'")
        return self


ReasonCategory = Literal["breakdown", "setup", "material", "operator", "planned", "quality"]
REASON_CATEGORIES: tuple[str, ...] = get_args(ReasonCategory)


class ReasonConfig(ConfigModel):
    text: str = Field(description="What people read, e.g. 'Die change'.")
    category: ReasonCategory = Field(
        "breakdown",
        description="Groups the downtime Pareto: breakdown, setup (both six big losses), "
        "material, operator, planned or quality.",
    )


def _reason_text(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


Reason = Annotated[ReasonConfig, BeforeValidator(_reason_text)]


def _keys_as_text(value: Any) -> Any:
    # YAML reads `1: Die jam` with an integer key; fault codes are looked up as text.
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class MachineConfig(ConfigModel):
    display_name: DisplayName = None
    calendar: Name | None = Field(
        None, description="Name of the shift calendar the machine works to."
    )
    ideal_cycle_time_s: float = Field(gt=0, description="Fastest possible time for one part.")
    micro_stop_s: float = Field(0.0, ge=0, description="Stops shorter than this count as run time.")
    state: StateRulesConfig = Field(description="Rules that tell the machine's state.")
    counters: CounterConfig | None = Field(None, description="Part counters, for OEE.")
    reasons: Annotated[dict[str, Reason], BeforeValidator(_keys_as_text)] = Field(
        {},
        description="Fault code → reason: a text, or {text, category}. Operators pick from the "
        "same list for stops the PLC gave no reason for.",
    )
    oee_interval_s: float = Field(
        60.0, ge=1, le=3600, description="How often the open shift's OEE is published."
    )
    startup_s: float = Field(
        0.0, ge=0, description="Rejects this long after a stop ends count as startup rejects."
    )


# ------------------------------------------------------------------------------------- calendars

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class BreakConfig(ConfigModel):
    start: LocalTime
    end: LocalTime
    name: str | None = None


class ShiftConfig(ConfigModel):
    name: Name
    display_name: DisplayName = None
    start: LocalTime
    end: LocalTime = Field(
        description="May be earlier than start: the shift then ends the next day."
    )
    days: list[Weekday] | None = Field(
        None, description="Days the shift starts on; default every day."
    )
    breaks: list[BreakConfig] = Field([], description="Planned breaks inside the shift.")


LocalDateTime = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="Local date and time, 'YYYY-MM-DD HH:MM'."),
]


class PlannedDowntimeConfig(ConfigModel):
    start: LocalDateTime
    end: LocalDateTime
    reason: str = "planned downtime"

    @model_validator(mode="after")
    def _ordered(self) -> PlannedDowntimeConfig:
        if self.end.replace("T", " ") <= self.start.replace("T", " "):
            raise ValueError("'end' must be after 'start'")
        return self


class CalendarConfig(ConfigModel):
    timezone: str = Field(description="IANA time zone name, e.g. Asia/Shanghai or Europe/Berlin.")
    shifts: list[ShiftConfig] = Field(min_length=1)
    planned_downtime: list[PlannedDowntimeConfig] = Field(
        [], description="One-off planned stops (maintenance, holidays), in local time."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)"
            ) from None
        return value


# ---------------------------------------------------------------------------------------- alarms


Priority = Literal["low", "medium", "high", "urgent"]


class _AlarmBase(ConfigModel):
    id: Name = Field(description="Unique alarm id; part of its MQTT topic.")
    display_name: DisplayName = None
    priority: Priority = "medium"
    machine: Name | None = Field(None, description="The machine the alarm belongs to, if any.")
    message: str | None = Field(None, description="What people read when it is active.")
    on_delay_s: float = Field(
        0.0, ge=0, description="The condition must hold this long to activate."
    )
    off_delay_s: float = Field(0.0, ge=0, description="It must be clear this long to return.")
    suppress_when: str | None = Field(
        None, description="Suppressed by design while this rule holds, e.g. 'press1.running == 0'."
    )
    when: str | None = Field(
        None,
        description="Judge samples only while this rule holds, e.g. 'press1.running == 1': "
        "vibration of a stopped machine says nothing about its bearing.",
    )


class LimitAlarmConfig(_AlarmBase):
    """High and low limits with a deadband: a high alarm clears only below high − deadband."""

    type: Literal["limit"]
    tag: TagRef
    high_high: float | None = None
    high: float | None = None
    low: float | None = None
    low_low: float | None = None
    deadband: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _has_a_limit(self) -> LimitAlarmConfig:
        if all(v is None for v in (self.high_high, self.high, self.low, self.low_low)):
            raise ValueError("a limit alarm needs at least one of high_high, high, low, low_low")
        return self


class VibrationZoneAlarmConfig(_AlarmBase):
    """ISO 10816-3 / 20816-3 zones of vibration velocity (mm/s RMS): C is an alert, D an alarm."""

    type: Literal["vibration_zone"]
    tag: TagRef
    machine_group: Literal[1, 2] | None = Field(
        None, description="1: large machines (300 kW to 50 MW); 2: medium (15 to 300 kW)."
    )
    foundation: Literal["rigid", "flexible"] | None = None
    boundaries: tuple[float, float, float] | None = Field(
        None,
        description="Explicit zone boundaries A/B, B/C, C/D in mm/s, instead of group and foundation.",
    )
    priority: Priority = "high"
    alert_priority: Priority = Field("low", description="Priority while in zone C.")
    deadband: float = Field(
        0.0, ge=0, description="A zone is left only this far inside the next one down."
    )

    @model_validator(mode="after")
    def _zones_known(self) -> VibrationZoneAlarmConfig:
        standard = self.machine_group is not None and self.foundation is not None
        if standard == (self.boundaries is not None):
            raise ValueError("give either machine_group and foundation, or boundaries")
        if (
            self.boundaries is not None
            and not self.boundaries[0] < self.boundaries[1] < self.boundaries[2]
        ):
            raise ValueError("boundaries must rise: [A/B, B/C, C/D]")
        return self


class _Baseline(ConfigModel):
    mean: float | None = Field(
        None, description="Target mean μ0; with sigma, or learnt from a baseline."
    )
    sigma: float | None = Field(
        None, gt=0, description="Standard deviation σ of the process in control."
    )
    baseline_samples: int | None = Field(
        None, ge=10, description="Learn mean and sigma from this many first samples instead."
    )

    @model_validator(mode="after")
    def _baseline_given(self) -> _Baseline:
        given = self.mean is not None and self.sigma is not None
        if given == (self.baseline_samples is not None):
            raise ValueError("give either mean and sigma, or baseline_samples")
        return self


class EwmaAlarmConfig(_AlarmBase, _Baseline):
    """EWMA chart: active while the smoothed value is outside μ0 ± L·σ·sqrt(λ/(2−λ)·(1−(1−λ)^2t))."""

    type: Literal["ewma"]
    tag: TagRef
    lambda_: float = Field(
        0.2, gt=0, le=1, alias="lambda", description="Weight of the newest sample."
    )
    L: float = Field(3.0, gt=0, description="Width of the control limits in sigmas.")


class CusumAlarmConfig(_AlarmBase, _Baseline):
    """Tabular CUSUM: active while C+ or C− exceeds h·σ."""

    type: Literal["cusum"]
    tag: TagRef
    k: float = Field(0.5, ge=0, description="Allowance, in sigmas.")
    h: float = Field(5.0, gt=0, description="Decision interval, in sigmas.")


class RateAlarmConfig(_AlarmBase):
    """Change per second (least-squares slope over window_s) against max_rate."""

    type: Literal["rate"]
    tag: TagRef
    window_s: float = Field(gt=0)
    max_rate: float = Field(gt=0, description="Units per second.")
    direction: Literal["rising", "falling", "both"] = "both"


class TrendAlarmConfig(_AlarmBase):
    """Trend to a limit: a least-squares line over window_s, and the time until it reaches limit."""

    type: Literal["trend"]
    tag: TagRef
    window_s: float = Field(gt=0)
    limit: float
    side: Literal["high", "low"] = Field(
        "high",
        description="high: the limit is reached rising (wear, heat); low: falling (pressure).",
    )
    warn_before_s: float = Field(gt=0, description="Activate when the limit is nearer than this.")
    min_r2: float = Field(
        0.5, ge=0, le=1, description="Below this fit quality no time is reported."
    )
    report_interval_s: float = Field(
        60.0, gt=0, description="How often the time left is published."
    )


class RunHoursAlarmConfig(_AlarmBase):
    """Maintenance by running hours: counts hours while `running` holds; reset by a command."""

    type: Literal["run_hours"]
    running: str = Field(description="Rule that holds while the component runs.")
    interval_h: float = Field(gt=0, description="Maintenance interval in running hours.")


class CyclesAlarmConfig(_AlarmBase):
    """Maintenance by cycles: a cumulative counter tag, or rising edges of a bool tag."""

    type: Literal["cycles"]
    tag: TagRef
    interval: int = Field(gt=0, description="Maintenance interval in cycles.")
    modulus: int | None = Field(None, ge=2, description="The counter wraps at this value.")


class SystemAlarmConfig(_AlarmBase):
    """An alarm the agent raises about itself (e.g. a certificate about to expire); not for YAML."""

    type: Literal["system"]


AlarmConfig = Annotated[
    LimitAlarmConfig
    | VibrationZoneAlarmConfig
    | EwmaAlarmConfig
    | CusumAlarmConfig
    | RateAlarmConfig
    | TrendAlarmConfig
    | RunHoursAlarmConfig
    | CyclesAlarmConfig,
    Field(discriminator="type"),
]


class AlarmFloodConfig(ConfigModel):
    """More than max_activations in window_s is reported as one flood, not hundreds of messages."""

    max_activations: int = Field(10, ge=1)
    window_s: float = Field(600.0, gt=0)


# ----------------------------------------------------------------------------------------- sinks

# Instances by name; each sink type's model lives in its folder (edge_agent/sinks/<type>/), the
# union of them comes from the registry (edge_agent/sinks/__init__.py).
SinksConfig = Annotated[dict[Name, SinkConfig], BeforeValidator(with_implied_types)]


# ------------------------------------------------------------------------------------------ file


def _none_is_empty(value: Any) -> Any:
    # A section whose entries are all commented out reads as null: it means "none".
    return {} if value is None else value


def _none_is_no_list(value: Any) -> Any:
    return [] if value is None else value


class AgentFile(ConfigModel):
    """A whole configuration file."""

    agent: AgentConfig
    devices: Annotated[dict[Name, DeviceConfig], BeforeValidator(_none_is_empty)] = Field(
        default_factory=dict
    )
    machines: Annotated[dict[Name, MachineConfig], BeforeValidator(_none_is_empty)] = Field(
        default_factory=dict
    )
    calendars: Annotated[dict[Name, CalendarConfig], BeforeValidator(_none_is_empty)] = Field(
        default_factory=dict
    )
    alarms: Annotated[list[AlarmConfig], BeforeValidator(_none_is_no_list)] = Field(
        default_factory=list
    )
    alarm_flood: AlarmFloodConfig = AlarmFloodConfig()
    sinks: SinksConfig = Field(default_factory=dict)
