"""Cost of the latency percentile CIs (p50/p95/p99, 2,000 resamples) in the run summary:
the count-matrix path (used up to 4M cells) against the per-resample path it must equal.

    .venv/bin/python bench/stats.py [n ...]

Interleaved rounds, median per path; prints milliseconds per call — the count-matrix
path cold (its resample counts built for this n) and warm (reused, as for the second and
later models of a summary) — and checks that both paths give identical intervals.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from crossroads.evals import stats

QS = [50.0, 95.0, 99.0]


def once(x: np.ndarray, slow: bool, cold: bool = True) -> tuple[float, list[stats.Interval]]:
    saved = stats._BLOCK_CELLS
    if slow:
        stats._BLOCK_CELLS = x.size * 2000 - 1
    if cold:
        stats._resample_counts.cache_clear()
        stats._resample_counts_int.cache_clear()
    try:
        t = time.perf_counter()
        cis = stats._percentile_cis(x, QS, confidence=0.95, n_resamples=2000, seed=0)
        return time.perf_counter() - t, cis
    finally:
        stats._BLOCK_CELLS = saved


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000]
    for n in sizes:
        x = np.random.default_rng(0).lognormal(0.0, 0.6, n)
        cold_t, warm_t, slow_t = [], [], []
        for _ in range(7):
            t, fast = once(x, False)
            cold_t.append(t)
            t, warm = once(x, False, cold=False)
            warm_t.append(t)
            t, slow = once(x, True)
            slow_t.append(t)
            assert fast == warm == slow, (fast, slow)
        ms = {
            k: statistics.median(v) * 1e3 for k, v in (("c", cold_t), ("w", warm_t), ("s", slow_t))
        }
        print(
            f"n={n}: count matrix cold {ms['c']:.1f} ms, warm {ms['w']:.1f} ms; "
            f"per resample {ms['s']:.1f} ms (identical intervals)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
