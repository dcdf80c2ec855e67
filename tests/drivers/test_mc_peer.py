"""The MC protocol driver against an independent MC server: VirtualPLC (PyPI `virtual-plc`, MIT).

VirtualPLC was written by others from the MELSEC manuals (it is tested against pymcprotocol), so
a misreading shared by our driver and our simulator would show here. It runs in this process on
its own threads; the driver talks to it over a real loopback socket. It serves the same literal
memory as test_mc_driver.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import virtual_plc  # a test extra: `make test` installs it

from drivers.mc import McDeviceConfig
from drivers.mc.driver import McDriver
from edge_agent.samples import Value
from tests.support.mc_fixed import EXPECTED, TAGS, WORDS


class Peer:
    """A VirtualPLC on a free port, counting the answers it sends."""

    def __init__(self, profile: str, limits: dict[str, tuple[int, int]] | None = None) -> None:
        memory = virtual_plc.Memory(profile, limits=limits)
        for device, words in WORDS.items():
            bits = device in ("M", "X", "Y", "B", "L", "SM")
            for index, word in words.items():
                memory.write_words(device, index * 16 if bits else index, [word])
        self.answers: list[bytes] = []
        self.server = virtual_plc.Server(profile=profile, memory=memory, response_hook=self._seen)
        self.server.start()
        self.port = int(self.server.address[1])

    def _seen(self, response: bytes) -> bytes:
        self.answers.append(response)
        return response

    @property
    def end_codes(self) -> list[int]:
        return [int.from_bytes(a[9:11], "little") for a in self.answers]


@pytest.fixture
def q_peer() -> Iterator[Peer]:
    peer = Peer("Q")
    yield peer
    peer.server.stop()


def device(port: int, **kw: Any) -> McDeviceConfig:
    tags = kw.pop("tags", TAGS)
    return McDeviceConfig.model_validate(
        {"driver": "mc", "host": "127.0.0.1", "port": port, "timeout_s": 2, "tags": tags, **kw}
    )


async def read_once(config: McDeviceConfig) -> tuple[dict[str, Value], dict[str, str], int]:
    driver = McDriver("plc", config)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    return reading.values, reading.failed, len(driver.requests)


async def test_every_type_from_a_q_profile(q_peer: Peer) -> None:
    values, failed, requests = await read_once(device(q_peer.port))
    assert failed == {}
    assert values == EXPECTED
    assert requests == len(q_peer.answers) == 13
    assert set(q_peer.end_codes) == {0}


async def test_every_type_from_an_iqr_profile() -> None:
    peer = Peer("iQ-R")
    try:
        values, failed, requests = await read_once(device(peer.port, series="iqr"))
    finally:
        peer.server.stop()
    assert failed == {} and values == EXPECTED
    assert requests == len(peer.answers)


async def test_out_of_range_end_code_from_the_peer_fails_only_those_tags() -> None:
    peer = Peer("Q", limits={"D": (0, 1023)})
    tags = {
        "ok": {"address": "D0"},
        "beyond": {"address": "D1023", "type": "int32"},  # D1023-D1024: one word too far
        "flag": {"address": "M10"},
    }
    try:
        values, failed, _ = await read_once(device(peer.port, tags=tags, max_gap_words=0))
    finally:
        peer.server.stop()
    assert values == {"ok": -1234, "flag": True}
    assert set(failed) == {"beyond"}
    assert failed["beyond"].startswith("D1023-D1024: end code 0xC056")
