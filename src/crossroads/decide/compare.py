"""``crossroads compare``: measure, cost, score, advise, and assemble the report.

1. Models: the ones asked for, or by default the embedded ``local/smollm2``, every model
   in crossroads.yaml and a reference set of closed and open catalog models. A model
   that can be called here (a key in the environment, a local file) is measured with the
   suite; the others keep their catalog facts and vendor-published benchmarks, marked
   "not measured here".
2. Cost: each model's monthly cost at the profile's volume and across volumes — list
   prices for APIs, the self-hosting model for open weights (:mod:`.tco`) — and the
   break-even volume of every open × closed pair.
3. The ten dimensions (:mod:`.dimensions`) from catalog facts and the measurements, the
   advisor's ranking, exclusions and flip points (:mod:`.advisor`).
4. A report dict in the shape :mod:`crossroads.report` renders.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..catalog import CatalogEntry, find_model
from ..client import AsyncClient
from ..config import Config
from ..errors import ConfigError, CrossroadsError, MissingKeyError
from ..evals.results import load_run
from ..evals.runner import ProgressEvent, Runner, RunOptions
from ..evals.suite import Suite
from ..routing import catalog_entry_for
from ..store import Database
from . import tco
from .advisor import Advice, Candidate, CostCurve, Profile, advise
from .dimensions import DIMENSIONS, Evidence, score_models

__all__ = [
    "REFERENCE_MODELS",
    "CompareResult",
    "build_report",
    "default_models",
    "default_profile",
    "measured_input_share",
    "run_compare",
    "tco_cost_curve",
]

#: Compared by default: measured when a key is present, catalog facts otherwise.
REFERENCE_MODELS = (
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-5",
    "google/gemini-2.5-flash",
    "meta/llama-3.1-8b",
    "meta/llama-3.3-70b",
)
VOLUMES = (1e6, 1e7, 1e8, 1e9, 1e10, 1e11)


def default_profile(volume: float | None = None) -> Profile:
    """Equal weights on the ten dimensions, no hard constraints."""
    profile = Profile(name="balanced", description="Equal weights, no hard constraints.")
    if volume is not None:
        constraints = profile.constraints.model_copy(update={"volume_tokens_per_month": volume})
        profile = profile.model_copy(update={"constraints": constraints})
    return profile


def tco_cost_curve(entry: CatalogEntry, input_share: float = 0.75) -> CostCurve | None:
    """Monthly USD at a total token volume (``input_share`` of it input tokens), or None
    when the model cannot be costed."""
    try:
        if entry.self_host is None:
            api = tco.default_api_option(entry)
            return lambda v: tco.api_cost(api, tco.Volume.from_tokens(v, input_share)).total
        own = tco.default_selfhost_option(entry)
    except ValueError:  # MissingPriceError is a ValueError too
        return None
    return lambda v: tco.selfhost_cost(own, tco.Volume.from_tokens(v, input_share)).total


def measured_input_share(results: list[dict[str, Any]], default: float = 0.75) -> float:
    """The share of input tokens in what the run actually sent and received."""
    prompt = sum(r.get("prompt_tokens") or 0 for r in results if not r.get("cached"))
    completion = sum(r.get("completion_tokens") or 0 for r in results if not r.get("cached"))
    return prompt / (prompt + completion) if prompt + completion > 0 else default


def default_models(config: Config) -> list[str]:
    """The embedded model, every configured model, then the reference set."""
    names = ["local/smollm2", *(m.name for m in config.models), *REFERENCE_MODELS]
    return list(dict.fromkeys(names))


def _entry_for(name: str, client: AsyncClient) -> CatalogEntry | None:
    entry = find_model(name)
    if entry is not None:
        return entry
    try:
        d = client.deployment(name)
    except CrossroadsError:
        return None
    return catalog_entry_for(d.backend, d.model)


def _callable(name: str, client: AsyncClient) -> str | None:
    """None when ``name`` can be measured here, else why not."""
    try:
        deployment = client.deployment(name)
    except MissingKeyError as exc:
        return f"not measured here: no API key ({exc.env_var} is not set)"
    except CrossroadsError as exc:
        if (entry := find_model(name)) is not None and entry.kind == "open":
            return (
                "not measured here: open weights not set up on this machine (see `crossroads fit`)"
            )
        return f"not measured here: {exc.message}"
    if deployment.backend == "llamacpp":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return "not measured here: pip install 'crossroads[local]' to run it"
    return None


@dataclass
class CompareResult:
    report: dict[str, Any]
    advice: Advice
    run_id: str | None


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def build_report(
    *,
    names: list[str],
    entries: dict[str, CatalogEntry],
    notes: dict[str, str],
    summary: dict[str, Any] | None,
    run: dict[str, Any] | None,
    profile: Profile,
    suite_name: str,
    input_share: float = 0.75,
) -> tuple[dict[str, Any], Advice]:
    """Evidence → dimensions → advice → the report dict."""
    volume = profile.constraints.volume_tokens_per_month
    measured = (summary or {}).get("models", {})
    curves = {n: tco_cost_curve(entries[n], input_share) for n in names}
    evidence: dict[str, Evidence] = {}
    for name in names:
        stats = measured.get(name) or {}
        curve = curves[name]
        cost_1m = curve(volume) / volume * 1e6 if curve is not None else None
        entry = entries[name]
        ev = Evidence(
            measured=bool(stats.get("n_items")),
            quality_mean=stats.get("mean"),
            quality_ci=(stats["ci_low"], stats["ci_high"])
            if stats.get("ci_low") is not None
            else None,
            p95_latency_s=(stats.get("latency_p95") or {}).get("estimate"),
            tokens_per_s=stats.get("tokens_per_s_median"),
            cost_per_1m_tokens_usd=cost_1m,
            published_benchmarks={b.name: b.score for b in entry.benchmarks},
        )
        if suite_name == "bias" and ev.measured:
            ev = replace(ev, bias_consistency=stats.get("mean"))
        if suite_name == "safety" and ev.measured:
            ev = replace(ev, safety_score=stats.get("mean"))
        evidence[name] = ev
    scores = score_models({n: (entries[n], evidence[n]) for n in names})
    monthly = {n: (c(volume) if (c := curves[n]) is not None else None) for n in names}
    candidates = [
        Candidate(
            name=n,
            entry=entries[n],
            dimension_scores=scores[n],
            monthly_cost_usd=monthly[n],
            cost_curve=curves[n],
            p95_latency_s=evidence[n].p95_latency_s,
            measured=evidence[n].measured,
        )
        for n in names
    ]
    advice = advise(profile, candidates)
    report = _report_dict(
        names, entries, notes, evidence, scores, curves, advice, profile, summary, run, suite_name
    )
    report["volume"]["input_share"] = input_share
    report["tco"]["break_even"] = _break_evens(names, entries, volume, input_share)
    return report, advice


def _break_evens(
    names: list[str], entries: dict[str, CatalogEntry], volume: float, input_share: float
) -> list[Any]:
    shape = tco.Volume.from_tokens(volume, input_share)
    rows = []
    opens = [n for n in names if entries[n].self_host is not None]
    closed = [n for n in names if entries[n].self_host is None]
    for o in opens:
        try:
            own = tco.default_selfhost_option(entries[o])
        except ValueError:
            continue
        for c in closed:
            try:
                api = tco.default_api_option(entries[c])
            except ValueError:
                continue
            at = tco.break_even(own, api, shape)
            sentence = (
                f"above {tco.format_tokens(at)} tokens/month self-hosting {o} becomes cheaper "
                f"than {c}"
                if at is not None
                else f"self-hosting {o} never becomes cheaper than {c} below 10T tokens/month"
            )
            rows.append(
                {"open": o, "closed": c, "volume_tokens_per_month": at, "sentence": sentence}
            )
    return rows


def _report_dict(
    names: list[str],
    entries: dict[str, CatalogEntry],
    notes: dict[str, str],
    evidence: dict[str, Evidence],
    scores: dict[str, dict[str, Any]],
    curves: dict[str, CostCurve | None],
    advice: Advice,
    profile: Profile,
    summary: dict[str, Any] | None,
    run: dict[str, Any] | None,
    suite_name: str,
) -> dict[str, Any]:
    volume = profile.constraints.volume_tokens_per_month
    measured = (summary or {}).get("models", {})
    top = advice.ranking[0] if advice.ranking else None
    flips = [f for f in advice.flip_points if f.value is not None]
    models = []
    for n in names:
        e, stats, ev = entries[n], measured.get(n) or {}, evidence[n]
        curve = curves[n]
        models.append(
            {
                "name": n,
                "catalog_id": e.id,
                "display": e.name,
                "kind": e.kind,
                "measured": ev.measured,
                "licence": e.licence.name,
                "params_b": e.parameters_b,
                "context_window": e.context_window,
                "quality": {k: stats.get(k) for k in ("mean", "ci_low", "ci_high", "pass_rate")}
                if ev.measured
                else None,
                "latency_p50_s": (stats.get("latency_p50") or {}).get("estimate"),
                "latency_p95_s": ev.p95_latency_s,
                "tokens_per_s": ev.tokens_per_s,
                "monthly_cost_usd": _finite(curve(volume)) if curve is not None else None,
                "cost_per_1m_usd": ev.cost_per_1m_tokens_usd,
                "published_benchmarks": [
                    {
                        "name": b.name,
                        "score": b.score,
                        "source": str(b.source),
                        "as_of": str(b.as_of),
                    }
                    for b in e.benchmarks
                ],
                "note": notes.get(n),
            }
        )
    summary_text = (
        f"For the '{profile.name}' profile at {tco.format_tokens(volume)} tokens/month, "
        f"{top.label} ranks first ({top.score:.1f}/10): {'; '.join(top.reasons[:3])}."
        if top
        else "No option satisfies the profile's hard constraints."
    )
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "title": "Open vs closed LLMs: the decision",
        "profile": {
            "name": profile.name,
            "description": profile.description,
            "weights": profile.weights.as_dict(),
            "constraints": profile.constraints.model_dump(),
        },
        "volume": {"tokens_per_month": volume, "input_share": 0.75},
        "recommendation": {
            "model": top.name if top else None,
            "summary": summary_text,
            "flip_summary": "".join(
                f"{f.sentence[:1].upper()}{f.sentence[1:]}. " for f in flips[:3]
            ).strip()
            or "No flip point within the searched range: the choice is robust.",
        },
        "models": models,
        "dimensions": {
            "names": dict(DIMENSIONS),
            "scores": {
                n: {d: {"score": s.score, "evidence": list(s.evidence)} for d, s in sc.items()}
                for n, sc in scores.items()
            },
        },
        "quality": {
            "suite": suite_name,
            "run_id": (run or {}).get("id"),
            "pairs": [
                {"a": p["a"], "b": p["b"], "verdict": p["verdict"], "significant": p["significant"]}
                for p in (summary or {}).get("pairs", [])
            ],
        },
        "tco": {
            "volumes": list(VOLUMES),
            "curves": {
                n: [_finite(c(v)) for v in VOLUMES] for n, c in curves.items() if c is not None
            },
            "break_even": [],
            "assumptions": [
                "API cost: catalog list prices (dated, per model source); the input/output "
                "token mix measured in the evaluation run (75 % input when nothing ran).",
                "Self-hosting: GPUs from the hardware-fit estimate, always-on replicas billed "
                "730 h/month at the dated $/GPU-hour defaults, vLLM reference throughput at "
                "50 % utilisation, 0.25 FTE of a $15k/month engineer, $10k setup over 12 "
                "months (see `crossroads cost` for sources; override with its options).",
            ],
        },
        "advice": {
            "ranking": [
                {"model": r.name, "score": r.score, "reasons": r.reasons} for r in advice.ranking
            ],
            "excluded": [{"model": x.name, "reasons": x.reasons} for x in advice.excluded],
            "flip_points": [
                {
                    "parameter": f.parameter,
                    "current": f.current,
                    "flip_at": f.value,
                    "new_top": f.new_top,
                    "sentence": f.sentence,
                }
                for f in advice.flip_points
            ],
        },
        "manifest": (run or {}).get("manifest") or {},
    }


async def _measure(
    client: AsyncClient,
    db: Database,
    suite: Suite,
    models: list[str],
    progress: Callable[[ProgressEvent], None] | None,
    seed: int | None,
) -> str:
    options = RunOptions(models=tuple(models), concurrency=8, per_model_concurrency=4, seed=seed)
    return await Runner(client, db, suite, options, progress=progress).run()


def run_compare(
    config: Config,
    db: Database,
    suite: Suite,
    names: list[str],
    profile: Profile,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    seed: int | None = None,
) -> CompareResult:
    """Measure what can be measured, then build the report."""
    client = AsyncClient(config)
    entries: dict[str, CatalogEntry] = {}
    notes: dict[str, str] = {}
    for name in names:
        entry = _entry_for(name, client)
        if entry is None:
            raise ConfigError(
                f"{name!r} is not in the catalog, so it cannot be costed or scored; give a "
                "catalog id (`crossroads models`) or a configured model whose vendor model "
                "the catalog knows."
            )
        entries[name] = entry
        why = _callable(name, client)
        if why is not None:
            notes[name] = why
    measurable = [n for n in names if n not in notes]

    async def measure() -> str | None:
        try:
            if not measurable:
                return None
            return await _measure(client, db, suite, measurable, progress, seed)
        finally:
            await client.aclose()

    run_id = asyncio.run(measure())
    data = load_run(db, run_id) if run_id else None
    report, advice = build_report(
        names=names,
        entries=entries,
        notes=notes,
        summary=data["summary"] if data else None,
        run=data["run"] | {"manifest": data["manifest"]} if data else None,
        profile=profile,
        suite_name=suite.name,
        input_share=measured_input_share(data["results"]) if data else 0.75,
    )
    return CompareResult(report, advice, run_id)
