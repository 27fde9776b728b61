"""Statistics for comparing models: bootstrap CIs, exact McNemar, sample sizes, run summary.

Every resampling function is pure and reproducible: it draws from
``numpy.random.default_rng(seed)`` and resamples items with replacement in vectorised
blocks (an index matrix of shape ``(block, n)``, blocks capped at ~4M cells so memory
stays bounded), so 2,000 resamples of 10,000 items take a fraction of a second.
Intervals are percentile-bootstrap intervals; the estimate is the plain sample
statistic. NaN entries (missing measurements) are ignored; no values give an all-NaN
:class:`Interval`, one value a degenerate one.

:func:`summarize` turns result rows into the run summary (see its docstring for the
conventions: the item is the unit of resampling, errors score 0 and fail, cached answers
have no latency, and the rule for calling a difference significant).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_EFFECT",
    "MIN_ITEMS_FOR_BOOTSTRAP_SIGNIFICANCE",
    "Interval",
    "bootstrap_mean_ci",
    "mcnemar_exact",
    "paired_bootstrap_diff_ci",
    "percentile_ci",
    "sample_size_paired_binary",
    "sample_size_paired_mean",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]
Values = Sequence[float] | npt.NDArray[Any]

DEFAULT_EFFECT = 0.05
"""Difference the ``items_needed`` hint targets when the observed difference is ~0."""
MIN_ITEMS_FOR_BOOTSTRAP_SIGNIFICANCE = 10
"""Without McNemar, fewer shared items than this are never called significant."""

_BLOCK_CELLS = 1 << 22
_EXACT_MCNEMAR_MAX_N = 1000
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate and its confidence interval ``[low, high]`` (NaN when undefined)."""

    estimate: float
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (False for NaN)."""
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, float | None]:
        """``{"estimate", "low", "high"}`` as JSON-safe floats (NaN becomes None)."""
        return {"estimate": _jf(self.estimate), "low": _jf(self.low), "high": _jf(self.high)}


def _jf(x: float | None) -> float | None:
    """A plain, finite float for JSON, or None."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _as_1d(values: Values) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of numbers, got shape {arr.shape}")
    return arr


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")


def _bootstrap(
    x: FloatArray,
    stat: Callable[[FloatArray], FloatArray],
    estimates: Sequence[float],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> list[Interval]:
    """Percentile intervals for ``k`` statistics; ``stat`` maps (block, n) -> (block, k)."""
    n = x.size
    if n == 0:
        return [Interval(_NAN, _NAN, _NAN) for _ in estimates]
    if n == 1:
        return [Interval(float(e), float(e), float(e)) for e in estimates]
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_CELLS // n))
    parts: list[FloatArray] = []
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n), dtype=np.int32 if n < 2**31 else np.int64)
        parts.append(stat(x[idx]))
        done += size
    boot = np.concatenate(parts, axis=0)
    tail = (1.0 - confidence) / 2.0
    lows, highs = np.quantile(boot, [tail, 1.0 - tail], axis=0)
    return [
        Interval(float(e), float(lo), float(hi))
        for e, lo, hi in zip(estimates, lows, highs, strict=True)
    ]


def bootstrap_mean_ci(
    values: Values, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Percentile-bootstrap confidence interval of the mean."""
    _check(confidence, n_resamples)
    x = _as_1d(values)
    x = x[~np.isnan(x)]
    est = float(x.mean()) if x.size else _NAN

    if x.size > 1 and x.size * n_resamples <= _BLOCK_CELLS:
        # Same draws as _bootstrap, as a (resamples x n) count matrix shared by every call
        # with this n and seed: each resample's mean is then one matrix-vector product.
        means = _resample_counts(x.size, n_resamples, seed) @ x / x.size
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(means, [tail, 1.0 - tail])
        return Interval(est, float(low), float(high))

    def stat(m: FloatArray) -> FloatArray:
        return np.asarray(m.mean(axis=1)[:, np.newaxis], dtype=np.float64)

    return _bootstrap(x, stat, [est], confidence=confidence, n_resamples=n_resamples, seed=seed)[0]


@functools.lru_cache(maxsize=16)
def _resample_counts_int(n: int, n_resamples: int, seed: int) -> npt.NDArray[np.int32]:
    """:func:`_resample_counts` as int32 (cheaper to permute and accumulate)."""
    counts = _resample_counts(n, n_resamples, seed).astype(np.int32)
    counts.setflags(write=False)
    return counts


@functools.lru_cache(maxsize=16)
def _resample_counts(n: int, n_resamples: int, seed: int) -> FloatArray:
    """How often each of ``n`` items is drawn in each resample (the draws of _bootstrap)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n), dtype=np.int32)
    flat = (idx + (np.arange(n_resamples, dtype=np.int64) * n)[:, np.newaxis]).ravel()
    counts: FloatArray = (
        np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
    )
    counts.setflags(write=False)
    return counts


