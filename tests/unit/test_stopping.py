"""The stop request of a real process: one signal delivered twice is one stop, not two."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

BODY = """
import asyncio, sys
from edge_agent.stopping import run_until_stopped

async def body(stop):
    print("ready", flush=True)
    await stop.wait()
    await asyncio.sleep(0.3)  # a clean stop that takes a moment

sys.exit(run_until_stopped(body))
"""


def start() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", BODY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_signal_sent_to_the_process_and_its_group_is_one_stop() -> None:
    """As timeout(1) or a shell does: the same SIGINT twice within microseconds."""
    proc = start()
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "exiting at once" not in err


def test_a_second_signal_later_exits_at_once() -> None:
    proc = start()
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 1 and "second SIGTERM: exiting at once" in err
