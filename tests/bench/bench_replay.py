"""`edge-agent replay` over generated files of growing length: wall time and peak memory.

    .venv/bin/python -m tests.bench.bench_replay [--lines 200000 1000000] [--repeat 3]

Each file is the worked example's plc (four tags every second, a 5 min stop an hour), once in
time order and once as one export per tag pasted together (four stretches merged while reading).
Each run is the command in its own process; its peak RSS is the whole process's. Prints medians
and the time per million lines, which stays flat if time is linear in the length; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import die_with_parent
from tests.unit.test_replay_files import REPLAY, WORKED_EXAMPLE, write_samples


def per_tag(sorted_file: Path, pasted: Path) -> None:
    """The same rows, one tag after the other: how exports per tag are often joined."""
    lines = sorted_file.read_text(encoding="utf-8").splitlines(keepends=True)
    with pasted.open("w", encoding="utf-8") as out:
        out.write(lines[0])
        for tag in ("running", "fault", "total", "good"):
            out.writelines(line for line in lines[1:] if f",plc,{tag}," in line)


def run_once(samples: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one replay."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*REPLAY, str(WORKED_EXAMPLE), "--input", str(samples), "--output", str(out)],
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not every child's
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"replay of {samples} failed with exit code {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main(args: argparse.Namespace) -> int:
    print(f"{'lines':>10} {'file':<10} {'wall s':>8} {'s per 1e6':>10} {'peak RSS MB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for lines in args.lines:
            in_order, pasted = workdir / f"{lines}.csv", workdir / f"{lines}-per-tag.csv"
            write_samples(in_order, lines)
            per_tag(in_order, pasted)
            for name, samples in (("in order", in_order), ("per tag", pasted)):
                runs = [run_once(samples, workdir / "out.jsonl") for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                peak = statistics.median(r[1] for r in runs)
                print(
                    f"{lines:>10,} {name:<10} {wall:>8.2f} {wall / lines * 1e6:>10.2f} {peak:>12.0f}"
                )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    sys.exit(main(parser.parse_args()))
