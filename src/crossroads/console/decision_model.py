"""The decision page's data: the inputs of ``crossroads compare``, the report it builds, and
the numbers the browser re-ranks with (``static/decide.js``).

The browser gets exactly what the Python advisor (:mod:`crossroads.decide.advisor`) ranks
with: each candidate's ten dimension scores as ``report.json`` holds them
(``dimensions.scores``), the facts the hard constraints read (status, vendor, self-hosting,
serving tier, the catalog's language support for every language offered), and the
parameters of its cost curve (list prices, or the self-hosting replica arithmetic of
:mod:`crossroads.decide.cost`), so that the cost dimension and the budget can be re-checked
at any monthly volume. ``decide.js`` is a line-by-line port of the ranking, the exclusions
and the flip-point search; ``tests/console/test_decide_js.py`` holds it to the advisor.

Exports (profile YAML, report HTML / Markdown / JSON) are rendered here, on the server, by
the same code ``crossroads compare --profile`` writes its files with.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from .._pages import strict_dumps
from ..catalog import CatalogEntry
from ..client import AsyncClient
from ..config import Config
from ..decide import tco
from ..decide.advisor import Advice, Profile, language_support, option_label
from ..decide.compare import build_report, catalog_entry, default_models, why_not_measured
from ..decide.decision import DecisionReport
from ..decide.dimensions import DIMENSIONS, serving_tier
from ..decide.exclusions import _ISO_639_1
from ..errors import ConfigError
from ..evidence import RunEvidence
from ..report.html import render_report_html
from ..report.markdown import render_report_markdown

__all__ = [
    "LANGUAGES",
    "DecisionInputs",
    "ExportFormat",
    "browser_model",
    "decide",
    "decision_inputs",
    "export_report",
    "profile_yaml",
]

#: Languages the page offers for the language constraint (a profile's own are added).
LANGUAGES: tuple[str, ...] = tuple(sorted(_ISO_639_1.values()))

ExportFormat = Literal["html", "md", "json"]


@dataclass(frozen=True)
class DecisionInputs:
    """What ``crossroads compare`` decides from, besides the profile."""

    names: list[str]
    entries: dict[str, CatalogEntry]
    notes: dict[str, str] = field(default_factory=dict)
    run: RunEvidence | None = None
    suite_name: str = "quick"


async def decision_inputs(
    config: Config,
    models: Sequence[str] | None = None,
    *,
    run: RunEvidence | None = None,
    suite_name: str = "quick",
) -> DecisionInputs:
    """The models (default: those ``crossroads compare`` compares), their catalog facts and
    why each is not measured, as :func:`crossroads.report.compare.run_compare` finds them.
    A ``run`` supplies the measurements (the models it measured are added to the list)."""
    names = list(models) if models else default_models(config)
    if run is not None:
        names = list(dict.fromkeys([*names, *run.summary.models]))
    client = AsyncClient(config)
    try:
        entries: dict[str, CatalogEntry] = {}
        notes: dict[str, str] = {}
        for name in names:
            entry = catalog_entry(name, client)
            if entry is None:
                if models and name in models:
                    raise ConfigError(
                        f"{name!r} is not in the catalog, so it cannot be costed or scored; "
                        "give a catalog id (`crossroads models`)."
                    )
                continue  # a configured model the catalog does not know: left out
            entries[name] = entry
            measured = run is not None and name in run.summary.models
            why = None if measured else why_not_measured(name, client)
            if why is not None:
                notes[name] = why
    finally:
        await client.aclose()
    kept = [n for n in names if n in entries]
    suite = run.suite if run is not None else suite_name
    return DecisionInputs(kept, entries, notes, run, suite)


def decide(inputs: DecisionInputs, profile: Profile) -> tuple[DecisionReport, Advice]:
    """The report and the advice, exactly as ``crossroads compare`` builds them."""
    return build_report(
        names=inputs.names,
        entries=inputs.entries,
        notes=inputs.notes,
        run=inputs.run,
        profile=profile,
        suite_name=inputs.suite_name,
    )


def _cost_params(entry: CatalogEntry, input_share: float) -> dict[str, Any] | None:
    """The cost curve of :func:`crossroads.decide.compare.tco_cost_curve` as numbers."""
    try:
        if entry.self_host is None:
            api = tco.default_api_option(entry)
            p = api.prices
            return {
                "kind": "api",
                "input_share": input_share,
                "input": p.input,
                "output": p.output,
                "cached_input": p.cached_input,
            }
        tiers = tco.selfhost_options(entry)
    except ValueError:
        return None
    # every serving tier: at each volume the one that costs least there is the cost
    return {
        "kind": "self_host",
        "input_share": input_share,
        "tiers": [
            {
                "replica_capacity": own.replica_capacity,
                "replica_month_usd": own.replica_month_usd,
                "staff": own.staff_fte * own.staff_month_usd,
                "setup": own.setup_usd / own.amortisation_months,
            }
            for own in tiers
        ],
    }


def browser_model(
    inputs: DecisionInputs, report: DecisionReport, languages: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything ``decide.js`` needs, JSON-ready (see the module docstring)."""
    offered = list(dict.fromkeys([*languages, *LANGUAGES]))
    share = report.volume.input_share if report.volume.input_share is not None else 0.75
    facts = {m.name: m for m in report.models}
    candidates = []
    for name in inputs.names:
        entry = inputs.entries[name]
        dims = report.dimensions.scores[name]
        model = facts[name]
        candidates.append(
            {
                "name": name,
                "label": option_label(entry),
                "display": entry.name,
                "kind": entry.kind,
                "status": entry.status,
                "vendor": entry.vendor,
                "self_host": entry.self_host is not None,
                "tier": serving_tier(entry),
                "languages": entry.languages,
                "language_support": {lang: language_support(entry, lang) for lang in offered},
                "scores": {d: dims[d].score for d in DIMENSIONS},
                "evidence": {d: (dims[d].evidence or [""])[0] for d in DIMENSIONS},
                "measured": bool(model.measured),
                "p95_latency_s": model.latency_p95_s,
                "monthly_cost_usd": model.monthly_cost_usd,
                "cost": _cost_params(entry, share),
            }
        )
    return {
        "dimensions": dict(DIMENSIONS),
        "languages": offered,
        "candidates": candidates,
    }


def profile_yaml(profile: Profile) -> str:
    """The profile in the ``--profile`` YAML format (:func:`load_profile` reads it back)."""
    data = profile.model_dump()
    stream = io.StringIO()
    yaml.safe_dump(data, stream, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return stream.getvalue()


def export_report(report: DecisionReport | Mapping[str, Any], fmt: ExportFormat) -> str:
    """One of the three files :func:`crossroads.report.write_report` writes, as text."""
    if fmt == "html":
        return render_report_html(report)
    if fmt == "md":
        return render_report_markdown(report)
    data = report.model_dump(mode="json") if isinstance(report, DecisionReport) else report
    return strict_dumps(data, indent=2) + "\n"
