"""Start-up cost of the CLI: `crossroads --help` vs `python -c pass`, in the same run.

Target: under 0.3 s above the bare interpreter. Run: .venv/bin/python bench/startup.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_of(cmd: list[str]) -> float:
    timed(cmd)  # warm the file cache
    return statistics.median(timed(cmd) for _ in range(RUNS))


def main() -> int:
    exe = Path(sys.executable).with_name("crossroads")
    cli = [str(exe)] if exe.exists() else [shutil.which("crossroads") or "crossroads"]
    baseline = median_of([sys.executable, "-c", "pass"])
    help_ = median_of([*cli, "--help"])
    extra = help_ - baseline
    print(f"python -c pass      : {baseline * 1000:7.1f} ms (median of {RUNS})")
    print(f"crossroads --help   : {help_ * 1000:7.1f} ms (median of {RUNS})")
    print(
        f"added by crossroads : {extra * 1000:7.1f} ms  (target < 300 ms)"
        f"  ratio {help_ / baseline:.2f}x"
    )
    return 0 if extra < 0.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
