"""Omron addresses as integrators write them: the FINS area codes and words they name, and refusals."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.fins.address import ADDRESS_FORMS, parse_address
from drivers.fins.config import FinsDeviceConfig, FinsTagConfig


@pytest.mark.parametrize(
    ("text", "code", "wire_word", "bit", "canonical"),
    [
        # (W227 / W342 word area codes; counters are 89 hex from word 8000 hex on)
        ("D100", 0x82, 100, None, "D100"),
        ("DM100", 0x82, 100, None, "D100"),
        ("d00100", 0x82, 100, None, "D100"),
        ("D100.03", 0x82, 100, 3, "D100.03"),
        ("CIO10", 0xB0, 10, None, "CIO10"),
        ("10", 0xB0, 10, None, "CIO10"),
        ("CIO10.01", 0xB0, 10, 1, "CIO10.01"),
        ("0.00", 0xB0, 0, 0, "CIO0.00"),
        ("cio6143.15", 0xB0, 6143, 15, "CIO6143.15"),
        ("W20", 0xB1, 20, None, "W20"),
        ("WR20.15", 0xB1, 20, 15, "W20.15"),
        ("H5", 0xB2, 5, None, "H5"),
        ("HR5.00", 0xB2, 5, 0, "H5.00"),
        ("A100", 0xB3, 100, None, "A100"),
        ("AR448.07", 0xB3, 448, 7, "A448.07"),
        ("E0_100", 0xA0, 100, None, "E0_100"),
        ("EM2_0.10", 0xA2, 0, 10, "E2_0.10"),
        ("EC_32767", 0xAC, 32767, None, "EC_32767"),
        ("EF_1", 0xAF, 1, None, "EF_1"),
        ("E10_5", 0x60, 5, None, "E10_5"),
        ("E18_5", 0x68, 5, None, "E18_5"),
        ("T0000", 0x89, 0, None, "T0"),
        ("TIM12", 0x89, 12, None, "T12"),
        ("C5", 0x89, 0x8005, None, "C5"),
        ("CNT4095", 0x89, 0x8000 + 4095, None, "C4095"),
    ],
)
def test_known_addresses(
    text: str, code: int, wire_word: int, bit: int | None, canonical: str
) -> None:
    where = parse_address(text)
    assert where.area.code == code
    assert where.area.base + where.word == wire_word
    assert where.bit == bit
    assert str(where) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("D1OO", "not an Omron address"),
        ("X100", "not an Omron address"),
        ("D", "not an Omron address"),
        ("D-1", "not an Omron address"),
        ("D100.", "not an Omron address"),
        ("", "not an Omron address"),
        ("E_100", "not an Omron address"),
        ("CIO10.1", "two digits from .00 to .15"),  # bit 1 is .01, bit 10 .10
        ("CIO10.16", "two digits from .00 to .15"),
        ("W0.123", "two digits from .00 to .15"),
        ("D32768", "DM ends at D32767"),
        ("CIO6144", "CIO ends at CIO6143"),
        ("W512", "work area (W) ends at W511"),
        ("E19_0", "EM banks are 0 to 18"),
        ("T4096", "timer PV ends at T4095"),
        ("T5.01", "read as a word"),
        ("C5.00", "read as a word"),
    ],
)
def test_malformed_addresses_name_the_address_and_the_way(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_address(text)
    assert repr(text) in str(caught.value)


def test_the_message_lists_every_form() -> None:
    with pytest.raises(ValueError) as caught:
        parse_address("DM_100")
    assert ADDRESS_FORMS in str(caught.value)
    for form in ("D100", "CIO10", "W20", "H5", "A100", "E0_100", "T5", "CIO10.01"):
        assert form in ADDRESS_FORMS


_PREFIXES = ["", "CIO", "D", "DM", "W", "WR", "H", "HR", "A", "AR", "E0_", "EC_", "E18_"]
_SIZES = {"": 6144, "CIO": 6144, "W": 512, "WR": 512, "H": 1536, "HR": 1536}
_SIZES |= {"A": 11536, "AR": 11536}


@given(
    prefix=st.sampled_from(_PREFIXES),
    word=st.integers(0, 32767),
    bit=st.none() | st.integers(0, 15),
    lower=st.booleans(),
)
def test_every_valid_address_round_trips(
    prefix: str, word: int, bit: int | None, lower: bool
) -> None:
    word %= _SIZES.get(prefix, 32768)
    text = f"{prefix}{word}" + ("" if bit is None else f".{bit:02d}")
    where = parse_address(text.lower() if lower else text)
    assert (where.word, where.bit) == (word, bit)
    assert parse_address(str(where)) == where


@given(st.text(max_size=12))
def test_any_text_is_an_address_or_a_value_error(text: str) -> None:
    try:
        parse_address(text)
    except ValueError as exc:
        assert repr(text) in str(exc)


# ------------------------------------------------------------------------------ tag configs


def tag(**kw: object) -> FinsTagConfig:
    return FinsTagConfig.model_validate(kw)


def test_types_default_from_the_address() -> None:
    assert tag(address="CIO0.01").type == "bool"
    assert tag(address="D100").type == "int16"
    assert tag(address="D100", type="float64").words == 4
    assert tag(address="D100", type="string", length=5).words == 3
    assert tag(address="C5", type="bcd16").words == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"address": "D100.01", "type": "int16"}, "D100.01 is a bit: its type is bool"),
        ({"address": "D100", "type": "bool"}, "type bool needs a bit: write D100.00"),
        ({"address": "D100", "type": "string"}, "type string needs 'length'"),
        ({"address": "D100", "length": 4}, "'length' goes with type string only"),
        ({"address": "CIO0.00", "scale": 2}, "not to bool"),
        ({"address": "D32767", "type": "uint32"}, "runs past the end of the DM"),
        ({"address": "E0_32766", "type": "float64"}, "runs past the end of the EM bank 0"),
        ({"address": "DX100"}, "'DX100' is not an Omron address"),
    ],
)
def test_tag_refusals(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        tag(**fields)


def test_device_defaults_and_refusals() -> None:
    base = {"driver": "fins", "host": "192.168.250.1", "tags": {"t": {"address": "D0"}}}
    device = FinsDeviceConfig.model_validate(base)
    assert (device.port, device.transport, device.dest_node, device.src_node) == (
        9600,
        "udp",
        None,
        None,
    )
    assert device.max_words_per_request == 999
    with pytest.raises(ValidationError, match="'local_port' is for transport udp"):
        FinsDeviceConfig.model_validate({**base, "transport": "tcp", "local_port": 9600})
    with pytest.raises(ValidationError, match="needs 4 words; max_words_per_request is 2"):
        FinsDeviceConfig.model_validate(
            {
                **base,
                "max_words_per_request": 2,
                "tags": {"t": {"address": "D0", "type": "float64"}},
            }
        )
    with pytest.raises(ValidationError, match="less than or equal to 999"):
        FinsDeviceConfig.model_validate({**base, "max_words_per_request": 1000})
