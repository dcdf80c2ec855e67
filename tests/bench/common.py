"""What every benchmark script needs around its measurements: child processes and a clean stop."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it if this benchmark dies (even by SIGKILL).
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ask(proc: subprocess.Popen[str], line: str) -> str:
    """One request to a helper process that answers each line on stdin with a line on stdout."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def close_helper(proc: subprocess.Popen[str]) -> None:
    """End such a helper: closing its stdin asks it to stop; SIGTERM if it does not."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        stop_process(proc)


def run_interruptibly(body: Callable[[], int]) -> int:
    """Run `body`; Ctrl+C or SIGTERM unwind it (so it stops its servers) and exit 130."""

    def on_signal(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell may start this with SIGINT ignored (`&`), and SIGTERM should
    # clean up like Ctrl+C does.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return body()
    except KeyboardInterrupt:
        print("\ninterrupted; everything started has been stopped", file=sys.stderr)
        return 130
