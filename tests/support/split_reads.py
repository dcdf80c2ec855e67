"""Two polls of a driver whose merged reads a device may refuse, and the splits it warned of."""

from __future__ import annotations

import logging

import pytest

from drivers.base import Driver, Reading


async def two_polls(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> tuple[Reading, Reading, list[str]]:
    """Two readings (the driver closed after them) and the warnings of drivers.apart."""
    with caplog.at_level(logging.WARNING, "drivers.apart"):
        try:
            first = await driver.read()
            second = await driver.read()
        finally:
            await driver.close()
    said = [r.getMessage() for r in caplog.records if r.name == "drivers.apart"]
    return first, second, said
