"""What an integrator writes for a Siemens S7 PLC: the device and its tags (`driver: s7`)."""

from __future__ import annotations

__all__ = ["CONNECTION_TYPES", "S7DeviceConfig", "S7TagConfig"]

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from drivers.s7.address import S7Location, S7Type, locate
from drivers.text import ENCODING_HELP, TextEncoding
from edge_agent.config_types import ConfigModel, DisplayName, Name, Port

# The high byte of the remote TSAP: which connection resource of the CPU the agent takes.
CONNECTION_TYPES = {"pg": 1, "op": 2, "s7_basic": 3}
_TSAP = re.compile(r"^(?:([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})|0[xX]([0-9A-Fa-f]{4}))$")
_NOT_NUMBERS = ("bool", "char", "string", "wstring")


class S7TagConfig(ConfigModel):
    """One value read from an S7 PLC."""

    display_name: DisplayName = None
    address: str = Field(
        description="As in STEP 7 and TIA Portal: DB1.DBX0.0, DB1.DBB2, DB1.DBW2, DB1.DBD4, "
        "DB1.DBS10 (string), M10.1, MB10, MW20, MD30, I0.0, IW64 (or E0.0, EW64), Q0.0, QW0 "
        "(or A0.0, AW0), VW10 (S7-200 and LOGO! V memory). A leading % and spaces between "
        "the parts are allowed."
    )
    type: S7Type | None = Field(
        None,
        description="What the bytes hold where the address does not say it. W: int (default), "
        "uint, word; D: dint, udint, dword, real, time (one of them is required); B: byte "
        "(default), usint, sint, char, the S7-1500's 64-bit lreal, lint, ulint, lword, ltime "
        "(8 bytes from that byte), string, wstring; S: string (default), wstring; bits: bool. "
        "time and ltime are read as seconds.",
    )
    length: int | None = Field(
        None,
        ge=1,
        le=16382,
        description="For string and wstring: the declared maximum in characters (20 for "
        "STRING[20], 254 for a plain STRING).",
    )
    encoding: TextEncoding | None = Field(
        None,
        description=ENCODING_HELP.replace("type string", "types string and char")
        + " Default: latin-1. WSTRING is UTF-16 always.",
    )
    scale: float = Field(1.0, description="value = raw * scale + offset (numbers only).")
    offset: float = 0.0
    unit: str | None = Field(None, description="Engineering unit, shown on the local page.")

    @property
    def location(self) -> S7Location:
        """Area, DB, first byte, size and bit: where the tag's bytes are."""
        return locate(self.address, self.type, self.length)

    @model_validator(mode="after")
    def _fits_address(self) -> S7TagConfig:
        location = locate(self.address, self.type, self.length)
        if (self.scale != 1.0 or self.offset != 0.0) and location.type in _NOT_NUMBERS:
            raise ValueError(f"'scale' and 'offset' apply to numbers, not to {location.type}")
        if self.encoding is not None and location.type not in ("string", "char"):
            raise ValueError("'encoding' goes with types string and char only")
        return self


class S7DeviceConfig(ConfigModel):
    """A Siemens S7-300/400/1200/1500, S7-200 SMART or LOGO! read over S7comm (port 102)."""

    display_name: DisplayName = None
    driver: Literal["s7"] = Field(description="Which protocol driver reads this device.")
    host: str = Field(description="The CPU's (or its CP's) IP address or host name.")
    port: Port = Field(102, description="TCP port; 102 on every S7 CPU.")
    rack: int = Field(0, ge=0, le=7, description="Rack of the CPU; 0 except on some S7-400.")
    slot: int = Field(
        1,
        ge=0,
        le=31,
        description="Slot of the CPU: 2 on an S7-300, as configured on an S7-400, 1 (or 0) on "
        "an S7-1200/1500, 1 on an S7-200 SMART.",
    )
    connection_type: Literal["pg", "op", "s7_basic"] = Field(
        "op",
        description="Which connection resource of the CPU to take: op (default, as an HMI "
        "does) leaves the PG resource to the engineer's programming device; s7_basic for an "
        "S7-200 SMART beside its own tools.",
    )
    local_tsap: str | None = Field(
        None, description="Only for a LOGO! or a CP with fixed TSAPs: the agent's TSAP, e.g. 10.00."
    )
    remote_tsap: str | None = Field(
        None,
        description="The PLC's TSAP, e.g. 20.00 on a LOGO!; replaces rack, slot and "
        "connection_type.",
    )
    pdu_size: int = Field(
        960,
        ge=240,
        le=960,
        description="PDU size to ask for; the CPU answers with what it supports (240 on an "
        "S7-300 or S7-1200, 480 on an S7-400, 960 on an S7-1500) and reads are planned for that.",
    )
    poll_interval_s: float = Field(1.0, ge=0.01, le=86400, description="Seconds between polls.")
    timeout_s: float = Field(1.0, gt=0, le=60, description="Seconds to wait for each answer.")
    backoff_max_s: float = Field(30.0, ge=0.1, le=3600, description="Longest wait between retries.")
    max_gap_bytes: int = Field(
        16,
        ge=0,
        le=1024,
        description="Unused bytes a read may cover to join two tags of the same area into one "
        "item; 0 reads only bytes that tags use.",
    )
    tags: dict[Name, S7TagConfig] = Field(min_length=1, description="The values to read, by name.")

    @field_validator("local_tsap", "remote_tsap", mode="before")
    @classmethod
    def _tsap_as_written(cls, value: object) -> object:
        # YAML reads an unquoted 10.00 as the number 10.0; two decimals give back what was typed.
        return f"{value:05.2f}" if isinstance(value, float) else value

    @field_validator("local_tsap", "remote_tsap")
    @classmethod
    def _tsap(cls, value: str | None) -> str | None:
        if value is not None and not _TSAP.match(value):
            raise ValueError(
                f"{value!r} is not a TSAP: write it as LOGO!Soft and TIA Portal show it, "
                "e.g. 10.00 or 02.01 (or 0x1000)"
            )
        return value

    @model_validator(mode="after")
    def _one_way_to_the_cpu(self) -> S7DeviceConfig:
        chosen = {"rack", "slot", "connection_type"} & self.model_fields_set
        if self.remote_tsap is not None and chosen:
            raise ValueError(
                f"remote_tsap replaces rack, slot and connection_type: remove "
                f"{', '.join(sorted(chosen))} or remote_tsap"
            )
        return self

    @property
    def tsaps(self) -> tuple[int, int]:
        """(local, remote) TSAP of the connection."""
        local = _tsap_value(self.local_tsap) if self.local_tsap else 0x0100
        if self.remote_tsap is not None:
            return local, _tsap_value(self.remote_tsap)
        return local, CONNECTION_TYPES[self.connection_type] << 8 | self.rack << 5 | self.slot


def _tsap_value(text: str) -> int:
    found = _TSAP.match(text)
    assert found is not None  # checked by the validator
    high, low, whole = found.groups()
    return int(whole, 16) if whole else int(high, 16) << 8 | int(low, 16)
