"""The cost of durability: buffer commits with SQLite synchronous NORMAL against FULL, side by side.

    .venv/bin/python -m tests.bench.bench_outbox [--records 20000] [--repeat 5]

Appends records of one Modbus poll each (100 values) in commit batches of 1, 10 and 100 records,
as the agent's 50 ms flush makes them at low and high rates, and reads them back as a sink drains
them (read and acknowledge only: no sink; delivery rates are the other benchmarks' job).
Prints medians; asserts nothing. The file lives on this machine's disk: an industrial PC's
SSD or SD card gives other absolute numbers, so compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.records import Record


def record(i: int) -> Record:
    values = {f"tag{j}": i * 0.5 + j for j in range(100)}
    return Record("values", "plc", time.time_ns(), {"device": "plc", "values": values})


async def run(sync: str, batch: int, count: int, workdir: Path) -> tuple[float, float]:
    box = Outbox(workdir / f"{sync}-{batch}-{time.monotonic_ns()}.db", synchronous=sync)  # type: ignore[arg-type]
    await box.open()
    started = time.perf_counter()
    for start in range(0, count, batch):
        box.extend(record(i) for i in range(start, min(start + batch, count)))
        await box.flush()  # one transaction per batch, as the flush loop does
    commit_s = time.perf_counter() - started
    started, cursor = time.perf_counter(), 0
    while rows := await box.read(cursor, 500):
        cursor = rows[-1].seq
        await box.ack("sink", cursor)
    drain_s = time.perf_counter() - started
    await box.close()
    return count / commit_s, count / drain_s


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'synchronous':<12} {'records/commit':>15} {'records/s in':>13} {'us/record':>10} {'read+ack rec/s':>16}"
        )
        for batch in (1, 10, 100):
            count = min(args.records, 2000 * batch)
            rates: dict[str, float] = {}
            for sync in ("NORMAL", "FULL"):
                runs = [await run(sync, batch, count, Path(tmp)) for _ in range(args.repeat)]
                write = statistics.median(r[0] for r in runs)
                drain = statistics.median(r[1] for r in runs)
                rates[sync] = write
                print(
                    f"{sync:<12} {batch:>15} {write:>13,.0f} {1e6 / write:>10.1f} {drain:>16,.0f}"
                )
            ratio = rates["NORMAL"] / rates["FULL"]
            print(
                f"{'':<12} FULL costs {ratio:.2f}x the time of NORMAL per record at {batch} per commit"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
