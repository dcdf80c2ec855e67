"""A simulated press served over OPC UA (asyncua), for the demo and the tests.

Namespace `urn:edge-agent:sim`, string NodeIds `Press.<Name>`: the live press model (Running,
FaultCode, TotalCount, GoodCount, SpindleTempC, VibrationMmS), and fixed values of several types,
including one whose status is BadSensorFailure and one UncertainLastUsableValue. With `username`
set it also accepts that user; with `pki` set it offers Basic256Sha256 and Aes256_Sha256_RsaPss
with Sign and SignAndEncrypt besides None.
"""

from __future__ import annotations

__all__ = ["NAMESPACE", "OpcUaPress", "serve_opcua_press"]

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from drivers.sim.press import PressModel

NAMESPACE = "urn:edge-agent:sim"
FIXED: dict[str, tuple[Any, ua.VariantType]] = {
    "Temperature": (71.25, ua.VariantType.Double),
    "Pressure": (4.5, ua.VariantType.Float),
    "Alarm": (-3, ua.VariantType.Int16),
    "Serial": (9007199254740993, ua.VariantType.Int64),
    "Mode": ("AUTO", ua.VariantType.String),
    "Enabled": (True, ua.VariantType.Boolean),
}
# The live nodes, Press.<name>, and the press model's readings they show.
LIVE: dict[str, tuple[str, ua.VariantType]] = {
    "Running": ("running", ua.VariantType.Boolean),
    "FaultCode": ("fault_code", ua.VariantType.UInt16),
    "TotalCount": ("total_count", ua.VariantType.UInt32),
    "GoodCount": ("good_count", ua.VariantType.UInt32),
    "SpindleTempC": ("spindle_temp_c", ua.VariantType.Double),
    "VibrationMmS": ("vibration_mm_s", ua.VariantType.Double),
}


class _Users(UserManager):
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username == self.username and password == self.password:
            return User(role=UserRole.User)
        if username is None and not certificate:
            return User(role=UserRole.User)  # anonymous
        if username is None and certificate:
            return User(role=UserRole.User)  # an X.509 user: the server trusts every client here
        return None  # a wrong password (asyncua passes certificate=b'' with a password)


@dataclass
class OpcUaPress:
    server: Server
    url: str
    model: PressModel
    nodes: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    pki: Path | None = None

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.server.stop()

    @property
    def server_certificate(self) -> bytes | None:
        return (self.pki / "server" / "cert.der").read_bytes() if self.pki else None


async def serve_opcua_press(
    host: str = "127.0.0.1",
    port: int = 4840,
    *,
    seed: int = 7,
    wear_per_hour: float = 0.0,
    username: str | None = None,
    password: str | None = None,
    pki: Path | None = None,
    update_s: float = 0.2,
) -> OpcUaPress:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    users = _Users(username, password or "") if username else None
    server = Server(user_manager=users) if users else Server()
    await server.init()
    url = f"opc.tcp://{host}:{port}/edge-agent/sim"
    server.set_endpoint(url)
    server.set_server_name("edge-agent simulated press")
    if pki is not None:
        await _secure(server, pki, host)
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE)
    press = await server.nodes.objects.add_object(
        ua.NodeId(ua.String("Press"), ua.Int16(idx)), f"{idx}:Press"
    )
    model = PressModel(seed=seed, wear_per_hour=wear_per_hour, start_s=time.time())
    sim = OpcUaPress(server, url, model, pki=pki)
    for name, (value, kind) in FIXED.items():
        sim.nodes[name] = await press.add_variable(
            ua.NodeId(ua.String(f"Press.{name}"), ua.Int16(idx)),
            f"{idx}:{name}",
            ua.Variant(value, kind),
        )
    for name, status in (
        ("Broken", ua.StatusCodes.BadSensorFailure),
        ("Doubtful", ua.StatusCodes.UncertainLastUsableValue),
    ):
        node = await press.add_variable(
            ua.NodeId(ua.String(f"Press.{name}"), ua.Int16(idx)), f"{idx}:{name}", 1.5
        )
        await node.write_value(
            ua.DataValue(
                ua.Variant(1.5, ua.VariantType.Double), StatusCode=ua.StatusCode(ua.UInt32(status))
            )
        )
        sim.nodes[name] = node
    sim.nodes["Numeric"] = await press.add_variable(
        ua.NodeId(ua.Int32(5001), ua.Int16(idx)),
        f"{idx}:Numeric",
        ua.Variant(42, ua.VariantType.Int32),
    )
    for name, variant in _live(model).items():
        sim.nodes[name] = await press.add_variable(
            ua.NodeId(ua.String(f"Press.{name}"), ua.Int16(idx)), f"{idx}:{name}", variant
        )
    await server.start()
    sim.task = asyncio.create_task(_run(sim, update_s), name="opcua press")
    return sim


async def _secure(server: Server, pki: Path, host: str) -> None:
    own = pki / "server"
    own.mkdir(parents=True, exist_ok=True)
    await setup_self_signed_certificate(
        own / "key.pem",
        own / "cert.der",
        "urn:edge-agent:sim-server",
        host,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "edge-agent sim"},
    )
    await server.load_certificate(str(own / "cert.der"))
    await server.load_private_key(str(own / "key.pem"))
    await server.set_application_uri("urn:edge-agent:sim-server")
    server.set_security_policy(
        [
            ua.SecurityPolicyType.NoSecurity,
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
        ]
    )


def _live(model: PressModel) -> dict[str, ua.Variant]:
    readings: dict[str, object] = dict(model.readings())
    variants = {}
    for node, (name, kind) in LIVE.items():
        value = readings[name]
        variants[node] = ua.Variant(round(value, 3) if isinstance(value, float) else value, kind)
    return variants


async def _run(sim: OpcUaPress, update_s: float) -> None:
    while True:
        await asyncio.sleep(update_s)
        sim.model.advance(time.time())
        for name, variant in _live(sim.model).items():
            await sim.nodes[name].write_value(variant)