def paired_bootstrap_diff_ci(
    a: Values, b: Values, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """CI of ``mean(a - b)`` for aligned per-item scores, resampling items jointly.

    Pairs where either side is NaN are dropped.
    """
    xa, xb = _as_1d(a), _as_1d(b)
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must be aligned per item: {xa.size} vs {xb.size} values")
    return bootstrap_mean_ci(xa - xb, confidence=confidence, n_resamples=n_resamples, seed=seed)


def _percentile_cis(
    values: Values, qs: Sequence[float], *, confidence: float, n_resamples: int, seed: int
) -> list[Interval]:
    _check(confidence, n_resamples)
    for q in qs:
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {q}")
    x = _as_1d(values)
    x = x[~np.isnan(x)]
    qarr = np.asarray(qs, dtype=np.float64)
    est: list[float] = [float(v) for v in np.percentile(x, qarr)] if x.size else [_NAN] * len(qs)

    if x.size > 1 and x.size * n_resamples <= _BLOCK_CELLS:
        # Resampled order statistics from the shared count matrix: sort once, then each
        # resample's k-th smallest value (0-based) is the first sorted value whose
        # cumulative count exceeds k, no per-row sorting. The percentile is then the same
        # linear interpolation between neighbouring order statistics as np.percentile's
        # default, so this path and the per-resample one below give identical intervals.
        n = x.size
        order = np.argsort(x, kind="stable")
        xs = x[order]
        cum = np.cumsum(_resample_counts_int(n, n_resamples, seed)[:, order], axis=1)

        def kth(k: int) -> FloatArray:
            return np.asarray(xs[np.minimum((cum <= k).sum(axis=1), n - 1)], dtype=np.float64)

        cols = []
        for q in qarr:
            below, frac = _linear_position(n, float(q))
            lo_v = kth(below)
            cols.append(lo_v if frac == 0.0 else _lerp(lo_v, kth(below + 1), frac))
        boot = np.stack(cols, axis=1)
        tail = (1.0 - confidence) / 2.0
        lows, highs = np.quantile(boot, [tail, 1.0 - tail], axis=0)
        return [
            Interval(e, float(lo), float(hi)) for e, lo, hi in zip(est, lows, highs, strict=True)
        ]

    def stat(m: FloatArray) -> FloatArray:
        return np.asarray(np.percentile(m, qarr, axis=1).T, dtype=np.float64)

    return _bootstrap(x, stat, est, confidence=confidence, n_resamples=n_resamples, seed=seed)


def _linear_position(n: int, q: float) -> tuple[int, float]:
    """Where the ``q``-th percentile (0..100) of ``n`` sorted values lies, as
    ``np.percentile``'s default ("linear", Hyndman & Fan type 7) computes it:
    ``h = (n - 1)·q/100``: the index below it and the interpolation weight."""
    h = (n - 1) * (q / 100.0)  # numpy's virtual index, same float operations
    if h >= n - 1:
        return n - 1, 0.0
    if h < 0:
        return 0, 0.0
    below = math.floor(h)
    return below, h - below


def _lerp(a: FloatArray, b: FloatArray, t: float) -> FloatArray:
    """``a + (b - a)·t``, evaluated from the nearer end as numpy does (bit-identical)."""
    d = b - a
    return np.asarray(b - d * (1.0 - t) if t >= 0.5 else a + d * t, dtype=np.float64)


def percentile_ci(
    values: Values, q: float, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Bootstrap CI of the ``q``-th percentile (0..100).

    The percentile of the sample and of every resample is ``np.percentile``'s default:
    linear interpolation between the order statistics around ``(n - 1)·q/100``
    (Hyndman & Fan type 7). The interval is the percentile interval of the resampled
    percentiles."""
    (ci,) = _percentile_cis(values, [q], confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ci


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    The binomial test of ``min(b, c)`` successes in ``b + c`` trials at p = 0.5:
    ``min(1, 2 * BinomCDF(min(b, c); b + c, 0.5))``; 1.0 when there are no discordant
    pairs. Exact integer arithmetic up to 1,000 discordant pairs, log-space beyond.
    """
    if isinstance(b, bool) or isinstance(c, bool) or int(b) != b or int(c) != c:
        raise ValueError(f"b and c must be integers, got {b!r}, {c!r}")
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"b and c must be non-negative, got {b}, {c}")
    n, k = b + c, min(b, c)
    if 2 * k + 1 >= n:  # the lower tail holds at least half the mass
        return 1.0
    if n <= _EXACT_MCNEMAR_MAX_N:
        tail = sum(math.comb(n, i) for i in range(k + 1))
        return min(1.0, tail / (1 << (n - 1)))
    # 2*pmf(k), then pmf(i-1) = pmf(i) * i / (n - i + 1) down to i = 1.
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    log_top -= (n - 1) * math.log(2.0)
    i = np.arange(k, 0, -1, dtype=np.float64)
    rest = float(np.cumprod(i / (n - i + 1.0)).sum()) if k else 0.0
    return min(1.0, math.exp(log_top) * (1.0 + rest))


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    nd = NormalDist()
    return nd.inv_cdf(1.0 - alpha / 2.0), nd.inv_cdf(power)


def _ceil(x: float) -> int:
    return max(1, math.ceil(x - 1e-9))  # tolerance: 100.0000000001 is 100 items


def sample_size_paired_binary(
    p_discordant: float, delta: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Items needed for McNemar to detect a pass-rate difference ``delta`` (Connor 1987).

    ``n = (z_{1-α/2}·√ψ + z_{1-β}·√(ψ − δ²))² / δ²`` with ψ the expected share of
    discordant items (one model right, the other wrong); needs ``0 < |δ| <= ψ <= 1``.
    """
    za, zb = _z(alpha, power)
    psi, d = float(p_discordant), abs(float(delta))
    if not 0.0 < psi <= 1.0:
        raise ValueError(f"p_discordant must be in (0, 1], got {p_discordant}")
    if not 0.0 < d <= psi:
        raise ValueError(f"need 0 < |delta| <= p_discordant, got delta={delta}, psi={psi}")
    return _ceil((za * math.sqrt(psi) + zb * math.sqrt(psi - d * d)) ** 2 / (d * d))


def sample_size_paired_mean(
    sd_diff: float, delta: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Items needed to detect a mean per-item difference ``delta``.

    ``n = ((z_{1-α/2} + z_{1-β})·sd/δ)²`` with ``sd`` the SD of per-item differences.
    """
    za, zb = _z(alpha, power)
    sd, d = float(sd_diff), abs(float(delta))
    if not (sd >= 0.0 and math.isfinite(sd)):
        raise ValueError(f"sd_diff must be finite and non-negative, got {sd_diff}")
    if d == 0.0 or not math.isfinite(d):
        raise ValueError(f"delta must be finite and non-zero, got {delta}")
    return _ceil(((za + zb) * sd / d) ** 2)


# --------------------------------------------------------------------------- summary


@dataclass
class _ModelRows:
    scores: dict[Hashable, list[float]] = field(default_factory=dict)
    passes: dict[Hashable, list[float]] = field(default_factory=dict)
    tags: dict[Hashable, set[str]] = field(default_factory=dict)
    costs: dict[Hashable, list[float]] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    n_results: int = 0
    errors: int = 0
    format_errors: int = 0

    def items(self) -> list[Hashable]:
        return sorted(self.scores, key=str)  # order-independent resampling

    def item_scores(self, ids: Sequence[Hashable]) -> FloatArray:
        return np.array([math.fsum(self.scores[i]) / len(self.scores[i]) for i in ids])

    def pass_fractions(self, ids: Sequence[Hashable]) -> FloatArray:
        return np.array([math.fsum(self.passes[i]) / len(self.passes[i]) for i in ids])


def _num(x: Any) -> float | None:
    return None if x is None else _jf(float(x))


def _collect(rows: Iterable[Mapping[str, Any]], models: Sequence[str]) -> dict[str, _ModelRows]:
    data = {m: _ModelRows() for m in models}
    kept = [r for r in rows if r.get("model") in data]
    binary = {r["item_id"] for r in kept if r.get("passed") is not None}
    if binary:  # items every model errored on are pass/fail too (all failed)
        binary |= {r["item_id"] for r in kept} - {r["item_id"] for r in kept if not r.get("error")}
    for r in kept:
        m, item = data[r["model"]], r["item_id"]
        failed = bool(r.get("error"))
        m.n_results += 1
        m.errors += failed
        m.format_errors += bool(r.get("format_error"))
        score = None if failed else _num(r.get("score"))
        m.scores.setdefault(item, []).append(0.0 if score is None else score)
        if item in binary:
            m.passes.setdefault(item, []).append(float(r.get("passed") is True and not failed))
        m.tags.setdefault(item, set()).update(str(t) for t in r.get("tags") or ())
        if (cost := _num(r.get("cost_usd"))) is not None:
            m.costs.setdefault(item, []).append(cost)
        if not failed and not r.get("cached"):
            sinks = (m.latency, m.ttft, m.tokens_per_s)
            for key, sink in zip(("latency_s", "ttft_s", "tokens_per_s"), sinks, strict=True):
                if (v := _num(r.get(key))) is not None:
                    sink.append(v)
    return data


def _ci_fields(ci: Interval) -> dict[str, float | None]:
    return {"mean": _jf(ci.estimate), "ci_low": _jf(ci.low), "ci_high": _jf(ci.high)}


def _model_summary(m: _ModelRows, confidence: float, seed: int) -> dict[str, Any]:
    ids = m.items()
    opts: dict[str, Any] = {"confidence": confidence, "seed": seed}
    ci = bootstrap_mean_ci(m.item_scores(ids), **opts)
    bin_ids = [i for i in ids if i in m.passes]
    lat = _percentile_cis(m.latency, [50.0, 95.0, 99.0], n_resamples=2000, **opts)
    ttft = percentile_ci(m.ttft, 50.0, **opts)
    by_tag: dict[str, Any] = {}
    for tag in sorted({t for i in ids for t in m.tags[i]}):
        tagged = [i for i in ids if tag in m.tags[i]]
        by_tag[tag] = {
            "n": len(tagged),
            **_ci_fields(bootstrap_mean_ci(m.item_scores(tagged), **opts)),
        }
    per_item_cost = [math.fsum(c) / len(c) for c in m.costs.values()]
    total_cost = math.fsum(c for cs in m.costs.values() for c in cs)
    return {
        "n_items": len(ids),
        "n_results": m.n_results,
        **_ci_fields(ci),
        "pass_rate": _jf(float(m.pass_fractions(bin_ids).mean())) if bin_ids else None,
        "errors": m.errors,
        "format_errors": m.format_errors,
        "latency_p50": lat[0].to_dict(),
        "latency_p95": lat[1].to_dict(),
        "latency_p99": lat[2].to_dict(),
        "ttft_p50": ttft.to_dict(),
        "tokens_per_s_median": _jf(float(np.median(m.tokens_per_s))) if m.tokens_per_s else None,
        "cost_usd_total": _jf(total_cost) if m.costs else None,
        "cost_usd_per_item": _jf(math.fsum(per_item_cost) / len(m.costs)) if m.costs else None,
        "by_tag": by_tag,
    }


def _fmt(x: float) -> str:
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s.replace("-", "−")


def _pair_summary(
    a: str, b: str, ma: _ModelRows, mb: _ModelRows, confidence: float, seed: int
) -> dict[str, Any]:
    common = [i for i in ma.items() if i in mb.scores]
    n = len(common)
    out: dict[str, Any] = {"a": a, "b": b, "n": n}
    if n == 0:
        nulls = ("mean_diff", "ci_low", "ci_high", "mcnemar_b", "mcnemar_c", "mcnemar_p")
        out.update(dict.fromkeys(nulls))
        out.update(significant=False, verdict="no items answered by both models", items_needed=None)
        return out
    sa, sb = ma.item_scores(common), mb.item_scores(common)
    ci = paired_bootstrap_diff_ci(sa, sb, confidence=confidence, seed=seed)
    diff = ci.estimate
    mc_b = mc_c = None
    p = None
    if all(i in ma.passes and i in mb.passes for i in common):
        pa, pb = ma.pass_fractions(common), mb.pass_fractions(common)
        if np.all((pa == 0.0) | (pa == 1.0)) and np.all((pb == 0.0) | (pb == 1.0)):
            mc_b = int(np.sum((pa == 1.0) & (pb == 0.0)))
            mc_c = int(np.sum((pa == 0.0) & (pb == 1.0)))
            p = mcnemar_exact(mc_b, mc_c)
    alpha = 1.0 - confidence
    if p is not None:
        significant = ci.excludes_zero() and p < alpha
    else:
        significant = ci.excludes_zero() and n >= MIN_ITEMS_FOR_BOOTSTRAP_SIGNIFICANCE
    label = f"{confidence * 100:g}% CI"
    if significant:
        win, lose, lo, hi = (a, b, ci.low, ci.high) if diff > 0 else (b, a, -ci.high, -ci.low)
        verdict = (
            f"{win} better than {lose} by {_fmt(abs(diff))} ({label} {_fmt(lo)} to {_fmt(hi)})"
        )
    else:
        verdict = f"no significant difference ({label} {_fmt(ci.low)} to {_fmt(ci.high)})"
        if p is None and n < MIN_ITEMS_FOR_BOOTSTRAP_SIGNIFICANCE:
            verdict += f"; only {n} shared items"
    needed: int | None = None
    if mc_b is not None and mc_c is not None:
        psi, d = (mc_b + mc_c) / n, abs(mc_b - mc_c) / n
        d = d if d > 1e-9 else DEFAULT_EFFECT
        if 0.0 < d <= psi:
            needed = sample_size_paired_binary(psi, d, alpha=alpha)
    elif n >= 2:
        sd = float(np.std(sa - sb, ddof=1))
        d = abs(diff) if abs(diff) > 1e-9 else DEFAULT_EFFECT
        if sd > 0.0 and math.isfinite(sd):
            needed = sample_size_paired_mean(sd, d, alpha=alpha)
    out.update(
        mean_diff=_jf(diff),
        ci_low=_jf(ci.low),
        ci_high=_jf(ci.high),
        mcnemar_b=mc_b,
        mcnemar_c=mc_c,
        mcnemar_p=p,
        significant=bool(significant),
        verdict=verdict,
        items_needed=needed,
    )
    return out


def summarize(
    results: Iterable[Mapping[str, Any]],
    models: Sequence[str],
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The run summary behind the CLI table and the HTML/JSON reports (JSON-serialisable).

    Conventions:

    * Rows of models not in ``models`` are ignored; ``models`` fixes the output order.
    * The item is the unit of resampling: a model's repeats of an item are averaged first.
    * A row with an ``error`` (or no score) scores 0 and, on a pass/fail item, counts as
      failed. An item is pass/fail when any kept row for it has ``passed`` set (or every
      row for it errored and other items are pass/fail); ``pass_rate`` is the mean per-item
      pass fraction over such items (None when the model has none).
    * Latency, TTFT and tokens/s exclude cached results and errors (rows are the unit);
      costs include cached rows (they price the answer, not this run);
      ``cost_usd_per_item`` is the mean over items of the mean cost per repeat.
    * Pairs: each unordered pair ``(a, b)`` in ``models`` order, on the items both
      answered; ``mean_diff`` is mean(a − b) of per-item scores with a paired bootstrap CI.
      McNemar applies when every shared item is pass/fail with a consistent outcome per
      model (always so with one repeat); ``mcnemar_b`` counts items a passed and b
      failed, ``mcnemar_c`` the reverse.
    * Significance rule: the CI must exclude 0 and, when McNemar applies, its exact
      p-value must be below ``1 - confidence`` (0.05 by default) — both tests must agree.
      Without McNemar, at least ``MIN_ITEMS_FOR_BOOTSTRAP_SIGNIFICANCE`` shared items are
      required as well, since percentile-bootstrap CIs are too narrow on tiny samples.
    * ``items_needed``: items to detect the observed difference (``DEFAULT_EFFECT`` when
      it is ~0) at alpha ``1 - confidence`` and 80% power — McNemar's formula with the
      observed discordant share, else the paired-mean formula with the observed SD of
      per-item differences; None when those are 0 or undefined.
    """
    _check(confidence, 1)
    names = list(dict.fromkeys(models))
    data = _collect(results, names)
    return {
        "models": {m: _model_summary(data[m], confidence, seed) for m in names},
        "pairs": [
            _pair_summary(a, b, data[a], data[b], confidence, seed)
            for a, b in combinations(names, 2)
        ],
        "confidence": float(confidence),
    }
