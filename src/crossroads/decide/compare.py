"""``crossroads compare`` after measuring: cost, score, advise, and assemble the report.

1. Models: the ones asked for, or by default the embedded ``local/smollm2``, every model
   in crossroads.yaml and a reference set of closed and open catalog models. A model
   that can be called here (a key in the environment, a local file) is measured with the
   suite (:mod:`crossroads.report.compare` runs it); the others keep their catalog facts
   and vendor-published benchmarks, marked "not measured here".
2. Cost: each model's monthly cost at the profile's volume and across volumes — list
   prices for APIs, the self-hosting model for open weights (:mod:`.tco`) — and the
   break-even volume of every open × closed pair.
3. The ten dimensions (:mod:`.dimensions`) from catalog facts and the measurements, the
   advisor's ranking, exclusions and flip points (:mod:`.advisor`).
4. A :class:`~.decision.DecisionReport`, which :mod:`crossroads.report` renders.

The measurements arrive as :class:`crossroads.evidence.RunEvidence`, so this module never
imports ``crossroads.evals``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ..catalog import CatalogEntry, find_model
from ..client import AsyncClient
from ..config import Config
from ..errors import CrossroadsError, MissingKeyError
from ..evidence import ModelRunSummary, RunEvidence
from ..routing import catalog_entry_for
from . import tco
from .advisor import Advice, Candidate, CostCurve, Profile, advise
from .decision import (
    AdviceSection,
    BreakEvenPoint,
    CostSection,
    DecisionReport,
    DimensionEntry,
    DimensionsSection,
    ExcludedOption,
    FlipRow,
    ModelFacts,
    ModelQuality,
    PairVerdict,
    ProfileSection,
    PublishedBenchmark,
    QualitySection,
    RankedRow,
    Recommendation,
    VolumeSection,
)
from .dimensions import DIMENSIONS, DimensionScore, Evidence, score_models

__all__ = [
    "REFERENCE_MODELS",
    "build_report",
    "catalog_entry",
    "default_models",
    "default_profile",
    "tco_cost_curve",
    "why_not_measured",
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
ASSUMPTIONS = (
    "API cost: catalog list prices (dated, per model source); the input/output "
    "token mix measured in the evaluation run (75 % input when nothing ran).",
    "Self-hosting: GPUs from the hardware-fit estimate, always-on replicas billed "
    "730 h/month at the dated $/GPU-hour defaults, vLLM reference throughput at "
    "50 % utilisation, 0.25 FTE of a $15k/month engineer, $10k setup over 12 "
    "months (see `crossroads cost` for sources; override with its options).",
)


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
        tiers = tco.selfhost_options(entry)
    except ValueError:  # MissingPriceError is a ValueError too
        return None
    # At each volume, the serving tier that costs least there (smallest tier on ties).
    return lambda v: min(
        tco.selfhost_cost(own, tco.Volume.from_tokens(v, input_share)).total for own in tiers
    )


def default_models(config: Config) -> list[str]:
    """The embedded model, every configured model, then the reference set."""
    names = ["local/smollm2", *(m.name for m in config.models), *REFERENCE_MODELS]
    return list(dict.fromkeys(names))


def catalog_entry(name: str, client: AsyncClient) -> CatalogEntry | None:
    """The catalog facts for a catalog id or a configured model (None: unknown)."""
    entry = find_model(name)
    if entry is not None:
        return entry
    try:
        d = client.deployment(name)
    except CrossroadsError:
        return None
    return catalog_entry_for(d.backend, d.model)


def why_not_measured(name: str, client: AsyncClient) -> str | None:
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


def build_report(
    *,
    names: list[str],
    entries: dict[str, CatalogEntry],
    notes: dict[str, str],
    run: RunEvidence | None,
    profile: Profile,
    suite_name: str,
) -> tuple[DecisionReport, Advice]:
    """Evidence → dimensions → advice → the report (costs use the run's input share, 75 %
    when nothing ran)."""
    volume = profile.constraints.volume_tokens_per_month
    input_share = run.input_share if run is not None else 0.75
    measured = run.summary.models if run is not None else {}
    curves = {n: tco_cost_curve(entries[n], input_share) for n in names}
    evidence: dict[str, Evidence] = {}
    for name in names:
        stats = measured.get(name) or ModelRunSummary()
        curve = curves[name]
        cost_1m = curve(volume) / volume * 1e6 if curve is not None else None
        entry = entries[name]
        ev = Evidence(
            measured=bool(stats.n_items),
            quality_mean=stats.mean,
            quality_ci=(stats.ci_low, stats.ci_high)
            if stats.ci_low is not None and stats.ci_high is not None
            else None,
            p95_latency_s=stats.latency_p95.estimate,
            tokens_per_s=stats.tokens_per_s_median,
            cost_per_1m_tokens_usd=cost_1m,
            published_benchmarks={b.name: b.score for b in entry.benchmarks},
            quality_source=run.measured_on() if run is not None and stats.n_items else None,
        )
        if suite_name == "bias" and ev.measured:
            ev = replace(ev, bias_consistency=stats.mean)
        if suite_name == "safety" and ev.measured:
            ev = replace(ev, safety_score=stats.mean)
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
    report = _decision(
        names,
        entries,
        notes,
        evidence,
        scores,
        curves,
        advice,
        profile,
        run,
        suite_name,
        input_share,
        _break_evens(names, entries, volume, input_share),
    )
    return report, advice


def _break_evens(
    names: list[str], entries: dict[str, CatalogEntry], volume: float, input_share: float
) -> list[BreakEvenPoint]:
    shape = tco.Volume.from_tokens(volume, input_share)
    rows = []
    opens = [n for n in names if entries[n].self_host is not None]
    closed = [n for n in names if entries[n].self_host is None]
    for o in opens:
        try:
            tiers = tco.selfhost_options(entries[o])
        except ValueError:
            continue
        # Against every closed model, and against the publisher's own hosted API when it
        # sells one (DeepSeek): self-hosting the weights vs calling the publisher.
        for c in [*closed, *([o] if entries[o].prices is not None else [])]:
            try:
                api = tco.default_api_option(entries[c])
            except ValueError:
                continue
            # Above the lowest tier's crossing that tier (so the cheapest tier) stays cheaper.
            found = [b for own in tiers if (b := tco.break_even(own, api, shape)) is not None]
            at = min(found) if found else None
            than = f"its publisher's hosted API ({entries[o].vendor})" if c == o else c
            sentence = (
                f"above {tco.format_tokens(at)} tokens/month self-hosting {o} becomes cheaper "
                f"than {than}"
                if at is not None
                else f"self-hosting {o} never becomes cheaper than {than} below 10T tokens/month"
            )
            rows.append(
                BreakEvenPoint(open=o, closed=c, volume_tokens_per_month=at, sentence=sentence)
            )
    return rows


def _model_facts(
    name: str,
    entry: CatalogEntry,
    stats: ModelRunSummary | None,
    ev: Evidence,
    monthly: float | None,
    note: str | None,
) -> ModelFacts:
    return ModelFacts(
        name=name,
        catalog_id=entry.id,
        display=entry.name,
        kind=entry.kind,
        measured=ev.measured,
        licence=entry.licence.name,
        params_b=entry.parameters_b,
        context_window=entry.context_window,
        quality=ModelQuality(
            mean=stats.mean, ci_low=stats.ci_low, ci_high=stats.ci_high, pass_rate=stats.pass_rate
        )
        if ev.measured and stats is not None
        else None,
        latency_p50_s=stats.latency_p50.estimate if stats is not None else None,
        latency_p95_s=ev.p95_latency_s,
        tokens_per_s=ev.tokens_per_s,
        monthly_cost_usd=monthly,
        cost_per_1m_usd=ev.cost_per_1m_tokens_usd,
        published_benchmarks=[
            PublishedBenchmark(name=b.name, score=b.score, source=str(b.source), as_of=str(b.as_of))
            for b in entry.benchmarks
        ],
        note=note,
    )


def _decision(
    names: list[str],
    entries: dict[str, CatalogEntry],
    notes: dict[str, str],
    evidence: dict[str, Evidence],
    scores: dict[str, dict[str, DimensionScore]],
    curves: dict[str, CostCurve | None],
    advice: Advice,
    profile: Profile,
    run: RunEvidence | None,
    suite_name: str,
    input_share: float,
    break_evens: list[BreakEvenPoint],
) -> DecisionReport:
    volume = profile.constraints.volume_tokens_per_month
    measured = run.summary.models if run is not None else {}
    top = advice.ranking[0] if advice.ranking else None
    flips = [f for f in advice.flip_points if f.value is not None]
    models = [
        _model_facts(
            n,
            entries[n],
            measured.get(n),
            evidence[n],
            c(volume) if (c := curves[n]) is not None else None,
            notes.get(n),
        )
        for n in names
    ]
    summary_text = (
        f"For the '{profile.name}' profile at {tco.format_tokens(volume)} tokens/month, "
        f"{top.label} ranks first ({top.score:.1f}/10): {'; '.join(top.reasons[:3])}."
        if top
        else "No option satisfies the profile's hard constraints."
    )
    return DecisionReport(
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        title="Open vs closed LLMs: the decision",
        profile=ProfileSection(
            name=profile.name,
            description=profile.description,
            weights=profile.weights.as_dict(),
            constraints=profile.constraints.model_dump(),
        ),
        volume=VolumeSection(tokens_per_month=volume, input_share=input_share),
        recommendation=Recommendation(
            model=top.name if top else None,
            summary=summary_text,
            flip_summary="".join(
                f"{f.sentence[:1].upper()}{f.sentence[1:]}. " for f in flips[:3]
            ).strip()
            or "No flip point within the searched range: the choice is robust.",
        ),
        models=models,
        dimensions=DimensionsSection(
            names=dict(DIMENSIONS),
            scores={
                n: {
                    d: DimensionEntry(score=s.score, evidence=list(s.evidence))
                    for d, s in sc.items()
                }
                for n, sc in scores.items()
            },
        ),
        quality=QualitySection(
            suite=suite_name,
            run_id=run.run_id if run is not None else None,
            evidence_runs=list(run.run_ids) if run is not None else [],
            measured_on=run.measured_on() if run is not None else None,
            pairs=[
                PairVerdict(a=p.a, b=p.b, verdict=p.verdict, significant=p.significant)
                for p in (run.summary.pairs if run is not None else [])
            ],
        ),
        tco=CostSection(
            volumes=list(VOLUMES),
            curves={n: [c(v) for v in VOLUMES] for n, c in curves.items() if c is not None},
            break_even=break_evens,
            assumptions=list(ASSUMPTIONS),
        ),
        advice=AdviceSection(
            ranking=[
                RankedRow(model=r.name, score=r.score, reasons=r.reasons) for r in advice.ranking
            ],
            excluded=[ExcludedOption(model=x.name, reasons=x.reasons) for x in advice.excluded],
            flip_points=[
                FlipRow(
                    parameter=f.parameter,
                    current=f.current,
                    flip_at=f.value,
                    new_top=f.new_top,
                    sentence=f.sentence,
                )
                for f in advice.flip_points
            ],
        ),
        manifest=run.manifest if run is not None else {},
    )
