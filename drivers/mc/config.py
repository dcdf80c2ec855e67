"""Configuration of a Mitsubishi MELSEC device read over the MC protocol (3E binary frame, TCP)."""

from __future__ import annotations

__all__ = ["McDeviceConfig", "McTagConfig", "McType", "tag_words"]

import math
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator

from drivers.mc.address import Address, Series, format_address, max_number, parse_address
from drivers.mc.frame import Route
from drivers.text import ENCODING_HELP, TextEncoding
from edge_agent.config_types import ConfigModel, DisplayName, Name, Port

McType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string"]
_WORDS = {"int32": 2, "uint32": 2, "float32": 2, "float64": 4}
MAX_WORDS = 960  # a 3E batch read in word units (SH-080008)


@lru_cache(maxsize=4096)
def _parsed(text: str, series: Series) -> Address:
    return parse_address(text, series)


class McTagConfig(ConfigModel):
    """One value read from a MELSEC device."""

    display_name: DisplayName = None
    address: str = Field(
        description="Device and number as in GX Works: D100, W1A, R0, ZR1F00 (hexadecimal), "
        "SD100, TN5, CN5 (words); M10, X1F, Y0, B1A, L5, F0, SM400 (bits; X, Y, B hexadecimal, "
        "X and Y octal on series iqf); a bit of a word: D100.3, D100.F."
    )
    type: McType | None = Field(
        None,
        description="How the words are read. Default: bool for bit devices and D100.3 forms, "
        "int16 for word devices. 32- and 64-bit values are low word first, as MELSEC stores them.",
    )
    length: int | None = Field(
        None, ge=1, le=2 * MAX_WORDS, description="For type string: length in bytes (2 per word)."
    )
    encoding: TextEncoding | None = Field(None, description=ENCODING_HELP + " Default: utf-8.")
    scale: float = Field(1.0, description="value = raw * scale + offset.")
    offset: float = 0.0
    unit: str | None = Field(None, description="Engineering unit, shown on the local page.")

    @field_validator("address")
    @classmethod
    def _an_address(cls, value: str) -> str:
        # The widest form here; the device checks the numbering of its own series.
        _parsed(value, "iqr")
        return value

    @model_validator(mode="after")
    def _type_fits_address(self) -> McTagConfig:
        address = self.parsed("iqr")
        one_bit = address.bit_in_word is not None
        if one_bit and self.type not in (None, "bool"):
            what = "a bit device" if address.device.bits else "one bit of a word"
            raise ValueError(f"{self.address} is {what}: its type is bool, not {self.type}")
        if not one_bit and self.type == "bool":
            raise ValueError(
                f"type bool on the word device {self.address} needs a bit: "
                f"{self.address}.0 to {self.address}.F"
            )
        if self.value_type == "string" and self.length is None:
            raise ValueError("type string needs 'length' (bytes)")
        if self.value_type != "string" and self.length is not None:
            raise ValueError("'length' goes with type string only")
        if self.value_type != "string" and self.encoding is not None:
            raise ValueError("'encoding' goes with type string only")
        if (self.scale != 1.0 or self.offset != 0.0) and self.value_type in ("bool", "string"):
            raise ValueError(f"'scale' and 'offset' apply to numbers, not to {self.value_type}")
        return self

    def parsed(self, series: Series) -> Address:
        return _parsed(self.address, series)

    @property
    def value_type(self) -> McType:
        if self.type is not None:
            return self.type
        return "bool" if self.parsed("iqr").bit_in_word is not None else "int16"


def tag_words(tag: McTagConfig) -> int:
    """How many 16-bit words the tag occupies (a bit occupies the word it is in)."""
    if tag.value_type == "string":
        return math.ceil((tag.length or 0) / 2)
    return _WORDS.get(tag.value_type, 1)


