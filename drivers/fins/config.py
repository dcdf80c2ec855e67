"""What an integrator writes for an Omron PLC read over FINS: the device and its tags."""

from __future__ import annotations

__all__ = ["FinsDeviceConfig", "FinsTagConfig", "FinsType"]

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.fins.address import FinsAddress, parse_address
from drivers.text import ENCODING_HELP, TextEncoding
from edge_agent.config_types import ConfigModel, DisplayName, Name, Port

FinsType = Literal[
    "bool",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "float32",
    "float64",
    "string",
    "bcd16",
    "bcd32",
]
_WORDS = {"int32": 2, "uint32": 2, "float32": 2, "bcd32": 2, "float64": 4}


class FinsTagConfig(ConfigModel):
    """One value read from an Omron PLC's memory."""

    display_name: DisplayName = None
    address: str = Field(
        description="As CX-Programmer writes it: D100 (DM), CIO10 or 10 (CIO), W20, H5, A100, "
        "E0_100 (EM bank 0), T5 / C5 (timer / counter PV); a bit as CIO10.01, W20.15 (two digits)."
    )
    type: FinsType = Field(
        "int16",
        description="int16 (INT), uint16 (UINT, WORD), int32 (DINT), uint32 (UDINT, DWORD), "
        "float32 (REAL), float64 (LREAL), bcd16 / bcd32 (BCD, as timers and counters often "
        "are), string (with length), bool (a bit). Default: bool for a bit address, else int16.",
    )
    length: int | None = Field(
        None, ge=1, le=1998, description="For type string: length in bytes (2 per word)."
    )
    encoding: TextEncoding | None = Field(None, description=ENCODING_HELP + " Default: utf-8.")
    word_order: Literal["low_first", "high_first"] = Field(
        "low_first",
        description="Of 32- and 64-bit values: low_first as CJ/CS/NJ store DINT, REAL and LREAL "
        "(D100 holds the low word); high_first for values a program put together the other way.",
    )
    scale: float = Field(1.0, description="value = raw * scale + offset.")
    offset: float = 0.0
    unit: str | None = Field(None, description="Engineering unit, shown on the local page.")

    @model_validator(mode="before")
    @classmethod
    def _bit_is_bool(cls, data: Any) -> Any:
        # A bit address needs no `type: bool`: that is the only thing it can be.
        if isinstance(data, dict) and "type" not in data and "." in str(data.get("address", "")):
            return {**data, "type": "bool"}
        return data

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        parse_address(value)  # raises ValueError naming the address and the accepted forms
        return value

    @model_validator(mode="after")
    def _fits_address(self) -> FinsTagConfig:
        where = self.location
        if where.bit is not None and self.type != "bool":
            raise ValueError(
                f"{self.address} is a bit: its type is bool, not {self.type} "
                f"(for the whole word write {where.area.prefix}{where.word})"
            )
        if where.bit is None and self.type == "bool":
            raise ValueError(f"type bool needs a bit: write {self.address}.00 to {self.address}.15")
        if self.type == "string" and self.length is None:
            raise ValueError("type string needs 'length' (bytes)")
        if self.type != "string" and self.length is not None:
            raise ValueError("'length' goes with type string only")
        if self.type != "string" and self.encoding is not None:
            raise ValueError("'encoding' goes with type string only")
        if (self.scale != 1.0 or self.offset != 0.0) and self.type in ("bool", "string"):
            raise ValueError(f"'scale' and 'offset' apply to numbers, not to {self.type}")
        if where.word + self.words > where.area.words:
            last = where.area.words - 1
            raise ValueError(
                f"{self.address} as {self.type} runs past the end of the {where.area.name} "
                f"({where.area.prefix}{last})"
            )
        return self

    @property
    def location(self) -> FinsAddress:
        return parse_address(self.address)

    @property
    def words(self) -> int:
        """How many 16-bit words the tag occupies."""
        if self.type == "string":
            return -(-(self.length or 0) // 2)
        return _WORDS.get(self.type, 1)


class FinsDeviceConfig(ConfigModel):
    """An Omron PLC (CJ, CS, CP, NJ/NX with FINS) read over FINS/UDP or FINS/TCP."""

    display_name: DisplayName = None
    driver: Literal["fins"] = Field(description="Which protocol driver reads this device.")
    host: str = Field(description="IP address (or name) of the PLC's Ethernet port.")
    port: Port = Field(9600, description="FINS port, UDP or TCP (9600 unless changed in the PLC).")
    transport: Literal["udp", "tcp"] = Field(
        "udp",
        description="udp: FINS/UDP, as most CJ/CP/NJ units are set up; tcp: FINS/TCP (node "
        "addresses are exchanged when the connection opens).",
    )
    dest_network: int = Field(0, ge=0, le=127, description="FINS network of the PLC; 0: local.")
    dest_node: int | None = Field(
        None,
        ge=0,
        le=254,
        description="FINS node of the PLC. Default: udp, the last number of the PLC's IP address "
        "(the PLC's automatic setting); tcp, the node the PLC gives when the connection opens.",
    )
    dest_unit: int = Field(0, ge=0, le=255, description="Unit address; 0 is the CPU unit.")
    src_network: int = Field(0, ge=0, le=127, description="FINS network of this agent.")
    src_node: int | None = Field(
        None,
        ge=1,
        le=254,
        description="FINS node of this agent; must be unique on the FINS network. Default: "
        "udp, the last number of the local IP address that reaches the PLC; tcp, given by the PLC.",
    )
    local_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="For udp: local port to send from; 0 any. Some older Ethernet units answer "
        "only to port 9600: set 9600 for them.",
    )
    poll_interval_s: float = Field(1.0, ge=0.01, le=86400, description="Seconds between polls.")
    timeout_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds to wait for each answer; over udp a request is sent up to 3 times "
        "within it.",
    )
    backoff_max_s: float = Field(30.0, ge=0.1, le=3600, description="Longest wait between retries.")
    max_gap_words: int = Field(
        16,
        ge=0,
        le=998,
        description="Unused words a read may span to save a request (a word costs 2 bytes, a "
        "request a round trip).",
    )
    max_words_per_request: int = Field(
        999,
        ge=1,
        le=999,
        description="Words per memory area read: 999 on CJ/CS/CP/NJ; lower it for units that "
        "answer fewer.",
    )
    tags: dict[Name, FinsTagConfig] = Field(
        min_length=1, description="The values to read, by name."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FinsDeviceConfig:
        if self.transport == "tcp" and self.local_port:
            raise ValueError("'local_port' is for transport udp; FINS/TCP connects from any port")
        for name, tag in self.tags.items():
            if tag.words > self.max_words_per_request:
                raise ValueError(
                    f"tag {name} needs {tag.words} words; max_words_per_request is "
                    f"{self.max_words_per_request}"
                )
        return self
