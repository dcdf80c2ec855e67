"""Omron PLCs over FINS/UDP and FINS/TCP (read-only): configuration, driver and simulator."""

from __future__ import annotations

__all__ = ["FinsDeviceConfig", "FinsDriver", "FinsTagConfig"]

from drivers.fins.config import FinsDeviceConfig, FinsTagConfig
from drivers.fins.driver import FinsDriver
