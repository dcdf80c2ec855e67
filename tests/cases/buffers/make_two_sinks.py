"""Writes two_sinks.db: a buffer as the agent wrote it before sinks had instances (commit 3c1b666,
`sinks: {mqtt: …, influxdb: …}`), with both cursors part-way. Run it with that version's code:

    git archive 3c1b666 | tar -x -C /tmp/old && PYTHONPATH=/tmp/old python make_two_sinks.py

tests/integration/test_sink_instances.py reads the file with today's code.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from edge_agent.outbox import Outbox, Record  # the old home of Record
from edge_agent.timefmt import iso_utc

HERE = Path(__file__).resolve().parent
T0 = 1_790_000_000_000_000_000  # 2026-09-21 UTC, whole seconds
S = 1_000_000_000


async def main() -> None:
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    outbox = Outbox(work / "outbox.db")
    await outbox.open()
    await outbox.instance_id()
    for n in range(8):  # seq 1..8: a state each second, running and idle in turn
        state = "running" if n % 2 == 0 else "idle"
        body = {
            "machine": "m1",
            "state": state,
            "reason": None,
            "reason_code": None,
            "since": iso_utc(T0 + n * S),
            "ended": None,
        }
        outbox.append(Record("state", "m1", T0 + n * S, body))
    await outbox.flush()
    for sink, seq in (("mqtt", 3), ("influxdb", 5)):
        await outbox.cursor(sink)
        await outbox.ack(sink, seq)
    await outbox.close()
    shutil.copy(work / "outbox.db", HERE / "two_sinks.db")
    shutil.rmtree(work)


if __name__ == "__main__":
    asyncio.run(main())