class McDeviceConfig(ConfigModel):
    """A Mitsubishi MELSEC PLC (iQ-R, Q, L, iQ-F/FX5) read over the MC protocol, 3E binary frame."""

    display_name: DisplayName = None
    driver: Literal["mc"] = Field(description="Which protocol driver reads this device.")
    host: str = Field(description="Address of the PLC's Ethernet port or module.")
    port: Port = Field(
        5000,
        description="TCP port of the MC protocol (SLMP) connection set up in GX Works; there is "
        "no standard one, so use the port the PLC's parameters name.",
    )
    series: Literal["q", "iqr", "iqf"] = Field(
        "q",
        description="q: Q, L and QnA-compatible frames (3-byte device numbers); iqr: iQ-R "
        "(4-byte numbers, 2-byte device codes); iqf: iQ-F/FX5 (q frames, X and Y numbered in octal).",
    )
    network_no: int = Field(0, ge=0, le=255, description="Network number; 0 for the PLC itself.")
    pc_no: int = Field(0xFF, ge=0, le=255, description="PC number; 255 (0xFF) for the PLC itself.")
    module_io: int = Field(
        0x03FF,
        ge=0,
        le=0xFFFF,
        description="Request destination module I/O number; 0x03FF: the CPU.",
    )
    module_station: int = Field(
        0, ge=0, le=255, description="Request destination module station number (multidrop)."
    )
    monitoring_timer: int | None = Field(
        None,
        ge=1,
        le=0xFFFF,
        description="How long the PLC's Ethernet module waits for its CPU, in units of 250 ms; "
        "shorter than timeout_s, so that its 'CPU busy' answer comes before the agent gives up. "
        "Default: 250 ms less than timeout_s (3 for 1 s), at least 1.",
    )
    poll_interval_s: float = Field(1.0, ge=0.01, le=86400, description="Seconds between polls.")
    timeout_s: float = Field(1.0, gt=0, le=60, description="Seconds to wait for each answer.")
    backoff_max_s: float = Field(30.0, ge=0.1, le=3600, description="Longest wait between retries.")
    max_gap_words: int = Field(
        128,
        ge=0,
        le=MAX_WORDS - 1,
        description="Unused words a request may read across to save a request (a PLC serves "
        "requests at the end of its scan, so a wide read is cheaper than a second request).",
    )
    max_words_per_request: int = Field(
        MAX_WORDS, ge=1, le=MAX_WORDS, description="Words in one batch read (3E limit: 960)."
    )
    tags: dict[Name, McTagConfig] = Field(min_length=1, description="The values to read, by name.")

    @model_validator(mode="after")
    def _timer_within_timeout(self) -> McDeviceConfig:
        timer = self.monitoring_timer
        if timer is not None and timer * 0.25 >= self.timeout_s:
            fits = math.ceil(self.timeout_s * 4) - 1
            advice = f"make it at most {fits}" if fits >= 1 else "raise timeout_s above 0.25"
            raise ValueError(
                f"monitoring_timer {timer} ({timer * 0.25:g} s) is not shorter than timeout_s "
                f"({self.timeout_s:g} s): the agent would give up before the PLC's Ethernet "
                f"module can answer that its CPU is busy; {advice}"
            )
        return self

    @model_validator(mode="after")
    def _tags_fit_series(self) -> McDeviceConfig:
        for name, tag in self.tags.items():
            try:
                address = tag.parsed(self.series)
            except ValueError as exc:
                raise ValueError(f"tag {name}: {exc}") from None
            words = tag_words(tag)
            if words > self.max_words_per_request:
                raise ValueError(
                    f"tag {name} spans {words} words; max_words_per_request is "
                    f"{self.max_words_per_request}"
                )
            last = address.number + (words - 1 if not address.device.bits else 0)
            if last > max_number(self.series):
                end = format_address(address.device, max_number(self.series), self.series)
                raise ValueError(f"tag {name} ({tag.address}, {words} words) runs past {end}")
        return self

    @property
    def route(self) -> Route:
        return Route(self.network_no, self.pc_no, self.module_io, self.module_station)

    @property
    def timer_units(self) -> int:
        """The monitoring timer sent with each request (250 ms units)."""
        if self.monitoring_timer is not None:
            return self.monitoring_timer
        return max(1, min(0xFFFF, math.floor(self.timeout_s * 4) - 1))
