"""OPC UA (asyncua): subscriptions or polled reads, security, certificates; read-only."""

from __future__ import annotations

__all__ = ["PLUGIN"]

from pathlib import Path
from typing import Any

from drivers.base import Driver
from drivers.opcua.checks import device_warnings
from drivers.opcua.cli import add_commands
from drivers.opcua.config import OpcUaDeviceConfig, OpcUaSecurityConfig, OpcUaTagConfig
from drivers.opcua.health import CERTIFICATE_RENEWED, expiring_certificates
from drivers.plugin import DriverPlugin


def _create(name: str, config: Any, *, agent_id: str, pki: Path, **_context: Any) -> Driver:
    from drivers.opcua.driver import OpcUaDriver

    return OpcUaDriver(name, config, agent_id=agent_id, pki=pki)


PLUGIN = DriverPlugin(
    name="opcua",
    title="OPC UA",
    device_config=OpcUaDeviceConfig,
    reference=(
        ("devices.<name>.security (opcua)", OpcUaSecurityConfig),
        ("devices.<name>.tags.<name> (opcua)", OpcUaTagConfig),
    ),
    create=_create,
    add_commands=add_commands,
    health=expiring_certificates,
    health_prefix="certificate_",
    health_cleared=CERTIFICATE_RENEWED,
    warnings=device_warnings,
)
