"""String tags in the code page the writer used: GBK text from a Chinese HMI, in every driver.

The bytes are laid out as each PLC keeps them (Modbus registers big-endian, MC and FINS words in
memory order, an S7 STRING with its two header bytes), made with Python's own codecs.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.fins.codec import decode as fins_decode
from drivers.fins.config import FinsTagConfig
from drivers.mc.codec import decode as mc_decode
from drivers.mc.config import McTagConfig
from drivers.modbus.codec import decode as modbus_decode
from drivers.modbus.config import ModbusTagConfig
from drivers.s7.codec import decode as s7_decode
from drivers.s7.config import S7TagConfig

TEXT = "冲床P201 模具温度高"
GBK = TEXT.encode("gbk")  # 19 bytes
LENGTH = 24


def padded(raw: bytes) -> bytes:
    """As a PLC holds a shorter text in a longer field: a NUL, then what an older text left."""
    return (raw + b"\x00" + b"OLD TEXT" * 4)[:LENGTH]


def modbus(encoding: str | None, raw: bytes) -> Any:
    tag = ModbusTagConfig.model_validate(
        {"address": 0, "type": "string", "length": LENGTH, "encoding": encoding}
    )
    return modbus_decode(tag, struct.unpack(f">{LENGTH // 2}H", raw))


def mc(encoding: str | None, raw: bytes) -> Any:
    tag = McTagConfig.model_validate(
        {"address": "D100", "type": "string", "length": LENGTH, "encoding": encoding}
    )
    return mc_decode(tag, raw)


def fins(encoding: str | None, raw: bytes) -> Any:
    tag = FinsTagConfig.model_validate(
        {"address": "D100", "type": "string", "length": LENGTH, "encoding": encoding}
    )
    return fins_decode(tag, raw)


def s7(encoding: str | None, raw: bytes) -> Any:
    text = raw.split(b"\x00", 1)[0]
    tag = S7TagConfig.model_validate(
        {"address": "DB1.DBS0", "length": LENGTH, "encoding": encoding}
    )
    data = bytes([LENGTH, len(text)]) + raw  # STRING[24]: declared and actual length
    return s7_decode(tag.location, data, encoding=tag.encoding or "latin-1")


READERS = {"modbus": modbus, "mc": mc, "fins": fins, "s7": s7}


@pytest.mark.parametrize("driver", sorted(READERS))
def test_gbk_text_reads_as_written(driver: str) -> None:
    assert READERS[driver]("gbk", padded(GBK)) == TEXT
    assert READERS[driver]("gb18030", padded(GBK)) == TEXT  # GBK is a part of GB 18030


@pytest.mark.parametrize("driver", sorted(READERS))
def test_the_wrong_code_page_shows_replacement_marks_not_a_failure(driver: str) -> None:
    default = READERS[driver](None, padded(GBK))
    assert isinstance(default, str) and default != TEXT
    # utf-8 replaces what it cannot read; S7's latin-1 reads 高 (B8 DF) as two letters.
    assert default.endswith(("\ufffd", "\xb8\xdf"))
    assert READERS[driver]("ascii", padded(b"P201")) == "P201"


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (ModbusTagConfig, {"address": 0, "type": "uint16"}),
        (McTagConfig, {"address": "D0"}),
        (FinsTagConfig, {"address": "D0"}),
        (S7TagConfig, {"address": "DB1.DBW0"}),
    ],
)
def test_encoding_goes_with_text_only(model: Any, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="'encoding' goes with type"):
        model.model_validate({**fields, "encoding": "gbk"})


@pytest.mark.parametrize(
    ("written", "taken"),
    [("GBK", "gbk"), ("cp936", "gbk"), ("UTF8", "utf-8"), ("SJIS", "shift_jis")],
)
def test_code_pages_as_integrators_write_them(written: str, taken: str) -> None:
    tag = ModbusTagConfig.model_validate(
        {"address": 0, "type": "string", "length": 4, "encoding": written}
    )
    assert tag.encoding == taken


def test_an_unknown_code_page_is_refused_with_the_choices() -> None:
    with pytest.raises(ValidationError, match="'utf-8', 'gbk', 'gb18030'"):
        ModbusTagConfig.model_validate(
            {"address": 0, "type": "string", "length": 4, "encoding": "ebcdic"}
        )
