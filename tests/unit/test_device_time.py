"""A device's time stamps against the local clock: kept within the skew, replaced beyond it."""

from __future__ import annotations

import logging

import pytest

from edge_agent.device_time import DeviceTime
from edge_agent.metrics import Metrics

S = 1_000_000_000
NOW = 1_780_000_000 * S


def test_far_off_stamps_are_replaced_counted_and_logged_once_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    times = DeviceTime(300, metrics, wall=lambda: NOW)
    caplog.set_level(logging.INFO, "edge_agent.device_time")
    assert times.stamp("press", NOW - 299 * S) == NOW - 299 * S  # within the skew: its own
    assert times.stamp("press", NOW + 20 * 86400 * S) == NOW  # 20 days ahead: receipt time
    assert times.stamp("press", NOW - 3600 * S) == NOW  # an hour behind: receipt time
    replaced = metrics.registry.get_sample_value(
        "edge_device_timestamps_replaced_total", {"device": "press"}
    )
    assert replaced == 2
    assert times.stamp("press", NOW + S) == NOW + S  # agrees again
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # one warning for the episode, one line when it ends
    assert "+1728000 s from the local clock" in messages[0] and "agree" in messages[1]
