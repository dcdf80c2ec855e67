"""The OPC UA driver against an independent server nobody here wrote (npm node-opcua-server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from drivers.opcua.config import OpcUaDeviceConfig
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.pki import trust
from drivers.opcua.tools import server_certificates
from edge_agent.errors import ConnectError
from edge_agent.samples import Quality
from tests.support.servers import NodeOpcUaPeer

NSU = "nsu=urn:edge-agent:test-peer;"
TAGS = {
    "temp": {"node": f"{NSU}s=Press.Temperature"},
    "running": {"node": f"{NSU}s=Press.Running"},
    "mode": {"node": f"{NSU}s=Press.Mode"},
    "pressure": {"node": f"{NSU}s=Press.Pressure"},
    "alarm": {"node": f"{NSU}s=Press.Alarm"},
    "serial": {"node": f"{NSU}s=Press.Serial"},
    "numeric": {"node": f"{NSU}i=5001"},
    "broken": {"node": f"{NSU}s=Press.Broken"},
    "doubtful": {"node": f"{NSU}s=Press.Doubtful"},
}


def device(url: str, **kw: Any) -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate(
        {
            "driver": "opcua",
            "url": url,
            "security": "none",
            "mode": "poll",
            "timeout_s": 3,
            "tags": kw.pop("tags", TAGS),
            **kw,
        }
    )


async def read_once(config: OpcUaDeviceConfig, pki: Path) -> Any:
    driver = OpcUaDriver("peer", config, agent_id="it", pki=pki)
    try:
        return await driver.read()
    finally:
        await driver.close()


async def test_values_and_status_codes(opcua_peer: NodeOpcUaPeer, tmp_path: Path) -> None:
    reading = await read_once(device(opcua_peer.url), tmp_path)
    assert reading.values == {
        "temp": 71.25,
        "running": True,
        "mode": "AUTO",
        "pressure": 4.5,
        "alarm": -3,
        "serial": 9007199254740993,
        "numeric": 42,
        "doubtful": 1.5,
    }
    assert reading.quality == {"doubtful": Quality.UNCERTAIN}
    assert reading.failed == {"broken": "status BadSensorFailure"}


async def test_subscription_to_a_counting_node(opcua_peer: NodeOpcUaPeer, tmp_path: Path) -> None:
    config = device(
        opcua_peer.url,
        mode="subscribe",
        publishing_interval_ms=100,
        tags={"parts": {"node": f"{NSU}s=Press.PartCount", "sampling_interval_ms": 50}},
    )
    driver = OpcUaDriver("peer", config, agent_id="it", pki=tmp_path)
    counts: list[Any] = []
    driver.listener = lambda c: counts.append(c.values["parts"])
    try:
        await driver.read()
        for _ in range(40):
            await asyncio.sleep(0.1)
            if len(counts) >= 5:
                break
    finally:
        await driver.close()
    assert len(counts) >= 5 and counts == sorted(counts) and len(set(counts)) == len(counts)


async def test_username_login(opcua_peer: NodeOpcUaPeer, tmp_path: Path) -> None:
    tags = {"temp": TAGS["temp"]}
    ok = await read_once(
        device(opcua_peer.url, tags=tags, username="operator", password="secret-pw"), tmp_path
    )
    assert ok.values == {"temp": 71.25}
    with pytest.raises(ConnectError, match="BadUserAccessDenied"):
        await read_once(
            device(opcua_peer.url, tags=tags, username="operator", password="nope"), tmp_path
        )


@pytest.mark.parametrize(
    "policy", ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
)
async def test_sign_and_encrypt(opcua_peer: NodeOpcUaPeer, tmp_path: Path, policy: str) -> None:
    pki = tmp_path / "pki"
    for _, der in await server_certificates(opcua_peer.url):  # what `edge-agent opcua trust` does
        trust(pki, der)
    config = device(
        opcua_peer.url,
        tags={"temp": TAGS["temp"]},
        security={"policy": policy},
        username="operator",
        password="secret-pw",
    )
    assert (await read_once(config, pki)).values == {"temp": 71.25}


async def test_peer_restart_is_survived(tmp_path: Path) -> None:
    peer = NodeOpcUaPeer(tmp_path)
    peer.start()
    driver = OpcUaDriver(
        "peer", device(peer.url, tags={"temp": TAGS["temp"]}), agent_id="it", pki=tmp_path
    )
    try:
        assert (await driver.read()).values == {"temp": 71.25}
        port = peer.port
        peer.stop()
        with pytest.raises(ConnectError):
            for _ in range(40):
                await driver.read()
                await asyncio.sleep(0.25)
        await asyncio.to_thread(peer.start, port)
        assert (await driver.read()).values == {"temp": 71.25}
    finally:
        await driver.close()
        peer.stop()


async def test_x509_user_certificate(opcua_peer: NodeOpcUaPeer, tmp_path: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki = tmp_path / "pki"
    for _, der in await server_certificates(opcua_peer.url):
        trust(pki, der)
    user_cert, user_key = tmp_path / "user.der", tmp_path / "user.pem"
    await setup_self_signed_certificate(
        user_key,
        user_cert,
        "urn:edge-agent:user:li.wei",
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "li.wei"},
    )
    config = device(
        opcua_peer.url,
        tags={"temp": TAGS["temp"]},
        security={"policy": "Basic256Sha256"},
        user_certificate=str(user_cert),
        user_private_key=str(user_key),
    )
    assert (await read_once(config, pki)).values == {"temp": 71.25}
