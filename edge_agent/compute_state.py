"""The compute state (open OEE windows, machine states, alarms) kept in the buffer file, so that a
restarted agent continues the open shift instead of starting it from zero."""

from __future__ import annotations

__all__ = ["STATE_KEY", "resume_compute_state", "save_compute_state"]

import logging
import time
from typing import TYPE_CHECKING

from edge_agent import strict_json
from edge_agent.compute.engine import ComputeEngine

if TYPE_CHECKING:
    from edge_agent.config_models import AgentFile
    from edge_agent.outbox import Outbox
    from edge_agent.records import Record

_log = logging.getLogger("edge_agent.agent")
STATE_KEY = "compute"


async def save_compute_state(outbox: Outbox, engine: ComputeEngine) -> None:
    try:
        text = strict_json.dumps(engine.to_state())
    except ValueError as exc:  # a non-finite number got into the state: keep the last good one
        _log.error("the compute state cannot be saved: %s", exc)
        return
    await outbox.save_state(STATE_KEY, text)


async def resume_compute_state(
    outbox: Outbox,
    engine: ComputeEngine,
    config: AgentFile,
    *,
    max_skew_ns: int,
    resume_gap_s: float,
) -> tuple[ComputeEngine, list[Record]]:
    """The engine to go on with (the saved state restored into `engine`, or a fresh one when the
    state cannot be used), and the records that resuming makes (time unknown while away)."""
    text = await outbox.load_state(STATE_KEY)
    if text is None or not (engine.oee or engine.alarms.alarms):
        return engine, []
    try:
        state = strict_json.loads(text)
        engine.restore(state)
    except (ValueError, KeyError, TypeError) as exc:
        _log.warning("the saved compute state cannot be used (%s); OEE starts from now", exc)
        return ComputeEngine(config), []
    now = time.time_ns()
    saved_ns = state["clock_ns"] or now
    gap_s = (now - saved_ns) / 1e9
    if gap_s < -max_skew_ns / 1e9:
        # Saved by a run whose clock was far ahead: continuing from there would hold every
        # sample at that future instant until the clock got there.
        _log.warning(
            "the saved compute state is %.0f s ahead of the local clock: OEE windows start "
            "again from now",
            -gap_s,
        )
        return engine, engine.restart_windows(now)
    records: list[Record] = []
    if gap_s > resume_gap_s:
        # What the machines did while the agent was down is not known: say so, in one step
        # per open window however long the agent was down.
        records = engine.skip(now)
    _log.info(
        "resumed OEE from the state saved %.0f s ago%s",
        gap_s,
        "; the time since counts as unknown" if gap_s > resume_gap_s else "",
    )
    return engine, records
