"""Statistics: exact McNemar vs scipy, bootstrap coverage, sample sizes, the run summary."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from crossroads.evals import stats as stats_module
from crossroads.evals.stats import (
    DEFAULT_EFFECT,
    Interval,
    bootstrap_mean_ci,
    mcnemar_exact,
    paired_bootstrap_diff_ci,
    percentile_ci,
    sample_size_paired_binary,
    sample_size_paired_mean,
    summarize,
)

# ----------------------------------------------------------------------------- McNemar

NAMED_CASES = [(0, 0), (0, 5), (5, 0), (10, 2), (2, 10), (25, 25), (100, 70), (1, 0), (0, 1)]


@pytest.mark.parametrize(("b", "c"), NAMED_CASES)
def test_mcnemar_named_cases_match_scipy(b: int, c: int) -> None:
    expected = sps.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_mcnemar_grid_matches_scipy_and_statsmodels_definition() -> None:
    for b in range(41):
        for c in range(41):
            p = mcnemar_exact(b, c)
            if b + c == 0:
                assert p == 1.0
                continue
            k, n = min(b, c), b + c
            assert p == pytest.approx(sps.binomtest(k, n, 0.5).pvalue, rel=1e-12)
            # statsmodels.stats.contingency_tables.mcnemar(exact=True)
            assert p == pytest.approx(min(1.0, 2 * sps.binom.cdf(k, n, 0.5)), rel=1e-10)
            assert 0.0 < p <= 1.0
            assert p == mcnemar_exact(c, b)  # symmetric


@pytest.mark.parametrize(("b", "c"), [(600, 500), (700, 400), (3000, 2900), (5000, 4800)])
def test_mcnemar_large_counts_log_space(b: int, c: int) -> None:
    expected = sps.binomtest(c, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_rejects_bad_counts() -> None:
    for b, c in [(-1, 2), (1.5, 2), (True, 2)]:
        with pytest.raises(ValueError):
            mcnemar_exact(b, c)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_edge_cases_and_reproducibility() -> None:
    empty = bootstrap_mean_ci([])
    assert all(math.isnan(v) for v in (empty.estimate, empty.low, empty.high))
    assert empty.to_dict() == {"estimate": None, "low": None, "high": None}
    assert bootstrap_mean_ci([0.4]) == Interval(0.4, 0.4, 0.4)
    assert bootstrap_mean_ci([1.0, float("nan"), 1.0]) == Interval(1.0, 1.0, 1.0)
    x = np.random.default_rng(3).normal(size=500)
    assert bootstrap_mean_ci(x, seed=7) == bootstrap_mean_ci(list(x), seed=7)
    assert bootstrap_mean_ci(x, seed=7) != bootstrap_mean_ci(x, seed=8)
    ci = bootstrap_mean_ci(x)
    assert ci.estimate == pytest.approx(float(x.mean()))
    assert ci.low < ci.estimate < ci.high
    assert bootstrap_mean_ci(x, confidence=0.99).width > ci.width
    for bad in ({"confidence": 1.0}, {"confidence": 0.0}, {"n_resamples": 0}):
        with pytest.raises(ValueError):
            bootstrap_mean_ci(x, **bad)
    with pytest.raises(ValueError):
        bootstrap_mean_ci(np.ones((3, 3)))


def test_bootstrap_large_input_is_fast_and_blocked() -> None:
    x = np.random.default_rng(0).random(10_000)
    ci = bootstrap_mean_ci(x, n_resamples=2000)  # 20M draws, in blocks
    # the mean of 10,000 draws is normal to a fraction of a percent: the percentile
    # bootstrap's ends sit at mean ± 1.96 standard errors, within its Monte-Carlo error
    # (about 0.06 SE for the 2.5 % quantile of 2,000 resamples; 0.25 SE is four of those)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert ci.estimate == pytest.approx(x.mean(), rel=1e-12)
    assert ci.low == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert ci.high == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    assert ci.width == pytest.approx(2 * 1.96 * se, rel=0.1)


@pytest.mark.parametrize("kind", ["bernoulli", "normal"])
def test_bootstrap_coverage_by_simulation(kind: str) -> None:
    rng = np.random.default_rng(2024)
    runs, n = 1000, 100
    if kind == "bernoulli":
        data, true_mean = (rng.random((runs, n)) < 0.7).astype(float), 0.7
    else:
        data, true_mean = rng.normal(5.0, 2.0, size=(runs, n)), 5.0
    hits = sum(
        bootstrap_mean_ci(row, n_resamples=1000, seed=i).contains(true_mean)
        for i, row in enumerate(data)
    )
    assert 0.92 <= hits / runs <= 0.975


def test_paired_diff_ci_narrower_than_unpaired_when_correlated() -> None:
    rng = np.random.default_rng(11)
    n = 300
    difficulty = rng.normal(0.0, 1.0, n)  # shared per-item effect: strong correlation
    a = difficulty + rng.normal(0.0, 0.2, n)
    b = difficulty + 0.1 + rng.normal(0.0, 0.2, n)  # true mean(a - b) = -0.1
    paired = paired_bootstrap_diff_ci(a, b, seed=1)
    assert paired.estimate == pytest.approx(float((a - b).mean()))
    assert paired.contains(-0.1)
    assert paired.excludes_zero()
    # Unpaired: resample a and b independently.
    r = np.random.default_rng(1)
    boot = a[r.integers(0, n, (2000, n))].mean(1) - b[r.integers(0, n, (2000, n))].mean(1)
    unpaired_width = float(np.quantile(boot, 0.975) - np.quantile(boot, 0.025))
    assert paired.width < unpaired_width / 3
    with pytest.raises(ValueError):
        paired_bootstrap_diff_ci([1.0, 2.0], [1.0])


def test_percentile_ci_coverage_of_the_median() -> None:
    rng = np.random.default_rng(9)
    data = rng.exponential(1.0, size=(300, 200))
    hits = sum(
        percentile_ci(row, 50, n_resamples=500, seed=i).contains(math.log(2))
        for i, row in enumerate(data)
    )
    assert 0.90 <= hits / 300 <= 0.99


def test_percentile_ci_brackets_true_percentiles() -> None:
    x = np.random.default_rng(1).exponential(1.0, 5000)
    for q in (50.0, 95.0, 99.0):
        ci = percentile_ci(x, q)
        truth = -math.log(1 - q / 100)  # exponential(1) quantile
        assert ci.contains(truth), (q, ci, truth)
        assert ci.low <= ci.estimate <= ci.high
        assert ci.estimate == pytest.approx(float(np.percentile(x, q)))
    assert percentile_ci([2.5], 95) == Interval(2.5, 2.5, 2.5)
    assert math.isnan(percentile_ci([], 50).estimate)
    with pytest.raises(ValueError):
        percentile_ci(x, 101)


@pytest.mark.parametrize("n", [7, 20, 200])
def test_percentile_ci_fast_and_slow_paths_agree_exactly(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One definition (np.percentile's linear interpolation) on both paths: the
    count-matrix path and the per-resample path give the same interval, bit for bit,
    on the same data and seed; ties (rounded data) included."""
    x = np.round(np.random.default_rng(3).lognormal(0.0, 0.5, n), 1)
    qs = (0.0, 5.0, 50.0, 90.0, 95.0, 99.0, 100.0)
    fast = [percentile_ci(x, q, n_resamples=2000, seed=11) for q in qs]
    # Fewer cells per block than n x resamples sends the same call down the slow path.
    monkeypatch.setattr(stats_module, "_BLOCK_CELLS", n * 2000 - 1)
    slow = [percentile_ci(x, q, n_resamples=2000, seed=11) for q in qs]
    assert fast == slow
    # ... and both are the percentile of explicitly drawn resamples.
    idx = np.random.default_rng(11).integers(0, n, size=(2000, n), dtype=np.int32)
    boot = np.percentile(x[idx], 95.0, axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    assert (fast[4].low, fast[4].high) == (float(low), float(high))


def _mc_tolerance(make: Callable[[int], Interval]) -> tuple[Interval, float, float]:
    """Seed 0's interval and 4 Monte-Carlo standard errors of its ends (from 8 seeds)."""
    runs = [make(seed) for seed in range(1, 9)]
    sd_low = float(np.std([r.low for r in runs], ddof=1))
    sd_high = float(np.std([r.high for r in runs], ddof=1))
    return make(0), 4 * sd_low * math.sqrt(2), 4 * sd_high * math.sqrt(2)


@pytest.mark.parametrize("q", [50.0, 95.0])
def test_percentile_ci_matches_scipy_bootstrap_percentile(q: float) -> None:
    x = np.random.default_rng(5).lognormal(0.0, 0.5, 200)
    ref = sps.bootstrap(
        (x,),
        lambda s, axis: np.percentile(s, q, axis=axis),
        n_resamples=20000,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(123),
    ).confidence_interval
    ours, tol_low, tol_high = _mc_tolerance(
        lambda seed: percentile_ci(x, q, n_resamples=20000, seed=seed)
    )
    assert 0 < max(tol_low, tol_high) < ours.width / 5  # a tight comparison
    assert abs(ours.low - ref.low) <= tol_low, (ours, ref, tol_low)
    assert abs(ours.high - ref.high) <= tol_high, (ours, ref, tol_high)


def test_bootstrap_mean_ci_matches_scipy_bootstrap_percentile() -> None:
    x = np.random.default_rng(6).exponential(1.0, 150)
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(7)
    ).confidence_interval
    ours, tol_low, tol_high = _mc_tolerance(
        lambda seed: bootstrap_mean_ci(x, n_resamples=20000, seed=seed)
    )
    assert 0 < max(tol_low, tol_high) < ours.width / 5
    assert abs(ours.low - ref.low) <= tol_low, (ours, ref, tol_low)
    assert abs(ours.high - ref.high) <= tol_high, (ours, ref, tol_high)


