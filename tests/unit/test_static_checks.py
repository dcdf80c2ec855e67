"""The code is ruff clean and its type hints hold (mypy with pydantic's plugin), in `make test`
as in `make lint`: a type error or an unformatted module fails the suite, not only a reviewer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_ruff_finds_nothing() -> None:
    done = run(str(BIN / "ruff"), "check", "edge_agent", "drivers", "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_product_is_formatted() -> None:
    done = run(str(BIN / "ruff"), "format", "--check", "edge_agent", "drivers")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_no_type_error() -> None:
    done = run(sys.executable, "-m", "mypy", "edge_agent", "drivers")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
