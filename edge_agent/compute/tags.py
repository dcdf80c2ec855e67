"""The latest value and quality of every tag, as compute sees it: a value holds until the next one."""

from __future__ import annotations

__all__ = ["TagTable"]

import math

from edge_agent.samples import Quality, SampleBatch, Value


class TagTable:
    """`values[device][tag]`, shaped for expressions; a tag never seen is absent."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Value]] = {}
        self.quality: dict[str, dict[str, Quality]] = {}

    def ingest(self, batch: SampleBatch) -> None:
        """Take a batch in; a NaN or infinite number is stored as None with quality bad.

        Drivers already turn such numbers into bad values; this is the second line, so no
        detector, rule or saved state ever holds one (whatever produced the batch).
        """
        values = self.values.setdefault(batch.device, {})
        quality = self.quality.setdefault(batch.device, {})
        for tag, value in batch.values.items():
            if isinstance(value, float) and not math.isfinite(value):
                values[tag], quality[tag] = None, Quality.BAD
            else:
                values[tag], quality[tag] = value, batch.quality.get(tag, Quality.GOOD)

    def usable(self, ref: str) -> bool:
        """True when `device.tag` has a value that is not bad."""
        device, tag = ref.split(".", 1)
        q = self.quality.get(device, {}).get(tag)
        return q is not None and q is not Quality.BAD and self.values[device].get(tag) is not None

    def reading(self, ref: str) -> tuple[Value, Quality | None]:
        """Value and quality of `device.tag`, for telling whether anything changed."""
        device, tag = ref.split(".", 1)
        return self.values.get(device, {}).get(tag), self.quality.get(device, {}).get(tag)

    def value(self, ref: str) -> Value:
        device, tag = ref.split(".", 1)
        return self.values.get(device, {}).get(tag)
