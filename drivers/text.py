"""Text in PLC memory: bytes in the code page of whoever wrote them.

An HMI or a PLC program in a Chinese plant writes GBK (or GB18030) into a string tag, a Japanese
one Shift-JIS, a European one Latin-1; the PLC keeps bytes, not characters. Each string tag names
its `encoding` (the driver's default when it does not); bytes that are not valid in it become
U+FFFD, so a wrong choice shows as � marks on the page rather than as a failed read.
"""

from __future__ import annotations

__all__ = ["ENCODING_HELP", "TextEncoding", "plain_text"]

from typing import Annotated, Literal

from pydantic import BeforeValidator

# Names as integrators also write them (GBK, UTF8, cp936, sjis) to the one the choices list.
_ALIASES = {
    "utf8": "utf-8",
    "utf_8": "utf-8",
    "cp936": "gbk",
    "latin1": "latin-1",
    "latin_1": "latin-1",
    "iso-8859-1": "latin-1",
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "euc_kr": "euc-kr",
}


def _named(value: object) -> object:
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    return _ALIASES.get(name, name)


TextEncoding = Annotated[
    Literal["utf-8", "gbk", "gb18030", "big5", "shift_jis", "euc-kr", "latin-1", "ascii"],
    BeforeValidator(_named),
]

ENCODING_HELP = (
    "For type string: the code page its bytes are in; gbk (or gb18030) for Chinese text written "
    "by an HMI or a program, shift_jis for Japanese, big5 for traditional Chinese. Bytes that "
    "are not valid in it show as U+FFFD."
)


def plain_text(raw: bytes, encoding: str) -> str:
    """A NUL-terminated, space-padded string: up to its first NUL (what follows is left from an
    earlier, longer text), trailing spaces off. In these code pages no character's bytes hold a
    NUL or end in a space, so both cuts fall between characters."""
    return raw.split(b"\x00", 1)[0].rstrip(b" ").decode(encoding, errors="replace")
