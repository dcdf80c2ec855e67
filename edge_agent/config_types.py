"""The building blocks every configuration model shares: the base model and the kinds of names.

Drivers and sinks (drivers/<name>/config.py, edge_agent/sinks/<name>/config.py) build their models
from these, and `config_models` gathers the plugins' models into the file's schema: the blocks
live here so that neither has to import the other.
"""

from __future__ import annotations

__all__ = [
    "ConfigModel",
    "DeviceSettings",
    "DisplayName",
    "LocalTime",
    "Name",
    "Port",
    "Switch",
    "TagRef",
    "TlsConfig",
    "TopicPrefix",
]

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64),
    Field(description="A name of letters, digits and '_', not starting with a digit."),
]
TagRef = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"),
    Field(description="A tag as 'device.tag'."),
]
LocalTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="Local wall-clock time, 'HH:MM' (24 h)."),
]
Port = Annotated[int, Field(ge=1, le=65535)]
# How a sink takes records from the buffer: the same limits for every sink type.
BatchRecords = Annotated[
    int, Field(ge=1, le=100000, description="Records taken from the buffer at once.")
]
FlushInterval = Annotated[float, Field(ge=0, le=60)]  # seconds; each sink says what it gathers


def _empty_is_false(value: Any) -> Any:
    # `enabled: ${MQTT_HOST:+true}` yields "" when the variable is unset: that means "off".
    return False if value == "" or value is None else value


Switch = Annotated[bool, BeforeValidator(_empty_is_false)]


class ConfigModel(BaseModel):
    # NaN and infinity (YAML .nan, .inf) are never a limit, a scale or a time.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DeviceSettings(Protocol):
    """What the agent's core reads of a device's settings, whatever its driver: every driver's
    device model has these fields (tests/unit/test_driver_registry.py checks it)."""

    @property
    def driver(self) -> str: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def poll_interval_s(self) -> float: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...
    @property
    def tags(self) -> Mapping[str, Any]: ...


DisplayName = Annotated[
    str | None,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True),
    Field(
        description="What people read, in any script (e.g. 冲床 P201, 白班); the id stays for "
        "topics and queries. Default: the id."
    ),
]


def _plain_topic_prefix(value: str) -> str:
    if not value or value.startswith("/") or value.endswith("/") or re.search(r"[#+\s]", value):
        raise ValueError(
            "a topic prefix is non-empty, has no leading or trailing '/', "
            "no wildcards (+ #) and no spaces"
        )
    return value


TopicPrefix = Annotated[str, AfterValidator(_plain_topic_prefix)]


class TlsConfig(ConfigModel):
    """TLS towards a server (an MQTT broker): whom to trust, and the agent's own certificate."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="Skip the server name check (test benches only).")