# ------------------------------------------------------------------------- sample size


def test_sample_size_hand_computed() -> None:
    # z_.975 = 1.959964, z_.8 = 0.841621, z_.995 = 2.575829, z_.9 = 1.281552
    # (1.959964*sqrt(.2) + 0.841621*sqrt(.19))^2 / .01 = 154.60 -> 155
    assert sample_size_paired_binary(0.2, 0.1) == 155
    # (1.959964*sqrt(.3) + 0.841621*sqrt(.2975))^2 / .0025 = 939.50 -> 940
    assert sample_size_paired_binary(0.3, 0.05) == 940
    assert sample_size_paired_binary(0.3, -0.05) == 940  # direction does not matter
    # ((1.959964 + 0.841621) * 1 / 0.5)^2 = 31.40 -> 32
    assert sample_size_paired_mean(1.0, 0.5) == 32
    # ((1.959964 + 0.841621) * 0.3 / 0.05)^2 = 282.56 -> 283
    assert sample_size_paired_mean(0.3, 0.05) == 283
    # ((2.575829 + 1.281552) * 1 / 0.5)^2 = 59.52 -> 60
    assert sample_size_paired_mean(1.0, 0.5, alpha=0.01, power=0.9) == 60


def test_sample_size_monotonic_and_validated() -> None:
    deltas = [0.2, 0.1, 0.05, 0.02, 0.01]
    binary = [sample_size_paired_binary(0.25, d) for d in deltas]
    mean = [sample_size_paired_mean(0.4, d) for d in deltas]
    assert binary == sorted(binary) and len(set(binary)) == len(binary)
    assert mean == sorted(mean) and len(set(mean)) == len(mean)
    assert sample_size_paired_binary(0.25, 0.1, power=0.9) > sample_size_paired_binary(0.25, 0.1)
    for args in [(0.1, 0.2), (0.0, 0.0), (1.5, 0.1)]:
        with pytest.raises(ValueError):
            sample_size_paired_binary(*args)
    with pytest.raises(ValueError):
        sample_size_paired_mean(1.0, 0.0)
    with pytest.raises(ValueError):
        sample_size_paired_mean(1.0, 0.1, alpha=1.5)


