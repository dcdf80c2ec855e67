"""A value read as NaN or infinity: nothing a chart or a rule can use, and not valid JSON."""

from __future__ import annotations

__all__ = ["refuse_nonfinite"]

from edge_agent.samples import Value


def refuse_nonfinite(
    name: str,
    type_: str,
    value: Value,
    values: dict[str, Value],
    failed: dict[str, str],
    where: str,
) -> None:
    """Take `name` out of the values read and into the failed ones, saying what came."""
    del values[name]
    failed[name] = f"{where}: {type_} is {value}"
