"""The OPC UA driver against a real server over opc.tcp (asyncua, served by the simulated press)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from drivers.opcua.config import OpcUaDeviceConfig
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.pki import fingerprint, trust
from drivers.sim.opcua_press import serve_opcua_press
from edge_agent.errors import ConnectError
from edge_agent.samples import Quality
from tests.support.servers import free_port

NSU = "nsu=urn:edge-agent:sim;"


def device(url: str, **kw: Any) -> OpcUaDeviceConfig:
    tags = kw.pop(
        "tags",
        {
            "temp": {"node": f"{NSU}s=Press.Temperature"},
            "pressure": {"node": f"{NSU}s=Press.Pressure"},
            "alarm": {"node": f"{NSU}s=Press.Alarm"},
            "serial": {"node": f"{NSU}s=Press.Serial"},
            "mode": {"node": f"{NSU}s=Press.Mode"},
            "enabled": {"node": f"{NSU}s=Press.Enabled"},
            "numeric": {"node": f"{NSU}i=5001"},
            "by_path": {"path": "2:Press/2:Temperature"},
            "scaled": {"node": f"{NSU}s=Press.Temperature", "scale": 10, "offset": -700},
            "broken": {"node": f"{NSU}s=Press.Broken"},
            "doubtful": {"node": f"{NSU}s=Press.Doubtful"},
            "unknown": {"node": "ns=2;s=Press.DoesNotExist"},
        },
    )
    return OpcUaDeviceConfig.model_validate(
        {
            "driver": "opcua",
            "url": url,
            "security": "none",
            "mode": "poll",
            "timeout_s": 2,
            "tags": tags,
            **kw,
        }
    )


async def test_every_type_and_status_in_one_batched_read(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port())
    driver = OpcUaDriver("press", device(sim.url), agent_id="t", pki=tmp_path)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
        await sim.stop()
    assert reading.values == {
        "temp": 71.25,
        "pressure": 4.5,
        "alarm": -3,
        "serial": 9007199254740993,
        "mode": "AUTO",
        "enabled": True,
        "numeric": 42,
        "by_path": 71.25,
        "scaled": 12.5,
        "doubtful": 1.5,
    }
    assert reading.quality == {"doubtful": Quality.UNCERTAIN}
    # One bad node spoils nothing else: each failed tag says why.
    assert reading.failed == {
        "broken": "status BadSensorFailure",
        "unknown": "status BadNodeIdUnknown",
    }


async def test_subscription_reports_changes_with_source_timestamps(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port(), update_s=0.05)
    tags = {
        "total": {"node": f"{NSU}s=Press.TotalCount", "sampling_interval_ms": 50},
        "temp": {"node": f"{NSU}s=Press.Temperature", "mode": "poll"},
    }
    driver = OpcUaDriver(
        "press",
        device(sim.url, mode="subscribe", publishing_interval_ms=50, tags=tags),
        agent_id="t",
        pki=tmp_path,
    )
    changes: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    driver.listener = lambda c: changes.extend(
        (ts, {tag: c.values[tag]}, c.quality) for tag, ts in c.times.items()
    )
    try:
        first = await driver.read()
        assert set(first.values) == {"total", "temp"}  # after a connect every tag is read once
        second = await driver.read()
        assert set(second.values) == {"temp"}  # then only the polled one
        sim.model.advance(sim.model.t + 30)  # the press makes parts
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len({c[1].get("total") for c in changes}) >= 2:
                break
    finally:
        await driver.close()
        await sim.stop()
    totals = [c[1]["total"] for c in changes if "total" in c[1]]
    assert len(set(totals)) >= 2 and totals == sorted(totals)
    stamps = [c[0] for c in changes]
    assert stamps == sorted(stamps) and all(abs(ts / 1e9 - stamps[-1] / 1e9) < 60 for ts in stamps)


async def test_server_restart_is_survived(tmp_path: Path) -> None:
    port = free_port()
    sim = await serve_opcua_press(port=port)
    driver = OpcUaDriver(
        "press",
        device(sim.url, tags={"temp": {"node": f"{NSU}s=Press.Temperature"}}),
        agent_id="t",
        pki=tmp_path,
    )
    try:
        assert (await driver.read()).values == {"temp": 71.25}
        await sim.stop()
        with pytest.raises(ConnectError):
            for _ in range(40):  # the keep-alive or the next read finds out
                await driver.read()
                await asyncio.sleep(0.25)
        sim = await serve_opcua_press(port=port)  # back, with a new session to make
        assert (await driver.read()).values == {"temp": 71.25}
    finally:
        await driver.close()
        await sim.stop()


async def test_username_login(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port(), username="operator", password="secret-pw")
    tags = {"temp": {"node": f"{NSU}s=Press.Temperature"}}
    good = OpcUaDriver(
        "p",
        device(sim.url, tags=tags, username="operator", password="secret-pw"),
        agent_id="t",
        pki=tmp_path,
    )
    bad = OpcUaDriver(
        "p",
        device(sim.url, tags=tags, username="operator", password="wrong"),
        agent_id="t",
        pki=tmp_path,
    )
    try:
        assert (await good.read()).values == {"temp": 71.25}
        with pytest.raises(ConnectError, match="cannot connect") as refused:
            await bad.read()
        assert "wrong" not in str(refused.value)  # the password is never in a message
    finally:
        await good.close()
        await bad.close()
        await sim.stop()


@pytest.mark.parametrize("policy", ["auto", "Basic256Sha256", "Aes256_Sha256_RsaPss"])
async def test_sign_and_encrypt_after_trusting_the_server(tmp_path: Path, policy: str) -> None:
    sim = await serve_opcua_press(port=free_port(), pki=tmp_path / "server-pki")
    pki = tmp_path / "agent-pki"
    config = device(
        sim.url,
        security={"policy": policy, "mode": "SignAndEncrypt"},
        tags={"temp": {"node": f"{NSU}s=Press.Temperature"}},
    )
    driver = OpcUaDriver("p", config, agent_id="line1", pki=pki)
    try:
        with pytest.raises(ConnectError, match="not trusted") as untrusted:
            await driver.read()
        assert sim.server_certificate is not None
        assert fingerprint(sim.server_certificate) in str(untrusted.value)
        trust(pki, sim.server_certificate)
        assert (await driver.read()).values == {"temp": 71.25}
        assert driver._client is not None
        used = driver._client.security_policy.URI.rsplit("#", 1)[-1]
        assert used == ("Aes256_Sha256_RsaPss" if policy == "auto" else policy)
        assert (pki / "own" / "cert.der").exists() and (pki / "own" / "key.pem").exists()
    finally:
        await driver.close()
        await sim.stop()


async def test_no_security_is_refused_unless_chosen(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port())  # offers security None only
    config = device(
        sim.url, security={"policy": "auto"}, tags={"temp": {"node": f"{NSU}s=Press.Temperature"}}
    )
    driver = OpcUaDriver("p", config, agent_id="t", pki=tmp_path)
    try:
        with pytest.raises(
            ConnectError, match=r"offers no auto endpoint with SignAndEncrypt .*security: none"
        ):
            await driver.read()
    finally:
        await driver.close()
        await sim.stop()


async def test_a_change_the_driver_cannot_take_does_not_end_the_subscription(
    tmp_path: Path,
) -> None:
    """Regression: subscriptions are read by one task each; an exception from one change ended
    it, and every later change was lost without a word."""
    sim = await serve_opcua_press(port=free_port())
    tags = {"temp": {"node": f"{NSU}s=Press.Temperature"}}
    driver = OpcUaDriver(
        "press",
        device(sim.url, mode="subscribe", publishing_interval_ms=50, tags=tags),
        agent_id="t",
        pki=tmp_path,
    )
    seen: list[Any] = []
    driver.listener = lambda c: seen.append(c.values["temp"])
    take = driver._take
    broken = {"left": 1}

    def take_once_broken(*args: Any) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("a bug in taking one value")
        take(*args)

    driver._take = take_once_broken  # type: ignore[method-assign]
    node = sim.nodes["Temperature"]
    try:
        await driver.read()
        for value in (80.0, 81.0, 82.0):
            await node.write_value(ua.Variant(value, ua.VariantType.Double))
            for _ in range(60):
                await asyncio.sleep(0.05)
                if value in seen:
                    break
    finally:
        await driver.close()
        await sim.stop()
    assert broken["left"] == 0  # the broken take happened
    assert 82.0 in seen  # and changes after it still arrived