# --------------------------------------------------------------------------- summarize

N_ITEMS = 40


def _row(item: int, model: str, *, passed: bool | None, **kw: Any) -> dict[str, Any]:
    tags = (["even"] if item % 2 == 0 else []) + (["hard"] if item < 10 else [])
    row: dict[str, Any] = {
        "item_id": f"i{item:02d}",
        "model": model,
        "repeat": 0,
        "score": None if passed is None else float(passed),
        "passed": passed,
        "format_error": False,
        "tags": tags,
        "latency_s": 1.0,
        "ttft_s": 0.2,
        "tokens_per_s": 50.0,
        "cost_usd": 0.001,
        "cached": False,
        "error": None,
    }
    row.update(kw)
    return row


def _rows() -> list[dict[str, Any]]:
    """base and twin pass items 0-19 and fail 20-39; good passes all, with 3 repeats."""
    rows = []
    for i in range(N_ITEMS):
        if i == 39:  # base errored here: scores 0, failed, excluded from latency
            rows.append(_row(i, "base", passed=None, error="timeout", latency_s=500.0))
        elif i == 38:
            rows.append(_row(i, "base", passed=False, format_error=True))
        else:
            rows.append(_row(i, "base", passed=i < 20, latency_s=1.0 + i / 100))
        rows.append(_row(i, "twin", passed=i < 20, cost_usd=None))
        for rep in range(3):  # the cached repeat has a huge latency that must not count
            cached = rep == 0
            lat = 100.0 if cached else 2.0
            rows.append(_row(i, "good", passed=True, repeat=rep, cached=cached, latency_s=lat))
    return rows


