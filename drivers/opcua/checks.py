"""Warnings about an OPC UA device whose password or values would cross the network readable."""

from __future__ import annotations

__all__ = ["device_warnings"]

from drivers.opcua.config import OpcUaDeviceConfig
from drivers.plugin import Loc


def device_warnings(base: Loc, device: OpcUaDeviceConfig) -> list[tuple[Loc, str]]:
    if device.password is None or device.password.get_secret_value() == "":
        return []
    if device.security_none:
        return [
            (
                (*base, "security"),
                "security none: the password and every value travel unencrypted; use "
                "policy auto (the default) with mode SignAndEncrypt",
            )
        ]
    if device.security != "none" and device.security.mode == "Sign":
        return [
            (
                (*base, "security", "mode"),
                "mode Sign signs but does not encrypt: values travel readable, and so does "
                "the password with a server whose user token policy does not encrypt it; "
                "use SignAndEncrypt",
            )
        ]
    return []
