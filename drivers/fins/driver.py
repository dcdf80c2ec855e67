"""Omron FINS driver over UDP or TCP, written from the FINS specification (W227, W421).

Read-only by design: it sends command 0101 (memory area read) and nothing else. Tags of one memory
area are merged into word reads (bits are read as the words that hold them), one request in
flight at a time. An end code for one read marks that read's tags failed; an end code saying the
path to the PLC is broken, a timeout or a closed connection raise `ConnectError`. A read of several
tags refused as beyond its area (1103, 1104) is split into one read per tag (see drivers.apart).
"""

from __future__ import annotations

__all__ = ["FinsDriver", "build_plan"]

import logging
from collections.abc import Iterable

from drivers.apart import split_refused
from drivers.base import Reading
from drivers.fins.address import Area
from drivers.fins.codec import RequestDecoder
from drivers.fins.config import FinsDeviceConfig
from drivers.fins.end_codes import describe_end_code, is_link_failure
from drivers.fins.frames import MEMORY_AREA_READ, FinsResponse, memory_area_read
from drivers.fins.links import FinsLink, Sids, open_link
from drivers.modbus.plan import ReadRequest, TagSpan, plan_requests
from edge_agent.errors import ConnectError

_log = logging.getLogger(__name__)

# A read whose first word is beyond its area (1103), or that runs past its end (1104).
_BEYOND_THE_AREA = frozenset({0x1103, 0x1104})


class FinsDriver:
    """One Omron PLC (one FINS destination) on one UDP socket or TCP connection."""

    def __init__(self, name: str, config: FinsDeviceConfig) -> None:
        self.name = name
        self.config = config
        self._plan(build_plan(config))
        self._areas = {tag.location.area.prefix: tag.location.area for tag in config.tags.values()}
        self._link: FinsLink | None = None
        self._sids = Sids()
        self._cpu_errors = (False, False)  # (non-fatal, fatal) as the last answer flagged them
        self._discarded_before = 0  # of links closed since

    @property
    def endpoint(self) -> str:
        c = self.config
        return f"{c.host}:{c.port} FINS/{c.transport.upper()}"

    @property
    def tag_names(self) -> list[str]:
        return list(self.config.tags)

    @property
    def discarded_answers(self) -> int:
        """Answers not taken: late ones to an earlier request, duplicates, bytes that are not FINS."""
        return self._discarded_before + (self._link.discarded if self._link else 0)

    async def connect(self) -> None:
        await self.close()
        try:
            self._link = await open_link(self.config, self._sids)
        except ConnectError as exc:
            raise ConnectError(f"cannot connect to {self.endpoint}: {exc}") from None
        route = self._link.route
        _log.debug(
            "device %s: FINS %s, from %d.%d.%d to %d.%d.%d",
            self.name,
            self.endpoint,
            route.sna,
            route.sa1,
            route.sa2,
            route.dna,
            route.da1,
            route.da2,
        )

    async def read(self) -> Reading:
        if self._link is None or self._link.closed_by_peer:
            await self.connect()
        reading = Reading()
        refused = [
            index
            for index, request in enumerate(self.requests)
            if await self._read_request(index, request, reading) in _BEYOND_THE_AREA
        ]
        if refused:
            plan, new = split_refused(
                self.requests,
                refused,
                lambda request: _requests(self.config, [n for n, _ in request.tags], -1),
                self._split_said,
            )
            if new:
                self._plan(plan)
            for index in new:
                for name, _ in plan[index].tags:
                    del reading.failed[name]  # the refusal of the read they were in
                await self._read_request(index, plan[index], reading)
        return reading

    def _split_said(self, request: ReadRequest) -> str:
        where = self._areas[request.table].describe(request.start, request.count)
        return (
            f"{self.name}: {where} runs beyond its area: its {len(request.tags)} tags are read "
            "apart from now on, so that only a tag at fault is bad"
        )

    def _plan(self, requests: list[ReadRequest]) -> None:
        self.requests = requests
        self._decoders = [RequestDecoder(r.tags, self.config.tags) for r in requests]

    async def close(self) -> None:
        if self._link is not None:
            self._discarded_before += self._link.discarded
            self._link.close()
            self._link = None

    async def _read_request(self, index: int, request: ReadRequest, reading: Reading) -> int:
        """Read one request into `reading`; its end code (flags masked off)."""
        assert self._link is not None
        area = self._areas[request.table]
        where = area.describe(request.start, request.count)
        parameters = memory_area_read(area.code, area.base + request.start, request.count)
        try:
            response = await self._link.request(MEMORY_AREA_READ, parameters)
        except ConnectError as exc:
            await self.close()
            raise ConnectError(f"{self.endpoint}: {where}: {exc}") from None
        self._note_cpu_errors(response)
        if (code := response.main_sub) != 0:
            text = f"{where}: {describe_end_code(code, response.relay_error)}"
            if is_link_failure(code):
                await self.close()
                raise ConnectError(f"{self.endpoint}: {text}")
            for name, _ in request.tags:
                reading.failed[name] = text
            return code
        if len(response.data) != request.count * 2:
            await self.close()  # what else arrives on this link cannot be trusted either
            raise ConnectError(
                f"{self.endpoint}: {where}: malformed answer: {len(response.data)} bytes "
                f"for {request.count} words"
            )
        self._decoders[index].decode(response.data, reading.values, reading.failed, where)
        return 0

    def _note_cpu_errors(self, response: FinsResponse) -> None:
        """The PLC flags its own errors in every answer; the data is still good. Log changes."""
        flags = (response.non_fatal_cpu_error, response.fatal_cpu_error)
        if flags == self._cpu_errors:
            return
        self._cpu_errors = flags
        if any(flags):
            kind = "a fatal" if flags[1] else "a non-fatal"
            _log.warning("device %s: the PLC reports %s CPU error", self.name, kind)
        else:
            _log.info("device %s: the PLC reports no CPU error any more", self.name)


def build_plan(config: FinsDeviceConfig) -> list[ReadRequest]:
    """The device's memory area reads, area by area in a fixed order."""
    return _requests(config, config.tags, config.max_gap_words)


def _requests(config: FinsDeviceConfig, names: Iterable[str], max_gap: int) -> list[ReadRequest]:
    areas: dict[str, Area] = {}
    spans: list[TagSpan] = []
    for name in names:
        where = config.tags[name].location
        areas[where.area.prefix] = where.area
        spans.append(TagSpan(name, where.area.prefix, where.word, config.tags[name].words))
    requests: list[ReadRequest] = []
    for key in sorted(areas, key=lambda k: (areas[k].code, areas[k].base)):
        requests += plan_requests(
            spans, table=key, max_gap=max_gap, max_count=config.max_words_per_request
        )
    return requests
