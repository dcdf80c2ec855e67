"""A MELSEC device's tags merged into the fewest batch reads, each with its request frame ready.

Everything is read in word units (command 0401, subcommand 0000, or 0002 on iQ-R), bit devices
too: 16 points a word, where a bit-unit read would spend a byte on two points. A bit device's
words start at a multiple of 16 (M0, M16, X0, X10, ...), so point n is bit n % 16 of word n // 16.
Tags of one device are merged by the same greedy planner as Modbus registers (provably minimal
under the gap and size limits), with words as the unit.
"""

from __future__ import annotations

__all__ = ["McRequest", "build_plan", "plan_apart", "tag_bits"]

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.mc.address import DEVICES, Device, Series, format_address
from drivers.mc.config import McDeviceConfig, tag_words
from drivers.mc.frame import batch_read
from drivers.modbus.plan import TagSpan, plan_requests


@dataclass(frozen=True, slots=True)
class McRequest:
    """One batch read: a device, its first word and word count, the tags with their word offsets."""

    device: Device
    word: int
    words: int
    tags: tuple[tuple[str, int], ...]
    frame: bytes
    text: str  # e.g. "D100-D163", "X0-X2F": for messages

    @property
    def head(self) -> int:
        """The device number the request starts at."""
        return self.word * 16 if self.device.bits else self.word


def build_plan(config: McDeviceConfig) -> list[McRequest]:
    """The device's requests, device by device in the table's order, each by ascending number."""
    return _requests(config, config.tags, config.max_gap_words)


def plan_apart(config: McDeviceConfig, request: McRequest) -> list[McRequest]:
    """The tags of one request read apart (those that share words together)."""
    return _requests(config, [name for name, _ in request.tags], -1)


def _requests(config: McDeviceConfig, names: Iterable[str], max_gap: int) -> list[McRequest]:
    spans: list[TagSpan] = []
    for name in names:
        tag = config.tags[name]
        address = tag.parsed(config.series)
        spans.append(TagSpan(name, address.device.name, address.word, tag_words(tag)))
    requests: list[McRequest] = []
    for device in DEVICES.values():
        planned = plan_requests(
            spans,
            table=device.name,
            max_gap=max_gap,
            max_count=config.max_words_per_request,
        )
        for plan in planned:
            head = plan.start * 16 if device.bits else plan.start
            frame = batch_read(
                config.route,
                config.timer_units,
                device.code,
                head,
                plan.count,
                series=config.series,
            )
            text = _describe(device, plan.start, plan.count, config.series)
            requests.append(McRequest(device, plan.start, plan.count, plan.tags, frame, text))
    return requests


def tag_bits(config: McDeviceConfig) -> dict[str, int]:
    """For each bool tag, which bit of its word it is."""
    bits: dict[str, int] = {}
    for name, tag in config.tags.items():
        bit = tag.parsed(config.series).bit_in_word
        if bit is not None:
            bits[name] = bit
    return bits


def _describe(device: Device, word: int, words: int, series: Series) -> str:
    first, last = (word * 16, (word + words) * 16 - 1) if device.bits else (word, word + words - 1)
    if first == last:
        return format_address(device, first, series)
    return f"{format_address(device, first, series)}-{format_address(device, last, series)}"
