"""Fixtures for the compute tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["UTC", "Asia/Shanghai", "America/New_York"])
def host_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """The host's own time zone (TZ), which nothing in a calendar may depend on."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()
