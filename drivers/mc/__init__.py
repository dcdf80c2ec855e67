"""Mitsubishi MELSEC PLCs over the MC protocol (SLMP), 3E binary frame on TCP: read-only."""

from __future__ import annotations

__all__ = ["McDeviceConfig", "McDriver", "McTagConfig"]

from drivers.mc.config import McDeviceConfig, McTagConfig
from drivers.mc.driver import McDriver