def test_summarize_models() -> None:
    out = summarize(_rows(), ["base", "twin", "good"])
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["confidence"] == 0.95
    base, twin, good = (out["models"][m] for m in ("base", "twin", "good"))

    assert (base["n_items"], base["n_results"]) == (40, 40)
    assert (good["n_items"], good["n_results"]) == (40, 120)  # repeats averaged per item
    assert base["mean"] == 0.5 and twin["mean"] == 0.5 and good["mean"] == 1.0
    assert base["pass_rate"] == 0.5 and good["pass_rate"] == 1.0
    assert base["ci_low"] < 0.5 < base["ci_high"]
    assert good["ci_low"] == good["ci_high"] == 1.0
    assert (base["errors"], base["format_errors"]) == (1, 1)
    assert (twin["errors"], twin["format_errors"]) == (0, 0)

    # Latency: errors and cached results excluded.
    assert base["latency_p99"]["high"] < 2.0  # the 500 s error is not there
    base_latencies = [1 + i / 100 for i in range(38)] + [1.0]  # item 38 at the default 1.0
    assert base["latency_p50"]["estimate"] == pytest.approx(float(np.median(base_latencies)))
    assert good["latency_p50"] == {"estimate": 2.0, "low": 2.0, "high": 2.0}
    assert good["latency_p99"]["estimate"] == 2.0  # the 100 s cached repeats are not there
    assert good["ttft_p50"]["estimate"] == 0.2
    assert good["tokens_per_s_median"] == 50.0

    assert good["cost_usd_total"] == pytest.approx(0.12)
    assert good["cost_usd_per_item"] == pytest.approx(0.001)
    assert twin["cost_usd_total"] is None and twin["cost_usd_per_item"] is None

    assert set(base["by_tag"]) == {"even", "hard"}
    assert base["by_tag"]["even"]["n"] == 20 and base["by_tag"]["even"]["mean"] == 0.5
    assert base["by_tag"]["hard"] == {"n": 10, "mean": 1.0, "ci_low": 1.0, "ci_high": 1.0}


def test_summarize_pairs() -> None:
    out = summarize(_rows(), ["base", "twin", "good"])
    pairs = {(p["a"], p["b"]): p for p in out["pairs"]}
    assert list(pairs) == [("base", "twin"), ("base", "good"), ("twin", "good")]

    same = pairs[("base", "twin")]
    assert same["n"] == 40 and same["mean_diff"] == 0.0
    assert (same["mcnemar_b"], same["mcnemar_c"], same["mcnemar_p"]) == (0, 0, 1.0)
    assert same["significant"] is False
    assert same["verdict"].startswith("no significant difference (95% CI")
    assert same["items_needed"] is None  # no discordant items: nothing to size from

    better = pairs[("base", "good")]
    assert better["mean_diff"] == -0.5
    assert (better["mcnemar_b"], better["mcnemar_c"]) == (0, 20)
    assert better["mcnemar_p"] == pytest.approx(sps.binomtest(0, 20, 0.5).pvalue)
    assert better["significant"] is True
    assert better["ci_high"] < 0
    assert better["verdict"].startswith("good better than base by 0.50 (95% CI 0.")
    # psi = .5, delta = .5: (1.959964*sqrt(.5) + 0.841621*sqrt(.25))^2 / .25 = 13.06 -> 14
    assert better["items_needed"] == 14


