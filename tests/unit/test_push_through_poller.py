"""Values a device reports by itself (OPC UA subscriptions) go through the device's poller, by the
rules of its polls: counted in the metrics, held back while the buffer is full (the tags bad once
meanwhile), and read again in full once it is not."""

from __future__ import annotations

from drivers.base import Changes, Reading
from edge_agent.metrics import Metrics
from edge_agent.polling import DevicePoller
from edge_agent.samples import Quality, SampleBatch


class ReportingDevice:
    """A driver with a listener: the shape of the OPC UA driver, no protocol behind it."""

    endpoint = "test:0"

    def __init__(self) -> None:
        self.tag_names = ["speed", "temp"]
        self.listener = None
        self.rereads = 0
        self.every_tag = False

    async def connect(self) -> None: ...

    async def read(self) -> Reading:
        if self.every_tag:
            self.every_tag = False
            return Reading(values={"speed": 7.0, "temp": 40.0})
        return Reading()

    async def close(self) -> None: ...

    def reread_all(self) -> None:
        self.rereads += 1
        self.every_tag = True


def poller(full: list[bool]) -> tuple[DevicePoller, ReportingDevice, list[object], Metrics]:
    device, seen, metrics = ReportingDevice(), [], Metrics()
    p = DevicePoller(
        "press",
        device,
        timeout_s=1,
        backoff_max_s=1,
        on_batch=seen.append,
        on_record=lambda _r: None,
        metrics=metrics,
        paused=lambda: full[0],
        on_changes=seen.append,
    )
    return p, device, seen, metrics


def counted(metrics: Metrics, family: str) -> float:
    return metrics.registry.get_sample_value(family, {"device": "press"}) or 0.0


async def test_changes_reach_compute_through_the_poller_and_are_counted() -> None:
    p, device, seen, metrics = poller([False])
    assert device.listener == p.push
    changes = Changes(values={"speed": 5.0, "temp": None}, quality={"temp": Quality.BAD})
    device.listener(changes)
    assert seen == [changes]
    assert counted(metrics, "edge_device_values_total") == 1  # the good one


async def test_a_full_buffer_holds_changes_back_and_a_full_read_follows() -> None:
    full = [True]
    p, device, seen, metrics = poller(full)
    device.listener(Changes(values={"speed": 5.0}))
    device.listener(Changes(values={"speed": 6.0}))
    # Not taken; the tags are bad once, as for a paused poll.
    [bad] = seen
    assert isinstance(bad, SampleBatch)
    assert bad.values == {"speed": None, "temp": None}
    assert set(bad.quality.values()) == {Quality.BAD}
    assert counted(metrics, "edge_device_polls_paused_total") == 2
    full[0] = False
    await p.poll()  # the next poll reads every tag again: what changed meanwhile is known
    assert device.rereads == 1
    assert isinstance(seen[-1], SampleBatch) and seen[-1].values == {"speed": 7.0, "temp": 40.0}
    device.listener(Changes(values={"speed": 8.0}))
    assert seen[-1] == Changes(values={"speed": 8.0}) and device.rereads == 1
