"""The buffer file's own faults, on real files: another owner, damage, records that cannot be stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.outbox import BufferInUseError, Outbox
from edge_agent.records import Record


def rec(i: int, **extra: object) -> Record:
    return Record("values", "plc", i, {"device": "plc", "values": {"n": i, **extra}})


async def test_a_second_owner_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    await first.open()
    second = Outbox(path)
    with pytest.raises(BufferInUseError, match=rf"{path}.*PID {os.getpid()}"):
        await second.open()
    await first.close()
    # Released on close: the next owner opens it (and the lock file is not world-readable).
    third = Outbox(path)
    await third.open()
    assert (Path(f"{path}.lock").stat().st_mode & 0o777) == 0o600
    await third.close()


def test_the_lock_is_held_against_another_process(tmp_path: Path) -> None:
    """A real second process (not only a second object) is refused while the first lives."""
    path = tmp_path / "outbox.db"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from edge_agent.outbox import Outbox\n"
        "async def main():\n"
        f"    box = Outbox(Path({str(path)!r}))\n"
        "    await box.open()\n"
        "    print('open', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    await box.close()\n"
        "asyncio.run(main())\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        probe = subprocess.run(
            [sys.executable, "-c", script.replace("print('open'", "print('got it'")],
            input="\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode != 0
        assert f"in use by another edge-agent (PID {holder.pid})" in probe.stderr
    finally:
        holder.communicate("\n", timeout=30)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "overwritten pages"])
async def test_a_damaged_file_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    await box.open()
    box.extend(rec(i, pad="x" * 500) for i in range(2000))
    await box.flush()
    await box.close()
    with sqlite3.connect(path) as db:  # as if that run had been killed: no clean stop noted
        db.execute("DELETE FROM saved_state WHERE key = 'clean_stop'")
    size = path.stat().st_size
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        with path.open("r+b") as f:
            f.truncate(size // 2)
    else:
        with path.open("r+b") as f:  # the b-tree pages of the records table, past the header
            f.seek(4096 * 3)
            f.write(os.urandom(4096 * 4))
    before = path.read_bytes()

    again = Outbox(path)
    await again.open()
    assert again.moved_aside is not None and again.moved_aside.name.startswith("outbox.db.corrupt-")
    assert again.moved_aside.read_bytes() == before  # kept as it was, for a person to look at
    assert again.damage
    again.append(rec(1))
    assert await again.flush()
    assert [r.seq for r in await again.read(0, 10)] == [1]
    await again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_a_record_that_cannot_be_stored_is_a_counted_gap(tmp_path: Path) -> None:
    """NaN has no JSON: such a record (a bug upstream) is let go, and every sink sees the gap."""
    box = Outbox(tmp_path / "o.db")
    await box.open()
    assert await box.cursor("mqtt") == 0
    box.extend([rec(1), rec(2, bad=float("nan")), rec(3)])
    assert await box.flush()
    # One number skipped (at the head of the batch committed with it): the gap a sink counts.
    assert [r.seq for r in await box.read(0, 10)] == [2, 3]
    assert [r.decoded()["values"]["n"] for r in await box.read(0, 10)] == [1, 3]
    assert box.unwritten_dropped == 1
    await box.close()


async def test_the_whole_file_is_checked_only_after_a_stop_that_was_not_clean(
    tmp_path: Path,
) -> None:
    """quick_check reads every page (seconds for a large buffer on a cold disk): a clean stop
    notes itself in the file, and the next open skips the check; a run that is killed leaves no
    note, because the open removes it."""
    path = tmp_path / "outbox.db"

    def noted() -> bool:
        with sqlite3.connect(path) as db:
            return (
                db.execute("SELECT 1 FROM saved_state WHERE key = 'clean_stop'").fetchone()
                is not None
            )

    box = Outbox(path)
    await box.open()
    assert not noted()  # while it runs (and so after a kill)
    await box.close()
    assert noted()