def test_summarize_repeats_non_binary_and_default_effect() -> None:
    rows = []
    for i in range(31):
        for rep, s in enumerate((0.2, 0.4) if i == 0 else (0.6 + (0.1 if i % 2 else -0.1),)):
            rows.append(_row(i, "x", passed=None, score=s, repeat=rep, tags=[]))
        # y differs from x symmetrically: observed mean difference exactly 0
        rows.append(_row(i, "y", passed=None, score=(0.3 if i == 0 else 0.6), tags=[]))
    rows.append(_row(99, "ignored-model", passed=True))
    out = summarize(rows, ["x", "y", "absent"], confidence=0.9, seed=3)
    x = out["models"]["x"]
    assert x["n_items"] == 31 and x["n_results"] == 32
    per_item = [0.3] + [0.6 + (0.1 if i % 2 else -0.1) for i in range(1, 31)]
    assert x["mean"] == pytest.approx(sum(per_item) / 31)  # repeats averaged first
    assert x["mean"] != pytest.approx((0.2 + 0.4 + sum(per_item[1:])) / 32)
    assert x["pass_rate"] is None and x["by_tag"] == {}
    absent = out["models"]["absent"]
    assert absent["n_items"] == 0 and absent["mean"] is None
    assert absent["latency_p50"] == {"estimate": None, "low": None, "high": None}
    assert "ignored-model" not in out["models"]

    pair = next(p for p in out["pairs"] if (p["a"], p["b"]) == ("x", "y"))
    assert pair["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    assert pair["mcnemar_p"] is None and pair["significant"] is False
    assert pair["verdict"].startswith("no significant difference (90% CI")
    diffs = np.array(per_item) - np.array([0.3] + [0.6] * 30)
    expected = sample_size_paired_mean(float(diffs.std(ddof=1)), DEFAULT_EFFECT, alpha=0.1)
    assert pair["items_needed"] == expected
    empty = next(p for p in out["pairs"] if p["b"] == "absent")
    assert empty["n"] == 0 and empty["significant"] is False and empty["mean_diff"] is None
    json.dumps(out, allow_nan=False)


def test_summarize_inconsistent_repeats_disable_mcnemar() -> None:
    rows = []
    for i in range(20):
        rows.append(_row(i, "a", passed=True))
        rows.append(_row(i, "a", passed=i != 0, repeat=1))  # item 0: 1 of 2 passes
        rows.append(_row(i, "b", passed=False))
    out = summarize(rows, ["a", "b"])
    assert out["models"]["a"]["pass_rate"] == pytest.approx((0.5 + 19) / 20)
    pair = out["pairs"][0]
    assert pair["mcnemar_p"] is None and pair["mcnemar_b"] is None
    assert pair["significant"] is True  # 20 items, CI well above 0
    assert pair["verdict"].startswith("a better than b by 0.97")


def test_summarize_few_items_without_mcnemar_not_significant() -> None:
    rows = [_row(i, m, passed=None, score=s) for i in range(4) for m, s in (("a", 0.9), ("b", 0.1))]
    pair = summarize(rows, ["a", "b"])["pairs"][0]
    assert pair["ci_low"] == pair["ci_high"] == pytest.approx(0.8)
    assert pair["significant"] is False
    assert "only 4 shared items" in pair["verdict"]


def test_summarize_item_everyone_errored_keeps_mcnemar() -> None:
    rows = []
    for i in range(12):
        rows.append(_row(i, "a", passed=True))
        rows.append(_row(i, "b", passed=i < 2))
    for m in ("a", "b"):
        rows.append(_row(12, m, passed=None, error="context too long"))
    out = summarize(rows, ["a", "b"])
    assert out["models"]["a"]["pass_rate"] == pytest.approx(12 / 13)
    assert out["models"]["a"]["errors"] == 1
    pair = out["pairs"][0]
    assert pair["n"] == 13
    assert (pair["mcnemar_b"], pair["mcnemar_c"]) == (10, 0)
    assert pair["mcnemar_p"] == pytest.approx(sps.binomtest(0, 10, 0.5).pvalue)
    assert pair["significant"] is True
