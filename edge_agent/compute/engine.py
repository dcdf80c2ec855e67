"""The compute core as the agent and replay drive it: batches and time in, records out."""

from __future__ import annotations

__all__ = ["ComputeEngine"]

from edge_agent.compute.state import StateTracker
from edge_agent.compute.tags import TagTable
from edge_agent.config_models import AgentFile
from edge_agent.outbox import Record
from edge_agent.samples import SampleBatch


class ComputeEngine:
    def __init__(self, config: AgentFile) -> None:
        self.tags = TagTable()
        self.machines = {name: StateTracker(name, m) for name, m in config.machines.items()}
        self._by_device: dict[str, list[StateTracker]] = {}
        for tracker in self.machines.values():
            for device in tracker.devices:
                self._by_device.setdefault(device, []).append(tracker)

    def ingest(self, batch: SampleBatch) -> list[Record]:
        """Take one poll's values; return the records they cause (state changes)."""
        self.tags.ingest(batch)
        records = []
        for tracker in self._by_device.get(batch.device, ()):
            record = tracker.update(self.tags, batch.ts_ns)
            if record is not None:
                records.append(record)
        return records
