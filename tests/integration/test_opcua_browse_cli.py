"""`edge-agent opcua browse` as an integrator uses it on a new server (the simulated press,
asyncua, over a real socket): nsu= NodeIds, starts given every way the README names, a clear
error for a node that is not there, a --yaml block that a configuration accepts, and a secured
session with the agent's own certificate through --config and --device."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from drivers.opcua.pki import trust
from drivers.sim.opcua_press import NAMESPACE, serve_opcua_press
from tests.support.servers import free_port

NSU = f"nsu={NAMESPACE};"


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "edge_agent", "opcua", "browse", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_browse_prints_nsu_ids_from_any_start_and_refuses_what_is_not_there(
    tmp_path: Path,
) -> None:
    sim = await serve_opcua_press(port=free_port())
    try:
        idx = await sim.server.get_namespace_index(NAMESPACE)
        root = await cli(sim.url)
        by_path = await cli(sim.url, f"{idx}:Press")
        by_nsu = await cli(sim.url, f"{NSU}s=Press")
        missing = await cli(sim.url, f"{NSU}s=Nope")
        no_path = await cli(sim.url, f"{idx}:Nope")
        tree = await cli(sim.url, "--yaml")
    finally:
        await sim.stop()

    assert root.returncode == 0, root.stderr
    assert f"{NSU}s=Press " in root.stdout and f"{idx}:Press" in root.stdout
    for listing in (by_path, by_nsu):
        assert listing.returncode == 0, listing.stderr
        line = next(x for x in listing.stdout.splitlines() if x.startswith(f"{NSU}s=Press.Temp"))
        assert "Double = 71.25" in line and f" {idx}:Temperature " in line
        assert "ns=" not in listing.stdout.replace("nsu=", "")  # every id in the nsu= form
    for refused, what in ((missing, "no node"), (no_path, "no node")):
        assert refused.returncode == 1 and what in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and not refused.stdout

    # From the root, --yaml goes down into the objects: a block a configuration takes as it is.
    assert tree.returncode == 0, tree.stderr
    assert f"press_temperature: {{node: '{NSU}s=Press.Temperature'}}" in tree.stdout
    config = tmp_path / "browsed.yaml"
    config.write_text(
        "agent: {id: browsed}\ndevices:\n  press:\n    driver: opcua\n"
        f"    url: {sim.url}\n    security: none\n{tree.stdout}"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "edge_agent", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


async def test_browse_through_a_configured_device_uses_its_security(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port(), pki=tmp_path / "server-pki")
    pki = tmp_path / "agent-pki"
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent: {{id: line1, pki_path: {pki}}}\n"
        "devices:\n"
        "  press:\n"
        "    driver: opcua\n"
        f"    url: {sim.url}\n"
        "    security: {policy: Basic256Sha256, mode: SignAndEncrypt}\n"
        f'    tags: {{temp: {{node: "{NSU}s=Press.Temperature"}}}}\n'
    )
    try:
        untrusted = await cli("--config", str(config), "--device", "press", f"{NSU}s=Press")
        assert sim.server_certificate is not None
        trust(pki, sim.server_certificate)
        trusted = await cli("--config", str(config), "--device", "press", f"{NSU}s=Press")
        unknown = await cli("--config", str(config), "--device", "nope")
    finally:
        await sim.stop()
    # The secure path, as the agent takes it: the server's certificate must be trusted first.
    assert untrusted.returncode == 1 and "not trusted" in untrusted.stderr, untrusted.stderr
    assert "edge-agent opcua trust" in untrusted.stderr
    assert trusted.returncode == 0, trusted.stderr
    assert f"{NSU}s=Press.Temperature" in trusted.stdout
    assert (pki / "own" / "cert.der").exists()  # the agent's own certificate, made on first use
    assert unknown.returncode == 1 and "no opcua device nope" in unknown.stderr
