"""Configuration of a Modbus device (`driver: modbus`): its connection and its tags."""

from __future__ import annotations

__all__ = ["ModbusDeviceConfig", "ModbusTable", "ModbusTagConfig", "ModbusType"]

from typing import Literal

from pydantic import Field, model_validator

from drivers.text import ENCODING_HELP, TextEncoding
from edge_agent.config_types import ConfigModel, DisplayName, Name, Port

ModbusTable = Literal["coil", "discrete_input", "holding", "input"]
ModbusType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]


_REGISTERS = {"int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}


class ModbusTagConfig(ConfigModel):
    """One value read from a Modbus device."""

    display_name: DisplayName = None
    table: ModbusTable = Field("holding", description="Which Modbus table the tag is in.")
    address: int = Field(ge=0, le=65535, description="Register or bit address (see `addressing`).")
    type: ModbusType = Field("uint16", description="How the registers are read as a value.")
    bit: int | None = Field(
        None, ge=0, le=15, description="For type bool on a register table: bit 0 (LSB) to 15."
    )
    byte_order: Literal["ABCD", "DCBA", "BADC", "CDAB"] = Field(
        "ABCD",
        description="ABCD big-endian; DCBA little-endian; BADC bytes swapped in each word; "
        "CDAB words swapped.",
    )
    length: int | None = Field(
        None, ge=1, le=250, description="For type string: length in bytes (2 per register)."
    )
    encoding: TextEncoding | None = Field(None, description=ENCODING_HELP + " Default: utf-8.")
    scale: float = Field(1.0, description="value = raw * scale + offset.")
    offset: float = 0.0
    unit: str | None = Field(None, description="Engineering unit, shown on the local page.")

    @property
    def size(self) -> int:
        """Registers (or bits, on bit tables) the tag occupies."""
        if self.type == "string":
            return -(-(self.length or 0) // 2)
        return _REGISTERS.get(self.type, 1)

    @model_validator(mode="after")
    def _fits_table(self) -> ModbusTagConfig:
        bit_table = self.table in ("coil", "discrete_input")
        if bit_table and self.type != "bool":
            raise ValueError(f"a {self.table} holds one bit: its type is bool, not {self.type}")
        if bit_table and self.bit is not None:
            raise ValueError(f"'bit' selects a bit of a register; a {self.table} is a bit already")
        if not bit_table and self.type == "bool" and self.bit is None:
            raise ValueError("type bool on a register needs 'bit' (0-15)")
        if self.bit is not None and self.type != "bool":
            raise ValueError("'bit' goes with type bool only")
        if self.type == "string" and self.length is None:
            raise ValueError("type string needs 'length' (bytes)")
        if self.type != "string" and self.length is not None:
            raise ValueError("'length' goes with type string only")
        if self.type != "string" and self.encoding is not None:
            raise ValueError("'encoding' goes with type string only")
        if (self.scale != 1.0 or self.offset != 0.0) and self.type in ("bool", "string"):
            raise ValueError(f"'scale' and 'offset' apply to numbers, not to {self.type}")
        return self


class ModbusDeviceConfig(ConfigModel):
    """A PLC or sensor read over Modbus TCP, RTU on a serial line, or RTU framed over TCP."""

    display_name: DisplayName = None
    driver: Literal["modbus"] = Field(description="Which protocol driver reads this device.")
    transport: Literal["tcp", "rtu", "rtu_over_tcp"] = Field(
        "tcp",
        description="tcp: Modbus TCP; rtu: serial line; rtu_over_tcp: RTU frames via a TCP gateway.",
    )
    host: str | None = Field(None, description="For tcp and rtu_over_tcp.")
    port: Port = Field(502, description="TCP port, for tcp and rtu_over_tcp.")
    serial_port: str | None = Field(None, description="For rtu, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(19200, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit_id: int = Field(1, ge=0, le=255, description="Modbus unit (slave) id.")
    addressing: Literal[0, 1] = Field(
        0, description="0: addresses are wire addresses; 1: address 1 is wire address 0."
    )
    poll_interval_s: float = Field(1.0, ge=0.01, le=86400, description="Seconds between polls.")
    timeout_s: float = Field(1.0, gt=0, le=60, description="Seconds to wait for each answer.")
    max_gap_registers: int = Field(
        8, ge=0, le=124, description="Unused registers a request may read across to save a request."
    )
    max_gap_bits: int = Field(
        64, ge=0, le=1999, description="The same for coils and discrete inputs."
    )
    max_registers_per_request: int = Field(
        125, ge=1, le=125, description="Lower it for devices that answer fewer registers at once."
    )
    max_bits_per_request: int = Field(2000, ge=1, le=2000, description="The same for bits.")
    backoff_max_s: float = Field(30.0, ge=0.1, le=3600, description="Longest wait between retries.")
    tags: dict[Name, ModbusTagConfig] = Field(
        min_length=1, description="The values to read, by name."
    )

    @model_validator(mode="after")
    def _transport_has_its_address(self) -> ModbusDeviceConfig:
        if self.transport in ("tcp", "rtu_over_tcp") and not self.host:
            raise ValueError(f"transport {self.transport} needs 'host'")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport rtu needs 'serial_port'")
        return self
