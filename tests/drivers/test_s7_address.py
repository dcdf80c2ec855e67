"""S7 addresses as integrators write them, the types they hold, and the errors a person can act on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.s7.address import S7Location, locate, parse_address
from drivers.s7.config import S7DeviceConfig


def loc(
    area: str,
    db: int,
    start: int,
    size: int,
    type_: str,
    bit: int | None = None,
    length: int | None = None,
) -> S7Location:
    return S7Location(area, db, start, size, bit, type_, length)


@pytest.mark.parametrize(
    ("address", "type_", "length", "expected"),
    [
        # data blocks
        ("DB1.DBX0.0", None, None, loc("DB", 1, 0, 1, "bool", bit=0)),
        ("DB12.DBX7.7", "bool", None, loc("DB", 12, 7, 1, "bool", bit=7)),
        ("DB1.DBB2", None, None, loc("DB", 1, 2, 1, "byte")),
        ("DB1.DBB2", "sint", None, loc("DB", 1, 2, 1, "sint")),
        ("DB1.DBB2", "usint", None, loc("DB", 1, 2, 1, "usint")),
        ("DB1.DBB2", "char", None, loc("DB", 1, 2, 1, "char")),
        ("DB1.DBW2", None, None, loc("DB", 1, 2, 2, "int")),
        ("DB1.DBW2", "word", None, loc("DB", 1, 2, 2, "word")),
        ("DB1.DBW2", "uint", None, loc("DB", 1, 2, 2, "uint")),
        ("DB1.DBD4", "dint", None, loc("DB", 1, 4, 4, "dint")),
        ("DB1.DBD4", "udint", None, loc("DB", 1, 4, 4, "udint")),
        ("DB1.DBD4", "dword", None, loc("DB", 1, 4, 4, "dword")),
        ("DB1.DBD4", "real", None, loc("DB", 1, 4, 4, "real")),
        ("DB1.DBD4", "time", None, loc("DB", 1, 4, 4, "time")),
        ("DB65535.DBW65534", None, None, loc("DB", 65535, 65534, 2, "int")),
        # strings: 2 header bytes (STRING) or 2 header words (WSTRING) before the characters
        ("DB1.DBS10", None, 20, loc("DB", 1, 10, 22, "string", length=20)),
        ("DB1.DBB10", "string", 20, loc("DB", 1, 10, 22, "string", length=20)),
        ("DB1.DBS10", "wstring", 8, loc("DB", 1, 10, 20, "wstring", length=8)),
        ("DB1.DBB10", "wstring", 8, loc("DB", 1, 10, 20, "wstring", length=8)),
        ("DB3.DBS0", "string", 254, loc("DB", 3, 0, 256, "string", length=254)),
        # memory (flags)
        ("M10.1", None, None, loc("M", 0, 10, 1, "bool", bit=1)),
        ("MX10.1", None, None, loc("M", 0, 10, 1, "bool", bit=1)),
        ("MB10", None, None, loc("M", 0, 10, 1, "byte")),
        ("MW20", None, None, loc("M", 0, 20, 2, "int")),
        ("MD30", "real", None, loc("M", 0, 30, 4, "real")),
        ("MB40", "string", 4, loc("M", 0, 40, 6, "string", length=4)),
        # inputs, English and German
        ("I0.0", None, None, loc("I", 0, 0, 1, "bool", bit=0)),
        ("E0.0", None, None, loc("I", 0, 0, 1, "bool", bit=0)),
        ("IB0", None, None, loc("I", 0, 0, 1, "byte")),
        ("EB0", None, None, loc("I", 0, 0, 1, "byte")),
        ("IW64", None, None, loc("I", 0, 64, 2, "int")),
        ("EW64", None, None, loc("I", 0, 64, 2, "int")),
        ("ID0", "dint", None, loc("I", 0, 0, 4, "dint")),
        ("ED0", "dword", None, loc("I", 0, 0, 4, "dword")),
        # outputs, English and German
        ("Q0.0", None, None, loc("Q", 0, 0, 1, "bool", bit=0)),
        ("A0.0", None, None, loc("Q", 0, 0, 1, "bool", bit=0)),
        ("QB0", None, None, loc("Q", 0, 0, 1, "byte")),
        ("AB0", None, None, loc("Q", 0, 0, 1, "byte")),
        ("QW0", None, None, loc("Q", 0, 0, 2, "int")),
        ("AW0", "word", None, loc("Q", 0, 0, 2, "word")),
        ("QD4", "real", None, loc("Q", 0, 4, 4, "real")),
        ("AD4", "real", None, loc("Q", 0, 4, 4, "real")),
        # S7-200 (SMART) and LOGO! V memory is DB1
        ("V10.3", None, None, loc("DB", 1, 10, 1, "bool", bit=3)),
        ("VB10", None, None, loc("DB", 1, 10, 1, "byte")),
        ("VW10", None, None, loc("DB", 1, 10, 2, "int")),
        ("VD10", "real", None, loc("DB", 1, 10, 4, "real")),
        # as STEP 7 (spaces) and TIA Portal (%) show them, in any case
        ("DB1.DBX 0.0", None, None, loc("DB", 1, 0, 1, "bool", bit=0)),
        ("DB 1.DBW 2", None, None, loc("DB", 1, 2, 2, "int")),
        ("%DB1.DBD4", "real", None, loc("DB", 1, 4, 4, "real")),
        ("%MW10", None, None, loc("M", 0, 10, 2, "int")),
        ("  %I 0.1 ", None, None, loc("I", 0, 0, 1, "bool", bit=1)),
        ("db1.dbw2", None, None, loc("DB", 1, 2, 2, "int")),
        ("mw20", None, None, loc("M", 0, 20, 2, "int")),
    ],
)
def test_accepted_forms(
    address: str, type_: str | None, length: int | None, expected: S7Location
) -> None:
    assert locate(address, type_, length) == expected


@pytest.mark.parametrize(
    ("address", "type_", "length", "message"),
    [
        ("DB1,REAL4", None, None, r"'DB1,REAL4' is not an S7 address; write one of: DB1\.DBX0\.0"),
        ("DB1.DBQ2", None, None, r"is not an S7 address"),
        ("MW", None, None, r"is not an S7 address"),
        ("X10", None, None, r"is not an S7 address"),
        ("DB1.DBW-2", None, None, r"is not an S7 address"),
        ("", None, None, r"'' is not an S7 address"),
        ("DB0.DBW2", None, None, r"there is no DB0"),
        ("DB1 0.DBW2", None, None, r"'DB1 0.DBW2': a space inside a number"),
        ("MW 1 0", None, None, r"a space inside a number"),
        ("DB1.DBX1 0.7", None, None, r"a space inside a number"),
        ("DB70000.DBW2", None, None, r"DB numbers go up to 65535"),
        ("MW70000", None, None, r"byte 70000 is beyond 65535"),
        ("DB1.DBX0", None, None, r"'DB1.DBX0' names a bit: add its number 0-7, e.g. DB1.DBX0.0"),
        ("M10", None, None, r"names a bit"),
        ("M10.8", None, None, r"bit 8 does not exist, a byte has bits 0-7"),
        ("MW10.3", None, None, r"a bit number goes with bit addresses only, such as M10.3"),
        ("DB1.DBW2.1", None, None, r"such as DB1.DBX2.1; S7 is big-endian: bit n .* is in byte 3"),
        ("V10", None, None, r"ambiguous: write VB10 for the byte or V10.0 for a bit"),
        # a double word does not say whether it holds a DINT or a REAL
        ("DB1.DBD4", None, None, r"double word: say what it holds with type: dint, udint, dword"),
        ("MD4", None, None, r"double word"),
        # types that do not fit the width
        (
            "DB1.DBW2",
            "real",
            None,
            r"type real does not fit 'DB1.DBW2'.*; type real needs DB1.DBD2",
        ),
        ("DB1.DBD4", "int", None, r"types for it are dint.*; type int needs DB1.DBW4"),
        ("MW10", "bool", None, r"type bool needs M10.0"),
        ("DB1.DBX0.0", "byte", None, r"does not fit 'DB1.DBX0.0', which is a bit"),
        ("DB1.DBW2", "string", 4, r"type string needs DB1.DBB2"),
        ("DB1.DBS2", "int", None, r"does not fit 'DB1.DBS2', which is a string"),
        ("IW0", "float", None, r"type 'float' is not an S7 type; write one of: bool, byte"),
        # strings need their declared length, and only strings have one
        ("DB1.DBS10", None, None, r"type string needs 'length', its declared maximum"),
        ("DB1.DBB10", "wstring", None, r"type wstring needs 'length'"),
        ("DB1.DBS10", None, 255, r"a string holds 1 to 254 characters, not 255"),
        ("DB1.DBW2", None, 4, r"'length' goes with types string and wstring, not with int"),
    ],
)
def test_errors_name_the_address_and_what_is_accepted(
    address: str, type_: str | None, length: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        locate(address, type_, length)


def device(tags: dict[str, object], **kw: object) -> S7DeviceConfig:
    return S7DeviceConfig.model_validate({"driver": "s7", "host": "plc", "tags": tags, **kw})


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[object, ...], str]]:
    return [(e["loc"], e["msg"]) for e in exc.value.errors()]


def test_config_errors_point_at_the_tag() -> None:
    with pytest.raises(ValidationError) as exc:
        device({"ok": {"address": "DB1.DBW2"}, "count": {"address": "DB1.DBD4"}})
    [(where, message)] = errors_of(exc)
    assert where == ("tags", "count")
    assert "'DB1.DBD4' is a double word: say what it holds with type" in message


def test_config_scale_only_for_numbers() -> None:
    with pytest.raises(ValidationError, match="'scale' and 'offset' apply to numbers, not to bool"):
        device({"b": {"address": "M0.0", "scale": 2}})
    with pytest.raises(ValidationError, match="not to string"):
        device({"s": {"address": "DB1.DBS0", "length": 4, "offset": 1}})
    assert device({"t": {"address": "MD0", "type": "time", "scale": 1000}}).tags["t"].scale == 1000


def test_config_defaults_and_tsaps() -> None:
    config = device({"t": {"address": "MW0"}})
    assert (config.port, config.rack, config.slot, config.connection_type) == (102, 0, 1, "op")
    assert config.tsaps == (0x0100, 0x0201)  # OP, rack 0, slot 1
    s7_300 = device({"t": {"address": "MW0"}}, slot=2, connection_type="pg")
    assert s7_300.tsaps == (0x0100, 0x0102)
    s7_400 = device({"t": {"address": "MW0"}}, rack=1, slot=3, connection_type="s7_basic")
    assert s7_400.tsaps == (0x0100, 0x0323)
    logo = device({"t": {"address": "VW0"}}, local_tsap="10.00", remote_tsap="20.00")
    assert logo.tsaps == (0x1000, 0x2000)
    assert device({"t": {"address": "VW0"}}, remote_tsap="0x0301").tsaps == (0x0100, 0x0301)
    # unquoted in YAML, 10.00 and 02.01 arrive as the numbers 10.0 and 2.01
    unquoted = device({"t": {"address": "VW0"}}, local_tsap=10.0, remote_tsap=2.01)
    assert unquoted.tsaps == (0x1000, 0x0201)
    assert unquoted.remote_tsap == "02.01"


def test_config_tsap_errors() -> None:
    with pytest.raises(ValidationError, match="'20:00' is not a TSAP: write it as LOGO!Soft"):
        device({"t": {"address": "VW0"}}, remote_tsap="20:00")
    with pytest.raises(
        ValidationError, match="remote_tsap replaces rack, slot and connection_type"
    ):
        device({"t": {"address": "VW0"}}, remote_tsap="20.00", slot=0)


def test_config_needs_a_tag_and_knows_no_other_keys() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        device({})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        device({"t": {"address": "MW0", "bit": 3}})


# ------------------------------------------------------------------------------------ properties

_WIDTHS = st.sampled_from(["X", "B", "W", "D"])


def _written(area: str, width: str, db: int, byte: int, bit: int, german: bool) -> str:
    letter = {"I": "E", "Q": "A"}.get(area, area) if german else area
    suffix = f"{byte}.{bit}" if width == "X" else f"{byte}"
    if area == "DB":
        return f"DB{db}.DB{width}{suffix}"
    return f"{letter}{'' if width == 'X' else width}{suffix}"


@given(
    area=st.sampled_from(["DB", "M", "I", "Q"]),
    width=_WIDTHS,
    db=st.integers(1, 65535),
    byte=st.integers(0, 65535),
    bit=st.integers(0, 7),
    german=st.booleans(),
)
def test_every_written_address_parses_back(
    area: str, width: str, db: int, byte: int, bit: int, german: bool
) -> None:
    parsed = parse_address(_written(area, width, db, byte, bit, german))
    assert (parsed.area, parsed.byte, parsed.width) == (area, byte, width)
    assert parsed.db == (db if area == "DB" else 0)
    assert parsed.bit == (bit if width == "X" else None)


@given(st.text(max_size=20))
def test_any_text_is_an_address_or_a_value_error(text: str) -> None:
    try:
        location = locate(text, "int") if "W" in text.upper() else locate(text)
    except ValueError as exc:
        assert str(exc)  # a message, never an empty one
        return
    assert location.size >= 1
